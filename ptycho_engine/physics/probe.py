"""Probe normalisation and the object support (numpy only; physics.md sections 2 and 10)."""

from __future__ import annotations

import math

import numpy as np

from ptycho_engine.errors import DataError

AUTO_SCALE_LEVEL = 0.75


def disk_mask(N: int, radius: float | None = None) -> np.ndarray:
    """Disk of radius ``N/4`` (default) centred on pixel ``(N//2, N//2)``.

    Returns
    -------
    ndarray, (N, N) float32, 1 inside, 0 outside.
    """
    r = N / 4 if radius is None else radius
    yy, xx = np.mgrid[:N, :N]
    inside = (yy - N // 2) ** 2 + (xx - N // 2) ** 2 <= r * r
    return inside.astype(np.float32)


def support_mask(N: int, pad_object: bool = True) -> np.ndarray:
    """Object support: the central ``N/2 x N/2`` square when ``pad_object``, else all ones.

    Returns
    -------
    ndarray, (N, N) float32.
    """
    if not pad_object:
        return np.ones((N, N), np.float32)
    mask = np.zeros((N, N), np.float32)
    mask[N // 4 : N // 4 + N // 2, N // 4 : N // 4 + N // 2] = 1.0
    return mask


def probe_modes(probe: np.ndarray) -> np.ndarray:
    """The probe as a stack of incoherent modes ``(K, N, N)``.

    A single-mode probe ``(N, N)`` becomes ``(1, N, N)``; a stack ``(K, N, N)`` is returned as
    it is (a view).

    Raises
    ------
    DataError
        For any other shape, or modes that are not square.
    """
    p = np.asarray(probe)
    if p.ndim == 2:
        p = p[np.newaxis]
    if p.ndim != 3 or p.shape[0] < 1 or p.shape[1] != p.shape[2]:
        raise DataError(
            f"probe must be a square (N, N) array or a stack of K modes (K, N, N), got shape "
            f"{np.shape(probe)}"
        )
    return p


def probe_amplitude(probe: np.ndarray) -> np.ndarray:
    """Amplitude of the illumination, ``sqrt(sum_k |P_k|**2)`` (``|P|`` for one mode).

    Incoherent modes add in intensity, so this is the amplitude that sets the exposure of
    each object pixel.

    Parameters
    ----------
    probe : ndarray, (N, N) or (K, N, N) complex

    Returns
    -------
    ndarray, (N, N) float (float64 for several modes).
    """
    modes = probe_modes(probe)
    if modes.shape[0] == 1:
        return np.abs(modes[0])
    return np.sqrt(np.sum(np.abs(modes.astype(np.complex128)) ** 2, axis=0))


def pad_modes(probe: np.ndarray, n_modes: int) -> np.ndarray:
    """The probe's modes ``(n_modes, N, N)`` complex64, the ones it lacks zero (they add no
    intensity).

    Raises
    ------
    DataError
        A probe with more than ``n_modes`` modes.
    """
    modes = probe_modes(probe)
    if modes.shape[0] > n_modes:
        raise DataError(f"the probe has {modes.shape[0]} modes, more than {n_modes}")
    out = np.zeros((n_modes, *modes.shape[1:]), np.complex64)
    out[: modes.shape[0]] = modes
    return out


def sort_modes(probe: np.ndarray) -> np.ndarray:
    """Probe modes ``(K, N, N)`` ordered by power, strongest first (stable for ties)."""
    modes = probe_modes(probe)
    power = np.sum(np.abs(modes.astype(np.complex128)) ** 2, axis=(1, 2))
    return modes[np.argsort(-power, kind="stable")]


def coherent_equivalent(probe: np.ndarray) -> np.ndarray:
    """A single mode carrying the power of all modes: the strongest one, rescaled.

    ``P_0 * sqrt(sum_k ||P_k||**2 / ||P_0||**2)`` for modes ordered strongest first; the probe
    itself for one mode. Used where the engine needs one complex probe (the back-propagated
    estimate given to the encoder), so that its brightness matches the measured counts.

    Returns
    -------
    ndarray, (N, N), the dtype of ``probe``.
    """
    modes = probe_modes(probe)
    if modes.shape[0] == 1:
        return modes[0]
    power = np.sum(np.abs(modes.astype(np.complex128)) ** 2, axis=(1, 2))
    first = float(power[0])
    if first <= 0:
        raise DataError("the first probe mode is zero: order the modes strongest first")
    return (modes[0] * np.sqrt(float(power.sum()) / first)).astype(modes.dtype)


def normalize_probe(probe: np.ndarray, probe_scale: float = 4.0) -> np.ndarray:
    """Divide the probe by ``probe_scale * mean(|mask * P|)`` over all ``N*N`` pixels.

    ``mask`` is the disk of radius ``N/4`` (physics.md section 2). For a probe of several
    incoherent modes, ``|P|`` is the amplitude of the illumination,
    ``sqrt(sum_k |P_k|**2)`` (:func:`probe_amplitude`), and every mode is divided by the
    same number, so their relative powers are kept; with one mode this is the rule above.

    Parameters
    ----------
    probe : ndarray, (N, N) or (K, N, N) complex
    probe_scale : float

    Returns
    -------
    ndarray, complex64, the shape of ``probe``.
    """
    p = np.asarray(probe)
    if p.ndim not in (2, 3):
        raise DataError(f"probe must be a square 2-D array, got shape {p.shape}")
    probe_modes(p)
    if not np.all(np.isfinite(p)):
        raise DataError("probe contains NaN or infinite values")
    amplitude = probe_amplitude(p)
    norm = probe_scale * float(np.mean(disk_mask(p.shape[-1]) * amplitude))
    if norm <= 0:
        raise DataError("probe is zero inside the central disk of radius N/4: cannot normalise it")
    return (p / norm).astype(np.complex64)


def matched_amplitude(
    probe_normalized: np.ndarray, pad_object: bool = True, probe_mask: bool = False
) -> float:
    """Uniform object amplitude whose predicted mean counts match the measured mean.

    With measured amplitudes normalised to ``mean sum X**2 = (N/2)**2`` (physics.md section
    3) and Parseval, a uniform object of amplitude ``a`` on the support ``S`` predicts
    ``a**2 * sum(|P|**2 * S)`` (summed over the modes of a multi-mode probe); the matched
    level is ``(N/2) / sqrt(sum(|P|**2 * S))``.

    Parameters
    ----------
    probe_normalized : ndarray, (N, N) or (K, N, N) complex

    Returns
    -------
    float, the amplitude (may exceed 1 for a weak probe).
    """
    n = probe_normalized.shape[-1]
    weight = probe_amplitude(probe_normalized) ** 2 * support_mask(n, pad_object)
    if probe_mask:
        weight = weight * disk_mask(n)
    total = float(np.sum(weight))
    if total <= 0:
        raise DataError("probe is zero over the object support")
    return (n / 2) / float(np.sqrt(total))


def brightest_level(
    amplitudes: np.ndarray,
    probe_normalized: np.ndarray,
    pad_object: bool = True,
    probe_mask: bool = False,
    percentile: float = 99.0,
) -> float:
    """Object amplitude that the brightest patterns need, with this normalised probe.

    A pattern with total counts ``c_i`` is matched by a uniform object of amplitude
    ``matched_amplitude * sqrt(c_i / mean(c))`` (Parseval, as in :func:`matched_amplitude`);
    this is that level at the given percentile of the patterns (a high percentile rather than
    the maximum, so one hot frame does not decide it).

    Parameters
    ----------
    amplitudes : ndarray, (M, N, N) float
        Measured amplitudes (any common scale).
    probe_normalized : ndarray, (N, N) or (K, N, N) complex
    pad_object, probe_mask : bool
        As in the model configuration.
    percentile : float

    Returns
    -------
    float
    """
    counts = np.empty(amplitudes.shape[0], np.float64)
    chunk = 1024
    for start in range(0, amplitudes.shape[0], chunk):
        block = np.asarray(amplitudes[start : start + chunk], np.float64)
        counts[start : start + chunk] = np.sum(block * block, axis=(1, 2))
    mean = float(counts.mean())
    if not (math.isfinite(mean) and mean > 0):
        raise DataError("the patterns hold no counts: cannot relate them to the probe")
    ratio = math.sqrt(float(np.percentile(counts, percentile)) / mean)
    return matched_amplitude(probe_normalized, pad_object, probe_mask) * ratio


def auto_probe_scale(
    amplitudes: np.ndarray,
    probe: np.ndarray,
    probe_scale: float,
    pad_object: bool = True,
    probe_mask: bool = False,
    level: float = AUTO_SCALE_LEVEL,
) -> float:
    """The probe scale to use with a bounded amplitude head: ``probe_scale`` or less.

    The object amplitude the model needs is proportional to the probe scale (the probe is
    divided by it). When the brightest patterns (:func:`brightest_level`) would need an
    amplitude above ``level`` (default :data:`AUTO_SCALE_LEVEL`), the scale is lowered so
    that they need exactly ``level``, which leaves the sigmoid head room for pixels brighter
    than their pattern's mean and keeps it off its flat top (measured on the tike file: at
    probe scale 4 the object needs amplitudes up to about 1.1 and 8 % of the amplitude pixels
    saturate). Data that fit already keep ``probe_scale``.

    Parameters
    ----------
    amplitudes : ndarray, (M, N, N) float
    probe : ndarray, (N, N) or (K, N, N) complex
        Probe before normalisation.
    probe_scale : float
        The configured scale (an upper bound).
    pad_object, probe_mask : bool
    level : float
        Object amplitude the brightest patterns may need, in (0, 1).

    Returns
    -------
    float
    """
    current = brightest_level(
        amplitudes, normalize_probe(probe, probe_scale), pad_object, probe_mask
    )
    if current <= level * (1 + 1e-6):  # also keeps a scale chosen here (rounded) as it is
        return float(probe_scale)
    return float(probe_scale) * level / current
