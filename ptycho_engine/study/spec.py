"""What a study is: the :class:`StudySpec` (sweeps and fixed settings), its validation, the
:class:`StudySetting` points it holds, the losses it may sweep and the label of a dose.

A spec is validated in ``__post_init__`` with messages that name the field and the value; the
fixed settings are checked once more by the engine's own configs (:func:`~ptycho_engine.study.
runner.configs`), so a spec that builds is one the engine can run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from ptycho_engine.config import (
    SUPPORTED_GRIDSIZE,
    SUPPORTED_N,
    VALIDATIONS,
    DataConfig,
    ModelConfig,
)
from ptycho_engine.errors import ConfigError
from ptycho_engine.pipeline.spec import LOSSES as PIPELINE_LOSSES

#: Version of the study folder layout and of the setting key (part of every setting id).
STUDY_FORMAT = 1
#: Loss name -> (nll_weight, mae_weight) of :class:`~ptycho_engine.config.TrainingConfig`.
#: Iterative solvers a study can sweep besides the network (``"pinn"``).
SOLVERS = ("rpie", "lsqml")
ALGORITHMS = ("pinn", *SOLVERS)
#: Loss name -> ``(nll_weight, mae_weight)``: the pipeline's one table.
LOSSES = PIPELINE_LOSSES


class StudyError(ConfigError):
    """A study cannot run as asked (a folder holding another study, a missing package...)."""


def dose_label(photons: float) -> str:
    """The label of a dose everywhere (setting ids, figures, the app, the command line).

    Three significant digits with a compact exponent: ``1e3`` for 1000, ``2.5e4``, ``500``,
    ``1e-5``. It is part of every setting id (:meth:`StudySetting.label`), so changing it
    changes the ids of existing study folders.

    Parameters
    ----------
    photons : float
        Mean counts per pattern.

    Returns
    -------
    str
    """
    text = f"{photons:.3g}"
    return text.replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def _fail(field_name: str, value: Any, expected: str) -> None:
    raise StudyError(f"StudySpec.{field_name} = {value!r} is invalid: expected {expected}")


def is_int(value: Any) -> bool:
    """True for a Python or numpy integer (not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _sweep(name: str, values: Any, check: Callable[[Any], bool], expected: str) -> tuple[Any, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        _fail(name, values, f"a list of {expected}")
    items = tuple(values)
    if not items:
        _fail(name, values, f"a non-empty list of {expected}")
    for item in items:
        if not check(item):
            _fail(name, values, f"a list of {expected} (bad item {item!r})")
    if len(set(items)) != len(items):
        _fail(name, values, f"a list of {expected} without repeats")
    return items


@dataclass(frozen=True)
class StudySetting:
    """One point of a study: what is swept, plus the seed.

    Attributes
    ----------
    N : int
        Pattern size in pixels.
    gridsize : int
        Group side ``g`` (``g * g`` positions per group).
    photons : float
        Mean counts per pattern (the dose).
    loss : str
        ``"nll"`` or ``"mae"`` (:data:`LOSSES`) for the network; for an iterative solver the
        solver's name (:data:`SOLVERS`: ``"rpie"``, ``"lsqml"``), with ``gridsize`` 0 (no
        groups).
    seed : int
        Seed of the object, scan, noise, weights, shuffling and groups.
    """

    N: int
    gridsize: int
    photons: float
    loss: str
    seed: int

    @property
    def algorithm(self) -> str:
        """``"pinn"``, or the iterative solver of the setting."""
        return self.loss if self.loss in SOLVERS else "pinn"

    def label(self) -> str:
        """Short human-readable name, e.g. ``"N32-g2-1e6-nll-s0"`` or ``"N64-1e6-rpie-s0"``."""
        if self.algorithm != "pinn":
            return f"N{self.N}-{dose_label(self.photons)}-{self.loss}-s{self.seed}"
        return f"N{self.N}-g{self.gridsize}-{dose_label(self.photons)}-{self.loss}-s{self.seed}"


def _dose_label(photons: float) -> str:
    text = f"{photons:.3g}"
    return text.replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


@dataclass(frozen=True)
class StudySpec:
    """What a study sweeps and the settings it holds fixed.

    Sweeps (lists; every combination is run): ``N``, ``gridsize``, ``photons``, ``loss`` and
    ``seeds``. Fixed: the rest.

    Attributes
    ----------
    N : tuple of int
        Pattern sizes, each one of ``SUPPORTED_N``.
    gridsize : tuple of int
        Group sides, each one of ``SUPPORTED_GRIDSIZE``.
    photons : tuple of float
        Mean counts per pattern (> 0), e.g. ``(1e3, 1e4, 1e6, 1e9)``.
    loss : tuple of str
        ``"nll"`` (``nll_weight`` 1, ``mae_weight`` 0) and/or ``"mae"`` (0, 1).
    seeds : tuple of int
        Seeds (>= 0); each has its own ground-truth object.
    epochs : int
        Training epochs per setting (>= 1).
    positions : int
        Scan positions per data set (>= 8).
    object_kind : str
        ``"lines"``, ``"siemens"`` or ``"file:PATH"`` (:func:`~ptycho_engine.simulate.make_object`).
    scan : str
        ``"spiral"``, ``"raster"`` or ``"random"``.
    probe_kind : str
        ``"disk"`` or ``"gaussian"``.
    n_filters_scale : int
        Network width multiplier (``ModelConfig.n_filters_scale``).
    two_decoders : bool
        Train the network with one full-width decoder per head
        (``ModelConfig.LEGACY_DECODER``, the default until 2026-12-04) instead of the engine's
        default decoder. A stored spec without this field was run so, and reads as True.
    validation : {"pixels", "groups"}
        What the validation loss is measured on (``DataConfig.validation``): held-out
        detector pixels (the engine's default since 2026-12-07) or held-out groups. A stored
        spec without this field was run with held-out groups, and reads as ``"groups"``.
    batch_size : int
        Groups per optimiser step.
    learning_rate : float
        Initial Adam learning rate.
    mae_warmup_epochs : int or None
        Epochs of MAE-only training before the chosen loss; None (default) is the engine's
        one warm-up rule (:attr:`ptycho_engine.config.TrainingConfig.warmup_epochs`: 3
        epochs, never more than a third of the run), as in the app and the command line.
    algorithms : tuple of str
        What reconstructs each data set: ``"pinn"`` (the network, swept over ``gridsize``
        and ``loss``) and/or iterative solvers (:data:`SOLVERS`), one setting per N, dose and
        seed, on the very same simulated patterns.
    iterations : int
        Iterations of the solvers (>= 1).
    """

    N: tuple[int, ...]
    gridsize: tuple[int, ...]
    photons: tuple[float, ...]
    loss: tuple[str, ...]
    seeds: tuple[int, ...]
    epochs: int = 30
    positions: int = 1000
    object_kind: str = "lines"
    scan: str = "spiral"
    probe_kind: str = "disk"
    n_filters_scale: int = ModelConfig.n_filters_scale
    two_decoders: bool = False
    validation: str = DataConfig.validation
    batch_size: int = 16
    learning_rate: float = 1e-3
    mae_warmup_epochs: int | None = None
    algorithms: tuple[str, ...] = ("pinn",)
    iterations: int = 100

    def __post_init__(self) -> None:
        from ptycho_engine.simulate import PROBE_KINDS, SCAN_KINDS
        from ptycho_engine.study.runner import configs  # runner imports this module

        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put(
            "N",
            tuple(
                int(v)
                for v in _sweep(
                    "N", self.N, lambda v: is_int(v) and v in SUPPORTED_N, f"N in {SUPPORTED_N}"
                )
            ),
        )
        put(
            "gridsize",
            tuple(
                int(v)
                for v in _sweep(
                    "gridsize",
                    self.gridsize,
                    lambda v: is_int(v) and v in SUPPORTED_GRIDSIZE,
                    f"gridsizes in {SUPPORTED_GRIDSIZE}",
                )
            ),
        )
        put(
            "photons",
            _sweep(
                "photons",
                tuple(
                    float(v) if isinstance(v, (int, float, np.number)) else v for v in self.photons
                )
                if isinstance(self.photons, Iterable) and not isinstance(self.photons, str)
                else self.photons,
                lambda v: isinstance(v, float) and math.isfinite(v) and v > 0,
                "finite numbers > 0",
            ),
        )
        put(
            "loss",
            _sweep("loss", self.loss, lambda v: v in LOSSES, f"losses in {tuple(LOSSES)}"),
        )
        put(
            "algorithms",
            _sweep(
                "algorithms",
                self.algorithms,
                lambda v: v in ALGORITHMS,
                f"reconstructors in {ALGORITHMS}",
            ),
        )
        put(
            "seeds",
            tuple(
                int(v)
                for v in _sweep(
                    "seeds", self.seeds, lambda v: is_int(v) and v >= 0, "integers >= 0"
                )
            ),
        )
        for name, low in (
            ("epochs", 1),
            ("positions", 8),
            ("n_filters_scale", 1),
            ("batch_size", 1),
            ("iterations", 1),
            ("mae_warmup_epochs", 0),
        ):
            value = getattr(self, name)
            if name == "mae_warmup_epochs" and value is None:
                continue
            if not is_int(value) or value < low:
                _fail(
                    name,
                    value,
                    f"an integer >= {low}" + (" or None" if name == "mae_warmup_epochs" else ""),
                )
            put(name, int(value))
        if (
            not isinstance(self.learning_rate, (int, float))
            or isinstance(self.learning_rate, bool)
            or not math.isfinite(self.learning_rate)
        ):
            _fail("learning_rate", self.learning_rate, "a number in (0, 1]")
        put("learning_rate", float(self.learning_rate))
        if not (
            self.object_kind in ("lines", "siemens")
            or (isinstance(self.object_kind, str) and self.object_kind.startswith("file:"))
        ):
            _fail("object_kind", self.object_kind, "'lines', 'siemens' or 'file:PATH'")
        if not isinstance(self.two_decoders, bool):
            _fail("two_decoders", self.two_decoders, "True or False")
        if self.validation not in VALIDATIONS:
            _fail("validation", self.validation, f"one of {VALIDATIONS}")
        if self.scan not in SCAN_KINDS:
            _fail("scan", self.scan, f"one of {SCAN_KINDS}")
        if self.probe_kind not in PROBE_KINDS:
            _fail("probe_kind", self.probe_kind, f"one of {PROBE_KINDS}")
        # Let the engine's own configs validate the fixed settings (n_filters_scale range,
        # learning rate, batch size) with their messages.
        for setting in self.settings()[:1]:
            configs(self, setting)

    def settings(self) -> list[StudySetting]:
        """Every setting, in the order of the results files: per N, the network's (gridsize,
        photons, loss, seed), then each solver's (photons, seed)."""
        out: list[StudySetting] = []
        for n in self.N:
            if "pinn" in self.algorithms:
                out.extend(
                    StudySetting(n, g, p, loss, s)
                    for g in self.gridsize
                    for p in self.photons
                    for loss in self.loss
                    for s in self.seeds
                )
            for solver in (a for a in self.algorithms if a != "pinn"):
                out.extend(
                    StudySetting(n, 0, p, solver, s) for p in self.photons for s in self.seeds
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON primitives (tuples become lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; unknown fields raise :class:`StudyError`; a dict
        without ``two_decoders`` (stored before it existed) reads it as True, one without
        ``validation`` as ``"groups"``."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise StudyError(f"StudySpec: unknown field(s) {unknown}; known: {sorted(names)}")
        # a spec stored before a field existed trained two full-width decoders and
        # validated on held-out groups
        return cls(**{"two_decoders": True, "validation": "groups", **values})
