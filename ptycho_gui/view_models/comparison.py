"""Qt-free preparation of runs for side-by-side comparison.

Runs made at different N (crop mode) have different object pixel sizes; each run carries its
``scale``: prepared positions over raw positions (1 for runs at the detector's own
sampling). Objects are resampled to the reference run's pixel grid, then cut to the region
that every run covers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MIN_RUNS = 2
MAX_RUNS = 6


@dataclass(frozen=True, eq=False)
class FrameImage:
    """One stitched object in its frame.

    Attributes
    ----------
    object : ndarray, (H, W) complex64
    valid : ndarray, (H, W) bool
    origin_px : (float, float)
        ``(y, x)`` of pixel (0, 0) in the run's scan-position frame.
    scale : float
        Run pixels per raw-data pixel.
    """

    object: np.ndarray
    valid: np.ndarray
    origin_px: tuple[float, float]
    scale: float = 1.0


def position_scale(prepared_px: np.ndarray, raw_px: np.ndarray) -> float:
    """Pixels of the prepared data per raw pixel, from the spread of the scan positions."""
    raw = float(np.std(raw_px))
    return float(np.std(prepared_px)) / raw if raw > 0 else 1.0


def _resample(image: FrameImage, factor: float) -> FrameImage:
    if math.isclose(factor, 1.0, rel_tol=1e-3):
        return image
    from scipy.ndimage import zoom

    obj = image.object
    real = zoom(obj.real, factor, order=1)
    imag = zoom(obj.imag, factor, order=1)
    valid = zoom(image.valid.astype(np.uint8), factor, order=0).astype(bool)
    origin = (image.origin_px[0] * factor, image.origin_px[1] * factor)
    return FrameImage((real + 1j * imag).astype(np.complex64), valid, origin, image.scale * factor)


def common_frame(images: list[FrameImage], reference: int = 0) -> list[FrameImage]:
    """Resample every image to the pixel grid of ``images[reference]`` and cut all of them to
    the region they share.

    Raises
    ------
    ValueError
        When the frames do not overlap.
    """
    ref_scale = images[reference].scale
    same = [_resample(im, ref_scale / im.scale) for im in images]
    origins = [(round(im.origin_px[0]), round(im.origin_px[1])) for im in same]
    y0 = max(o[0] for o in origins)
    x0 = max(o[1] for o in origins)
    y1 = min(o[0] + im.object.shape[0] for o, im in zip(origins, same, strict=True))
    x1 = min(o[1] + im.object.shape[1] for o, im in zip(origins, same, strict=True))
    if y1 - y0 < 8 or x1 - x0 < 8:
        raise ValueError("the runs' objects do not overlap enough to be compared")
    out = []
    for (oy, ox), im in zip(origins, same, strict=True):
        cut = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
        out.append(FrameImage(im.object[cut], im.valid[cut], (float(y0), float(x0)), ref_scale))
    return out


def shared_levels(images: list[np.ndarray], masks: list[np.ndarray]) -> tuple[float, float]:
    """One (low, high) for all images: 0.5 and 99.5 percentiles of their valid pixels."""
    values = np.concatenate([im[m] for im, m in zip(images, masks, strict=True)])
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    return (low, high) if high > low else (low - 1e-6, low + 1e-6)


@dataclass(frozen=True, eq=False)
class FrcCurve:
    """The FRC of one run against the reference run over the pixels both hold.

    Attributes
    ----------
    index : int
        Position of the run in the comparison.
    frequency, curve : ndarray
        Cycles per pixel and correlation per ring.
    """

    index: int
    frequency: np.ndarray
    curve: np.ndarray


@dataclass(frozen=True, eq=False)
class Comparison:
    """Everything the comparison window draws, computed off the GUI thread.

    Attributes
    ----------
    reference : int
    frames : list of FrameImage
        Every run on the reference grid, cut to the common region.
    curves : list of FrcCurve
        Every run but the reference against the reference.
    """

    reference: int
    frames: list[FrameImage]
    curves: list[FrcCurve]


def compare_frames(images: list[FrameImage], reference: int = 0) -> Comparison:
    """Resample and cut the runs to their common region (:func:`common_frame`) and compute
    each run's FRC against the reference (numpy; run it in a worker).

    Raises
    ------
    ValueError
        When the frames do not overlap.
    """
    from ptycho_engine.errors import DataError
    from ptycho_engine.metrics import frc

    frames = common_frame(images, reference)
    ref = frames[reference]
    curves = []
    for k, frame in enumerate(frames):
        both = frame.valid & ref.valid
        if k == reference or int(both.sum()) < 64:
            continue
        try:
            frequency, curve, _ = frc(frame.object, ref.object, both)
        except DataError:  # a region too thin for rings: no curve for this run
            continue
        curves.append(FrcCurve(k, frequency, curve))
    return Comparison(reference, frames, curves)
