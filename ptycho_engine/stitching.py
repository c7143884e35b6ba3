"""Stitch object patches into one object (physics.md section 7; numpy only).

A patch predicted for a scan position ``(y, x)`` covers object coordinates
``(y - N//2 + i, x - N//2 + j)``. Each patch is placed with a bilinear sub-pixel shift,
weighted by a window (default: the object support, the central ``N/2 x N/2`` square), and the
canvas is the weighted sum divided by the summed weights where they reach ``min_weight``;
elsewhere the canvas is 0 and marked invalid.
"""

from __future__ import annotations

import math

import numpy as np

from ptycho_engine.data import StitchSnapshot
from ptycho_engine.errors import DataError

#: The stitching windows (:func:`ptycho_engine.inference.stitch_window`).
WINDOWS = ("support", "probe")
#: The stitching window of every reconstruction unless a run asks for another (the app, the
#: CLI, previews and final images alike). The probe amplitude weights each patch pixel by how
#: well it was illuminated, as iterative solvers weight their object update; the flat support
#: gives the poorly determined patch edges full weight, and their errors make a grid of seams.
#: Measured at N 64, gridsize 2, the same trained model stitched both ways, amplitude / phase
#: SSIM: 0.326 / 0.351 -> 0.411 / 0.460 (KB probe, cells, 480 steps) and 0.690 / 0.689 ->
#: 0.726 / 0.733 (the lines sample, 480 steps) on the pixels both windows mark valid;
#: 0.264 / 0.342 -> 0.343 / 0.468 (zone plate, 2 modes, 500 positions, 600 steps; seam
#: measure 11.2 -> 8.6) on each window's valid pixels; a fourth, barely trained (amplitude
#: SSIM 0.04), stayed at chance level with either.
#: The probe intensity (|P|**2, inverse-variance weights for an estimate whose error goes as
#: 1/|P|) was measured against it on 2026-12-06, same patches, same valid pixels: better on
#: the few-patterns case of ``benchmarks/time_to_quality.py`` (seam measure 1.330 -> 1.147,
#: SSIM 0.696 / 0.737 -> 0.708 / 0.759) and on the held-out scan at gridsize 2 (seam 12.0 ->
#: 11.2, 0.507 / 0.478 -> 0.523 / 0.504), worse at gridsize 1 (seam 20.7 -> 27.3, amplitude
#: SSIM 0.643 -> 0.606), so the amplitude stays. Nor are the seams the groups' free global
#: phases: on the few-patterns case they differ by 0.026 rad (std), and aligning them changes
#: the seam measure by +0.01. They are the network's bias in the patch frame, which a raster
#: stitches into a pattern with the scan's period; :mod:`ptycho_engine.grid_pattern` divides
#: it out of the finished image.
DEFAULT_WINDOW = "probe"
DEFAULT_MIN_WEIGHT = 0.5
#: Whether a raster scan's grid pattern is divided out of the network's finished images
#: (:func:`ptycho_engine.grid_pattern.remove_grid_pattern`) unless a run asks otherwise.
DEFAULT_REMOVE_GRID = True


class Stitcher:
    """Accumulates weighted patches on one canvas.

    Parameters
    ----------
    positions_px : ndarray, (M, 2)
        All positions that will be stitched (sizes the canvas), ``(y, x)``.
    N : int
        Patch size.
    window : ndarray, (N, N) float
        Weight of every patch pixel.
    min_weight : float
        Summed weight below which a canvas pixel is invalid.
    """

    def __init__(
        self,
        positions_px: np.ndarray,
        N: int,
        window: np.ndarray,
        min_weight: float = DEFAULT_MIN_WEIGHT,
    ) -> None:
        pos = np.asarray(positions_px, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 2 or pos.shape[0] == 0:
            raise DataError(f"positions must be (M, 2) with M > 0, got {pos.shape}")
        if np.shape(window) != (N, N):
            raise DataError(f"window must be ({N}, {N}), got {np.shape(window)}")
        self.N = N
        self.window = np.asarray(window, dtype=np.float32)
        self.min_weight = float(min_weight)
        lo = np.floor(pos.min(axis=0) - N // 2) - 1
        hi = np.ceil(pos.max(axis=0) - N // 2) + N + 2
        self.origin_px = (float(lo[0]), float(lo[1]))
        shape = (int(hi[0] - lo[0]), int(hi[1] - lo[1]))
        self.numerator = np.zeros(shape, np.complex64)
        self.weights = np.zeros(shape, np.float32)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.weights.shape[0]), int(self.weights.shape[1]))

    def add(self, patches: np.ndarray, positions_px: np.ndarray) -> None:
        """Add patches ``(K, N, N)`` complex at positions ``(K, 2)``."""
        n = self.N
        corner = np.asarray(positions_px, np.float64) - n // 2 - np.asarray(self.origin_px)
        base = np.floor(corner)
        frac = (corner - base).astype(np.float32)
        if np.any(base < 0) or np.any(base[:, 0] + n + 1 > self.shape[0]):
            raise DataError("a patch position lies outside the canvas sized at construction")
        if np.any(base[:, 1] + n + 1 > self.shape[1]):
            raise DataError("a patch position lies outside the canvas sized at construction")
        fy = frac[:, 0, None, None]
        fx = frac[:, 1, None, None]
        weighted = np.asarray(patches, np.complex64) * self.window
        ext = np.zeros((len(frac), n + 1, n + 1), np.complex64)
        wext = np.zeros((len(frac), n + 1, n + 1), np.float32)
        for dy, wy in ((0, 1 - fy), (1, fy)):
            for dx, wx in ((0, 1 - fx), (1, fx)):
                ext[:, dy : dy + n, dx : dx + n] += (wy * wx) * weighted
                wext[:, dy : dy + n, dx : dx + n] += (wy * wx) * self.window
        for k, (y0, x0) in enumerate(base.astype(np.int64)):
            self.numerator[y0 : y0 + n + 1, x0 : x0 + n + 1] += ext[k]
            self.weights[y0 : y0 + n + 1, x0 : x0 + n + 1] += wext[k]

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """Stitched object ``(H, W)`` complex64 (0 where invalid) and the valid mask."""
        valid = self.weights >= self.min_weight
        obj = np.zeros_like(self.numerator)
        obj[valid] = self.numerator[valid] / self.weights[valid]
        return obj, valid

    def snapshot(self, done: int, total: int) -> StitchSnapshot:
        obj, valid = self.result()
        return StitchSnapshot(obj, valid, done, total, self.origin_px)


def stitch(
    patches: np.ndarray,
    positions_px: np.ndarray,
    window: np.ndarray,
    min_weight: float = DEFAULT_MIN_WEIGHT,
) -> StitchSnapshot:
    """Stitch patches ``(K, N, N)`` complex at positions ``(K, 2)`` in one call."""
    n = int(np.shape(patches)[-1])
    stitcher = Stitcher(positions_px, n, window, min_weight)
    for start in range(0, len(positions_px), 1024):
        stitcher.add(patches[start : start + 1024], positions_px[start : start + 1024])
    return stitcher.snapshot(len(positions_px), len(positions_px))


def reference_region(
    object_gt: np.ndarray, origin_px: tuple[float, float], shape: tuple[int, int]
) -> np.ndarray:
    """Cut the ground truth to a canvas frame (zero where the canvas leaves the object).

    Parameters
    ----------
    object_gt : ndarray, (H0, W0) complex
    origin_px : (float, float), integer-valued ``(y, x)`` of canvas pixel ``(0, 0)``
    shape : (int, int), canvas shape

    Returns
    -------
    ndarray, ``shape`` complex64.
    """
    out = np.zeros(shape, np.complex64)
    oy, ox = (math.floor(v) for v in origin_px)
    y0, x0 = max(oy, 0), max(ox, 0)
    y1 = min(oy + shape[0], object_gt.shape[0])
    x1 = min(ox + shape[1], object_gt.shape[1])
    if y1 > y0 and x1 > x0:
        out[y0 - oy : y1 - oy, x0 - ox : x1 - ox] = object_gt[y0:y1, x0:x1]
    return out
