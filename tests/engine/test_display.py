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
