"""The forward model of the iterative solvers, in numpy (physics.md sections 1, 2 and 11).

Same arrays, axes, signs and positions as the network's physics: a scan position ``(y, x)`` is
the centre of an ``N x N`` patch sampled bilinearly from the object
(``patch[i, j] = O(y - N//2 + i, x - N//2 + j)``, as :func:`ptycho_engine.simulate.simulate`),
the exit wave is ``P * patch`` for every incoherent probe mode, and the detector sees the sum
of the modes' intensities. Far field: ``fftshift(fft2(psi)) / N`` (orthonormal); the measured
amplitudes are moved to corner origin once, so no shift is done per pattern. Near field
(Fresnel scaling theorem): the angular-spectrum propagator over the effective distance on the
effective object pixel, no shift at all (holograms are real-space images).

Scale (physics.md section 11): measured amplitudes are ``sqrt(counts)``; the probe is scaled
so that ``sum |P|**2`` over all modes is the mean total count per pattern; the object is
unitless (1 for free space).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

#: Threads of scipy's FFT (the machines here have 2 cores).
FFT_WORKERS = max(1, min(4, os.cpu_count() or 1))
#: Added to model intensities before dividing by them.
INTENSITY_EPS = 1e-6
#: Regularisation of the Poisson step, relative to the pattern's mean model intensity.
POISSON_EPS = 1e-2


@dataclass(frozen=True, eq=False)
class Scan:
    """Where each pattern's patch lies on the object canvas.

    Attributes
    ----------
    n : int
        Patch side.
    shape : (int, int)
        Canvas shape ``(H, W)``.
    origin_px : (float, float)
        ``(y, x)`` of canvas pixel ``(0, 0)`` in the frame of the scan positions.
    """

    n: int
    shape: tuple[int, int]
    origin_px: tuple[float, float]

    @classmethod
    def around(cls, positions_px: np.ndarray, n: int, margin: int = 2) -> Scan:
        """A canvas holding every patch of ``positions_px`` with ``margin`` pixels to spare
        (room for position corrections)."""
        top_left = positions_px - n // 2
        low = np.floor(top_left.min(axis=0)) - margin
        high = np.ceil(top_left.max(axis=0)) + n + 1 + margin
        shape = (int(high[0] - low[0]), int(high[1] - low[1]))
        return cls(n, shape, (float(low[0]), float(low[1])))

    def corners(self, positions_px: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Integer top-left corners ``(M, 2)`` int64 on the canvas and the fractions
        ``(M, 2)`` float32 in [0, 1) of the bilinear sampling, clipped to the canvas."""
        top_left = positions_px - self.n // 2 - np.asarray(self.origin_px)
        limit = np.asarray(self.shape) - self.n - 1
        top_left = np.clip(top_left, 0.0, limit.astype(np.float64))
        base = np.floor(top_left)
        return base.astype(np.int64), (top_left - base).astype(np.float32)


def _weights(fractions: np.ndarray) -> tuple[np.ndarray, ...]:
    fy = fractions[:, 0, None, None]
    fx = fractions[:, 1, None, None]
    return ((1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx)


def extract(canvas: np.ndarray, corners: np.ndarray, fractions: np.ndarray, n: int) -> np.ndarray:
    """Bilinear patches ``(b, n, n)`` of ``canvas`` at ``corners`` + ``fractions``."""
    b = corners.shape[0]
    region = np.empty((b, n + 1, n + 1), dtype=canvas.dtype)
    for k in range(b):
        y, x = corners[k]
        region[k] = canvas[y : y + n + 1, x : x + n + 1]
    w00, w01, w10, w11 = _weights(fractions)
    return (
        w00 * region[:, :-1, :-1]
        + w01 * region[:, :-1, 1:]
        + w10 * region[:, 1:, :-1]
        + w11 * region[:, 1:, 1:]
    ).astype(canvas.dtype, copy=False)


def add_back(
    canvas: np.ndarray,
    values: np.ndarray,
    corners: np.ndarray,
    fractions: np.ndarray,
) -> None:
    """Add ``values`` ``(b, n, n)`` into ``canvas`` with the adjoint of :func:`extract` (the
    same bilinear weights), in place."""
    b, n = values.shape[0], values.shape[1]
    w00, w01, w10, w11 = _weights(fractions)
    spread = np.zeros((b, n + 1, n + 1), dtype=np.result_type(canvas.dtype, values.dtype))
    spread[:, :-1, :-1] += w00 * values
    spread[:, :-1, 1:] += w01 * values
    spread[:, 1:, :-1] += w10 * values
    spread[:, 1:, 1:] += w11 * values
    for k in range(b):
        y, x = corners[k]
        canvas[y : y + n + 1, x : x + n + 1] += spread[k]


class FarField:
    """Far-field propagation, orthonormal, on corner-origin arrays (measurements moved once)."""

    name = "far-field"

    def __init__(self, n: int) -> None:
        self.n = n

    def measured(self, amplitudes: np.ndarray) -> np.ndarray:
        """Centred amplitudes ``(M, N, N)`` as this propagator compares them (corner origin)."""
        return np.fft.ifftshift(amplitudes, axes=(-2, -1))

    def mask(self, good: np.ndarray) -> np.ndarray:
        """A centred detector mask in the propagator's layout."""
        return np.fft.ifftshift(good, axes=(-2, -1))

    def forward(self, psi: np.ndarray) -> np.ndarray:
        return sfft.fft2(psi, norm="ortho", workers=FFT_WORKERS, overwrite_x=False)

    def backward(self, wave: np.ndarray) -> np.ndarray:
        return sfft.ifft2(wave, norm="ortho", workers=FFT_WORKERS)


class NearField:
    """Fresnel propagation by the angular spectrum (physics.md section 11).

    ``H = exp(i 2 pi / lambda * z_eff * sqrt(1 - (lambda fx)**2 - (lambda fy)**2))`` on the
    effective object pixel, evanescent frequencies removed. Holograms need no shift.
    """

    name = "near-field"

    def __init__(self, n: int, wavelength_m: float, distance_m: float, pixel_m: float) -> None:
        self.n = n
        freq = np.fft.fftfreq(n, d=pixel_m)
        fy, fx = np.meshgrid(freq, freq, indexing="ij")
        arg = 1.0 - (wavelength_m * fy) ** 2 - (wavelength_m * fx) ** 2
        kz = 2.0 * math.pi / wavelength_m * distance_m * np.sqrt(np.maximum(arg, 0.0))
        self.transfer = np.where(arg > 0, np.exp(1j * kz), 0.0).astype(np.complex64)
        self.inverse = np.conj(self.transfer)

    def measured(self, amplitudes: np.ndarray) -> np.ndarray:
        return amplitudes

    def mask(self, good: np.ndarray) -> np.ndarray:
        return good

    def forward(self, psi: np.ndarray) -> np.ndarray:
        spectrum = sfft.fft2(psi, workers=FFT_WORKERS)
        return sfft.ifft2(spectrum * self.transfer, workers=FFT_WORKERS)

    def backward(self, wave: np.ndarray) -> np.ndarray:
        spectrum = sfft.fft2(wave, workers=FFT_WORKERS)
        return sfft.ifft2(spectrum * self.inverse, workers=FFT_WORKERS)


Propagator = FarField | NearField


@dataclass
class Residual:
    """Sums of the normalised error ``sum (|F psi| - X)**2 / sum X**2`` (physics.md 11)."""

    squared_error: float = 0.0
    measured_power: float = 0.0

    @property
    def error(self) -> float:
        return self.squared_error / self.measured_power if self.measured_power > 0 else math.nan


def modulus_factor(
    waves: np.ndarray,
    measured: np.ndarray,
    good: np.ndarray | None,
    residual: Residual,
    noise_model: str = "gaussian",
) -> np.ndarray:
    """The factor ``f`` (``(b, N, N)`` float32) that moves each mode's detector wave towards
    the measurement, and the residual added up.

    ``waves`` are ``(b, K, N, N)`` complex; the model intensity is the sum over the ``K``
    incoherent modes. Gaussian (amplitude) noise: ``f = X / |Psi|``, the modulus constraint
    (every mode scaled by the same factor). Poisson: ``f = 1 + (X**2 / I - 1) / 2``, the
    likelihood's gradient step (``I`` regularised by :data:`POISSON_EPS` of its mean), equal to
    the Gaussian one near convergence. Pixels outside
    ``good`` keep the model (``f = 1``).
    """
    intensity = np.sum(waves.real**2 + waves.imag**2, axis=1)
    amplitude = np.sqrt(intensity)
    diff = amplitude - measured
    if good is not None:
        diff = diff * good
        power = measured * measured * good
    else:
        power = measured * measured
    residual.squared_error += float(np.sum(diff * diff, dtype=np.float64))
    residual.measured_power += float(np.sum(power, dtype=np.float64))
    if noise_model == "poisson":
        # the intensity is regularised by a hundredth of the pattern's mean: dark model
        # pixels under measured counts would otherwise ask for unbounded changes
        eps = POISSON_EPS * intensity.mean(axis=(1, 2), keepdims=True) + INTENSITY_EPS
        factor = 1.0 + 0.5 * (measured * measured - intensity) / (intensity + eps)
    else:
        factor = measured / (amplitude + INTENSITY_EPS)
    if good is not None:
        factor = np.where(good, factor, 1.0)
    return factor.astype(np.float32, copy=False)
