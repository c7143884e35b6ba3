"""The events a run yields, and its result: numpy arrays and plain values only.

A run (:func:`ptycho_engine.pipeline.run`) is a generator of events:

* :class:`StageChanged`: the run entered a stage (reading, preparing, building the model,
  first step, training, reconstructing, scoring), so a front end can say what is happening
  from the first second;
* :class:`Notice`: something the user should read (a warning, a choice the engine made);
* :class:`~ptycho_engine.data.StepProgress`: progress within an epoch, at most once a second;
* :class:`EpochFinished`: a training epoch (or solver iteration) ended; it carries the
  reconstructor's progress snapshot and, when the epoch was stitched, its scores;
* :class:`PartialImage`: a (partial) stitched object to show;

and returns a :class:`RunResult`. Everything here can cross threads and processes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ptycho_engine.data import DiffractionData, StepProgress, StitchSnapshot, TrainingSnapshot
from ptycho_engine.metrics import QualityReport

#: Stages in the order a PINN run passes them (a run may skip some).
STAGES = (
    "reading data",
    "preparing data",
    "building the model",
    "first step (compiling)",
    "training",
    "reconstructing",
    "scoring",
)


@dataclass(frozen=True)
class StageChanged:
    """The run entered ``stage`` (one of :data:`STAGES`) after ``elapsed_s`` seconds."""

    stage: str
    elapsed_s: float
    detail: str = ""


@dataclass(frozen=True)
class Notice:
    """A message for the user: ``level`` is ``"info"`` or ``"warning"``."""

    text: str
    level: str = "info"


@dataclass(frozen=True, eq=False)
class EpochFinished:
    """One epoch (or iteration) ended.

    Attributes
    ----------
    snapshot : TrainingSnapshot
        Progress numbers (loss, learning rate, health) and, when the epoch was stitched, the
        stitched object (``snapshot.preview``).
    scores : QualityReport or None
        The stitched object's scores against the ground truth (None without a preview or a
        ground truth).
    chance : QualityReport or None
        Scores of a featureless object over the same region, to quote beside ``scores``.
    """

    snapshot: TrainingSnapshot
    scores: QualityReport | None = None
    chance: QualityReport | None = None


@dataclass(frozen=True, eq=False)
class PartialImage:
    """A stitched object to show while the run goes on.

    Attributes
    ----------
    image : StitchSnapshot
        Object, valid region and origin; ``image.done`` is False while batches are missing.
    epoch : int
        Epochs trained when it was made: 0 for the first image of a warm start.
    """

    image: StitchSnapshot
    epoch: int


#: :class:`~ptycho_engine.data.StepProgress` comes within epochs, at most once a second.
Event = StageChanged | Notice | StepProgress | EpochFinished | PartialImage


@dataclass(frozen=True, eq=False)
class Scores:
    """The final reconstruction's scores against the ground truth.

    Attributes
    ----------
    report : QualityReport
    chance : QualityReport
        A featureless object's scores over the same region.
    """

    report: QualityReport
    chance: QualityReport

    def to_dict(self) -> dict[str, Any]:
        """JSON primitives: ``reconstruction``, ``chance_level`` and ``flags``."""
        return {
            "reconstruction": self.report.to_dict(),
            "chance_level": self.chance.to_dict(),
            "flags": list(self.report.flags),
        }


@dataclass(frozen=True, eq=False)
class RunResult:
    """What a run produced.

    Attributes
    ----------
    spec : RunSpec
        The run as asked.
    reconstructor : str
    reconstruction : StitchSnapshot or None
        The final stitched object; for a stopped run the last one stitched (None if none).
    probe_modes : ndarray, (K, N, N) complex64
        The probe the reconstructor used, strongest mode first (the PINN's normalised probe).
    positions_px : ndarray, (M, 2) float64
        Scan positions of the prepared data, in the frame of ``reconstruction.origin_px``.
    scores : Scores or None
        None without a ground truth, or without a reconstruction.
    history : tuple of dict
        One record per epoch (``TrainingSnapshot.record()``, plus ``metrics`` of stitched
        epochs).
    steps : int
    stopped : bool
    timings_s : dict of str to float
        ``load``, ``prepare``, ``train``, ``previews``, ``scoring``, ``reconstruct``,
        ``total`` (the parts a run did).
    data_info : dict
        What the run read: path, format, sha256, patterns, N, pixel size, geometry.
    details : dict
        Reconstructor-specific facts for ``run.json`` (the resolved model configuration,
        intensity scale, ...).
    state : object
        The reconstructor's reusable state (the PINN's trained models), not written by the
        run-folder writer except through the reconstructor; None when there is none.
    data : DiffractionData or None
        The prepared data the run used (in-process only; dropped before a result crosses
        processes).
    """

    spec: Any
    reconstructor: str
    reconstruction: StitchSnapshot | None
    probe_modes: np.ndarray
    positions_px: np.ndarray
    scores: Scores | None
    history: tuple[dict[str, Any], ...]
    steps: int
    stopped: bool
    timings_s: dict[str, float]
    data_info: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    state: Any = None
    data: DiffractionData | None = None

    @property
    def state_name(self) -> str:
        """``"stopped"`` or ``"finished"``."""
        return "stopped" if self.stopped else "finished"
