"""Patch seams of a stitched object: excess power at the patch-grid frequencies.

A network stitches an object from patches cut at the scan positions. Where the patches do not
agree at their edges, the image shows a grid of seams with the period of the scan: for a raster
of step ``s`` pixels, power at the lattice of spatial frequencies ``(k / s_y, l / s_x)``. The
object itself also has some power there, so the measure compares the two: the share of the
amplitude's power at those frequencies in the estimate against the same share in the truth.
A ratio of 1 means no seams (above the object's own content); 1.5 means half as much power
again at the grid frequencies as the object has.

The share is taken over the valid region's bounding box, mean removed, under a 2-D Hann
window (so the box edges add no power at the lattice), in bins within one bin of each lattice
frequency, the zero frequency excluded. It is a ratio of shares, so a global amplitude scale or
a loss of contrast does not change it.

A blurred estimate has less power at the lattice frequencies (most of them high) than the
truth, seams or not, so its ratio reads low: seams and blur can cancel. The local ratio takes
the blur out: each image's mean power per bin at the lattice frequencies over its mean power
per bin in the ring around them (2 to 3 bins from a lattice frequency, and not within one bin
of another), estimate over truth. 1 means the estimate's spectrum has no more of a peak at
the patch grid than the truth's.

This module never imports TensorFlow or Qt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial import cKDTree

from ptycho_engine.errors import DataError


@dataclass(frozen=True)
class SeamReport:
    """Seam measure of an estimate against its truth.

    Attributes
    ----------
    ratio : float
        ``estimate_share / reference_share``: 1 means no excess power at the patch grid
        (NaN when the reference has none there or nothing could be measured).
    estimate_share, reference_share : float
        Fraction of the (mean-removed, windowed) amplitude power at the lattice frequencies.
    local_ratio : float
        The estimate's peak at the lattice frequencies over the ring around them, against
        the same for the truth (module docstring); NaN where ``ratio`` is.
    step_px : tuple of float
        The grid period ``(s_y, s_x)`` in pixels.
    flag : str
        Why the ratio is NaN ("" when it is not).
    """

    ratio: float
    estimate_share: float
    reference_share: float
    step_px: tuple[float, float]
    flag: str = ""
    local_ratio: float = math.nan


def raster_step(positions_px: ArrayLike) -> tuple[float, float]:
    """The pitch ``(s_y, s_x)`` of a (jittered) raster scan, in pixels.

    Each axis's coordinates are sorted; the gaps larger than a third of the median nearest-
    neighbour distance separate rows (columns); the pitch is the median distance between the
    means of consecutive rows (columns).

    Raises
    ------
    DataError
        Fewer than 2 rows or columns, or positions that are not ``(M, 2)`` finite numbers.
    """
    pos = np.asarray(positions_px, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 2 or pos.shape[0] < 4 or not np.isfinite(pos).all():
        raise DataError(f"positions must be (M, 2) finite numbers with M >= 4, got {pos.shape}")
    distance, _ = cKDTree(pos).query(pos, k=2)  # the nearest other position is the second
    nearest = float(np.median(distance[:, 1]))
    steps = []
    for axis in (0, 1):
        values = np.sort(pos[:, axis])
        cuts = np.flatnonzero(np.diff(values) > nearest / 3.0) + 1
        groups = np.split(values, cuts)
        if len(groups) < 2:
            raise DataError("the positions do not form a raster: fewer than 2 rows or columns")
        centres = np.array([g.mean() for g in groups])
        steps.append(float(np.median(np.diff(centres))))
    return steps[0], steps[1]


def _lattice_bins(
    shape: tuple[int, int], step: tuple[float, float], inner: int, outer: int
) -> NDArray[np.bool_]:
    """Bins within ``inner..outer`` bins (Chebyshev distance) of a lattice frequency."""
    h, w = shape
    mask = np.zeros(shape, dtype=bool)
    ky = np.arange(-math.floor(step[0] / 2), math.floor(step[0] / 2) + 1)
    kx = np.arange(-math.floor(step[1] / 2), math.floor(step[1] / 2) + 1)
    for a in ky:
        for b in kx:
            if a == 0 and b == 0:
                continue
            fy, fx = a / step[0], b / step[1]
            if abs(fy) > 0.5 or abs(fx) > 0.5:
                continue
            iy, ix = round(fy * h), round(fx * w)
            for dy in range(-outer, outer + 1):
                for dx in range(-outer, outer + 1):
                    if max(abs(dy), abs(dx)) >= inner:
                        mask[(iy + dy) % h, (ix + dx) % w] = True
    return mask


def _spectrum(image: NDArray[np.float64], step: tuple[float, float]) -> tuple[float, float]:
    """The share of the power on the grid, and the grid's peak over the ring around it."""
    h, w = image.shape
    window = np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fft2(image * window)) ** 2
    power[0, 0] = 0.0
    total = float(power.sum())
    if total <= 0.0 or not math.isfinite(total):
        return math.nan, math.nan
    on_grid = _lattice_bins((h, w), step, 0, 1)
    ring = _lattice_bins((h, w), step, 2, 3) & ~on_grid
    # the bins next to the zero frequency hold the window's own leakage: never on the grid
    for dy in range(-3, 4):
        for dx in range(-3, 4):
            ring[dy % h, dx % w] = False
            if max(abs(dy), abs(dx)) <= 1:
                on_grid[dy % h, dx % w] = False
    share = float(power[on_grid].sum()) / total
    around = float(power[ring].mean()) if ring.any() else 0.0
    peak = float(power[on_grid].mean()) / around if around > 0.0 else math.nan
    return share, peak


def seam_excess(
    estimate: ArrayLike,
    reference: ArrayLike,
    step_px: float | tuple[float, float],
    valid: ArrayLike | None = None,
) -> SeamReport:
    """How much more power the estimate's amplitude has at the patch-grid frequencies than
    the truth's (the module docstring gives the measure).

    Parameters
    ----------
    estimate, reference : array_like, (H, W)
        Amplitudes (or complex objects: their modulus is used), in the same frame: align the
        estimate first (:func:`ptycho_engine.metrics.align_to_reference`).
    step_px : float or (float, float)
        Period of the patch grid in pixels: the raster pitch (:func:`raster_step`).
    valid : array_like of bool, (H, W), optional
        Region to measure (its bounding box; pixels outside it inside the box are set to the
        region's mean). None: the whole frame.

    Returns
    -------
    SeamReport
        Never raises for what the images hold: a constant image gives a NaN ratio and a flag.

    Raises
    ------
    DataError
        Shapes that differ, a step under 2 px, or a region smaller than 4 periods.
    """
    est = np.abs(np.asarray(estimate)).astype(np.float64)
    ref = np.abs(np.asarray(reference)).astype(np.float64)
    if est.ndim != 2 or est.shape != ref.shape:
        raise DataError(f"estimate {est.shape} and reference {ref.shape} must be equal 2-D shapes")
    periods = [float(v) for v in np.ravel(step_px)]
    if len(periods) == 1:
        periods *= 2
    if len(periods) != 2 or not all(math.isfinite(s) and s >= 2.0 for s in periods):
        raise DataError(f"step_px must be one or two periods >= 2 px, got {step_px!r}")
    step = (periods[0], periods[1])
    mask = np.ones(est.shape, bool) if valid is None else np.asarray(valid, dtype=bool)
    if mask.shape != est.shape:
        raise DataError(f"valid {mask.shape} must have the images' shape {est.shape}")
    mask = mask & np.isfinite(est) & np.isfinite(ref)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size < 4 * step[0] or cols.size < 4 * step[1]:
        raise DataError(
            f"the region ({rows.size} x {cols.size} px) is smaller than 4 grid periods "
            f"({step[0]:g} x {step[1]:g} px)"
        )
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    spectra = []
    for image in (est, ref):
        part = image[box].copy()
        inside = mask[box]
        mean = part[inside].mean()
        part[~inside] = mean
        part -= mean
        spectra.append(_spectrum(part, step))
    (e, e_peak), (r, r_peak) = spectra
    flag = ""
    if not math.isfinite(e):
        flag = "the estimate's amplitude is constant over the region"
    elif not math.isfinite(r) or r <= 0.0:
        flag = "the reference has no power at the patch-grid frequencies"
    ratio = e / r if not flag else math.nan
    local = e_peak / r_peak if not flag and r_peak > 0.0 else math.nan
    return SeamReport(ratio, e, r, step, flag, local)
