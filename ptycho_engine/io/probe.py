"""Probe files (formats.md input 5): ``.npy``, ``.npz``, ptychodus products, CXI illumination.

The container is recognised from the file's first bytes, not its extension:

- NPY: a 2-D complex array, or leading mode axes then ``(H, W)``;
- NPZ: member ``probeGuess`` or ``probe`` (same shapes);
- HDF5 ptychodus product: dataset ``probe`` ``(modes, H, W)`` with its pixel size;
- HDF5 CXI: ``entry_1/instrument_1/source_1/illumination``.

A probe whose size (or pixel size, when both are known) does not match the requested ``N``
(and object pixel) raises a DataError that says what to do, unless ``resample=True``: the
probe is then Fourier-resampled to the target pixel (same physical field of view) and
zero-padded or centre-cropped to ``N x N``. When a pixel size is unknown, the probe's field of
view is taken to be the ``N x N`` window (Fourier resampling straight to ``N``).

A probe with a NaN or infinite value, or a non-positive or non-finite pixel size, is refused
(the NaN/infinity policy of :mod:`ptycho_engine.io.validation`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.errors import DataError
from ptycho_engine.io.files import atomic_write, check_readable_file, sha256_file, sniff
from ptycho_engine.io.hdf5 import h5_dataset, h5_read, open_hdf5
from ptycho_engine.io.npz import load_npy, npz_member, open_npz
from ptycho_engine.io.prepare import fourier_resample, pad_center
from ptycho_engine.io.validation import complex_modes, positive_scalar

NPZ_KEYS = ("probeGuess", "probe")
CXI_ILLUMINATION = "entry_1/instrument_1/source_1/illumination"


@dataclass(frozen=True, eq=False)
class ProbeData:
    """Probe modes read from a file.

    Attributes
    ----------
    modes : ndarray, (K, H, W) complex64
        Probe modes (K = 1 for a single-mode probe), strongest first as stored.
    pixel_size_m : float or None
        Pixel size when the file gives one.
    provenance : dict
        ``path``, ``format``, ``sha256``, ``key``, ``steps``.
    """

    modes: np.ndarray
    pixel_size_m: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def probe(self) -> np.ndarray:
        """The first mode, (H, W) complex64."""
        return self.modes[0]


def read_probe(
    path: str | os.PathLike[str],
    N: int | None = None,
    *,
    pixel_size_m: float | None = None,
    resample: bool = False,
) -> ProbeData:
    """Read a probe, optionally checked against (or resampled to) ``N`` and a pixel size.

    Parameters
    ----------
    path : str or path-like
    N : int, optional
        Pattern size the probe must match.
    pixel_size_m : float, optional
        Object pixel size the probe must match (checked only when the file has one).
    resample : bool
        Resample a mismatched probe instead of raising.

    Returns
    -------
    ProbeData

    Raises
    ------
    DataError
        Unreadable file, no probe in it, a pickled member, bad shapes or values, or a mismatch
        with ``N``/``pixel_size_m`` while ``resample`` is False.
    """
    file = check_readable_file(path, "a probe file (.npy, .npz, product or CXI)")
    src = str(file)
    kind = sniff(file)
    digest = sha256_file(file)
    pixel: float | None = None
    if kind == "npy":
        key, fmt = "<array>", "npy"
        modes = complex_modes(load_npy(file, "a complex probe"), src, key)
    elif kind == "npz":
        with open_npz(file, "a probe") as archive:
            key = next((k for k in NPZ_KEYS if k in archive.files), "")
            if not key:
                raise DataError(
                    f"{src}: missing key 'probeGuess' (or 'probe'): expected a complex probe; "
                    f"found keys {list(archive.files)}"
                )
            modes = complex_modes(npz_member(archive, key, src), src, key)
        fmt = "npz"
    elif kind == "hdf5":
        with open_hdf5(file, "a probe") as handle:
            dataset = h5_dataset(handle, "probe", src)
            if dataset is not None:
                key, fmt = "probe", "ptychodus-product"
                width = dataset.attrs.get("pixel_width_m")
                if width is not None:
                    pixel = positive_scalar(width, src, "probe@pixel_width_m", "m")
            else:
                dataset = h5_dataset(handle, CXI_ILLUMINATION, src)
                if dataset is None:
                    raise DataError(
                        f"{src}: no probe found: expected dataset 'probe' (ptychodus product) "
                        f"or {CXI_ILLUMINATION!r} (CXI)"
                    )
                key, fmt = CXI_ILLUMINATION, "cxi"
            modes = complex_modes(h5_read(dataset, src, key), src, key)
    else:
        raise DataError(
            f"{src}: not a probe file: expected .npy, .npz or HDF5 content, found a {kind} file"
        )
    steps: list[str] = [f"read {key!r} {modes.shape} from {fmt}"]
    if N is not None:
        modes, pixel = _fit(modes, pixel, N, pixel_size_m, resample, src, steps)
    provenance = {"path": src, "format": fmt, "sha256": digest, "key": key, "steps": steps}
    return ProbeData(modes=modes, pixel_size_m=pixel, provenance=provenance)


def _fit(
    modes: np.ndarray,
    pixel: float | None,
    n: int,
    target_pixel: float | None,
    resample: bool,
    src: str,
    steps: list[str],
) -> tuple[np.ndarray, float | None]:
    h, w = modes.shape[1:]
    pixel_mismatch = (
        pixel is not None
        and target_pixel is not None
        and not math.isclose(pixel, target_pixel, rel_tol=1e-3)
    )
    if (h, w) == (n, n) and not pixel_mismatch:
        return modes, pixel
    what = f"the probe is {h}x{w}" + (f" with {pixel:.4g} m pixels" if pixel else "")
    want = f"N={n}" + (f" with {target_pixel:.4g} m pixels" if target_pixel else "")
    if not resample:
        raise DataError(
            f"{src}: {what} but the data need {want}: resample it (read_probe(..., "
            f"resample=True)) or choose N={h}"
            + (" and a matching geometry" if pixel_mismatch else "")
        )
    if h != w:
        raise DataError(f"{src}: cannot resample a non-square {h}x{w} probe")
    out = []
    if pixel is not None and target_pixel is not None:
        size = max(1, round(h * pixel / target_pixel))
        for mode in modes:
            out.append(pad_center(fourier_resample(mode, size), n))
        steps.append(
            f"probe resampled from {h} px of {pixel:.4g} m to {size} px of {target_pixel:.4g} m, "
            f"then fitted to {n}x{n}"
        )
        pixel = target_pixel
    else:
        for mode in modes:
            out.append(fourier_resample(mode, n))
        steps.append(f"probe Fourier-resampled from {h}x{h} to {n}x{n} (same field of view)")
    return np.stack(out).astype(np.complex64), pixel


def mode_power(modes: np.ndarray) -> np.ndarray:
    """Power ``sum |mode|^2`` of each mode of ``(K, H, W)``, as ``(K,)`` float64."""
    return np.sum(np.abs(modes.astype(np.complex128)) ** 2, axis=(1, 2))


def strongest_mode(modes: np.ndarray) -> tuple[np.ndarray, int, float]:
    """The mode of ``(K, H, W)`` with most power, its index and its share of the total power."""
    power = mode_power(modes)
    index = int(np.argmax(power))
    total = float(power.sum())
    share = float(power[index] / total) if total > 0 else 1.0
    return modes[index], index, share


def write_probe(path: str | os.PathLike[str], modes: np.ndarray) -> Path:
    """Write probe modes ``(K, N, N)`` (or one ``(N, N)`` mode), strongest first, as a
    complex64 ``.npy`` that :func:`read_probe` reads back with every mode; atomically.

    Raises
    ------
    DataError
        The modes are not a stack of square complex images, or hold NaN or infinity.
    """
    stack = np.array(modes, np.complex64, copy=True)
    if stack.ndim == 2:
        stack = stack[np.newaxis]
    if stack.ndim != 3 or stack.shape[0] < 1 or stack.shape[1] != stack.shape[2]:
        raise DataError(f"{path}: probe modes must be (K, N, N), got shape {stack.shape}")
    if not np.all(np.isfinite(stack)):
        raise DataError(f"{path}: the probe holds NaN or infinite values")

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.save would add a second suffix
            np.save(handle, stack)

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(target, write, suffix=".npy")
