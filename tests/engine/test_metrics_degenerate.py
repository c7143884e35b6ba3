"""compare() and chance_level() on degenerate reconstructions: a report, flags, no warning.

A blank or constant estimate is a normal early state of training, and stitched canvases carry
NaN, tiny or empty valid areas. Each test checks the scores and the exact flag sentences, that
no warning is emitted (recorded here with ``simplefilter("always")``, so the check holds
whatever the pytest warning filters), and that the report serialises to strict JSON.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.ndimage as ndi
from numpy.typing import NDArray

from ptycho_engine import metrics
from ptycho_engine.errors import DataError

N = 64
TOO_SMALL_1x1 = "scored region 1 x 1 px is smaller than 8 x 8 px"
TOO_SMALL_3x1 = "scored region 3 x 1 px is smaller than 8 x 8 px"


def smooth_object(seed: int = 0, n: int = N) -> NDArray[np.complex128]:
    """Complex object with amplitude around 0.75 and phase within about +-2 rad."""
    rng = np.random.default_rng(seed)

    def field() -> NDArray[np.float64]:
        f = ndi.gaussian_filter(rng.standard_normal((n, n)), 2.5, mode="wrap")
        return (f - f.mean()) / f.std()

    return (0.75 + 0.1 * field()) * np.exp(0.8j * field())


def box_mask(rows: slice, cols: slice, n: int = N) -> NDArray[np.bool_]:
    mask = np.zeros((n, n), dtype=bool)
    mask[rows, cols] = True
    return mask


def quietly(score: Callable[..., metrics.QualityReport], *args: Any, **kwargs: Any) -> Any:
    """Call ``score`` and return its report; fail on any warning or non-strict JSON."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = score(*args, **kwargs)
    assert [str(w.message) for w in caught] == []
    as_dict = report.to_dict()
    back = json.loads(json.dumps(as_dict, allow_nan=False))
    assert back["flags"] == list(report.flags)
    assert metrics.flag_text(report) == "; ".join(report.flags)
    return report


def core_scores(scores: metrics.ChannelScores) -> list[float]:
    """The six scores that are always floats (all but the metre fields)."""
    names = [f.name for f in dataclasses.fields(scores) if not f.name.endswith("_m")]
    assert len(names) == 6
    return [float(getattr(scores, name)) for name in names]


def assert_nothing_scored(report: metrics.QualityReport, pixel_size_m: float | None) -> None:
    assert report.n_pixels == 0
    assert report.shift_px == (0.0, 0.0)
    for scores in (report.amplitude, report.phase):
        assert all(math.isnan(v) for v in core_scores(scores))
        if pixel_size_m is None:
            assert scores.frc_1_7_m is None and scores.frc_halfbit_m is None
        else:
            assert scores.frc_1_7_m is not None and math.isnan(scores.frc_1_7_m)
            assert scores.frc_halfbit_m is not None and math.isnan(scores.frc_halfbit_m)
    assert report.to_dict()["amplitude"]["mae"] == "nan"  # type: ignore[index]


def scaled_amplitude_mae(est: NDArray, ref: NDArray, mask: NDArray[np.bool_]) -> float:
    """MAE of |est| scaled by the ratio of means, as section 8 of the physics contract says."""
    a_est = np.abs(np.asarray(est, np.complex128)[mask])
    a_ref = np.abs(np.asarray(ref, np.complex128)[mask])
    return float(np.mean(np.abs(a_est * (a_ref.mean() / a_est.mean()) - a_ref)))


# ---------------------------------------------------------------------------------------------
# Blank and constant estimates
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("register", [True, False])
def test_blank_estimate_scores_as_zero_with_flags(register: bool) -> None:
    ref = smooth_object(seed=1)
    report = quietly(metrics.compare, np.zeros((N, N), np.complex64), ref, register=register)
    expected: tuple[str, ...] = (
        "phase offset and ramp not removed: estimate amplitude is zero",
        "amplitude not rescaled: estimate amplitude is zero",
    )
    if register:
        expected = ("registration skipped: estimate is zero", *expected)
    assert report.flags == expected
    assert metrics.flag_text(report) == "; ".join(expected)
    assert report.n_pixels == N * N
    assert report.shift_px == (0.0, 0.0)
    assert report.region == f"full frame: {N * N} px, bbox y 0:{N}, x 0:{N}"
    # A zero amplitude against the reference: the errors are the reference's own magnitude.
    amplitude = np.abs(ref)
    assert report.amplitude.mae == pytest.approx(amplitude.mean(), rel=1e-12)
    assert report.amplitude.rmse == pytest.approx(np.sqrt(np.mean(amplitude**2)), rel=1e-12)
    assert report.amplitude.ssim == pytest.approx(0.0, abs=1e-3)
    assert report.amplitude.frc_1_7_px == math.inf
    assert report.amplitude.frc_halfbit_px == math.inf
    assert math.isfinite(report.phase.mae) and math.isfinite(report.phase.psnr)


@pytest.mark.parametrize(
    "value",
    [np.float64(0.5), np.complex128(0.3 - 0.4j), np.complex64(-2.0 + 1.0j)],
    ids=["real", "complex128", "complex64"],
)
def test_constant_estimate_scores_at_chance_level(value: np.generic) -> None:
    ref = smooth_object(seed=2)
    estimate = np.full((N, N), value)
    report = quietly(metrics.compare, estimate, ref)
    assert report.flags == ("registration skipped: estimate is constant",)
    assert report.shift_px == (0.0, 0.0)
    assert report.n_pixels == N * N
    # Amplitude scaling and phase-plane removal turn any constant into the chance-level
    # estimate (the constant mean(|ref|)), so both score the same.
    chance = quietly(metrics.chance_level, ref)
    assert chance.flags == ()
    for mine, theirs in ((report.amplitude, chance.amplitude), (report.phase, chance.phase)):
        assert mine.mae == pytest.approx(theirs.mae, rel=1e-6)
        assert mine.rmse == pytest.approx(theirs.rmse, rel=1e-6)
        assert mine.ssim == pytest.approx(theirs.ssim, rel=1e-4, abs=1e-6)
        assert mine.frc_1_7_px == pytest.approx(theirs.frc_1_7_px, rel=1e-4)
    assert report.amplitude.frc_1_7_px == math.inf
    assert report.amplitude.mae == pytest.approx(
        scaled_amplitude_mae(estimate, ref, np.ones((N, N), bool)), rel=1e-9
    )


def test_constant_reference_leaves_ssim_and_psnr_undefined() -> None:
    est = smooth_object(seed=3)
    ref = np.full((N, N), 0.8 + 0j)
    report = quietly(metrics.compare, est, ref)
    assert report.flags == (
        "registration skipped: reference is constant",
        "SSIM and PSNR undefined: reference amplitude is constant over the region",
        "SSIM and PSNR undefined: reference phase is constant over the region",
    )
    for scores in (report.amplitude, report.phase):
        assert math.isnan(scores.ssim) and math.isnan(scores.psnr)
        assert scores.frc_1_7_px == math.inf  # no structure in the reference to correlate
    assert report.amplitude.mae == pytest.approx(
        scaled_amplitude_mae(est, ref, np.ones((N, N), bool)), rel=1e-9
    )
    assert report.to_dict()["phase"]["ssim"] == "nan"  # type: ignore[index]


# ---------------------------------------------------------------------------------------------
# Non-finite pixels
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pixel_size_m", [None, 1e-8])
@pytest.mark.parametrize("bad", [np.nan, np.inf, complex(0.0, -np.inf)])
def test_all_non_finite_estimate_scores_nothing(bad: complex, pixel_size_m: float | None) -> None:
    ref = smooth_object(seed=4)
    estimate = np.full((N, N), bad, dtype=np.complex128)
    report = quietly(metrics.compare, estimate, ref, pixel_size_m=pixel_size_m)
    assert report.flags == (
        f"{N * N} non-finite estimate pixels left out of the scored region",
        "no finite valid pixel: nothing scored",
    )
    assert report.region == "full frame, finite pixels: 0 px, nothing scored"
    assert_nothing_scored(report, pixel_size_m)


def test_partly_non_finite_estimate_is_scored_on_the_rest() -> None:
    ref = smooth_object(seed=5)
    est = 0.5 * ref * np.exp(0.4j)
    bad = np.zeros((N, N), dtype=bool)
    bad[[3, 20, 33, 40, 61], [5, 44, 33, 2, 60]] = True
    spoiled = est.copy()
    spoiled[bad] = [np.nan, np.inf, complex(1.0, np.nan), complex(-np.inf, 0.0), np.nan]
    report = quietly(metrics.compare, spoiled, ref)
    assert report.flags == ("5 non-finite estimate pixels left out of the scored region",)
    assert report.n_pixels == N * N - 5
    assert report.region.startswith(f"full frame, finite pixels: {N * N - 5} px")
    assert report.amplitude.ssim == pytest.approx(1.0, abs=1e-6)
    assert report.phase.rmse < 1e-6
    # Dropping the pixels is exactly scoring with them masked out.
    masked = quietly(metrics.compare, est, ref, ~bad)
    assert masked.flags == ()
    assert report.amplitude == masked.amplitude
    assert report.phase == masked.phase


def test_non_finite_reference_pixels_are_named() -> None:
    ref = smooth_object(seed=6)
    est = ref * 1.3
    est[10, 10] = np.nan
    ref_spoiled = ref.copy()
    ref_spoiled[[10, 30], [10, 31]] = np.nan  # one pixel bad in both, one in the reference only
    report = quietly(metrics.compare, est, ref_spoiled)
    assert report.flags == (
        "1 non-finite estimate pixel left out of the scored region",
        "1 non-finite reference pixel left out of the scored region",
    )
    assert report.n_pixels == N * N - 2
    assert report.amplitude.mae == pytest.approx(0.0, abs=1e-9)


def test_nan_outside_a_partly_valid_area_is_not_flagged() -> None:
    ref = smooth_object(seed=7)
    valid = box_mask(slice(8, 50), slice(12, 60))
    est = ref * np.exp(0.2j)
    spoiled = est.copy()
    spoiled[~valid] = np.nan  # never read
    report = quietly(metrics.compare, spoiled, ref, valid)
    assert report.flags == ()
    assert report.region == "valid stitched area: 2016 px, bbox y 8:50, x 12:60"
    assert report.amplitude == quietly(metrics.compare, est, ref, valid).amplitude


# ---------------------------------------------------------------------------------------------
# Tiny and empty regions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pixel_size_m", [None, 1e-8])
def test_empty_valid_mask_scores_nothing(pixel_size_m: float | None) -> None:
    obj = smooth_object(seed=8)
    report = quietly(
        metrics.compare, obj, obj, np.zeros((N, N), dtype=bool), pixel_size_m=pixel_size_m
    )
    assert report.flags == ("no valid pixel: nothing scored",)
    assert report.region == "valid stitched area: 0 px, nothing scored"
    assert_nothing_scored(report, pixel_size_m)


def test_single_valid_pixel_scores_errors_only() -> None:
    ref = smooth_object(seed=9)
    valid = box_mask(slice(40, 41), slice(20, 21))
    report = quietly(metrics.compare, 2.0 * ref * np.exp(-1.0j), ref, valid, pixel_size_m=1e-8)
    assert report.flags == (
        f"registration skipped: {TOO_SMALL_1x1}",
        f"SSIM and FRC not computed: {TOO_SMALL_1x1}",
        "PSNR undefined: reference amplitude is constant over the region",
        "PSNR undefined: reference phase is constant over the region",
    )
    assert report.n_pixels == 1
    assert report.region == "valid stitched area: 1 px, bbox y 40:41, x 20:21"
    for scores in (report.amplitude, report.phase):
        # Scale and phase offset are removed, so one pixel matches exactly.
        assert scores.mae == pytest.approx(0.0, abs=1e-12)
        assert scores.rmse == pytest.approx(0.0, abs=1e-12)
        for name in ("ssim", "psnr", "frc_1_7_px", "frc_halfbit_px", "frc_1_7_m"):
            assert math.isnan(getattr(scores, name)), name
    assert report.to_dict()["phase"]["frc_halfbit_m"] == "nan"  # type: ignore[index]


def test_three_by_one_box_gets_mae_rmse_and_psnr() -> None:
    ref = smooth_object(seed=10)
    valid = box_mask(slice(30, 33), slice(7, 8))
    est = ref * np.exp(0.5j)
    est[30:33, 7] *= np.array([1.1, 0.9, 1.05])
    report = quietly(metrics.compare, est, ref, valid)
    assert report.flags == (
        f"registration skipped: {TOO_SMALL_3x1}",
        f"SSIM and FRC not computed: {TOO_SMALL_3x1}",
    )
    assert report.n_pixels == 3
    assert report.region == "valid stitched area: 3 px, bbox y 30:33, x 7:8"
    assert report.amplitude.mae == pytest.approx(scaled_amplitude_mae(est, ref, valid), rel=1e-9)
    assert report.amplitude.mae > 1e-3
    assert math.isfinite(report.amplitude.psnr) and math.isfinite(report.phase.psnr)
    assert report.phase.mae == pytest.approx(0.0, abs=1e-9)  # offset only: removed exactly
    for scores in (report.amplitude, report.phase):
        assert math.isnan(scores.ssim) and math.isnan(scores.frc_1_7_px)
        assert scores.frc_1_7_m is None


def test_chance_level_on_tiny_and_empty_regions() -> None:
    ref = smooth_object(seed=11)
    valid = box_mask(slice(30, 33), slice(7, 8))
    report = quietly(metrics.chance_level, ref, valid)
    assert report.flags == (f"SSIM and FRC not computed: {TOO_SMALL_3x1}",)
    assert report.n_pixels == 3
    amplitude = np.abs(ref[valid])
    assert report.amplitude.mae == pytest.approx(
        np.mean(np.abs(amplitude - amplitude.mean())), rel=1e-9
    )
    assert math.isnan(report.amplitude.ssim)

    empty = quietly(metrics.chance_level, ref, np.zeros((N, N), dtype=bool), pixel_size_m=1e-8)
    assert empty.flags == ("no valid pixel: nothing scored",)
    assert_nothing_scored(empty, 1e-8)

    blank_ref = np.full((N, N), np.nan, dtype=np.complex64)
    nothing = quietly(metrics.chance_level, blank_ref)
    assert nothing.flags == (
        f"{N * N} non-finite reference pixels left out of the scored region",
        "no finite valid pixel: nothing scored",
    )
    assert_nothing_scored(nothing, None)


def test_thin_region_skips_registration_it_cannot_correlate() -> None:
    # A one-pixel diagonal: its bounding box is large, but the edge taper leaves nothing.
    ref = smooth_object(seed=12)
    valid = np.zeros((N, N), dtype=bool)
    valid[np.arange(10, 50), np.arange(10, 50)] = True
    est = 1.5 * ref
    report = quietly(metrics.compare, est, ref, valid)
    assert report.flags == (
        "registration skipped: reference has no contrast left after the edge taper "
        "(region too thin, or reference nearly constant)",
    )
    assert report.n_pixels == 40
    assert report.amplitude == quietly(metrics.compare, est, ref, valid, register=False).amplitude


# ---------------------------------------------------------------------------------------------
# Registration that cannot be used
# ---------------------------------------------------------------------------------------------


def test_shift_leaving_no_overlap_is_scored_unregistered(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = smooth_object(seed=13)
    est = ref * np.exp(0.3j)
    valid = box_mask(slice(20, 36), slice(20, 36))
    # Registration on noise can return any shift; force one that moves the area off itself.
    monkeypatch.setattr(metrics, "_register", lambda *args, **kwargs: (30.0, 0.0))
    report = quietly(metrics.compare, est, ref, valid, max_shift_px=None)
    assert report.flags == (
        "registration dropped: after the shift +30.00, +0.00 px no valid pixel of the estimate "
        "overlaps the valid region; scored unregistered",
    )
    assert report.shift_px == (0.0, 0.0)
    assert report.n_pixels == 256
    unregistered = quietly(metrics.compare, est, ref, valid, register=False)
    assert report.amplitude == unregistered.amplitude
    assert report.phase == unregistered.phase


def test_refused_registration_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = smooth_object(seed=14)
    monkeypatch.setattr(metrics, "_register", lambda *args, **kwargs: (12.0, -3.0))
    report = quietly(metrics.compare, ref, ref)
    refusal = "registration refused: shift +12.00, -3.00 px exceeds 8 px"
    assert report.flags == (f"{refusal}; scored unregistered",)
    assert report.region.startswith(f"full frame ({refusal}): {N * N} px")
    assert report.shift_px == (0.0, 0.0)
    assert report.amplitude.ssim == pytest.approx(1.0, abs=1e-9)


# ---------------------------------------------------------------------------------------------
# Extreme magnitudes, helpers and the functions that keep raising
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("factor", "dtype"),
    [(1e200, np.complex128), (1e-200, np.complex128), (1e16, np.complex64)],
    ids=["1e200", "1e-200", "1e16-complex64"],
)
def test_estimate_of_extreme_magnitude_scores_like_any_other(factor: float, dtype: type) -> None:
    # A diverging model can emit any finite scale; amplitude scaling removes it.
    ref = smooth_object(seed=15)
    est = (ref * np.exp(0.2j)).astype(dtype) * dtype(factor)
    report = quietly(metrics.compare, est, ref)
    assert report.flags == ()
    assert report.shift_px == (0.0, 0.0)
    assert report.amplitude.ssim == pytest.approx(1.0, abs=1e-6)
    assert report.phase.rmse < 1e-5
    assert report.amplitude.frc_1_7_px == 2.0


def test_flag_text_is_empty_for_a_clean_report() -> None:
    obj = smooth_object(seed=16)
    report = quietly(metrics.compare, obj, obj)
    assert report.flags == ()
    assert metrics.flag_text(report) == ""
    assert report.to_dict()["flags"] == []


def test_caller_errors_still_raise() -> None:
    obj = smooth_object(seed=17)
    with pytest.raises(DataError, match="bool"):
        metrics.chance_level(obj, np.zeros((N, N), dtype=int))
    with pytest.raises(DataError, match="2-D"):
        metrics.chance_level(obj[None])
    with pytest.raises(DataError, match=r"shape \(64, 64\).*\(64, 63\)"):
        metrics.compare(np.zeros((N, N)), obj[:, :63])
    with pytest.raises(ValueError, match="pixel_size_m"):
        metrics.compare(np.zeros((N, N)), obj, pixel_size_m=math.nan)


def test_lower_level_functions_raise_instead_of_warning() -> None:
    obj = smooth_object(seed=18)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError, match="estimate amplitude is zero"):
            metrics.align_to_reference(np.zeros((N, N), np.complex64), obj, register=False)
        with pytest.raises(DataError, match="registration skipped: estimate is constant"):
            metrics.align_to_reference(np.full((N, N), 0.5 + 0j), obj)
        with pytest.raises(DataError, match="cannot register: moving is constant"):
            metrics.register_shift(np.abs(obj), np.full((N, N), 0.7))
        diagonal = np.eye(N, dtype=bool)
        with pytest.raises(DataError, match="cannot register: reference has no contrast left"):
            metrics.register_shift(np.abs(obj), np.abs(obj), diagonal)
    assert [str(w.message) for w in caught] == []
