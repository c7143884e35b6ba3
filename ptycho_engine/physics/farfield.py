"""Far-field propagation (physics.md section 2)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

_INTENSITY_FLOOR = 1e-30


def checkerboard(N: int) -> np.ndarray:
    """``(-1) ** (y + x)`` for even ``N``.

    Multiplying the exit wave by it before an FFT centres the spectrum: for even ``N``,
    ``fft2(psi * (-1)**(y+x)) == fftshift(fft2(psi))`` exactly, so the engine folds it into the
    probe once instead of rolling every pattern.
    """
    yy, xx = np.mgrid[:N, :N]
    return np.where((yy + xx) % 2 == 0, 1.0, -1.0).astype(np.float32)


def farfield_amplitude(exit_wave: tf.Tensor, centred_input: bool = False) -> tf.Tensor:
    """``|fftshift(fft2(psi))| / N`` over the last two axes.

    Parameters
    ----------
    exit_wave : Tensor, (..., N, N) complex64
    centred_input : bool
        True when the exit wave already carries the :func:`checkerboard` factor; the result is
        then centred without a shift.

    Returns
    -------
    Tensor, (..., N, N) float32, orthonormal (Parseval: ``sum A**2 == sum |psi|**2``).
    """
    n = int(exit_wave.shape[-1])
    amp = tf.abs(tf.signal.fft2d(exit_wave)) / float(n)
    if not centred_input:
        amp = tf.signal.fftshift(amp, axes=(-2, -1))
    return amp


def farfield_amplitude_modes(
    obj: tf.Tensor, probes: tf.Tensor, centred_input: bool = False
) -> tf.Tensor:
    """Far-field amplitude of an object lit by incoherent probe modes.

    ``A = sqrt(sum_k |fftshift(fft2(P_k * O))|**2) / N``: the modes are mutually incoherent,
    so their intensities add (physics.md section 2 with one exit wave per mode). With one
    mode this equals :func:`farfield_amplitude` of ``P_0 * O``, which is cheaper.

    Parameters
    ----------
    obj : Tensor, (..., N, N) complex64
        Object patches.
    probes : Tensor, (K, N, N) complex64
        Probe modes (times the :func:`checkerboard` when ``centred_input``).
    centred_input : bool
        True when the probes carry the checkerboard factor: the result is then centred
        without a shift.

    Returns
    -------
    Tensor, (..., N, N) float32. Parseval holds for the total: ``sum A**2 ==
    sum_k sum |P_k O|**2``.
    """
    n = int(obj.shape[-1])
    waves = tf.signal.fft2d(obj[..., tf.newaxis, :, :] * probes)  # (..., K, N, N)
    intensity = tf.reduce_sum(tf.math.square(tf.math.real(waves)), axis=-3) + tf.reduce_sum(
        tf.math.square(tf.math.imag(waves)), axis=-3
    )
    # the tiny floor keeps the gradient of the square root finite where no mode has
    # intensity (the gradient of the intensity itself is zero there)
    amp = tf.sqrt(intensity + _INTENSITY_FLOOR) / float(n)
    if not centred_input:
        amp = tf.signal.fftshift(amp, axes=(-2, -1))
    return amp
