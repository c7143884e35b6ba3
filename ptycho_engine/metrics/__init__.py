"""Quality metrics of a reconstructed object against a ground truth (numpy, scipy, scikit-image).

This package implements section 8 of the physics contract: before any comparison the estimate is
registered to the reference (sub-pixel), its global phase offset and linear phase ramp are
removed, and its amplitude is scaled by the ratio of means. Amplitude and phase are then scored
separately with SSIM, PSNR, MAE, RMSE and the Fourier ring correlation (FRC) resolution at the
1/7 and half-bit thresholds. Every report names the region it was computed on.

Conventions
-----------
- Objects are 2-D complex arrays ``(H, W)`` = ``(y, x)``, complex64 or complex128. ``valid`` is
  an optional ``(H, W)`` bool mask of the pixels to score; ``None`` means every pixel.
- Shifts are ``(dy, dx)`` in pixels with the sign of the engine's ``translate``: shifting an
  image by ``+(dy, dx)`` moves its content by ``+(dy, dx)``, ``out[y, x] = in[y - dy, x - dx]``.
- Phases are in radians; phase MAE and RMSE are in radians, amplitude MAE and RMSE in the
  (dimensionless) units of the reference amplitude. PSNR is in dB with the peak equal to the
  range of the reference over the scored region (never a fixed 255).
- FRC frequencies are in cycles per pixel (0 to 0.5); FRC resolutions are in pixels
  (``1 / frequency``), and in metres when the pixel size is known.
- Values outside ``valid`` are never scored; they may even be NaN. Non-finite values inside
  ``valid`` raise :class:`~ptycho_engine.errors.DataError` in the single-score functions.
- :func:`compare` and :func:`chance_level` never raise or warn because of what a reconstruction
  holds (blank, constant, non-finite, a tiny or empty region): a blank or constant estimate is a
  normal early state of training. What they cannot compute is NaN, and the report's ``flags``
  say why (:func:`flag_text` joins them for a table cell). They still raise for caller errors:
  shapes that differ, non-2-D arrays, a non-bool mask, an invalid pixel size.

This package never imports TensorFlow, Keras or Qt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.ndimage as ndi
from numpy.typing import ArrayLike, NDArray

from ptycho_engine.errors import DataError
from ptycho_engine.metrics.region import TAPER_FRACTION as TAPER_FRACTION
from ptycho_engine.metrics.region import (
    BoolArray,
    ComplexArray,
    _as_image,
    _as_mask,
    _check_finite,
    _check_pair,
    _check_pixel_size,
    _drop_non_finite,
    _Region,
    _too_small,
    _within_scale,
)
from ptycho_engine.metrics.registration import (
    RegistrationRefused,
    _featureless,
    _fourier_shift,
    _register,
    _remove_phase_plane,
    _Unregistrable,
    register_shift,
)
from ptycho_engine.metrics.reports import CHANNELS as CHANNELS
from ptycho_engine.metrics.reports import (
    SCORE_NAMES,
    ChannelScores,
    QualityReport,
    _empty_report,
    flag_text,
    flat_scores,
)
from ptycho_engine.metrics.scores import FRC_FIRST_RING as FRC_FIRST_RING
from ptycho_engine.metrics.scores import FRC_MIN_POWER as FRC_MIN_POWER
from ptycho_engine.metrics.scores import FRC_ONE_SEVENTH as FRC_ONE_SEVENTH
from ptycho_engine.metrics.scores import (
    _channel_scores,
    _reference_range,
    frc,
    frc_crossing,
    frc_resolution,
    frc_rings,
    frc_search_start,
    psnr,
    ssim,
    threshold_curve,
)

__all__ = [
    "SCORE_NAMES",
    "ChannelScores",
    "QualityReport",
    "align_to_reference",
    "chance_level",
    "compare",
    "flag_text",
    "flat_scores",
    "frc",
    "frc_crossing",
    "frc_resolution",
    "frc_rings",
    "frc_search_start",
    "probe_correlation",
    "psnr",
    "register_shift",
    "ssim",
    "threshold_curve",
]

#: Bins of the reference-phase histogram used to place the phase branch cut.
_PHASE_BINS = 64


# --------------------------------------------------------------------------------------------
# Alignment (here, not in a submodule: _align looks _register up in this namespace, which
# is where the tests replace it)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Alignment:
    """Result of :func:`_align` (internal): full-frame arrays, the shift, and what was skipped."""

    estimate: ComplexArray
    reference: ComplexArray
    scored: BoolArray
    shift: tuple[float, float]
    flags: tuple[str, ...]


def _registration_obstacle(
    estimate: ComplexArray, reference: ComplexArray, region: _Region
) -> str | None:
    """Why registration cannot run on this pair, in words; None when it can."""
    small = _too_small(region)
    if small is not None:
        return small
    for name, image in (("estimate", estimate), ("reference", reference)):
        featureless = _featureless(name, image, region)
        if featureless is not None:
            return featureless
    return None


def _zero_amplitude(estimate: ComplexArray, reference: ComplexArray, region: _Region) -> str:
    """Which amplitude leaves the phase-plane fit with no weight, in words."""
    if not bool(np.any(region.crop(estimate)[region.mask])):
        return "estimate amplitude is zero"
    if not bool(np.any(region.crop(reference)[region.mask])):
        return "reference amplitude is zero"
    return "estimate and reference amplitudes are nowhere both nonzero"


def _align(
    estimate: NDArray[np.generic],
    reference: NDArray[np.generic],
    mask: BoolArray,
    register: bool,
    upsample: int = 20,
    max_shift_px: float | None = None,
) -> _Alignment:
    """Align ``estimate`` to ``reference``; both must be finite inside ``mask`` (not empty).

    Returns the aligned estimate, the reference (complex128, 0 outside ``mask``), the scored
    mask and the shift applied, all in the full frame, with a flag for every step that could
    not run on this content (it is then skipped; nothing raises). A registration shift larger
    than ``max_shift_px`` on either axis is refused (a failed reconstruction registers
    anywhere) and raises :class:`RegistrationRefused`.
    """
    flags: list[str] = []
    est = np.where(mask, estimate, 0).astype(np.complex128)
    ref = np.where(mask, reference, 0).astype(np.complex128)
    # Plane removal and amplitude scaling undo any factor, so an exact power-of-two rescale of
    # an estimate of extreme magnitude changes the result only by rounding, and keeps the
    # products below finite. Normal estimates are not touched.
    est = _within_scale(est, mask)
    region = _Region(mask)
    scored = mask
    shift = (0.0, 0.0)
    if register:
        obstacle = _registration_obstacle(est, ref, region)
        try:
            if obstacle is not None:
                raise _Unregistrable(obstacle)
            shift = _register(ref, est, region, upsample, names=("reference", "estimate"))
        except _Unregistrable as failure:
            flags.append(f"registration skipped: {failure.reason}")
        if max_shift_px is not None and max(abs(shift[0]), abs(shift[1])) > max_shift_px:
            raise RegistrationRefused(shift, max_shift_px)
    if shift != (0.0, 0.0):
        # Continue the estimate past the edge of its valid area so the shift drags in
        # plausible values instead of a step; only the bounding box is shifted.
        box = _fourier_shift(region.fill_outside(region.crop(est)), shift)
        # Score only pixels whose shifted content came from valid pixels of the estimate.
        moved = ndi.shift(region.mask.astype(np.float32), shift, order=1, mode="constant")
        kept = np.zeros_like(mask)
        kept[region.rows, region.cols] = region.mask & (moved > 1.0 - 1e-5)
        if kept.any():
            est = np.zeros_like(est)
            est[region.rows, region.cols] = box
            scored = kept
            region = _Region(scored)
        else:
            flags.append(
                f"registration dropped: after the shift {shift[0]:+.2f}, {shift[1]:+.2f} px no "
                "valid pixel of the estimate overlaps the valid region; scored unregistered"
            )
            shift = (0.0, 0.0)
    plane_free = _remove_phase_plane(est, ref, region)
    if plane_free is None:
        flags.append(f"phase offset and ramp not removed: {_zero_amplitude(est, ref, region)}")
    else:
        est = plane_free
    est_mean = float(np.abs(region.crop(est)[region.mask]).mean())
    if est_mean > 0.0:
        est *= float(np.abs(region.crop(ref)[region.mask]).mean()) / est_mean
    else:
        flags.append("amplitude not rescaled: estimate amplitude is zero")
    return _Alignment(est, ref, scored, shift, tuple(flags))


def align_to_reference(
    estimate: ArrayLike, reference: ArrayLike, valid: ArrayLike | None = None, register: bool = True
) -> NDArray[np.complexfloating]:
    """Align a complex estimate to a reference before scoring it.

    Steps: (1) sub-pixel registration with :func:`register_shift` and a Fourier shift of the
    bounding box of ``valid`` (first continued past the valid area with nearest-valid values,
    then mirrored outwards with a smooth fade, so neither wrap-around nor edge ringing reach the
    valid pixels); (2) removal of the global phase offset and of a linear phase ramp: a coarse
    ramp from the spectral peak of ``est * conj(ref)`` (so ramps of many radians do not wrap
    the fit), the offset ``angle(sum(est * conj(ref) * exp(-i ramp)))``, then a weighted
    (``|est| * |ref|``) least-squares plane ``a + b*y + c*x`` (radians, pixel coordinates)
    fitted twice to the re-wrapped residual of ``angle(est * conj(ref))``; (3) amplitude scaled
    by ``mean(|ref|) / mean(|est|)``. Steps 2 and 3 use the valid pixels whose shifted content
    came from valid pixels of the estimate.

    Parameters
    ----------
    estimate, reference : array_like, shape (H, W), complex
        Reconstructed and true objects in the same frame (complex64 or complex128).
    valid : array_like of bool, shape (H, W), optional
        Region to align on (None: all pixels).
    register : bool, default True
        Whether to register (step 1); steps 2 and 3 always run.

    Returns
    -------
    ndarray, shape (H, W), complex
        The aligned estimate, complex64 for a complex64 estimate, else complex128. Inside the
        bounding box of ``valid`` but outside ``valid`` (or within the shift of its edge) it
        holds extrapolated values; after a nonzero shift, pixels outside the box are 0.

    Raises
    ------
    DataError
        Besides malformed input: non-finite values inside ``valid``, or a step that cannot run
        on this content (a zero amplitude, a constant image or a region under 8 x 8 px to
        register, a shift leaving no overlap); the message gives the same reasons as the flags
        of :func:`compare`, which scores such estimates instead of raising.
    """
    est = _as_image("estimate", estimate)
    ref = _as_image("reference", reference)
    _check_pair("estimate", est, "reference", ref)
    mask = _as_mask(valid, est.shape)
    _check_finite("estimate", est, mask)
    _check_finite("reference", ref, mask)
    alignment = _align(est, ref, mask, register)
    if alignment.flags:
        # An aligned image that silently skipped a step would pass for a corrected one.
        raise DataError(f"cannot align the estimate: {'; '.join(alignment.flags)}")
    out_dtype = np.result_type(est.dtype, np.complex64)
    return alignment.estimate.astype(out_dtype, copy=False)


# --------------------------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------------------------


def _phase_window_centre(reference_values: ComplexArray) -> float:
    """Centre (rad) of the 2 pi window in which both phases are read.

    The amplitude-weighted histogram of the reference phase (64 bins over the circle) is
    searched for the longest circular run of its least-filled bins; the branch cut goes to the
    middle of that run, and the window is centred opposite it. An object whose phase stays
    within +-pi/2 gets a centre near 0, i.e. plain ``np.angle``.
    """
    n_bins = _PHASE_BINS
    phase = np.angle(reference_values)
    index = np.minimum(((phase + np.pi) / (2 * np.pi) * n_bins).astype(np.intp), n_bins - 1)
    hist = np.bincount(index, np.abs(reference_values), minlength=n_bins)
    emptiest = hist <= hist.min()
    if emptiest.all():
        return 0.0
    # Rotate so that bin 0 is not in a run, then find the longest run of emptiest bins.
    first = int(np.argmin(emptiest))
    rolled = np.roll(emptiest, -first)
    best_start, best_length, start = 0, 0, -1
    for position, flag in enumerate([*rolled.tolist(), False]):
        if flag and start < 0:
            start = position
        elif not flag and start >= 0:
            if position - start > best_length:
                best_start, best_length = start, position - start
            start = -1
    cut_bin = (first + best_start + best_length / 2.0) % n_bins
    cut = -np.pi + 2 * np.pi * cut_bin / n_bins
    return float(np.angle(-np.exp(1j * cut)))


def _report(
    alignment: _Alignment, label: str, pixel_size_m: float | None, flags: list[str]
) -> QualityReport:
    scored = alignment.scored
    aligned = alignment.estimate
    reference = alignment.reference
    shift = alignment.shift
    region = _Region(scored)
    # Both phases are read in one 2 pi window whose branch cut sits in the widest gap of the
    # reference phase. The estimate's phase must not be built from the reference's (e.g.
    # angle(ref) plus a wrapped difference): a random estimate would inherit its structure.
    centre = _phase_window_centre(region.crop(reference)[region.mask])
    rotation = np.exp(-1j * centre)
    ref_phase = np.angle(reference * rotation) + centre
    est_phase = np.angle(aligned * rotation) + centre
    description = region.describe(label)
    if shift != (0.0, 0.0):
        description += f" (trimmed by the registration shift {shift[0]:+.2f}, {shift[1]:+.2f} px)"
    small = _too_small(region)
    if small is not None:
        flags.append(f"SSIM and FRC not computed: {small}")
    ref_amplitude = np.abs(reference)
    for channel, values in (("amplitude", ref_amplitude), ("phase", ref_phase)):
        if not _reference_range(values, region) > 0.0:
            undefined = "PSNR" if small is not None else "SSIM and PSNR"
            flags.append(f"{undefined} undefined: reference {channel} is constant over the region")
    windowed = small is None
    return QualityReport(
        amplitude=_channel_scores(np.abs(aligned), ref_amplitude, region, pixel_size_m, windowed),
        phase=_channel_scores(est_phase, ref_phase, region, pixel_size_m, windowed),
        region=description,
        n_pixels=region.n_pixels,
        shift_px=shift,
        flags=tuple(flags),
    )


def compare(
    estimate: ArrayLike,
    reference: ArrayLike,
    valid: ArrayLike | None = None,
    pixel_size_m: float | None = None,
    register: bool = True,
    max_shift_px: float | None = 8.0,
) -> QualityReport:
    """Score a reconstructed object against the true one (physics contract, section 8).

    The estimate is aligned with :func:`align_to_reference`, then amplitude ``|est|`` is
    scored against ``|ref|`` and phase against phase, directly (both are already offset- and
    ramp-corrected). Both phases are read in the same 2 pi window, whose branch cut sits in the
    widest gap of the reference phase (amplitude-weighted histogram, 64 bins): for an object
    whose phase stays within +-pi/2 this is plain ``angle(est)`` vs ``angle(ref)``, and for one
    whose phase lies near +-pi or spans most of the circle it keeps the cut away from the data.
    Scores use the valid pixels whose registered content came from valid pixels of the estimate
    (the report's ``region`` and ``n_pixels`` say which).

    Whatever the estimate holds, this returns a report and never warns: a step or score that
    cannot be computed is skipped or NaN, and the report's ``flags`` say which and why.
    Non-finite estimate or reference pixels inside ``valid`` are left out of the scored region;
    with no pixel left, every score is NaN and ``n_pixels`` is 0. Registration is skipped for
    a constant or zero estimate or reference and for a region under 8 x 8 px; SSIM and FRC need
    8 x 8 px too (MAE, RMSE and PSNR are still computed); a zero estimate amplitude skips the
    phase-plane removal and the amplitude scaling; a shift that leaves no overlapping valid
    pixel is dropped and the estimate scored unregistered.

    Parameters
    ----------
    estimate, reference : array_like, shape (H, W), complex
        Reconstructed and true objects in the same frame.
    valid : array_like of bool, shape (H, W), optional
        Valid stitched area (None: all pixels). SSIM, FRC and registration need a bounding box
        of at least 8 x 8 px.
    pixel_size_m : float, optional
        Object pixel size in metres; when given, the FRC resolutions are also in metres.
    register : bool, default True
        Whether to register the estimate before scoring.
    max_shift_px : float or None, default 8.0
        Largest registration shift accepted on either axis. The estimate is stitched at the
        known scan positions, so a larger shift means registration locked onto noise (a
        failed reconstruction): the estimate is then scored unregistered, and the report's
        ``region`` and ``flags`` say so. None accepts any shift.

    Returns
    -------
    QualityReport
        Amplitude and phase scores, the region used, the registration shift, and the flags.

    Raises
    ------
    DataError
        For caller errors only: ``estimate`` and ``reference`` differ in shape or are not 2-D
        arrays of numbers, or ``valid`` is not a bool mask of their shape.
    ValueError
        ``pixel_size_m`` is not a positive finite number.
    """
    est = _as_image("estimate", estimate)
    ref = _as_image("reference", reference)
    _check_pair("estimate", est, "reference", ref)
    mask = _as_mask(valid, est.shape, allow_empty=True)
    size_m = _check_pixel_size(pixel_size_m)
    label = "full frame" if valid is None else "valid stitched area"
    flags: list[str] = []
    if not mask.any():
        flags.append("no valid pixel: nothing scored")
        return _empty_report(label, size_m, flags)
    usable = _drop_non_finite("estimate", est, mask, flags)
    usable = _drop_non_finite("reference", ref, usable, flags)
    if flags:
        label += ", finite pixels"
    if not usable.any():
        flags.append("no finite valid pixel: nothing scored")
        return _empty_report(label, size_m, flags)
    try:
        alignment = _align(est, ref, usable, register, max_shift_px=max_shift_px)
    except RegistrationRefused as refused:
        alignment = _align(est, ref, usable, False)
        refusal = (
            f"registration refused: shift {refused.shift[0]:+.2f}, {refused.shift[1]:+.2f} px "
            f"exceeds {refused.limit:g} px"
        )
        label += f" ({refusal})"
        flags.append(f"{refusal}; scored unregistered")
    flags.extend(alignment.flags)
    return _report(alignment, label, size_m, flags)


def chance_level(
    reference: ArrayLike, valid: ArrayLike | None = None, pixel_size_m: float | None = None
) -> QualityReport:
    """Scores of a featureless object, to quote next to every real score.

    The constant object ``mean(|ref|)`` (over ``valid``, phase 0) is scored with
    :func:`compare` without registration. It goes through the same phase offset/ramp removal
    as any estimate, so its phase channel is the best plane through the reference phase: the
    score an estimate gets for free. Expect SSIM near 0 and FRC resolutions ``inf`` (amplitude)
    or very large (phase).

    Like :func:`compare`, it never raises or warns because of the reference's content
    (non-finite pixels, a tiny or empty region): the report's ``flags`` say what was not
    computed.

    Parameters
    ----------
    reference : array_like, shape (H, W), complex
        True object.
    valid : array_like of bool, shape (H, W), optional
        Region to score (None: all pixels).
    pixel_size_m : float, optional
        Object pixel size in metres, as in :func:`compare`.

    Returns
    -------
    QualityReport
        The chance-level scores, with ``shift_px = (0.0, 0.0)``.

    Raises
    ------
    DataError, ValueError
        For caller errors only, as in :func:`compare`.
    """
    ref = _as_image("reference", reference)
    mask = _as_mask(valid, ref.shape, allow_empty=True)
    usable = mask & np.isfinite(ref)
    # With no usable pixel any level will do: compare() flags that nothing is scored.
    level = float(np.abs(ref[usable]).mean()) if usable.any() else 0.0
    constant = np.full(ref.shape, level, dtype=np.complex128)
    return compare(constant, ref, valid, pixel_size_m=pixel_size_m, register=False)


def probe_correlation(estimate: ArrayLike, reference: ArrayLike) -> float:
    """How well a reconstructed probe matches the true one, in [0, 1].

    The estimate is first aligned as an object is (:func:`align_to_reference`: sub-pixel
    shift, global phase offset and linear phase ramp, amplitude scale), because a common shift
    of probe and object and a phase ramp traded between them leave every far-field pattern
    unchanged. Then ``|<est, ref>| / (||est|| ||ref||)``.

    Parameters
    ----------
    estimate, reference : array_like, (N, N) complex
        One probe mode each (e.g. the strongest).

    Returns
    -------
    float
        1 for a perfect match up to those ambiguities; NaN when either probe is zero.
    """
    est = np.asarray(estimate, dtype=np.complex128)
    ref = np.asarray(reference, dtype=np.complex128)
    try:
        aligned = align_to_reference(est, ref)
    except DataError:
        aligned = est
    norm = float(np.linalg.norm(aligned) * np.linalg.norm(ref))
    if not norm > 0:
        return math.nan
    return float(abs(np.vdot(aligned, ref)) / norm)
