"""The seam measure: excess power of a stitched amplitude at the patch-grid frequencies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptycho_engine.errors import DataError
from ptycho_engine.metrics.seams import raster_step, seam_excess
from ptycho_engine.simulate import make_object, make_scan


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    return make_object("lines", (160, 176), seed=11)


def _grid_of_seams(shape: tuple[int, int], step: int, depth: float, offset: int = 3) -> np.ndarray:
    """A multiplicative grid of dark one-pixel lines every ``step`` pixels."""
    factor = np.ones(shape)
    factor[offset::step, :] *= 1.0 - depth
    factor[:, offset::step] *= 1.0 - depth
    return factor


def test_the_truth_has_no_excess(truth: np.ndarray) -> None:
    report = seam_excess(truth, truth, 8)
    assert report.ratio == pytest.approx(1.0)
    assert 0.0 < report.reference_share < 1.0
    assert report.flag == ""


def test_a_grid_of_seams_at_the_scan_pitch_is_measured(truth: np.ndarray) -> None:
    amp = np.abs(truth)
    faint = seam_excess(amp * _grid_of_seams(amp.shape, 8, 0.03), truth, 8)
    strong = seam_excess(amp * _grid_of_seams(amp.shape, 8, 0.15), truth, 8)
    assert faint.ratio > 1.1
    assert strong.ratio > faint.ratio > 1.1
    # where the grid sits does not matter, only its period
    moved = seam_excess(amp * _grid_of_seams(amp.shape, 8, 0.15, offset=6), truth, 8)
    assert moved.ratio == pytest.approx(strong.ratio, rel=0.1)


def test_blur_reads_low_and_the_local_ratio_takes_it_out(truth: np.ndarray) -> None:
    from scipy import ndimage

    amp = np.abs(truth)
    blurred = ndimage.gaussian_filter(amp, 0.7)
    plain = seam_excess(blurred, truth, 8)
    # a blurred image has less power at the (mostly high) grid frequencies, seams or not
    assert plain.ratio < 0.85
    assert plain.local_ratio == pytest.approx(1.0, abs=0.1)
    # seams on the blurred image stand out in the local ratio as in the ratio
    seamed = seam_excess(blurred * _grid_of_seams(amp.shape, 8, 0.03), truth, 8)
    assert seamed.local_ratio > 1.3 * plain.local_ratio
    assert seam_excess(truth, truth, 8).local_ratio == pytest.approx(1.0)


def test_scale_and_contrast_do_not_count_as_seams(truth: np.ndarray) -> None:
    amp = np.abs(truth)
    low_contrast = 0.7 * (amp - amp.mean()) + amp.mean()
    assert seam_excess(2.5 * amp, truth, 8).ratio == pytest.approx(1.0)
    assert seam_excess(low_contrast, truth, 8).ratio == pytest.approx(1.0)


def test_noise_is_not_seams(truth: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    noisy = np.abs(truth) + rng.normal(0, 0.02, truth.shape)
    assert seam_excess(noisy, truth, 8).ratio == pytest.approx(1.0, abs=0.1)


def test_only_the_valid_region_is_measured(truth: np.ndarray) -> None:
    amp = np.abs(truth)
    valid = np.zeros(amp.shape, bool)
    valid[20:140, 30:150] = True
    spoiled = amp.copy()
    spoiled[~valid] = np.nan  # outside the region: never read
    inside = seam_excess(spoiled, truth, 8, valid)
    assert inside.ratio == pytest.approx(1.0)
    seams = amp * _grid_of_seams(amp.shape, 8, 0.15)
    seams[~valid] = np.nan
    assert seam_excess(seams, truth, 8, valid).ratio > 1.1


def test_a_constant_estimate_gets_a_flag_not_an_error(truth: np.ndarray) -> None:
    report = seam_excess(np.ones(truth.shape), truth, 8)
    assert math.isnan(report.ratio)
    assert "constant" in report.flag


def test_bad_input_is_refused(truth: np.ndarray) -> None:
    with pytest.raises(DataError, match="equal 2-D shapes"):
        seam_excess(truth[:, :-1], truth, 8)
    with pytest.raises(DataError, match="periods >= 2 px"):
        seam_excess(truth, truth, 1.0)
    with pytest.raises(DataError, match="smaller than 4 grid periods"):
        seam_excess(truth, truth, 60)


def test_raster_step_reads_the_pitch_of_a_jittered_raster() -> None:
    positions = make_scan("raster", 100, 7.5, seed=2)
    sy, sx = raster_step(positions)
    assert sy == pytest.approx(7.5, rel=0.03)
    assert sx == pytest.approx(7.5, rel=0.03)
    with pytest.raises(DataError, match="raster"):
        raster_step(np.stack([np.zeros(10), np.zeros(10)], axis=1) + [[0, 0]] * 10)
