"""Pretraining: the command writes weights that load into a fresh model, and its recipe."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ptycho_engine.cli import main
from ptycho_engine.errors import ConfigError
from ptycho_engine.models import build_models, rebuild_from
from ptycho_engine.pretrain import load_pretrained, network_name, pretrain
from ptycho_engine.simulate import make_probe


def test_pretrain_command_writes_weights_and_the_recipe_that_made_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["pretrain", "--N", "32", "--gridsize", "1", "--members", "2"]
    argv += ["--epochs-per-member", "1", "--positions", "40", "--seed", "3"]
    argv += ["--reference-members", "1"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    said = capsys.readouterr().out
    assert "member 1/2:" in said and "member 2/2:" in said
    weights = tmp_path / f"{network_name(32, 1)}.weights.h5"
    recipe = json.loads((tmp_path / f"{network_name(32, 1)}.json").read_text())
    assert recipe["seed"] == 3 and len(recipe["members"]) == 2
    assert recipe["members"][0]["member"] != recipe["members"][1]["member"]
    assert recipe["steps"] == sum(m["steps"] for m in recipe["members"]) > 0
    assert recipe["wall_time_s"] > 0 and "--members 2" in recipe["command"]
    assert not list(tmp_path.glob("*.partial.*"))
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


def test_pretrain_refuses_nonsense_counts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="members = 0"):
        pretrain(tmp_path, N=32, gridsize=1, members=0)


def test_a_recipe_of_another_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pinn-N32-g1.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(ConfigError, match="not a pretrained network"):
        load_pretrained(tmp_path / "pinn-N32-g1.json")
