"""Tests of ptycho_engine.metrics: registration, alignment, SSIM, PSNR, FRC and reports."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.fft as sfft
import scipy.ndimage as ndi
from numpy.typing import NDArray

from ptycho_engine import metrics
from ptycho_engine.errors import DataError

REPO_ROOT = Path(__file__).resolve().parents[2]
N = 96


def smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> NDArray:
    """Gaussian-filtered white noise with zero mean and unit standard deviation."""
    field = ndi.gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (field - field.mean()) / field.std()


def smooth_object(seed: int = 0, n: int = N, sigma: float = 2.5) -> NDArray[np.complex64]:
    """Complex object with amplitude around 0.75 and phase within about +-2 rad."""
    rng = np.random.default_rng(seed)
    amplitude = 0.75 + 0.1 * smooth_field(rng, (n, n), sigma)
    phase = 0.8 * smooth_field(rng, (n, n), sigma)
    return (amplitude * np.exp(1j * phase)).astype(np.complex64)


def shift_complex(image: NDArray, shift: tuple[float, float]) -> NDArray:
    """Move content by +shift (cubic spline on real and imaginary parts)."""
    return ndi.shift(image.real, shift, mode="nearest") + 1j * ndi.shift(
        image.imag, shift, mode="nearest"
    )


def disc(n: int = N, radius: float = 40.0) -> NDArray[np.bool_]:
    yy, xx = np.mgrid[:n, :n]
    return (yy - n / 2) ** 2 + (xx - n / 2) ** 2 < radius**2


# ---------------------------------------------------------------------------------------------
# Identical images
# ---------------------------------------------------------------------------------------------


def test_identical_objects_score_perfectly() -> None:
    obj = smooth_object()
    report = metrics.compare(obj, obj)
    for channel in (report.amplitude, report.phase):
        assert channel.ssim == pytest.approx(1.0, abs=1e-6)
        assert channel.psnr == math.inf
        assert channel.mae == 0.0
        assert channel.rmse == 0.0
        assert channel.frc_1_7_px == 2.0
        assert channel.frc_halfbit_px == 2.0
        assert channel.frc_1_7_m is None
    assert report.shift_px == (0.0, 0.0)
    assert report.n_pixels == N * N
    assert report.region == f"full frame: {N * N} px, bbox y 0:{N}, x 0:{N}"


def test_identical_real_images_with_functions() -> None:
    image = np.abs(smooth_object())
    valid = disc()
    assert metrics.ssim(image, image, valid) == pytest.approx(1.0, abs=1e-6)
    assert metrics.psnr(image, image, valid) == math.inf
    assert metrics.frc_resolution(image, image, valid) == 2.0
    assert metrics.frc_resolution(image, image, valid, threshold="half-bit") == 2.0
    frequency, curve, counts = metrics.frc(image, image, valid)
    np.testing.assert_allclose(curve, 1.0, atol=1e-9)
    assert frequency[0] == 0.0
    # The disc's bounding box is 79 px wide: rings k / 79 for k = 0 .. 39.
    side = valid.any(axis=0).sum()
    np.testing.assert_allclose(frequency, np.arange(side // 2 + 1) / side)
    assert frequency.shape == curve.shape == counts.shape


def test_frc_frequency_axis_and_ring_counts() -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((40, 64))
    frequency, curve, counts = metrics.frc(a, a + 0.1 * rng.standard_normal((40, 64)))
    # Rings are 1 / min(H, W) wide: 21 rings from 0 to 0.5 cycle/px for a 40 x 64 image.
    np.testing.assert_allclose(frequency, np.arange(21) / 40)
    assert counts[0] == 1
    # Every Fourier pixel inside the 0.5 cycle/px circle lies in exactly one ring.
    fy = sfft.fftfreq(40)[:, None]
    fx = sfft.fftfreq(64)[None, :]
    inside = np.rint(np.hypot(fy, fx) * 40) <= 20
    assert counts.sum() == np.count_nonzero(inside)
    # Complex input goes through the full spectrum and gives the same counts.
    _, _, counts_c = metrics.frc(a + 0j, a + 0j)
    np.testing.assert_array_equal(counts_c, counts)
    assert np.all(curve[1:6] > 0.9)


# ---------------------------------------------------------------------------------------------
# Registration and alignment
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shift", [(2.3, -1.6), (-2.3, 1.6), (0.45, 3.8)])
def test_register_shift_recovers_known_shift(shift: tuple[float, float]) -> None:
    image = np.abs(smooth_object(seed=1))
    moved = ndi.shift(image, shift, mode="nearest")
    # Shifting the moved image by the result must bring it back: the result is -shift.
    dy, dx = metrics.register_shift(image, moved)
    assert dy == pytest.approx(-shift[0], abs=0.1)
    assert dx == pytest.approx(-shift[1], abs=0.1)
    # Swapping the roles flips the sign.
    dy, dx = metrics.register_shift(moved, image)
    assert dy == pytest.approx(shift[0], abs=0.1)
    assert dx == pytest.approx(shift[1], abs=0.1)


def test_register_shift_with_mask_ignores_garbage_outside() -> None:
    image = np.abs(smooth_object(seed=2))
    moved = ndi.shift(image, (1.7, -2.2), mode="nearest")
    valid = disc(radius=35.0)
    moved[~valid] = np.nan  # never read
    dy, dx = metrics.register_shift(image, moved, valid)
    assert (dy, dx) == pytest.approx((-1.7, 2.2), abs=0.1)


def test_register_shift_of_pure_phase_object_uses_complex_field() -> None:
    obj = np.exp(1j * smooth_field(np.random.default_rng(4), (N, N), 2.5))
    moved = shift_complex(obj, (-1.4, 0.9)) * np.exp(0.7j)
    dy, dx = metrics.register_shift(obj, moved)
    assert (dy, dx) == pytest.approx((1.4, -0.9), abs=0.1)


def test_align_removes_shift_offset_ramp_and_scale() -> None:
    obj = smooth_object(seed=5)
    yy, xx = np.mgrid[:N, :N]
    ramp = 0.9 + 0.03 * yy - 0.05 * xx
    est = 1.7 * shift_complex(obj, (1.3, -0.7)) * np.exp(1j * ramp)
    aligned = metrics.align_to_reference(est.astype(np.complex64), obj)
    assert aligned.dtype == np.complex64
    assert aligned.shape == obj.shape
    inner = (slice(8, -8), slice(8, -8))
    error = np.abs(aligned[inner] - obj[inner])
    assert error.max() < 0.02
    # Without registration the shift stays, and so does most of the error.
    unregistered = metrics.align_to_reference(est, obj, register=False)
    assert np.abs(unregistered[inner] - obj[inner]).mean() > 10 * error.mean()


@pytest.mark.parametrize("use_mask", [False, True])
def test_compare_scores_transformed_copy_high(use_mask: bool) -> None:
    obj = smooth_object(seed=6)
    yy, xx = np.mgrid[:N, :N]
    # A steep ramp (0.2 rad/px, about 19 rad across the frame) wraps many times.
    ramp = -2.0 + 0.2 * xx - 0.04 * yy
    est = 0.6 * shift_complex(obj, (2.3, -1.6)) * np.exp(1j * ramp)
    valid = disc() if use_mask else None
    report = metrics.compare(est, obj, valid, pixel_size_m=10e-9)
    assert report.amplitude.ssim > 0.95
    assert report.phase.ssim > 0.95
    assert report.phase.rmse < 0.05  # radians
    assert report.shift_px == pytest.approx((-2.3, 1.6), abs=0.1)
    assert report.amplitude.frc_1_7_m == pytest.approx(report.amplitude.frc_1_7_px * 10e-9)
    assert report.phase.frc_halfbit_m == pytest.approx(report.phase.frc_halfbit_px * 10e-9)
    # The region excludes the pixels the shift dragged in from outside the estimate.
    full = N * N if valid is None else int(valid.sum())
    assert 0.85 * full < report.n_pixels < full
    assert f"{report.n_pixels} px" in report.region
    expected_label = "valid stitched area" if use_mask else "full frame"
    assert report.region.startswith(expected_label)


def test_phase_near_pi_does_not_wrap() -> None:
    # A reference whose phase straddles +-pi: comparing angles naively would jump by 2 pi.
    obj = smooth_object(seed=7)
    ref = obj * np.exp(1j * np.pi)
    report = metrics.compare(ref * np.exp(0.3j), ref, register=False)
    assert report.phase.mae < 1e-6
    assert report.phase.ssim == pytest.approx(1.0, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Noise, SSIM and PSNR
# ---------------------------------------------------------------------------------------------


def test_scores_fall_monotonically_with_noise() -> None:
    obj = smooth_object(seed=8)
    rng = np.random.default_rng(9)
    noise = rng.standard_normal((N, N)) + 1j * rng.standard_normal((N, N))
    reports = [
        metrics.compare(obj + level * noise, obj, register=False)
        for level in (0.0, 0.01, 0.03, 0.1)
    ]
    for name in ("amplitude", "phase"):
        ssims = [getattr(r, name).ssim for r in reports]
        psnrs = [getattr(r, name).psnr for r in reports]
        maes = [getattr(r, name).mae for r in reports]
        assert all(x > y for x, y in itertools.pairwise(ssims)), (name, ssims)
        assert all(x > y for x, y in itertools.pairwise(psnrs)), (name, psnrs)
        assert all(x < y for x, y in itertools.pairwise(maes)), (name, maes)
    assert reports[-1].amplitude.ssim < 0.6


def test_psnr_uses_reference_range() -> None:
    rng = np.random.default_rng(10)
    reference = rng.uniform(0.2, 0.7, (N, N))
    estimate = reference + 0.05 * rng.standard_normal((N, N))
    value = metrics.psnr(estimate, reference)
    assert metrics.psnr(10 * estimate, 10 * reference) == pytest.approx(value, abs=1e-9)
    # A constant error d gives exactly 20 log10(range / d), whatever the dtype range.
    offset = metrics.psnr(reference + 0.01, reference)
    peak = reference.max() - reference.min()
    assert offset == pytest.approx(20 * math.log10(peak / 0.01), abs=1e-9)
    # The peak comes from the reference only: a wild estimate does not raise it.
    assert metrics.psnr(estimate * 100, reference) < 0


def test_psnr_and_ssim_use_only_valid_pixels() -> None:
    rng = np.random.default_rng(11)
    reference = np.abs(smooth_object(seed=11)).astype(np.float64)
    estimate = reference + 0.02 * rng.standard_normal((N, N))
    valid = disc()
    spoiled = estimate.copy()
    spoiled[~valid] = 1e6
    assert metrics.psnr(spoiled, reference, valid) == metrics.psnr(estimate, reference, valid)
    ssim_clean = metrics.ssim(estimate, reference, valid)
    spoiled[~valid] = np.nan
    assert metrics.ssim(spoiled, reference, valid) == pytest.approx(ssim_clean, abs=1e-12)
    # The default data range is the reference's; passing it explicitly changes nothing.
    peak = float(np.ptp(reference[valid]))
    assert metrics.ssim(estimate, reference, valid, data_range=peak) == ssim_clean
    assert metrics.ssim(estimate, reference, valid, data_range=10 * peak) > ssim_clean


# ---------------------------------------------------------------------------------------------
# FRC
# ---------------------------------------------------------------------------------------------


def test_frc_of_independent_white_noise_finds_no_resolution() -> None:
    rng = np.random.default_rng(12)
    a = rng.standard_normal((128, 128))
    b = rng.standard_normal((128, 128))
    _, curve, _ = metrics.frc(a, b)
    assert abs(curve[2:].mean()) < 0.05
    assert metrics.frc_resolution(a, b) > 16.0
    assert metrics.frc_resolution(a, b, threshold="half-bit") > 16.0


def test_frc_of_constant_image_is_zero_and_resolution_infinite() -> None:
    rng = np.random.default_rng(13)
    b = rng.standard_normal((64, 64))
    a = np.full((64, 64), 0.7)
    _, curve, _ = metrics.frc(a, b)
    np.testing.assert_array_equal(curve, 0.0)
    assert metrics.frc_resolution(a, b) == math.inf


@pytest.mark.parametrize("sigma", [2.0, 3.0])
def test_frc_resolution_matches_known_low_pass(sigma: float) -> None:
    # Common signal = white noise through a Gaussian transfer G(f) = exp(-2 pi^2 sigma^2 f^2);
    # each image adds independent white noise of relative power r. Then
    # FRC(f) = G^2 / (G^2 + r), which crosses 1/7 where G^2 = r / 6.
    n, r = 128, 0.01
    rng = np.random.default_rng(14)
    fy = sfft.fftfreq(n)[:, None]
    fx = sfft.fftfreq(n)[None, :]
    transfer = np.exp(-2 * np.pi**2 * sigma**2 * (fy**2 + fx**2))
    signal = sfft.ifft2(sfft.fft2(rng.standard_normal((n, n))) * transfer).real
    a = signal + math.sqrt(r) * rng.standard_normal((n, n))
    b = signal + math.sqrt(r) * rng.standard_normal((n, n))
    expected_1_7 = 2 * np.pi * sigma / math.sqrt(math.log(6 / r))
    assert metrics.frc_resolution(a, b) == pytest.approx(expected_1_7, rel=0.15)
    # Half-bit: solve G^2 / (G^2 + r) = T(n_ring) with n_ring ~ 2 pi f n.
    f = np.linspace(0.01, 0.5, 20000)
    root = np.sqrt(2 * np.pi * f * n)
    threshold = (0.2071 + 1.9102 / root) / (1.2071 + 0.9102 / root)
    g2 = np.exp(-4 * np.pi**2 * sigma**2 * f**2)
    expected_hb = 1 / f[np.argmax(g2 / (g2 + r) < threshold)]
    assert metrics.frc_resolution(a, b, threshold="half-bit") == pytest.approx(
        expected_hb, rel=0.15
    )
    # The half-bit threshold is the stricter one at these ring sizes.
    assert metrics.frc_resolution(a, b, threshold="half-bit") > metrics.frc_resolution(a, b)


def test_frc_skips_the_low_rings_of_an_object_without_coarse_structure() -> None:
    # Like a Siemens star: the shared object has power only at fine scales (a band of
    # 0.15-0.45 cycles per pixel); the two images differ by a faint envelope of opposite sign,
    # far weaker than the object, which alone fills the coarse rings (FRC about -1 there).
    n = 128
    rng = np.random.default_rng(21)
    radius = np.hypot(sfft.fftfreq(n)[:, None], sfft.fftfreq(n)[None, :])
    band = (radius > 0.15) & (radius < 0.45)
    signal = sfft.ifft2(sfft.fft2(rng.standard_normal((n, n))) * band).real
    y, x = np.mgrid[:n, :n] / n
    envelope = 0.005 * signal.std() * np.cos(2 * np.pi * 3 * x) * np.cos(2 * np.pi * 2 * y)
    a, b = signal + envelope, signal - envelope
    frequency, curve, counts, power = metrics.frc_rings(a, b)
    assert curve[3] < -0.5 and np.all(curve[20:60] > 0.9)
    # from ring FRC_FIRST_RING the first crossing is in the empty coarse rings ...
    assert metrics.frc_crossing(frequency, curve, counts)[0] > 16.0
    # ... which hold under FRC_MIN_POWER of the band's power: the search starts in the band
    start = metrics.frc_search_start(power)
    assert frequency[start] > 0.1 and power[start] >= metrics.FRC_MIN_POWER * power[2:].max()
    assert metrics.frc_resolution(a, b) < 2.5
    # the scores of compare (the run table's FRC) use the same search
    scored = metrics.compare((10 + a).astype(complex), (10 + b).astype(complex), register=False)
    assert scored.amplitude.frc_1_7_px < 2.5


def test_frc_resolution_rejects_unknown_threshold() -> None:
    image = np.ones((16, 16))
    with pytest.raises(ValueError, match="half-bit"):
        metrics.frc_resolution(image, image, threshold="1/2")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Chance level and serialisation
# ---------------------------------------------------------------------------------------------


def test_chance_level_is_low_and_serialisable() -> None:
    obj = smooth_object(seed=15)
    valid = disc()
    report = metrics.chance_level(obj, valid)
    assert report.amplitude.ssim < 0.2
    assert report.phase.ssim < 0.2
    assert report.amplitude.frc_1_7_px == math.inf
    assert report.amplitude.frc_halfbit_px == math.inf
    assert report.phase.frc_1_7_px > 16.0
    assert report.shift_px == (0.0, 0.0)
    assert report.n_pixels == int(valid.sum())
    # A real estimate beats chance by a wide margin.
    good = metrics.compare(shift_complex(obj, (0.5, 0.5)), obj, valid)
    assert good.amplitude.ssim > report.amplitude.ssim + 0.5
    assert good.phase.ssim > report.phase.ssim + 0.5

    as_dict = report.to_dict()
    text = json.dumps(as_dict, allow_nan=False)
    back = json.loads(text)
    assert back["amplitude"]["frc_1_7_px"] == "inf"
    assert back["amplitude"]["frc_1_7_m"] is None
    assert back["n_pixels"] == report.n_pixels
    assert back["shift_px"] == [0.0, 0.0]
    assert back["amplitude"]["ssim"] == pytest.approx(report.amplitude.ssim)
    assert type(as_dict["n_pixels"]) is int
    assert all(type(v) in (float, str, type(None)) for v in back["phase"].values())


def test_random_estimate_scores_near_zero() -> None:
    # Guards against building the estimate's phase from the reference's: a random estimate
    # must not inherit the reference's structure.
    obj = smooth_object(seed=17)
    rng = np.random.default_rng(18)
    garbage = rng.standard_normal((N, N)) + 1j * rng.standard_normal((N, N))
    report = metrics.compare(garbage, obj, register=False)
    assert abs(report.amplitude.ssim) < 0.05
    assert abs(report.phase.ssim) < 0.05
    assert report.phase.frc_halfbit_px > 16.0
    assert report.amplitude.frc_halfbit_px > 16.0


def test_to_dict_uses_plain_python_types() -> None:
    obj = smooth_object(seed=16)
    report = metrics.compare(obj, obj, pixel_size_m=5e-9)
    as_dict = report.to_dict()
    amplitude = as_dict["amplitude"]
    assert isinstance(amplitude, dict)
    assert amplitude["psnr"] == "inf"
    assert amplitude["frc_1_7_m"] == pytest.approx(1e-8)
    assert all(type(v) in (float, str) for v in amplitude.values())
    json.dumps(as_dict, allow_nan=False)


# ---------------------------------------------------------------------------------------------
# Errors and imports
# ---------------------------------------------------------------------------------------------


def test_input_errors_name_the_problem() -> None:
    obj = smooth_object()
    with pytest.raises(DataError, match=r"\(96, 96\).*\(90, 96\)"):
        metrics.compare(obj, obj[:90])
    # An empty mask is a degenerate reconstruction, not a caller error: flagged, not raised.
    empty = metrics.compare(obj, obj, np.zeros(obj.shape, dtype=bool))
    assert empty.flags == ("no valid pixel: nothing scored",)
    assert empty.n_pixels == 0
    with pytest.raises(DataError, match="bool"):
        metrics.compare(obj, obj, np.ones(obj.shape))
    with pytest.raises(DataError, match="2-D"):
        metrics.ssim(np.ones((2, 8, 8)), np.ones((2, 8, 8)))
    with pytest.raises(DataError, match="complex"):
        metrics.ssim(obj, obj)
    spoiled = obj.copy()
    spoiled[40, 40] = np.nan
    # Likewise a non-finite pixel is left out of the scored region, with a flag.
    dropped = metrics.compare(spoiled, obj)
    assert dropped.flags == ("1 non-finite estimate pixel left out of the scored region",)
    assert dropped.n_pixels == obj.size - 1
    with pytest.raises(DataError, match="1 non-finite"):
        metrics.ssim(spoiled.real, obj.real)
    with pytest.raises(ValueError, match="pixel_size_m"):
        metrics.compare(obj, obj, pixel_size_m=-1.0)


def test_metrics_import_no_tensorflow_keras_or_qt() -> None:
    code = (
        "import sys, ptycho_engine.metrics\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras', 'PySide6', 'PyQt5', 'PyQt6', 'pyqtgraph')]\n"
        "assert not bad, bad\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
