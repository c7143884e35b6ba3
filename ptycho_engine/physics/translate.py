"""The one translation primitive of the engine (physics.md section 1).

``translate(images, offsets)`` moves image content by ``+offset``::

    out[y, x] = in[y - dy, x - dx]        bilinear, zero outside

Every other shift in the engine (placing patches on a group canvas, extracting them again)
goes through :func:`shift_resample`, which is the same operation with an output frame whose
size may differ from the input's, aligned on the centre pixel. There is no second code path
and no second sign.

Implementation: the shift is separable, so it is done as two 1-D bilinear resamplings, each
a pair of ``tf.gather`` calls with per-sample integer indices and real weights. This runs in
eager mode, inside ``tf.function`` and under XLA (``jit_compile=True``), has gradients with
respect to the images, and costs a few memory passes: no projective-transform kernel (about
10x the FFT cost here and no XLA kernel) and no FFT.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

_REAL_OR_COMPLEX = (tf.float16, tf.float32, tf.float64, tf.complex64, tf.complex128)


def _as_tensor(images: Any) -> tf.Tensor:
    x = tf.convert_to_tensor(images)
    if x.dtype not in _REAL_OR_COMPLEX:
        x = tf.cast(x, tf.float32)
    return x


def _check_shapes(x: tf.Tensor, d: tf.Tensor) -> None:
    if x.shape.rank not in (3, 4):
        raise ValueError(
            f"translate: images must have shape (B, H, W) or (B, H, W, C), got {tuple(x.shape)}"
        )
    if d.shape.rank != 2 or d.shape[1] != 2:
        raise ValueError(
            f"translate: offsets must have shape (B, 2) or (1, 2) as (dy, dx), got "
            f"{tuple(d.shape)} for images {tuple(x.shape)}"
        )
    nb_images, nb_offsets = x.shape[0], d.shape[0]
    known = nb_images is not None and nb_offsets is not None
    if known and nb_offsets != 1 and nb_offsets != nb_images:
        raise ValueError(
            f"translate: offsets {tuple(d.shape)} do not pair with images {tuple(x.shape)}: "
            f"expected ({nb_images}, 2) or (1, 2)"
        )


def _axis_weights(
    shift: tf.Tensor, length_in: int, length_out: int, origin: int, real_dtype: tf.DType
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Indices and weights of a 1-D bilinear shift for every sample.

    ``out[i] = in[i - origin - shift]``: with ``k = floor(shift)`` and ``f = shift - k`` the
    two source pixels are ``i - origin - k`` (weight ``1 - f``) and ``i - origin - k - 1``
    (weight ``f``). Sources outside ``[0, length_in)`` get weight 0 (zero fill).

    Parameters
    ----------
    shift : Tensor, (B,)
    Returns indices ``(B, length_out)`` int32 (clipped) and weights ``(B, length_out)``.
    """
    k = tf.floor(shift)
    f = shift - k
    i = tf.range(length_out, dtype=real_dtype)[tf.newaxis, :] - origin
    src_hi = i - k[:, tf.newaxis]
    src_lo = src_hi - 1.0
    upper = float(length_in - 1)
    w_hi = tf.where((src_hi >= 0) & (src_hi <= upper), 1.0 - f[:, tf.newaxis], 0.0)
    w_lo = tf.where((src_lo >= 0) & (src_lo <= upper), f[:, tf.newaxis], 0.0)
    idx_hi = tf.cast(tf.clip_by_value(src_hi, 0.0, upper), tf.int32)
    idx_lo = tf.cast(tf.clip_by_value(src_lo, 0.0, upper), tf.int32)
    return idx_hi, w_hi, idx_lo, w_lo


def _resample_axis(
    x: tf.Tensor, shift: tf.Tensor, axis: int, length_out: int, origin: int, per_sample: bool
) -> tf.Tensor:
    length_in = int(x.shape[axis])
    real_dtype = shift.dtype
    idx_hi, w_hi, idx_lo, w_lo = _axis_weights(shift, length_in, length_out, origin, real_dtype)
    if x.dtype.is_complex:
        w_hi = tf.cast(w_hi, x.dtype)
        w_lo = tf.cast(w_lo, x.dtype)
    # weights (B, L) broadcast against x: L on `axis`, singleton axes elsewhere
    w_hi = w_hi[:, :, tf.newaxis] if axis == 1 else w_hi[:, tf.newaxis, :]
    w_lo = w_lo[:, :, tf.newaxis] if axis == 1 else w_lo[:, tf.newaxis, :]
    if x.shape.rank == 4:
        w_hi = w_hi[..., tf.newaxis]
        w_lo = w_lo[..., tf.newaxis]
    if per_sample:
        hi = tf.gather(x, idx_hi, axis=axis, batch_dims=1)
        lo = tf.gather(x, idx_lo, axis=axis, batch_dims=1)
    else:
        hi = tf.gather(x, idx_hi[0], axis=axis)
        lo = tf.gather(x, idx_lo[0], axis=axis)
    return w_hi * hi + w_lo * lo


def shift_resample(images: Any, offsets: Any, out_hw: tuple[int, int] | None = None) -> tf.Tensor:
    """Shift images by ``+offsets`` into an output frame of size ``out_hw``.

    The output frame is centred on the input frame: with ``o = (out - in) // 2`` per axis,
    ``out[y, x] = in[y - o_y - dy, x - o_x - dx]`` (bilinear, zero outside). With
    ``out_hw`` equal to the input size this is :func:`translate`; a larger frame pads
    (placement on a canvas), a smaller one crops (extraction from a canvas). The size
    differences must be even so that centres coincide exactly.

    Parameters
    ----------
    images : array or Tensor, (B, H, W) or (B, H, W, C), real or complex
    offsets : array or Tensor, (B, 2) or (1, 2), float, ``(dy, dx)`` in pixels
    out_hw : (int, int), optional
        Output ``(H', W')``; default the input size.

    Returns
    -------
    Tensor, (B, H', W'[, C]), same dtype as ``images``.

    Raises
    ------
    ValueError
        For any other rank or pairing of shapes, naming both shapes.
    """
    x = _as_tensor(images)
    real_dtype = tf.float64 if x.dtype in (tf.float64, tf.complex128) else tf.float32
    d = tf.cast(tf.convert_to_tensor(offsets), real_dtype)
    _check_shapes(x, d)
    h_in, w_in = int(x.shape[1]), int(x.shape[2])
    h_out, w_out = out_hw if out_hw is not None else (h_in, w_in)
    if (h_out - h_in) % 2 or (w_out - w_in) % 2:
        raise ValueError(
            f"shift_resample: output {(h_out, w_out)} and input {(h_in, w_in)} must differ by "
            "an even number of pixels on each axis"
        )
    per_sample = d.shape[0] != 1
    y = _resample_axis(x, d[:, 0], 1, h_out, (h_out - h_in) // 2, per_sample)
    return _resample_axis(y, d[:, 1], 2, w_out, (w_out - w_in) // 2, per_sample)


def translate(images: Any, offsets: Any) -> tf.Tensor:
    """Translate images by ``+offsets``: ``out[y, x] = in[y - dy, x - dx]``.

    Bilinear interpolation, zero outside the image. Works on numpy arrays and tensors, real or
    complex, in eager mode, in ``tf.function`` and under XLA, with gradients.

    Parameters
    ----------
    images : array or Tensor, (B, H, W) or (B, H, W, C)
    offsets : array or Tensor, (B, 2) pairs one offset with each image, (1, 2) applies one
        offset to all; columns ``(dy, dx)`` in pixels.

    Returns
    -------
    Tensor of the same shape and dtype as ``images``.

    Raises
    ------
    ValueError
        When ``images`` is not rank 3 or 4, ``offsets`` is not ``(B, 2)`` or ``(1, 2)``, or the
        batch sizes do not pair; the message names both shapes.
    """
    return shift_resample(images, offsets)
