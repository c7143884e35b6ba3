"""The scan grid's pattern: found on rasters only, divided out, the object left alone."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from ptycho_engine.grid_pattern import remove_grid_pattern, scan_lattice
from ptycho_engine.metrics import compare
from ptycho_engine.metrics.seams import raster_step, seam_excess
from ptycho_engine.physics.probe import support_mask
from ptycho_engine.simulate import make_scan
from ptycho_engine.stitching import Stitcher, reference_region

N = 32
STEP = 6.3


def _object(shape: tuple[int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    amp = 0.75 + 0.2 * np.tanh(3 * ndimage.gaussian_filter(rng.normal(size=shape), 2.5))
    phase = 2.0 * ndimage.gaussian_filter(rng.normal(size=shape), 4.0)
    return (amp * np.exp(1j * phase)).astype(np.complex64)


def _patch_bias(seed: int) -> np.ndarray:
    """A fixed patch-frame gain: a few % in amplitude, a few 0.01 rad in phase (bumps, as a
    network's bias is brighter or darker towards the patch centre, and some texture)."""
    rng = np.random.default_rng(seed)
    yy, xx = (np.mgrid[:N, :N] - N / 2 + 0.5) / N
    texture = ndimage.gaussian_filter(rng.normal(size=(N, N)), 1.5)
    amp = 0.05 * np.exp(-(yy**2 + xx**2) / 0.02) + 0.1 * texture
    phase = 0.06 * np.exp(-((yy - 0.1) ** 2 + xx**2) / 0.01)
    return np.exp(amp + 1j * phase).astype(np.complex64)


def _stitch(kind: str, bias: np.ndarray | None, seed: int = 3):
    positions = make_scan(kind, 400, STEP, seed)
    positions = positions - positions.min(axis=0) + N
    shape = tuple(int(v) for v in np.ceil(positions.max(axis=0) + 2 * N))
    truth = _object(shape, seed)
    # the pipeline's window: the probe amplitude on the support (here a Gaussian probe)
    yy, xx = np.mgrid[:N, :N] - N / 2 + 0.5
    window = support_mask(N, True) * np.exp(-(yy**2 + xx**2) / (2 * (N / 5) ** 2))
    stitcher = Stitcher(positions, N, window)
    corners = np.rint(positions).astype(int) - N // 2
    patches = np.stack([truth[y : y + N, x : x + N] for y, x in corners])
    if bias is not None:
        patches = patches * bias
    stitcher.add(patches, corners + N // 2)
    obj, valid = stitcher.result()
    ref = reference_region(truth, stitcher.origin_px, obj.shape)
    return positions, obj, valid, stitcher.origin_px, ref


def test_a_raster_is_found_and_other_scans_are_not() -> None:
    lattice = scan_lattice(make_scan("raster", 400, STEP, 1))
    assert lattice is not None
    assert lattice.step_px == pytest.approx((STEP, STEP), rel=0.02)
    assert scan_lattice(make_scan("spiral", 400, STEP, 1)) is None
    assert scan_lattice(make_scan("random", 400, STEP, 1)) is None


@pytest.mark.parametrize("kind", ["spiral", "random"])
def test_a_scan_that_is_no_raster_is_left_as_it_is(kind: str) -> None:
    positions, obj, valid, origin, _ = _stitch(kind, _patch_bias(0))
    out, pattern = remove_grid_pattern(obj, valid, origin, positions)
    assert pattern is None
    assert out is obj


def _phase_image(obj: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The phase as a positive image, for the seam measure (which reads a modulus)."""
    return np.where(valid, np.angle(obj) + 10.0, 0.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_patch_bias_of_a_raster_is_divided_out(seed: int) -> None:
    positions, obj, valid, origin, ref = _stitch("raster", _patch_bias(seed), seed)
    step = raster_step(positions)
    out, pattern = remove_grid_pattern(obj, valid, origin, positions)
    assert pattern is not None
    assert pattern.amplitude_rms > 0.0005 and pattern.phase_rms_rad > 0.0005
    assert np.array_equal(out == 0, ~valid)
    # where the lattice repeats (N/2 inside the scan's edge) the bias is a grid of seams
    # whose excess power falls by at least half, in amplitude and phase; at the edge and by the
    # jitter of the positions a part of it is no periodic pattern, and that part stays
    inner = ndimage.binary_erosion(valid, iterations=N // 2)
    before = seam_excess(obj, ref, step, inner).ratio
    after = seam_excess(out, ref, step, inner).ratio
    assert before > 1.5
    assert after - 1.0 < 0.5 * (before - 1.0)
    phase_ref = _phase_image(ref, valid)
    phase_before = seam_excess(_phase_image(obj, valid), phase_ref, step, inner).ratio
    phase_after = seam_excess(_phase_image(out, valid), phase_ref, step, inner).ratio
    assert phase_after - 1.0 < 0.5 * (phase_before - 1.0)
    assert compare(out, ref, valid).amplitude.ssim > compare(obj, ref, valid).amplitude.ssim


def test_an_image_without_seams_is_hardly_changed() -> None:
    positions, obj, valid, origin, ref = _stitch("raster", None)
    out, pattern = remove_grid_pattern(obj, valid, origin, positions)
    assert pattern is not None
    assert pattern.amplitude_rms < 1e-4 and pattern.phase_rms_rad < 1e-4
    step = raster_step(positions)
    assert seam_excess(out, ref, step, valid).ratio == pytest.approx(1.0, abs=0.05)
    assert compare(out, ref, valid).amplitude.ssim > 0.999


def test_too_few_cells_are_left_as_they_are() -> None:
    positions = make_scan("raster", 9, STEP, 0)  # 3 x 3 positions
    obj = np.ones((20, 20), np.complex64)  # 3 cells a side
    valid = np.ones((20, 20), bool)
    out, pattern = remove_grid_pattern(obj, valid, (0.0, 0.0), positions)
    assert pattern is None and out is obj


def test_a_pixel_that_is_not_finite_is_left_as_it_is() -> None:
    positions, obj, valid, origin, _ = _stitch("raster", _patch_bias(0))
    clean, _ = remove_grid_pattern(obj, valid, origin, positions)
    spoiled = obj.copy()
    row, col = np.argwhere(valid)[len(np.argwhere(valid)) // 2]
    spoiled[row, col] = np.nan
    out, pattern = remove_grid_pattern(spoiled, valid, origin, positions)
    assert pattern is not None
    assert np.isnan(out[row, col])
    finite = valid.copy()
    finite[row, col] = False
    assert np.isfinite(out[finite]).all()
    # one pixel fewer of evidence: the same correction to within a hair
    np.testing.assert_allclose(out[finite], clean[finite], rtol=1e-3)
