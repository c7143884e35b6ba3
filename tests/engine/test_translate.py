"""translate() against a numpy reference: signs, sub-pixel, complex, broadcasting, modes."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from ptycho_engine.physics.shift import shift_resample, translate
from tests.engine.reference import reference_translate

MODES = {
    "eager": lambda f: f,
    "tf.function": lambda f: tf.function(f),
    "xla": lambda f: tf.function(f, jit_compile=True),
}

OFFSETS = np.array([[2.0, -3.0], [0.25, 0.75], [-1.5, 2.25], [-4.0, 0.0]], np.float32)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("rank", [3, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_matches_reference(mode: str, rank: int, dtype: type, rng: np.random.Generator) -> None:
    shape = (4, 9, 11) if rank == 3 else (4, 9, 11, 2)
    x = rng.normal(size=shape).astype(dtype)
    if np.iscomplexobj(x):
        x = (x + 1j * rng.normal(size=shape)).astype(dtype)
    fn = MODES[mode](translate)
    out = fn(tf.constant(x), tf.constant(OFFSETS)).numpy()
    assert out.shape == x.shape and out.dtype == x.dtype
    np.testing.assert_allclose(out, reference_translate(x, OFFSETS), atol=1e-5)


def test_integer_shift_moves_content_by_plus_offset() -> None:
    x = np.zeros((1, 8, 8), np.float32)
    x[0, 2, 3] = 1.0
    out = translate(x, np.array([[3.0, -2.0]], np.float32)).numpy()
    assert out[0, 5, 1] == pytest.approx(1.0)
    assert out.sum() == pytest.approx(1.0)


def test_public_name_is_the_function_and_shifts_by_plus_offset() -> None:
    from ptycho_engine.physics import translate as public_translate

    assert callable(public_translate) and public_translate is translate
    x = np.zeros((1, 7, 9), np.float32)
    x[0, 1, 6] = 1.0
    out = public_translate(x, np.array([[4.0, -5.0]], np.float32)).numpy()
    expected = np.zeros_like(x)
    expected[0, 5, 1] = 1.0  # out[y, x] = in[y - dy, x - dx]
    np.testing.assert_array_equal(out, expected)


def test_subpixel_shift_splits_weight_both_signs() -> None:
    x = np.zeros((2, 8, 8), np.float32)
    x[:, 4, 4] = 1.0
    out = translate(x, np.array([[0.25, 0.0], [-0.25, 0.0]], np.float32)).numpy()
    assert out[0, 4, 4] == pytest.approx(0.75) and out[0, 5, 4] == pytest.approx(0.25)
    assert out[1, 4, 4] == pytest.approx(0.75) and out[1, 3, 4] == pytest.approx(0.25)


def test_shift_out_of_frame_is_zero(rng: np.random.Generator) -> None:
    x = rng.normal(size=(1, 6, 6)).astype(np.float32)
    assert np.all(translate(x, np.array([[6.0, 0.0]], np.float32)).numpy() == 0)
    assert np.all(translate(x, np.array([[0.0, -7.5]], np.float32)).numpy() == 0)


@pytest.mark.parametrize("mode", MODES)
def test_single_offset_broadcasts_to_all(mode: str, rng: np.random.Generator) -> None:
    x = rng.normal(size=(5, 7, 7, 3)).astype(np.float32)
    off = np.array([[1.25, -0.5]], np.float32)
    out = MODES[mode](translate)(tf.constant(x), tf.constant(off)).numpy()
    np.testing.assert_allclose(out, reference_translate(x, off), atol=1e-5)


def test_numpy_and_tensor_inputs_agree(rng: np.random.Generator) -> None:
    x = rng.normal(size=(4, 10, 10)).astype(np.float32)
    a = translate(x, OFFSETS).numpy()
    b = translate(tf.constant(x), tf.constant(OFFSETS)).numpy()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("images", "offsets"),
    [
        ((4, 8), (4, 2)),
        ((4, 8, 8, 1, 1), (4, 2)),
        ((4, 8, 8), (3, 2)),
        ((4, 8, 8), (4, 3)),
        ((4, 8, 8), (4,)),
        ((4, 8, 8), (2, 4, 2)),
        ((1, 8, 8), (4, 2)),
    ],
)
def test_bad_shapes_raise_value_error_naming_both(images: tuple, offsets: tuple) -> None:
    with pytest.raises(ValueError, match=r"translate") as info:
        translate(np.zeros(images, np.float32), np.zeros(offsets, np.float32))
    assert str(tuple(offsets)) in str(info.value) or str(tuple(images)) in str(info.value)


@pytest.mark.parametrize("mode", ["eager", "xla"])
def test_gradient_is_adjoint_shift(mode: str, rng: np.random.Generator) -> None:
    """d/dx sum(w * T(x)) = T^T(w): for interior content, T(+d)^T == T(-d)."""
    x = tf.Variable(rng.normal(size=(2, 12, 12)).astype(np.float32))
    w = np.zeros((2, 12, 12), np.float32)
    w[:, 3:9, 3:9] = rng.normal(size=(2, 6, 6))
    off = np.array([[1.5, -0.75], [-0.25, 2.0]], np.float32)

    def loss() -> tf.Tensor:
        return tf.reduce_sum(w * translate(x, off))

    def grad() -> tf.Tensor:
        with tf.GradientTape() as tape:
            value = loss()
        return tape.gradient(value, x)

    g = MODES[mode](grad)().numpy()
    np.testing.assert_allclose(g, reference_translate(w, -off), atol=1e-5)


def test_shift_resample_pads_and_crops_around_centre(rng: np.random.Generator) -> None:
    x = rng.normal(size=(2, 6, 6)).astype(np.float32)
    off = np.array([[0.5, -1.0], [2.0, 0.25]], np.float32)
    big = shift_resample(x, off, (10, 10)).numpy()
    padded = np.pad(x, [(0, 0), (2, 2), (2, 2)])
    np.testing.assert_allclose(big, reference_translate(padded, off), atol=1e-5)
    small = shift_resample(padded, -off, (6, 6)).numpy()
    np.testing.assert_allclose(small, reference_translate(padded, -off)[:, 2:8, 2:8], atol=1e-5)
    with pytest.raises(ValueError, match="even"):
        shift_resample(x, off, (9, 9))
