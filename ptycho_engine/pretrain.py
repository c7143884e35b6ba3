"""Pretraining: one network trained on a stream of simulated scans of the family.

:func:`pretrain` draws members of :mod:`ptycho_engine.family` one after another (object,
contrast, probe and its modes, dose, scan, all at random from one seed), simulates each and
fine-tunes the same network on it with the physics loss: between members only the physics
layer changes (probe, intensity scale), the network's weights carry over
(:func:`ptycho_engine.training.train` with ``bundle``). The result is a weights file
(``<name>.weights.h5``, Keras weights only, read without unpickling anything) and a recipe
(``<name>.json``): the configuration, the seed, every member's recipe, steps and wall time,
enough to make the same network again with the same command.

The networks shipped with the engine lie in :data:`PRETRAINED_DIR`. :func:`find_pretrained`
names the one that fits a :class:`~ptycho_engine.config.ModelConfig` (the same network; the
physics layer may differ), :func:`pretrained_start` builds it with a dataset's probe and
intensity scale (:func:`fit_to_data`), ready for its first image and for fine-tuning.
:func:`far_field_residual` scores how well a network's inference explains a dataset's
diffraction; the recipe keeps that score on fresh members of the family
(:func:`residual_reference`), and :func:`ood_warning` compares the two: data far outside
what the network was trained on explain worse.

This module imports TensorFlow only when a network is built or trained.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ptycho_engine import jsonio
from ptycho_engine.config import DataConfig, ModelConfig, TrainingConfig
from ptycho_engine.errors import ConfigError, PtychoError
from ptycho_engine.family import draw_member, simulate_member
from ptycho_engine.jsonio import read_json
from ptycho_engine.simulate import make_probe

if TYPE_CHECKING:
    from ptycho_engine.grouping import Groups

#: Format of the recipe file of a pretrained network.
PRETRAIN_FORMAT = 1
#: The physics layer a pretrained network is saved with (its weights are replaced when the
#: network meets data: :func:`ptycho_engine.models.rebuild_from`).
CANONICAL_PROBE = "disk"
CANONICAL_SCALE = 1.0
#: The pretrained networks shipped with the engine (package data).
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"
#: ModelConfig fields that only set the physics layer or the first weights: a pretrained
#: network serves any value of them.
PHYSICS_FIELDS = ("probe_scale", "auto_probe_scale", "amp_init_from_probe")
#: Fresh family members the residual reference is measured on, and groups per dataset.
REFERENCE_MEMBERS = 12
RESIDUAL_GROUPS = 64
#: A dataset is out of distribution when its far-field residual is above this many times
#: the 90th percentile of the network's residuals on fresh members of its family.
OOD_FACTOR = 2.0
#: Members of MAE warm-up at the start of a pretraining. Without it (two epochs per member
#: give the default rule no warm-up) the likelihood left the network in the fog: 94 members
#: at N 64, gridsize 2 ended with a flat amplitude of 0.5 and the phase head saturated at pi.
MAE_MEMBERS = 6


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
    reference_members: int = REFERENCE_MEMBERS,
    mae_members: int = MAE_MEMBERS,
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
        Ends the pretraining after the current member; what was trained is written, and the
        recipe's command names the members done (the same network as a run of that many).
    on_member : callable, optional
        Called after each member with its index and its record.
    mae_members : int
        The first members are trained on the amplitude MAE alone (the warm-up that walks
        the network out of the Poisson "fog" plateau), the rest on the likelihood.
    reference_members : int
        Fresh members the network's far-field residual is measured on at the end (the
        reference of :func:`ood_warning`; 0: none).

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
            # the MAE warm-up leaves the fog once, on the first members; then the likelihood
            mae_warmup_epochs=epochs_per_member if index < mae_members else 0,
            early_stopping_patience=0,
            restore_best_weights=False,
            seed=seed + index,
        )
        grouping = DataConfig(seed=seed + index, validation_fraction=0.0)
        # the stop acts between members: a run stopped after k members is the run of k members
        result = run_training(data, model, training, grouping, bundle=bundle)
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
            f"ptycho-engine pretrain --N {N} --gridsize {gridsize} --members {len(records)} "
            f"--epochs-per-member {epochs_per_member} --positions {n_positions} --seed {seed} "
            f"--n-filters-scale {n_filters_scale} --mae-members {mae_members} "
            f"--reference-members {reference_members} "
            f"--out {folder}"
        ),
        "model_config": model.to_dict(),
        "max_offset_px": float(canonical.max_offset_px),
        "seed": seed,
        "planned_members": members,
        "members": records,
        "steps": steps,
        "wall_time_s": time.perf_counter() - start,
    }
    # the network's residual on members it never trained on (another stream of the family)
    if reference_members > 0:
        recipe["residual_reference"] = residual_reference(
            canonical, seed + 1_000_003, n_positions, reference_members
        )
    partial.replace(weights)
    jsonio.write_json(folder / f"{stem}.json", recipe)
    return weights


def residual_reference(
    bundle: Any, seed: int, n_positions: int = 500, members: int = REFERENCE_MEMBERS
) -> dict[str, Any]:
    """The far-field residual (:func:`far_field_residual`) of ``bundle``'s network on
    ``members`` fresh members of the family drawn from ``seed``, and their 90th percentile.
    """
    rng = np.random.default_rng(seed)
    values = []
    doses = []
    for _ in range(members):
        member = draw_member(rng, N=bundle.config.N, n_positions=n_positions)
        data = simulate_member(member)
        probe = data.probe_all_modes
        assert probe is not None  # every member is simulated with its probe
        fitted = fit_to_data(bundle, bundle.config, data, probe)
        values.append(far_field_residual(fitted, data))
        doses.append(member.photons)
    return {
        "seed": seed,
        "members": members,
        "photons": doses,
        "values": values,
        "p90": float(np.percentile(values, 90)),
    }


def far_field_residual(
    bundle: Any,
    data: Any,
    data_config: DataConfig | None = None,
    groups: int = RESIDUAL_GROUPS,
    every: Groups | None = None,
) -> float:
    """How much of the measured diffraction the network's inference leaves unexplained.

    ``(sum (x - a)^2 - sum (y - a)^2) / sum x^2`` over up to ``groups`` groups (evenly
    spaced over the scan), where ``x`` are the measured amplitudes, ``a`` those the network's
    object predicts through the physics layer and ``y`` the square root of one Poisson draw of
    ``a^2``: the squared amplitude error beyond what counting noise alone would leave, as a
    fraction of the measured power (0 for a model that explains the data down to the noise,
    about 1 for one that predicts nothing). Bad pixels are left out. ``every``: the
    :func:`~ptycho_engine.inference.inference_groups` of ``data`` when already made.
    """
    from ptycho_engine.grouping import GroupedPatterns
    from ptycho_engine.inference import inference_groups
    from ptycho_engine.models import ensure_canvas

    if every is None:  # the groups of inference, one per scan position
        every = inference_groups(data, bundle.config.gridsize, data_config or DataConfig())
    rows = np.unique(np.linspace(0, every.n_groups - 1, min(groups, every.n_groups)).astype(int))
    fitted = ensure_canvas(bundle, every.max_offset_px)
    grouped = GroupedPatterns(data.amplitudes, every)
    keep = None if data.bad_pixels is None else (~data.bad_pixels)[None, :, :, None]
    rng = np.random.default_rng(0)
    measured = error = noise = 0.0
    for start in range(0, rows.size, 64):
        x, o = grouped.batch(rows[start : start + 64])
        a = np.asarray(fitted.training([x, o], training=False), np.float64)
        x = np.asarray(x, np.float64)
        y = np.sqrt(rng.poisson(a * a))
        w = 1.0 if keep is None else keep
        measured += float(np.sum(w * x * x))
        error += float(np.sum(w * (x - a) ** 2))
        noise += float(np.sum(w * (y - a) ** 2))
    if measured <= 0:
        return float("nan")
    return (error - noise) / measured


def find_pretrained(config: ModelConfig, folder: str | Path | None = None) -> Path | None:
    """The recipe file of the pretrained network for ``config`` (None when there is none).

    The network must be the same (every field of the config but :data:`PHYSICS_FIELDS`);
    any probe, probe scale and intensity scale will do.
    """
    path = Path(PRETRAINED_DIR if folder is None else folder) / (
        network_name(config.N, config.gridsize) + ".json"
    )
    try:
        trained = ModelConfig.from_dict(_read_recipe(path)["model_config"])
    except (PtychoError, KeyError, TypeError, ValueError):
        return None
    same = {f: getattr(trained, f) for f in PHYSICS_FIELDS}
    return path if dataclasses.replace(config, **same) == trained else None


def _read_recipe(path: str | Path) -> dict[str, Any]:
    """The recipe file at ``path``, read once per version of the file (callers do not
    change it)."""
    resolved = Path(path)
    try:
        stat = resolved.stat()
    except OSError:
        return read_json(resolved)  # its error names the file
    return _recipe_version(str(resolved), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=32)
def _recipe_version(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    return read_json(Path(path))


def fit_to_data(
    bundle: Any,
    config: ModelConfig,
    data: Any,
    probe: np.ndarray,
    data_config: DataConfig | None = None,
    learning_rate: float = TrainingConfig.learning_rate,
    groups: Groups | None = None,
) -> Any:
    """``bundle``'s network with the physics layer of ``data`` and ``probe``: the probe scale
    and the intensity scale that training on ``data`` would use, and an overlap canvas that
    holds its groups (``groups``: the :func:`~ptycho_engine.inference.inference_groups` of
    ``data``, made here when not given). Training started from the result reuses it as it is
    (:func:`ptycho_engine.training.train` with ``bundle``)."""
    from ptycho_engine.inference import inference_groups
    from ptycho_engine.models import intensity_scale_for, rebuild_from
    from ptycho_engine.training import resolve_probe_scale

    resolved = resolve_probe_scale(config, data, probe)
    if groups is None:
        groups = inference_groups(data, config.gridsize, data_config or DataConfig())
    return rebuild_from(
        bundle,
        probe,
        intensity_scale_for(data.photons_per_pattern, config.N),
        max(groups.max_offset_px, bundle.max_offset_px),
        learning_rate,
        config=resolved,
    )


def pretrained_start(
    recipe_path: str | Path,
    config: ModelConfig,
    data: Any,
    probe: np.ndarray,
    data_config: DataConfig | None = None,
    learning_rate: float = TrainingConfig.learning_rate,
    groups: Groups | None = None,
) -> Any:
    """The pretrained network of ``recipe_path`` (:func:`find_pretrained` of ``config``),
    fitted to ``data`` and ``probe`` (:func:`fit_to_data`, with its ``groups``), ready for
    its first image and for fine-tuning."""
    return fit_to_data(
        load_pretrained(recipe_path), config, data, probe, data_config, learning_rate, groups
    )


def ood_warning(recipe_path: str | Path, residual: float) -> str:
    """A warning when ``residual`` (:func:`far_field_residual` of the pretrained network on a
    dataset) is above :data:`OOD_FACTOR` times the 90th percentile of its residuals on the
    family it was trained on ("" when it is not, or the recipe has no reference)."""
    reference = _read_recipe(recipe_path).get("residual_reference")
    if not reference or not np.isfinite(residual):
        return ""
    p90 = float(reference["p90"])
    if residual <= OOD_FACTOR * max(p90, 1e-6):
        return ""
    return (
        f"these data look unlike what the pretrained network {Path(recipe_path).stem} was "
        f"trained on: its far-field residual is {residual:.3g}, {residual / max(p90, 1e-6):.1f}x "
        f"the 90th percentile of its residuals on simulated scans of its family ({p90:.3g}). "
        "Its first image is not to be trusted: fine-tune it on these data (more epochs) or "
        "start from an iterative solver (rPIE or LSQML) and hand its probe to the network"
    )


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
    recipe = _read_recipe(path)
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
