"""Overlap constraint of a group of patches (physics.md section 4).

Patches of one group live on a per-sample canvas large enough for the group's offsets. Patch
``c`` is placed with ``translate(+r_c)``; the canvas is the support-weighted mean of the placed
patches, and each patch is extracted back with ``translate(-r_c)``. Every sample of a batch
keeps its own canvas: nothing is summed across the batch axis.

The functions here take patches channel-first, ``(B, C, N, N)``, the layout in which the
physics layer works (FFTs act on the last two axes, and ``(B, C, N, N)`` reshapes to the
``(B*C, N, N)`` batch of images that the translation needs without a copy).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from ptycho_engine.physics.shift import (
    shift_box_profiles,
    shift_resample_many,
    shift_resample_sum,
)

OVERLAP_EPS = 1e-3


def canvas_size(N: int, max_offset_px: float) -> int:
    """Side of the group canvas: ``N + 2 * (ceil(max |r|) + 1)`` (even margin, bilinear room)."""
    if not math.isfinite(max_offset_px) or max_offset_px < 0:
        raise ValueError(f"max_offset_px must be a finite number >= 0, got {max_offset_px!r}")
    return N + 2 * (math.ceil(max_offset_px) + 1)


def place_patches(patches: tf.Tensor, offsets: tf.Tensor, size: int) -> tf.Tensor:
    """Sum of the patches of each group placed at ``+r_c`` on a ``size x size`` canvas.

    Parameters
    ----------
    patches : Tensor, (B, C, N, N), real or complex
    offsets : Tensor, (B, C, 2) float32, ``(dy, dx)`` relative to the group centroid
    size : int
        Canvas side (``N`` plus an even margin).

    Returns
    -------
    Tensor, (B, size, size): one canvas per sample.
    """
    return shift_resample_sum(patches, offsets, size)


def extract_patches(canvas: tf.Tensor, offsets: tf.Tensor, N: int) -> tf.Tensor:
    """Patches ``crop_N(translate(canvas, -r_c))`` of each sample's canvas.

    Parameters
    ----------
    canvas : Tensor, (B, S, S)
    offsets : Tensor, (B, C, 2)
    N : int

    Returns
    -------
    Tensor, (B, C, N, N).
    """
    return shift_resample_many(canvas, -offsets, N)


def centred_box(support: np.ndarray) -> tuple[int, int]:
    """``(lo, hi)`` of the smallest centred square holding every non-zero support pixel."""
    n = int(support.shape[0])
    rows = np.flatnonzero(np.any(support != 0, axis=1))
    cols = np.flatnonzero(np.any(support != 0, axis=0))
    if rows.size == 0:
        return 0, n
    margin = min(int(rows[0]), n - 1 - int(rows[-1]), int(cols[0]), n - 1 - int(cols[-1]))
    return margin, n - margin


def overlap_constraint(
    patches: tf.Tensor,
    offsets: tf.Tensor,
    support: np.ndarray,
    size: int,
    out_size: int | None = None,
) -> tf.Tensor:
    """Make the patches of each group agree where they overlap.

    ``canvas = sum_c T(+r_c)[O_c] / (sum_c T(+r_c)[S] + 1e-3)``,
    ``O'_c = crop_N(T(-r_c)[canvas])``.

    Parameters
    ----------
    patches : Tensor, (B, C, N, N) complex64, zero outside the support
    offsets : Tensor, (B, C, 2) float32
    support : ndarray, (N, N) float32
    size : int
        Canvas side.
    out_size : int, optional
        Side of the extracted patches (default the input side). A caller that already cut
        the patches to their support box passes the full ``N`` here, with the box's support
        and a canvas smaller by ``N`` minus the box side.

    Returns
    -------
    Tensor, (B, C, out_size, out_size) complex64.
    """
    n = int(patches.shape[2])
    n_out = n if out_size is None else int(out_size)
    # The patches are zero outside the support: when the support is a centred box, only the
    # box is placed (same centred frame), on a canvas smaller by the same margin. Outside the
    # placed boxes the canvas is zero either way, and extraction zero-fills beyond the canvas,
    # so every extracted patch is identical to the full-size computation, at a fraction of
    # the cost.
    lo, hi = centred_box(support)
    if hi - lo < n:
        patches = patches[:, :, lo:hi, lo:hi]
        support = support[lo:hi, lo:hi]
        size -= n - (hi - lo)
    numerator = place_patches(patches, offsets, size)
    side = int(support.shape[0])
    if np.all(support == 1):
        # a box of ones placed with a separable shift is an outer product of two profiles
        channels = int(offsets.shape[1])
        rows, cols = shift_box_profiles(tf.reshape(offsets, [-1, 2]), side, size)
        placed = rows[:, :, tf.newaxis] * cols[:, tf.newaxis, :]
        denominator = tf.reduce_sum(tf.reshape(placed, [-1, channels, size, size]), axis=1)
    else:
        mask_shape = tf.concat([tf.shape(offsets)[:2], [side, side]], axis=0)
        mask = tf.broadcast_to(tf.constant(support)[tf.newaxis, tf.newaxis], mask_shape)
        denominator = place_patches(mask, offsets, size)
    denominator = denominator + OVERLAP_EPS
    canvas = numerator / tf.cast(denominator, numerator.dtype)
    return extract_patches(canvas, offsets, n_out)
