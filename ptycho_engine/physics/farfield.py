"""Far-field propagation (physics.md section 2)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


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
