"""Readers and writers of diffraction data files; each returns or takes a ``DiffractionData``.

Entry points: :func:`read_data` (format chosen from the file's content), :func:`inspect_file`,
:func:`prepare` (crop/bin to N, origin, mask, geometry), the writers :func:`write_pinn_npz`,
:func:`write_cxi`, :func:`write_product`, :func:`write_tiff`, :func:`write_png`, and the
probe and product readers. Nothing here imports TensorFlow.

NaN and infinity, the same in every reader and in :func:`prepare` (implemented once, in
:mod:`ptycho_engine.io.validation`):

- a NaN or infinite diffraction pixel is a bad detector pixel: it is set to 0, marked in
  ``bad_pixels`` and counted in ``provenance["steps"]``; a pattern without a finite value, or
  a detector whose every pixel is non-finite in some pattern, raises ``DataError``;
- NaN or infinite scan positions, probe or object values, pixel sizes or geometry raise
  ``DataError`` naming the file and the key (or dataset path).

Modules: one per format (``pinn_npz``, ``cxi``, ``product``, ``profile``, ``probe``,
``images``), the registry, ``prepare``, and the shared helpers ``files`` (readable files,
sniffing, sha256, atomic writes), ``npz``, ``hdf5``, ``validation``, ``pattern_stack`` (the
threaded pattern reader) and ``geometry``.
"""

from __future__ import annotations

from ptycho_engine.io.cxi import read_cxi, read_cxi_image, write_cxi
from ptycho_engine.io.images import write_png, write_tiff
from ptycho_engine.io.pinn_npz import read_pinn_npz, write_pinn_npz
from ptycho_engine.io.prepare import center_patterns, detect_origin, fourier_resample, prepare
from ptycho_engine.io.probe import ProbeData, read_probe, write_probe
from ptycho_engine.io.product import Product, read_product, write_product
from ptycho_engine.io.profile import (
    MappingProfile,
    load_profile,
    read_with_profile,
    save_profile,
)
from ptycho_engine.io.registry import detect_format, inspect_file, read_data

__all__ = [
    "MappingProfile",
    "ProbeData",
    "Product",
    "center_patterns",
    "detect_format",
    "detect_origin",
    "fourier_resample",
    "inspect_file",
    "load_profile",
    "prepare",
    "read_cxi",
    "read_cxi_image",
    "read_data",
    "read_pinn_npz",
    "read_probe",
    "read_product",
    "read_with_profile",
    "save_profile",
    "write_cxi",
    "write_pinn_npz",
    "write_png",
    "write_probe",
    "write_product",
    "write_tiff",
]
