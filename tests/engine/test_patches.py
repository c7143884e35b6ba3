"""Overlap constraint: placement and extraction, per-sample canvases (physics.md section 4)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from ptycho_engine.physics.patches import (
    OVERLAP_EPS,
    canvas_size,
    extract_patches,
    overlap_constraint,
    place_patches,
)
from ptycho_engine.physics.probe import support_mask
from tests.engine.reference import reference_translate

N = 16


def _patches(rng: np.random.Generator, b: int, c: int) -> np.ndarray:
    support = support_mask(N)
    z = rng.normal(size=(b, c, N, N)) + 1j * rng.normal(size=(b, c, N, N))
    return (z * support).astype(np.complex64)


@pytest.mark.parametrize("channels", [1, 4, 9])
def test_place_then_extract_returns_patch_inside_support(channels: int) -> None:
    rng = np.random.default_rng(0)
    patches = _patches(rng, 3, channels)
    offsets = rng.integers(-5, 6, size=(3, channels, 2)).astype(np.float32)
    size = canvas_size(N, 5)
    placed = tf.reshape(
        place_patches(tf.constant(patches[:, :1]), tf.constant(offsets[:, :1]), size),
        (3, size, size),
    )
    back = extract_patches(placed, tf.constant(offsets[:, :1]), N).numpy()
    inside = support_mask(N).astype(bool)
    np.testing.assert_allclose(back[:, 0][:, inside], patches[:, 0][:, inside], atol=1e-5)


def test_subpixel_place_then_extract_is_two_bilinear_passes() -> None:
    """With sub-pixel offsets the round trip is exactly two bilinear interpolations."""
    rng = np.random.default_rng(1)
    patches = _patches(rng, 2, 1)
    offsets = np.array([[[1.25, -2.5]], [[-0.5, 0.75]]], np.float32)
    size = canvas_size(N, 3)
    pad = (size - N) // 2
    back = extract_patches(place_patches(patches, offsets, size), offsets, N).numpy()[:, 0]
    padded = np.pad(patches[:, 0], [(0, 0), (pad, pad), (pad, pad)])
    twice = reference_translate(reference_translate(padded, offsets[:, 0]), -offsets[:, 0])
    np.testing.assert_allclose(back, twice[:, pad : pad + N, pad : pad + N], atol=1e-5)


def test_consistent_patches_pass_through_the_constraint() -> None:
    """Patches cut from one object at integer offsets come back unchanged (up to the eps)."""
    rng = np.random.default_rng(2)
    obj = (rng.normal(size=(40, 40)) + 1j * rng.normal(size=(40, 40))).astype(np.complex64)
    support = support_mask(N)
    offsets = np.array([[[-3, -2], [-3, 4], [2, -1], [4, -1]]], np.float32)
    patches = (
        np.stack(
            [
                obj[
                    20 + int(dy) - N // 2 : 20 + int(dy) + N // 2,
                    20 + int(dx) - N // 2 : 20 + int(dx) + N // 2,
                ]
                for dy, dx in offsets[0]
            ]
        )[None]
        * support
    )
    out = overlap_constraint(tf.constant(patches), tf.constant(offsets), support, canvas_size(N, 4))
    out = out.numpy()
    # the support sum S at a pixel counts the covering patches; the canvas is sum/(S + eps)
    count = np.zeros((1, 4, N, N), np.float32)
    for c, (dy, dx) in enumerate(offsets[0]):
        cover = np.zeros((40, 40), np.float32)
        for dy2, dx2 in offsets[0]:
            y0, x0 = 20 + int(dy2) - N // 2, 20 + int(dx2) - N // 2
            cover[y0 : y0 + N, x0 : x0 + N] += support
        y0, x0 = 20 + int(dy) - N // 2, 20 + int(dx) - N // 2
        count[0, c] = cover[y0 : y0 + N, x0 : x0 + N]
    inside = support.astype(bool)
    expected = patches * count / (count + OVERLAP_EPS)
    np.testing.assert_allclose(out[..., inside], expected[..., inside], atol=1e-5)


@pytest.mark.parametrize("batch", [1, 7, 64])
@pytest.mark.parametrize("channels", [4, 9])
def test_each_sample_keeps_its_own_canvas(batch: int, channels: int) -> None:
    rng = np.random.default_rng(3)
    patches = _patches(rng, batch, channels)
    offsets = rng.uniform(-4, 4, size=(batch, channels, 2)).astype(np.float32)
    support = support_mask(N)
    size = canvas_size(N, 4)
    together = overlap_constraint(tf.constant(patches), tf.constant(offsets), support, size).numpy()
    assert together.shape == (batch, channels, N, N)
    for b in {0, batch // 2, batch - 1}:
        alone = overlap_constraint(
            tf.constant(patches[b : b + 1]), tf.constant(offsets[b : b + 1]), support, size
        ).numpy()
        np.testing.assert_allclose(together[b], alone[0], atol=1e-6)


def test_canvas_size_grows_with_offsets() -> None:
    assert canvas_size(64, 0) == 66
    assert canvas_size(64, 10.2) == 64 + 2 * 12
    with pytest.raises(ValueError, match="max_offset_px"):
        canvas_size(64, float("nan"))


@pytest.mark.parametrize("channels", [4, 9])
def test_cropped_support_placement_equals_the_full_computation(channels: int) -> None:
    """overlap_constraint places only the support box on a smaller canvas; the extracted
    patches must equal the full-size computation of physics.md section 4 exactly."""
    rng = np.random.default_rng(5)
    patches = _patches(rng, 3, channels)
    offsets = rng.uniform(-6, 6, size=(3, channels, 2)).astype(np.float32)
    support = support_mask(N)
    size = canvas_size(N, 6)
    fast = overlap_constraint(tf.constant(patches), tf.constant(offsets), support, size).numpy()
    numerator = place_patches(tf.constant(patches), tf.constant(offsets), size)
    mask = np.broadcast_to(support, (3, channels, N, N)).astype(np.float32)
    denominator = place_patches(tf.constant(mask), tf.constant(offsets), size) + OVERLAP_EPS
    canvas = numerator / tf.cast(denominator, tf.complex64)
    full = extract_patches(canvas, tf.constant(offsets), N).numpy()
    np.testing.assert_allclose(fast, full, atol=1e-5)
    assert np.abs(full).max() > 0.1
