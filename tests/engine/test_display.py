"""The Qt-free converters of complex images."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptycho_engine.display import (
    DisplayMode,
    complex_to_rgb,
    downsample,
    hsv_to_rgb,
    log_scale,
    phase_lut,
    phase_wheel,
    render,
    robust_range,
)


def test_hsv_to_rgb_primaries() -> None:
    h = np.array([0.0, 1 / 3, 2 / 3, 1.0])
    rgb = hsv_to_rgb(h, 1.0, np.ones(4))
    np.testing.assert_allclose(rgb, [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]], atol=1e-6)


def test_complex_to_rgb_hue_follows_phase_and_value_amplitude() -> None:
    amp = np.array([[1.0, 1.0, 0.5, 0.0]], np.float32)
    phase = np.array([[-math.pi, 0.0, 0.0, 0.0]], np.float32)
    rgb = complex_to_rgb(amp, phase, (0.0, 1.0)).astype(int)
    assert rgb.shape == (1, 4, 3) and rgb.dtype == int
    # phase -pi -> hue 0 (red); phase 0 -> hue 0.5 (cyan)
    assert rgb[0, 0, 0] == 255 and rgb[0, 0, 1] < 60
    assert rgb[0, 1, 0] < 60 and rgb[0, 1, 1] == 255 and rgb[0, 1, 2] == 255
    assert rgb[0, 2].max() == pytest.approx(128, abs=1)
    assert rgb[0, 3].max() == 0


def test_complex_to_rgb_blanks_invalid_pixels_and_checks_shapes() -> None:
    amp = np.ones((2, 2), np.float32)
    valid = np.array([[True, False], [True, True]])
    rgb = complex_to_rgb(amp, np.zeros_like(amp), (0.0, 1.0), valid)
    assert rgb[0, 1].max() == 0 and rgb[0, 0].max() == 255
    with pytest.raises(ValueError, match="equal 2-D shapes"):
        complex_to_rgb(amp, np.zeros((3, 2)))


def test_phase_lut_is_cyclic() -> None:
    lut = phase_lut(256).astype(int)
    assert lut.shape == (256, 3)
    steps = np.abs(np.diff(np.vstack([lut, lut[:1]]), axis=0)).max()
    assert steps <= 12  # no jump anywhere, including the wrap from +pi to -pi


def test_phase_wheel_is_a_disk() -> None:
    wheel = phase_wheel(33)
    assert wheel.shape == (33, 33, 4)
    assert wheel[0, 0, 3] == 0 and wheel[16, 16, 3] == 255
    assert wheel[16, 16, :3].max() == 0  # zero amplitude at the centre


def test_robust_range_and_levels_of_flat_images() -> None:
    low, high = robust_range(np.full((4, 4), 2.0))
    assert low < 2.0 < high
    assert robust_range(np.full((2, 2), np.nan)) == (0.0, 1.0)


def test_downsample_render_and_log_scale() -> None:
    big = np.zeros((3000, 1000), np.float32)
    assert downsample(big).shape == (500, 167)  # stride 6 keeps both sides <= 512
    assert downsample(big, max_side=1024).shape == (1000, 334)
    amp = np.full((4, 4), 10.0, np.float32)
    assert render(amp, amp * 0, DisplayMode.LOG_AMPLITUDE)[0, 0] == pytest.approx(1.0)
    assert render(amp, amp * 0, DisplayMode.COMPLEX).shape == (4, 4, 3)
    assert log_scale(np.array([-1.0, 9.0])).tolist() == [0.0, 1.0]


# ---------------------------------------------------------------------------- display menus


def test_colour_maps_are_read_only_tables_and_unknown_names_are_refused() -> None:
    from ptycho_engine.display import COLOUR_MAPS, CYCLIC_MAPS, amplitude_lut, colour_lut

    for name in COLOUR_MAPS:
        lut = colour_lut(name)
        assert lut.shape == (256, 3) and lut.dtype == np.uint8, name
        assert not lut.flags.writeable
        assert len(np.unique(lut, axis=0)) > 100, name  # a real ramp, not a few colours
    np.testing.assert_array_equal(colour_lut("grey"), amplitude_lut())
    np.testing.assert_array_equal(colour_lut("cyclic"), phase_lut())
    for name in CYCLIC_MAPS:  # the ends meet
        lut = colour_lut(name).astype(int)
        assert np.abs(lut[0] - lut[-1]).max() <= 16, name
    ends = colour_lut("viridis").astype(int)
    assert np.abs(ends[0] - ends[-1]).max() > 150  # a range map: its ends differ
    with pytest.raises(ValueError, match=r"unknown colour map 'jet'.*viridis"):
        colour_lut("jet")


def test_default_colour_map_and_levels_follow_the_quantity() -> None:
    from ptycho_engine.display import PHASE_LEVELS, default_colour_map, default_levels

    assert default_colour_map(DisplayMode.PHASE, PHASE_LEVELS) == "cyclic"
    assert default_colour_map(DisplayMode.PHASE, (-0.7, 0.7)) == "viridis"
    assert default_colour_map(DisplayMode.REAL, (-1.0, 1.0)) == "grey"
    phase = np.linspace(-0.5, 0.5, 100, dtype=np.float32).reshape(10, 10)
    assert default_levels(phase, DisplayMode.PHASE) == PHASE_LEVELS
    low, high = default_levels(phase, DisplayMode.PHASE, unwrap=True)
    assert low == pytest.approx(np.percentile(phase, 0.5)) and high < 0.5
    assert default_levels(np.zeros((2, 2, 3), np.uint8), DisplayMode.COMPLEX) == (0.0, 255.0)


def _plane(shape: tuple[int, int], offset: float, sy: float, sx: float) -> np.ndarray:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    return offset + sy * rows + sx * cols


def test_phase_plane_finds_a_ramp_that_wraps_many_times() -> None:
    from ptycho_engine.display import phase_plane, wrap_phase

    truth = (0.4, -0.9, 1.3)  # up to 1.3 rad per pixel: wraps every few pixels
    wrapped = wrap_phase(_plane((40, 50), *truth))
    offset, sy, sx = phase_plane(wrapped)
    assert (sy, sx) == pytest.approx(truth[1:], abs=1e-5)
    assert offset == pytest.approx(truth[0], abs=1e-4)


def test_phase_plane_is_the_amplitude_weighted_least_squares_plane() -> None:
    from ptycho_engine.display import phase_plane, remove_phase_ramp

    rng = np.random.default_rng(4)
    shape = (30, 40)
    feature = 0.3 * rng.standard_normal(shape)  # small: nothing wraps
    phase = _plane(shape, 0.2, 0.01, -0.02) + feature
    amplitude = rng.uniform(0.1, 2.0, shape)
    valid = np.ones(shape, bool)
    valid[:5] = False
    phase_bad = phase.copy()
    phase_bad[:5] = 3.0  # outside the valid region: no weight
    # numpy reference: weighted least squares of phase = a + b row + c col
    rows, cols = np.nonzero(valid)
    w = np.sqrt(amplitude[rows, cols])
    design = np.stack([np.ones(rows.size), rows, cols], axis=1) * w[:, None]
    expected, *_ = np.linalg.lstsq(design, phase[rows, cols] * w, rcond=None)
    found = phase_plane(phase_bad, amplitude, valid)
    np.testing.assert_allclose(found, expected, atol=1e-9)
    flat = remove_phase_ramp(phase_bad, amplitude, valid)
    assert flat.dtype == np.float32
    residual = phase - _plane(shape, *expected)
    np.testing.assert_allclose(flat[valid], residual[valid], atol=1e-5)
    # no weight anywhere: no plane
    assert phase_plane(phase, np.zeros(shape)) == (0.0, 0.0, 0.0)


def test_unwrap_phase_undoes_the_wrapping_up_to_a_turn() -> None:
    from ptycho_engine.display import unwrap_phase, wrap_phase

    smooth = _plane((48, 48), 0.0, 0.15, 0.25) - 9.0
    wrapped = wrap_phase(smooth)
    out = unwrap_phase(wrapped)
    assert out.dtype == np.float32
    turns = (out - smooth) / (2 * math.pi)
    np.testing.assert_allclose(turns, np.round(turns[0, 0]), atol=1e-4)  # one constant turn
    assert -math.pi <= float(np.median(out)) < math.pi  # brought back near the circle
    assert np.ptp(out) == pytest.approx(np.ptp(smooth), rel=1e-4)
    valid = np.ones((48, 48), bool)
    valid[:, :10] = False
    masked = unwrap_phase(wrapped, valid)
    assert np.isnan(masked[:, :10]).all() and np.isfinite(masked[:, 10:]).all()
    np.testing.assert_allclose(np.diff(masked[:, 10:], axis=1), np.full((48, 37), 0.25), atol=1e-4)


def test_phase_levels_use_the_robust_range_of_a_small_phase() -> None:
    from ptycho_engine.display import PHASE_LEVELS, phase_levels

    rng = np.random.default_rng(0)
    small = rng.uniform(-0.7, 0.7, (64, 64))
    low, high = phase_levels(small)
    assert low == pytest.approx(np.percentile(small, 0.5))
    assert high == pytest.approx(np.percentile(small, 99.5))
    assert phase_levels(rng.uniform(-3.0, 3.0, (64, 64))) == PHASE_LEVELS
    valid = np.zeros((64, 64), bool)
    valid[:32] = True
    mixed = np.where(valid, small, 3.0)  # outside the valid region: not counted
    assert phase_levels(mixed, valid)[1] < 0.7


def test_display_image_modes_against_numpy() -> None:
    from ptycho_engine.display import LOG_FLOOR, display_image, remove_phase_ramp

    rng = np.random.default_rng(1)
    amp = rng.uniform(0.0, 2.0, (16, 20)).astype(np.float32)
    amp[0, 0] = 0.0
    phase = rng.uniform(-math.pi, math.pi, (16, 20)).astype(np.float32)
    z = amp * np.exp(1j * phase)
    np.testing.assert_allclose(display_image(amp, phase, DisplayMode.REAL), z.real, atol=1e-6)
    np.testing.assert_allclose(display_image(amp, phase, DisplayMode.IMAGINARY), z.imag, atol=1e-6)
    np.testing.assert_array_equal(display_image(amp, phase, DisplayMode.PHASE), phase)
    log = display_image(amp, phase, DisplayMode.LOG_AMPLITUDE)
    assert log[0, 0] == pytest.approx(math.log10(amp.max() * LOG_FLOOR), rel=1e-5)
    np.testing.assert_allclose(log[1:], np.log10(amp[1:]), rtol=1e-5)
    counts = display_image(amp, None, DisplayMode.LOG_INTENSITY)
    np.testing.assert_allclose(
        counts, np.log10(1 + amp.astype(np.float64) ** 2), rtol=1e-5, atol=1e-6
    )
    assert display_image(amp, phase, DisplayMode.COMPLEX).shape == (16, 20, 3)
    flat = remove_phase_ramp(phase, amp)
    np.testing.assert_allclose(
        display_image(amp, phase, DisplayMode.REAL, remove_ramp=True),
        amp * np.cos(flat),
        atol=1e-5,
    )
    # ramp removal does not touch the amplitude
    np.testing.assert_array_equal(
        display_image(amp, phase, DisplayMode.AMPLITUDE, remove_ramp=True), amp
    )
    with pytest.raises(ValueError, match="equal 2-D shapes"):
        display_image(amp, phase[:4], DisplayMode.REAL)


def test_line_profile_interpolates_between_pixel_centres() -> None:
    from ptycho_engine.display import line_profile

    plane = _plane((32, 40), 1.0, 0.5, 0.25)  # bilinear interpolation is exact on a plane
    # along row 10 through the pixel centres (x = c + 0.5, y = 10.5)
    distance, values = line_profile(plane, (0.5, 10.5), (39.5, 10.5))
    assert distance.shape == values.shape == (40,)
    np.testing.assert_allclose(distance, np.arange(40.0))
    np.testing.assert_allclose(values, plane[10], atol=1e-12)
    # a diagonal, in between the centres
    distance, values = line_profile(plane, (3.0, 4.0), (23.0, 19.0), samples=11)
    t = np.linspace(0, 1, 11)
    x, y = 3.0 + 20 * t, 4.0 + 15 * t
    np.testing.assert_allclose(values, 1.0 + 0.5 * (y - 0.5) + 0.25 * (x - 0.5), atol=1e-12)
    assert distance[-1] == pytest.approx(25.0)
    image = np.zeros((4, 4))
    image[1, 2] = np.nan
    _d, values = line_profile(image, (0.5, 1.5), (3.5, 1.5))
    assert np.isnan(values[2]) and values[0] == 0.0
    with pytest.raises(ValueError, match="samples"):
        line_profile(image, (0, 0), (1, 1), samples=1)


def test_region_stats_against_numpy() -> None:
    from ptycho_engine.display import region_pixels, region_stats

    rng = np.random.default_rng(2)
    image = rng.normal(size=(30, 40))
    valid = rng.uniform(size=(30, 40)) > 0.2
    # x from 10 to 25, y from 5 to 17: the centres 10.5 .. 24.5 and 5.5 .. 16.5
    rect = (10.0, 5.0, 15.0, 12.0)
    assert region_pixels(image.shape, rect) == (slice(5, 17), slice(10, 25))
    stats = region_stats(image, rect, valid)
    part, keep = image[5:17, 10:25], valid[5:17, 10:25]
    assert stats.count == int(keep.sum())
    assert stats.mean == pytest.approx(part[keep].mean())
    assert stats.std == pytest.approx(part[keep].std())
    # a rectangle dragged from its lower right corner, and one off the image
    assert region_pixels(image.shape, (25.0, 17.0, -15.0, -12.0)) == (slice(5, 17), slice(10, 25))
    empty = region_stats(image, (100.0, 100.0, 5.0, 5.0))
    assert empty.count == 0 and math.isnan(empty.mean)
