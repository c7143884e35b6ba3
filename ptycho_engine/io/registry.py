"""Pick the reader of a file from its content and read it into a ``DiffractionData``.

Recognition uses the bytes and the keys, never the extension alone:

1. first bytes: HDF5 signature (at offset 0 or a power-of-two userblock), zip (NPZ), NPY,
   empty, text;
2. HDF5: a ptychodus product (``probe``, ``object``, ``probe_position_x_m``, ...) or CXI
   (``entry_1/data_1/data`` or ``entry_1/instrument_1/detector_1/data``);
3. NPZ: PINN-style (``diffraction`` or ``diff3d``) or the NPZ twin of a product;
4. with a mapping profile, any NPZ or HDF5 file is read through it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.data import DiffractionData
from ptycho_engine.errors import DataError
from ptycho_engine.io.files import check_readable_file, sniff
from ptycho_engine.io.hdf5 import open_hdf5
from ptycho_engine.io.npz import open_npz
from ptycho_engine.io.pattern_stack import ProgressCallback
from ptycho_engine.io.profile import MappingProfile

FORMATS = ("pinn-npz", "cxi", "ptychodus-product", "ptychodus-product-npz", "profile")
_PRODUCT_NPZ_KEYS = ("probe", "object", "probe_position_x_m", "probe_position_y_m")


def detect_format(path: str | os.PathLike[str], profile: Any = None) -> str:
    """Name the format of a file (one of ``FORMATS``) from its content.

    Raises
    ------
    DataError
        Missing, empty, text or unknown files, and NPZ/HDF5 files of no known layout (the
        message lists the keys found and suggests a mapping profile).
    """
    from ptycho_engine.io.cxi import is_cxi
    from ptycho_engine.io.product import is_product

    file = check_readable_file(path, "a diffraction data file (NPZ, CXI or HDF5)")
    src = str(file)
    kind = sniff(file)
    if kind == "text":
        raise DataError(
            f"{src}: is a text file, not NPZ or HDF5 (whatever its extension {file.suffix!r})"
        )
    if kind == "npy":
        raise DataError(
            f"{src}: is a single .npy array, not a data set; a probe can be read with read_probe"
        )
    if kind not in ("hdf5", "npz"):
        raise DataError(f"{src}: unknown file content (neither HDF5 nor an NPZ/zip archive)")
    if profile is not None:
        return "profile"
    if kind == "hdf5":
        with open_hdf5(file, "a CXI file or ptychodus product") as handle:
            if is_product(handle):
                return "ptychodus-product"
            if is_cxi(handle):
                return "cxi"
            try:
                keys = sorted(handle.keys())[:20]
            except (OSError, RuntimeError, KeyError) as exc:
                raise DataError(f"{src}: HDF5 file could not be listed (corrupt?): {exc}") from exc
        raise DataError(
            f"{src}: HDF5 file with neither CXI patterns ('entry_1/data_1/data') nor a ptychodus "
            f"product ('probe', 'object', positions); top-level keys {keys}: read it with a "
            "mapping profile"
        )
    with open_npz(file, "diffraction data") as archive:
        keys = list(archive.files)
    if "diffraction" in keys or "diff3d" in keys:
        return "pinn-npz"
    if all(k in keys for k in _PRODUCT_NPZ_KEYS):
        return "ptychodus-product-npz"
    raise DataError(
        f"{src}: NPZ archive without 'diffraction' (or 'diff3d'); found keys {keys[:20]}: read "
        "it with a mapping profile"
    )


def read_data(
    path: str | os.PathLike[str],
    profile: MappingProfile | dict[str, Any] | str | os.PathLike[str] | None = None,
    progress: ProgressCallback | None = None,
    **options: Any,
) -> DiffractionData:
    """Read any supported diffraction file (format chosen by :func:`detect_format`).

    Parameters
    ----------
    path : str or path-like
    profile : MappingProfile, dict or JSON path, optional
        Mapping profile for generic NPZ/HDF5 files.
    progress : callable, optional
        ``progress(done, total)`` while patterns are read.
    **options
        ``energy_ev``, ``distance_m``, ``detector_pixel_m``, ``propagation``
        (``"far-field"``/``"near-field"``), ``focus_distance_m`` (CXI and profile files).

    Returns
    -------
    DiffractionData
        Provenance holds ``path``, ``format``, ``sha256`` and ``steps``.

    Raises
    ------
    DataError
        Any malformed input, and product files (they hold no diffraction patterns).
    """
    allowed = {"energy_ev", "distance_m", "detector_pixel_m", "propagation", "focus_distance_m"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise DataError(f"read_data: unknown options {unknown}; allowed {sorted(allowed)}")
    fmt = detect_format(path, profile)
    src = str(Path(path))
    if fmt == "pinn-npz":
        from ptycho_engine.io.pinn_npz import read_pinn_npz

        if options:
            raise DataError(
                f"{src}: options {sorted(options)} do not apply to a PINN-style NPZ (positions "
                "are already in pixels); use prepare(...) for geometry overrides"
            )
        data = read_pinn_npz(path)
        if progress is not None:
            progress(data.n_patterns, data.n_patterns)
        provenance = dict(data.provenance)
        provenance.setdefault("steps", [])
        provenance.setdefault("positions_unit", "px")
        return data.replace(provenance=provenance)
    if fmt == "cxi":
        from ptycho_engine.io.cxi import read_cxi

        return read_cxi(path, progress, **options)
    if fmt == "profile":
        from ptycho_engine.io.profile import read_with_profile

        assert profile is not None
        return read_with_profile(path, profile, progress, **options)
    raise DataError(
        f"{src}: is a ptychodus product: it holds a probe, positions and an object but no "
        "diffraction patterns, so it cannot be used for training; use it as a probe source "
        "(read_probe) or as a positions/object source (read_product)"
    )


def inspect_file(
    path: str | os.PathLike[str],
    profile: MappingProfile | dict[str, Any] | str | os.PathLike[str] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Summarise a file for a person deciding how to use it.

    Returns
    -------
    dict
        ``format``, ``path``, ``sha256``, ``patterns`` (M), ``detector`` ([N, N]),
        ``positions_px`` ({min, max, span} as (y, x)), ``positions_unit``, ``probe`` (shape or
        None), ``mask`` (number of bad pixels or None), ``geometry`` (energy_ev, distance_m,
        detector_pixel_m, pixel_size_m), ``propagation``, ``counts_per_pattern``
        ({mean, min, max}), ``steps`` and ``warnings``. For a product: ``format``, ``probe``,
        ``object``, ``positions`` and ``warnings`` (it holds no patterns).
    """
    fmt = detect_format(path, profile)
    if fmt == "ptychodus-product":
        from ptycho_engine.io.product import read_product

        product = read_product(path)
        return {
            "format": fmt,
            "path": str(path),
            "sha256": product.provenance["sha256"],
            "patterns": 0,
            "probe": list(product.probe.shape),
            "object": list(product.object.shape),
            "positions": int(product.positions_px.shape[0]),
            "pixel_size_m": product.object_pixel_m[1],
            "warnings": [
                "a product holds no diffraction patterns: usable as a probe, "
                "positions and object source only"
            ],
        }
    if fmt == "ptychodus-product-npz":
        return {
            "format": fmt,
            "path": str(path),
            "patterns": 0,
            "warnings": ["a product holds no diffraction patterns"],
        }
    data = read_data(path, profile, None, **options)
    prov = data.provenance
    warnings: list[str] = list(prov.get("warnings", []))
    totals = np.array([float(np.sum(np.square(a, dtype=np.float64))) for a in data.amplitudes])
    pos = data.positions_px
    geometry = {
        "energy_ev": data.energy_ev,
        "distance_m": data.distance_m,
        "detector_pixel_m": data.detector_pixel_m,
        "pixel_size_m": data.pixel_size_m,
    }
    if None in (data.energy_ev, data.distance_m, data.detector_pixel_m):
        warnings.append("geometry incomplete: physical pixel size unknown (give overrides)")
    propagation = prov.get("propagation")
    if propagation and propagation.get("regime") == "near-field":
        warnings.append(
            "near-field (Fresnel) data: a far-field reconstruction refuses them "
            f"({propagation.get('source')})"
        )
    if data.bad_pixels is not None and data.bad_pixels.any():
        warnings.append(f"{int(data.bad_pixels.sum())} bad detector pixels")
    if totals.size and float(totals.min()) <= 0.0:
        warnings.append(f"{int(np.sum(totals <= 0))} patterns hold no counts")
    return {
        "format": prov.get("format"),
        "path": prov.get("path"),
        "sha256": prov.get("sha256"),
        "patterns": data.n_patterns,
        "detector": [data.N, data.N],
        "positions_px": {
            "min": pos.min(axis=0).tolist(),
            "max": pos.max(axis=0).tolist(),
            "span": (pos.max(axis=0) - pos.min(axis=0)).tolist(),
        },
        "positions_unit": prov.get("positions_unit"),
        "probe": None if data.probe is None else list(data.probe.shape),
        "object": None if data.object_gt is None else list(data.object_gt.shape),
        "mask": None if data.bad_pixels is None else int(data.bad_pixels.sum()),
        "geometry": geometry,
        "propagation": propagation,
        "counts_per_pattern": {
            "mean": float(totals.mean()),
            "min": float(totals.min()),
            "max": float(totals.max()),
        },
        "steps": list(prov.get("steps", [])),
        "warnings": warnings,
    }
