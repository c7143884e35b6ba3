"""Iterative ptychographic solvers on the engine's physics: rPIE and an LSQML-style batched
solver (numpy), with probe refinement, incoherent probe modes, position correction, and
far-field or near-field (Fresnel) propagation.

They follow physics.md (sections 1, 2 and 11): the same arrays, axes, signs, scan positions and
bilinear patch sampling as the network and the simulator, measured amplitudes ``sqrt(counts)``
and a probe at physical scale. They plug into the pipeline as the reconstructors ``"rpie"``
and ``"lsqml"`` (:mod:`ptycho_engine.solvers.reconstructor`). Nothing here imports TensorFlow.
"""

from __future__ import annotations

from ptycho_engine.solvers.config import NOISE_MODELS, SolverConfig

__all__ = ["NOISE_MODELS", "SolverConfig"]
