"""Colour maps and converters from complex images to displayable arrays (numpy, no Qt).

The app's views and the engine's PNG files use these same tables and levels, so an image
looks the same on screen and on disk.

Display modes follow the usual convention of complex image viewers: amplitude, phase,
log amplitude and a complex (HSV) rendering where the hue is the phase and the value is the
amplitude. Phases are in radians in ``[-pi, pi]``; a cyclic colour map keeps ``-pi`` and
``pi`` the same colour.
"""

from __future__ import annotations

import enum
import functools
import math

import numpy as np

#: Levels of every phase image: the full circle, so the cyclic colour map wraps seamlessly.
PHASE_LEVELS = (-math.pi, math.pi)
#: Live views stride larger images down to this side: the views are a few hundred screen
#: pixels wide, and a 1024 x 1024 frame would cost about 4x the redraw time for no visible gain.
MAX_DISPLAY_SIDE = 512


class DisplayMode(enum.Enum):
    """How a complex image is shown."""

    AMPLITUDE = "amplitude"
    PHASE = "phase"
    LOG_AMPLITUDE = "log amplitude"
    COMPLEX = "complex"


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
