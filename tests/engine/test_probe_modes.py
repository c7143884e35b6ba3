"""Partially coherent probes (incoherent modes whose intensities add, physics.md section 2),
the automatic probe scale and the step-based plateau patience."""

from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from ptycho_engine.config import DataConfig, ModelConfig, TrainingConfig
from ptycho_engine.errors import DataError, ModelError
from ptycho_engine.grouping import GroupedPatterns, make_groups
from ptycho_engine.inference import reconstruct_all, stitch_window
from ptycho_engine.models import FarField, build_models, intensity_scale_for, rebuild_from
from ptycho_engine.physics.farfield import (
    checkerboard,
    farfield_amplitude,
    farfield_amplitude_modes,
)
from ptycho_engine.physics.probe import (
    auto_probe_scale,
    brightest_level,
    coherent_equivalent,
    matched_amplitude,
    normalize_probe,
    probe_amplitude,
    sort_modes,
    support_mask,
)
from ptycho_engine.simulate import make_probe, simulate_dataset
from ptycho_engine.training import (
    PLATEAU_MIN_STEPS,
    plateau_patience,
    resolve_probe_scale,
    run_training,
)

N = 32


def two_modes(n: int = N, weak: float = 0.5) -> np.ndarray:
    """A disk probe and a weaker second mode with another phase (power ratio ``weak**2``)."""
    first = make_probe("disk", n)
    yy, xx = np.mgrid[:n, :n]
    second = weak * np.abs(first) * np.exp(1j * 2 * np.pi * (yy - xx) / n)
    return np.stack([first, second]).astype(np.complex64)


def numpy_far_field(modes: np.ndarray, obj: np.ndarray) -> np.ndarray:
    """``sqrt(sum_k |fftshift(fft2(P_k O))|**2) / N`` in plain numpy, float64."""
    total = np.zeros(obj.shape, np.float64)
    for mode in modes.astype(np.complex128):
        wave = np.fft.fftshift(np.fft.fft2(mode * obj), axes=(-2, -1))
        total += np.abs(wave) ** 2
    return np.sqrt(total) / obj.shape[-1]


def random_patches(batch: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    amp = rng.uniform(0.3, 1.0, (batch, N, N))
    phase = rng.uniform(-1.0, 1.0, (batch, N, N))
    return (amp * np.exp(1j * phase) * support_mask(N)).astype(np.complex64)


def test_incoherent_far_field_matches_numpy_and_parseval() -> None:
    modes = two_modes()
    obj = random_patches(3, 0)
    got = farfield_amplitude_modes(tf.constant(obj), tf.constant(modes)).numpy()
    want = numpy_far_field(modes, obj)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * want.max())
    exit_power = sum(np.sum(np.abs(m * obj) ** 2, axis=(1, 2)) for m in modes)
    np.testing.assert_allclose(np.sum(got.astype(np.float64) ** 2, axis=(1, 2)), exit_power, 1e-4)
    # centring folded into the probes gives the same centred result
    centred = farfield_amplitude_modes(
        tf.constant(obj), tf.constant(modes * checkerboard(N)), centred_input=True
    ).numpy()
    np.testing.assert_allclose(centred, got, rtol=1e-4, atol=1e-5 * want.max())


def test_one_mode_is_the_coherent_far_field() -> None:
    probe = make_probe("disk", N)
    obj = random_patches(2, 1)
    one = farfield_amplitude_modes(tf.constant(obj), tf.constant(probe[np.newaxis])).numpy()
    coherent = farfield_amplitude(tf.constant(obj * probe)).numpy()
    np.testing.assert_allclose(one, coherent, rtol=1e-4, atol=1e-6 * coherent.max())


def test_gradient_is_finite_where_no_mode_has_intensity() -> None:
    modes = tf.constant(two_modes())
    obj = tf.Variable(tf.zeros((1, N, N), tf.complex64))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(farfield_amplitude_modes(obj, modes))
    grad = tape.gradient(loss, obj).numpy()
    assert np.all(np.isfinite(grad.real)) and np.all(np.isfinite(grad.imag))


def test_normalisation_of_modes_keeps_their_powers_and_generalises_one_mode() -> None:
    modes = two_modes()
    single = normalize_probe(modes[0], 4.0)
    np.testing.assert_array_equal(normalize_probe(modes[:1], 4.0)[0], single)
    normalised = normalize_probe(modes, 4.0)
    assert normalised.shape == modes.shape and normalised.dtype == np.complex64
    ratio = normalised / modes
    np.testing.assert_allclose(ratio[np.abs(modes) > 1e-3], ratio[0, N // 2, N // 2], rtol=1e-5)
    # the mean total illumination amplitude on the disk is 1 / probe_scale
    disk = np.hypot(*(np.mgrid[:N, :N] - N // 2)) <= N / 4
    amplitude = probe_amplitude(normalised)
    assert float(np.sum(amplitude * disk)) / N**2 == pytest.approx(0.25, rel=1e-5)
    # incoherent modes add in intensity: more modes, more light, lower matched level
    level = matched_amplitude(normalised)
    power = float(np.sum(amplitude**2 * support_mask(N)))
    assert level == pytest.approx((N / 2) / np.sqrt(power), rel=1e-6)


def test_modes_are_sorted_and_the_coherent_equivalent_carries_all_power() -> None:
    modes = two_modes()[::-1]
    ordered = sort_modes(modes)
    np.testing.assert_array_equal(ordered[0], modes[1])
    single = coherent_equivalent(ordered)
    total = float(np.sum(np.abs(ordered.astype(np.complex128)) ** 2))
    assert float(np.sum(np.abs(single.astype(np.complex128)) ** 2)) == pytest.approx(total, 1e-5)
    np.testing.assert_allclose(
        np.angle(single[N // 2, N // 2]), np.angle(ordered[0, N // 2, N // 2])
    )


def test_model_with_two_modes_predicts_the_incoherent_sum() -> None:
    modes = two_modes()
    scale = 3.0
    config = ModelConfig(N=N, gridsize=1, n_filters_scale=1)
    bundle = build_models(config, modes[::-1], scale)  # given weakest first: sorted here
    assert bundle.probe_modes.shape == (2, N, N)
    np.testing.assert_array_equal(bundle.probe, bundle.probe_modes[0])
    np.testing.assert_array_equal(bundle.probe_modes, normalize_probe(modes, config.probe_scale))
    farfield = bundle.training.get_layer("farfield")
    assert farfield.n_modes == 2 and tuple(farfield.probe_real.shape) == (2, N, N)
    obj = random_patches(2, 2)
    got = farfield([tf.constant(obj.real[..., None]), tf.constant(obj.imag[..., None])]).numpy()
    np.testing.assert_allclose(
        got[..., 0], numpy_far_field(bundle.probe_modes, obj), rtol=1e-4, atol=1e-6
    )
    # the amplitude head starts where the predicted counts of both modes match the data
    data = simulate_dataset(N=N, n_positions=30, photons=1e6, seed=5)
    x, o = GroupedPatterns(data.amplitudes, make_groups(data.positions_px, 1)).batch(np.arange(8))
    bundle = build_models(config, modes, intensity_scale_for(data.photons_per_pattern, N))
    pred = bundle.training([x, o]).numpy()
    ratio = np.mean(np.sum(pred**2, axis=(1, 2))) / np.mean(np.sum(x**2, axis=(1, 2)))
    assert 0.8 < ratio < 1.25


def test_one_mode_model_keeps_its_coherent_layout() -> None:
    bundle = build_models(ModelConfig(N=N, gridsize=1), make_probe("disk", N)[np.newaxis], 1.0)
    farfield = bundle.training.get_layer("farfield")
    assert farfield.n_modes == 1 and tuple(farfield.probe_real.shape) == (N, N)
    assert bundle.probe.shape == (N, N) and bundle.probe_modes.shape == (1, N, N)


def test_far_field_layer_with_modes_round_trips_get_config() -> None:
    layer = FarField(N, n_modes=3, name="farfield")
    clone = FarField.from_config(layer.get_config())
    assert clone.n_modes == 3 and clone.get_config() == layer.get_config()
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert restored.n_modes == 3
    with pytest.raises(ModelError, match="n_modes must be >= 1"):
        FarField(N, n_modes=0)


def test_probe_of_wrong_mode_shape_is_refused() -> None:
    with pytest.raises(ModelError, match="probe is 2x32x32 but N is 64"):
        build_models(ModelConfig(N=64), two_modes(), 1.0)


def test_diffraction_data_checks_its_modes() -> None:
    data = simulate_dataset(N=N, n_positions=10, photons=1e5, seed=6)
    modes = two_modes()
    with_modes = data.replace(probe=None, probe_modes=modes)
    np.testing.assert_array_equal(with_modes.probe, modes[0])
    assert with_modes.probe_all_modes is with_modes.probe_modes
    assert data.probe is not None and data.probe_all_modes is not None
    assert data.probe_all_modes.shape == (1, N, N)
    np.testing.assert_array_equal(data.replace(probe_modes=modes).probe, data.probe)
    with pytest.raises(DataError, match="probe differs from probe_modes"):
        data.replace(probe_modes=2 * modes)
    with pytest.raises(DataError, match="probe differs from probe_modes"):
        with_modes.replace(probe=2 * modes[0])
    with pytest.raises(DataError, match="strongest first"):
        data.replace(probe=None, probe_modes=modes[::-1])
    with pytest.raises(DataError, match="K >= 2"):
        data.replace(probe=None, probe_modes=modes[:1])
    with pytest.raises(DataError, match=r"\(K, 32, 32\)"):
        data.replace(probe=None, probe_modes=np.zeros((2, 16, 16), np.complex64))


def test_training_uses_every_mode_of_the_data_and_warm_starts_across_mode_counts() -> None:
    data = simulate_dataset(N=N, n_positions=24, photons=1e6, seed=7)
    modes = two_modes()
    multi = data.replace(probe=None, probe_modes=modes)
    mcfg = ModelConfig(N=N, gridsize=2, n_filters_scale=1)
    tcfg = TrainingConfig(epochs=1, batch_size=4, preview_every=0, mae_warmup_epochs=0)
    dcfg = DataConfig(n_groups=8, validation_fraction=0.0)
    result = run_training(multi, mcfg, tcfg, dcfg)
    assert result.bundle.probe_modes.shape == (2, N, N)
    assert np.isfinite(result.history[-1].loss)
    # an explicit single-mode probe overrides the data's modes
    single = run_training(multi, mcfg, tcfg, dcfg, probe=modes[0])
    assert single.bundle.probe_modes.shape == (1, N, N)
    # warm start of the two-mode model from the single-mode one: network weights carried over
    warm = rebuild_from(single.bundle, modes, single.bundle.intensity_scale)
    assert warm.probe_modes.shape == (2, N, N)
    for name in ("enc0_conv_a", "amp_head"):
        for a, b in zip(
            warm.training.get_layer(name).get_weights(),
            single.bundle.training.get_layer(name).get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(a, b)
    again = run_training(multi, mcfg, tcfg, dcfg, bundle=single.bundle)
    assert again.bundle.probe_modes.shape == (2, N, N)
    # stitching with the probe window uses the total illumination of the modes
    window = stitch_window(result.bundle, "probe")
    expected = probe_amplitude(result.bundle.probe_modes) * support_mask(N)
    np.testing.assert_allclose(window, expected / expected.max(), rtol=1e-5)
    snap = reconstruct_all(result.bundle, multi, dcfg, window="probe")
    assert snap.valid.any() and np.all(np.isfinite(snap.object))


def test_auto_probe_scale_lowers_the_scale_only_for_bright_patterns() -> None:
    probe = make_probe("disk", N)
    rng = np.random.default_rng(9)
    amplitudes = rng.uniform(0.5, 1.5, (20, N, N)).astype(np.float32)
    level = brightest_level(amplitudes, normalize_probe(probe, 4.0))
    counts = np.sum(amplitudes.astype(np.float64) ** 2, axis=(1, 2))
    expected = matched_amplitude(normalize_probe(probe, 4.0)) * np.sqrt(
        np.percentile(counts, 99) / counts.mean()
    )
    assert level == pytest.approx(expected, rel=1e-9)
    # the needed amplitude is proportional to the scale: halving the scale halves it
    assert brightest_level(amplitudes, normalize_probe(probe, 2.0)) == pytest.approx(level / 2)
    lowered = auto_probe_scale(amplitudes, probe, 4.0, level=level / 2)
    assert lowered == pytest.approx(2.0)
    assert auto_probe_scale(amplitudes, probe, lowered, level=level / 2) == lowered
    assert auto_probe_scale(amplitudes, probe, 4.0, level=level * 1.01) == 4.0
    with pytest.raises(DataError, match="no counts"):
        brightest_level(np.zeros((2, N, N), np.float32), probe)


def test_training_resolves_the_probe_scale_and_keeps_a_fixed_one() -> None:
    data = simulate_dataset(N=N, n_positions=24, photons=1e6, seed=10)
    assert data.probe is not None
    # half of the scan dimmed: the bright half needs more amplitude, so a lower scale
    dim = data.replace(
        amplitudes=data.amplitudes * np.where(np.arange(24) < 12, 0.4, 1.0)[:, None, None]
    )
    assert not ModelConfig(N=N, gridsize=1).auto_probe_scale  # the contract's fixed default
    auto = ModelConfig(N=N, gridsize=1, n_filters_scale=1, auto_probe_scale=True)
    plain = resolve_probe_scale(auto, data, data.probe)
    resolved = resolve_probe_scale(auto, dim, data.probe)
    assert resolved.probe_scale < plain.probe_scale <= 4.0
    level = brightest_level(dim.amplitudes, normalize_probe(data.probe, resolved.probe_scale))
    assert level == pytest.approx(0.75, rel=1e-5)
    assert resolve_probe_scale(resolved, dim, data.probe) == resolved
    fixed = dataclasses.replace(auto, auto_probe_scale=False)
    assert resolve_probe_scale(fixed, dim, data.probe) == fixed
    soft = dataclasses.replace(auto, amp_activation="softplus")
    assert resolve_probe_scale(soft, dim, data.probe) == soft
    tcfg = TrainingConfig(epochs=1, batch_size=4, preview_every=0, mae_warmup_epochs=0)
    dcfg = DataConfig(validation_fraction=0.0)
    result = run_training(dim, auto, tcfg, dcfg)
    assert result.bundle.config == resolved
    # a warm start from that bundle is reused as it is (same resolved configuration)
    again = run_training(dim, auto, tcfg, dcfg, bundle=result.bundle)
    assert again.bundle is result.bundle
    # on other data whose scale resolves differently, the network weights are carried over
    other = run_training(data, auto, tcfg, dcfg, bundle=result.bundle)
    assert other.bundle.config.probe_scale != resolved.probe_scale
    assert other.bundle is not result.bundle


def test_plateau_patience_spans_enough_steps() -> None:
    assert plateau_patience(0, 5) == 0
    assert plateau_patience(3, 1000) == 3
    assert plateau_patience(3, 11) == math.ceil(PLATEAU_MIN_STEPS / 11)
    assert plateau_patience(50, 11) == 50


@pytest.mark.parametrize("mode", ["crop", "bin"])
def test_preparation_carries_every_mode_to_the_new_size(mode: str) -> None:
    from ptycho_engine.io import prepare

    data = simulate_dataset(N=64, n_positions=10, photons=1e5, seed=11)
    multi = data.replace(probe=None, probe_modes=two_modes(64))
    prepared = prepare(multi, 32, mode)
    assert prepared.N == N and prepared.probe_modes is not None
    assert prepared.probe_modes.shape == (2, N, N)
    np.testing.assert_array_equal(prepared.probe_modes[0], prepared.probe)
    same = prepare(multi, 64, mode)
    np.testing.assert_array_equal(same.probe_modes, multi.probe_modes)
