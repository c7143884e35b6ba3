"""The supervised term of pretraining: the truth of a simulated scan in the network's
convention, its loss, and a pretraining that uses it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from ptycho_engine.cli import _parser
from ptycho_engine.config import ModelConfig
from ptycho_engine.family import MAX_PROBE_MODES, Member, draw_member
from ptycho_engine.models import build_models, rebuild_from
from ptycho_engine.physics.probe import pad_modes
from ptycho_engine.pretrain import (
    SUPERVISED_WEIGHT,
    _scan,
    load_pretrained,
    network_name,
    pretrain,
)
from ptycho_engine.simulate import object_patches
from ptycho_engine.training import make_train_step, supervised_loss


def test_object_patches_are_the_windows_the_simulation_samples() -> None:
    rng = np.random.default_rng(0)
    obj = (rng.random((40, 44)) + 1j * rng.random((40, 44))).astype(np.complex64)
    positions = np.array([[10.0, 12.0], [20.0, 30.0], [15.5, 17.25]])
    patches = object_patches(obj, positions, 16)
    assert patches.shape == (3, 16, 16) and patches.dtype == np.complex64
    # integer centres: patch[i, j] = obj(y - N//2 + i, x - N//2 + j)
    np.testing.assert_array_equal(patches[0], obj[2:18, 4:20])
    np.testing.assert_array_equal(patches[1], obj[12:28, 22:38])
    # a fractional centre is the bilinear mean of its four neighbours' windows
    a, b = obj[7:23, 9:25], obj[8:24, 9:25]
    c, d = obj[7:23, 10:26], obj[8:24, 10:26]
    expected = 0.5 * (0.75 * a + 0.25 * c) + 0.5 * (0.75 * b + 0.25 * d)
    np.testing.assert_allclose(patches[2], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("N", "gridsize", "seed"), [(32, 1, 2), (32, 2, 5)])
def test_the_truth_through_the_forward_model_makes_the_measured_counts(
    N: int, gridsize: int, seed: int
) -> None:
    # the targets are the object in the network's convention: the model's own far field of
    # them reproduces the scan's counts (up to Poisson noise), whatever the probe and dose
    config = ModelConfig(N=N, gridsize=gridsize, auto_probe_scale=True)
    member = draw_member(np.random.default_rng(seed), N=N, n_positions=120, photons=1e7)
    scan = _scan(member, config, 0, supervised=True)
    bundle = build_models(
        scan.config,
        pad_modes(scan.probe, MAX_PROBE_MODES),
        scan.intensity_scale,
        scan.max_offset_px,
    )
    rows = np.arange(12)
    x, _ = scan.patterns.batch(rows)
    t_re, t_im = scan.targets(rows)
    layout = (0, 3, 1, 2) if gridsize > 1 else (0, 1, 2, 3)  # the far field's input layout
    far = bundle.training.get_layer("farfield")(
        [tf.constant(t_re.transpose(layout)), tf.constant(t_im.transpose(layout))]
    )
    pred = bundle.training.get_layer("intensity_scale")(far, inverse=True).numpy()
    assert np.sum(pred**2) / np.sum(x**2) == pytest.approx(1.0, abs=0.01)
    assert np.corrcoef(pred.ravel(), x.ravel())[0, 1] > 0.99
    # each group's truth is turned to one definite global phase: its probe-weighted sum is
    # real and positive
    t = (t_re + 1j * t_im).transpose(0, 3, 1, 2)
    assert scan.weight is not None
    total = np.einsum("bcij,ij->b", t, scan.weight)
    np.testing.assert_allclose(np.angle(total), 0.0, atol=1e-4)
    # and the amplitude fits the sigmoid head
    assert 0.0 < np.abs(t).max() < 1.0


def test_the_supervised_loss_is_the_relative_error_of_the_patches() -> None:
    rng = np.random.default_rng(1)
    t = (rng.random((2, 8, 8, 1)) + 0.5) * np.exp(1j * rng.random((2, 8, 8, 1)))
    weight = np.ones((8, 8), np.float32)
    weight[:2] = 0.0  # pixels the probe does not light do not count

    def loss(estimate: np.ndarray) -> float:
        return float(
            supervised_loss(
                tf.constant(estimate.real, tf.float32),
                tf.constant(estimate.imag, tf.float32),
                tf.constant(t.real, tf.float32),
                tf.constant(t.imag, tf.float32),
                tf.constant(weight),
            )
        )

    assert loss(t) == pytest.approx(0.0, abs=1e-6)
    assert loss(1.1 * t) == pytest.approx(0.01, rel=1e-3)
    assert loss(np.zeros_like(t)) == pytest.approx(1.0, rel=1e-5)
    changed = t.copy()
    changed[:, :2] = 0.0  # only where the weight is zero
    assert loss(changed) == pytest.approx(0.0, abs=1e-6)


def _truth_error(folder: Path, member: dict[str, object]) -> float:
    """The supervised error of a pretrained network on the first groups of one member."""
    bundle = load_pretrained(folder / f"{network_name(32, 2)}.json")
    scan = _scan(Member(**member), bundle.config, 0, supervised=True)  # type: ignore[arg-type]
    bundle = rebuild_from(
        bundle,
        pad_modes(scan.probe, MAX_PROBE_MODES),
        scan.intensity_scale,
        scan.max_offset_px,
        config=scan.config,
    )
    rows = np.arange(16)
    x, o = scan.patterns.batch(rows)
    amp, phase = bundle.predict(x, o)
    t_re, t_im = scan.targets(rows)
    assert scan.weight is not None
    e_re, e_im = amp * np.cos(phase), amp * np.sin(phase)
    return float(supervised_loss(e_re, e_im, t_re, t_im, tf.constant(scan.weight)))


def test_a_supervised_pretraining_learns_the_truth_and_records_its_weight(
    tmp_path: Path,
) -> None:
    settings = {"N": 32, "gridsize": 2, "pool_size": 1, "refresh_steps": 200, "mae_steps": 0}
    settings |= {"n_positions": 60, "seed": 4, "reference_members": 0, "steps": 100}
    errors = {}
    for weight in (0.0, 5.0):
        folder = tmp_path / f"w{weight:g}"
        records: list[dict[str, object]] = []
        pretrain(folder, supervised_weight=weight, on_progress=records.append, **settings)
        recipe = json.loads((folder / f"{network_name(32, 2)}.json").read_text())
        assert recipe["supervised_weight"] == weight
        # the progress records and the recipe give the supervised error on its own
        said = [r["supervised_error"] for r in records]
        assert recipe["final_supervised_error"] == said[-1]
        if weight == 0.0:
            assert said == [None]
        else:
            assert len(said) == 1 and 0.0 < float(said[0]) < 1.5  # type: ignore[arg-type]
        assert f"--supervised-weight {weight:g} " in recipe["command"]
        errors[weight] = _truth_error(folder, recipe["members"][0]["member"])
    # the same draws and batches: the supervised term brings the patches nearer the truth
    # (measured 0.056 against 0.066: a scan's fine detail takes many more steps)
    assert errors[5.0] < 0.92 * errors[0.0]


def test_the_supervised_step_fits_the_truth() -> None:
    # the supervised term alone (no physics loss) on one batch of a gridsize-2 scan: its
    # gradient reaches the network through the overlap constraint
    config = ModelConfig(N=32, gridsize=2, auto_probe_scale=True)
    scan = _scan(draw_member(np.random.default_rng(4), N=32, n_positions=60), config, 0, True)
    bundle = build_models(
        scan.config,
        pad_modes(scan.probe, MAX_PROBE_MODES),
        scan.intensity_scale,
        scan.max_offset_px,
    )
    step = make_train_step(bundle, False, supervised=True)
    rows = np.arange(16)
    x, o = scan.patterns.batch(rows)
    t_re, t_im = scan.targets(rows)
    assert scan.weight is not None

    def error() -> float:
        amp, phase = bundle.predict(x, o)
        e_re, e_im = amp * np.cos(phase), amp * np.sin(phase)
        return float(supervised_loss(e_re, e_im, t_re, t_im, tf.constant(scan.weight)))

    before = error()
    zero, one = tf.constant(0.0), tf.constant(1.0)
    said = []
    for _ in range(60):
        loss, err = step(tf.constant(x), tf.constant(o), zero, zero, t_re, t_im, scan.weight, one)
        said.append(float(err))
    assert np.isfinite(float(loss))
    # the step reports the supervised error alone, as measured before its update: the first
    # is the untrained network's, and with no physics loss the summed loss is that error
    assert said[0] == pytest.approx(before, rel=1e-4)
    assert float(loss) == pytest.approx(said[-1], rel=1e-6)
    assert said[-1] < 0.5 * said[0]
    assert error() < 0.4 * before  # measured 0.059 to below 0.02 in 100 steps


def test_the_supervised_weight_is_checked_and_defaults_to_the_engine() -> None:
    args = _parser().parse_args(["pretrain", "--out", "x"])
    assert args.supervised_weight == SUPERVISED_WEIGHT
    with pytest.raises(Exception, match="supervised_weight"):
        pretrain("unused", steps=1, supervised_weight=-1.0)
