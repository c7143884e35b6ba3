"""Probe normalisation and the object support (numpy only; physics.md sections 2 and 10)."""

from __future__ import annotations

import numpy as np

from ptycho_engine.errors import DataError


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


def normalize_probe(probe: np.ndarray, probe_scale: float = 4.0) -> np.ndarray:
    """Divide the probe by ``probe_scale * mean(|mask * P|)`` over all ``N*N`` pixels.

    ``mask`` is the disk of radius ``N/4`` (physics.md section 2).

    Parameters
    ----------
    probe : ndarray, (N, N) complex
    probe_scale : float

    Returns
    -------
    ndarray, (N, N) complex64.
    """
    p = np.asarray(probe)
    if p.ndim != 2 or p.shape[0] != p.shape[1]:
        raise DataError(f"probe must be a square 2-D array, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise DataError("probe contains NaN or infinite values")
    norm = probe_scale * float(np.mean(np.abs(disk_mask(p.shape[0]) * p)))
    if norm <= 0:
        raise DataError("probe is zero inside the central disk of radius N/4: cannot normalise it")
    return (p / norm).astype(np.complex64)


def matched_amplitude(
    probe_normalized: np.ndarray, pad_object: bool = True, probe_mask: bool = False
) -> float:
    """Uniform object amplitude whose predicted mean counts match the measured mean.

    With measured amplitudes normalised to ``mean sum X**2 = (N/2)**2`` (physics.md section
    3) and Parseval, a uniform object of amplitude ``a`` on the support ``S`` predicts
    ``a**2 * sum(|P|**2 * S)``; the matched level is ``(N/2) / sqrt(sum(|P|**2 * S))``.

    Returns
    -------
    float, the amplitude (may exceed 1 for a weak probe).
    """
    n = probe_normalized.shape[0]
    weight = np.abs(probe_normalized) ** 2 * support_mask(n, pad_object)
    if probe_mask:
        weight = weight * disk_mask(n)
    total = float(np.sum(weight))
    if total <= 0:
        raise DataError("probe is zero over the object support")
    return (n / 2) / float(np.sqrt(total))
