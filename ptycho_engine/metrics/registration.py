"""Sub-pixel registration, shifts and the phase-plane removal used to align an estimate.

Fourier and bilinear shifts (the engine's ``translate`` sign), the iterated plain
cross-correlation behind :func:`register_shift`, the check for featureless images, and the
least-squares removal of a global phase offset and linear phase ramp.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import scipy.fft as sfft
import scipy.ndimage as ndi
from numpy.typing import ArrayLike, NDArray
from skimage.registration import phase_cross_correlation

from ptycho_engine.errors import DataError
from ptycho_engine.metrics.region import (
    _CONSTANT_TOLERANCE,
    ComplexArray,
    FloatArray,
    _as_image,
    _as_mask,
    _check_finite,
    _check_pair,
    _ldexp,
    _Region,
    _ScalarT,
    _within_scale,
)

#: Extra margin (pixels) of the smooth padding used by the Fourier shift.
_SHIFT_MARGIN_PX = 16
#: Most sub-pixel registration passes (each re-centres the moving image on the estimate).
_REGISTRATION_PASSES = 6
#: Relative amplitude contrast below which registration falls back to the complex images.
_MIN_AMPLITUDE_CONTRAST = 1e-6
#: Pixel count above which the phase-plane fit runs on a strided subset of the region.
_PLANE_FIT_PIXELS = 1 << 20
#: ``log2`` bound on the registration inputs' energy (sum of squares, and that times the pixel
#: count): phase_cross_correlation sums and multiplies these in single precision, and warns
#: when the product is zero or overflows.
_ENERGY_LOG2_LIMIT = 60


# --------------------------------------------------------------------------------------------
# Shifting and registration
# --------------------------------------------------------------------------------------------


def _pad_weights(before: int, inner: int, after: int) -> FloatArray:
    weights = np.ones(before + inner + after)
    weights[:before] = np.sin(0.5 * np.pi * (np.arange(before) + 0.5) / before) ** 2
    weights[before + inner :] = np.cos(0.5 * np.pi * (np.arange(after) + 0.5) / after) ** 2
    return weights


def _fourier_shift(image: NDArray[_ScalarT], shift: tuple[float, float]) -> NDArray[_ScalarT]:
    """Shift content by ``+shift`` (``out[y, x] = in[y - dy, x - dx]``) with a Fourier phase.

    The image is mirrored outwards by ``ceil(max|shift|) + 16`` px and the mirrored band is
    faded to the image mean, so the periodic extension the FFT assumes is smooth: no wrap-around
    of content and no ringing from the frame edges. Real input gives real output.
    """
    dy, dx = shift
    height, width = image.shape
    margin = math.ceil(max(abs(dy), abs(dx))) + _SHIFT_MARGIN_PX
    full_h = sfft.next_fast_len(height + 2 * margin)
    full_w = sfft.next_fast_len(width + 2 * margin)
    pads = ((margin, full_h - height - margin), (margin, full_w - width - margin))
    mean = image.mean()
    padded = np.pad(image - mean, pads, mode="reflect")
    padded *= np.outer(
        _pad_weights(margin, height, pads[0][1]), _pad_weights(margin, width, pads[1][1])
    )
    phase_y = np.exp(-2j * np.pi * sfft.fftfreq(full_h) * dy)
    phase_x = np.exp(-2j * np.pi * sfft.fftfreq(full_w) * dx)
    shifted = sfft.ifft2(sfft.fft2(padded) * np.outer(phase_y, phase_x))
    out = shifted[margin : margin + height, margin : margin + width] + mean
    if np.iscomplexobj(image):
        return cast("NDArray[_ScalarT]", out)
    return cast("NDArray[_ScalarT]", out.real)


def _registration_input(image_box: NDArray[np.generic], region: _Region) -> NDArray[np.generic]:
    """Mean-subtracted, zero outside the mask (i.e. filled with the mean), edge-tapered."""
    mean = image_box[region.mask].mean()
    return np.where(region.mask, image_box - mean, 0) * region.taper


def _bilinear_shift(image: NDArray[_ScalarT], shift: tuple[float, float]) -> NDArray[_ScalarT]:
    """Shift content by ``+shift`` with bilinear interpolation, edges continued (nearest)."""
    if np.iscomplexobj(image):
        real = ndi.shift(image.real, shift, order=1, mode="nearest")
        imag = ndi.shift(image.imag, shift, order=1, mode="nearest")
        return cast("NDArray[_ScalarT]", real + 1j * imag)
    return cast("NDArray[_ScalarT]", ndi.shift(image, shift, order=1, mode="nearest"))


class _Unregistrable(Exception):  # noqa: N818 - a signal, caught inside this package
    """Registration cannot run on these images; ``reason`` says why in a scientist's words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _correlation_exponent(image_input: NDArray[np.generic], name: str) -> int:
    """Power of two that keeps a registration input's energy where single precision holds it.

    ``phase_cross_correlation`` sums ``|F|^2`` (Parseval: pixel count times the sum of
    squares) in single precision and multiplies the two images' sums; a zero product makes it
    warn and an overflow makes numpy warn. Returns 0 for inputs already in range (all normal
    data, which therefore stay bit-identical), else the exponent that brings the sum of squares
    to about 1. Raises :class:`_Unregistrable` for an input with no energy at all.
    """
    flat = image_input.reshape(-1).astype(np.complex128, copy=False)
    energy = float(np.vdot(flat, flat).real)
    if not energy > 0.0:
        raise _Unregistrable(
            f"{name} has no contrast left after the edge taper "
            f"(region too thin, or {name} nearly constant)"
        )
    log_energy = math.log2(energy)
    log_total = log_energy + math.log2(flat.size)
    if log_energy >= -_ENERGY_LOG2_LIMIT and log_total <= _ENERGY_LOG2_LIMIT:
        return 0
    return -round(log_energy / 2.0)


def _register(
    reference: NDArray[np.generic],
    moving: NDArray[np.generic],
    region: _Region,
    upsample: int,
    names: tuple[str, str] = ("reference", "moving"),
) -> tuple[float, float]:
    # Extreme magnitudes would overflow the single-precision casts below; normal data pass.
    ref_box: NDArray[np.generic] = _within_scale(region.crop(reference), region.mask)
    mov_box: NDArray[np.generic] = _within_scale(region.crop(moving), region.mask)
    if np.iscomplexobj(ref_box) or np.iscomplexobj(mov_box):
        ref_amp = np.abs(ref_box)[region.mask]
        mov_amp = np.abs(mov_box)[region.mask]
        contrast = min(
            float(ref_amp.std() / max(float(ref_amp.mean()), 1e-300)),
            float(mov_amp.std() / max(float(mov_amp.mean()), 1e-300)),
        )
        if contrast > _MIN_AMPLITUDE_CONTRAST:
            ref_box = np.abs(ref_box).astype(np.float32)
            mov_box = np.abs(mov_box).astype(np.float32)
        else:
            # A pure phase object: its amplitude cannot be registered, the complex field can.
            ref_box = ref_box.astype(np.complex64)
            mov_box = mov_box.astype(np.complex64)
    else:
        ref_box = ref_box.astype(np.float32)
        mov_box = mov_box.astype(np.float32)
    # Outside the mask each image carries its own mean (zero after mean subtraction).
    mov_filled = np.where(region.mask, mov_box, mov_box[region.mask].mean())
    ref_box = _ldexp(ref_box, _correlation_exponent(_registration_input(ref_box, region), names[0]))
    mov_filled = _ldexp(
        mov_filled, _correlation_exponent(_registration_input(mov_filled, region), names[1])
    )
    ref_freq = sfft.fft2(_registration_input(ref_box, region))
    # The plain (not phase-normalised) correlation is robust on smooth objects; the edge taper
    # keeps the box edges from pinning the peak at zero shift, but being fixed to the frame it
    # still pulls the peak towards zero. So: a whole-pixel pass, then sub-pixel passes on the
    # moving image shifted by the running estimate until the correction is within one
    # upsampled step (bilinear interpolation has no phase error, so it adds no bias).
    coarse, _, _ = phase_cross_correlation(
        ref_freq,
        sfft.fft2(_registration_input(mov_filled, region)),
        space="fourier",
        upsample_factor=1,
        normalization=None,
    )
    total = np.asarray(coarse, dtype=np.float64)
    for _ in range(_REGISTRATION_PASSES):
        moved = _bilinear_shift(mov_filled, (total[0], total[1])) if total.any() else mov_filled
        moved_input = _registration_input(moved, region)
        # The shift may have carried the moving image's only structure out of the box.
        if _correlation_exponent(moved_input, names[1]) != 0:
            raise _Unregistrable(
                f"{names[1]} lost its contrast when shifted by the running estimate "
                f"({total[0]:+.2f}, {total[1]:+.2f}) px"
            )
        fine, _, _ = phase_cross_correlation(
            ref_freq,
            sfft.fft2(moved_input),
            space="fourier",
            upsample_factor=upsample,
            normalization=None,
        )
        total = total + np.asarray(fine, dtype=np.float64)
        if float(np.abs(fine).max()) <= 1.0 / upsample + 1e-6:
            break
    total = np.round(total * upsample) / upsample
    return (float(total[0]) + 0.0, float(total[1]) + 0.0)


def register_shift(
    reference: ArrayLike, moving: ArrayLike, valid: ArrayLike | None = None, upsample: int = 20
) -> tuple[float, float]:
    """Sub-pixel shift that aligns ``moving`` to ``reference``.

    Parameters
    ----------
    reference, moving : array_like, shape (H, W), real or complex
        Images of the same shape. Complex images are registered on their amplitudes; when either
        amplitude is constant over ``valid`` (a pure phase object, relative contrast below
        1e-6) the complex fields are registered instead.
    valid : array_like of bool, shape (H, W), optional
        Pixels to use (None: all). Registration runs on the bounding box of ``valid``; outside
        ``valid`` each image is filled with its mean over ``valid``, and a cosine edge taper
        (see ``TAPER_FRACTION``) keeps edges from biasing the correlation.
    upsample : int, default 20
        Sub-pixel precision is ``1 / upsample`` pixel.

    Returns
    -------
    (dy, dx) : tuple of float
        Shift in pixels such that shifting ``moving`` by ``+(dy, dx)`` (content moves by
        ``+(dy, dx)``, ``out[y, x] = in[y - dy, x - dx]``, the engine's ``translate`` sign)
        aligns it to ``reference``. If ``moving`` is ``reference`` moved by ``+s``, the result
        is ``-s``.

    Raises
    ------
    DataError
        Besides malformed input: non-finite values inside ``valid``, an image that is zero or
        constant over ``valid``, or one with no contrast left to correlate after mean
        subtraction and the edge taper.

    Notes
    -----
    Uses :func:`skimage.registration.phase_cross_correlation` with ``normalization=None`` (plain
    cross-correlation; phase correlation locks onto the box edges of smooth objects). A
    whole-pixel pass is followed by up to 6 sub-pixel passes, each on the moving image
    bilinearly shifted by the running estimate, until the correction is at most
    ``1 / upsample``: this removes the pull towards zero shift of the fixed edge taper.
    The result is a multiple of ``1 / upsample``. Shifts beyond half the box are ambiguous.
    """
    if int(upsample) != upsample or upsample < 1:
        raise ValueError(f"upsample must be a positive integer, got {upsample!r}")
    ref = _as_image("reference", reference)
    mov = _as_image("moving", moving)
    _check_pair("reference", ref, "moving", mov)
    mask = _as_mask(valid, ref.shape)
    _check_finite("reference", ref, mask)
    _check_finite("moving", mov, mask)
    ref = np.where(mask, ref, 0)
    mov = np.where(mask, mov, 0)
    region = _Region(mask)
    try:
        for name, image in (("reference", ref), ("moving", mov)):
            featureless = _featureless(name, _within_scale(image, mask), region)
            if featureless is not None:
                raise _Unregistrable(featureless)
        return _register(ref, mov, region, int(upsample))
    except _Unregistrable as failure:
        raise DataError(f"cannot register: {failure.reason}") from None


# --------------------------------------------------------------------------------------------
def _featureless(name: str, image: NDArray[np.generic], region: _Region) -> str | None:
    """``"<name> is zero"`` or ``"<name> is constant"`` over the region; None otherwise."""
    values = region.crop(image)[region.mask].astype(np.complex128, copy=False)
    top = float(np.abs(values).max())
    if top == 0.0:
        return f"{name} is zero"
    # A constant image correlates equally well at every shift: its "peak" is rounding noise,
    # so it is caught here in double precision, before the single-precision correlation.
    if float(np.abs(values - values[0]).max()) <= _CONSTANT_TOLERANCE * top:
        return f"{name} is constant"
    return None


# --------------------------------------------------------------------------------------------
# Phase plane
# --------------------------------------------------------------------------------------------


def _remove_phase_plane(
    estimate: ComplexArray, reference: ComplexArray, region: _Region
) -> ComplexArray | None:
    """Multiply ``estimate`` by ``exp(-i (a + b y + c x))`` fitted to its phase difference.

    Returns None when no pixel of the region has both amplitudes nonzero (no phase to fit).
    """
    product = region.crop(estimate) * np.conj(region.crop(reference))
    # Coarse ramp first, from the peak of the spectrum of est * conj(ref) over the box: a ramp
    # of several radians across the field would otherwise wrap and defeat the plane fit.
    box_h, box_w = region.shape
    spectrum = sfft.fft2(np.where(region.mask, product, 0).astype(np.complex64))
    peak = np.unravel_index(int(np.argmax(np.abs(spectrum))), spectrum.shape)
    slope_y = 2.0 * np.pi * float(sfft.fftfreq(box_h)[peak[0]])
    slope_x = 2.0 * np.pi * float(sfft.fftfreq(box_w)[peak[1]])

    # The plane has three parameters: on very large regions every other pixel is plenty.
    step = max(1, math.isqrt(region.n_pixels // _PLANE_FIT_PIXELS))
    product = product[::step, ::step]
    rows = np.arange(0, box_h, step, dtype=np.float64)
    cols = np.arange(0, box_w, step, dtype=np.float64)
    weights = np.where(region.mask[::step, ::step], np.abs(product), 0.0)  # dark = unreliable
    row_weight = weights.sum(axis=1)
    col_weight = weights.sum(axis=0)
    total_weight = float(row_weight.sum())
    if not total_weight > 0.0:
        return None
    # Box coordinates centred on the weighted centroid, for a well-conditioned fit; the sums
    # run over the 2-D box (weights are 0 outside the mask) without gathering pixels.
    y_c = float(row_weight @ rows) / total_weight
    x_c = float(col_weight @ cols) / total_weight
    dy = rows - y_c
    dx = cols - x_c
    s_yy = float(row_weight @ dy**2)
    s_xx = float(col_weight @ dx**2)
    s_xy = float(dy @ weights @ dx)
    normal = np.array(
        [
            [total_weight, float(row_weight @ dy), float(col_weight @ dx)],
            [float(row_weight @ dy), s_yy, s_xy],
            [float(col_weight @ dx), s_xy, s_xx],
        ]
    )
    # Global offset at the coarse ramp: the spectral peak is sum(z exp(-i (b y + c x))).
    offset = float(np.angle(spectrum[peak])) + slope_y * y_c + slope_x * x_c
    phase_z = np.angle(product)
    # Weighted least-squares plane on the re-wrapped residual, twice: the second pass mops up
    # what the first left once the residual no longer wraps.
    for _ in range(2):
        residual = phase_z - offset - (slope_y * dy)[:, None] - (slope_x * dx)[None, :]
        residual = (residual + np.pi) % (2.0 * np.pi) - np.pi
        residual *= weights
        rhs = np.array([residual.sum(), residual.sum(axis=1) @ dy, residual.sum(axis=0) @ dx])
        coef = np.linalg.lstsq(normal, rhs, rcond=None)[0]
        offset += float(coef[0])
        slope_y += float(coef[1])
        slope_x += float(coef[2])
    height, width = estimate.shape
    ramp_y = np.exp(-1j * slope_y * (np.arange(height) - region.rows.start - y_c))
    ramp_x = np.exp(-1j * slope_x * (np.arange(width) - region.cols.start - x_c))
    result: ComplexArray = estimate * (np.exp(-1j * offset) * np.outer(ramp_y, ramp_x))
    return result


class RegistrationRefused(Exception):  # noqa: N818 - a signal, caught inside this package
    """The registration shift exceeds the allowed maximum."""

    def __init__(self, shift: tuple[float, float], limit: float) -> None:
        super().__init__(f"registration shift {shift} exceeds {limit} px")
        self.shift = shift
        self.limit = limit
