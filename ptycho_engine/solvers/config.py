"""Settings of the iterative solvers (frozen, validated, JSON round trip)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ptycho_engine.config import _Serialisable
from ptycho_engine.errors import ConfigError

NOISE_MODELS = ("gaussian", "poisson")


def _check(condition: bool, name: str, value: Any, expected: str) -> None:
    if not condition:
        raise ConfigError(f"SolverConfig.{name} = {value!r} is invalid: expected {expected}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class SolverConfig(_Serialisable):
    """How an iterative solver (rPIE, LSQML) runs.

    Attributes
    ----------
    iterations : int
        Passes over every scan position.
    batch_size : int or None
        Positions updated together from one estimate. rPIE: 1 is the sequential algorithm;
        None picks ``min(32, M // 8)`` (:func:`~ptycho_engine.solvers.updates.rpie_batch_size`).
        LSQML: None picks a tenth of the scan, at least 16.
    alpha_object, alpha_probe : float
        rPIE regularisation of the object and probe updates, in (0, 1]
        (Maiden et al. 2017; 1 gives ePIE's normalisation by the maximum). The object's 0.25,
        the top of the published range, keeps poorly lit edges from diverging when the
        starting probe is wrong (measured: from a Gaussian 1.5x too wide, 0.1 let the object
        grow to |O| = 11 and stalled at error 0.057; 0.25 converged to 0.0008 with the probe
        recovered, correlation 1.000).
    object_step, probe_step : float
        Scale of the rPIE updates (1 = the published algorithm).
    noise_model : {"gaussian", "poisson"}
        LSQML's likelihood: Gaussian noise on the amplitudes or Poisson counts.
    refine_probe : bool
        Refine the probe (started from the data's probe, a probe file or a default guess).
    probe_start : int
        First iteration that refines the probe (the object forms first).
    probe_modes : int or None
        Incoherent probe modes to reconstruct; None keeps the starting probe's. Extra modes
        start as weak perturbations of the first.
    refine_positions : bool
        Correct the scan positions.
    position_start : int
        First iteration that corrects positions.
    position_step : float
        Scale of the position update (the least-squares shift of each pattern).
    max_position_step_px : float
        Largest position change of one pattern in one iteration, in object pixels.
    preview_every : int
        Stitch and report the object every this many iterations (and at the end); 0: only at
        the end.
    seed : int
        Seed of the order in which positions are visited and of extra probe modes.
    """

    iterations: int = 100
    batch_size: int | None = None
    alpha_object: float = 0.25
    alpha_probe: float = 0.1
    object_step: float = 1.0
    probe_step: float = 1.0
    noise_model: str = "gaussian"
    refine_probe: bool = True
    probe_start: int = 5
    probe_modes: int | None = None
    refine_positions: bool = False
    position_start: int = 5
    position_step: float = 1.0
    max_position_step_px: float = 0.5
    preview_every: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        _check(
            _is_int(self.iterations) and self.iterations >= 0,
            "iterations",
            self.iterations,
            "an integer >= 0",
        )
        _check(
            self.batch_size is None or (_is_int(self.batch_size) and self.batch_size >= 1),
            "batch_size",
            self.batch_size,
            "None or an integer >= 1",
        )
        for name in ("alpha_object", "alpha_probe"):
            value = getattr(self, name)
            _check(_is_number(value) and 0 < value <= 1, name, value, "a number in (0, 1]")
        for name in ("object_step", "probe_step", "position_step", "max_position_step_px"):
            value = getattr(self, name)
            _check(_is_number(value) and value > 0, name, value, "a finite number > 0")
        _check(
            self.noise_model in NOISE_MODELS,
            "noise_model",
            self.noise_model,
            f"one of {NOISE_MODELS}",
        )
        for name in ("refine_probe", "refine_positions"):
            value = getattr(self, name)
            _check(isinstance(value, bool), name, value, "True or False")
        for name in ("probe_start", "position_start"):
            value = getattr(self, name)
            _check(_is_int(value) and value >= 1, name, value, "an integer >= 1")
        _check(
            self.probe_modes is None or (_is_int(self.probe_modes) and 1 <= self.probe_modes <= 8),
            "probe_modes",
            self.probe_modes,
            "None or an integer from 1 to 8",
        )
        _check(
            _is_int(self.preview_every) and self.preview_every >= 0,
            "preview_every",
            self.preview_every,
            "an integer >= 0",
        )
        _check(_is_int(self.seed) and self.seed >= 0, "seed", self.seed, "an integer >= 0")
