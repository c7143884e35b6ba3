"""Losses on diffraction amplitudes (physics.md section 3).

All functions take amplitudes in counts units (``sqrt(counts)``): ``y_pred = s * A`` and
``y_true = s * X``. A bad-pixel weight map (1 = good, 0 = ignored) multiplies every pixel term.
"""

from __future__ import annotations

import tensorflow as tf

NLL_EPS = 1e-6


def poisson_nll(y_true: tf.Tensor, y_pred: tf.Tensor, weight: tf.Tensor | None = None) -> tf.Tensor:
    """Mean Poisson negative log-likelihood per pixel, ``lam - y * log(lam + eps)``.

    ``lam = y_pred**2`` and ``y = y_true**2`` are counts. Returns one value per sample, (B,).
    """
    lam = tf.square(y_pred)
    counts = tf.square(y_true)
    per_pixel = lam - counts * tf.math.log(lam + NLL_EPS)
    if weight is not None:
        per_pixel = per_pixel * weight
    return tf.reduce_mean(per_pixel, axis=[1, 2, 3])


def amplitude_mae(
    y_true: tf.Tensor, y_pred: tf.Tensor, scale: float, weight: tf.Tensor | None = None
) -> tf.Tensor:
    """Mean absolute error of amplitudes divided by the intensity scale ``s``.

    Dividing by ``s`` gives the error in normalised amplitude units, so the MAE has the same
    size at every dose. Returns one value per sample, (B,).
    """
    per_pixel = tf.abs(y_pred - y_true) / scale
    if weight is not None:
        per_pixel = per_pixel * weight
    return tf.reduce_mean(per_pixel, axis=[1, 2, 3])
