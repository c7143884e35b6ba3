"""Model factories: any N and gridsize in one process, batch independence, save and load."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from ptycho_engine.config import DataConfig, ModelConfig, TrainingConfig
from ptycho_engine.errors import ModelError
from ptycho_engine.grouping import GroupedPatterns, make_groups
from ptycho_engine.inference import reconstruct_all
from ptycho_engine.models import (
    Backprojection,
    ComplexPatch,
    FarField,
    IntensityScale,
    LogCompress,
    Magnitude,
    OverlapConstraint,
    ScaledTanh,
    build_models,
    intensity_scale_for,
)
from ptycho_engine.simulate import make_probe, simulate_dataset
from ptycho_engine.training import run_training


def test_rebuild_train_reconstruct_across_settings_in_one_process() -> None:
    """(N, gridsize) = (32,1), (64,2), (32,3), (128,1), (64,2): build, one epoch, reconstruct."""
    for n, g in [(32, 1), (64, 2), (32, 3), (128, 1), (64, 2)]:
        data = simulate_dataset(N=n, n_positions=24, photons=1e5, seed=1)
        mcfg = ModelConfig(N=n, gridsize=g, n_filters_scale=1)
        tcfg = TrainingConfig(epochs=1, batch_size=4, preview_every=1, mae_warmup_epochs=0)
        result = run_training(data, mcfg, tcfg, DataConfig(n_groups=12, validation_fraction=0.0))
        c = g * g
        x, o = GroupedPatterns(data.amplitudes, result.groups).batch(np.arange(4))
        assert x.shape == (4, n, n, c) and o.shape == (4, c, 2)
        pred = result.bundle.training([x, o]).numpy()
        assert pred.shape == (4, n, n, c)
        amp, phase = result.bundle.predict(x, o)
        assert amp.shape == phase.shape == (4, n, n, c)
        assert result.steps == 3
        snap = reconstruct_all(result.bundle, data)
        assert snap.object.ndim == 2 and snap.object.dtype == np.complex64
        assert snap.object.shape[0] >= n and snap.valid.any()
        assert np.all(np.isfinite(snap.object))


@pytest.mark.parametrize("gridsize", [1, 2, 3])
def test_group_prediction_is_independent_of_the_batch(gridsize: int) -> None:
    data = simulate_dataset(N=32, n_positions=80, photons=1e6, seed=2)
    groups = make_groups(data.positions_px, gridsize, n_groups=64, seed=3)
    bundle = build_models(
        ModelConfig(N=32, gridsize=gridsize, n_filters_scale=1),
        data.probe,
        intensity_scale_for(data.photons_per_pattern, 32),
        groups.max_offset_px,
    )
    # perturb the weights so the heads are not near-constant
    bundle.training.set_weights(
        [
            w + np.random.default_rng(0).normal(0, 0.02, w.shape).astype(w.dtype)
            for w in bundle.training.get_weights()
        ]
    )
    store = GroupedPatterns(data.amplitudes, groups)
    x, o = store.batch(np.arange(64))
    amp_all, phase_all = (t.numpy() for t in bundle.inference([x, o]))
    pred_all = bundle.training([x, o]).numpy()
    for row in (0, 17, 63):
        amp1, phase1 = (t.numpy() for t in bundle.inference([x[row : row + 1], o[row : row + 1]]))
        np.testing.assert_allclose(amp1[0], amp_all[row], atol=1e-5)
        # compare complex values: the phase of a near-zero amplitude is ill-defined
        np.testing.assert_allclose(
            amp1[0] * np.exp(1j * phase1[0]), amp_all[row] * np.exp(1j * phase_all[row]), atol=1e-5
        )
        pred1 = bundle.training([x[row : row + 1], o[row : row + 1]]).numpy()
        np.testing.assert_allclose(pred1[0], pred_all[row], rtol=1e-5, atol=1e-5 * pred_all.max())
    assert np.std(amp_all) > 1e-3  # the check sees real structure


def test_probe_of_wrong_size_is_refused() -> None:
    with pytest.raises(ModelError, match="probe is 32x32 but N is 64"):
        build_models(ModelConfig(N=64), make_probe("disk", 32), 1.0)


def test_amplitude_starts_at_the_intensity_matched_level() -> None:
    data = simulate_dataset(N=32, n_positions=40, photons=1e6, seed=4)
    groups = make_groups(data.positions_px, 1)
    bundle = build_models(
        ModelConfig(N=32, gridsize=1), data.probe, intensity_scale_for(data.photons_per_pattern, 32)
    )
    x, o = GroupedPatterns(data.amplitudes, groups).batch(np.arange(16))
    pred = bundle.training([x, o]).numpy()
    ratio = np.mean(np.sum(pred**2, axis=(1, 2))) / np.mean(np.sum(x**2, axis=(1, 2)))
    assert 0.8 < ratio < 1.25


def test_weights_round_trip_and_keras_file_loads_in_safe_mode(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    data = simulate_dataset(N=32, n_positions=30, photons=1e6, seed=5)
    groups = make_groups(data.positions_px, 2, seed=0)
    s = intensity_scale_for(data.photons_per_pattern, 32)
    cfg = ModelConfig(N=32, gridsize=2, n_filters_scale=1)
    a = build_models(cfg, data.probe, s, groups.max_offset_px, seed=1)
    b = build_models(cfg, data.probe, s, groups.max_offset_px, seed=2)
    x, o = GroupedPatterns(data.amplitudes, groups).batch(np.arange(8))
    assert not np.allclose(a.training([x, o]).numpy(), b.training([x, o]).numpy())
    a.save_weights(folder / "w.weights.h5")
    b.load_weights(folder / "w.weights.h5")
    np.testing.assert_allclose(a.training([x, o]).numpy(), b.training([x, o]).numpy(), rtol=1e-6)
    a.inference.save(folder / "inference.keras")
    loaded = keras.models.load_model(folder / "inference.keras", safe_mode=True, compile=False)
    got = loaded([x, o])
    want = a.inference([x, o])
    np.testing.assert_allclose(got[0].numpy(), want[0].numpy(), atol=1e-6)


@pytest.mark.parametrize(
    ("layer", "arguments"),
    [
        (IntensityScale(3.5, name="s"), {"scale": 3.5}),
        (ScaledTanh(name="t"), {}),
        (ComplexPatch(32, name="c"), {"N": 32}),
        (
            OverlapConstraint(32, 40, False, True, name="o"),
            {"N": 32, "canvas": 40, "pad_object": False, "channels_first": True},
        ),
        (
            FarField(32, True, True, True, 2, name="f"),
            {
                "N": 32,
                "probe_mask": True,
                "probe_trainable": True,
                "channels_first": True,
                "n_modes": 2,
            },
        ),
        (Magnitude(name="m"), {}),
        (LogCompress(5.0, name="l"), {"gain": 5.0}),
        (Backprojection(48, False, name="b"), {"N": 48, "pad_object": False}),
    ],
)
def test_custom_layers_round_trip_get_config(
    layer: keras.layers.Layer, arguments: dict[str, object]
) -> None:
    """Every constructor argument (none at its default) survives get_config / from_config."""
    config = layer.get_config()
    assert {k: config.get(k) for k in arguments} == arguments
    clone = type(layer).from_config(config)
    assert clone.name == layer.name
    assert {k: getattr(clone, k) for k in arguments} == arguments
    assert clone.get_config() == config
    assert keras.saving.get_registered_object(
        keras.saving.get_registered_name(type(layer))
    ) is type(layer)


def test_another_network_is_used_kept_and_survives_a_rebuild() -> None:
    """``build_models(network=...)`` puts another encoder-decoder between the normalised
    patterns and the physics; a rebuild for a new probe or a larger canvas keeps it and its
    weights."""
    from ptycho_engine.models import ensure_canvas, rebuild_from

    n, g = 32, 2
    data = simulate_dataset(N=n, n_positions=24, photons=1e5, seed=4)
    groups = make_groups(data.positions_px, g, n_groups=8, seed=1)
    made = []

    def network(normalised: object) -> tuple[object, object]:
        layer = keras.layers.Conv2D(g * g, 3, padding="same", name="other_conv")
        made.append(layer)
        y = layer(keras.layers.Cropping2D(n // 4)(normalised))
        return keras.layers.Activation("sigmoid")(y), keras.layers.Activation("tanh")(y)

    scale = intensity_scale_for(data.photons_per_pattern, n)
    mcfg = ModelConfig(N=n, gridsize=g)
    bundle = build_models(mcfg, data.probe, scale, groups.max_offset_px, network=network)
    names = {layer.name for layer in bundle.training.layers}
    assert "other_conv" in names and "amp_head" not in names and "backprojection" not in names
    assert bundle.network is network
    x, o = GroupedPatterns(data.amplitudes, groups).batch(np.arange(4))
    amp, phase = bundle.predict(x, o)
    assert amp.shape == phase.shape == (4, n, n, g * g)
    # the sigmoid's output, zero-padded and averaged over the group by the overlap constraint
    assert np.all(amp >= 0) and np.all(amp <= 1) and np.all(amp[:, n // 2, n // 2, :] > 0)
    kernel = made[0].get_weights()[0]

    other_probe = make_probe("gaussian", n)
    for rebuilt in (
        rebuild_from(bundle, other_probe, scale * 2),
        ensure_canvas(bundle, groups.max_offset_px + 16),
    ):
        assert rebuilt is not bundle and rebuilt.network is network
        conv = rebuilt.training.get_layer("other_conv")
        np.testing.assert_array_equal(conv.get_weights()[0], kernel)


def test_the_decoder_is_shared_and_narrower_by_default_or_one_per_head() -> None:
    """Default: one decoder at half the encoder's width feeds both heads; the legacy network
    (one full-width decoder per head) is still built from its config, with the layer names
    its saved weights carry."""
    probe = make_probe("disk", 64)
    lean = build_models(ModelConfig(N=64, gridsize=2), probe, 10.0, 8.0)
    legacy = build_models(
        ModelConfig(N=64, gridsize=2, **ModelConfig.LEGACY_DECODER), probe, 10.0, 8.0
    )

    def names(bundle: object) -> set[str]:
        return {layer.name for layer in bundle.training.layers}  # type: ignore[attr-defined]

    assert "dec0_conv_a" in names(lean) and not any("amp_dec" in n for n in names(lean))
    assert {"amp_dec0_conv_a", "phase_dec0_conv_a"} <= names(legacy)
    # the encoder's filters at 16 x 16 are 64 and at 32 x 32 are 32: halved, at least 16
    assert lean.training.get_layer("dec0_conv_a").filters == 32
    assert lean.training.get_layer("dec1_conv_a").filters == 16
    assert legacy.training.get_layer("amp_dec0_conv_a").filters == 64
    assert lean.training.count_params() < 0.8 * legacy.training.count_params()


def test_assign_physics_gives_one_model_another_scan_in_place() -> None:
    """A model built for three probe modes, given a one-mode probe and another intensity
    scale in place, predicts what a model built for them predicts (the missing modes add no
    intensity; the back-projected input and the scale follow); its optimiser stays."""
    from ptycho_engine.models import assign_physics, rebuild_from

    n, g = 32, 2
    data = simulate_dataset(N=n, n_positions=24, photons=1e5, seed=4)
    groups = make_groups(data.positions_px, g, n_groups=8, seed=1)
    disk, gaussian = make_probe("disk", n), make_probe("gaussian", n)
    three = np.stack([disk, 0.6 * gaussian, 0.3 * np.roll(disk, 2, axis=0)])
    config = ModelConfig(N=n, gridsize=g)
    bundle = build_models(config, three, 2.0, groups.max_offset_px)
    optimizer = bundle.training.optimizer
    direct = rebuild_from(bundle, gaussian, 5.0)  # one mode, scale 5, the same network weights
    x, o = GroupedPatterns(data.amplitudes, groups).batch(np.arange(4))
    before = bundle.training([x, o]).numpy()
    moved = assign_physics(bundle, gaussian, 5.0, config)
    assert moved.training is bundle.training and moved.training.optimizer is optimizer
    assert moved.probe_modes.shape == (1, n, n) and moved.intensity_scale == 5.0
    np.testing.assert_allclose(moved.probe, direct.probe)
    after = moved.training([x, o]).numpy()
    np.testing.assert_allclose(after, direct.training([x, o]).numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(after, before, rtol=1e-2)
    for a, b in zip(moved.predict(x, o), direct.predict(x, o), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    with pytest.raises(ModelError, match="does not fit a model of 1 mode"):
        assign_physics(direct, three, 5.0, config)
    with pytest.raises(ModelError, match="must not be trainable"):
        assign_physics(bundle, gaussian, 5.0, ModelConfig(N=n, gridsize=g, probe_trainable=True))
