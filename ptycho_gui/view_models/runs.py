"""Qt-free records that the worker sends to the GUI and the GUI keeps per run.

Everything here holds numpy arrays and Python values only, so it crosses threads safely.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ptycho_engine.data import DiffractionData
from ptycho_gui.view_models.geometry import (
    FileGeometry,
    energy_text,
    format_length,
    full_detector_pixel,
)
from ptycho_gui.view_models.run_settings import RunSettings

#: A run's states in the table: asked for and waiting for the worker, training, asked to stop
#: (it ends within one step), and its three ends.
STATES = ("queued", "running", "stopping", "finished", "stopped", "failed")
#: States of a run that has not ended.
LIVE_STATES = ("queued", "running", "stopping")


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
    energy_ev, distance_m, detector_pixel_m : float or None
        The file's geometry (eV, m, m), None where it says nothing.
    object_pixel_m : float or None
        Object pixel at the file's own pattern size (``lambda z / (N0 dx)``, or the file's own
        object pixel); None when unknown.
    object_pixel_note : str
        Why it is unknown, or where it comes from ("" for the geometry or the file's pixel).
    profile : str
        Name of the mapping profile the file was read through ("" for a known format).
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
    energy_ev: float | None = None
    distance_m: float | None = None
    detector_pixel_m: float | None = None
    object_pixel_m: float | None = None
    object_pixel_note: str = ""
    profile: str = ""

    def lines(self) -> list[str]:
        """Human-readable lines, one per fact."""
        if self.object_pixel_m is None:
            pixel = self.object_pixel_note or "unknown"
        else:
            pixel = format_length(self.object_pixel_m)
            if self.object_pixel_note:
                pixel += f" ({self.object_pixel_note})"
        fmt = f"read through the mapping profile {self.profile!r}" if self.profile else self.format
        out = [
            f"Format: {fmt}",
            f"Patterns: {self.patterns}",
            f"Detector: {self.detector} x {self.detector} px",
            f"Energy: {energy_text(self.energy_ev)}",
            "Detector distance: "
            + ("unknown" if self.distance_m is None else f"{self.distance_m:.4g} m"),
            "Detector pixel: "
            + (
                "unknown" if self.detector_pixel_m is None else format_length(self.detector_pixel_m)
            ),
            f"Object pixel size at the file's N={self.detector}: {pixel}",
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
    object_pixel, note = full_detector_pixel(FileGeometry.of(data))
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
        energy_ev=data.energy_ev,
        distance_m=data.distance_m,
        detector_pixel_m=data.detector_pixel_m,
        object_pixel_m=object_pixel,
        object_pixel_note=note,
        profile=str(data.provenance.get("profile") or "")
        if data.provenance.get("format") == "profile"
        else "",
    )


@dataclass(frozen=True, eq=False)
class RunInfo:
    """A run has started.

    Attributes
    ----------
    run_id : int
    settings : RunSettings
    warm : str
        ``"scratch"``, ``"cached"`` (weights trained before at these settings),
        ``"transfer"`` (network weights of the same model with another probe) or
        ``"pretrained"`` (the shipped pretrained network, :mod:`ptycho_engine.pretrain`).
    probe : ndarray, (N, N) complex64, or None
        The probe of this run (None when the run failed before it was read).
    positions_px : ndarray, (M, 2) float64, or None
        Scan positions of the prepared data.
    pixel_size_m : float or None
        Object pixel size of the prepared data (it changes with crop), None when unknown.
    data_path : str
        The file the data came from.
    data_sha256 : str
        Hex sha256 of that file ("" when unknown).
    position_scale : float
        Pixels of the prepared data per pixel of the data as read (from the spread of the scan
        positions; what a comparison resamples with).
    energy_ev, distance_m : float or None
        Photon energy and detector distance of the run (with the panel's overrides), None
        when unknown; an export's product records them.
    """

    run_id: int
    settings: RunSettings
    warm: str
    probe: np.ndarray | None
    positions_px: np.ndarray | None
    pixel_size_m: float | None = None
    data_path: str = ""
    data_sha256: str = ""
    position_scale: float = 1.0
    energy_ev: float | None = None
    distance_m: float | None = None


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

    ``started_at`` is the ``time.monotonic()`` of the run's start (None before it started or
    for a run read back from a session folder): the table shows the running time from it.
    ``position_scale`` is None when unknown (the comparison then derives it from the data).
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
    data_sha256: str = ""
    position_scale: float | None = None
    started_at: float | None = None
    energy_ev: float | None = None
    distance_m: float | None = None

    @property
    def has_object(self) -> bool:
        return self.object is not None

    @property
    def ended(self) -> bool:
        """True once the run finished, stopped or failed."""
        return self.state not in LIVE_STATES

    def start(self, info: RunInfo, now: float) -> None:
        """The worker started the run (``now``: ``time.monotonic()``)."""
        self.settings = info.settings
        self.state = "running"
        self.warm = info.warm
        self.probe = info.probe
        self.positions_px = info.positions_px
        self.pixel_size_m = info.pixel_size_m
        self.data_path = info.data_path or self.data_path
        self.data_sha256 = info.data_sha256
        self.position_scale = info.position_scale
        self.energy_ev = info.energy_ev
        self.distance_m = info.distance_m
        self.started_at = now

    def add_epoch(self, snap: RunSnapshot) -> None:
        """An epoch (iteration) ended: its losses, time and scores."""
        self.history.append((snap.epoch, snap.loss, snap.val_loss))
        self.elapsed_s = snap.elapsed_s
        if snap.metrics:
            self.metrics = dict(snap.metrics)

    def finish(self, outcome: RunOutcome) -> None:
        """The run ended: keep its result."""
        self.state = outcome.state
        self.elapsed_s = outcome.elapsed_s
        self.message = outcome.message
        self.object = outcome.object
        self.valid = outcome.valid
        self.origin_px = outcome.origin_px
        self.metrics = dict(outcome.metrics)
        self.flags = outcome.flags
        self.run_dir = outcome.run_dir
        self.history = list(outcome.history) or self.history
        self.started_at = None
        if outcome.probe_modes is not None and outcome.probe_modes.size:
            self.probe_modes = outcome.probe_modes
            if self.settings.iterative:
                # a solver's result is its refined probe too: shown and exported with it
                self.probe = outcome.probe_modes[0]
        if outcome.positions_px is not None:
            self.positions_px = outcome.positions_px

    def running_time_s(self, now: float) -> float | None:
        """Seconds the run has taken (``now``: ``time.monotonic()``); None while queued."""
        if self.state == "queued":
            return None
        if self.started_at is not None and not self.ended:
            return max(now - self.started_at, self.elapsed_s)
        return self.elapsed_s
