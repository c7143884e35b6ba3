"""The settings of one run, as the GUI edits them (no Qt).

:class:`RunSettings` is frozen: every edit makes a new value through :meth:`RunSettings.replace`,
so the worker can hold on to the settings it runs while the user keeps editing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ptycho_engine.config import SUPPORTED_N, DataConfig, ModelConfig, TrainingConfig
from ptycho_engine.io.prepare import MODES as PREP_MODES
from ptycho_engine.pipeline import get_reconstructor, reconstructor_names
from ptycho_engine.pipeline.spec import RunSpec, recipe
from ptycho_engine.solvers.config import NOISE_MODELS, SolverConfig
from ptycho_engine.stitching import DEFAULT_REMOVE_GRID, DEFAULT_WINDOW

#: Geometry overrides of :class:`RunSettings` (the :class:`Preparation` fields of the same name).
GEOMETRY_FIELDS = ("energy_ev", "distance_m", "detector_pixel_m")
#: The reconstructor that trains a network; every other one is an iterative solver.
NETWORK = "pinn"
#: Settings of :class:`RunSettings` that are :class:`SolverConfig` fields (GUI name -> engine
#: name); the network's ``batch_size`` and ``preview_every`` keep their own fields.
SOLVER_FIELDS = {
    "iterations": "iterations",
    "solver_batch_size": "batch_size",
    "refine_probe": "refine_probe",
    "probe_modes": "probe_modes",
    "refine_positions": "refine_positions",
    "noise_model": "noise_model",
    "solver_preview_every": "preview_every",
}
#: Solvers whose likelihood the noise model chooses.
NOISE_MODEL_SOLVERS = ("lsqml",)


def valid_n_choices(detector_side: int) -> list[int]:
    """Powers of two from 32 to 256 not above the detector side (``[]`` if it is below 32)."""
    return [n for n in SUPPORTED_N if n <= detector_side]


def algorithm_title(name: str) -> str:
    """What menus show for the reconstructor ``name``, e.g. ``"rPIE (iterative)"``."""
    return get_reconstructor(name).title


def algorithm_name(name: str) -> str:
    """The short name of the reconstructor ``name`` for tables and labels (``"rPIE"``): its
    title up to the first parenthesis."""
    return algorithm_title(name).split(" (", 1)[0].strip()


def algorithm_choices() -> list[tuple[str, str]]:
    """``(name, title)`` of every registered reconstructor, in registration order."""
    return [(name, algorithm_title(name)) for name in reconstructor_names()]


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs besides the data.

    Attributes
    ----------
    algorithm : str
        Reconstructor name (:func:`ptycho_engine.pipeline.reconstructor_names`): ``"pinn"``
        trains the network; ``"rpie"`` and ``"lsqml"`` are iterative solvers.
    N : int
        Patch size in pixels (the patterns are cropped or binned to it for every algorithm).
    prep_mode : str
        ``"crop"`` or ``"bin"``: how larger patterns are brought to ``N``.
    gridsize : int
        Positions per group side (1 to 3; the network only).
    probe_path : str
        Probe file; empty to use the data's probe.
    probe_resample : bool
        Fourier-resample a probe file that does not fit ``N`` (:attr:`RunSpec.probe_resample`).
    energy_ev, distance_m, detector_pixel_m : float or None
        Geometry overrides (eV, m, m) of the preparation; None keeps the file's value. They
        are part of the run's preparation, so the run's provenance records them.
    n_filters_scale : int
        Network width multiplier.
    nll_weight, mae_weight : float
        Loss weights.
    epochs, batch_size : int
        The network's training epochs and batch size.
    learning_rate : float
    preview_every : int
        A stitched preview every this many epochs.
    n_groups : int or None
        Groups to train on (None: one per position).
    probe_scale : float
        The network's probe normalisation (:attr:`ModelConfig.probe_scale`).
    auto_probe_scale : bool
        Lower ``probe_scale`` when the brightest patterns would saturate the amplitude head
        (:attr:`ModelConfig.auto_probe_scale`).
    probe_trainable : bool
        Let the network's optimiser refine the probe (:attr:`ModelConfig.probe_trainable`).
    mae_warmup_epochs : int or None
        Epochs of MAE-only training first; None: the engine's default rule
        (:attr:`TrainingConfig.warmup_epochs`).
    early_stopping : bool
        Stop training when the validation loss stops improving and end on the best
        validation epoch's weights (:attr:`TrainingConfig.early_stopping_patience` and
        :attr:`TrainingConfig.restore_best_weights` at their defaults); False: every epoch,
        ending on the last one's weights.
    pretrained : bool
        Start the network from the shipped pretrained network of this N and gridsize when
        there is one and no earlier run's weights fit (:attr:`TrainingConfig.pretrained`).
    jit_compile : bool or None
        XLA-compiled training step (:attr:`TrainingConfig.jit_compile`; None: for long runs).
    stitch_window : {"support", "probe"}
        Stitching weight of the network's images (:attr:`RunSpec.stitch_window`).
    remove_grid_pattern : bool
        Divide a raster scan's grid pattern out of the network's images
        (:attr:`RunSpec.remove_grid_pattern`).
    iterations : int
        Solver iterations (passes over every scan position).
    solver_batch_size : int or None
        Positions a solver updates together (None: the solver's choice; rPIE 1 is the
        sequential algorithm).
    refine_probe : bool
        Whether a solver refines the probe.
    probe_modes : int or None
        Incoherent probe modes a solver reconstructs (None: those of the starting probe).
    refine_positions : bool
        Whether a solver corrects the scan positions.
    noise_model : {"gaussian", "poisson"}
        LSQML's likelihood.
    solver_preview_every : int
        A solver's stitched object every this many iterations (and at the end).
    """

    N: int = 64
    prep_mode: str = "crop"
    gridsize: int = 2
    probe_path: str = ""
    n_filters_scale: int = ModelConfig.n_filters_scale
    nll_weight: float = 1.0
    mae_weight: float = 0.0
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 1e-3
    preview_every: int = 1
    n_groups: int | None = None
    algorithm: str = NETWORK
    iterations: int = SolverConfig.iterations
    solver_batch_size: int | None = SolverConfig.batch_size
    refine_probe: bool = SolverConfig.refine_probe
    probe_modes: int | None = SolverConfig.probe_modes
    refine_positions: bool = SolverConfig.refine_positions
    noise_model: str = SolverConfig.noise_model
    solver_preview_every: int = SolverConfig.preview_every
    probe_resample: bool = False
    energy_ev: float | None = None
    distance_m: float | None = None
    detector_pixel_m: float | None = None
    probe_scale: float = ModelConfig.probe_scale
    auto_probe_scale: bool = ModelConfig.auto_probe_scale
    probe_trainable: bool = ModelConfig.probe_trainable
    mae_warmup_epochs: int | None = TrainingConfig.mae_warmup_epochs
    early_stopping: bool = True
    pretrained: bool = TrainingConfig.pretrained
    jit_compile: bool | None = TrainingConfig.jit_compile
    stitch_window: str = DEFAULT_WINDOW
    remove_grid_pattern: bool = DEFAULT_REMOVE_GRID

    def __post_init__(self) -> None:
        if self.prep_mode not in PREP_MODES:
            raise ValueError(f"prep_mode must be one of {PREP_MODES}, got {self.prep_mode!r}")
        names = reconstructor_names()
        if self.algorithm not in names:
            raise ValueError(f"algorithm must be one of {names}, got {self.algorithm!r}")
        if self.noise_model not in NOISE_MODELS:
            raise ValueError(f"noise_model must be one of {NOISE_MODELS}, got {self.noise_model!r}")
        # Build the engine's spec once so an invalid value fails here, naming its field.
        self.run_spec()
        if self.algorithm == NETWORK:
            # the solver fields are not part of a network's spec: check them all the same
            SolverConfig(**self.solver_options())

    @property
    def iterative(self) -> bool:
        """True for an iterative solver, False for the network."""
        return self.algorithm != NETWORK

    @property
    def planned_epochs(self) -> int:
        """Epochs (network) or iterations (solver) the run makes."""
        return self.iterations if self.iterative else self.epochs

    def replace(self, **changes: object) -> RunSettings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def solver_options(self) -> dict[str, Any]:
        """The :class:`SolverConfig` fields these settings give (the ``solver`` of the recipe)."""
        return {engine: getattr(self, gui) for gui, engine in SOLVER_FIELDS.items()}

    def run_spec(self) -> RunSpec:
        """The engine's run: the recipe every front end uses, with these settings.

        A solver gets the patterns prepared to the same ``N`` as the network; the network's
        spec carries the default solver settings (its run is the command line's ``train``).
        """
        return recipe(
            self.N,
            self.gridsize,
            self.epochs,
            preparation=self.prep_mode,
            energy_ev=self.energy_ev,
            distance_m=self.distance_m,
            detector_pixel_m=self.detector_pixel_m,
            probe_path=self.probe_path,
            probe_resample=self.probe_resample,
            stitch_window=self.stitch_window,
            remove_grid_pattern=self.remove_grid_pattern,
            reconstructor=self.algorithm,
            solver=self.solver_options() if self.iterative else None,
            n_filters_scale=self.n_filters_scale,
            nll_weight=self.nll_weight,
            mae_weight=self.mae_weight,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            preview_every=self.preview_every,
            n_groups=self.n_groups,
            probe_scale=self.probe_scale,
            auto_probe_scale=self.auto_probe_scale,
            probe_trainable=self.probe_trainable,
            mae_warmup_epochs=self.mae_warmup_epochs,
            early_stopping_patience=None if self.early_stopping else 0,
            restore_best_weights=None if self.early_stopping else False,
            jit_compile=self.jit_compile,
            pretrained=self.pretrained,
        )

    @property
    def geometry_overrides(self) -> dict[str, float]:
        """The geometry overrides that are set (``{"energy_ev": 8800.0}``)."""
        return {k: float(getattr(self, k)) for k in GEOMETRY_FIELDS if getattr(self, k) is not None}

    def model_config(self) -> ModelConfig:
        """The engine's model settings."""
        return self.run_spec().model

    def training_config(self) -> TrainingConfig:
        """The engine's training settings."""
        return self.run_spec().training

    def data_config(self) -> DataConfig:
        """The engine's grouping settings."""
        return self.run_spec().grouping

    def needs_new_model(self, other: RunSettings) -> bool:
        """True when ``other`` needs another model (algorithm, N, gridsize, probe,
        preparation or architecture)."""
        return (
            self.algorithm != other.algorithm
            or self.model_config() != other.model_config()
            or self.probe_path != other.probe_path
            or self.probe_resample != other.probe_resample
            or self.run_spec().preparation != other.run_spec().preparation
        )

    def label(self) -> str:
        """A short description for tables and titles; a solver's names the solver
        (``"rPIE N=64 crop, 100 it, probe refined"``)."""
        probe = f", probe {self.probe_path.rsplit('/', 1)[-1]}" if self.probe_path else ""
        if self.probe_path and self.probe_resample:
            probe += " (resampled)"
        probe += self._geometry_label()
        if self.iterative:
            parts = [f"{algorithm_name(self.algorithm)} N={self.N} {self.prep_mode}"]
            parts.append(f"{self.iterations} it")
            if self.refine_probe:
                modes = f" ({self.probe_modes} modes)" if self.probe_modes else ""
                parts.append(f"probe refined{modes}")
            if self.refine_positions:
                parts.append("positions refined")
            if self.algorithm in NOISE_MODEL_SOLVERS:
                parts.append(self.noise_model)
            return ", ".join(parts) + probe
        extras = []
        if self.probe_scale != ModelConfig.probe_scale or self.auto_probe_scale:
            extras.append(
                f"probe scale {'<= ' if self.auto_probe_scale else ''}{self.probe_scale:g}"
            )
        if self.probe_trainable:
            extras.append("probe trained")
        if self.mae_warmup_epochs is not None:
            extras.append(f"MAE warm-up {self.mae_warmup_epochs}")
        if not self.early_stopping:
            extras.append("no early stopping")
        if not self.pretrained:
            extras.append("from scratch")
        if self.stitch_window != DEFAULT_WINDOW:
            extras.append(f"{self.stitch_window} window")
        if not self.remove_grid_pattern:
            extras.append("grid pattern kept")
        extra = "".join(f", {e}" for e in extras)
        return (
            f"N={self.N} {self.prep_mode}, g={self.gridsize}, f={self.n_filters_scale}, "
            f"{f'{self.epochs} ep' if self.epochs else 'inference only'}{extra}{probe}"
        )

    def _geometry_label(self) -> str:
        parts = []
        if self.energy_ev is not None:
            parts.append(f"E {self.energy_ev / 1e3:.4g} keV")
        if self.distance_m is not None:
            parts.append(f"z {self.distance_m:.4g} m")
        if self.detector_pixel_m is not None:
            parts.append(f"dx {self.detector_pixel_m * 1e6:.4g} µm")
        return f", geometry {' '.join(parts)}" if parts else ""
