"""Qt-free records that the worker sends to the GUI and the GUI keeps per run.

Everything here holds numpy arrays and Python values only, so it crosses threads safely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ptycho_engine.data import DiffractionData
from ptycho_gui.view_models.run_settings import RunSettings

STATES = ("queued", "running", "finished", "stopped", "failed")


@dataclass(frozen=True, eq=False)
class DataSummary:
    """What the data panel shows about a loaded file.

    Attributes
    ----------
    path, format : str
    patterns : int
    detector : int
        Pattern side in pixels.
    pixel_size_m : float or None
    counts_mean, counts_min, counts_max : float
        Total counts per pattern.
    has_ground_truth, has_probe : bool
    warnings : tuple of str
    """

    path: str
    format: str
    patterns: int
    detector: int
    pixel_size_m: float | None
    counts_mean: float
    counts_min: float
    counts_max: float
    has_ground_truth: bool
    has_probe: bool
    warnings: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        """Human-readable lines, one per fact."""
        pixel = f"{self.pixel_size_m * 1e9:.3g} nm" if self.pixel_size_m else "unknown"
        out = [
            f"Format: {self.format}",
            f"Patterns: {self.patterns}",
            f"Detector: {self.detector} x {self.detector} px",
            f"Object pixel size: {pixel}",
            f"Counts per pattern: mean {self.counts_mean:.4g} "
            f"(min {self.counts_min:.4g}, max {self.counts_max:.4g})",
            f"Probe in file: {'yes' if self.has_probe else 'no'}; "
            f"ground truth: {'yes' if self.has_ground_truth else 'no'}",
        ]
        out.extend(f"Warning: {w}" for w in self.warnings)
        return out


def summarise(data: DiffractionData, path: str) -> DataSummary:
    """Summarise a data set (counts per pattern computed in chunks, float64)."""
    totals = np.concatenate(
        [
            np.sum(np.square(data.amplitudes[i : i + 1024], dtype=np.float64), axis=(1, 2))
            for i in range(0, data.n_patterns, 1024)
        ]
    )
    warnings = [str(w) for w in data.provenance.get("warnings", [])]
    if data.probe is None:
        warnings.append("no probe in the file: choose a probe file")
    if float(totals.min()) <= 0:
        warnings.append(f"{int(np.sum(totals <= 0))} patterns hold no counts")
    if data.N < 32:
        warnings.append(f"patterns are {data.N}x{data.N}: the model needs at least 32x32")
    return DataSummary(
        path=path,
        format=str(data.provenance.get("format", "unknown")),
        patterns=data.n_patterns,
        detector=data.N,
        pixel_size_m=data.pixel_size_m,
        counts_mean=float(totals.mean()),
        counts_min=float(totals.min()),
        counts_max=float(totals.max()),
        has_ground_truth=data.object_gt is not None,
        has_probe=data.probe is not None,
        warnings=tuple(warnings),
    )


@dataclass(frozen=True, eq=False)
class RunInfo:
    """A run has started.

    Attributes
    ----------
    run_id : int
    settings : RunSettings
    warm : str
        ``"scratch"``, ``"cached"`` (weights trained before at these settings) or
        ``"transfer"`` (network weights of the same model with another probe).
    probe : ndarray, (N, N) complex64, or None
        The probe of this run (None when the run failed before it was read).
    positions_px : ndarray, (M, 2) float64, or None
        Scan positions of the prepared data.
    pixel_size_m : float or None
        Object pixel size of the prepared data (it changes with crop), None when unknown.
    data_path : str
        The file the data came from.
    """

    run_id: int
    settings: RunSettings
    warm: str
    probe: np.ndarray | None
    positions_px: np.ndarray | None
    pixel_size_m: float | None = None
    data_path: str = ""


@dataclass(frozen=True, eq=False)
class RunSnapshot:
    """Live progress of a run, for the views.

    Attributes
    ----------
    run_id : int
    epoch, epochs : int
        ``epoch = 0`` for the first image of a warm start (before any training).
    loss, val_loss : float
        NaN when not known.
    elapsed_s : float
    stage : str
        Training stage of the epoch (``"mae-warmup"`` or ``"main"``; "" for images).
    amplitude, phase : ndarray, (H, W) float32, optional
        Stitched object (None when the epoch carried no preview).
    valid : ndarray, (H, W) bool, optional
    origin_px : (float, float)
    metrics : dict
        Scores of the stitched epoch against the ground truth (engine names, e.g.
        ``amplitude_ssim``); empty without a preview or a ground truth.
    image_only : bool
        True for an image that is not an epoch's end (a warm start's first image, a partial
        canvas of the final reconstruction): it carries no loss.
    probe : ndarray, (K, N, N) complex64, optional
        The probe modes at this epoch (iteration), strongest first, when the reconstructor
        refines the probe (the iterative solvers); None otherwise.

    For an iterative solver an epoch is one iteration and ``loss`` its normalised error.
    """

    run_id: int
    epoch: int
    epochs: int
    loss: float = math.nan
    val_loss: float = math.nan
    elapsed_s: float = 0.0
    stage: str = ""
    amplitude: np.ndarray | None = None
    phase: np.ndarray | None = None
    valid: np.ndarray | None = None
    origin_px: tuple[float, float] = (0.0, 0.0)
    metrics: dict[str, float] = field(default_factory=dict)
    image_only: bool = False
    probe: np.ndarray | None = None

    @property
    def has_image(self) -> bool:
        return self.amplitude is not None


@dataclass(frozen=True, eq=False)
class RunOutcome:
    """The end of a run.

    Attributes
    ----------
    run_id : int
    state : str
        ``"finished"``, ``"stopped"`` or ``"failed"``.
    elapsed_s : float
    message : str
        The error for a failed run.
    object : ndarray, (H, W) complex64, optional
    valid : ndarray, (H, W) bool, optional
    origin_px : (float, float)
    metrics : dict
        Scores against the ground truth when one exists, by the engine's names
        (:func:`ptycho_engine.metrics.flat_scores`: ``amplitude_ssim``, ``phase_frc_1_7_px``...).
    flags : tuple of str
        What the scoring could not compute, and why.
    history : tuple of (epoch, loss, val_loss)
    run_dir : str
        The run folder written in the session folder ("" when none was written).
    steps : int
    timings_s : dict
    loss : float
        Last epoch's training loss.
    probe_modes : ndarray, (K, N, N) complex64, optional
        The probe the run used, strongest mode first (a solver's refined probe at its
        physical scale; the network's normalised probe).
    positions_px : ndarray, (M, 2) float64, optional
        Scan positions of the reconstruction (a solver's refined ones).
    """

    run_id: int
    state: str
    elapsed_s: float
    message: str = ""
    object: np.ndarray | None = None
    valid: np.ndarray | None = None
    origin_px: tuple[float, float] = (0.0, 0.0)
    metrics: dict[str, float] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    history: tuple[tuple[int, float, float], ...] = ()
    run_dir: str = ""
    steps: int = 0
    timings_s: dict[str, float] = field(default_factory=dict)
    loss: float = math.nan
    probe_modes: np.ndarray | None = None
    positions_px: np.ndarray | None = None


@dataclass
class RunRecord:
    """Everything the GUI keeps about one run (mutable: it fills in as the run proceeds).

    ``probe`` is the probe shown and exported with the run: the starting probe, replaced at
    the end of a solver run by the refined strongest mode. ``probe_modes`` holds every mode
    the run ended with, ``(K, N, N)`` complex64 (None until it finished).
    """

    run_id: int
    settings: RunSettings
    warm: str = "scratch"
    state: str = "running"
    elapsed_s: float = 0.0
    message: str = ""
    probe: np.ndarray | None = None
    positions_px: np.ndarray | None = None
    object: np.ndarray | None = None
    valid: np.ndarray | None = None
    origin_px: tuple[float, float] = (0.0, 0.0)
    metrics: dict[str, float] = field(default_factory=dict)
    flags: tuple[str, ...] = ()
    history: list[tuple[int, float, float]] = field(default_factory=list)
    pixel_size_m: float | None = None
    data_path: str = ""
    run_dir: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    probe_modes: np.ndarray | None = None

    @property
    def has_object(self) -> bool:
        return self.object is not None
