"""CXI files (HDF5, the Coherent X-ray Imaging format; formats.md input 2).

Layout read (the first path found wins):

- patterns: ``entry_1/data_1/data`` or ``entry_1/instrument_1/detector_1/data``, ``(M, H, W)``
  counts (any real dtype; gzip and the ``hdf5plugin`` filters open). Read lazily, in slices.
- positions: ``entry_1/sample_1/geometry_1/translation`` or ``entry_1/data_1/translation``,
  ``(M, 3)`` metres, columns ``(x, y, z)``. Object pixel row ``= +y / pixel``, column
  ``= +x / pixel`` (the mapping confirmed on the PETRA III P25 file of the third-party catalog).
- geometry: ``entry_1/instrument_1/detector_1/{distance, x_pixel_size, y_pixel_size}`` (m),
  ``entry_1/instrument_1/source_1/energy`` (J; a value above 1e-3 is taken as eV, with a
  warning) or ``.../wavelength`` (m).
- ``entry_1/instrument_1/detector_1/mask``: non-zero marks a bad pixel.
- optional probe ``entry_1/instrument_1/source_1/illumination`` (``(H, W)`` or modes first).
- optional ``entry_1/image_1/data``: a reconstruction; it becomes ``object_gt`` only when its
  attribute ``ground_truth`` is true (files written here from simulations).

Far field or near field: CXI has no field for it. It is declared by the caller
(``propagation=``) or detected from the scan: see
:func:`ptycho_engine.io.geometry.detect_propagation`. Near-field files open (object pixel
``dx / Mg`` with the Fresnel magnification from ``focus_distance_m``) and are marked
``provenance["propagation"]["regime"] == "near-field"``; far-field preparation refuses them.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.data import DiffractionData
from ptycho_engine.errors import DataError
from ptycho_engine.io.files import atomic_write, check_readable_file, sha256_in_background, sniff
from ptycho_engine.io.geometry import (
    ELECTRON_VOLT_J,
    energy_ev_from_wavelength,
    farfield_pixel_m,
    positions_from_metres,
    wavelength_m,
)
from ptycho_engine.io.hdf5 import h5_dataset, h5_read, h5_scalar, open_hdf5
from ptycho_engine.io.pattern_stack import ProgressCallback, read_pattern_stack
from ptycho_engine.io.prepare import center_patterns
from ptycho_engine.io.probe import strongest_mode
from ptycho_engine.io.validation import (
    bad_pixel_mask,
    complex_modes,
    merge_masks,
    nonfinite_step,
    positions_array,
)

FORMAT_NAME = "cxi"
DATA_PATHS = ("entry_1/data_1/data", "entry_1/instrument_1/detector_1/data")
TRANSLATION_PATHS = ("entry_1/sample_1/geometry_1/translation", "entry_1/data_1/translation")
DETECTOR = "entry_1/instrument_1/detector_1"
SOURCE = "entry_1/instrument_1/source_1"
IMAGE = "entry_1/image_1/data"


def is_cxi(handle: Any) -> bool:
    """True when an open HDF5 file has a CXI pattern dataset."""
    return any(_exists(handle, key) for key in DATA_PATHS)


def _exists(handle: Any, key: str) -> bool:
    try:
        return key in handle
    except (KeyError, OSError, ValueError, RuntimeError):
        return False


def read_cxi(
    path: str | os.PathLike[str],
    progress: ProgressCallback | None = None,
    *,
    energy_ev: float | None = None,
    distance_m: float | None = None,
    detector_pixel_m: float | None = None,
    propagation: str | None = None,
    focus_distance_m: float | None = None,
) -> DiffractionData:
    """Read a CXI file into centred amplitudes and object-pixel positions.

    Parameters
    ----------
    path : str or path-like
        The ``.cxi`` (HDF5) file.
    progress : callable, optional
        ``progress(done, total)`` while the patterns are read (``total`` = M).
    energy_ev, distance_m, detector_pixel_m : float, optional
        Overrides of the file's geometry (eV, m, m).
    propagation : {"far-field", "near-field"}, optional
        Declared regime; detected from the scan when omitted.
    focus_distance_m : float, optional
        Focus-to-sample distance of a near-field cone beam (not part of CXI).

    Returns
    -------
    DiffractionData
        ``amplitudes`` (M, N, N) float32 ``sqrt(counts)`` (corner-origin patterns are
        detected and centred), ``positions_px`` (M, 2) ``(y, x)``, ``bad_pixels`` from the
        mask and from non-finite pixels, geometry, ``probe`` (strongest illumination mode) when
        its size matches, and provenance ``{path, format: "cxi", sha256, steps, propagation,
        warnings}``.

    Raises
    ------
    DataError
        Missing file, not HDF5, no pattern dataset, missing positions or geometry, wrong
        ranks or counts, negative counts, NaN or infinite positions or probe values (the
        NaN/infinity policy of :mod:`ptycho_engine.io.validation`), corrupt data.
    """
    file = check_readable_file(path, "a CXI (HDF5) file")
    src = str(file)
    kind = sniff(file)
    if kind != "hdf5":
        raise DataError(f"{src}: expected a CXI file (HDF5), found a {kind} file")
    steps: list[str] = []
    notes: list[str] = []
    with sha256_in_background(file) as file_digest, open_hdf5(file, "a CXI file") as handle:
        data_key, data = _first_dataset(handle, DATA_PATHS, src)
        if data is None:
            raise DataError(
                f"{src}: missing dataset {DATA_PATHS[0]!r} (or {DATA_PATHS[1]!r}): expected "
                "(M, N, N) diffraction counts"
            )
        amplitudes, nonfinite = read_pattern_stack(
            data, src, data_key, intensities=True, progress=progress
        )
        steps.append(f"read {data_key} {tuple(data.shape)} {data.dtype} counts -> sqrt")
        m, n = amplitudes.shape[0], amplitudes.shape[1]
        t_key, t_data = _first_dataset(handle, TRANSLATION_PATHS, src)
        if t_data is None:
            raise DataError(
                f"{src}: missing dataset {TRANSLATION_PATHS[0]!r} (or {TRANSLATION_PATHS[1]!r}):"
                f" expected ({m}, 3) sample translations in metres"
            )
        translation = positions_array(h5_read(t_data, src, t_key), src, t_key, m)
        file_distance = h5_scalar(handle, f"{DETECTOR}/distance", src, "m")
        px_x = h5_scalar(handle, f"{DETECTOR}/x_pixel_size", src, "m")
        px_y = h5_scalar(handle, f"{DETECTOR}/y_pixel_size", src, "m")
        file_energy = _energy_ev(handle, src, notes)
        bad = _mask(handle, src, n)
        probe, probe_note = _illumination(handle, src, n)
        if probe_note:
            notes.append(probe_note)
        obj = _ground_truth(handle, src)

    if px_x is not None and px_y is not None and not math.isclose(px_x, px_y, rel_tol=1e-3):
        raise DataError(
            f"{src}: detector pixels are {px_x:g} x {px_y:g} m; only square pixels are supported"
        )
    file_pixel = px_x if px_x is not None else px_y
    energy = energy_ev if energy_ev is not None else file_energy
    distance = distance_m if distance_m is not None else file_distance
    det_pixel = detector_pixel_m if detector_pixel_m is not None else file_pixel
    missing = [
        name
        for name, value in (
            (f"{SOURCE}/energy (or wavelength)", energy),
            (f"{DETECTOR}/distance", distance),
            (f"{DETECTOR}/x_pixel_size", det_pixel),
        )
        if value is None
    ]
    if missing:
        raise DataError(
            f"{src}: positions are in metres but the geometry is incomplete: missing "
            f"{', '.join(missing)}; pass energy_ev, distance_m and detector_pixel_m"
        )
    assert energy is not None and distance is not None and det_pixel is not None
    for name, value, given in (
        ("energy_ev", energy, energy_ev),
        ("distance_m", distance, distance_m),
        ("detector_pixel_m", det_pixel, detector_pixel_m),
    ):
        if given is not None:
            steps.append(f"geometry override {name}={value:g}")
    positions_yx_m = translation[:, [1, 0]]
    positions, pixel, record, more = positions_from_metres(
        positions_yx_m,
        n,
        energy_ev=energy,
        distance_m=distance,
        detector_pixel_m=det_pixel,
        propagation=propagation,
        focus_distance_m=focus_distance_m,
        src=src,
    )
    notes.extend(more)
    steps.append(
        f"positions: translation (x, y) m -> (y, x) px with object pixel {pixel:.6g} m "
        f"({record['regime']}, {record['source']})"
    )
    if nonfinite is not None:
        bad = merge_masks(bad, nonfinite)
        steps.append(nonfinite_step(nonfinite))
    if record["regime"] == "far-field":
        amplitudes, bad, origin_step = center_patterns(amplitudes, bad, "auto")
        if origin_step:
            steps.append(origin_step)
    provenance: dict[str, Any] = {
        "path": src,
        "format": FORMAT_NAME,
        "sha256": file_digest(),
        "steps": steps,
        "propagation": record,
        "positions_unit": "m",
        "warnings": notes,
    }
    return DiffractionData(
        amplitudes,
        positions,
        probe=probe,
        object_gt=obj,
        bad_pixels=bad,
        pixel_size_m=pixel,
        energy_ev=energy,
        distance_m=distance,
        detector_pixel_m=det_pixel,
        provenance=provenance,
    )


def _first_dataset(handle: Any, keys: tuple[str, ...], src: str) -> tuple[str, Any]:
    for key in keys:
        dataset = h5_dataset(handle, key, src)
        if dataset is not None:
            return key, dataset
    return keys[0], None


def _energy_ev(handle: Any, src: str, notes: list[str]) -> float | None:
    energy = h5_scalar(handle, f"{SOURCE}/energy", src, "J")
    if energy is not None:
        if energy > 1e-3:
            notes.append(f"{src}: {SOURCE}/energy = {energy:g} is too large for joules; read as eV")
            return energy
        return energy / ELECTRON_VOLT_J
    wavelength = h5_scalar(handle, f"{SOURCE}/wavelength", src, "m")
    if wavelength is not None:
        return energy_ev_from_wavelength(wavelength)
    return None


def _mask(handle: Any, src: str, n: int) -> np.ndarray | None:
    key = f"{DETECTOR}/mask"
    dataset = h5_dataset(handle, key, src)
    if dataset is None:
        return None
    return bad_pixel_mask(h5_read(dataset, src, key), src, key, n)


def _illumination(handle: Any, src: str, n: int) -> tuple[np.ndarray | None, str]:
    key = f"{SOURCE}/illumination"
    dataset = h5_dataset(handle, key, src)
    if dataset is None:
        return None, ""
    modes = complex_modes(h5_read(dataset, src, key), src, key)
    if modes.shape[1:] != (n, n):
        return None, (
            f"{src}: {key!r} is {modes.shape[1]}x{modes.shape[2]} but the patterns are "
            f"{n}x{n}; the probe was not used (load it with read_probe and resample)"
        )
    probe, _, _ = strongest_mode(modes)
    return probe, ""


def _ground_truth(handle: Any, src: str) -> np.ndarray | None:
    dataset = h5_dataset(handle, IMAGE, src)
    if dataset is None or not bool(dataset.attrs.get("ground_truth", False)):
        return None
    modes = complex_modes(h5_read(dataset, src, IMAGE), src, IMAGE)
    return modes[0]


def write_cxi(
    path: str | os.PathLike[str],
    data: DiffractionData,
    *,
    reconstruction: np.ndarray | None = None,
    reconstruction_pixel_m: float | None = None,
    compression: str | None = None,
) -> Path:
    """Write a data set (and optionally a reconstruction) as a CXI file, atomically.

    Parameters
    ----------
    path : str or path-like
        Destination; never the file ``data`` was read from.
    data : DiffractionData
        Must carry ``energy_ev``, ``distance_m`` and ``detector_pixel_m``. Patterns are written
        as float32 counts ``amplitudes**2`` (centred) at
        ``entry_1/instrument_1/detector_1/data`` (``entry_1/data_1/data`` is a soft link);
        positions as translations ``(x, y, 0)`` = ``positions_px * pixel`` metres with the
        far-field pixel of the geometry; ``bad_pixels`` as the mask; the probe as
        ``source_1/illumination``.
    reconstruction : ndarray, (H, W) complex, optional
        Written to ``entry_1/image_1/data`` with ``x_pixel_size``/``y_pixel_size`` attributes.
        Without it, ``data.object_gt`` is written there with attribute ``ground_truth = 1``.
    reconstruction_pixel_m : float, optional
        Pixel size of ``reconstruction`` (default: the object pixel).
    compression : {None, "gzip"}
        Compression of the pattern dataset.

    Returns
    -------
    Path

    Raises
    ------
    DataError
        Missing geometry, a ``pixel_size_m`` that disagrees with it, or a bad destination.
    """
    import h5py

    target = Path(path)
    if data.energy_ev is None or data.distance_m is None or data.detector_pixel_m is None:
        raise DataError(
            f"{target}: a CXI file stores positions in metres: the data set needs energy_ev, "
            "distance_m and detector_pixel_m (set them with prepare(...) overrides or "
            "data.replace(...))"
        )
    pixel = farfield_pixel_m(data.energy_ev, data.distance_m, data.detector_pixel_m, data.N)
    if data.pixel_size_m is not None and not math.isclose(data.pixel_size_m, pixel, rel_tol=1e-6):
        raise DataError(
            f"{target}: pixel_size_m={data.pixel_size_m:g} m disagrees with the far-field pixel "
            f"{pixel:g} m of the geometry; CXI keeps only the geometry"
        )
    energy_j = float(data.energy_ev) * ELECTRON_VOLT_J
    wavelength = wavelength_m(float(data.energy_ev))
    translation = np.zeros((data.n_patterns, 3), dtype=np.float64)
    translation[:, 0] = data.positions_px[:, 1] * pixel
    translation[:, 1] = data.positions_px[:, 0] * pixel
    image = reconstruction
    truth = False
    if image is None and data.object_gt is not None:
        image, truth = data.object_gt, True

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as out:
            out.create_dataset("cxi_version", data=np.int64(160))
            out.create_dataset("number_of_entries", data=np.int64(1))
            detector = out.create_group(DETECTOR)
            detector.create_dataset(
                "data",
                data=np.square(data.amplitudes, dtype=np.float32),
                chunks=(1, data.N, data.N),
                compression=compression,
            )
            detector.create_dataset("distance", data=np.float64(data.distance_m))
            detector.create_dataset("x_pixel_size", data=np.float64(data.detector_pixel_m))
            detector.create_dataset("y_pixel_size", data=np.float64(data.detector_pixel_m))
            if data.bad_pixels is not None:
                detector.create_dataset("mask", data=data.bad_pixels.astype(np.uint32))
            source = out.create_group(SOURCE)
            source.create_dataset("energy", data=np.float64(energy_j))
            source.create_dataset("wavelength", data=np.float64(wavelength))
            if data.probe is not None:
                source.create_dataset("illumination", data=data.probe.astype(np.complex64))
            geometry = out.create_group("entry_1/sample_1/geometry_1")
            geometry.create_dataset("translation", data=translation)
            group = out.create_group("entry_1/data_1")
            group["data"] = h5py.SoftLink(f"/{DETECTOR}/data")
            group["translation"] = h5py.SoftLink("/entry_1/sample_1/geometry_1/translation")
            if image is not None:
                arr = np.asarray(image).astype(np.complex64)
                ds = out.create_dataset(IMAGE, data=arr)
                size = pixel if reconstruction_pixel_m is None else reconstruction_pixel_m
                ds.attrs["x_pixel_size"] = float(size)
                ds.attrs["y_pixel_size"] = float(size)
                ds.attrs["ground_truth"] = int(truth)

    return atomic_write(target, write, inputs=(data.provenance.get("path"),), suffix=".cxi")


def read_cxi_image(path: str | os.PathLike[str]) -> tuple[np.ndarray, float | None]:
    """Read the reconstruction at ``entry_1/image_1/data``.

    Returns
    -------
    image : ndarray, (H, W) complex64
    pixel_size_m : float or None
        From the ``x_pixel_size`` attribute when present.
    """
    file = check_readable_file(path, "a CXI (HDF5) file")
    src = str(file)
    with open_hdf5(file, "a CXI file") as handle:
        dataset = h5_dataset(handle, IMAGE, src)
        if dataset is None:
            raise DataError(f"{src}: missing dataset {IMAGE!r}: expected a reconstruction")
        image = complex_modes(h5_read(dataset, src, IMAGE), src, IMAGE)[0]
        size = dataset.attrs.get("x_pixel_size")
    return image, (float(size) if size is not None else None)


__all__ = ["is_cxi", "read_cxi", "read_cxi_image", "write_cxi"]
