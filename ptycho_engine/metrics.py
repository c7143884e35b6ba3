"""Quality metrics of a reconstructed object against a ground truth (numpy, scipy, scikit-image).

This module implements section 8 of the physics contract: before any comparison the estimate is
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
  ``valid`` raise :class:`~ptycho_engine.errors.DataError`.

This module never imports TensorFlow, Keras or Qt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal, TypeVar, cast

import numpy as np
import scipy.fft as sfft
import scipy.ndimage as ndi
from numpy.typing import ArrayLike, NDArray
from skimage.metrics import structural_similarity
from skimage.registration import phase_cross_correlation

from ptycho_engine.errors import DataError

__all__ = [
    "ChannelScores",
    "QualityReport",
    "align_to_reference",
    "chance_level",
    "compare",
    "frc",
    "frc_resolution",
    "psnr",
    "register_shift",
    "ssim",
]

FloatArray = NDArray[np.float64]
ComplexArray = NDArray[np.complex128]
BoolArray = NDArray[np.bool_]
Threshold = Literal["1/7", "half-bit"]
_ScalarT = TypeVar("_ScalarT", bound=np.generic)

#: Fixed FRC threshold of the "1/7" criterion.
FRC_ONE_SEVENTH = 1.0 / 7.0
#: Index of the first FRC ring searched for a threshold crossing. Ring 0 (the zero frequency)
#: and ring 1 hold a handful of pixels and, in ptychography, the least reliable frequencies;
#: they are skipped so that a dip there does not read as "no resolution at all".
FRC_FIRST_RING = 2
#: Width of the cosine edge taper, as a fraction of the shorter side of the scored box.
TAPER_FRACTION = 0.125
#: Extra margin (pixels) of the smooth padding used by the Fourier shift.
_SHIFT_MARGIN_PX = 16
#: Most sub-pixel registration passes (each re-centres the moving image on the estimate).
_REGISTRATION_PASSES = 6
#: Relative amplitude contrast below which registration falls back to the complex images.
_MIN_AMPLITUDE_CONTRAST = 1e-6
#: Relative size below which a mean-subtracted image counts as exactly constant in the FRC.
_CONSTANT_TOLERANCE = 1e-10
#: Bins of the reference-phase histogram used to place the phase branch cut.
_PHASE_BINS = 64
#: Pixel count above which the phase-plane fit runs on a strided subset of the region.
_PLANE_FIT_PIXELS = 1 << 20
#: Smallest box side the scores accept (SSIM uses a 7 x 7 window, the FRC needs a few rings).
_MIN_SIDE_PX = 8


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


def _json_float(value: float | None) -> float | str | None:
    """Return ``value`` as a JSON primitive: None, a finite float, or "inf"/"-inf"/"nan"."""
    if value is None:
        return None
    value = float(value)
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "nan"
    return "inf" if value > 0 else "-inf"


@dataclass(frozen=True)
class ChannelScores:
    """Scores of one real channel (amplitude or phase) against the reference.

    Attributes
    ----------
    ssim : float
        Mean structural similarity over the scored pixels, in [-1, 1]; NaN when the reference
        is constant over the region (SSIM is then undefined).
    psnr : float
        Peak signal-to-noise ratio in dB, peak = range of the reference over the region;
        ``inf`` for identical images, NaN for a constant reference.
    mae : float
        Mean absolute error (amplitude units, or radians for the phase).
    rmse : float
        Root-mean-square error (same units as ``mae``).
    frc_1_7_px, frc_halfbit_px : float
        FRC resolution in pixels at the 1/7 and half-bit thresholds: 2.0 when the FRC never
        drops below the threshold (Nyquist), ``inf`` when it is below from the start.
    frc_1_7_m, frc_halfbit_m : float or None
        The same in metres (``px * pixel_size_m``); None when the pixel size is unknown.
    """

    ssim: float
    psnr: float
    mae: float
    rmse: float
    frc_1_7_px: float
    frc_halfbit_px: float
    frc_1_7_m: float | None = None
    frc_halfbit_m: float | None = None

    def to_dict(self) -> dict[str, float | str | None]:
        """Return the scores as JSON primitives.

        Finite numbers become Python floats; non-finite numbers become the strings ``"inf"``,
        ``"-inf"`` or ``"nan"`` (strict JSON has no infinity), and missing values (the ``_m``
        fields without a pixel size) stay ``None``.
        """
        return {
            "ssim": _json_float(self.ssim),
            "psnr": _json_float(self.psnr),
            "mae": _json_float(self.mae),
            "rmse": _json_float(self.rmse),
            "frc_1_7_px": _json_float(self.frc_1_7_px),
            "frc_halfbit_px": _json_float(self.frc_halfbit_px),
            "frc_1_7_m": _json_float(self.frc_1_7_m),
            "frc_halfbit_m": _json_float(self.frc_halfbit_m),
        }


@dataclass(frozen=True)
class QualityReport:
    """Amplitude and phase scores of an estimate against a reference, with the region used.

    Attributes
    ----------
    amplitude : ChannelScores
        Scores of ``|estimate|`` (aligned) against ``|reference|``.
    phase : ChannelScores
        Scores of the aligned estimate's phase against the reference phase (radians).
    region : str
        Human-readable description of the scored region, e.g.
        ``"valid stitched area: 12345 px, bbox y 10:300, x 12:298"``.
    n_pixels : int
        Number of scored pixels.
    shift_px : tuple of float
        ``(dy, dx)`` registration shift applied to the estimate, in pixels (see
        :func:`register_shift` for the sign); ``(0.0, 0.0)`` without registration.
    """

    amplitude: ChannelScores
    phase: ChannelScores
    region: str
    n_pixels: int
    shift_px: tuple[float, float]

    def to_dict(self) -> dict[str, object]:
        """Return the report as JSON primitives (see :meth:`ChannelScores.to_dict`).

        ``shift_px`` becomes a list of two floats; ``json.dumps(report.to_dict(),
        allow_nan=False)`` always succeeds.
        """
        return {
            "amplitude": self.amplitude.to_dict(),
            "phase": self.phase.to_dict(),
            "region": self.region,
            "n_pixels": int(self.n_pixels),
            "shift_px": [float(self.shift_px[0]), float(self.shift_px[1])],
        }


# --------------------------------------------------------------------------------------------
# Input checks and the scored region
# --------------------------------------------------------------------------------------------


def _as_image(name: str, image: ArrayLike) -> NDArray[np.generic]:
    array = np.asarray(image)
    if array.ndim != 2:
        raise DataError(f"{name} must be a 2-D (H, W) image, got an array of shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise DataError(f"{name} must hold numbers, got dtype {array.dtype}")
    return array


def _as_real(name: str, image: ArrayLike) -> FloatArray:
    array = _as_image(name, image)
    if np.iscomplexobj(array):
        raise DataError(
            f"{name} is complex ({array.dtype}) but this score takes real images: "
            "pass np.abs(...) or np.angle(...)"
        )
    return array.astype(np.float64, copy=False)


def _as_mask(valid: ArrayLike | None, shape: tuple[int, ...]) -> BoolArray:
    if valid is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(valid)
    if mask.dtype != np.bool_:
        raise DataError(f"valid must be a bool mask, got dtype {mask.dtype}")
    if mask.shape != shape:
        raise DataError(f"valid has shape {mask.shape} but the images have shape {shape}")
    if not mask.any():
        raise DataError("valid selects no pixel: there is nothing to score")
    return mask


def _check_pair(name_a: str, a: NDArray[np.generic], name_b: str, b: NDArray[np.generic]) -> None:
    if a.shape != b.shape:
        raise DataError(
            f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}: "
            "cut the reference to the estimate's frame first"
        )


def _check_finite(name: str, image: NDArray[np.generic], mask: BoolArray) -> None:
    bad = int(np.count_nonzero(~np.isfinite(image[mask])))
    if bad:
        raise DataError(f"{name} has {bad} non-finite values (NaN or inf) inside the valid region")


class _Region:
    """Bounding box of a mask, with the taper and fill indices computed once (internal)."""

    def __init__(self, mask: BoolArray) -> None:
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        self.full_mask = mask
        self.rows = slice(int(rows[0]), int(rows[-1]) + 1)
        self.cols = slice(int(cols[0]), int(cols[-1]) + 1)
        self.mask: BoolArray = mask[self.rows, self.cols]
        self.is_box = bool(self.mask.all())
        self.n_pixels = int(np.count_nonzero(self.mask))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.mask.shape[0], self.mask.shape[1])

    def crop(self, image: NDArray[_ScalarT]) -> NDArray[_ScalarT]:
        return image[self.rows, self.cols]

    def describe(self, label: str) -> str:
        return (
            f"{label}: {self.n_pixels} px, bbox y {self.rows.start}:{self.rows.stop}, "
            f"x {self.cols.start}:{self.cols.stop}"
        )

    def require_side(self, what: str) -> None:
        height, width = self.shape
        if min(height, width) < _MIN_SIDE_PX:
            raise DataError(
                f"{what} needs a scored region of at least {_MIN_SIDE_PX} x {_MIN_SIDE_PX} px, "
                f"got a bounding box of {height} x {width} px"
            )

    @cached_property
    def taper(self) -> NDArray[np.float32]:
        """Cosine edge taper over the box, 0 outside the mask, shape of the box, float32.

        The weight rises as ``sin^2(pi/2 * d / width)`` with the distance ``d`` (pixels) from
        the edge of the mask or of the box, over ``width = TAPER_FRACTION * min(box)`` pixels
        (at least 2): a separable Tukey window (alpha = 0.25) for a rectangular mask. For any
        other mask, ``d`` is estimated from a box average of the mask of side ``2 width + 1``
        (exact along straight edges, shorter near corners), which costs far less than a
        distance transform on large frames.
        """
        height, width = self.shape
        ramp = max(2.0, TAPER_FRACTION * min(height, width))
        if self.is_box:
            wy = _edge_ramp(np.minimum(np.arange(height), np.arange(height)[::-1]) + 0.5, ramp)
            wx = _edge_ramp(np.minimum(np.arange(width), np.arange(width)[::-1]) + 0.5, ramp)
            return np.outer(wy, wx).astype(np.float32)
        size = 2 * math.ceil(ramp) + 1
        inside = ndi.uniform_filter(self.mask.astype(np.float32), size, mode="constant")
        distance = (inside.astype(np.float64) - 0.5) * size
        return np.where(self.mask, _edge_ramp(distance, ramp), 0.0).astype(np.float32)

    @cached_property
    def fill_index(self) -> tuple[NDArray[np.intp], NDArray[np.intp]] | None:
        """For each box pixel, the (row, col) of the nearest masked pixel; None for a full box."""
        if self.is_box:
            return None
        index = ndi.distance_transform_edt(~self.mask, return_distances=False, return_indices=True)
        return (index[0], index[1])

    def fill_outside(self, image_box: NDArray[_ScalarT]) -> NDArray[_ScalarT]:
        """Replace box pixels outside the mask by the value of the nearest masked pixel."""
        if self.fill_index is None:
            return image_box
        return image_box[self.fill_index]


def _edge_ramp(distance: FloatArray, ramp: float) -> FloatArray:
    return np.sin(0.5 * np.pi * np.clip(distance / ramp, 0.0, 1.0)) ** 2


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


def _register(
    reference: NDArray[np.generic], moving: NDArray[np.generic], region: _Region, upsample: int
) -> tuple[float, float]:
    ref_box: NDArray[np.generic] = region.crop(reference)
    mov_box: NDArray[np.generic] = region.crop(moving)
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
        fine, _, _ = phase_cross_correlation(
            ref_freq,
            sfft.fft2(_registration_input(moved, region)),
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
    return _register(ref, mov, _Region(mask), int(upsample))


# --------------------------------------------------------------------------------------------
# Alignment
# --------------------------------------------------------------------------------------------


def _remove_phase_plane(
    estimate: ComplexArray, reference: ComplexArray, region: _Region
) -> ComplexArray:
    """Multiply ``estimate`` by ``exp(-i (a + b y + c x))`` fitted to its phase difference."""
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
        raise DataError("estimate or reference amplitude is zero over the whole valid region")
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


class RegistrationRefused(Exception):  # noqa: N818 - a signal, caught inside this module
    """The registration shift exceeds the allowed maximum."""

    def __init__(self, shift: tuple[float, float], limit: float) -> None:
        super().__init__(f"registration shift {shift} exceeds {limit} px")
        self.shift = shift
        self.limit = limit


def _align(
    estimate: NDArray[np.generic],
    reference: NDArray[np.generic],
    mask: BoolArray,
    register: bool,
    upsample: int = 20,
    max_shift_px: float | None = None,
) -> tuple[ComplexArray, ComplexArray, BoolArray, tuple[float, float]]:
    """Align ``estimate`` to ``reference``.

    Returns the aligned estimate, the reference (complex128, 0 outside ``mask``), the scored
    mask and the shift applied, all in the full frame. A registration shift larger than
    ``max_shift_px`` on either axis is refused (a failed reconstruction registers anywhere)
    and raises :class:`RegistrationRefused`.
    """
    _check_finite("estimate", estimate, mask)
    _check_finite("reference", reference, mask)
    est = np.where(mask, estimate, 0).astype(np.complex128)
    ref = np.where(mask, reference, 0).astype(np.complex128)
    region = _Region(mask)
    scored = mask
    shift = (0.0, 0.0)
    if register:
        shift = _register(ref, est, region, upsample)
        if max_shift_px is not None and max(abs(shift[0]), abs(shift[1])) > max_shift_px:
            raise RegistrationRefused(shift, max_shift_px)
    if shift != (0.0, 0.0):
        # Continue the estimate past the edge of its valid area so the shift drags in
        # plausible values instead of a step; only the bounding box is shifted.
        box = _fourier_shift(region.fill_outside(region.crop(est)), shift)
        est = np.zeros_like(est)
        est[region.rows, region.cols] = box
        # Score only pixels whose shifted content came from valid pixels of the estimate.
        moved = ndi.shift(region.mask.astype(np.float32), shift, order=1, mode="constant")
        scored = np.zeros_like(mask)
        scored[region.rows, region.cols] = region.mask & (moved > 1.0 - 1e-5)
        if not scored.any():
            raise DataError(
                f"after the registration shift ({shift[0]:+.2f}, {shift[1]:+.2f}) px no valid "
                "pixel of the estimate overlaps the valid region"
            )
        region = _Region(scored)
    est = _remove_phase_plane(est, ref, region)
    est_mean = float(np.abs(region.crop(est)[region.mask]).mean())
    if not est_mean > 0.0:
        raise DataError("estimate amplitude is zero over the whole valid region")
    est *= float(np.abs(region.crop(ref)[region.mask]).mean()) / est_mean
    return est, ref, scored, shift


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
    """
    est = _as_image("estimate", estimate)
    ref = _as_image("reference", reference)
    _check_pair("estimate", est, "reference", ref)
    mask = _as_mask(valid, est.shape)
    aligned, _, _, _ = _align(est, ref, mask, register)
    out_dtype = np.result_type(est.dtype, np.complex64)
    return aligned.astype(out_dtype, copy=False)


# --------------------------------------------------------------------------------------------
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
) -> tuple[FloatArray, FloatArray, NDArray[np.int64]]:
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
    return frequency, curve, counts


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
    image_a = _as_image("a", a)
    image_b = _as_image("b", b)
    _check_pair("a", image_a, "b", image_b)
    mask = _as_mask(valid, image_a.shape)
    _check_finite("a", image_a, mask)
    _check_finite("b", image_b, mask)
    return _frc_region(image_a, image_b, _Region(mask))


def _threshold_curve(threshold: str, counts: NDArray[np.int64]) -> FloatArray:
    if threshold == "1/7":
        return np.full(counts.shape, FRC_ONE_SEVENTH)
    if threshold == "half-bit":
        # van Heel & Schatz (2005), with n the number of pixels in the ring.
        root = np.sqrt(np.maximum(counts, 1).astype(np.float64))
        return (0.2071 + 1.9102 / root) / (1.2071 + 0.9102 / root)
    raise ValueError(f"threshold must be '1/7' or 'half-bit', got {threshold!r}")


def _resolution_px(
    frequency: FloatArray, curve: FloatArray, counts: NDArray[np.int64], threshold: str
) -> float:
    limit = _threshold_curve(threshold, counts)
    start = FRC_FIRST_RING
    if len(curve) <= start:
        raise DataError(f"the FRC has only {len(curve)} rings: the region is too small")
    below = np.flatnonzero(curve[start:] < limit[start:])
    if below.size == 0:
        return 2.0
    ring = start + int(below[0])
    if ring == start:
        return math.inf
    # Linear interpolation of the crossing between the last ring above and the first below.
    above_gap = float(curve[ring - 1] - limit[ring - 1])
    below_gap = float(curve[ring] - limit[ring])
    fraction = above_gap / (above_gap - below_gap)
    crossing = float(frequency[ring - 1] + fraction * (frequency[ring] - frequency[ring - 1]))
    return 1.0 / crossing


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
    _threshold_curve(threshold, np.ones(1, dtype=np.int64))
    frequency, curve, counts = frc(a, b, valid)
    return _resolution_px(frequency, curve, counts, threshold)


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
# Reports
# --------------------------------------------------------------------------------------------


def _channel_scores(
    estimate: FloatArray, reference: FloatArray, region: _Region, pixel_size_m: float | None
) -> ChannelScores:
    diff = region.crop(estimate)[region.mask] - region.crop(reference)[region.mask]
    frequency, curve, counts = _frc_region(estimate, reference, region)
    res_17 = _resolution_px(frequency, curve, counts, "1/7")
    res_hb = _resolution_px(frequency, curve, counts, "half-bit")
    return ChannelScores(
        ssim=_ssim_region(estimate, reference, region, None),
        psnr=_psnr_region(estimate, reference, region),
        mae=float(np.mean(np.abs(diff))),
        rmse=float(np.sqrt(np.mean(diff * diff))),
        frc_1_7_px=res_17,
        frc_halfbit_px=res_hb,
        frc_1_7_m=None if pixel_size_m is None else res_17 * pixel_size_m,
        frc_halfbit_m=None if pixel_size_m is None else res_hb * pixel_size_m,
    )


def _check_pixel_size(pixel_size_m: float | None) -> float | None:
    if pixel_size_m is None:
        return None
    value = float(pixel_size_m)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"pixel_size_m must be a positive number of metres, got {pixel_size_m!r}")
    return value


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
    aligned: ComplexArray,
    reference: ComplexArray,
    scored: BoolArray,
    label: str,
    shift: tuple[float, float],
    pixel_size_m: float | None,
) -> QualityReport:
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
    return QualityReport(
        amplitude=_channel_scores(np.abs(aligned), np.abs(reference), region, pixel_size_m),
        phase=_channel_scores(est_phase, ref_phase, region, pixel_size_m),
        region=description,
        n_pixels=region.n_pixels,
        shift_px=shift,
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

    Parameters
    ----------
    estimate, reference : array_like, shape (H, W), complex
        Reconstructed and true objects in the same frame.
    valid : array_like of bool, shape (H, W), optional
        Valid stitched area (None: all pixels); its bounding box must be at least 8 x 8 px.
    pixel_size_m : float, optional
        Object pixel size in metres; when given, the FRC resolutions are also in metres.
    register : bool, default True
        Whether to register the estimate before scoring.
    max_shift_px : float or None, default 8.0
        Largest registration shift accepted on either axis. The estimate is stitched at the
        known scan positions, so a larger shift means registration locked onto noise (a
        failed reconstruction): the estimate is then scored unregistered, and the report's
        ``region`` says so. None accepts any shift.

    Returns
    -------
    QualityReport
        Amplitude and phase scores, the region used, and the registration shift.
    """
    est = _as_image("estimate", estimate)
    ref = _as_image("reference", reference)
    _check_pair("estimate", est, "reference", ref)
    mask = _as_mask(valid, est.shape)
    size_m = _check_pixel_size(pixel_size_m)
    label = "full frame" if valid is None else "valid stitched area"
    try:
        aligned, reference_c, scored, shift = _align(
            est, ref, mask, register, max_shift_px=max_shift_px
        )
    except RegistrationRefused as refused:
        aligned, reference_c, scored, shift = _align(est, ref, mask, False)
        label += (
            f" (registration refused: shift {refused.shift[0]:+.2f}, {refused.shift[1]:+.2f} px "
            f"exceeds {refused.limit:g} px)"
        )
    return _report(aligned, reference_c, scored, label, shift, size_m)


def chance_level(
    reference: ArrayLike, valid: ArrayLike | None = None, pixel_size_m: float | None = None
) -> QualityReport:
    """Scores of a featureless object, to quote next to every real score.

    The constant object ``mean(|ref|)`` (over ``valid``, phase 0) is scored with
    :func:`compare` without registration. It goes through the same phase offset/ramp removal
    as any estimate, so its phase channel is the best plane through the reference phase: the
    score an estimate gets for free. Expect SSIM near 0 and FRC resolutions ``inf`` (amplitude)
    or very large (phase).

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
    """
    ref = _as_image("reference", reference)
    mask = _as_mask(valid, ref.shape)
    _check_finite("reference", ref, mask)
    level = float(np.abs(ref[mask]).mean())
    constant = np.full(ref.shape, level, dtype=np.complex128)
    return compare(constant, ref, valid, pixel_size_m=pixel_size_m, register=False)
