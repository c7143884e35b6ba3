"""The settings of one run, as the GUI edits them (no Qt).

:class:`RunSettings` is frozen: every edit makes a new value through :meth:`RunSettings.replace`,
so the worker can hold on to the settings it runs while the user keeps editing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ptycho_engine.config import SUPPORTED_N, DataConfig, ModelConfig, TrainingConfig
from ptycho_engine.pipeline.spec import RunSpec, recipe

PREP_MODES = ("crop", "bin")


def valid_n_choices(detector_side: int) -> list[int]:
    """Powers of two from 32 to 256 not above the detector side (``[]`` if it is below 32)."""
    return [n for n in SUPPORTED_N if n <= detector_side]


@dataclass(frozen=True)
class RunSettings:
    """Everything a run needs besides the data.

    Attributes
    ----------
    N : int
        Patch size in pixels.
    prep_mode : str
        ``"crop"`` or ``"bin"``: how larger patterns are brought to ``N``.
    gridsize : int
        Positions per group side (1 to 3).
    probe_path : str
        Probe file; empty to use the data's probe.
    n_filters_scale : int
        Network width multiplier.
    nll_weight, mae_weight : float
        Loss weights.
    epochs, batch_size : int
    learning_rate : float
    preview_every : int
        A stitched preview every this many epochs.
    n_groups : int or None
        Groups to train on (None: one per position).
    """

    N: int = 64
    prep_mode: str = "crop"
    gridsize: int = 2
    probe_path: str = ""
    n_filters_scale: int = 2
    nll_weight: float = 1.0
    mae_weight: float = 0.0
    epochs: int = 10
    batch_size: int = 16
    learning_rate: float = 1e-3
    preview_every: int = 1
    n_groups: int | None = None

    def __post_init__(self) -> None:
        if self.prep_mode not in PREP_MODES:
            raise ValueError(f"prep_mode must be one of {PREP_MODES}, got {self.prep_mode!r}")
        # Build the engine's spec once so an invalid value fails here, naming its field.
        self.run_spec()

    def replace(self, **changes: object) -> RunSettings:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def run_spec(self) -> RunSpec:
        """The engine's run: the recipe every front end uses, with these settings."""
        return recipe(
            self.N,
            self.gridsize,
            self.epochs,
            preparation=self.prep_mode,
            probe_path=self.probe_path,
            n_filters_scale=self.n_filters_scale,
            nll_weight=self.nll_weight,
            mae_weight=self.mae_weight,
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            preview_every=self.preview_every,
            n_groups=self.n_groups,
        )

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
        """True when ``other`` needs another model (N, gridsize, probe or architecture)."""
        return (
            self.model_config() != other.model_config()
            or self.probe_path != other.probe_path
            or self.prep_mode != other.prep_mode
        )

    def label(self) -> str:
        """A short description for tables and titles."""
        probe = f", probe {self.probe_path.rsplit('/', 1)[-1]}" if self.probe_path else ""
        return (
            f"N={self.N} {self.prep_mode}, g={self.gridsize}, f={self.n_filters_scale}, "
            f"{self.epochs} ep{probe}"
        )
