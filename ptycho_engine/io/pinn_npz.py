"""PINN-style NPZ files, the format of earlier PtychoPINN work (formats.md, input 1).

Layout (all positions in object pixels, x = column, y = row):

- ``diffraction`` (or ``diff3d`` when reading): amplitudes ``sqrt(counts)``, shape
  ``(M, N, N)``; the reader also accepts the legacy ``(N, N, M)`` layout (recognised when the
  first two axes are equal and the last one differs; a cube ``(N, N, N)`` is read as
  ``(M, N, N)``) and a trailing singleton axis ``(M, N, N, 1)``. When both keys exist,
  ``diffraction`` wins.
- ``xcoords``, ``ycoords``: ``(M,)`` patch centres.
- ``probeGuess``: optional ``(N, N)`` complex probe.
- ``objectGuess``: optional ``(H, W)`` complex object (ground truth of a simulation).
- ``scan_index``: optional ``(M,)`` integers; written as ``0..M-1``, ignored when reading, as
  are ``xcoords_start``/``ycoords_start`` and any other extra key.
- ``_metadata``: a pickled object in upstream files; it is skipped with a warning and never
  unpickled. Every member is loaded with ``allow_pickle=False``.

Values follow the NaN/infinity policy of :mod:`ptycho_engine.io.validation`, like every other
reader: a NaN or infinite diffraction pixel is set to 0 and marked in ``bad_pixels`` (the
format has no mask of its own; written files hold the zeros, not the mask); a pattern without
a finite value, and NaN or infinite positions, probe or object values, are errors.

Files are written uncompressed (``np.savez``): saving and loading stay fast, and noisy
float32 amplitudes gain little from deflate. Writes are atomic (a temporary file in the target
folder, then ``os.replace``) and never overwrite the file a data set was read from.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.data import DiffractionData
from ptycho_engine.errors import DataError
from ptycho_engine.io.files import atomic_write, check_readable_file, sha256_in_background, sniff
from ptycho_engine.io.npz import npz_member, open_npz
from ptycho_engine.io.validation import (
    SCAN_POINT,
    check_pattern_values,
    complex_image,
    finite_vector,
    nonfinite_step,
    pattern_stack_shape,
    require_usable_detector,
)

FORMAT_NAME = "pinn-npz"
DIFFRACTION_KEYS = ("diffraction", "diff3d")
SKIPPED_PICKLE_KEYS = ("_metadata",)
#: The layouts of ``diffraction`` the reader accepts, for the messages.
LAYOUTS = "(M, N, N) (or legacy (N, N, M), or (M, N, N, 1))"


def write_pinn_npz(path: str | os.PathLike[str], data: DiffractionData) -> Path:
    """Write a data set as a PINN-style NPZ file, atomically.

    Parameters
    ----------
    path : str or path-like
        Destination, used exactly as given (no ``.npz`` suffix is appended). Its folder must
        exist.
    data : DiffractionData
        The data set. Written keys: ``diffraction`` (M, N, N) float32 amplitudes,
        ``xcoords``/``ycoords`` (M,) float64 object pixels (x = ``positions_px[:, 1]``,
        y = ``positions_px[:, 0]``), ``scan_index`` (M,) int64 ``0..M-1``, and, when present,
        ``probeGuess`` (N, N) complex64 and ``objectGuess`` (H, W) complex64.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    DataError
        ``path`` is the file ``data`` was read from (``data.provenance["path"]``), a folder,
        or in a folder that does not exist.
    OSError
        The file system refused the write; no partial file is left behind.

    Notes
    -----
    Written with :func:`ptycho_engine.io.files.atomic_write`: a hidden temporary file in the
    destination folder, flushed to disk, then renamed over ``path``. An existing destination
    keeps its permission bits; a new file gets mode 0o644.
    """
    if not isinstance(data, DiffractionData):
        raise DataError(f"{path}: expected a DiffractionData to write, got {type(data).__name__}")
    positions = data.positions_px
    arrays: dict[str, np.ndarray] = {
        "diffraction": np.ascontiguousarray(data.amplitudes, dtype=np.float32),
        "xcoords": np.ascontiguousarray(positions[:, 1], dtype=np.float64),
        "ycoords": np.ascontiguousarray(positions[:, 0], dtype=np.float64),
        "scan_index": np.arange(data.n_patterns, dtype=np.int64),
    }
    if data.probe is not None:
        arrays["probeGuess"] = np.ascontiguousarray(data.probe, dtype=np.complex64)
    if data.object_gt is not None:
        arrays["objectGuess"] = np.ascontiguousarray(data.object_gt, dtype=np.complex64)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, allow_pickle=False, **arrays)

    source = data.provenance.get("path")
    inputs = () if source is None else (str(source),)
    return atomic_write(path, write, inputs=inputs, suffix=".npz")


def read_pinn_npz(path: str | os.PathLike[str]) -> DiffractionData:
    """Read a PINN-style NPZ file (see the module docstring for the layout).

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file.

    Returns
    -------
    DiffractionData
        ``amplitudes`` (M, N, N) float32, ``positions_px`` (M, 2) float64 ``(y, x)`` =
        ``(ycoords, xcoords)``, ``probe`` (N, N) complex64 or None, ``object_gt`` (H, W)
        complex64 or None, ``bad_pixels`` (N, N) bool where a diffraction pixel was NaN or
        infinite (else None), ``provenance`` = ``{"path", "format": "pinn-npz", "sha256"}``
        (sha256 of the file bytes, hex), plus ``"steps"`` when pixels were masked.

    Raises
    ------
    DataError
        With the file path, the key, what was expected and what was found: a missing file, a
        file that is not an NPZ (zip) archive, a missing key, a pickled (object) member, a
        wrong rank, non-square patterns, mismatched counts, empty arrays, a pattern without
        a finite value, NaN or infinite positions, probe or object values, negative or
        complex amplitudes, a probe of the wrong size.

    Warns
    -----
    UserWarning
        When a ``_metadata`` member is present (it is skipped, never unpickled).
    """
    file = check_readable_file(path, "a PINN-style .npz archive")
    src = str(file)
    kind = sniff(file)
    if kind == "npy":
        raise DataError(
            f"{src}: is a single .npy array, not an .npz archive with the keys "
            "'diffraction', 'xcoords', 'ycoords'"
        )
    if kind != "npz":
        raise DataError(
            f"{src}: not an NPZ archive: expected a zip file (starting with b'PK'), found a "
            f"{kind} file"
        )
    with sha256_in_background(file) as digest, open_npz(file, "PINN-style data") as archive:
        amplitudes, bad, coords, probe, obj = _read_members(archive, src)

    positions = np.stack([coords["ycoords"], coords["xcoords"]], axis=1)
    provenance: dict[str, Any] = {"path": src, "format": FORMAT_NAME, "sha256": digest()}
    if bad is not None:
        provenance["steps"] = [nonfinite_step(bad)]
    return DiffractionData(
        amplitudes, positions, probe=probe, object_gt=obj, bad_pixels=bad, provenance=provenance
    )


def _read_members(
    archive: Any, src: str
) -> tuple[
    np.ndarray, np.ndarray | None, dict[str, np.ndarray], np.ndarray | None, np.ndarray | None
]:
    """Read and validate the members of an open archive."""
    keys = list(archive.files)
    for key in SKIPPED_PICKLE_KEYS:
        if key in keys:
            warnings.warn(
                f"{src}: skipped member {key!r} (a pickled object in PtychoPINN files; "
                "it is never unpickled)",
                UserWarning,
                stacklevel=3,
            )
    diff_key = next((k for k in DIFFRACTION_KEYS if k in keys), None)
    if diff_key is None:
        raise DataError(
            f"{src}: missing key 'diffraction' (or 'diff3d'): expected (M, N, N) "
            f"amplitudes; found keys {keys}"
        )
    amplitudes, bad = _diffraction(npz_member(archive, diff_key, src), src, diff_key)
    m, n = amplitudes.shape[0], amplitudes.shape[1]
    coords: dict[str, np.ndarray] = {}
    for key in ("ycoords", "xcoords"):
        if key not in keys:
            raise DataError(
                f"{src}: missing key {key!r}: expected ({m},) scan positions in object "
                f"pixels; found keys {keys}"
            )
        raw = npz_member(archive, key, src)
        coords[key] = finite_vector(raw, src, key, "positions", length=m, rows=SCAN_POINT)
    probe = None
    if "probeGuess" in keys:
        probe = complex_image(npz_member(archive, "probeGuess", src), src, "probeGuess")
        if probe.shape != (n, n):
            raise DataError(
                f"{src}: key 'probeGuess' is {probe.shape[0]}x{probe.shape[1]} but the "
                f"patterns of {diff_key!r} are {n}x{n}; expected ({n}, {n})"
            )
    obj = None
    if "objectGuess" in keys:
        obj = complex_image(npz_member(archive, "objectGuess", src), src, "objectGuess")
    return amplitudes, bad, coords, probe, obj


def _diffraction(raw: np.ndarray, src: str, key: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate diffraction amplitudes: (M, N, N) float32 and the mask of non-finite pixels."""
    arr = raw
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[1] != arr.shape[2] and arr.shape[0] == arr.shape[1]:
        arr = np.moveaxis(arr, -1, 0)  # legacy (N, N, M)
    pattern_stack_shape(arr.shape, arr.dtype, src, key, layouts=LAYOUTS)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow -> inf -> bad pixel
        amplitudes = np.require(arr, dtype=np.float32, requirements=["C", "W"])
    bad = check_pattern_values(amplitudes, src, key, what="amplitudes")
    require_usable_detector(bad, src, key)
    return amplitudes, bad
