"""Data containers exchanged between the engine's parts: measured data and result snapshots.

Everything here holds numpy arrays only (never tensors), so it can cross threads and
processes and be displayed by the GUI.

Conventions (physics.md section 1): images are ``(y, x)``; scan positions ``positions_px``
are the centres of the illuminated patches in object pixels, columns ``(y, x)``, in the pixel
frame of ``object_gt`` when a ground truth is present (pixel ``(0, 0)`` is the centre of the
first pixel, a patch centred at integer ``(y, x)`` covers ``obj[y - N//2 : y + N//2, ...]``).
Diffraction amplitudes are ``sqrt(counts)``, float32, centred (zero frequency at
``(N//2, N//2)``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ptycho_engine.errors import DataError

if TYPE_CHECKING:
    from ptycho_engine.grid_pattern import GridPattern


@dataclass(frozen=True, eq=False)
class DiffractionData:
    """A ptychographic data set ready for the engine.

    Attributes
    ----------
    amplitudes : ndarray, (M, N, N) float32
        Measured amplitudes, ``sqrt(counts)``, centred.
    positions_px : ndarray, (M, 2) float64
        Scan positions ``(y, x)`` in object pixels.
    probe : ndarray, (N, N) complex64, optional
        Probe guess (or the true probe of a simulation); for a probe of several incoherent
        modes, the strongest one.
    object_gt : ndarray, (H, W) complex64, optional
        Ground-truth object, in the frame of ``positions_px``.
    bad_pixels : ndarray, (N, N) bool, optional
        True where a detector pixel must be ignored by the loss.
    pixel_size_m : float, optional
        Object pixel size in metres.
    energy_ev, distance_m, detector_pixel_m : float, optional
        Geometry, when known.
    provenance : dict
        ``path``, ``format``, ``sha256`` of the source and the preparation steps applied.
    probe_modes : ndarray, (K, N, N) complex64, optional
        Every mode of a partially coherent probe (mutually incoherent: their intensities
        add), strongest first, ``K >= 2``; ``probe_modes[0]`` is ``probe`` (filled in from it
        when ``probe`` is None). None for a coherent probe.
    """

    amplitudes: np.ndarray
    positions_px: np.ndarray
    probe: np.ndarray | None = None
    object_gt: np.ndarray | None = None
    bad_pixels: np.ndarray | None = None
    pixel_size_m: float | None = None
    energy_ev: float | None = None
    distance_m: float | None = None
    detector_pixel_m: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    probe_modes: np.ndarray | None = None

    def __post_init__(self) -> None:
        source = self.provenance.get("path", "<arrays>")
        amp = np.asarray(self.amplitudes)
        if amp.ndim != 3 or amp.shape[1] != amp.shape[2] or amp.shape[0] == 0:
            raise DataError(
                f"{source}: amplitudes must have shape (M, N, N) with M > 0, got {amp.shape}"
            )
        if not np.issubdtype(amp.dtype, np.floating):
            raise DataError(f"{source}: amplitudes must be floating point, got {amp.dtype}")
        pos = np.asarray(self.positions_px)
        if pos.shape != (amp.shape[0], 2):
            raise DataError(
                f"{source}: positions_px must have shape ({amp.shape[0]}, 2) to match "
                f"{amp.shape[0]} patterns, got {pos.shape}"
            )
        if not np.all(np.isfinite(pos)):
            raise DataError(f"{source}: positions_px contain NaN or infinite values")
        n = amp.shape[1]
        if self.probe is not None and np.shape(self.probe) != (n, n):
            raise DataError(
                f"{source}: probe is {np.shape(self.probe)} but the patterns are {n}x{n}: "
                f"resample the probe or choose N={np.shape(self.probe)[-1]}"
            )
        if self.probe_modes is not None:
            self._check_modes(source, n)
        if self.object_gt is not None and np.ndim(self.object_gt) != 2:
            raise DataError(
                f"{source}: object_gt must be 2-D, got shape {np.shape(self.object_gt)}"
            )
        if self.bad_pixels is not None and np.shape(self.bad_pixels) != (n, n):
            raise DataError(
                f"{source}: bad_pixels must be ({n}, {n}), got {np.shape(self.bad_pixels)}"
            )
        object.__setattr__(self, "amplitudes", amp.astype(np.float32, copy=False))
        object.__setattr__(self, "positions_px", pos.astype(np.float64, copy=False))
        if self.probe is not None:
            object.__setattr__(
                self, "probe", np.asarray(self.probe).astype(np.complex64, copy=False)
            )
        if self.probe_modes is not None:
            object.__setattr__(
                self, "probe_modes", np.asarray(self.probe_modes).astype(np.complex64, copy=False)
            )
        if self.object_gt is not None:
            object.__setattr__(
                self, "object_gt", np.asarray(self.object_gt).astype(np.complex64, copy=False)
            )
        if self.bad_pixels is not None:
            object.__setattr__(self, "bad_pixels", np.asarray(self.bad_pixels).astype(bool))

    def _check_modes(self, source: str, n: int) -> None:
        modes = np.asarray(self.probe_modes)
        if modes.ndim != 3 or modes.shape[0] < 2 or modes.shape[1:] != (n, n):
            raise DataError(
                f"{source}: probe_modes must be (K, {n}, {n}) with K >= 2 modes, got "
                f"{modes.shape}; a single-mode probe goes in probe"
            )
        power = np.sum(np.abs(modes.astype(np.complex128)) ** 2, axis=(1, 2))
        if np.any(power[1:] > power[0]):
            raise DataError(
                f"{source}: probe_modes must be ordered strongest first, got powers "
                f"{np.array2string(power, precision=3)}"
            )
        if self.probe is None:
            object.__setattr__(self, "probe", modes[0])
        elif not np.array_equal(
            np.asarray(self.probe).astype(np.complex64), modes[0].astype(np.complex64)
        ):
            raise DataError(
                f"{source}: probe differs from probe_modes[0]: give a new probe without "
                "probe_modes (probe_modes=None) or pass the new modes too"
            )

    @property
    def probe_all_modes(self) -> np.ndarray | None:
        """The probe as modes ``(K, N, N)``: ``probe_modes``, else ``probe[None]``, else None."""
        if self.probe_modes is not None:
            return self.probe_modes
        if self.probe is None:
            return None
        return self.probe[np.newaxis]

    @property
    def n_patterns(self) -> int:
        """Number of diffraction patterns ``M``."""
        return int(self.amplitudes.shape[0])

    @property
    def N(self) -> int:  # noqa: N802 - the physics name of the patch size
        """Pattern size in pixels."""
        return int(self.amplitudes.shape[1])

    @property
    def photons_per_pattern(self) -> float:
        """Mean total counts per pattern, ``mean_m sum(amplitudes[m] ** 2)``."""
        total = 0.0
        chunk = 1024
        for start in range(0, self.n_patterns, chunk):
            block = self.amplitudes[start : start + chunk].astype(np.float64)
            total += float(np.sum(block * block))
        return total / self.n_patterns

    def replace(self, **changes: Any) -> DiffractionData:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, eq=False)
class HealthCheck:
    """Signs of the "fog" failure (physics.md section 10), measured on one batch.

    Attributes
    ----------
    mean_predicted_counts, mean_measured_counts : float
        Mean total counts per pattern predicted by the model and measured.
    saturated_fraction : float
        Fraction of object-amplitude pixels (inside the support) above 0.99.
    """

    mean_predicted_counts: float
    mean_measured_counts: float
    saturated_fraction: float

    @property
    def intensity_ratio(self) -> float:
        """Predicted over measured counts; 1 is ideal, about 1.4 signals fog."""
        return self.mean_predicted_counts / max(self.mean_measured_counts, 1e-30)

    @property
    def foggy(self) -> bool:
        """True when the amplitude head looks saturated."""
        return self.saturated_fraction > 0.5


@dataclass(frozen=True, eq=False)
class TrainingSnapshot:
    """Progress of a training run, emitted after every epoch.

    Attributes
    ----------
    epoch : int
        Epochs completed (1-based).
    epochs : int
        Epochs planned.
    steps : int
        Optimiser steps completed so far.
    stage : str
        ``"mae-warmup"`` or ``"main"``.
    loss, val_loss : float
        Mean training loss of the epoch and validation loss (NaN without validation).
    learning_rate : float
        Learning rate at the end of the epoch.
    elapsed_s : float
        Seconds since the run started.
    health : HealthCheck or None
        Fog indicators on a fixed batch (the network's; None for iterative solvers).
    preview : StitchSnapshot or None
        Stitched object, every ``preview_every`` epochs and at the end (never on a stopped
        snapshot).
    stopped : bool
        True when the run was stopped by its event before finishing.
    probe : ndarray, (K, N, N) complex64, optional
        The probe at this epoch, when the reconstructor refines it.
    positions_px : ndarray, (M, 2) float64, optional
        The scan positions at this epoch, when the reconstructor refines them.

    For an iterative solver an "epoch" is one iteration over every position and ``loss`` is
    the normalised error ``sum (|F psi| - X)**2 / sum X**2`` (physics.md section 11).
    """

    epoch: int
    epochs: int
    steps: int
    stage: str
    loss: float
    val_loss: float
    learning_rate: float
    elapsed_s: float
    health: HealthCheck | None
    preview: StitchSnapshot | None = None
    stopped: bool = False
    probe: np.ndarray | None = None
    positions_px: np.ndarray | None = None

    def record(self) -> dict[str, Any]:
        """The epoch as plain numbers, as run folders store their training history (the
        health numbers are NaN for a reconstructor without them)."""
        h = self.health
        nan = float("nan")
        return {
            "epoch": self.epoch,
            "steps": self.steps,
            "stage": self.stage,
            "loss": self.loss,
            "val_loss": self.val_loss,
            "learning_rate": self.learning_rate,
            "elapsed_s": self.elapsed_s,
            "mean_predicted_counts": h.mean_predicted_counts if h else nan,
            "mean_measured_counts": h.mean_measured_counts if h else nan,
            "predicted_to_measured_counts": h.intensity_ratio if h else nan,
            "saturated_fraction": h.saturated_fraction if h else nan,
        }


@dataclass(frozen=True, eq=False)
class StitchSnapshot:
    """A (partial) stitched object while inference proceeds.

    Attributes
    ----------
    object : ndarray, (H, W) complex64
        Stitched object so far; 0 where invalid.
    valid : ndarray, (H, W) bool
        Pixels covered by enough weight.
    groups_done, groups_total : int
        Progress of the inference.
    origin_px : tuple of float
        ``(y, x)`` of canvas pixel ``(0, 0)`` in the frame of the scan positions.
    grid_pattern : GridPattern or None
        The scan grid's pattern divided out of the object
        (:func:`ptycho_engine.grid_pattern.remove_grid_pattern`); None when nothing was.
    """

    object: np.ndarray
    valid: np.ndarray
    groups_done: int
    groups_total: int
    origin_px: tuple[float, float]
    grid_pattern: GridPattern | None = None

    @property
    def done(self) -> bool:
        """True when every group is stitched."""
        return self.groups_done >= self.groups_total

    @property
    def amplitude(self) -> np.ndarray:
        """``|object|``, (H, W) float32."""
        return np.abs(self.object).astype(np.float32)

    @property
    def phase(self) -> np.ndarray:
        """``angle(object)`` in radians, (H, W) float32."""
        return np.angle(self.object).astype(np.float32)


@dataclass(frozen=True)
class StepProgress:
    """Progress inside an epoch, for front ends that update more often than once per epoch.

    Attributes
    ----------
    stage : str
        ``"building the model"``, ``"first step (compiling)"`` or ``"training"``.
    epoch : int
        The epoch in progress (1-based; 0 before the first).
    epochs : int
        Epochs planned.
    step : int
        Steps done in this epoch.
    steps_per_epoch : int
    steps : int
        Steps done in the run.
    loss : float
        Loss of the last step (NaN before the first).
    elapsed_s : float
        Seconds since the run started.
    """

    stage: str
    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    steps: int
    loss: float
    elapsed_s: float

    @property
    def fraction(self) -> float:
        """Fraction of the planned steps done, in [0, 1]."""
        total = self.epochs * self.steps_per_epoch
        return min(1.0, self.steps / total) if total > 0 else 0.0
