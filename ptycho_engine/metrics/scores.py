"""Single scores of real or complex images: FRC and its resolution, SSIM, PSNR, channel scores.

The public functions check their input and raise :class:`~ptycho_engine.errors.DataError`;
the ``_*_region`` forms score an already checked :class:`~ptycho_engine.metrics.region._Region`
and serve :func:`~ptycho_engine.metrics.compare` through :func:`_channel_scores`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import scipy.fft as sfft
from numpy.typing import ArrayLike, NDArray
from skimage.metrics import structural_similarity

from ptycho_engine.errors import DataError
from ptycho_engine.metrics.region import (
    _CONSTANT_TOLERANCE,
    FloatArray,
    _as_image,
    _as_mask,
    _as_real,
    _check_finite,
    _check_pair,
    _Region,
)
from ptycho_engine.metrics.reports import ChannelScores

Threshold = Literal["1/7", "half-bit"]

#: Fixed FRC threshold of the "1/7" criterion.
FRC_ONE_SEVENTH = 1.0 / 7.0
#: Index of the first FRC ring searched for a threshold crossing. Ring 0 (the zero frequency)
#: and ring 1 hold a handful of pixels and, in ptychography, the least reliable frequencies;
#: they are skipped so that a dip there does not read as "no resolution at all".
FRC_FIRST_RING = 2
#: The crossing is searched from the first ring (at least :data:`FRC_FIRST_RING`) where the two
#: images hold at least this fraction of the power per Fourier pixel of the strongest searched
#: ring (:func:`frc_search_start`): an object without coarse structure (a Siemens star, whose
#: spokes have the same mean on every circle) has almost no power in its lowest rings, where
#: the correlation measures a faint envelope and not detail. Measured on the sample star after
#: 10 rPIE iterations (SSIM 0.953): rings 2-12 held 1e-5 to 6e-3 of the power of ring 15, the
#: FRC was -1.0 to 0.73 there and 0.97-1.00 from ring 12 on, and the first-ring search gave
#: ``inf``.
FRC_MIN_POWER = 0.01


# Fourier ring correlation
# --------------------------------------------------------------------------------------------


def _frc_input(image_box: NDArray[np.generic], region: _Region) -> NDArray[np.generic]:
    inside = image_box[region.mask]
    centred = np.where(region.mask, image_box - inside.mean(), 0)
    scale = float(np.abs(inside).max())
    if scale == 0.0 or float(np.abs(centred).max()) <= _CONSTANT_TOLERANCE * scale:
        # A constant image has no structure to correlate; keep rounding noise out of the rings.
        centred = np.zeros_like(centred)
    if np.iscomplexobj(centred):
        return (centred * region.taper).astype(np.complex64)
    return (centred * region.taper).astype(np.float32)


def _frc_region(
    a: NDArray[np.generic], b: NDArray[np.generic], region: _Region
) -> tuple[FloatArray, FloatArray, NDArray[np.int64], FloatArray]:
    region.require_side("the FRC")
    height, width = region.shape
    input_a = _frc_input(region.crop(a), region)
    input_b = _frc_input(region.crop(b), region)
    if np.iscomplexobj(input_a) or np.iscomplexobj(input_b):
        fa = sfft.fft2(input_a)
        fb = sfft.fft2(input_b)
        freq_x = sfft.fftfreq(width)
        multiplicity = np.ones(width)
    else:
        # Real images: half the spectrum, each column standing for itself and its mirror.
        fa = sfft.rfft2(input_a)
        fb = sfft.rfft2(input_b)
        freq_x = sfft.rfftfreq(width)
        multiplicity = np.full(freq_x.shape, 2.0)
        multiplicity[0] = 1.0
        if width % 2 == 0:
            multiplicity[-1] = 1.0
    side = min(height, width)
    n_rings = side // 2 + 1
    radius = np.hypot(sfft.fftfreq(height)[:, None], freq_x[None, :])
    ring = np.rint(radius * side).astype(np.intp)
    keep = ring < n_rings
    ring = ring[keep]
    weight = np.broadcast_to(multiplicity, radius.shape)[keep]
    cross = np.bincount(ring, weight * (fa * np.conj(fb)).real[keep], minlength=n_rings)
    power_a = np.bincount(ring, weight * (fa.real**2 + fa.imag**2)[keep], minlength=n_rings)
    power_b = np.bincount(ring, weight * (fb.real**2 + fb.imag**2)[keep], minlength=n_rings)
    counts = np.rint(np.bincount(ring, weight, minlength=n_rings)).astype(np.int64)
    denominator = np.sqrt(power_a * power_b)
    curve = np.divide(cross, denominator, out=np.zeros(n_rings), where=denominator > 0)
    frequency = np.arange(n_rings) / side
    power = np.divide(denominator, counts, out=np.zeros(n_rings), where=counts > 0)
    return frequency, curve, counts, power


def frc(
    a: ArrayLike, b: ArrayLike, valid: ArrayLike | None = None
) -> tuple[FloatArray, FloatArray, NDArray[np.int64]]:
    """Fourier ring correlation of two images.

    ``FRC(k) = Re(sum F_a conj(F_b)) / sqrt(sum |F_a|^2 * sum |F_b|^2)`` over the pixels of
    ring ``k``. Before the FFT both images are cut to the bounding box of ``valid``, their mean
    over ``valid`` is subtracted, pixels outside ``valid`` are set to zero and a cosine edge
    taper is applied (Tukey window with alpha = 0.25 for a rectangular region, its
    distance-to-edge analogue otherwise; the taper is used with ``valid=None`` too). A constant
    image gives an FRC of 0 in every ring (no structure, no correlation); so does any ring
    where either image has no power.

    Parameters
    ----------
    a, b : array_like, shape (H, W), real or complex
        Images of the same shape (bounding box at least 8 x 8 px).
    valid : array_like of bool, shape (H, W), optional
        Region to use (None: all pixels).

    Returns
    -------
    spatial_frequency : ndarray, shape (n_rings,), float64
        Ring centres in cycles per pixel, ``k / n`` for ``k = 0 .. n // 2``, where ``n`` is the
        shorter side of the box (0 to 0.5).
    frc_curve : ndarray, shape (n_rings,), float64
        Correlation per ring, in [-1, 1].
    n_pixels_per_ring : ndarray, shape (n_rings,), int64
        Number of Fourier pixels in each ring (the corners beyond 0.5 cycle/px are dropped).
    """
    frequency, curve, counts, _ = frc_rings(a, b, valid)
    return frequency, curve, counts


def frc_rings(
    a: ArrayLike, b: ArrayLike, valid: ArrayLike | None = None
) -> tuple[FloatArray, FloatArray, NDArray[np.int64], FloatArray]:
    """:func:`frc` and, fourth, the power of each ring per Fourier pixel,
    ``sqrt(sum |F_a|^2 * sum |F_b|^2) / n_pixels`` (the ``power`` of :func:`frc_crossing`)."""
    image_a = _as_image("a", a)
    image_b = _as_image("b", b)
    _check_pair("a", image_a, "b", image_b)
    mask = _as_mask(valid, image_a.shape)
    _check_finite("a", image_a, mask)
    _check_finite("b", image_b, mask)
    return _frc_region(image_a, image_b, _Region(mask))


def frc_search_start(power: ArrayLike | None) -> int:
    """The first ring searched for a threshold crossing: :data:`FRC_FIRST_RING`, or with the
    rings' ``power`` (:func:`frc_rings`) the first ring from there that holds at least
    :data:`FRC_MIN_POWER` of the strongest one's power per pixel."""
    if power is None:
        return FRC_FIRST_RING
    values = np.asarray(power, dtype=np.float64)[FRC_FIRST_RING:]
    if values.size == 0 or not np.any(values > 0):
        return FRC_FIRST_RING
    return FRC_FIRST_RING + int(np.flatnonzero(values >= FRC_MIN_POWER * values.max())[0])


def threshold_curve(threshold: str, counts: NDArray[np.int64]) -> FloatArray:
    """The FRC threshold per ring: ``"1/7"`` the constant 1/7; ``"half-bit"`` the van Heel &
    Schatz (2005) curve ``(0.2071 + 1.9102 / sqrt(n)) / (1.2071 + 0.9102 / sqrt(n))``, with
    ``n`` the Fourier pixels of the ring (``counts``, the third output of :func:`frc`)."""
    counts = np.asarray(counts)
    if threshold == "1/7":
        return np.full(counts.shape, FRC_ONE_SEVENTH)
    if threshold == "half-bit":
        root = np.sqrt(np.maximum(counts, 1).astype(np.float64))
        return (0.2071 + 1.9102 / root) / (1.2071 + 0.9102 / root)
    raise ValueError(f"threshold must be '1/7' or 'half-bit', got {threshold!r}")


def frc_crossing(
    frequency: ArrayLike,
    curve: ArrayLike,
    counts: ArrayLike,
    threshold: Threshold = "1/7",
    power: ArrayLike | None = None,
) -> tuple[float, float, float]:
    """Where a precomputed FRC curve (the outputs of :func:`frc`) first falls below a
    threshold, searched outwards from ring :func:`frc_search_start` (:data:`FRC_FIRST_RING`;
    with the rings' ``power`` from :func:`frc_rings`, the first ring that holds
    :data:`FRC_MIN_POWER` of the strongest one's power) and interpolated linearly between the
    last ring above and the first below.

    Returns
    -------
    (resolution_px, frequency, level) : tuple of float
        ``1 / frequency`` in pixels (2.0, Nyquist, when the curve never falls below the
        threshold; ``inf`` when it is below at the first ring searched), the crossing
        frequency in cycles per pixel and the threshold there (NaN without a crossing).

    Raises
    ------
    DataError
        A curve with no ring to search.
    """
    freq = np.asarray(frequency, dtype=np.float64)
    values = np.asarray(curve, dtype=np.float64)
    limit = threshold_curve(threshold, np.asarray(counts))
    start = frc_search_start(power)  # FRC_FIRST_RING for a curve shorter than that
    if len(values) <= start:
        raise DataError(f"the FRC has only {len(values)} rings: the region is too small")
    below = np.flatnonzero(values[start:] < limit[start:])
    if below.size == 0:
        return 2.0, math.nan, math.nan
    ring = start + int(below[0])
    if ring == start:
        return math.inf, math.nan, math.nan
    above_gap = float(values[ring - 1] - limit[ring - 1])
    below_gap = float(values[ring] - limit[ring])
    fraction = above_gap / (above_gap - below_gap)
    crossing = float(freq[ring - 1] + fraction * (freq[ring] - freq[ring - 1]))
    level = float(limit[ring - 1] + fraction * (limit[ring] - limit[ring - 1]))
    return 1.0 / crossing, crossing, level


def _resolution_px(
    frequency: FloatArray,
    curve: FloatArray,
    counts: NDArray[np.int64],
    threshold: str,
    power: FloatArray | None = None,
) -> float:
    return frc_crossing(frequency, curve, counts, threshold, power)[0]  # type: ignore[arg-type]


def frc_resolution(
    a: ArrayLike, b: ArrayLike, valid: ArrayLike | None = None, threshold: Threshold = "1/7"
) -> float:
    """Resolution from the Fourier ring correlation, in pixels.

    The FRC (see :func:`frc`) is searched from ring ``FRC_FIRST_RING`` (= 2) outwards for the
    first ring below the threshold; the crossing frequency is interpolated linearly between that
    ring and the previous one, and the resolution is ``1 / crossing`` (pixels per cycle).

    Parameters
    ----------
    a, b : array_like, shape (H, W), real or complex
        Images of the same shape.
    valid : array_like of bool, shape (H, W), optional
        Region to use (None: all pixels).
    threshold : {"1/7", "half-bit"}
        ``"1/7"``: the constant 0.143; ``"half-bit"``: the van Heel & Schatz curve
        ``(0.2071 + 1.9102 / sqrt(n)) / (1.2071 + 0.9102 / sqrt(n))``, ``n`` = pixels in the
        ring.

    Returns
    -------
    float
        Resolution in pixels: 2.0 (Nyquist) when the FRC never falls below the threshold,
        ``inf`` when it is already below at the first searched ring (no resolved detail).
    """
    threshold_curve(threshold, np.ones(1, dtype=np.int64))
    frequency, curve, counts, power = frc_rings(a, b, valid)
    return _resolution_px(frequency, curve, counts, threshold, power)


# --------------------------------------------------------------------------------------------
# SSIM and PSNR
# --------------------------------------------------------------------------------------------


def _reference_range(reference: FloatArray, region: _Region) -> float:
    inside = region.crop(reference)[region.mask]
    return float(inside.max() - inside.min())


def _ssim_region(a: FloatArray, b: FloatArray, region: _Region, data_range: float | None) -> float:
    region.require_side("SSIM")
    if data_range is None:
        data_range = _reference_range(b, region)
    if not data_range > 0.0:
        return math.nan
    a_box = region.fill_outside(region.crop(a))
    b_box = region.fill_outside(region.crop(b))
    _, ssim_map = structural_similarity(a_box, b_box, data_range=data_range, full=True)
    return float(np.asarray(ssim_map)[region.mask].mean())


def ssim(
    a: ArrayLike, b: ArrayLike, valid: ArrayLike | None = None, data_range: float | None = None
) -> float:
    """Mean structural similarity of ``a`` against the reference ``b`` over ``valid``.

    Computed with :func:`skimage.metrics.structural_similarity` (its defaults: 7 x 7 uniform
    window, sample covariance, K1 = 0.01, K2 = 0.03) on the bounding box of ``valid``; box
    pixels outside ``valid`` take the value of the nearest valid pixel (so windows at the edge
    see a continuation of the image, not a step), and the SSIM map (``full=True``) is averaged
    over the valid pixels only.

    Parameters
    ----------
    a, b : array_like, shape (H, W), real
        Estimate and reference (bounding box at least 8 x 8 px).
    valid : array_like of bool, shape (H, W), optional
        Region to score (None: all pixels).
    data_range : float, optional
        Dynamic range for the SSIM constants; default the range (max - min) of the reference
        ``b`` over ``valid``.

    Returns
    -------
    float
        Mean SSIM in [-1, 1]; NaN when the data range is zero (constant reference).
    """
    image_a = _as_real("a", a)
    image_b = _as_real("b", b)
    _check_pair("a", image_a, "b", image_b)
    mask = _as_mask(valid, image_a.shape)
    _check_finite("a", image_a, mask)
    _check_finite("b", image_b, mask)
    return _ssim_region(image_a, image_b, _Region(mask), data_range)


def _psnr_region(a: FloatArray, b: FloatArray, region: _Region) -> float:
    peak = _reference_range(b, region)
    diff = region.crop(a)[region.mask] - region.crop(b)[region.mask]
    mse = float(np.mean(diff * diff))
    if not peak > 0.0:
        return math.nan
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def psnr(a: ArrayLike, b: ArrayLike, valid: ArrayLike | None = None) -> float:
    """Peak signal-to-noise ratio of ``a`` against the reference ``b`` over ``valid``, in dB.

    ``10 log10(peak^2 / MSE)`` with ``peak`` = max - min of the reference ``b`` over ``valid``
    (never a fixed 255), so scaling both images by the same factor leaves it unchanged.

    Parameters
    ----------
    a, b : array_like, shape (H, W), real
        Estimate and reference.
    valid : array_like of bool, shape (H, W), optional
        Region to score (None: all pixels).

    Returns
    -------
    float
        PSNR in dB; ``inf`` for identical images, NaN for a constant reference.
    """
    image_a = _as_real("a", a)
    image_b = _as_real("b", b)
    _check_pair("a", image_a, "b", image_b)
    mask = _as_mask(valid, image_a.shape)
    _check_finite("a", image_a, mask)
    _check_finite("b", image_b, mask)
    return _psnr_region(image_a, image_b, _Region(mask))


# --------------------------------------------------------------------------------------------
# Channel scores
# --------------------------------------------------------------------------------------------


def _channel_scores(
    estimate: FloatArray,
    reference: FloatArray,
    region: _Region,
    pixel_size_m: float | None,
    windowed: bool = True,
) -> ChannelScores:
    """Scores of one channel over ``region``.

    With ``windowed=False`` (a region under 8 x 8 px) SSIM and the FRC resolutions are NaN
    instead of being computed; MAE, RMSE and PSNR need only one pixel.
    """
    diff = region.crop(estimate)[region.mask] - region.crop(reference)[region.mask]
    if windowed:
        frequency, curve, counts, power = _frc_region(estimate, reference, region)
        res_17 = _resolution_px(frequency, curve, counts, "1/7", power)
        res_hb = _resolution_px(frequency, curve, counts, "half-bit", power)
        ssim_value = _ssim_region(estimate, reference, region, None)
    else:
        res_17 = res_hb = ssim_value = math.nan
    return ChannelScores(
        ssim=ssim_value,
        psnr=_psnr_region(estimate, reference, region),
        mae=float(np.mean(np.abs(diff))),
        rmse=float(np.sqrt(np.mean(diff * diff))),
        frc_1_7_px=res_17,
        frc_halfbit_px=res_hb,
        frc_1_7_m=None if pixel_size_m is None else res_17 * pixel_size_m,
        frc_halfbit_m=None if pixel_size_m is None else res_hb * pixel_size_m,
    )
