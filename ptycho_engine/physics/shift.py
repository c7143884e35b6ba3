"""The one translation primitive of the engine (physics.md section 1).

Public as ``ptycho_engine.physics.translate``; this module also holds the resampling it is a
case of, which the overlap constraint uses.

``translate(images, offsets)`` moves image content by ``+offset``::

    out[y, x] = in[y - dy, x - dx]        bilinear, zero outside

Every other shift in the engine (placing patches on a group canvas, extracting them again)
goes through :func:`shift_resample`, which is the same operation with an output frame whose
size may differ from the input's, aligned on the centre pixel. There is no second code path
and no second sign.

Implementation: the shift is separable, so it is two 1-D bilinear resamplings, each a
(batched) product with a sparse interpolation matrix of two diagonals built with ``one_hot``:
``out = R @ in @ C^T``. Complex images are shifted as real and imaginary parts. This runs in
eager mode, inside ``tf.function`` and under XLA (``jit_compile=True``), has gradients with
respect to the images, and is about 2x faster here than the same shift written with
``tf.gather`` (measured on 64 complex 64x64 patches placed on 90x90 canvases); there is no
projective-transform kernel (about 10x the FFT cost here and no XLA kernel) and no FFT.
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


def _interpolation_matrix(
    shift: tf.Tensor, length_in: int, length_out: int, origin: int
) -> tf.Tensor:
    """Matrices of a 1-D bilinear shift, one per sample: ``(B, length_out, length_in)``.

    ``out[i] = in[i - origin - shift]``: with ``k = floor(shift)`` and ``f = shift - k`` the
    two source pixels are ``i - origin - k`` (weight ``1 - f``) and ``i - origin - k - 1``
    (weight ``f``). A source outside ``[0, length_in)`` has no column (``one_hot`` of an
    out-of-range index is a zero row): zero fill.
    """
    k = tf.floor(shift)
    f = shift - k
    i = tf.range(length_out, dtype=shift.dtype)[tf.newaxis, :] - origin
    src_hi = tf.cast(i - k[:, tf.newaxis], tf.int32)
    hi = tf.one_hot(src_hi, length_in, dtype=shift.dtype)
    lo = tf.one_hot(src_hi - 1, length_in, dtype=shift.dtype)
    return hi * (1.0 - f)[:, tf.newaxis, tf.newaxis] + lo * f[:, tf.newaxis, tf.newaxis]


def _apply(x: tf.Tensor, rows: tf.Tensor, cols: tf.Tensor, per_sample: bool) -> tf.Tensor:
    """``rows @ x @ cols^T`` over the image axes of a real ``(B, H, W[, C])`` tensor."""
    if x.shape.rank == 3:
        if per_sample:
            return tf.matmul(tf.matmul(rows, x), cols, transpose_b=True)
        return tf.einsum("yh,bhw,xw->byx", rows[0], x, cols[0])
    if per_sample:
        return tf.einsum("byh,bhwc,bxw->byxc", rows, x, cols)
    return tf.einsum("yh,bhwc,xw->byxc", rows[0], x, cols[0])


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
    rows = _interpolation_matrix(d[:, 0], h_in, h_out, (h_out - h_in) // 2)
    cols = _interpolation_matrix(d[:, 1], w_in, w_out, (w_out - w_in) // 2)
    if x.dtype.is_complex:
        rows_c, cols_c = (tf.cast(m, real_dtype) for m in (rows, cols))
        re = _apply(tf.math.real(x), rows_c, cols_c, per_sample)
        im = _apply(tf.math.imag(x), rows_c, cols_c, per_sample)
        return tf.complex(re, im)
    return _apply(x, tf.cast(rows, x.dtype), tf.cast(cols, x.dtype), per_sample)


def shift_resample_many(images: tf.Tensor, offsets: tf.Tensor, out_size: int) -> tf.Tensor:
    """Several shifted copies of each image: ``shift_resample`` of ``images`` repeated.

    ``out[b, c] = shift_resample(images[b], offsets[b, c], (out_size, out_size))``, computed
    without repeating the images: the row step of all ``C`` offsets is one product per image
    (``(C * out, S) @ (S, S)``), which is several times faster than ``C`` small products.

    Parameters
    ----------
    images : Tensor, (B, S, S), real or complex
    offsets : Tensor, (B, C, 2) float32, ``(dy, dx)``
    out_size : int
        Side of each output (``S - out_size`` even).

    Returns
    -------
    Tensor, (B, C, out_size, out_size), the dtype of ``images``.
    """
    x = _as_tensor(images)
    real_dtype = tf.float64 if x.dtype in (tf.float64, tf.complex128) else tf.float32
    side = int(x.shape[1])
    channels = int(offsets.shape[1])
    if (side - out_size) % 2:
        raise ValueError(
            f"shift_resample_many: output {out_size} and input {side} must differ by an even "
            "number of pixels"
        )
    d = tf.reshape(tf.cast(offsets, real_dtype), [-1, 2])
    origin = (out_size - side) // 2
    rows = _interpolation_matrix(d[:, 0], side, out_size, origin)  # (B*C, out, S)
    cols = _interpolation_matrix(d[:, 1], side, out_size, origin)
    rows = tf.reshape(rows, [-1, channels * out_size, side])

    def apply(part: tf.Tensor) -> tf.Tensor:
        stacked = tf.reshape(tf.matmul(rows, part), [-1, out_size, side])
        out = tf.matmul(stacked, cols, transpose_b=True)
        return tf.reshape(out, [-1, channels, out_size, out_size])

    if x.dtype.is_complex:
        return tf.complex(apply(tf.math.real(x)), apply(tf.math.imag(x)))
    return apply(x)


def shift_resample_sum(images: tf.Tensor, offsets: tf.Tensor, out_size: int) -> tf.Tensor:
    """Sum over ``c`` of ``shift_resample(images[b, c], offsets[b, c], (out_size, out_size))``.

    The column step is one small product per image; the row step and the sum over ``c`` are
    a single product per sample, ``(out, C * n) @ (C * n, out)``.

    Parameters
    ----------
    images : Tensor, (B, C, n, n), real or complex
    offsets : Tensor, (B, C, 2) float32, ``(dy, dx)``
    out_size : int
        Side of the output (``out_size - n`` even).

    Returns
    -------
    Tensor, (B, out_size, out_size), the dtype of ``images``.
    """
    x = _as_tensor(images)
    real_dtype = tf.float64 if x.dtype in (tf.float64, tf.complex128) else tf.float32
    channels, side = int(x.shape[1]), int(x.shape[2])
    if (out_size - side) % 2:
        raise ValueError(
            f"shift_resample_sum: output {out_size} and input {side} must differ by an even "
            "number of pixels"
        )
    d = tf.reshape(tf.cast(offsets, real_dtype), [-1, 2])
    origin = (out_size - side) // 2
    rows = _interpolation_matrix(d[:, 0], side, out_size, origin)  # (B*C, out, n)
    cols = _interpolation_matrix(d[:, 1], side, out_size, origin)
    rows = tf.reshape(
        tf.transpose(tf.reshape(rows, [-1, channels, out_size, side]), [0, 2, 1, 3]),
        [-1, out_size, channels * side],
    )

    def apply(part: tf.Tensor) -> tf.Tensor:
        flat = tf.reshape(part, [-1, side, side])
        right = tf.matmul(flat, cols, transpose_b=True)  # (B*C, n, out)
        return tf.matmul(rows, tf.reshape(right, [-1, channels * side, out_size]))

    if x.dtype.is_complex:
        return tf.complex(apply(tf.math.real(x)), apply(tf.math.imag(x)))
    return apply(x)


def shift_box_profiles(
    offsets: tf.Tensor, length_in: int, length_out: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """Row and column profiles of a shifted box of ones, for every offset.

    A ``length_in``-square box of ones shifted with :func:`shift_resample` into a
    ``length_out``-square frame is the outer product of these two profiles (the shift is
    separable and the box is a product of two 1-D boxes), so it costs ``2 * length_out``
    values instead of a full resampling.

    Parameters
    ----------
    offsets : Tensor, (B, 2) float32, ``(dy, dx)``
    length_in, length_out : int

    Returns
    -------
    (Tensor, Tensor), each (B, length_out): row profile and column profile.
    """
    d = tf.cast(offsets, tf.float32)
    origin = (length_out - length_in) // 2
    rows = tf.reduce_sum(_interpolation_matrix(d[:, 0], length_in, length_out, origin), axis=2)
    cols = tf.reduce_sum(_interpolation_matrix(d[:, 1], length_in, length_out, origin), axis=2)
    return rows, cols


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
