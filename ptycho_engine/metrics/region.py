"""Input checks and the scored region, shared by every metric.

Validation of images, masks and the pixel size (raising
:class:`~ptycho_engine.errors.DataError` or :class:`ValueError` with the reason), the exact
power-of-two rescale of images of extreme magnitude, and :class:`_Region`: the bounding box of
a mask with its cosine edge taper and nearest-valid fill.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import TypeVar, cast

import numpy as np
import scipy.ndimage as ndi
from numpy.typing import ArrayLike, NDArray

from ptycho_engine.errors import DataError

FloatArray = NDArray[np.float64]
ComplexArray = NDArray[np.complex128]
BoolArray = NDArray[np.bool_]
_ScalarT = TypeVar("_ScalarT", bound=np.generic)

#: Width of the cosine edge taper, as a fraction of the shorter side of the scored box.
TAPER_FRACTION = 0.125
#: Relative size below which a mean-subtracted image counts as exactly constant in the FRC.
_CONSTANT_TOLERANCE = 1e-10
#: Smallest box side the scores accept (SSIM uses a 7 x 7 window, the FRC needs a few rings).
_MIN_SIDE_PX = 8
#: Largest (and inverse of the smallest) magnitude an image enters alignment or registration
#: with; beyond it the image is first multiplied by a power of two, which is exact and which
#: the amplitude scaling or the correlation peak does not see. Keeps single-precision casts and
#: double-precision sums of squares in range for any finite reconstruction.
_SCALE_LIMIT = 2.0**64


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


def _as_mask(
    valid: ArrayLike | None, shape: tuple[int, ...], allow_empty: bool = False
) -> BoolArray:
    if valid is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(valid)
    if mask.dtype != np.bool_:
        raise DataError(f"valid must be a bool mask, got dtype {mask.dtype}")
    if mask.shape != shape:
        raise DataError(f"valid has shape {mask.shape} but the images have shape {shape}")
    if not allow_empty and not mask.any():
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


def _drop_non_finite(
    name: str, image: NDArray[np.generic], mask: BoolArray, flags: list[str]
) -> BoolArray:
    """Return ``mask`` without the non-finite pixels of ``image``, flagging how many left."""
    finite = np.isfinite(image)
    bad = int(np.count_nonzero(mask & ~finite))
    if bad == 0:
        return mask
    noun = "pixel" if bad == 1 else "pixels"
    flags.append(f"{bad} non-finite {name} {noun} left out of the scored region")
    return mask & finite


def _check_pixel_size(pixel_size_m: float | None) -> float | None:
    if pixel_size_m is None:
        return None
    value = float(pixel_size_m)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"pixel_size_m must be a positive number of metres, got {pixel_size_m!r}")
    return value


def _too_small(region: _Region) -> str | None:
    """Why the region is too small for SSIM, the FRC and registration; None when it is not."""
    height, width = region.shape
    if min(height, width) >= _MIN_SIDE_PX:
        return None
    return f"scored region {height} x {width} px is smaller than {_MIN_SIDE_PX} x {_MIN_SIDE_PX} px"


def _ldexp(image: NDArray[_ScalarT], exponent: int) -> NDArray[_ScalarT]:
    """``image * 2**exponent``, exact, for real or complex floats; ``image`` itself for 0."""
    if exponent == 0:
        return image
    if np.iscomplexobj(image):
        out = np.empty_like(image)
        out.real = np.ldexp(image.real, exponent)
        out.imag = np.ldexp(image.imag, exponent)
        return out
    return cast("NDArray[_ScalarT]", np.ldexp(image, exponent))


def _within_scale(image: NDArray[_ScalarT], mask: BoolArray) -> NDArray[_ScalarT]:
    """Rescale an image of extreme magnitude by a power of two; return others untouched.

    When the largest ``max(|re|, |im|)`` over ``mask`` lies outside ``[1/L, L]`` (``L =
    _SCALE_LIMIT``) the image is scaled (exactly) to bring it into ``[0.5, 1)``. Normal data are
    returned as the same object, so their results do not change by a bit; integer images never
    leave the range, and an all-zero image is returned as it is.
    """
    if not np.issubdtype(image.dtype, np.inexact):
        return image
    if not mask.any():
        return image
    inside = image[mask]
    # max(|re|, |im|) rather than |z|: the modulus of the largest finite complex overflows.
    top = max(float(np.abs(inside.real).max()), float(np.abs(inside.imag).max()))
    if top == 0.0 or 1.0 / _SCALE_LIMIT <= top <= _SCALE_LIMIT:
        return image
    return _ldexp(image, -math.frexp(top)[1])


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
