"""Qt-free preparation of runs for side-by-side comparison.

Runs made at different N (crop mode) have different object pixel sizes; each run carries its
``scale``: prepared positions over raw positions (1 for runs at the detector's own
sampling). Objects are resampled to the reference run's pixel grid, then cut to the region
that every run covers.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ptycho_engine.display import (
    PHASE_LEVELS,
    PHASE_RANGE_FRACTION,
    phase_levels,
    region_pixels,
    robust_range,
)

if TYPE_CHECKING:
    from ptycho_gui.view_models.runs import RunRecord

MIN_RUNS = 2
MAX_RUNS = 6
#: Shared levels are used ("auto") only when every pane's own robust range covers at least
#: this fraction of them; otherwise a pane would be a flat grey (a nearly uniform early
#: reconstruction beside the ground truth) and each pane takes its own.
MIN_LEVEL_SHARE = 0.25
#: How the comparison's panes get their levels.
LEVEL_POLICIES = ("auto", "shared", "per run")
#: Valid pixels per pane that the shared levels sample at most, so that every pane weighs the
#: same (a large ground truth would otherwise set them alone).
LEVEL_SAMPLES = 65_536


@dataclass(frozen=True, eq=False)
class FrameImage:
    """One stitched object in its frame.

    Attributes
    ----------
    object : ndarray, (H, W) complex64
    valid : ndarray, (H, W) bool
    origin_px : (float, float)
        ``(y, x)`` of pixel (0, 0) in the run's scan-position frame.
    scale : float
        Run pixels per raw-data pixel.
    pixel_size_m : float or None
        The run's object pixel size (None when unknown).
    """

    object: np.ndarray
    valid: np.ndarray
    origin_px: tuple[float, float]
    scale: float = 1.0
    pixel_size_m: float | None = None


def position_scale(prepared_px: np.ndarray, raw_px: np.ndarray) -> float:
    """Pixels of the prepared data per raw pixel, from the spread of the scan positions."""
    raw = float(np.std(raw_px))
    return float(np.std(prepared_px)) / raw if raw > 0 else 1.0


def _resample(image: FrameImage, factor: float) -> FrameImage:
    if math.isclose(factor, 1.0, rel_tol=1e-3):
        return image
    from scipy.ndimage import zoom

    obj = image.object
    real = zoom(obj.real, factor, order=1)
    imag = zoom(obj.imag, factor, order=1)
    valid = zoom(image.valid.astype(np.uint8), factor, order=0).astype(bool)
    origin = (image.origin_px[0] * factor, image.origin_px[1] * factor)
    pixel = None if image.pixel_size_m is None else image.pixel_size_m / factor
    return FrameImage(
        (real + 1j * imag).astype(np.complex64), valid, origin, image.scale * factor, pixel
    )


def common_frame(images: list[FrameImage], reference: int = 0) -> list[FrameImage]:
    """Resample every image to the pixel grid of ``images[reference]`` and cut all of them to
    the region they share.

    Raises
    ------
    ValueError
        When the frames do not overlap.
    """
    ref_scale = images[reference].scale
    same = [_resample(im, ref_scale / im.scale) for im in images]
    origins = [(round(im.origin_px[0]), round(im.origin_px[1])) for im in same]
    y0 = max(o[0] for o in origins)
    x0 = max(o[1] for o in origins)
    y1 = min(o[0] + im.object.shape[0] for o, im in zip(origins, same, strict=True))
    x1 = min(o[1] + im.object.shape[1] for o, im in zip(origins, same, strict=True))
    if y1 - y0 < 8 or x1 - x0 < 8:
        raise ValueError("the runs' objects do not overlap enough to be compared")
    out = []
    for (oy, ox), im in zip(origins, same, strict=True):
        cut = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
        out.append(
            FrameImage(
                im.object[cut], im.valid[cut], (float(y0), float(x0)), ref_scale, im.pixel_size_m
            )
        )
    return out


def _pane_values(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    values = np.asarray(image, dtype=np.float64)
    if mask is not None:
        values = values[np.asarray(mask, dtype=bool)]
    values = values[np.isfinite(values)].ravel()
    if values.size > LEVEL_SAMPLES:
        values = values[:: values.size // LEVEL_SAMPLES + 1]
    return values


def shared_levels(
    images: Sequence[np.ndarray], masks: Sequence[np.ndarray | None]
) -> tuple[float, float]:
    """One (low, high) for all images: the 0.5 and 99.5 percentiles of their finite valid
    pixels, each image weighing the same whatever its size (a large ground truth beside small
    reconstructions does not set them alone); each image is sampled to at most
    :data:`LEVEL_SAMPLES` pixels."""
    parts = [
        v for v in (_pane_values(im, m) for im, m in zip(images, masks, strict=True)) if v.size
    ]
    if not parts:
        return 0.0, 1.0
    values = np.concatenate(parts)
    weights = np.concatenate([np.full(v.size, 1.0 / v.size) for v in parts])
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    position = (np.cumsum(weights) - 0.5 * weights) / weights.sum()
    low, high = (float(v) for v in np.interp([0.005, 0.995], position, values))
    if not high > low:
        pad = max(abs(low) * 1e-3, 1e-6)
        low, high = low - pad, high + pad
    return low, high


def level_share(image: np.ndarray, mask: np.ndarray | None, levels: tuple[float, float]) -> float:
    """The fraction of ``levels`` that the image's own robust range covers (0 to 1): a
    small share shows the image as a nearly flat grey."""
    low, high = robust_range(image, mask)
    span = levels[1] - levels[0]
    if not span > 0:
        return 0.0
    covered = min(high, levels[1]) - max(low, levels[0])
    return max(0.0, min(1.0, covered / span))


@dataclass(frozen=True)
class PaneLevels:
    """The levels of a comparison's panes.

    Attributes
    ----------
    levels : list of (float, float)
        One per pane (all equal when shared).
    shared : bool
    flat : tuple of int
        The panes that shared levels would show nearly flat (:data:`MIN_LEVEL_SHARE`).
    """

    levels: list[tuple[float, float]]
    shared: bool
    flat: tuple[int, ...] = ()


def pane_levels(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray | None],
    policy: str = "auto",
    phase: bool = False,
) -> PaneLevels:
    """Levels for the panes of a comparison.

    ``"shared"``: one range for all (:func:`shared_levels`; for a wrapped phase the rule of
    :func:`ptycho_engine.display.phase_levels` on all the panes' pixels). ``"per run"``: each
    pane its own robust range (phase rule for a phase). ``"auto"``: shared unless a pane's
    own range covers less than :data:`MIN_LEVEL_SHARE` of the shared one, then per run.

    Raises
    ------
    ValueError
        An unknown policy.
    """
    if policy not in LEVEL_POLICIES:
        raise ValueError(f"policy must be one of {LEVEL_POLICIES}, got {policy!r}")
    own = [
        phase_levels(im, m) if phase else robust_range(im, m)
        for im, m in zip(images, masks, strict=True)
    ]
    common = shared_levels(images, masks)
    if phase and common[1] - common[0] >= PHASE_RANGE_FRACTION * 2 * math.pi:
        common = PHASE_LEVELS  # the rule of phase_levels, on every pane's pixels
    flat = tuple(
        k
        for k, (im, m) in enumerate(zip(images, masks, strict=True))
        if level_share(im, m, common) < MIN_LEVEL_SHARE
    )
    if policy == "per run" or (policy == "auto" and flat):
        return PaneLevels(own, False, flat)
    return PaneLevels([common] * len(own), True, flat)


def data_mismatch(records: Sequence[RunRecord]) -> str:
    """Why runs should not be compared: ``"runs #1 and #3 come from different files: a.npz,
    b.cxi"`` (the first run and the first whose file differs, then every file), or "" when
    all runs that name their file name the same one (runs without one, such as a study's
    ground truth, are left out)."""
    known = [(r, os.path.normpath(os.path.abspath(r.data_path))) for r in records if r.data_path]
    if len(known) < 2:
        return ""
    first, first_path = known[0]
    other = next((r for r, path in known[1:] if path != first_path), None)
    if other is None:
        return ""
    paths = list(dict.fromkeys(path for _r, path in known))
    names = [os.path.basename(path) for path in paths]
    shown = names if len(set(names)) == len(names) else paths
    return f"runs #{first.run_id} and #{other.run_id} come from different files: " + ", ".join(
        shown
    )


def region_frc(
    frames: Sequence[FrameImage], a: int, b: int, rect: tuple[float, float, float, float]
) -> FrcCurve | None:
    """The FRC of frames ``a`` and ``b`` over the pixels of ``rect = (x, y, width, height)``
    (pixels of the common region whose centres lie inside) that both hold; None when that is
    too small for rings."""
    rows, cols = region_pixels(frames[a].object.shape, rect)
    cut = [
        FrameImage(frames[k].object[rows, cols], frames[k].valid[rows, cols], (0.0, 0.0))
        for k in (a, b)
    ]
    if min(cut[0].object.shape) < 8:
        return None
    return frc_curve(cut[0], cut[1], a, b)


#: The FRC thresholds whose crossings the comparison reports, in this order.
THRESHOLDS = ("1/7", "half-bit")


def threshold_curve(threshold: str, counts: np.ndarray) -> np.ndarray:
    """The FRC threshold per ring (:func:`ptycho_engine.metrics.threshold_curve`)."""
    from ptycho_engine.metrics import threshold_curve as engine_threshold_curve

    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {THRESHOLDS}, got {threshold!r}")
    return engine_threshold_curve(threshold, np.asarray(counts))


@dataclass(frozen=True)
class FrcCrossing:
    """Where an FRC curve falls below a threshold.

    Attributes
    ----------
    threshold : {"1/7", "half-bit"}
    resolution_px : float
        ``1 / frequency`` of the crossing, in pixels of the comparison grid: 2.0 (Nyquist)
        when the curve never falls below the threshold, ``inf`` when it is below at the first
        ring searched (no resolved detail), as :func:`ptycho_engine.metrics.frc_resolution`.
    frequency : float
        Crossing frequency in cycles per pixel (NaN without a crossing).
    level : float
        The threshold at the crossing (NaN without a crossing).
    """

    threshold: str
    resolution_px: float
    frequency: float = math.nan
    level: float = math.nan

    @property
    def crossed(self) -> bool:
        """True when the curve crosses the threshold within the rings (a finite resolution
        coarser than Nyquist)."""
        return math.isfinite(self.frequency)

    def resolution_m(self, pixel_size_m: float | None) -> float | None:
        """The resolution in metres for pixels of ``pixel_size_m`` (None when unknown)."""
        return None if pixel_size_m is None else self.resolution_px * pixel_size_m


def crossing_text(crossing: FrcCrossing, pixel_size_m: float | None = None) -> str:
    """A table cell for a crossing: its resolution in pixels, or in metres (SI prefix) for
    pixels of ``pixel_size_m``: ``"3.41"``, ``"34.1 nm"``; ``"≤ 2.00 (Nyquist)"`` when the
    curve never falls below the threshold, ``"none"`` when it starts below it, ``"-"`` for
    metres without a pixel size."""
    if math.isinf(crossing.resolution_px):
        return "none"
    if pixel_size_m is None:
        text = f"{crossing.resolution_px:.2f}"
        return text if crossing.crossed else f"≤ {text} (Nyquist)"
    metres = crossing.resolution_m(pixel_size_m)
    assert metres is not None
    text = metres_text(metres)
    return text if crossing.crossed else f"≤ {text}"


def metres_text(value: float) -> str:
    """A length with an SI prefix and 3 significant digits: ``"34.1 nm"``, ``"1.2 µm"``."""
    for factor, unit in ((1.0, "m"), (1e-3, "mm"), (1e-6, "µm"), (1e-9, "nm")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {unit}"
    return f"{value / 1e-12:.3g} pm"


def frc_crossing(
    frequency: np.ndarray,
    curve: np.ndarray,
    counts: np.ndarray,
    threshold: str,
    power: np.ndarray | None = None,
) -> FrcCrossing:
    """The first crossing of ``threshold`` by a precomputed FRC curve, as the engine's scores
    find it (:func:`ptycho_engine.metrics.frc_crossing`).

    Raises
    ------
    ValueError
        An unknown threshold, or a curve with no ring to search.
    """
    from ptycho_engine.errors import DataError
    from ptycho_engine.metrics import frc_crossing as engine_crossing

    if threshold not in THRESHOLDS:
        raise ValueError(f"threshold must be one of {THRESHOLDS}, got {threshold!r}")
    try:
        resolution, frequency_at, level = engine_crossing(
            frequency,
            curve,
            counts,
            threshold,  # type: ignore[arg-type]
            power,
        )
    except DataError as exc:
        raise ValueError(str(exc)) from exc
    return FrcCrossing(threshold, resolution, frequency_at, level)


@dataclass(frozen=True, eq=False)
class FrcCurve:
    """The FRC of one run against another over the pixels both hold, with its threshold
    crossings.

    Attributes
    ----------
    index : int
        Position of the run in the comparison.
    frequency, curve : ndarray, (n_rings,) float64
        Cycles per pixel and correlation per ring.
    other : int
        Position of the run it is correlated with (the reference run for the curves of
        :attr:`Comparison.curves`).
    counts : ndarray, (n_rings,) int64
        Fourier pixels per ring.
    half_bit : ndarray, (n_rings,) float64
        The half-bit threshold of these rings.
    crossings : tuple of FrcCrossing
        One per threshold of :data:`THRESHOLDS`.
    """

    index: int
    frequency: np.ndarray
    curve: np.ndarray
    other: int = -1
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    half_bit: np.ndarray = field(default_factory=lambda: np.zeros(0))
    crossings: tuple[FrcCrossing, ...] = ()

    def crossing(self, threshold: str) -> FrcCrossing | None:
        """The crossing of ``threshold`` (None when it was not computed)."""
        return next((c for c in self.crossings if c.threshold == threshold), None)


@dataclass(frozen=True, eq=False)
class Comparison:
    """Everything the comparison window draws, computed off the GUI thread.

    Attributes
    ----------
    reference : int
    frames : list of FrameImage
        Every run on the reference grid, cut to the common region.
    curves : list of FrcCurve
        Every run but the reference against the reference.
    pairs : dict of (int, int) to FrcCurve
        Every pair of runs ``(i, j)``, ``i < j``, on the common region (run ``i`` against
        run ``j``); a pair whose common valid region is too small has none.
    pixel_size_m : float or None
        Pixel size of the reference grid (the crossings' pixels), None when no run knows
        its own.
    """

    reference: int
    frames: list[FrameImage]
    curves: list[FrcCurve]
    pairs: dict[tuple[int, int], FrcCurve] = field(default_factory=dict)
    pixel_size_m: float | None = None

    def pair(self, a: int, b: int) -> FrcCurve | None:
        """The FRC of runs ``a`` and ``b`` (either order; None when there is none)."""
        return self.pairs.get((min(a, b), max(a, b)))


def grid_pixel_size(images: list[FrameImage], reference: int) -> float | None:
    """Pixel size of the reference grid: the reference's own, else that of another run with
    a known pixel size scaled by the runs' sampling ratio (None when no run knows it)."""
    ref = images[reference]
    if ref.pixel_size_m is not None:
        return ref.pixel_size_m
    for image in images:
        if image.pixel_size_m is not None and ref.scale > 0:
            return image.pixel_size_m * image.scale / ref.scale
    return None


def frc_curve(a: FrameImage, b: FrameImage, index: int, other: int) -> FrcCurve | None:
    """The FRC of two frames of the common region over the pixels both hold, with its
    threshold crossings (None when that region is too small for rings)."""
    from ptycho_engine.errors import DataError
    from ptycho_engine.metrics import frc_rings

    both = a.valid & b.valid
    if int(both.sum()) < 64:
        return None
    try:
        frequency, curve, counts, power = frc_rings(a.object, b.object, both)
        crossings = tuple(frc_crossing(frequency, curve, counts, t, power) for t in THRESHOLDS)
    except (DataError, ValueError):  # a region too thin for rings: no curve for this pair
        return None
    return FrcCurve(
        index,
        frequency,
        curve,
        other,
        counts,
        threshold_curve("half-bit", counts),
        crossings,
    )


def compare_frames(images: list[FrameImage], reference: int = 0) -> Comparison:
    """Resample and cut the runs to their common region (:func:`common_frame`), compute each
    run's FRC against the reference and the FRC of every pair, each with its 1/7 and
    half-bit crossings (numpy; run it in a worker).

    Raises
    ------
    ValueError
        When the frames do not overlap.
    """
    frames = common_frame(images, reference)
    pairs: dict[tuple[int, int], FrcCurve] = {}
    for i in range(len(frames)):
        for j in range(i + 1, len(frames)):
            pair = frc_curve(frames[i], frames[j], i, j)
            if pair is not None:
                pairs[(i, j)] = pair
    curves = []
    for k in range(len(frames)):
        pair = pairs.get((min(k, reference), max(k, reference)))
        if k != reference and pair is not None:
            # the FRC is symmetric in its two images: the pair's curve is the run's
            curves.append(dataclasses.replace(pair, index=k, other=reference))
    return Comparison(reference, frames, curves, pairs, grid_pixel_size(images, reference))
