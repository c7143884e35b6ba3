"""The pretrained networks shipped in ``ptycho_engine/pretrained``: each is found for the
default network of its N and gridsize, loads (Keras weights, nothing unpickled), explains
fresh data of its family better than an untrained network, and all fit the size budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ptycho_engine.config import ModelConfig
from ptycho_engine.family import draw_member, simulate_member
from ptycho_engine.models import build_models
from ptycho_engine.pretrain import (
    CANONICAL_PROBE,
    CANONICAL_SCALE,
    PRETRAIN_FORMAT,
    PRETRAINED_DIR,
    WEIGHTS_DTYPE,
    far_field_residual,
    find_pretrained,
    fit_to_data,
    load_pretrained,
    network_name,
)
from ptycho_engine.simulate import make_probe

SHIPPED = sorted(PRETRAINED_DIR.glob("*.json"))
#: The issue's budget for all shipped networks together.
BUDGET_BYTES = 25 * 1024 * 1024


def test_the_default_network_of_the_app_is_shipped_and_the_folder_fits_its_budget() -> None:
    # the app's default (N 64, gridsize 2) opens on the pretrained network's first image
    default = ModelConfig(auto_probe_scale=True)
    assert (default.N, default.gridsize) == (64, 2)
    found = find_pretrained(default)
    assert found is not None and found.name == f"{network_name(64, 2)}.json"
    files = [p for p in PRETRAINED_DIR.iterdir() if p.suffix in (".h5", ".json")]
    assert sum(p.stat().st_size for p in files) <= BUDGET_BYTES
    assert not list(PRETRAINED_DIR.glob("*.checkpoint.npz"))  # checkpoints stay outside


@pytest.mark.parametrize("recipe_path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_a_shipped_network_loads_and_explains_its_family_better_than_an_untrained_one(
    recipe_path: Path,
) -> None:
    recipe = json.loads(recipe_path.read_text())
    assert recipe["format"] == PRETRAIN_FORMAT and not recipe["diverged"]
    config = ModelConfig.from_dict(recipe["model_config"])
    assert recipe_path.stem == network_name(config.N, config.gridsize)
    # the shipped network is the default network of its N and gridsize (any probe)
    assert find_pretrained(ModelConfig(N=config.N, gridsize=config.gridsize)) == recipe_path
    # the command that regenerates it names its steps and seed
    assert f"--steps {recipe['steps']} " in recipe["command"]
    assert f"--seed {recipe['seed']} " in recipe["command"]
    # stored at half precision (the size budget holds four networks only so)
    assert recipe["weights_dtype"] == WEIGHTS_DTYPE
    trained = load_pretrained(recipe_path)

    # a fresh member of the family (a seed that pretraining's streams do not use)
    member = draw_member(np.random.default_rng(991), N=config.N, n_positions=60, photons=1e6)
    data = simulate_member(member)
    probe = data.probe_all_modes
    assert probe is not None
    untrained = build_models(
        trained.config,
        make_probe(CANONICAL_PROBE, config.N),
        CANONICAL_SCALE,
        max_offset_px=trained.max_offset_px,
    )
    residuals = [
        far_field_residual(fit_to_data(b, config, data, probe), data) for b in (trained, untrained)
    ]
    assert np.isfinite(residuals).all()
    assert residuals[0] < 0.5 * residuals[1]
