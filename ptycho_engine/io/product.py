"""Ptychodus product files (HDF5; formats.md input 3): probe, positions and object of a run.

Layout (ptychodus 1.x names; the names of older releases are written too and read as
fallbacks):

- root attributes ``name``, ``comments``, ``detector_object_distance_m``,
  ``probe_energy_eV`` (and ``photon_energy_eV``), ``probe_photon_count``, ``exposure_time_s``,
  ``mass_attenuation_m2_kg`` (and ``mass_attenuation_m2_per_kg``), ``tomography_angle_deg``,
  plus ``focus_object_distance_m``, ``tilt_angle_deg``, ``far_field``;
- ``probe_position_indexes`` (M,) int, ``probe_position_x_m``, ``probe_position_y_m`` (M,);
- ``probe`` ``(modes, H, W)`` complex64, attributes ``pixel_width_m``, ``pixel_height_m``;
- ``object`` ``(layers, H, W)`` complex64, attributes ``center_x_m``, ``center_y_m``,
  ``pixel_width_m``, ``pixel_height_m``; ``object_layer_spacing_m``;
- ``loss_epochs``, ``loss_values``.

Frames: ptychodus puts the object centre ``(center_x_m, center_y_m)`` at pixel
``((W-1)/2, (H-1)/2)``. So a position in metres maps to object pixels as
``x_px = (x_m - center_x_m) / pixel_width_m + (W - 1)/2`` (same for y), which is the frame of
``positions_px`` (pixel (0, 0) = centre of the first object pixel).

A product holds no diffraction patterns: it is a source of a probe, positions and an object,
never of training data. A NaN or infinite value in any of its datasets or numeric attributes
is refused (the NaN/infinity policy of :mod:`ptycho_engine.io.validation`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.errors import DataError
from ptycho_engine.io.files import atomic_write, check_readable_file, sha256_file, sniff
from ptycho_engine.io.hdf5 import h5_dataset, h5_read, open_hdf5
from ptycho_engine.io.validation import (
    SCAN_POINT,
    complex_modes,
    finite_scalar,
    finite_vector,
    positive_scalar,
)

FORMAT_NAME = "ptychodus-product"
REQUIRED = ("probe", "object", "probe_position_x_m", "probe_position_y_m")


def is_product(handle: Any) -> bool:
    """True when an open HDF5 file has the datasets of a ptychodus product."""
    try:
        return all(key in handle for key in REQUIRED)
    except (KeyError, OSError, ValueError, RuntimeError):
        return False


@dataclass(frozen=True, eq=False)
class Product:
    """The content of a ptychodus product.

    Attributes
    ----------
    probe : ndarray, (K, Hp, Wp) complex64
        Probe modes.
    probe_pixel_m : tuple of float
        ``(height, width)`` of a probe pixel in metres.
    object : ndarray, (L, H, W) complex64
        Object layers.
    object_pixel_m : tuple of float
        ``(height, width)`` of an object pixel in metres.
    object_center_m : tuple of float
        ``(y, x)`` of the object centre in metres.
    positions_px : ndarray, (M, 2) float64
        Probe positions ``(y, x)`` in object pixels (frame of ``object``).
    positions_m : ndarray, (M, 2) float64
        The same in metres, as stored.
    indexes : ndarray, (M,) int64
        ``probe_position_indexes``.
    metadata : dict
        Root attributes (names as in the module docstring, modern spellings).
    layer_spacing_m, loss_epochs, loss_values : ndarray
    provenance : dict
        ``path``, ``format``, ``sha256``.
    """

    probe: np.ndarray
    probe_pixel_m: tuple[float, float]
    object: np.ndarray
    object_pixel_m: tuple[float, float]
    object_center_m: tuple[float, float]
    positions_px: np.ndarray
    positions_m: np.ndarray
    indexes: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)
    layer_spacing_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    loss_epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    loss_values: np.ndarray = field(default_factory=lambda: np.zeros(0))
    provenance: dict[str, Any] = field(default_factory=dict)


_ATTRS: tuple[tuple[str, tuple[str, ...], Any], ...] = (
    ("name", ("name",), ""),
    ("comments", ("comments",), ""),
    ("detector_object_distance_m", ("detector_object_distance_m",), 0.0),
    ("probe_energy_eV", ("probe_energy_eV", "photon_energy_eV"), 0.0),
    ("probe_photon_count", ("probe_photon_count",), 0.0),
    ("exposure_time_s", ("exposure_time_s",), 0.0),
    ("mass_attenuation_m2_kg", ("mass_attenuation_m2_kg", "mass_attenuation_m2_per_kg"), 0.0),
    ("tomography_angle_deg", ("tomography_angle_deg",), 0.0),
    ("focus_object_distance_m", ("focus_object_distance_m",), 0.0),
    ("far_field", ("far_field",), True),
)


def write_product(
    path: str | os.PathLike[str],
    object: np.ndarray,
    probe: np.ndarray,
    positions_px: np.ndarray,
    pixel_size_m: float,
    *,
    name: str = "ptycho-engine",
    comments: str = "",
    detector_object_distance_m: float = 0.0,
    probe_energy_eV: float = 0.0,
    probe_photon_count: float = 0.0,
    exposure_time_s: float = 0.0,
    mass_attenuation_m2_kg: float = 0.0,
    tomography_angle_deg: float = 0.0,
    object_center_m: tuple[float, float] = (0.0, 0.0),
    probe_pixel_m: float | None = None,
    indexes: np.ndarray | None = None,
    layer_spacing_m: Sequence[float] = (),
    loss_epochs: Sequence[int] = (),
    loss_values: Sequence[float] = (),
    inputs: Sequence[str | os.PathLike[str] | None] = (),
) -> Path:
    """Write a ptychodus product, atomically.

    Parameters
    ----------
    path : str or path-like
        Destination (``.h5``); its folder must exist; never one of ``inputs``.
    object : ndarray, (H, W) or (L, H, W) complex
        Reconstructed (or true) object.
    probe : ndarray, (H, W) or (K, H, W) complex
        Probe (modes).
    positions_px : ndarray, (M, 2) float
        Probe positions ``(y, x)`` in pixels of ``object``.
    pixel_size_m : float
        Object pixel size in metres (> 0; ptychodus needs one even for dimensionless data).
    name, comments : str
    detector_object_distance_m, probe_energy_eV, probe_photon_count, exposure_time_s,
    mass_attenuation_m2_kg, tomography_angle_deg : float
        Root attributes (0 when unknown).
    object_center_m : tuple of float
        ``(y, x)`` of the object centre in metres.
    probe_pixel_m : float, optional
        Probe pixel size (default ``pixel_size_m``).
    indexes : ndarray, (M,) int, optional
        Default ``0..M-1``.
    layer_spacing_m : sequence of float
        ``L - 1`` spacings for a multislice object.
    loss_epochs, loss_values : sequence
        Training curve.
    inputs : sequence of paths
        Files the data came from (never overwritten).

    Returns
    -------
    Path
    """
    import h5py

    target = Path(path)
    obj = np.asarray(object)
    if obj.ndim == 2:
        obj = obj[None]
    prb = np.asarray(probe)
    if prb.ndim == 2:
        prb = prb[None]
    if obj.ndim != 3 or obj.size == 0:
        raise DataError(f"{target}: object must be (H, W) or (L, H, W), got {np.shape(object)}")
    if prb.ndim != 3 or prb.size == 0:
        raise DataError(f"{target}: probe must be (H, W) or (K, H, W), got {np.shape(probe)}")
    pos = np.asarray(positions_px, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 2 or not np.all(np.isfinite(pos)):
        raise DataError(f"{target}: positions_px must be finite (M, 2), got {pos.shape}")
    if not (math.isfinite(pixel_size_m) and pixel_size_m > 0):
        raise DataError(f"{target}: pixel_size_m must be a positive number, got {pixel_size_m!r}")
    h, w = obj.shape[1:]
    cy, cx = object_center_m
    x_m = cx + (pos[:, 1] - (w - 1) / 2) * pixel_size_m
    y_m = cy + (pos[:, 0] - (h - 1) / 2) * pixel_size_m
    idx = np.arange(pos.shape[0], dtype=np.int64) if indexes is None else np.asarray(indexes)
    probe_px = pixel_size_m if probe_pixel_m is None else probe_pixel_m
    attrs = {
        "name": name,
        "comments": comments,
        "detector_object_distance_m": float(detector_object_distance_m),
        "probe_energy_eV": float(probe_energy_eV),
        "photon_energy_eV": float(probe_energy_eV),
        "probe_photon_count": float(probe_photon_count),
        "exposure_time_s": float(exposure_time_s),
        "mass_attenuation_m2_kg": float(mass_attenuation_m2_kg),
        "mass_attenuation_m2_per_kg": float(mass_attenuation_m2_kg),
        "tomography_angle_deg": float(tomography_angle_deg),
        "focus_object_distance_m": 0.0,
        "tilt_angle_deg": 0.0,
        "far_field": True,
    }

    def write(tmp: Path) -> None:
        with h5py.File(tmp, "w") as out:
            for key, value in attrs.items():
                out.attrs[key] = value
            out.create_dataset("probe_position_indexes", data=idx.astype(np.int64))
            out.create_dataset("probe_position_x_m", data=x_m)
            out.create_dataset("probe_position_y_m", data=y_m)
            ds = out.create_dataset("probe", data=prb.astype(np.complex64))
            ds.attrs["pixel_width_m"] = float(probe_px)
            ds.attrs["pixel_height_m"] = float(probe_px)
            ds = out.create_dataset("object", data=obj.astype(np.complex64))
            ds.attrs["center_x_m"] = float(cx)
            ds.attrs["center_y_m"] = float(cy)
            ds.attrs["pixel_width_m"] = float(pixel_size_m)
            ds.attrs["pixel_height_m"] = float(pixel_size_m)
            out.create_dataset(
                "object_layer_spacing_m", data=np.asarray(layer_spacing_m, dtype=np.float64)
            )
            out.create_dataset("loss_epochs", data=np.asarray(loss_epochs, dtype=np.int64))
            out.create_dataset("loss_values", data=np.asarray(loss_values, dtype=np.float64))

    return atomic_write(target, write, inputs=tuple(inputs), suffix=".h5")


def read_product(path: str | os.PathLike[str]) -> Product:
    """Read a ptychodus product (see the module docstring).

    Returns
    -------
    Product

    Raises
    ------
    DataError
        Missing file, not HDF5, missing datasets or attributes, wrong shapes, counts that do
        not match, non-finite values, non-positive pixel sizes.
    """
    file = check_readable_file(path, "a ptychodus product (HDF5)")
    src = str(file)
    kind = sniff(file)
    if kind != "hdf5":
        raise DataError(f"{src}: expected a ptychodus product (HDF5), found a {kind} file")
    digest = sha256_file(file)
    with open_hdf5(file, "a ptychodus product") as handle:
        arrays: dict[str, Any] = {}
        for key in REQUIRED:
            dataset = h5_dataset(handle, key, src)
            if dataset is None:
                raise DataError(
                    f"{src}: missing dataset {key!r}: not a ptychodus product (expected "
                    f"{', '.join(REQUIRED)})"
                )
            arrays[key] = dataset
        probe = complex_modes(h5_read(arrays["probe"], src, "probe"), src, "probe")
        obj = complex_modes(h5_read(arrays["object"], src, "object"), src, "object")
        probe_px = _pixel(arrays["probe"], src, "probe", None)
        obj_px = _pixel(arrays["object"], src, "object", None)
        if probe_px is None:
            probe_px = obj_px
        if obj_px is None:
            raise DataError(
                f"{src}: dataset 'object' lacks the attributes 'pixel_width_m' and 'pixel_height_m'"
            )
        assert probe_px is not None
        center = []
        for name in ("center_y_m", "center_x_m"):
            value = arrays["object"].attrs.get(name, 0.0)
            center.append(finite_scalar(value, src, f"object@{name}", "m"))
        xs = _positions(arrays["probe_position_x_m"], src, "probe_position_x_m")
        ys = _positions(arrays["probe_position_y_m"], src, "probe_position_y_m")
        if xs.shape != ys.shape:
            raise DataError(
                f"{src}: 'probe_position_x_m' has {xs.shape[0]} positions but "
                f"'probe_position_y_m' has {ys.shape[0]}"
            )
        idx_ds = h5_dataset(handle, "probe_position_indexes", src)
        if idx_ds is None:
            indexes = np.arange(xs.shape[0], dtype=np.int64)
        else:
            key = "probe_position_indexes"
            indexes = finite_vector(h5_read(idx_ds, src, key), src, key, "indexes")
            if indexes.shape != xs.shape:
                raise DataError(
                    f"{src}: 'probe_position_indexes' has {indexes.shape[0]} entries but there "
                    f"are {xs.shape[0]} positions"
                )
            indexes = indexes.astype(np.int64)
        metadata: dict[str, Any] = {}
        for key, names, default in _ATTRS:
            metadata[key] = default
            for candidate in names:
                if candidate in handle.attrs:
                    metadata[key] = _attr(handle.attrs[candidate], default)
                    break
        extras = {}
        for key in ("object_layer_spacing_m", "loss_epochs", "loss_values"):
            dataset = h5_dataset(handle, key, src)
            extras[key] = (
                np.zeros(0)
                if dataset is None
                else finite_vector(h5_read(dataset, src, key), src, key, "values")
            )
    h, w = obj.shape[1:]
    positions_m = np.stack([ys, xs], axis=1)
    positions_px = np.stack(
        [
            (ys - center[0]) / obj_px[0] + (h - 1) / 2,
            (xs - center[1]) / obj_px[1] + (w - 1) / 2,
        ],
        axis=1,
    )
    return Product(
        probe=probe,
        probe_pixel_m=probe_px,
        object=obj,
        object_pixel_m=obj_px,
        object_center_m=(center[0], center[1]),
        positions_px=positions_px,
        positions_m=positions_m,
        indexes=indexes,
        metadata=metadata,
        layer_spacing_m=extras["object_layer_spacing_m"],
        loss_epochs=extras["loss_epochs"].astype(np.int64),
        loss_values=extras["loss_values"],
        provenance={"path": src, "format": FORMAT_NAME, "sha256": digest},
    )


def _attr(value: Any, default: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(default, str):
        return str(value)
    if isinstance(default, bool):
        return bool(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _positions(dataset: Any, src: str, key: str) -> np.ndarray:
    return finite_vector(h5_read(dataset, src, key), src, key, "positions", rows=SCAN_POINT)


def _pixel(dataset: Any, src: str, key: str, default: Any) -> tuple[float, float] | None:
    attrs = dataset.attrs
    if "pixel_width_m" not in attrs and "pixel_height_m" not in attrs:
        return default
    sizes = []
    for name in ("pixel_height_m", "pixel_width_m"):
        other = "pixel_width_m" if name == "pixel_height_m" else "pixel_height_m"
        sizes.append(positive_scalar(attrs.get(name, attrs.get(other)), src, f"{key}@{name}", "m"))
    return sizes[0], sizes[1]
