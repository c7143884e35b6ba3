"""Readers and writers of diffraction data files; each returns or takes a ``DiffractionData``."""

from __future__ import annotations

from ptycho_engine.io.pinn_npz import read_pinn_npz, write_pinn_npz

__all__ = ["read_pinn_npz", "write_pinn_npz"]
