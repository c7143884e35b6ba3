"""Pretraining: the command writes weights that load into a fresh model, and its recipe."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

from ptycho_engine.cli import main
from ptycho_engine.config import DataConfig
from ptycho_engine.errors import ConfigError
from ptycho_engine.models import build_models, rebuild_from
from ptycho_engine.pretrain import load_pretrained, network_name, pretrain, store_weights_half
from ptycho_engine.simulate import make_probe


def test_pretrain_command_writes_weights_and_the_recipe_that_made_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["pretrain", "--N", "32", "--gridsize", "1", "--steps", "12", "--pool", "2"]
    argv += ["--refresh-steps", "5", "--mae-steps", "4", "--positions", "40", "--seed", "3"]
    argv += ["--reference-members", "1"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    said = capsys.readouterr().out
    assert "step 12/12 (main)" in said and "4 scans drawn" in said
    assert "heads at their limits" in said and "(amplitude)" in said
    assert "(supervised error " in said  # the default weight's term, reported on its own
    weights = tmp_path / f"{network_name(32, 1)}.weights.h5"
    recipe = json.loads((tmp_path / f"{network_name(32, 1)}.json").read_text())
    assert recipe["seed"] == 3 and recipe["steps"] == 12 and recipe["pool_size"] == 2
    # two scans to start with, a fresh one after steps 5 and 10, each replacing the oldest
    members = recipe["members"]
    assert [m["first_step"] for m in members] == [0, 0, 5, 10]
    assert len({json.dumps(m["member"], sort_keys=True) for m in members}) == 4
    assert sum(m["steps"] for m in members) == 12
    assert recipe["wall_time_s"] > 0 and "--steps 12" in recipe["command"]
    assert "--mae-steps 4" in recipe["command"] and "--pool 2" in recipe["command"]
    # the step ran without XLA, the training default (TrainingConfig.jit_compile)
    assert recipe["jit_compile"] is False and "--xla off" in recipe["command"]
    assert not list(tmp_path.glob("*.partial.*")) and not list(tmp_path.glob("*.half"))
    # the shipped precision: every float array of the weights file is half precision
    assert recipe["weights_dtype"] == "float16"
    with h5py.File(weights, "r") as f:
        arrays = _float_arrays(f)
    assert arrays and {a.dtype for a in arrays.values() if a.ndim} == {np.dtype(np.float16)}
    # the weights load (Keras weights only) into the recipe's model, which then meets another
    # probe and scale with the trained network kept
    loaded = load_pretrained(tmp_path / f"{network_name(32, 1)}.json")
    untrained = build_models(loaded.config, make_probe("disk", 32), 1.0, seed=loaded.seed)
    trained = [w for layer in loaded.training.layers for w in layer.get_weights()]
    initial = [w for layer in untrained.training.layers for w in layer.get_weights()]
    assert any(not np.array_equal(t, i) for t, i in zip(trained, initial, strict=True))
    moved = rebuild_from(loaded, make_probe("gaussian", 32), 5.0)
    x = np.random.default_rng(0).random((2, 32, 32, 1)).astype(np.float32)
    o = np.zeros((2, 1, 2), np.float32)
    amp_a, _ = moved.predict(x, o)
    amp_b, _ = rebuild_from(untrained, make_probe("gaussian", 32), 5.0).predict(x, o)
    assert not np.allclose(amp_a, amp_b)
    assert weights.is_file()


def _float_arrays(f: h5py.File) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    f.visititems(
        lambda name, item: (
            found.__setitem__(name, item[()])
            if isinstance(item, h5py.Dataset) and item.dtype.kind == "f"
            else None
        )
    )
    return found


def test_weights_stored_at_half_precision_load_into_keras_as_they_were(tmp_path: Path) -> None:
    import keras

    def model() -> keras.Model:
        inputs = keras.Input((8,))
        return keras.Model(inputs, keras.layers.Dense(3, name="dense")(inputs))

    full = model()
    kernel = np.linspace(-3.0, 3.0, 24, dtype=np.float32).reshape(8, 3) + 1e-4
    full.get_layer("dense").set_weights([kernel, np.array([0.1, -2.5, 7.0], np.float32)])
    path = tmp_path / "net.weights.h5"
    full.save_weights(path)
    with h5py.File(path, "r") as f:
        before = _float_arrays(f)
    store_weights_half(path)
    with h5py.File(path, "r") as f:
        after = _float_arrays(f)
    assert after.keys() == before.keys()
    assert all(after[k].dtype == np.float16 for k in after if after[k].ndim)
    half = model()
    half.load_weights(path)  # into float32 variables, in Keras's own loader
    loaded = half.get_layer("dense").get_weights()
    assert loaded[0].dtype == np.float32
    # within half precision's rounding (11 significant bits), and not the untouched values
    np.testing.assert_allclose(loaded[0], kernel, rtol=2**-11, atol=0)
    assert not np.array_equal(loaded[0], kernel)
    np.testing.assert_allclose(loaded[1], [0.1, -2.5, 7.0], rtol=2**-11)


def test_weights_beyond_half_precision_are_refused_and_left_as_they_were(tmp_path: Path) -> None:
    path = tmp_path / "net.weights.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("layers/dense/vars/0", data=np.array([1.0, 1e6], np.float32))
    with pytest.raises(ConfigError, match=r"net\.weights\.h5: /layers/dense/vars/0: .*1e\+06"):
        store_weights_half(path)
    with h5py.File(path, "r") as f:
        assert f["layers/dense/vars/0"].dtype == np.float32
    assert [p.name for p in tmp_path.iterdir()] == ["net.weights.h5"]


class _StopAfter(threading.Event):
    """A stop that arrives once it has been asked ``calls`` times (before step ``calls``)."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.calls = calls

    def is_set(self) -> bool:
        self.calls -= 1
        return self.calls < 0


def _network(folder: Path) -> list[np.ndarray]:
    bundle = load_pretrained(folder / f"{network_name(32, 2)}.json")
    return [w for layer in bundle.training.layers for w in layer.get_weights()]


def test_a_stopped_pretraining_is_the_run_its_recipe_names(tmp_path: Path) -> None:
    # gridsize 2 (the overlap canvas; scans of 1 to 3 probe modes in one model): stopped
    # before step 9 of 40, the recipe names 9 steps, and a run of 9 steps makes that network
    settings = {"N": 32, "gridsize": 2, "pool_size": 3, "refresh_steps": 4, "mae_steps": 3}
    settings |= {"n_positions": 40, "seed": 11, "reference_members": 0}
    said: list[dict[str, object]] = []
    pretrain(
        tmp_path / "stopped",
        steps=40,
        stop_event=_StopAfter(9),
        on_progress=said.append,
        **settings,
    )
    # one report at the end, with the heads' state on the last batch
    assert [r["step"] for r in said] == [9]
    for key in ("amplitude_saturated", "phase_at_limit"):
        assert 0.0 <= float(said[0][key]) <= 1.0  # type: ignore[arg-type]
    recipe = json.loads((tmp_path / "stopped" / f"{network_name(32, 2)}.json").read_text())
    assert recipe["steps"] == 9 and recipe["planned_steps"] == 40
    assert "--steps 9 " in recipe["command"]
    assert "residual_reference" not in recipe
    assert {m["member"]["probe_modes"] for m in recipe["members"]} != {1}
    pretrain(tmp_path / "again", steps=9, **settings)
    again = json.loads((tmp_path / "again" / f"{network_name(32, 2)}.json").read_text())
    assert again["members"] == recipe["members"]
    for a, b in zip(_network(tmp_path / "stopped"), _network(tmp_path / "again"), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_a_pretraining_that_dies_steps_back_and_ends_with_its_last_healthy_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a learning rate of 10 kills the network within a few steps (its heads go to their
    # limits); every health check (here every 3 steps) then restores the last healthy
    # state and halves the rate, and after MAX_SETBACKS the run ends with that state
    import ptycho_engine.pretrain as pretraining

    monkeypatch.setattr(pretraining, "REPORT_STEPS", 3)
    settings = {"N": 32, "gridsize": 1, "pool_size": 2, "refresh_steps": 50, "mae_steps": 0}
    settings |= {"n_positions": 40, "seed": 3, "reference_members": 0}
    said: list[dict[str, object]] = []
    pretrain(tmp_path / "dead", steps=60, learning_rate=10.0, on_progress=said.append, **settings)
    recipe = json.loads((tmp_path / "dead" / f"{network_name(32, 1)}.json").read_text())
    setbacks = recipe["setbacks"]
    assert len(setbacks) == pretraining.MAX_SETBACKS + 1 and recipe["diverged"] is True
    rates = [s["learning_rate"] for s in setbacks]
    assert rates[:-1] == [10.0 * 0.5 ** (k + 1) for k in range(pretraining.MAX_SETBACKS)]
    assert recipe["learning_rate"] == 10.0 and recipe["final_learning_rate"] == rates[-1]
    for s in setbacks:
        assert pretraining.is_dead(s["loss"], s["amplitude_saturated"], s["phase_at_limit"])
    assert recipe["steps"] == setbacks[-1]["step"] < 60 and said[-1]["diverged"] is True
    # it wrote its last healthy network (here the untrained one), whose heads on the first
    # scan it drew are off their limits, where every dead check found them at a limit
    from ptycho_engine.family import draw_member, simulate_member
    from ptycho_engine.grouping import GroupedPatterns
    from ptycho_engine.inference import inference_groups
    from ptycho_engine.physics.probe import support_mask
    from ptycho_engine.pretrain import fit_to_data
    from ptycho_engine.training import heads_at_limits

    data = simulate_member(draw_member(np.random.default_rng(3), N=32, n_positions=40))
    written = load_pretrained(tmp_path / "dead" / f"{network_name(32, 1)}.json")
    assert data.probe_all_modes is not None
    fitted = fit_to_data(written, written.config, data, data.probe_all_modes)
    x, o = GroupedPatterns(data.amplitudes, inference_groups(data, 1, DataConfig())).batch(
        np.arange(16)
    )
    amp, phase = heads_at_limits(fitted, x, o, support_mask(32, fitted.config.pad_object))
    assert not pretraining.is_dead(0.0, amp, phase)
    # at the default rate the same run stays healthy: no setback
    calm: list[dict[str, object]] = []
    pretrain(tmp_path / "calm", steps=12, on_progress=calm.append, **settings)
    assert [r["setback"] for r in calm] == [None] * 4
    again = json.loads((tmp_path / "calm" / f"{network_name(32, 1)}.json").read_text())
    assert again["setbacks"] == [] and again["diverged"] is False
    assert again["final_learning_rate"] == again["learning_rate"]


def test_the_health_check_finds_heads_at_their_limits_or_a_lost_loss_dead() -> None:
    from ptycho_engine.pretrain import DEAD_FRACTION, is_dead

    assert not is_dead(-2.0, 0.0, 0.0)
    assert not is_dead(0.5, DEAD_FRACTION - 0.01, DEAD_FRACTION - 0.05)
    assert is_dead(-2.0, DEAD_FRACTION, 0.0) and is_dead(-2.0, 0.0, 1.0)
    assert is_dead(float("nan"), 0.0, 0.0) and is_dead(float("inf"), 0.0, 0.0)


def test_pretrain_refuses_nonsense_counts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="steps = 0"):
        pretrain(tmp_path, N=32, gridsize=1, steps=0)
    with pytest.raises(ConfigError, match="pool_size = 0"):
        pretrain(tmp_path, N=32, gridsize=1, pool_size=0)
    with pytest.raises(ConfigError, match="mae_steps = -1"):
        pretrain(tmp_path, N=32, gridsize=1, mae_steps=-1)
    assert not list(tmp_path.iterdir())


def test_a_recipe_of_another_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pinn-N32-g1.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(ConfigError, match="not a pretrained network"):
        load_pretrained(tmp_path / "pinn-N32-g1.json")


def test_a_larger_overlap_canvas_keeps_the_optimiser_state() -> None:
    # pretraining grows the canvas when a fresh scan's groups spread wider; Adam's moments
    # and step count carry over to the rebuilt model
    import tensorflow as tf

    from ptycho_engine.config import ModelConfig
    from ptycho_engine.pretrain import _carry_optimizer

    bundle = build_models(ModelConfig(N=32, gridsize=2), make_probe("disk", 32), 2.0, 4.0)
    variables = bundle.training.trainable_variables
    optimizer = bundle.training.optimizer
    optimizer.build(variables)
    rng = np.random.default_rng(0)
    for _ in range(2):
        grads = [tf.constant(rng.normal(size=v.shape), tf.float32) for v in variables]
        optimizer.apply_gradients(zip(grads, variables, strict=True))
    grown = rebuild_from(bundle, make_probe("disk", 32), 2.0, 12.0)
    assert grown.canvas > bundle.canvas
    _carry_optimizer(bundle, grown)
    old = [v.numpy() for v in optimizer.variables]
    new = [v.numpy() for v in grown.training.optimizer.variables]
    assert len(old) == len(new) and int(grown.training.optimizer.iterations.numpy()) == 2
    for a, b in zip(old, new, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_resumed_pretraining_is_the_run_of_its_summed_steps(tmp_path: Path) -> None:
    # two chunks (6 steps, then on to 11; fresh draws after steps 4 and 8, one in each) make
    # the network, pool records and recipe of one run of 11 steps
    settings = {"N": 32, "gridsize": 2, "pool_size": 3, "refresh_steps": 4, "mae_steps": 3}
    settings |= {"n_positions": 40, "seed": 11, "reference_members": 0}
    chunks, straight = tmp_path / "chunks", tmp_path / "straight"
    pretrain(chunks, steps=6, **settings)
    stem = network_name(32, 2)
    assert (chunks / f"{stem}.checkpoint.npz").is_file()
    first = json.loads((chunks / f"{stem}.json").read_text())
    assert first["checkpoint"]["steps"] == 6
    said: list[dict[str, object]] = []
    pretrain(chunks, steps=11, resume=True, on_progress=said.append, **settings)
    pretrain(straight, steps=11, **settings)
    resumed = json.loads((chunks / f"{stem}.json").read_text())
    once = json.loads((straight / f"{stem}.json").read_text())
    assert resumed["steps"] == once["steps"] == 11 and resumed["resumed_at_steps"] == [6]
    assert resumed["members"] == once["members"]
    assert resumed["command"].replace(str(chunks), str(straight)) == once["command"]
    assert resumed["wall_time_s"] > first["wall_time_s"]
    assert [r["step"] for r in said] == [11]
    for a, b in zip(_network(chunks), _network(straight), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # a resume with other settings, or with no steps left, is refused, naming what differs
    with pytest.raises(ConfigError, match="seed is 11, not 12"):
        pretrain(chunks, steps=20, resume=True, **(settings | {"seed": 12}))
    with pytest.raises(ConfigError, match="done 11 steps"):
        pretrain(chunks, steps=11, resume=True, **settings)
    with pytest.raises(ConfigError, match="model_config"):
        pretrain(chunks, steps=20, resume=True, **(settings | {"n_filters_scale": 2}))
    (chunks / f"{stem}.checkpoint.npz").unlink()
    with pytest.raises(ConfigError, match="no checkpoint"):
        pretrain(chunks, steps=20, resume=True, **settings)


def test_the_command_line_resumes_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["pretrain", "--N", "32", "--gridsize", "1", "--pool", "2", "--refresh-steps", "3"]
    argv += ["--mae-steps", "2", "--positions", "40", "--reference-members", "0"]
    argv += ["--out", str(tmp_path)]
    assert main([*argv, "--steps", "4"]) == 0
    assert main([*argv, "--steps", "7", "--resume"]) == 0
    said = capsys.readouterr().out
    assert "step 7/7 (main)" in said
    recipe = json.loads((tmp_path / f"{network_name(32, 1)}.json").read_text())
    assert recipe["steps"] == 7 and recipe["resumed_at_steps"] == [4]
    assert sum(m["steps"] for m in recipe["members"]) == 7
    # a resume with another seed is a user error: one line, status 2
    assert main([*argv, "--steps", "9", "--resume", "--seed", "5"]) == 2
    assert "seed is 0, not 5" in capsys.readouterr().err
