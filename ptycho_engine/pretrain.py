"""Pretraining: one network trained on a stream of simulated scans of the family.

:func:`pretrain` holds a pool of members of :mod:`ptycho_engine.family` (object, contrast,
probe and its modes, dose, scan, all drawn at random from one seed), simulated, and trains one
network on all of them with the physics loss: every optimiser step takes its batch from one
scan of the pool, whose probe and intensity scale are written into the model's physics
layers first (:func:`ptycho_engine.models.assign_physics`), and fresh draws replace the
oldest scans as it goes. The simulations know their truth, so the loss adds a supervised
term (``supervised_weight``): the relative error of the object patches against the true
patches in the network's convention (:func:`_truth`). One model, one Adam and one compiled
step serve the whole stream:
no rebuild, retrace or fresh optimiser between scans. The result is a weights file
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
from ptycho_engine.config import (
    XLA_CHOICES_INVERSE,
    DataConfig,
    ModelConfig,
    TrainingConfig,
    uses_xla,
)
from ptycho_engine.errors import ConfigError, PtychoError
from ptycho_engine.family import Member, draw_member, simulate_member
from ptycho_engine.jsonio import read_json
from ptycho_engine.physics.probe import pad_modes
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
#: Optimiser steps of a pretraining run unless told otherwise.
STEPS = 20_000
#: Scans of the family held at once: every optimiser step takes its batch from one of them,
#: drawn at random, so that one network, one optimiser and one compiled step serve them all.
POOL_SIZE = 16
#: Optimiser steps between two fresh draws; each replaces the oldest scan of the pool, which
#: so lives ``POOL_SIZE * REFRESH_STEPS`` steps and gives about ``REFRESH_STEPS`` batches.
REFRESH_STEPS = 100
#: Optimiser steps of amplitude-MAE warm-up at the start, which walks the network out of the
#: Poisson "fog" plateau before the likelihood takes over (physics.md section 10).
MAE_STEPS = 300
#: Weight of the supervised term of pretraining (:func:`pretrain`'s ``supervised_weight``).
SUPERVISED_WEIGHT = 1.0
#: Settings a recipe lacks when its run was written before they existed, read as the value
#: that run had (a resume compares them).
SETTINGS_BEFORE = {"supervised_weight": 0.0}
#: Optimiser steps between two progress reports, which are also the health checks.
REPORT_STEPS = 100
#: A check finds the network dead when the mean loss since the last check is not finite, or
#: when either head sits at its limit (:func:`ptycho_engine.training.heads_at_limits`) on
#: at least this fraction of the last batch's object pixels: such heads pass no gradient,
#: and a run of 2026-12-04 that went there in 60 steps never came back in 22,000 more. A
#: healthy network has about 0 % there (no object of the family needs the phase beyond
#: 0.99 pi); a dying one passes 10 % within one check. At 90 % (until 2026-12-06) a check
#: on the way down (15 % / 90 %, read as 0.89) passed as healthy, and the run stepped back
#: to it, already dying, three times.
DEAD_FRACTION = 0.1
#: A dead check steps back: the weights and the optimiser's state of the last healthy check
#: are restored and the learning rate is multiplied by this factor.
SETBACK_FACTOR = 0.5
#: Steps back a run may take; at the next dead check it ends with the last healthy network.
MAX_SETBACKS = 6
#: The file beside a network's weights that a run goes on from (:func:`pretrain`'s
#: ``resume``): the weights and Adam's state. It is not part of a shipped network.
CHECKPOINT_SUFFIX = ".checkpoint.npz"
#: The weights file of a pretrained network stores its floating-point arrays at this
#: precision (:func:`store_weights_half`): half the size of float32, so the four networks of
#: N 64 and 128 fit the 25 MB the repository gives them (N 128 is 17.8 MB in float32).
#: Keras reads them into its float32 variables. The checkpoint a run resumes from stays
#: float32.
WEIGHTS_DTYPE = "float16"


def network_name(N: int, gridsize: int) -> str:
    """File stem of the pretrained network for ``N`` and ``gridsize`` (``"pinn-N64-g2"``)."""
    return f"pinn-N{N}-g{gridsize}"


@dataclasses.dataclass
class _Scan:
    """One simulated scan of the pool, ready for batches."""

    probe: np.ndarray
    config: ModelConfig
    intensity_scale: float
    patterns: Any
    max_offset_px: float
    record: dict[str, Any]
    #: The true object patches ``(M, N, N)`` complex64 in the network's convention (scaled as
    #: the counts make the object, :func:`_truth`), and the probe's intensity on the
    #: support ``(N, N)``; None unless the run has a supervised term.
    truth: np.ndarray | None = None
    weight: np.ndarray | None = None

    def targets(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The truth of the groups at ``rows``, ``(B, N, N, C)`` real and imaginary parts,
        each group turned to its definite global phase: the phase of its probe-weighted
        sum is zero (the diffraction does not say the global phase; this convention does)."""
        assert self.truth is not None and self.weight is not None
        idx = self.patterns.groups.indices[rows]
        t = self.truth[idx]  # (B, C, N, N)
        total = np.einsum("bcij,ij->b", t, self.weight)
        turn = np.conj(total) / np.maximum(np.abs(total), 1e-30)
        t = (t * turn[:, None, None, None].astype(np.complex64)).transpose(0, 2, 3, 1)
        return (
            np.ascontiguousarray(t.real, dtype=np.float32),
            np.ascontiguousarray(t.imag, dtype=np.float32),
        )


def _scan(member: Any, model: ModelConfig, step: int, supervised: bool = False) -> _Scan:
    from ptycho_engine.grouping import GroupedPatterns, make_groups
    from ptycho_engine.models import intensity_scale_for
    from ptycho_engine.training import resolve_probe_scale

    data = simulate_member(member)
    probe = data.probe_all_modes
    assert probe is not None  # every member is simulated with its probe
    grouping = DataConfig()
    groups = make_groups(
        data.positions_px, model.gridsize, grouping.neighbor_count, None, member.seed % 2**31
    )
    scan = _Scan(
        probe=probe,
        config=resolve_probe_scale(model, data, probe),
        intensity_scale=intensity_scale_for(data.photons_per_pattern, model.N),
        patterns=GroupedPatterns(data.amplitudes, groups),
        max_offset_px=float(groups.max_offset_px),
        record={"member": member.to_dict(), "first_step": step, "steps": 0},
    )
    if supervised:
        scan.truth, scan.weight = _truth(data, scan)
    return scan


def _truth(data: Any, scan: _Scan) -> tuple[np.ndarray, np.ndarray]:
    """The true patches of a simulated scan in the network's convention, and the probe's
    intensity on the support.

    The network's object ``O`` makes the counts ``s**2 |F(P_n O)|**2 / N**2`` with the
    normalised probe ``P_n``; the simulation made them from the truth ``T`` with its own
    probe and dose, so ``O = k T`` with one ``k`` per scan. By Parseval the counts of a
    pattern sum to ``s**2 k**2 sum |P_n T|**2``: ``k`` is the ratio of the scan's counts to
    that sum at ``k = 1``, over the support the network's patches fill.
    """
    from ptycho_engine.models import normalised_modes
    from ptycho_engine.physics.probe import support_mask
    from ptycho_engine.simulate import object_patches

    n = scan.config.N
    support = support_mask(n, scan.config.pad_object).astype(np.float32)
    truth = object_patches(data.object_gt, data.positions_px, n)
    truth *= support.astype(np.complex64)
    modes = normalised_modes(scan.probe, scan.config.probe_scale)
    weight = np.sum(np.abs(modes) ** 2, axis=0).astype(np.float32) * support
    counts = float(np.sum(np.square(data.amplitudes, dtype=np.float64)))
    modelled = scan.intensity_scale**2 * float(
        np.einsum("mij,ij->", np.abs(truth).astype(np.float64) ** 2, weight)
    )
    truth *= np.complex64(np.sqrt(counts / modelled))
    return truth, weight


def is_dead(loss: float, amplitude_saturated: float, phase_at_limit: float) -> bool:
    """True when a health check (:data:`DEAD_FRACTION`) finds the network dead."""
    if not np.isfinite(loss):
        return True
    return max(amplitude_saturated, phase_at_limit) >= DEAD_FRACTION


def _state(bundle: Any) -> list[np.ndarray]:
    """Copies of the trainable weights and of the optimiser's variables, in their order."""
    net = bundle.training
    return [v.numpy().copy() for v in (*net.trainable_variables, *net.optimizer.variables)]


def _restore(bundle: Any, state: list[np.ndarray]) -> None:
    """Write a :func:`_state` back (into the same network, or one rebuilt from it)."""
    net = bundle.training
    variables = [*net.trainable_variables, *net.optimizer.variables]
    if len(variables) != len(state) or any(
        tuple(v.shape) != a.shape for v, a in zip(variables, state, strict=True)
    ):
        raise ConfigError("pretrain: the saved healthy state does not fit the model")
    for v, a in zip(variables, state, strict=True):
        v.assign(a)


def _carry_optimizer(source: Any, target: Any) -> None:
    """Give ``target``'s Adam the state of ``source``'s (models of the same network, whose
    trainable variables come in the same order)."""
    variables = target.training.trainable_variables
    target.training.optimizer.build(variables)
    old, new = source.training.optimizer.variables, target.training.optimizer.variables
    if len(old) != len(new) or any(a.shape != b.shape for a, b in zip(old, new, strict=True)):
        raise ConfigError("pretrain: the rebuilt model's optimiser does not match the old one")
    for a, b in zip(new, old, strict=True):
        a.assign(b)


def pretrain(
    out_dir: str | Path,
    N: int = ModelConfig.N,
    gridsize: int = ModelConfig.gridsize,
    steps: int = STEPS,
    pool_size: int = POOL_SIZE,
    refresh_steps: int = REFRESH_STEPS,
    n_positions: int = 500,
    seed: int = 0,
    n_filters_scale: int = ModelConfig.n_filters_scale,
    batch_size: int = TrainingConfig.batch_size,
    learning_rate: float = TrainingConfig.learning_rate,
    mae_steps: int = MAE_STEPS,
    stop_event: threading.Event | None = None,
    on_progress: Callable[[dict[str, Any]], object] | None = None,
    reference_members: int = REFERENCE_MEMBERS,
    resume: bool = False,
    jit_compile: bool | None = TrainingConfig.jit_compile,
    supervised_weight: float = SUPERVISED_WEIGHT,
) -> Path:
    """Pretrain one network and write ``<out_dir>/<network_name>.weights.h5`` and ``.json``.

    A pool of ``pool_size`` simulated scans of the family is held in memory. Every
    optimiser step takes a batch of groups from one scan of the pool, drawn at random; its
    probe and intensity scale are written into the one model's physics layers
    (:func:`~ptycho_engine.models.assign_physics`), so one Adam and one compiled step serve
    every scan. Every ``refresh_steps`` steps a fresh draw replaces the oldest scan. The
    first ``mae_steps`` steps train on the amplitude MAE, the rest on the Poisson likelihood
    (the default loss of :class:`~ptycho_engine.config.TrainingConfig`).

    Every :data:`REPORT_STEPS` steps a health check looks at the loss and at the heads on
    the last batch (:func:`is_dead`). A dead network steps back: the weights and Adam's
    state of the last healthy check come back and the learning rate is multiplied by
    :data:`SETBACK_FACTOR` (the recipe lists every setback). After :data:`MAX_SETBACKS`
    setbacks the next dead check ends the run with the last healthy network.

    Parameters
    ----------
    out_dir : path
        Folder of the two files (made if missing; existing files of the same name are
        replaced only once the new ones are complete).
    N, gridsize, n_filters_scale : int
        The network (the default network of :class:`~ptycho_engine.config.ModelConfig`).
    steps : int
        Optimiser steps.
    pool_size, refresh_steps, n_positions : int
        Scans held at once, steps between fresh draws, positions of each scan.
    seed : int
        Seed of the draws, of the batches and of the weights.
    batch_size, learning_rate, mae_steps
        Groups per step, Adam's rate, steps of MAE warm-up.
    stop_event : threading.Event, optional
        Ends the pretraining before the next step; what was trained is written, and the
        recipe's command names the steps done: the same draws and batches in the same
        order, so it makes the same network.
    on_progress : callable, optional
        Called every :data:`REPORT_STEPS` steps (and at the end) with a record: ``step``,
        ``loss`` (the mean since the last report, the supervised term included),
        ``supervised_error`` (the mean of that term's relative error alone, before its
        weight; None without the term), ``stage``, ``members`` (drawn so far),
        ``amplitude_saturated`` and ``phase_at_limit`` (the fractions of the last batch's
        object pixels where the heads sit at their limits), ``setback`` (None, or the step
        whose network came back), ``learning_rate`` (from now on), ``diverged`` (True: the
        run ends here with the network of that step), ``elapsed_s``.
    reference_members : int
        Fresh members the network's far-field residual is measured on at the end (the
        reference of :func:`ood_warning`; 0: none).
    resume : bool
        Go on from the run that ``out_dir`` holds, up to ``steps`` steps in all: its weights,
        Adam's state, learning rate, pool of scans and random streams come back from its
        checkpoint (``<network_name>.checkpoint.npz``, written beside the weights at the
        end of every run, and the recipe's ``checkpoint`` block), so that chunks of a run
        make the network of one run of their summed steps. The settings must be the run's.
    jit_compile : bool or None
        Compile the step with XLA (:func:`~ptycho_engine.config.uses_xla`; the default is
        :attr:`~ptycho_engine.config.TrainingConfig.jit_compile`'s). It changes the time a
        step takes, not the network; the recipe records it (``jit_compile``, and ``--xla``
        in its command).
    supervised_weight : float
        Weight of the supervised term added to the physics loss on every step: the relative
        error of the object patches against the simulation's truth
        (:func:`~ptycho_engine.training.supervised_loss`). 0: the physics loss alone.

    Returns
    -------
    Path
        The weights file.
    """
    import tensorflow as tf

    from ptycho_engine.family import MAX_PROBE_MODES
    from ptycho_engine.models import assign_physics, build_models, rebuild_from
    from ptycho_engine.physics.probe import support_mask
    from ptycho_engine.training import heads_at_limits, make_train_step

    for name, value in (
        ("steps", steps),
        ("pool_size", pool_size),
        ("refresh_steps", refresh_steps),
        ("batch_size", batch_size),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"pretrain: {name} = {value!r} is invalid: expected an integer >= 1")
    if not (isinstance(supervised_weight, (int, float)) and 0 <= supervised_weight < np.inf):
        raise ConfigError(
            f"pretrain: supervised_weight = {supervised_weight!r} is invalid: expected a "
            "number >= 0"
        )
    supervised = supervised_weight > 0
    if not isinstance(mae_steps, int) or mae_steps < 0:
        raise ConfigError(
            f"pretrain: mae_steps = {mae_steps!r} is invalid: expected an integer >= 0"
        )
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    model = ModelConfig(
        N=N, gridsize=gridsize, n_filters_scale=n_filters_scale, auto_probe_scale=True
    )
    defaults = TrainingConfig()
    draws = np.random.default_rng(seed)
    batches = np.random.default_rng([seed, 1])
    start = time.perf_counter()
    stem = network_name(N, gridsize)
    # the run's settings: written into the recipe once, and what a resume must match
    settings = {
        "seed": seed,
        "pool_size": pool_size,
        "refresh_steps": refresh_steps,
        "n_positions": n_positions,
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "mae_steps": mae_steps,
        "supervised_weight": float(supervised_weight),
    }
    earlier: dict[str, Any] | None = None
    if resume:
        earlier, saved = _read_checkpoint(folder, stem, model, settings, steps)
        mark = earlier["checkpoint"]
        draws.bit_generator.state = mark["draws"]
        batches.bit_generator.state = mark["batches"]
        records = list(earlier["members"])
        slots = [int(k) for k in mark["pool"]]
        pool = []
        for k in slots:
            scan = _scan(
                Member(**records[k]["member"]), model, records[k]["first_step"], supervised
            )
            scan.record = records[k]
            pool.append(scan)
        oldest = int(mark["oldest"])
        max_offset = float(mark["max_offset_px"])
    else:
        pool = [
            _scan(draw_member(draws, N=N, n_positions=n_positions), model, 0, supervised)
            for _ in range(pool_size)
        ]
        records = [scan.record for scan in pool]
        slots = list(range(pool_size))
        oldest = 0
        max_offset = max(scan.max_offset_px for scan in pool)

    # the model holds the family's most modes; a scan with fewer leaves the rest zero
    first = pool[0]
    rate = float(learning_rate if earlier is None else earlier["final_learning_rate"])
    bundle = build_models(
        first.config,
        pad_modes(first.probe, MAX_PROBE_MODES),
        first.intensity_scale,
        max_offset,
        rate,
        seed,
    )
    if earlier is not None:
        bundle.training.optimizer.build(bundle.training.trainable_variables)
        _restore(bundle, saved)
    losses: list[float] = []
    errors: list[float] = []  # the supervised term's error alone, step by step
    done = 0 if earlier is None else int(earlier["steps"])
    # the steps of this run (a resumed one does what is left)
    xla = uses_xla(jit_compile, steps - done)
    train_step = make_train_step(bundle, xla, supervised=supervised)
    stage = "mae-warmup" if mae_steps > done else "main"

    support = support_mask(N, model.pad_object)

    healthy = (done, _state(bundle))
    setbacks: list[dict[str, Any]] = [] if earlier is None else list(earlier["setbacks"])
    diverged = False
    earlier_s = 0.0 if earlier is None else float(earlier["wall_time_s"])
    last_error: float | None = None

    def check(x: np.ndarray, o: np.ndarray) -> None:
        """The health check and progress report of the steps since the last one."""
        nonlocal healthy, rate, diverged, last_error
        mean_loss = float(np.mean(losses)) if losses else float("nan")
        mean_error = float(np.mean(errors)) if errors else None
        last_error = mean_error
        # the heads on the last batch: a network whose heads sit at their limits passes
        # no gradient and learns nothing more
        amp_saturated, phase_at_limit = heads_at_limits(bundle, x, o, support)
        setback = None
        if not is_dead(mean_loss, amp_saturated, phase_at_limit):
            healthy = (done, _state(bundle))
        else:
            setback = healthy[0]
            _restore(bundle, healthy[1])
            if len(setbacks) >= MAX_SETBACKS:
                diverged = True
            else:
                rate *= SETBACK_FACTOR
            bundle.training.optimizer.learning_rate.assign(rate)
            setbacks.append(
                {
                    "step": done,
                    "restored_step": setback,
                    "loss": mean_loss,
                    "amplitude_saturated": amp_saturated,
                    "phase_at_limit": phase_at_limit,
                    "learning_rate": rate,
                }
            )
        if on_progress is not None:
            on_progress(
                {
                    "step": done,
                    "loss": mean_loss,
                    "supervised_error": mean_error,
                    "stage": stage,
                    "members": len(records),
                    "amplitude_saturated": amp_saturated,
                    "phase_at_limit": phase_at_limit,
                    "setback": setback,
                    "learning_rate": rate,
                    "diverged": diverged,
                    "elapsed_s": earlier_s + time.perf_counter() - start,
                }
            )
        losses.clear()
        errors.clear()

    w_sup = tf.constant(supervised_weight, tf.float32)
    first_index = done
    for index in range(first_index, steps):
        if diverged or (stop_event is not None and stop_event.is_set()):
            break
        if index and index % refresh_steps == 0:
            fresh = _scan(
                draw_member(draws, N=N, n_positions=n_positions), model, index, supervised
            )
            pool[oldest] = fresh
            slots[oldest] = len(records)
            records.append(fresh.record)
            if fresh.max_offset_px > bundle.max_offset_px:
                # a larger overlap canvas: the same network, the optimiser's state carried
                grown = rebuild_from(
                    bundle,
                    pad_modes(fresh.probe, MAX_PROBE_MODES),
                    fresh.intensity_scale,
                    fresh.max_offset_px,
                    rate,
                    config=fresh.config,
                )
                _carry_optimizer(bundle, grown)
                bundle, train_step = grown, make_train_step(grown, xla, supervised=supervised)
            oldest = (oldest + 1) % pool_size
        scan = pool[int(batches.integers(pool_size))]
        bundle = assign_physics(bundle, scan.probe, scan.intensity_scale, scan.config)
        n_groups = len(scan.patterns)
        rows = batches.choice(n_groups, batch_size, replace=n_groups < batch_size)
        rows = np.sort(rows)
        x, o = scan.patterns.batch(rows)
        stage = "mae-warmup" if index < mae_steps else "main"
        weights = (0.0, 1.0)
        if stage == "main":
            weights = (defaults.nll_weight, defaults.mae_weight)
        extra: tuple[Any, ...] = ()
        if supervised:
            t_re, t_im = scan.targets(rows)
            extra = (
                tf.convert_to_tensor(t_re),
                tf.convert_to_tensor(t_im),
                tf.convert_to_tensor(scan.weight),
                w_sup,
            )
        out = train_step(
            tf.convert_to_tensor(x, tf.float32),
            tf.convert_to_tensor(o, tf.float32),
            tf.constant(weights[0], tf.float32),
            tf.constant(weights[1], tf.float32),
            *extra,
        )
        if supervised:
            out, error = out
            errors.append(float(error))
        losses.append(float(out))
        scan.record["steps"] += 1
        done = index + 1
        if done % REPORT_STEPS == 0:
            check(x, o)
    if done == first_index:
        raise ConfigError("pretrain: stopped before the first step: nothing to write")
    if losses:
        check(x, o)
    weights_path = folder / f"{stem}.weights.h5"
    partial = folder / f"{stem}.partial.weights.h5"
    # saved with a canonical physics layer (one disk probe, intensity scale 1), so that
    # load_pretrained can build the same model before any data is at hand
    canonical = rebuild_from(bundle, make_probe(CANONICAL_PROBE, N), CANONICAL_SCALE, config=model)
    canonical.save_weights(partial)
    store_weights_half(partial)
    canonical.load_weights(partial)  # the residual reference below is the shipped network's
    recipe = {
        "format": PRETRAIN_FORMAT,
        "command": (
            f"ptycho-engine pretrain --N {N} --gridsize {gridsize} --steps {done} "
            f"--pool {pool_size} --refresh-steps {refresh_steps} --positions {n_positions} "
            f"--seed {seed} --n-filters-scale {n_filters_scale} --batch-size {batch_size} "
            f"--learning-rate {learning_rate:g} --mae-steps {mae_steps} "
            f"--reference-members {reference_members} "
            f"--supervised-weight {supervised_weight:g} "
            f"--xla {XLA_CHOICES_INVERSE[jit_compile]} --out {folder}"
        ),
        "model_config": model.to_dict(),
        "weights_dtype": WEIGHTS_DTYPE,
        "max_offset_px": float(canonical.max_offset_px),
        **settings,  # the run's settings, which a resume checks against
        "planned_steps": steps,
        "steps": done,
        "jit_compile": xla,  # this run's (a resumed run may differ from earlier chunks)
        "final_learning_rate": rate,  # lowered by every setback
        # the supervised term's error over the last report's steps (None without the term)
        "final_supervised_error": last_error,
        "setbacks": setbacks,
        "diverged": diverged,
        "members": records,
        "wall_time_s": earlier_s + time.perf_counter() - start,
        "resumed_at_steps": [
            *(earlier or {}).get("resumed_at_steps", []),
            *([first_index] if earlier is not None else []),
        ],
        # where a resumed run goes on from (pretrain(resume=True)); the weights and Adam's
        # state of this very step are the checkpoint file's arrays, in _state's order
        "checkpoint": {
            "steps": done,
            "draws": draws.bit_generator.state,
            "batches": batches.bit_generator.state,
            "pool": slots,
            "oldest": oldest,
            "max_offset_px": float(bundle.max_offset_px),
        },
    }
    # the network's residual on members it never trained on (another stream of the family)
    if reference_members > 0:
        recipe["residual_reference"] = residual_reference(
            canonical, seed + 1_000_003, n_positions, reference_members
        )
    if diverged:
        recipe.pop("checkpoint")  # a run that died for good does not go on
    else:
        _write_checkpoint(folder / f"{stem}{CHECKPOINT_SUFFIX}", _state(bundle))
    partial.replace(weights_path)
    jsonio.write_json(folder / f"{stem}.json", recipe)
    return weights_path


def store_weights_half(path: str | Path) -> None:
    """Rewrite a Keras weights file (``.weights.h5``) with its floating-point arrays at
    :data:`WEIGHTS_DTYPE`; groups, attributes and other arrays are kept as they are. The file
    is replaced only once the new one is complete.

    Raises
    ------
    ConfigError
        An array with a finite value beyond that precision's range (its name says which).
    """
    import h5py

    source = Path(path)
    half = np.dtype(WEIGHTS_DTYPE)
    partial = source.with_name(source.name + ".half")

    def copy(src: Any, dst: Any) -> None:
        dst.attrs.update(src.attrs)
        for key, item in src.items():
            if isinstance(item, h5py.Group):
                copy(item, dst.create_group(key))
                continue
            value = item[()]
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                finite = value[np.isfinite(value)]
                if finite.size and float(np.max(np.abs(finite))) > float(np.finfo(half).max):
                    raise ConfigError(
                        f"{source}: {item.name}: expected values within {WEIGHTS_DTYPE}'s "
                        f"range (|x| <= {float(np.finfo(half).max):g}), found "
                        f"{float(np.max(np.abs(finite))):g}"
                    )
                value = value.astype(half)
            dst.create_dataset(key, data=value)
            dst[key].attrs.update(item.attrs)

    try:
        with h5py.File(source, "r") as src, h5py.File(partial, "w") as dst:
            copy(src, dst)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(source)


def _write_checkpoint(path: Path, state: list[np.ndarray]) -> None:
    from ptycho_engine.runs import atomic_write

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(handle, *state)  # arr_0, arr_1, ... in _state's order

    atomic_write(path, write, ".npz")


def _read_checkpoint(
    folder: Path, stem: str, model: ModelConfig, settings: dict[str, Any], steps: int
) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The recipe and the saved state of the run to resume, checked against its settings."""
    recipe_path = folder / f"{stem}.json"
    recipe = read_json(recipe_path)  # not the cached copy: its member records go on counting
    if recipe.get("format") != PRETRAIN_FORMAT:
        raise ConfigError(f"{recipe_path}: not a pretraining recipe ({PRETRAIN_FORMAT})")
    mark = recipe.get("checkpoint")
    path = folder / f"{stem}{CHECKPOINT_SUFFIX}"
    if not isinstance(mark, dict) or not path.is_file():
        raise ConfigError(
            f"{recipe_path}: no checkpoint to resume from (a run that died for good, or one "
            f"written before 2026-12-07); expected the recipe's 'checkpoint' and {path.name}"
        )
    if recipe.get("model_config") != model.to_dict():
        raise ConfigError(
            f"{recipe_path}: model_config is {recipe.get('model_config')}, not the network "
            f"asked for ({model.to_dict()}): resume with the run's --N, --gridsize and "
            "--n-filters-scale"
        )
    for name, value in settings.items():
        if recipe.get(name, SETTINGS_BEFORE.get(name)) != value:
            raise ConfigError(
                f"{recipe_path}: {name} is {recipe.get(name)!r}, not {value!r}: resume with "
                "the run's settings (its recipe's command)"
            )
    if int(mark.get("steps", -1)) != int(recipe.get("steps", -2)):
        raise ConfigError(f"{recipe_path}: the checkpoint is not of the recipe's last step")
    if steps <= int(recipe["steps"]):
        raise ConfigError(
            f"pretrain: steps = {steps} is invalid: the run in {folder} has done "
            f"{recipe['steps']} steps already; ask for more in all"
        )
    with np.load(path, allow_pickle=False) as arrays:
        state = [arrays[f"arr_{k}"] for k in range(len(arrays.files))]
    return recipe, state


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
    max_groups: int = RESIDUAL_GROUPS,
    groups: Groups | None = None,
) -> float:
    """How much of the measured diffraction the network's inference leaves unexplained.

    ``(sum (x - a)^2 - sum (y - a)^2) / sum x^2`` over up to ``max_groups`` groups (evenly
    spaced over the scan), where ``x`` are the measured amplitudes, ``a`` those the network's
    object predicts through the physics layer and ``y`` the square root of one Poisson draw of
    ``a^2``: the squared amplitude error beyond what counting noise alone would leave, as a
    fraction of the measured power (0 for a model that explains the data down to the noise,
    about 1 for one that predicts nothing). Bad pixels are left out. ``groups``: the
    :func:`~ptycho_engine.inference.inference_groups` of ``data`` when already made.
    """
    from ptycho_engine.grouping import GroupedPatterns
    from ptycho_engine.inference import inference_groups
    from ptycho_engine.models import ensure_canvas

    if groups is None:  # the groups of inference, one per scan position
        groups = inference_groups(data, bundle.config.gridsize, data_config or DataConfig())
    count = min(max_groups, groups.n_groups)
    rows = np.unique(np.linspace(0, groups.n_groups - 1, count).astype(int))
    fitted = ensure_canvas(bundle, groups.max_offset_px)
    grouped = GroupedPatterns(data.amplitudes, groups)
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
        version = _version(resolved)
    except OSError:
        return read_json(resolved)  # its error names the file
    return _recipe_version(str(resolved), version)


@functools.lru_cache(maxsize=32)
def _recipe_version(path: str, version: tuple[tuple[int, int], ...]) -> dict[str, Any]:
    return read_json(Path(path))


def _version(*paths: Path) -> tuple[tuple[int, int], ...]:
    """The version of files as the caches above key them: each one's modification time (ns)
    and size. Raises OSError when one is missing."""
    return tuple((stat.st_mtime_ns, stat.st_size) for stat in (p.stat() for p in paths))


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
        _loaded(recipe_path), config, data, probe, data_config, learning_rate, groups
    )


def prefetch(config: ModelConfig) -> Path | None:
    """Build and read the pretrained network for ``config`` now, into the cache that
    :func:`pretrained_start` takes it from, so that a first image that follows does not wait
    for it (the app does this while a file is read). Returns its recipe file, None when none
    is shipped for ``config``; errors are raised as :func:`load_pretrained` raises them."""
    path = find_pretrained(config)
    if path is not None:
        _loaded(path)
    return path


def _loaded(recipe_path: str | Path) -> Any:
    """:func:`load_pretrained`'s bundle, kept while its two files are unchanged, so that the
    run after the first image (and the next file, or a return to this N and gridsize) does
    not build and read the network again. Nothing trains it in place: :func:`fit_to_data`
    copies its weights into new models."""
    path = Path(recipe_path).resolve()
    try:
        version = _version(path, _weights_path(path))
    except OSError:
        return load_pretrained(path)  # its error names the missing file
    return _loaded_version(str(path), version)


@functools.lru_cache(maxsize=4)
def _loaded_version(path: str, version: tuple[tuple[int, int], ...]) -> Any:
    return load_pretrained(path)


def _weights_path(recipe_path: Path) -> Path:
    """The weights file beside a recipe ``<name>.json``: ``<name>.weights.h5``."""
    return recipe_path.with_name(recipe_path.name[: -len(".json")] + ".weights.h5")


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
    weights = _weights_path(path)
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
