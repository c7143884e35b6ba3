"""What a run is: one frozen description, built by one recipe with one set of defaults.

A :class:`RunSpec` holds everything that decides a run's result besides the data themselves:
the preparation of the patterns (crop or bin to ``N``, geometry overrides), the reconstructor
and its configuration (model, training, grouping), the probe source and the stitching window.
Every front end (the command line, the study runner, the app's worker) makes its spec with
:func:`recipe`, so the same settings give the same run everywhere. The defaults live in the
engine's config dataclasses (:mod:`ptycho_engine.config`) and here, nowhere else.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Self

from ptycho_engine.config import DataConfig, ModelConfig, TrainingConfig
from ptycho_engine.errors import ConfigError
from ptycho_engine.io.prepare import MODES as PREPARATION_MODES
from ptycho_engine.solvers.config import SolverConfig
from ptycho_engine.stitching import DEFAULT_REMOVE_GRID, DEFAULT_WINDOW, WINDOWS

#: Loss name -> ``(nll_weight, mae_weight)`` of :class:`~ptycho_engine.config.TrainingConfig`.
LOSSES: dict[str, tuple[float, float]] = {"nll": (1.0, 0.0), "mae": (0.0, 1.0)}
#: Smallest learning-rate floor of the plateau schedule; a run whose initial rate is lower
#: uses its initial rate as the floor (the schedule then never lowers it).
MIN_LEARNING_RATE = 1e-5


def _fail(owner: str, name: str, value: Any, expected: str) -> None:
    raise ConfigError(f"{owner}.{name} = {value!r} is invalid: expected {expected}")


def _positive_or_none(owner: str, name: str, value: Any) -> None:
    if value is None:
        return
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        _fail(owner, name, value, "None or a finite number > 0")


@dataclass(frozen=True)
class DataSource:
    """A data file to read: its path and, for generic NPZ/HDF5 files, a mapping profile.

    Attributes
    ----------
    path : str
    profile : str
        JSON mapping profile (``""`` when the format is known from the file's content).
    propagation : str
        ``"far-field"`` or ``"near-field"`` when the file does not say (``""``: detected).
    focus_distance_m : float or None
        Focus-to-sample distance of a near-field cone beam (the Fresnel magnification).
    """

    path: str
    profile: str = ""
    propagation: str = ""
    focus_distance_m: float | None = None

    @property
    def options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`ptycho_engine.io.read_data` that are set."""
        out: dict[str, Any] = {}
        if self.propagation:
            out["propagation"] = self.propagation
        if self.focus_distance_m is not None:
            out["focus_distance_m"] = self.focus_distance_m
        return out

    def __post_init__(self) -> None:
        if self.propagation not in ("", "far-field", "near-field"):
            _fail("DataSource", "propagation", self.propagation, "'far-field' or 'near-field'")
        _positive_or_none("DataSource", "focus_distance_m", self.focus_distance_m)
        for name in ("path", "profile"):
            value = getattr(self, name)
            if not isinstance(value, str):
                object.__setattr__(self, name, "" if value is None else str(value))
        if not self.path:
            _fail("DataSource", "path", self.path, "the path of a data file")


@dataclass(frozen=True)
class Preparation:
    """How the patterns of a file are brought to the model's size (physics.md section 6).

    Attributes
    ----------
    N : int or None
        Pattern size wanted; None keeps the file's own size.
    mode : {"crop", "bin"}
        ``"crop"``: keep the central ``N x N`` detector pixels (the object pixel grows by
        ``N0 / N``, the field of view stays); ``"bin"``: sum ``B x B`` blocks with
        ``B = N0 / N`` (the object pixel stays, the field of view shrinks by ``B``).
    energy_ev, distance_m, detector_pixel_m : float or None
        Geometry that replaces (or fills in) the file's.
    """

    N: int | None = None
    mode: str = "crop"
    energy_ev: float | None = None
    distance_m: float | None = None
    detector_pixel_m: float | None = None

    def __post_init__(self) -> None:
        o = "Preparation"
        if self.N is not None and (not isinstance(self.N, int) or isinstance(self.N, bool)):
            _fail(o, "N", self.N, "None or an integer")
        if self.mode not in PREPARATION_MODES:
            _fail(o, "mode", self.mode, f"one of {PREPARATION_MODES}")
        for name in ("energy_ev", "distance_m", "detector_pixel_m"):
            _positive_or_none(o, name, getattr(self, name))

    @property
    def overrides(self) -> dict[str, float]:
        """The geometry overrides that are set, as keyword arguments of ``io.prepare``."""
        names = ("energy_ev", "distance_m", "detector_pixel_m")
        return {k: float(getattr(self, k)) for k in names if getattr(self, k) is not None}


@dataclass(frozen=True)
class RunSpec:
    """One run, as every front end describes it.

    Attributes
    ----------
    model : ModelConfig
    training : TrainingConfig
    grouping : DataConfig
    preparation : Preparation
    reconstructor : str
        Name of the reconstructor (:func:`ptycho_engine.pipeline.reconstructor_names`).
    probe_path : str
        Probe file that replaces the data's probe; ``""`` uses the data's probe with all its
        incoherent modes.
    probe_resample : bool
        Fourier-resample a probe file that does not fit ``N`` (same field of view; to the
        data's object pixel when both the probe file and the data give one) instead of
        refusing it (:func:`ptycho_engine.io.read_probe` with ``resample=True``).
    stitch_window : {"support", "probe"}
        Stitching weight of the network's images, previews and final reconstruction alike
        (default :data:`ptycho_engine.stitching.DEFAULT_WINDOW`).
    remove_grid_pattern : bool
        Divide the scan grid's pattern (the seams of a raster scan) out of the network's
        finished images, previews and final reconstruction alike
        (:func:`ptycho_engine.grid_pattern.remove_grid_pattern`). A stored spec without the
        field was run before there was one: it reads as False.
    score_epochs : tuple of int
        Epochs after which the model is also stitched and scored against the ground truth
        (when the data have one), besides those of ``training.preview_every``; the scores go
        to the history. Scoring only reads the model: the training is the same either way.
    solver : SolverConfig
        Settings of the iterative reconstructors (``"rpie"``, ``"lsqml"``); the network's are
        ``model``, ``training`` and ``grouping``.

    The network needs the patterns prepared to its ``model.N``; an iterative solver takes any
    size (``preparation.N`` None keeps the file's).
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    grouping: DataConfig = field(default_factory=DataConfig)
    preparation: Preparation = field(default_factory=Preparation)
    reconstructor: str = "pinn"
    probe_path: str = ""
    stitch_window: str = DEFAULT_WINDOW
    remove_grid_pattern: bool = DEFAULT_REMOVE_GRID
    score_epochs: tuple[int, ...] = ()
    solver: SolverConfig = field(default_factory=SolverConfig)
    probe_resample: bool = False

    def __post_init__(self) -> None:
        o = "RunSpec"
        for name, kind in (
            ("model", ModelConfig),
            ("training", TrainingConfig),
            ("grouping", DataConfig),
            ("preparation", Preparation),
            ("solver", SolverConfig),
        ):
            if not isinstance(getattr(self, name), kind):
                _fail(o, name, getattr(self, name), f"a {kind.__name__}")
        if not isinstance(self.reconstructor, str) or not self.reconstructor:
            _fail(o, "reconstructor", self.reconstructor, "a reconstructor name")
        if not isinstance(self.probe_path, str):
            _fail(o, "probe_path", self.probe_path, "a path string ('' for the data's probe)")
        if not isinstance(self.probe_resample, bool):
            _fail(o, "probe_resample", self.probe_resample, "True or False")
        if self.stitch_window not in WINDOWS:
            _fail(o, "stitch_window", self.stitch_window, f"one of {WINDOWS}")
        if not isinstance(self.remove_grid_pattern, bool):
            _fail(o, "remove_grid_pattern", self.remove_grid_pattern, "True or False")
        epochs = tuple(self.score_epochs)
        if any(not isinstance(e, int) or isinstance(e, bool) or e < 1 for e in epochs):
            _fail(o, "score_epochs", self.score_epochs, "epochs (integers >= 1)")
        object.__setattr__(self, "score_epochs", tuple(sorted(set(epochs))))
        if self.reconstructor != "pinn":
            return  # the solvers take the patterns at any size
        if self.preparation.N is None:
            object.__setattr__(
                self, "preparation", dataclasses.replace(self.preparation, N=self.model.N)
            )
        elif self.preparation.N != self.model.N:
            _fail(
                o,
                "preparation",
                self.preparation,
                f"patterns prepared to the model's N = {self.model.N}",
            )

    def replace(self, **changes: Any) -> RunSpec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON primitives."""
        return {
            "reconstructor": self.reconstructor,
            "model_config": self.model.to_dict(),
            "training_config": self.training.to_dict(),
            "data_config": self.grouping.to_dict(),
            "preparation": dataclasses.asdict(self.preparation),
            "probe_path": self.probe_path,
            "probe_resample": self.probe_resample,
            "stitch_window": self.stitch_window,
            "remove_grid_pattern": self.remove_grid_pattern,
            "score_epochs": list(self.score_epochs),
            "solver_config": self.solver.to_dict(),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; unknown or missing fields raise :class:`ConfigError`."""
        known = {
            "reconstructor",
            "model_config",
            "training_config",
            "data_config",
            "preparation",
            "probe_path",
            "probe_resample",
            "stitch_window",
            "remove_grid_pattern",
            "score_epochs",
            "solver_config",
        }
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"RunSpec: unknown field(s) {unknown}; known: {sorted(known)}")
        try:
            return cls(
                model=ModelConfig.from_dict(values["model_config"]),
                training=TrainingConfig.from_dict(values["training_config"]),
                grouping=DataConfig.from_dict(values["data_config"]),
                preparation=Preparation(**values.get("preparation", {})),
                reconstructor=values.get("reconstructor", "pinn"),
                probe_path=values.get("probe_path", ""),
                probe_resample=values.get("probe_resample", False),
                # a run written before the key was recorded used the flat support
                stitch_window=values.get("stitch_window", "support"),
                # ... and a run written before this key divided no grid pattern out
                remove_grid_pattern=values.get("remove_grid_pattern", False),
                score_epochs=tuple(values.get("score_epochs", ())),
                solver=SolverConfig.from_dict(values.get("solver_config", {})),
            )
        except KeyError as exc:
            raise ConfigError(f"RunSpec: missing field {exc}") from exc
        except TypeError as exc:
            raise ConfigError(f"RunSpec: {exc}") from exc

    def label(self) -> str:
        """A short description, e.g. ``"pinn N=64 crop g=2 f=2 30 ep"`` or
        ``"rpie N=64 100 it"``."""
        if self.reconstructor != "pinn":
            n = self.preparation.N
            return f"{self.reconstructor} N={n if n else 'file'} {self.solver.iterations} it"
        m = self.model
        return (
            f"{self.reconstructor} N={m.N} {self.preparation.mode} g={m.gridsize} "
            f"f={m.n_filters_scale} {self.training.epochs} ep"
        )


def recipe(
    N: int | None = ModelConfig.N,
    gridsize: int = ModelConfig.gridsize,
    epochs: int = TrainingConfig.epochs,
    *,
    loss: str | None = None,
    seed: int = 0,
    preparation: str = "crop",
    energy_ev: float | None = None,
    distance_m: float | None = None,
    detector_pixel_m: float | None = None,
    reconstructor: str = "pinn",
    probe_path: str = "",
    probe_resample: bool = False,
    stitch_window: str = DEFAULT_WINDOW,
    remove_grid_pattern: bool = DEFAULT_REMOVE_GRID,
    score_epochs: tuple[int, ...] = (),
    solver: dict[str, Any] | SolverConfig | None = None,
    **options: Any,
) -> RunSpec:
    """The run every front end makes for these settings.

    Parameters
    ----------
    N, gridsize, epochs : int
        Pattern size, group side and training epochs.
    loss : {"nll", "mae"}, optional
        Shorthand for ``nll_weight`` and ``mae_weight`` (:data:`LOSSES`); default: the
        weights of :class:`TrainingConfig` (or the ones given in ``options``).
    seed : int
        Seed of the weights, the shuffling and the group draw.
    preparation : {"crop", "bin"}
        How larger patterns reach ``N`` (:class:`Preparation`).
    energy_ev, distance_m, detector_pixel_m : float, optional
        Geometry overrides.
    reconstructor, probe_path, probe_resample, stitch_window, remove_grid_pattern, score_epochs
        See :class:`RunSpec`. For an iterative reconstructor, ``N`` None keeps the file's
        pattern size.
    solver : dict or SolverConfig, optional
        Settings of the iterative solvers (fields of :class:`SolverConfig`; None values mean
        the default).
    **options
        Any field of :class:`ModelConfig`, :class:`TrainingConfig` or :class:`DataConfig`
        (``n_filters_scale``, ``batch_size``, ``learning_rate``, ``mae_warmup_epochs``,
        ``auto_probe_scale``, ``n_groups``, ``validation_fraction``...). None means "the
        default". An unknown name raises :class:`ConfigError`.

    Notes
    -----
    The defaults that are not a config field's own default are made here: the learning-rate
    floor is ``min(MIN_LEARNING_RATE, learning_rate)``, and the loss shorthand. The MAE
    warm-up default is :attr:`TrainingConfig.warmup_epochs` (a rule of the epochs).
    """
    given = {k: v for k, v in options.items() if v is not None}
    model_names = {f.name for f in dataclasses.fields(ModelConfig)}
    training_names = {f.name for f in dataclasses.fields(TrainingConfig)}
    data_names = {f.name for f in dataclasses.fields(DataConfig)}
    unknown = sorted(set(given) - model_names - training_names - data_names)
    if unknown:
        raise ConfigError(f"recipe: unknown setting(s) {unknown}")
    if loss is not None:
        if loss not in LOSSES:
            _fail("recipe", "loss", loss, f"one of {tuple(LOSSES)}")
        given.setdefault("nll_weight", LOSSES[loss][0])
        given.setdefault("mae_weight", LOSSES[loss][1])
    training_kw = {k: v for k, v in given.items() if k in training_names}
    training_kw.setdefault("seed", seed)
    rate = float(training_kw.get("learning_rate", TrainingConfig.learning_rate))
    training_kw.setdefault("min_learning_rate", min(MIN_LEARNING_RATE, rate))
    data_kw = {k: v for k, v in given.items() if k in data_names and k not in training_names}
    data_kw.setdefault("seed", seed)
    model_kw = {k: v for k, v in given.items() if k in model_names}
    if isinstance(solver, SolverConfig):
        solver_config = solver
    else:
        solver_config = SolverConfig(**{k: v for k, v in (solver or {}).items() if v is not None})
    network_n = N if N is not None else ModelConfig.N
    return RunSpec(
        model=ModelConfig(N=network_n, gridsize=gridsize, **model_kw),
        training=TrainingConfig(epochs=epochs, **training_kw),
        grouping=DataConfig(**data_kw),
        preparation=Preparation(
            N=N,
            mode=preparation,
            energy_ev=energy_ev,
            distance_m=distance_m,
            detector_pixel_m=detector_pixel_m,
        ),
        reconstructor=reconstructor,
        probe_path=probe_path,
        probe_resample=probe_resample,
        stitch_window=stitch_window,
        remove_grid_pattern=remove_grid_pattern,
        score_epochs=score_epochs,
        solver=solver_config,
    )
