"""Colour maps and converters from complex images to displayable arrays (numpy, no Qt).

The app's views and the engine's PNG files use these same tables and levels, so an image
looks the same on screen and on disk.

Display modes follow the usual convention of complex image viewers: amplitude, phase, real
and imaginary parts, log amplitude and a complex (HSV) rendering where the hue is the phase and
the value is the amplitude. Phases are in radians in ``[-pi, pi]``; a cyclic colour map keeps
``-pi`` and ``pi`` the same colour.

Image coordinates (line profiles, regions) follow pyqtgraph's image items: pixel ``(r, c)``
covers ``[c, c + 1] x [r, r + 1]``, so ``(x, y)`` is (column, row) and the centre of pixel
``(r, c)`` is ``(c + 0.5, r + 0.5)``.
"""

from __future__ import annotations

import enum
import functools
import math
from dataclasses import dataclass

import numpy as np

#: Levels of every phase image: the full circle, so the cyclic colour map wraps seamlessly.
PHASE_LEVELS = (-math.pi, math.pi)
#: Live views stride larger images down to this side: the views are a few hundred screen
#: pixels wide, and a 1024 x 1024 frame would cost about 4x the redraw time for no visible gain.
MAX_DISPLAY_SIDE = 512


#: A phase image whose robust range (:func:`robust_range`) spans less than this fraction of
#: the full circle is shown over that range instead of ``PHASE_LEVELS`` (:func:`phase_levels`).
PHASE_RANGE_FRACTION = 0.5
#: Log amplitudes are floored at this fraction of the image's largest amplitude.
LOG_FLOOR = 1e-6


class DisplayMode(enum.Enum):
    """How a complex image is shown."""

    AMPLITUDE = "amplitude"
    PHASE = "phase"
    LOG_AMPLITUDE = "log amplitude"
    COMPLEX = "complex"
    REAL = "real"
    IMAGINARY = "imaginary"
    #: ``log10(1 + amplitude**2)``: a measured diffraction amplitude as log10 counts.
    LOG_INTENSITY = "log10 counts"


#: The modes of a complex image, in the order the display menus offer them.
COMPLEX_MODES = (
    DisplayMode.AMPLITUDE,
    DisplayMode.PHASE,
    DisplayMode.REAL,
    DisplayMode.IMAGINARY,
    DisplayMode.LOG_AMPLITUDE,
    DisplayMode.COMPLEX,
)
#: The modes of a real, non-negative amplitude without a phase (a diffraction pattern).
INTENSITY_MODES = (DisplayMode.LOG_INTENSITY, DisplayMode.AMPLITUDE, DisplayMode.LOG_AMPLITUDE)
#: Modes whose image depends on the phase (ramp removal changes them).
PHASE_MODES = frozenset(
    {DisplayMode.PHASE, DisplayMode.REAL, DisplayMode.IMAGINARY, DisplayMode.COMPLEX}
)


def hsv_to_rgb(h: np.ndarray, s: np.ndarray | float, v: np.ndarray) -> np.ndarray:
    """Convert HSV to RGB.

    Parameters
    ----------
    h : ndarray, (...,) float
        Hue in turns, ``[0, 1)`` (values outside wrap).
    s : ndarray or float
        Saturation in ``[0, 1]``.
    v : ndarray, (...,) float
        Value in ``[0, 1]``.

    Returns
    -------
    ndarray, (..., 3) float32 in ``[0, 1]``.
    """
    h = np.mod(np.asarray(h, dtype=np.float32), 1.0) * 6.0
    s = np.broadcast_to(np.asarray(s, dtype=np.float32), h.shape)
    v = np.asarray(v, dtype=np.float32)
    i = np.floor(h).astype(np.int32) % 6
    f = h - np.floor(h)
    p = v * (1.0 - s)
    q = v * (1.0 - s * f)
    t = v * (1.0 - s * (1.0 - f))
    choices_r = (v, q, p, p, t, v)
    choices_g = (t, v, v, q, p, p)
    choices_b = (p, p, t, v, v, q)
    r = np.choose(i, choices_r)
    g = np.choose(i, choices_g)
    b = np.choose(i, choices_b)
    return np.stack([r, g, b], axis=-1).astype(np.float32)


def phase_lut(n: int = 256) -> np.ndarray:
    """A cyclic colour map for phases: ``n`` RGB entries, first and last neighbours alike.

    Returns
    -------
    ndarray, (n, 3) uint8
        Entry ``k`` is the colour of phase ``-pi + 2 pi k / n``.
    """
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    hue = np.arange(n, dtype=np.float32) / n
    rgb = hsv_to_rgb(hue, 0.75, np.full(n, 0.95, np.float32))
    return np.round(rgb * 255).astype(np.uint8)


def amplitude_lut(n: int = 256) -> np.ndarray:
    """A grey colour map, (n, 3) uint8, black to white."""
    ramp = np.round(np.linspace(0, 255, n)).astype(np.uint8)
    return np.stack([ramp, ramp, ramp], axis=-1)


def diverging_lut(n: int = 256) -> np.ndarray:
    """Blue - white - red, (n, 3) uint8: differences, white at the middle of the levels."""
    t = np.linspace(-1.0, 1.0, n)
    r = np.where(t < 0, 1.0 + t, 1.0)
    b = np.where(t > 0, 1.0 - t, 1.0)
    g = 1.0 - np.abs(t)
    return np.round(np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)


#: Colour maps of the display menus and the PNG files, by name: the app's grey, cyclic
#: (:func:`phase_lut`) and diverging maps, and matplotlib's perceptually uniform ones.
COLOUR_MAPS = ("grey", "cyclic", "viridis", "magma", "inferno", "cividis", "twilight", "diverging")
#: Maps whose first and last colours meet: only right for levels spanning the full circle.
CYCLIC_MAPS = frozenset({"cyclic", "twilight"})
#: The map of a phase shown over less than the full circle (a cyclic map would give both
#: ends of the range one colour).
PHASE_RANGE_MAP = "viridis"


@functools.cache
def _colour_lut(name: str, n: int) -> np.ndarray:
    if name == "grey":
        lut = amplitude_lut(n)
    elif name == "cyclic":
        lut = phase_lut(n)
    elif name == "diverging":
        lut = diverging_lut(n)
    elif name in COLOUR_MAPS:
        from matplotlib import colormaps

        rgba = colormaps[name](np.linspace(0.0, 1.0, n))
        lut = np.round(rgba[:, :3] * 255).astype(np.uint8)
    else:
        raise ValueError(f"unknown colour map {name!r}: choose one of {', '.join(COLOUR_MAPS)}")
    lut.flags.writeable = False
    return lut


def colour_lut(name: str, n: int = 256) -> np.ndarray:
    """The colour map ``name`` (one of :data:`COLOUR_MAPS`) as ``(n, 3)`` uint8 RGB, read-only.

    Raises
    ------
    ValueError
        An unknown name.
    """
    return _colour_lut(name, n)


def default_colour_map(mode: DisplayMode, levels: tuple[float, float] | None = None) -> str:
    """The map a view uses for ``mode`` until the user picks another: the cyclic map for a
    phase over the full circle, :data:`PHASE_RANGE_MAP` for a phase over a smaller range (or
    unwrapped), grey for everything else."""
    if mode is DisplayMode.PHASE:
        full = levels is None or levels[1] - levels[0] >= 2 * math.pi * (1 - 1e-6)
        return "cyclic" if full else PHASE_RANGE_MAP
    return "grey"


def robust_range(image: np.ndarray, valid: np.ndarray | None = None) -> tuple[float, float]:
    """Levels from the 0.5 and 99.5 percentiles of the finite (valid) pixels.

    Returns ``(0.0, 1.0)`` for an image without finite valid pixels and widens a flat range
    so that ``low < high`` always holds.
    """
    values = np.asarray(image, dtype=np.float64)
    if valid is not None:
        values = values[np.asarray(valid, dtype=bool)]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    if not high > low:
        pad = max(abs(low) * 1e-3, 1e-6)
        low, high = low - pad, high + pad
    return low, high


def complex_to_rgb(
    amplitude: np.ndarray,
    phase: np.ndarray,
    amplitude_range: tuple[float, float] | None = None,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Render a complex image: hue = phase, value = normalised amplitude.

    Parameters
    ----------
    amplitude, phase : ndarray, (H, W) float
        Amplitude (any units) and phase (radians).
    amplitude_range : (float, float), optional
        Amplitude mapped to value 0 and 1; default :func:`robust_range` of ``amplitude``.
    valid : ndarray, (H, W) bool, optional
        Pixels outside are black.

    Returns
    -------
    ndarray, (H, W, 3) uint8
    """
    amp = np.asarray(amplitude, dtype=np.float32)
    ph = np.asarray(phase, dtype=np.float32)
    if amp.shape != ph.shape or amp.ndim != 2:
        raise ValueError(f"amplitude {amp.shape} and phase {ph.shape} must be equal 2-D shapes")
    low, high = amplitude_range or robust_range(amp, valid)
    value = (amp - np.float32(low)) * np.float32(1.0 / max(high - low, 1e-12))
    np.clip(value, 0.0, 1.0, out=value)
    value[~np.isfinite(value)] = 0.0
    if valid is not None:
        value[~np.asarray(valid, dtype=bool)] = 0.0
    # HSV to RGB is linear in the value: look the hue up in a table of fully bright colours
    # and scale it (the hue is quantised to HUE_STEPS levels, far below what the eye sees)
    index = ((ph + np.float32(math.pi)) * np.float32(HUE_STEPS / (2 * math.pi))).astype(np.int32)
    index %= HUE_STEPS
    rgb = _hue_table()[index] * (value * 255.0)[..., np.newaxis]
    return (rgb + 0.5).astype(np.uint8)


HUE_STEPS = 1024


@functools.cache
def _hue_table() -> np.ndarray:
    """RGB of ``HUE_STEPS`` hues at saturation 0.85 and value 1, (HUE_STEPS, 3) float32."""
    hue = np.arange(HUE_STEPS, dtype=np.float64) / HUE_STEPS
    return hsv_to_rgb(hue, 0.85, np.ones_like(hue)).astype(np.float32)


def phase_wheel(size: int = 64) -> np.ndarray:
    """The legend of :func:`complex_to_rgb`: a disk with phase as angle, amplitude as radius.

    Returns
    -------
    ndarray, (size, size, 4) uint8 RGBA, transparent outside the disk.
    """
    c = (size - 1) / 2.0
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    dy, dx = c - y, x - c  # y up, so the angle reads counter-clockwise
    radius = np.hypot(dy, dx) / c
    angle = np.arctan2(dy, dx)
    rgb = complex_to_rgb(np.clip(radius, 0, 1), angle, (0.0, 1.0))
    alpha = np.where(radius <= 1.0, 255, 0).astype(np.uint8)
    return np.concatenate([rgb, alpha[..., None]], axis=-1)


def log_scale(image: np.ndarray) -> np.ndarray:
    """``log10(1 + max(image, 0))`` as float32: diffraction patterns on a log scale."""
    return np.log10(1.0 + np.maximum(np.asarray(image, dtype=np.float32), 0.0))


def display_step(shape: tuple[int, ...], max_side: int = MAX_DISPLAY_SIDE) -> int:
    """Integer stride that keeps both sides of ``shape`` at most ``max_side``."""
    return max(1, math.ceil(max(shape[0], shape[1]) / max_side))


def downsample(image: np.ndarray, max_side: int = MAX_DISPLAY_SIDE) -> np.ndarray:
    """Stride an image so that neither side exceeds ``max_side`` (a view, no copy)."""
    step = display_step(image.shape, max_side)
    return image[::step, ::step] if step > 1 else image


def render(
    amplitude: np.ndarray,
    phase: np.ndarray,
    mode: DisplayMode,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """The array to display for ``mode``: float32 (H, W) or uint8 (H, W, 3) for COMPLEX."""
    if mode is DisplayMode.AMPLITUDE:
        return np.asarray(amplitude, dtype=np.float32)
    if mode is DisplayMode.PHASE:
        return np.asarray(phase, dtype=np.float32)
    if mode is DisplayMode.LOG_AMPLITUDE:
        return np.log10(np.maximum(np.asarray(amplitude, dtype=np.float32), 1e-6))
    return complex_to_rgb(amplitude, phase, valid=valid)


def wrap_phase(phase: np.ndarray) -> np.ndarray:
    """Phases brought into ``[-pi, pi)``, float32."""
    ph = np.asarray(phase, dtype=np.float32)
    return np.mod(ph + np.float32(math.pi), np.float32(2 * math.pi)) - np.float32(math.pi)


#: :func:`phase_plane` fits its plane on at most this many pixels per side (evenly strided):
#: the fit of a 512 x 512 phase then costs a few milliseconds, not a tenth of a second.
PLANE_SAMPLE_SIDE = 256


def _weights(
    shape: tuple[int, ...], amplitude: np.ndarray | None, valid: np.ndarray | None
) -> np.ndarray:
    if amplitude is None:
        w = np.ones(shape, np.float32)
    else:
        w = np.abs(np.asarray(amplitude, dtype=np.float32))
    if valid is not None:
        w = np.where(np.asarray(valid, dtype=bool), w, np.float32(0.0))
    return np.where(np.isfinite(w), w, np.float32(0.0))


def phase_plane(
    phase: np.ndarray, amplitude: np.ndarray | None = None, valid: np.ndarray | None = None
) -> tuple[float, float, float]:
    """The least-squares plane of a (wrapped) phase image, weighted by the amplitude.

    A wrapped phase is not a smooth function, so the plane is found in two steps: the mean
    phase step between neighbouring pixels along each axis (the angle of the sum of
    ``z[k + 1] * conj(z[k])``, ``z = amplitude * exp(1j * phase)``, which does not see the
    wrapping) and the weighted mean phase give a first plane; the weighted least-squares
    plane of what is left, wrapped into ``[-pi, pi)`` and now free of jumps where the content
    is smooth, refines it. Images larger than :data:`PLANE_SAMPLE_SIDE` are fitted on an
    evenly strided subset of their pixels (the neighbour steps stay one pixel long).

    Parameters
    ----------
    phase : ndarray, (H, W) float
        Radians.
    amplitude : ndarray, (H, W) float, optional
        Weights (default 1 everywhere).
    valid : ndarray, (H, W) bool, optional
        Pixels outside get no weight.

    Returns
    -------
    (offset, slope_y, slope_x) : tuple of float
        The plane ``offset + slope_y * row + slope_x * column``, radians and radians per pixel
        (0, 0, 0 when no pixel has weight).
    """
    ph = np.asarray(phase, dtype=np.float32)
    if ph.ndim != 2:
        raise ValueError(f"expected a 2-D (H, W) phase image, got shape {ph.shape}")
    height, width = ph.shape
    w = _weights(ph.shape, amplitude, valid)
    finite = np.isfinite(ph)
    w = np.where(finite, w, np.float32(0.0))
    ph = np.where(finite, ph, np.float32(0.0))
    step = display_step(ph.shape, PLANE_SAMPLE_SIDE)
    rows = np.arange(0, height, step)
    cols = np.arange(0, width, step)

    def mean_step(r: np.ndarray, c: np.ndarray, dr: int, dc: int) -> float:
        # the angle of sum(z[k + 1] * conj(z[k])) in real arithmetic (float32 is plenty)
        a, b = np.ix_(r, c), np.ix_(r + dr, c + dc)
        weight = w[a] * w[b]
        step = ph[b] - ph[a]
        return math.atan2(
            float(np.sum(weight * np.sin(step), dtype=np.float64)),
            float(np.sum(weight * np.cos(step), dtype=np.float64)),
        )

    slope_x = mean_step(rows, cols[cols + 1 < width], 0, 1) if width > 1 else 0.0
    slope_y = mean_step(rows[rows + 1 < height], cols, 1, 0) if height > 1 else 0.0
    weight = w[np.ix_(rows, cols)].astype(np.float64)
    total = float(weight.sum())
    if not total > 0:
        return 0.0, 0.0, 0.0
    y = rows.astype(np.float64)[:, None]
    x = cols.astype(np.float64)[None, :]
    values = ph[np.ix_(rows, cols)].astype(np.float64)
    ramp = slope_y * y + slope_x * x
    left = values - ramp
    offset = math.atan2(float(np.sum(weight * np.sin(left))), float(np.sum(weight * np.cos(left))))
    residual = np.mod(left - offset + math.pi, 2 * math.pi) - math.pi
    # weighted least squares of residual = a + b y + c x: the 3 x 3 normal equations
    yb, xb = np.broadcast_to(y, weight.shape), np.broadcast_to(x, weight.shape)
    basis = (np.ones_like(weight), yb, xb)
    normal = np.array([[float(np.sum(weight * p * q)) for q in basis] for p in basis])
    rhs = np.array([float(np.sum(weight * p * residual)) for p in basis])
    fit = np.linalg.lstsq(normal, rhs, rcond=None)[0]
    return offset + float(fit[0]), slope_y + float(fit[1]), slope_x + float(fit[2])


def remove_phase_ramp(
    phase: np.ndarray, amplitude: np.ndarray | None = None, valid: np.ndarray | None = None
) -> np.ndarray:
    """The phase less its amplitude-weighted least-squares plane (:func:`phase_plane`),
    wrapped into ``[-pi, pi)``: (H, W) float32."""
    offset, slope_y, slope_x = phase_plane(phase, amplitude, valid)
    ph = np.asarray(phase, dtype=np.float32)
    rows = (offset + slope_y * np.arange(ph.shape[0], dtype=np.float64)).astype(np.float32)
    cols = (slope_x * np.arange(ph.shape[1], dtype=np.float64)).astype(np.float32)
    return wrap_phase(ph - rows[:, None] - cols[None, :])


def unwrap_phase(phase: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """The phase unwrapped (:func:`skimage.restoration.unwrap_phase`), shifted by a multiple
    of 2 pi so that its median lies in ``[-pi, pi)``.

    Slow on large images (about 0.1 s for 512 x 512): views unwrap their strided display
    image, off the GUI thread where they can.

    Parameters
    ----------
    phase : ndarray, (H, W) float
        Wrapped phase, radians.
    valid : ndarray, (H, W) bool, optional
        Pixels outside (and non-finite ones) are left out of the unwrapping and come back NaN.

    Returns
    -------
    ndarray, (H, W) float32
    """
    from skimage.restoration import unwrap_phase as skimage_unwrap

    ph = np.asarray(phase, dtype=np.float64)
    bad = ~np.isfinite(ph)
    if valid is not None:
        bad |= ~np.asarray(valid, dtype=bool)
    if bad.all() or min(ph.shape) < 2:
        return np.where(bad, np.nan, ph).astype(np.float32)
    if bad.any():
        masked = np.ma.masked_array(np.where(bad, 0.0, ph), mask=bad)
        out = np.ma.filled(skimage_unwrap(masked).astype(np.float64), np.nan)
    else:
        out = np.asarray(skimage_unwrap(ph), dtype=np.float64)
    centre = float(np.nanmedian(out))
    out -= 2 * math.pi * math.floor((centre + math.pi) / (2 * math.pi))
    return out.astype(np.float32)


def phase_levels(
    phase: np.ndarray, valid: np.ndarray | None = None, fraction: float = PHASE_RANGE_FRACTION
) -> tuple[float, float]:
    """Levels of a phase image: the full circle (``PHASE_LEVELS``) unless the robust range of
    the valid pixels (:func:`robust_range`) spans less than ``fraction`` of it, in which case
    that range: a phase of +-0.7 rad then uses the whole colour map instead of a fifth of it.
    Use a non-cyclic map with such levels (:func:`default_colour_map`)."""
    low, high = robust_range(phase, valid)
    if high - low >= fraction * 2 * math.pi:
        return PHASE_LEVELS
    return low, high


def display_image(
    amplitude: np.ndarray,
    phase: np.ndarray | None = None,
    mode: DisplayMode = DisplayMode.AMPLITUDE,
    *,
    remove_ramp: bool = False,
    unwrap: bool = False,
    valid: np.ndarray | None = None,
    amplitude_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """The array a view shows for ``mode``.

    Parameters
    ----------
    amplitude : ndarray, (H, W) float
    phase : ndarray, (H, W) float, optional
        Radians (0 everywhere when None: a real, non-negative image).
    mode : DisplayMode
    remove_ramp : bool
        Take the amplitude-weighted phase plane out first (:func:`remove_phase_ramp`); applies
        to the modes of :data:`PHASE_MODES`.
    unwrap : bool
        Unwrap the phase (:func:`unwrap_phase`; PHASE only).
    valid : ndarray, (H, W) bool, optional
        Pixels the ramp fit and the unwrapping use (COMPLEX blanks the others).
    amplitude_range : (float, float), optional
        COMPLEX only: amplitude mapped to value 0 and 1 (default its robust range).

    Returns
    -------
    ndarray
        (H, W) float32, or (H, W, 3) uint8 for COMPLEX.
    """
    amp = np.asarray(amplitude, dtype=np.float32)
    if amp.ndim != 2:
        raise ValueError(f"expected a 2-D (H, W) amplitude, got shape {amp.shape}")
    if mode is DisplayMode.AMPLITUDE:
        return amp
    if mode is DisplayMode.LOG_AMPLITUDE:
        finite = amp[np.isfinite(amp)]
        peak = float(finite.max()) if finite.size else 0.0
        floor = max(peak * LOG_FLOOR, float(np.finfo(np.float32).tiny))
        return np.log10(np.maximum(amp, np.float32(floor)))
    if mode is DisplayMode.LOG_INTENSITY:
        return log_scale(np.square(amp))
    ph = np.zeros_like(amp) if phase is None else np.asarray(phase, dtype=np.float32)
    if ph.shape != amp.shape:
        raise ValueError(f"amplitude {amp.shape} and phase {ph.shape} must be equal 2-D shapes")
    if remove_ramp and mode in PHASE_MODES:
        ph = remove_phase_ramp(ph, amp, valid)
    if mode is DisplayMode.PHASE:
        return unwrap_phase(ph, valid) if unwrap else ph
    if mode is DisplayMode.REAL:
        return amp * np.cos(ph)
    if mode is DisplayMode.IMAGINARY:
        return amp * np.sin(ph)
    return complex_to_rgb(amp, ph, amplitude_range, valid)


def default_levels(
    image: np.ndarray, mode: DisplayMode, valid: np.ndarray | None = None, *, unwrap: bool = False
) -> tuple[float, float]:
    """The levels a view takes from its first frame: the full circle for a wrapped phase (the
    cyclic map then wraps seamlessly), (0, 255) for an RGB image, else :func:`robust_range`
    of the valid pixels."""
    if image.ndim == 3:
        return 0.0, 255.0
    if mode is DisplayMode.PHASE and not unwrap:
        return PHASE_LEVELS
    return robust_range(image, valid)


def line_profile(
    image: np.ndarray,
    start: tuple[float, float],
    end: tuple[float, float],
    samples: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Values of an image along a segment, interpolated bilinearly between pixel centres.

    Parameters
    ----------
    image : ndarray, (H, W) float
    start, end : (float, float)
        ``(x, y)`` image coordinates (module docstring: the centre of pixel ``(r, c)`` is
        ``(c + 0.5, r + 0.5)``). Points beyond the outer pixel centres take the edge value.
    samples : int, optional
        Points along the segment (default: one per pixel of length, at least 2).

    Returns
    -------
    distance, values : ndarray, (samples,) float64
        Distance from ``start`` in pixels and the image there (NaN pixels spread NaN).
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2 or img.size == 0:
        raise ValueError(f"expected a non-empty 2-D (H, W) image, got shape {img.shape}")
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    n = samples if samples is not None else max(2, math.ceil(length) + 1)
    if n < 2:
        raise ValueError(f"samples must be >= 2, got {n}")
    t = np.linspace(0.0, 1.0, n)
    cols = np.clip(x0 + t * (x1 - x0) - 0.5, 0.0, img.shape[1] - 1)
    rows = np.clip(y0 + t * (y1 - y0) - 0.5, 0.0, img.shape[0] - 1)
    r0 = np.minimum(np.floor(rows).astype(np.intp), img.shape[0] - 1)
    c0 = np.minimum(np.floor(cols).astype(np.intp), img.shape[1] - 1)
    r1 = np.minimum(r0 + 1, img.shape[0] - 1)
    c1 = np.minimum(c0 + 1, img.shape[1] - 1)
    fr, fc = rows - r0, cols - c0
    top = img[r0, c0] * (1 - fc) + img[r0, c1] * fc
    bottom = img[r1, c0] * (1 - fc) + img[r1, c1] * fc
    return t * length, top * (1 - fr) + bottom * fr


@dataclass(frozen=True)
class RegionStats:
    """Mean and standard deviation (population, ``ddof=0``) of the finite valid pixels of a
    region, and how many there are (NaN statistics for none)."""

    mean: float
    std: float
    count: int


def region_pixels(
    shape: tuple[int, ...], rect: tuple[float, float, float, float]
) -> tuple[slice, slice]:
    """The rows and columns of the pixels whose centres lie in ``rect = (x, y, width,
    height)`` (image coordinates), clipped to ``shape``; empty slices for none."""
    x, y, w, h = rect
    if w < 0:
        x, w = x + w, -w
    if h < 0:
        y, h = y + h, -h
    c0, c1 = max(0, math.ceil(x - 0.5)), min(shape[1] - 1, math.floor(x + w - 0.5))
    r0, r1 = max(0, math.ceil(y - 0.5)), min(shape[0] - 1, math.floor(y + h - 0.5))
    return slice(r0, max(r0, r1 + 1)), slice(c0, max(c0, c1 + 1))


def region_stats(
    image: np.ndarray, rect: tuple[float, float, float, float], valid: np.ndarray | None = None
) -> RegionStats:
    """Statistics of the pixels of ``image`` (H, W) whose centres lie in ``rect`` (see
    :func:`region_pixels`), over the finite pixels that ``valid`` keeps."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D (H, W) image, got shape {img.shape}")
    rows, cols = region_pixels(img.shape, rect)
    values = img[rows, cols]
    keep = np.isfinite(values)
    if valid is not None:
        keep &= np.asarray(valid, dtype=bool)[rows, cols]
    values = values[keep]
    if values.size == 0:
        return RegionStats(math.nan, math.nan, 0)
    return RegionStats(float(values.mean()), float(values.std()), int(values.size))
