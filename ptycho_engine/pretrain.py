"""Pretraining: one network trained on a stream of simulated scans of the family.

:func:`pretrain` draws members of :mod:`ptycho_engine.family` one after another (object,
contrast, probe and its modes, dose, scan, all at random from one seed), simulates each and
fine-tunes the same network on it with the physics loss: between members only the physics
layer changes (probe, intensity scale), the network's weights carry over
(:func:`ptycho_engine.training.train` with ``bundle``). The result is a weights file
(``<name>.weights.h5``, Keras weights only, read without unpickling anything) and a recipe
(``<name>.json``): the configuration, the seed, every member's recipe, steps and wall time,
enough to make the same network again with the same command.

This module imports TensorFlow only when :func:`pretrain` runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine import jsonio
from ptycho_engine.config import DataConfig, ModelConfig, TrainingConfig
from ptycho_engine.errors import ConfigError
from ptycho_engine.family import draw_member, simulate_member
from ptycho_engine.jsonio import read_json
from ptycho_engine.simulate import make_probe

#: Format of the recipe file of a pretrained network.
PRETRAIN_FORMAT = 1
#: The physics layer a pretrained network is saved with (its weights are replaced when the
#: network meets data: :func:`ptycho_engine.models.rebuild_from`).
CANONICAL_PROBE = "disk"
CANONICAL_SCALE = 1.0


def network_name(N: int, gridsize: int) -> str:
    """File stem of the pretrained network for ``N`` and ``gridsize`` (``"pinn-N64-g2"``)."""
    return f"pinn-N{N}-g{gridsize}"


def pretrain(
    out_dir: str | Path,
    N: int = 64,
    gridsize: int = 2,
    members: int = 100,
    epochs_per_member: int = 2,
    n_positions: int = 500,
    seed: int = 0,
    n_filters_scale: int = ModelConfig.n_filters_scale,
    stop_event: threading.Event | None = None,
    on_member: Callable[[int, dict[str, Any]], object] | None = None,
) -> Path:
    """Pretrain one network and write ``<out_dir>/<network_name>.weights.h5`` and ``.json``.

    Parameters
    ----------
    out_dir : path
        Folder of the two files (made if missing; existing files of the same name are
        replaced only once the new ones are complete).
    N, gridsize, n_filters_scale : int
        The network.
    members, epochs_per_member, n_positions : int
        Scans drawn, epochs trained on each, positions of each scan.
    seed : int
        Seed of the draws (and of the weights).
    stop_event : threading.Event, optional
        Ends the pretraining after the current member's step; what was trained is written.
    on_member : callable, optional
        Called after each member with its index and its record.

    Returns
    -------
    Path
        The weights file.
    """
    from ptycho_engine.training import run_training

    for name, value in (("members", members), ("epochs_per_member", epochs_per_member)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"pretrain: {name} = {value!r} is invalid: expected an integer >= 1")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    model = ModelConfig(
        N=N, gridsize=gridsize, n_filters_scale=n_filters_scale, auto_probe_scale=True
    )
    rng = np.random.default_rng(seed)
    bundle = None
    records: list[dict[str, Any]] = []
    start = time.perf_counter()
    steps = 0
    for index in range(members):
        if stop_event is not None and stop_event.is_set():
            break
        member = draw_member(rng, N=N, n_positions=n_positions)
        data = simulate_member(member)
        training = TrainingConfig(
            epochs=epochs_per_member,
            preview_every=0,
            # the MAE warm-up leaves the fog once, on the first member; then the likelihood
            mae_warmup_epochs=None if bundle is None else 0,
            early_stopping_patience=0,
            restore_best_weights=False,
            seed=seed + index,
        )
        grouping = DataConfig(seed=seed + index, validation_fraction=0.0)
        result = run_training(data, model, training, grouping, stop_event=stop_event, bundle=bundle)
        bundle = result.bundle
        steps += result.steps
        last = result.history[-1] if result.history else None
        record = {
            "member": member.to_dict(),
            "steps": result.steps,
            "loss": last.loss if last is not None else float("nan"),
            "probe_scale": bundle.config.probe_scale,
            "elapsed_s": time.perf_counter() - start,
        }
        records.append(record)
        if on_member is not None:
            on_member(index, record)
        if result.stopped:
            break
    if bundle is None:
        raise ConfigError("pretrain: stopped before the first member: nothing to write")
    from ptycho_engine.models import rebuild_from

    stem = network_name(N, gridsize)
    weights = folder / f"{stem}.weights.h5"
    partial = folder / f"{stem}.partial.weights.h5"
    # saved with a canonical physics layer (one disk probe, intensity scale 1), so that
    # load_pretrained can build the same model before any data is at hand
    canonical = rebuild_from(bundle, make_probe(CANONICAL_PROBE, N), CANONICAL_SCALE, config=model)
    canonical.save_weights(partial)
    recipe = {
        "format": PRETRAIN_FORMAT,
        "command": (
            f"ptycho-engine pretrain --N {N} --gridsize {gridsize} --members {members} "
            f"--epochs-per-member {epochs_per_member} --positions {n_positions} --seed {seed} "
            f"--n-filters-scale {n_filters_scale} --out {folder}"
        ),
        "model_config": model.to_dict(),
        "max_offset_px": float(canonical.max_offset_px),
        "seed": seed,
        "members": records,
        "steps": steps,
        "wall_time_s": time.perf_counter() - start,
    }
    partial.replace(weights)
    jsonio.write_json(folder / f"{stem}.json", recipe)
    return weights


def load_pretrained(recipe_path: str | Path) -> Any:
    """The pretrained network of a recipe file (``<name>.json`` beside its weights), as a
    :class:`~ptycho_engine.models.ModelBundle` with the canonical physics layer: give it the
    data's probe and scale with :func:`ptycho_engine.models.rebuild_from` (or pass it to
    training as ``bundle``, which does).

    Raises
    ------
    ConfigError
        A recipe of another format, or no weights file beside it.
    """
    from ptycho_engine.models import build_models

    path = Path(recipe_path)
    recipe = read_json(path)
    if recipe.get("format") != PRETRAIN_FORMAT:
        raise ConfigError(
            f"{path}: format {recipe.get('format')!r} is not a pretrained network's "
            f"({PRETRAIN_FORMAT})"
        )
    weights = path.with_name(path.name[: -len(".json")] + ".weights.h5")
    if not weights.is_file():
        raise ConfigError(f"{path}: no weights file {weights.name} beside it")
    config = ModelConfig.from_dict(recipe["model_config"])
    bundle = build_models(
        config,
        make_probe(CANONICAL_PROBE, config.N),
        CANONICAL_SCALE,
        max_offset_px=float(recipe["max_offset_px"]),
    )
    bundle.load_weights(weights)
    return bundle
