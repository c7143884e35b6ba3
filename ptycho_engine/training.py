"""Training: a generator of progress snapshots (physics.md sections 3 and 10).

:func:`train` yields a :class:`~ptycho_engine.data.TrainingSnapshot` after every epoch and
returns a :class:`TrainingResult` holding the trained models. It checks a
``threading.Event`` before every optimiser step, so a stop takes effect within one batch.

Default recipe, designed against the "fog" failure (physics.md section 10):

* the amplitude head starts at the intensity-matched level with a near-zero kernel
  (:func:`~ptycho_engine.models.build_models`);
* the first :attr:`~ptycho_engine.config.TrainingConfig.warmup_epochs` epochs optimise the
  MAE of amplitudes alone, then the weighted loss ``nll_weight * NLL + mae_weight * MAE``
  takes over;
* Adam, with the learning rate reduced on a plateau of the monitored loss (validation loss
  when there is a validation split). The patience counts epochs but never fewer than
  ``PLATEAU_MIN_STEPS`` optimiser steps: quality follows steps, not epochs (physics.md
  section 10), and a small scan has epochs of a few steps whose loss noise would otherwise
  cut the rate to its floor within a few dozen steps (measured on the 169-pattern tike
  file, 11 steps per epoch, default settings, 1,100 steps: with a patience of 3 epochs the
  rate was at its 1e-5 floor after 550 steps and amplitude SSIM stalled at 0.29; with 100
  steps, 0.43; with 300 steps, 0.53).

Loss units: the NLL is the per-pixel Poisson NLL ``lam - y log(lam + eps)`` in counts divided
by ``s**2`` (a constant), and the MAE is in normalised amplitude units, so both have the same
size at every dose and Adam sees comparable gradients across the warm-up switch.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Collection, Generator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from ptycho_engine.config import (
    EARLY_STOP_MIN_STEPS,
    PLATEAU_MIN_STEPS,
    DataConfig,
    ModelConfig,
    TrainingConfig,
    uses_xla,
)
from ptycho_engine.data import (
    DiffractionData,
    HealthCheck,
    StepProgress,
    StitchSnapshot,
    TrainingSnapshot,
)
from ptycho_engine.errors import DataError
from ptycho_engine.grouping import GroupedPatterns, Groups, make_groups
from ptycho_engine.inference import DEFAULT_WINDOW, inference_groups, reconstruct
from ptycho_engine.models import (
    ModelBundle,
    build_models,
    ensure_canvas,
    intensity_scale_for,
    normalised_modes,
    rebuild_from,
)
from ptycho_engine.physics.losses import amplitude_mae, poisson_nll
from ptycho_engine.physics.probe import (
    auto_probe_scale,
    support_mask,
)
from ptycho_engine.stitching import DEFAULT_REMOVE_GRID
from ptycho_engine.streams import drain

SATURATION_LEVEL = 0.99


def plateau_patience(patience_epochs: int, steps_per_epoch: int) -> int:
    """Epochs without improvement before the learning rate is reduced.

    ``patience_epochs`` (0 disables the reduction), raised so that the patience spans at
    least :data:`PLATEAU_MIN_STEPS` optimiser steps.
    """
    return _epochs_spanning(patience_epochs, steps_per_epoch, PLATEAU_MIN_STEPS)


def early_stopping_patience(patience_epochs: int, steps_per_epoch: int) -> int:
    """Epochs without a new best validation loss before training stops early.

    ``patience_epochs`` (0 disables early stopping), raised so that the patience spans at
    least :data:`EARLY_STOP_MIN_STEPS` optimiser steps.
    """
    return _epochs_spanning(patience_epochs, steps_per_epoch, EARLY_STOP_MIN_STEPS)


def _epochs_spanning(patience_epochs: int, steps_per_epoch: int, min_steps: int) -> int:
    # a patience in epochs (0: off), raised to span at least min_steps optimiser steps
    if patience_epochs <= 0:
        return 0
    return max(patience_epochs, math.ceil(min_steps / max(steps_per_epoch, 1)))


@dataclass(frozen=True, eq=False)
class TrainingResult:
    """What a finished (or stopped) training run returns.

    Attributes
    ----------
    bundle : ModelBundle
        The trained models.
    groups : Groups
        Training groups.
    history : tuple of TrainingSnapshot
        Every epoch's snapshot (previews dropped, to keep memory flat).
    stopped : bool
        True when stopped by the event before the last epoch.
    elapsed_s : float
        Wall time from the start to the end of training, previews included.
    steps : int
    preview_s : float
        Part of ``elapsed_s`` spent making previews.
    early_stopped_epoch : int
        The epoch after which training stopped early because the validation loss had not
        improved for the patience (0 when it ran all its epochs or was stopped by the user).
    restored_epoch : int
        The epoch whose weights the model was given back at the end (the best validation
        loss of the likelihood stage), 0 when the model holds its last weights.
    best_val_loss, last_val_loss : float
        With a restore: the validation loss of the restored weights and that of the last
        epoch's weights before the restore (NaN otherwise).
    jit_compiled : bool
        Whether the training step ran compiled by XLA.
    """

    bundle: ModelBundle
    groups: Groups
    history: tuple[TrainingSnapshot, ...]
    stopped: bool
    elapsed_s: float
    steps: int
    preview_s: float = 0.0
    early_stopped_epoch: int = 0
    restored_epoch: int = 0
    best_val_loss: float = math.nan
    last_val_loss: float = math.nan
    jit_compiled: bool = False


def _split(groups: Groups, fraction: float, seed: int) -> tuple[Groups, Groups | None]:
    n_val = round(groups.n_groups * fraction)
    if n_val == 0 or groups.n_groups - n_val < 1:
        return groups, None
    order = np.random.default_rng(seed + 7919).permutation(groups.n_groups)
    return groups.subset(np.sort(order[n_val:])), groups.subset(np.sort(order[:n_val]))


#: With ``"pixels"`` validation, the held-out pixels of this many groups at least (all of
#: them on a smaller scan), or of ``validation_fraction`` of the groups when that is more,
#: give the validation loss: one batch of 16 on a small scan.
VALIDATION_MIN_GROUPS = 16


@dataclass(frozen=True)
class ValidationSplit:
    """What :func:`train` fits and what it validates on (:func:`validation_split`).

    Attributes
    ----------
    train_groups : Groups
        The groups the optimiser steps on.
    val_groups : Groups or None
        The groups the validation loss is measured on (None: no validation).
    train_ignored, val_ignored : ndarray, (N, N) bool, or None
        The detector pixels left out of every group's training loss and validation loss
        (None: none); with held-out pixel sets, the bad pixels, which the sets never hold.
    held_out_pixels : int
        Pixels held out of each group's training loss for the validation (0 with
        ``"groups"``).
    pixel_sets : ndarray, (K, N, N) bool, or None
        With ``"pixels"``: disjoint random sets of the good detector pixels, which together
        hold every good pixel; each group holds out one of them.
    train_set, val_set : ndarray of int or None
        The set each of ``train_groups`` and of ``val_groups`` holds out.
    """

    train_groups: Groups
    val_groups: Groups | None
    train_ignored: np.ndarray | None
    val_ignored: np.ndarray | None
    held_out_pixels: int = 0
    pixel_sets: np.ndarray | None = None
    train_set: np.ndarray | None = None
    val_set: np.ndarray | None = None

    @cached_property
    def _set_weights(self) -> tuple[np.ndarray, np.ndarray]:
        # per set, (K, N, N, 1): the training and the validation loss's pixel weights
        assert self.pixel_sets is not None
        held = self.pixel_sets
        bad = np.zeros(held.shape[1:], bool) if self.train_ignored is None else self.train_ignored
        return _mean_one(~(held | bad))[..., np.newaxis], _mean_one(held)[..., np.newaxis]

    def train_weight(self, rows: np.ndarray) -> np.ndarray | None:
        """The training loss's pixel weights of the training groups ``rows``,
        ``(len(rows), N, N, 1)`` (None: the constant ``train_ignored`` applies)."""
        if self.pixel_sets is None or self.train_set is None:
            return None
        return self._set_weights[0][self.train_set[rows]]

    def val_weight(self, rows: np.ndarray) -> np.ndarray | None:
        """The validation loss's pixel weights of the validation groups ``rows``, as
        :meth:`train_weight`."""
        if self.pixel_sets is None or self.val_set is None:
            return None
        return self._set_weights[1][self.val_set[rows]]


def validation_split(
    groups: Groups, n: int, bad_pixels: np.ndarray | None, data_config: DataConfig
) -> ValidationSplit:
    """Split a scan's ``groups`` (patterns ``n x n``) for training and validation, as
    ``data_config.validation`` says (:class:`~ptycho_engine.config.DataConfig`).

    ``"pixels"``: the good detector pixels (not ``bad_pixels``) are dealt at random into
    ``K = round(1 / validation_fraction)`` disjoint sets, and every group, given one set in
    turn over a random order of the groups, leaves that set out of its training loss: every
    group trains, and every detector pixel trains in all groups but about one in ``K``, so
    no spatial frequency of the object is left unmeasured. The validation loss is the loss
    on its held-out set of :data:`VALIDATION_MIN_GROUPS` groups or ``validation_fraction``
    of them, whichever is more. ``"groups"``: ``validation_fraction`` of the groups are held
    out of training. Deterministic for a seed.
    """
    fraction, seed = data_config.validation_fraction, data_config.seed
    if data_config.validation == "groups":
        train_groups, val_groups = _split(groups, fraction, seed)
        return ValidationSplit(train_groups, val_groups, bad_pixels, bad_pixels)
    bad = np.zeros((n, n), bool) if bad_pixels is None else np.asarray(bad_pixels, bool)
    good = np.flatnonzero(~bad.ravel())
    n_sets = round(1 / fraction) if fraction > 0 else 0
    if n_sets < 2 or good.size < n_sets:
        return ValidationSplit(groups, None, bad_pixels, bad_pixels)
    rng = np.random.default_rng(seed + 7919)
    sets = np.zeros((n_sets, n * n), bool)
    for k, members in enumerate(np.array_split(rng.permutation(good), n_sets)):
        sets[k, members] = True
    pixel_sets = sets.reshape(n_sets, n, n)
    group_set = rng.permutation(groups.n_groups) % n_sets
    n_val = min(groups.n_groups, max(VALIDATION_MIN_GROUPS, round(groups.n_groups * fraction)))
    val_rows = np.sort(rng.permutation(groups.n_groups)[:n_val])
    return ValidationSplit(
        groups,
        groups.subset(val_rows),
        bad_pixels,
        bad_pixels,
        int(pixel_sets.sum(axis=(1, 2)).min()),
        pixel_sets,
        group_set,
        group_set[val_rows],
    )


def physics_loss(
    x: tf.Tensor,
    pred: tf.Tensor,
    scale: Any,
    w_nll: tf.Tensor,
    w_mae: tf.Tensor,
    weight: tf.Tensor | None = None,
) -> tf.Tensor:
    """The training loss of one batch: ``w_nll * NLL / s**2 + w_mae * MAE`` (module
    docstring: loss units), ``weight`` the pixels that count (None: all)."""
    nll = poisson_nll(x, pred, weight) / (scale * scale)
    mae = amplitude_mae(x, pred, scale, weight)
    return tf.reduce_mean(w_nll * nll + w_mae * mae)


def _pixel_weight(bad_pixels: np.ndarray | None) -> tf.Tensor | None:
    """The pixels that count in the loss, ``(1, N, N, 1)`` (None: all), divided by their
    mean: the loss is then the mean over the pixels that count."""
    if bad_pixels is None:
        return None
    keep = ~np.asarray(bad_pixels, bool)
    if not keep.any():
        raise DataError("every detector pixel is left out of the loss: no pixel to fit")
    return tf.constant(_mean_one(keep)[np.newaxis, :, :, np.newaxis])


def _mean_one(keep: np.ndarray) -> np.ndarray:
    """Pixel weights of the loss from the masks ``keep`` (``(..., N, N)`` bool: the pixels
    that count), float32 divided by each mask's mean: the loss is then the mean over the
    pixels that count."""
    weight = keep.astype(np.float32)
    return weight / weight.mean(axis=(-2, -1), keepdims=True)


def _weight_args(weight: np.ndarray | None) -> tuple[np.ndarray, ...]:
    # the optional fifth argument of a step taking the batch's pixel weights
    return () if weight is None else (weight,)


def make_train_step(
    bundle: ModelBundle,
    jit_compile: bool,
    scale: float | None = None,
    bad_pixels: np.ndarray | None = None,
    batch_weight: bool = False,
    supervised: bool = False,
) -> Callable[..., tf.Tensor]:
    """The optimiser step of ``bundle``'s training model, compiled once:
    ``step(x, o, w_nll, w_mae) -> loss`` (:func:`physics_loss` of the batch, before the
    update) applies one Adam update to every trainable variable.

    ``scale``: the intensity scale the loss is normalised by (a constant: training); None
    reads the model's intensity-scale layer at every step (pretraining, which writes a
    scan's scale into it before each step). ``bad_pixels``: pixels left out of the loss.
    ``batch_weight``: the step takes the loss's pixel weights of the batch as a fifth
    argument, ``(B, N, N, 1)`` (:meth:`ValidationSplit.train_weight`), in place of
    ``bad_pixels``. ``supervised``: the step takes the true object patches of the batch and
    their pixel weight as four more arguments, ``step(x, o, w_nll, w_mae, t_re, t_im,
    t_weight, w_sup)`` (``(B, N, N, C)`` in the network's convention and ``(N, N)``,
    :func:`supervised_loss`), and adds ``w_sup`` times their loss (pretraining on
    simulated scans, whose truth is known); it then returns ``(loss, error)``: the summed
    loss and the supervised error alone (before the update, unweighted). The one training
    step of the engine, of pretraining and of the benchmarks.
    """
    net = bundle.training
    variables = net.trainable_variables
    optimizer = net.optimizer
    optimizer.build(variables)
    constant = None if batch_weight else _pixel_weight(bad_pixels)
    layer = net.get_layer("intensity_scale") if scale is None else None
    forward = net
    channels_first = False
    if supervised:
        # one pass gives the diffraction and the object patches' real and imaginary parts
        # (the layers are shared; amplitude and phase would pass no finite gradient where a
        # patch is zero): channel-first after the overlap constraint
        patches = bundle.inference.get_layer("object").input
        forward = keras.Model(net.inputs, [net.outputs[0], *patches])
        channels_first = bundle.config.channels > 1

    def step(
        x: tf.Tensor, o: tf.Tensor, w_nll: tf.Tensor, w_mae: tf.Tensor, *extra: tf.Tensor
    ) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
        s = scale if layer is None else tf.exp(layer.log_scale)
        weight = extra[0] if batch_weight else constant
        with tf.GradientTape() as tape:
            if not supervised:
                loss = physics_loss(x, forward([x, o], training=True), s, w_nll, w_mae, weight)
            else:
                pred, e_re, e_im = forward([x, o], training=True)
                if channels_first:
                    e_re = tf.transpose(e_re, [0, 2, 3, 1])
                    e_im = tf.transpose(e_im, [0, 2, 3, 1])
                t_re, t_im, t_weight, w_sup = extra
                error = supervised_loss(e_re, e_im, t_re, t_im, t_weight)
                loss = physics_loss(x, pred, s, w_nll, w_mae, weight) + w_sup * error
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables, strict=True))
        return (loss, error) if supervised else loss

    return tf.function(step, jit_compile=jit_compile)  # type: ignore[no-any-return]


def supervised_loss(
    e_re: tf.Tensor, e_im: tf.Tensor, t_re: tf.Tensor, t_im: tf.Tensor, weight: tf.Tensor
) -> tf.Tensor:
    """The relative error of the object patches against the truth, mean over the batch:
    ``sum w |e - t|**2 / sum w |t|**2`` per group, over its pixels and channels.

    The estimate ``e`` and the truth ``t``, real and imaginary parts, are ``(B, N, N, C)``;
    ``weight`` ``(N, N)`` (the probe's intensity on the support: the pixels the diffraction
    measures). The truth must be in the network's convention: scaled as the data's counts
    make the object, and rotated to a definite global phase (the diffraction does not say
    it).
    """
    w = weight[tf.newaxis, :, :, tf.newaxis]
    d_re = e_re - t_re
    d_im = e_im - t_im
    err = tf.reduce_sum(w * (d_re * d_re + d_im * d_im), axis=(1, 2, 3))
    norm = tf.reduce_sum(w * (t_re * t_re + t_im * t_im), axis=(1, 2, 3))
    return tf.reduce_mean(err / tf.maximum(norm, 1e-12))


def heads_at_limits(
    bundle: ModelBundle, x: np.ndarray, o: np.ndarray, support: np.ndarray
) -> tuple[float, float]:
    """The fractions of the object pixels (``support``) of one batch where the amplitude
    head is above :data:`SATURATION_LEVEL` and where the phase is beyond that fraction of
    pi: heads at their limits pass no gradient."""
    amp, phase = bundle.predict(x, o)
    inside = support.astype(bool)
    amp = amp.transpose(0, 3, 1, 2)[:, :, inside]
    phase = phase.transpose(0, 3, 1, 2)[:, :, inside]
    return (
        float(np.mean(amp > SATURATION_LEVEL)),
        float(np.mean(np.abs(phase) > SATURATION_LEVEL * math.pi)),
    )


def _health(bundle: ModelBundle, x: np.ndarray, o: np.ndarray, support: np.ndarray) -> HealthCheck:
    pred = bundle.training([x, o], training=False).numpy()
    sat, _ = heads_at_limits(bundle, x, o, support)
    return HealthCheck(
        mean_predicted_counts=float(np.mean(np.sum(pred.astype(np.float64) ** 2, axis=(1, 2)))),
        mean_measured_counts=float(np.mean(np.sum(x.astype(np.float64) ** 2, axis=(1, 2)))),
        saturated_fraction=sat,
    )


def resolve_probe_scale(
    model_config: ModelConfig, data: DiffractionData, probe: np.ndarray
) -> ModelConfig:
    """The configuration with the probe scale training uses for these data and this probe.

    With ``auto_probe_scale`` and the sigmoid head, ``probe_scale`` is lowered where the
    brightest patterns would saturate the head (:func:`auto_probe_scale`); otherwise the
    configuration is returned unchanged. Applying it twice gives the same result.
    """
    if not model_config.auto_probe_scale or model_config.amp_activation != "sigmoid":
        return model_config
    scale = auto_probe_scale(
        data.amplitudes,
        probe,
        model_config.probe_scale,
        model_config.pad_object,
        model_config.probe_mask,
    )
    if scale >= model_config.probe_scale:
        return model_config
    return dataclasses.replace(model_config, probe_scale=round(scale, 6))


def train(
    data: DiffractionData,
    model_config: ModelConfig,
    training_config: TrainingConfig | None = None,
    data_config: DataConfig | None = None,
    stop_event: threading.Event | None = None,
    probe: np.ndarray | None = None,
    bundle: ModelBundle | None = None,
    preview_epochs: Collection[int] = (),
    step_events_s: float | None = None,
    window: str = DEFAULT_WINDOW,
    remove_grid: bool = DEFAULT_REMOVE_GRID,
) -> Generator[TrainingSnapshot | StepProgress, None, TrainingResult]:
    """Train the physics-informed model on measured data alone.

    Parameters
    ----------
    data : DiffractionData
        Patterns of size ``model_config.N``.
    model_config, training_config, data_config
        Settings (defaults when None).
    stop_event : threading.Event, optional
        Checked before every optimiser step and between the batches of a preview; when set,
        the run ends after the current step (or preview batch) with a final snapshot marked
        ``stopped``, which carries no preview: a stop never waits for one.
    probe : ndarray, (N, N) or (K, N, N) complex, optional
        Probe to use (one mode, or ``K`` incoherent modes); default every mode of the data's
        probe (``data.probe_modes`` when the data has several, else ``data.probe``).
    bundle : ModelBundle, optional
        Models to start from (warm start) when they were built for the same ``model_config``
        (up to the probe scale):
        reused as they are for the same probe and intensity scale, otherwise rebuilt with the
        new probe and scale and the same network weights (fine-tuning with the physics loss).
    preview_epochs : collection of int
        Epochs whose snapshot carries a preview in addition to those of
        ``training_config.preview_every`` (a preview only reads the model: the training
        itself is the same with or without them).
    step_events_s : float, optional
        Also yield :class:`StepProgress`: before the model is built, before the first
        (compiling) step, at most every ``step_events_s`` seconds within an epoch, and at
        the epoch's end before the validation (``"validating"``) and before a preview
        (``"stitching a preview"``). None (default) yields epoch snapshots only.
    window : {"support", "probe"}
        Stitching window of the previews (:func:`ptycho_engine.inference.reconstruct`).
    remove_grid : bool
        Divide the scan grid's pattern out of the previews of a raster scan (the same
        function's ``remove_grid``).

    Validation (:func:`validation_split`): by default the validation loss is the loss on
    detector pixels held out of the training loss, at scanned positions; with
    ``data_config.validation`` ``"groups"``, the loss of groups held out of training.

    Early stopping and best weights: with a validation split, training stops once the
    validation loss of the likelihood stage has not reached a new best for
    :func:`early_stopping_patience` epochs and is above the best by more than the
    tolerance, and the last epoch (the early stop's or the planned last one) gives the model
    back the weights of the best epoch when it is worse by more than the tolerance
    (``training_config.early_stopping_patience``, ``early_stopping_tolerance``,
    ``restore_best_weights``). That last snapshot's validation loss and preview are those of
    the restored weights.

    Yields
    ------
    TrainingSnapshot or StepProgress
        A snapshot after every epoch, and a last one marked ``stopped`` when the stop event
        ends the run early (also when it arrives between epochs: its ``epoch`` is then the
        last finished one, 0 if none, and ``steps`` counts the steps done).

    Returns
    -------
    TrainingResult
    """
    tcfg = training_config or TrainingConfig()
    dcfg = data_config or DataConfig()
    start = time.perf_counter()
    if data.N != model_config.N:
        raise DataError(
            f"the patterns are {data.N}x{data.N} but N is {model_config.N}: crop or bin the data "
            f"to N={model_config.N} or choose N={data.N}"
        )
    probe_arr = probe if probe is not None else data.probe_all_modes
    if probe_arr is None:
        raise DataError(f"{data.provenance.get('path', 'data')}: no probe: give a probe file")
    model_config = resolve_probe_scale(model_config, data, probe_arr)
    groups = make_groups(
        data.positions_px, model_config.gridsize, dcfg.neighbor_count, dcfg.n_groups, dcfg.seed
    )
    split = validation_split(groups, data.N, data.bad_pixels, dcfg)
    train_groups, val_groups = split.train_groups, split.val_groups
    max_offset = max(
        groups.max_offset_px, inference_groups(data, model_config.gridsize, dcfg).max_offset_px
    )
    scale = intensity_scale_for(data.photons_per_pattern, model_config.N)
    n_train = train_groups.n_groups
    steps_per_epoch = max(1, math.ceil(n_train / tcfg.batch_size))

    def progress(stage: str, epoch: int, step: int, done: int, loss: float) -> StepProgress:
        return StepProgress(
            stage,
            epoch,
            tcfg.epochs,
            step,
            steps_per_epoch,
            done,
            loss,
            time.perf_counter() - start,
        )

    if step_events_s is not None:
        yield progress("building the model", 0, 0, 0, math.nan)
    same_network = (
        bundle is not None
        and dataclasses.replace(bundle.config, probe_scale=model_config.probe_scale) == model_config
    )
    if bundle is not None and same_network:
        same_probe = bundle.config == model_config and np.array_equal(
            normalised_modes(probe_arr, model_config.probe_scale),
            bundle.probe_modes,
        )
        if same_probe and math.isclose(scale, bundle.intensity_scale, rel_tol=1e-9):
            bundle = ensure_canvas(bundle, max_offset)
            bundle.training.optimizer.learning_rate.assign(tcfg.learning_rate)
        else:
            # another probe, intensity scale or (automatic) probe scale: same network
            # weights, new physics layer
            bundle = rebuild_from(
                bundle,
                probe_arr,
                scale,
                max(max_offset, bundle.max_offset_px),
                tcfg.learning_rate,
                config=model_config,
            )
    else:
        bundle = build_models(
            model_config, probe_arr, scale, max_offset, tcfg.learning_rate, tcfg.seed
        )
    model = bundle.training
    optimizer = model.optimizer
    per_group = split.pixel_sets is not None
    constant_weight = None if per_group else _pixel_weight(split.val_ignored)
    xla = uses_xla(tcfg.jit_compile, steps_per_epoch * tcfg.epochs)
    train_step = make_train_step(
        bundle, xla, bundle.intensity_scale, split.train_ignored, per_group
    )

    @tf.function
    def eval_step(
        x: tf.Tensor, o: tf.Tensor, w_nll: tf.Tensor, w_mae: tf.Tensor, *weights: tf.Tensor
    ) -> tf.Tensor:
        weight = weights[0] if per_group else constant_weight
        pred = model([x, o], training=False)
        return physics_loss(x, pred, bundle.intensity_scale, w_nll, w_mae, weight)

    train_data = GroupedPatterns(data.amplitudes, train_groups)
    val_data = GroupedPatterns(data.amplitudes, val_groups) if val_groups is not None else None

    def validate(w_nll: tf.Tensor, w_mae: tf.Tensor) -> float:
        # the loss over the validation groups, weighted by the real (unpadded) rows
        if val_data is None:
            return math.nan
        vals = []
        for rows, real in val_data.padded_batches(tcfg.batch_size):
            x, o = val_data.batch(rows)
            vals.append(
                (float(eval_step(x, o, w_nll, w_mae, *_weight_args(split.val_weight(rows)))), real)
            )
        return sum(v * r for v, r in vals) / sum(r for _, r in vals)

    support = support_mask(model_config.N, model_config.pad_object)
    health_x, health_o = train_data.batch(train_data.padded_batches(tcfg.batch_size)[0][0])
    rng = np.random.default_rng(tcfg.seed)
    bs = tcfg.batch_size
    patience = plateau_patience(tcfg.reduce_lr_patience, steps_per_epoch)
    stop_patience = early_stopping_patience(tcfg.early_stopping_patience, steps_per_epoch)
    best_val = math.inf
    best_epoch = 0
    best_weights: list[np.ndarray] | None = None
    since_best = 0
    early_stopped_epoch = 0
    restored_epoch = 0
    last_val_loss = math.nan
    history: list[TrainingSnapshot] = []
    steps = 0
    preview_s = 0.0
    stopped = False
    best = math.inf
    wait = 0
    lr = tcfg.learning_rate
    stage = ""
    epoch_loss = math.nan
    val_loss = math.nan
    finished_epochs = 0
    last_event = 0.0

    def snapshot(epoch: int, preview: StitchSnapshot | None) -> TrainingSnapshot:
        return TrainingSnapshot(
            epoch=epoch,
            epochs=tcfg.epochs,
            steps=steps,
            stage=stage or "main",
            loss=epoch_loss,
            val_loss=val_loss,
            learning_rate=float(lr),
            elapsed_s=time.perf_counter() - start,
            health=_health(bundle, health_x, health_o, support),
            preview=preview,
            stopped=stopped,
        )

    for epoch in range(1, tcfg.epochs + 1):
        new_stage = "mae-warmup" if epoch <= tcfg.warmup_epochs else "main"
        if new_stage != stage:
            stage, best, wait = new_stage, math.inf, 0
        weights = (0.0, 1.0) if stage == "mae-warmup" else (tcfg.nll_weight, tcfg.mae_weight)
        w_nll = tf.constant(weights[0], tf.float32)
        w_mae = tf.constant(weights[1], tf.float32)
        order = rng.permutation(len(train_data))
        fill = steps_per_epoch * bs - order.size
        if fill > 0:
            order = np.concatenate([order, rng.choice(len(train_data), fill)])
        losses: list[float] = []
        for k in range(steps_per_epoch):
            if stop_event is not None and stop_event.is_set():
                stopped = True
                break
            if step_events_s is not None:
                now = time.perf_counter()
                if steps == 0:
                    yield progress("first step (compiling)", epoch, k, steps, math.nan)
                    last_event = now
                elif now - last_event >= step_events_s:
                    yield progress("training", epoch, k, steps, losses[-1] if losses else math.nan)
                    last_event = now
            rows = order[k * bs : (k + 1) * bs]
            x, o = train_data.batch(rows)
            extra = _weight_args(split.train_weight(rows))
            try:
                loss_value = float(train_step(x, o, w_nll, w_mae, *extra))
            except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):
                if not xla or steps:
                    raise
                # XLA cannot compile this model's step (it failed before running): the same
                # step without XLA
                xla = False
                train_step = make_train_step(
                    bundle, False, bundle.intensity_scale, split.train_ignored, per_group
                )
                loss_value = float(train_step(x, o, w_nll, w_mae, *extra))
            losses.append(loss_value)
            steps += 1
        if not losses:
            # stopped at an epoch boundary: the last finished epoch's numbers, marked stopped
            break
        val_loss = math.nan
        if val_data is not None and not stopped:
            if step_events_s is not None:
                yield progress("validating", epoch, steps_per_epoch, steps, losses[-1])
            val_loss = validate(w_nll, w_mae)
        epoch_loss = float(np.mean(losses))
        finished_epochs = epoch
        if stage == "main" and math.isfinite(val_loss) and not stopped:
            if val_loss < best_val:
                best_val, best_epoch, since_best = val_loss, epoch, 0
                if tcfg.restore_best_weights:
                    best_weights = [np.array(w, copy=True) for w in model.get_weights()]
            else:
                since_best += 1
        worse = math.isfinite(best_val) and (
            val_loss > best_val + tcfg.early_stopping_tolerance * abs(best_val)
        )
        early = (
            bool(stop_patience) and since_best >= stop_patience and worse and epoch < tcfg.epochs
        )
        if early:
            early_stopped_epoch = epoch
        if (early or epoch == tcfg.epochs) and best_weights is not None and worse and not stopped:
            # the last epoch is worse than the best one: give the model the best weights
            # back, and measure them again (the snapshot's numbers are the restored model's)
            last_val_loss = val_loss
            model.set_weights(best_weights)
            restored_epoch = best_epoch
            val_loss = validate(w_nll, w_mae)
        monitored = val_loss if math.isfinite(val_loss) else epoch_loss
        if monitored < best - 1e-4 * abs(best if math.isfinite(best) else 0):
            best, wait = monitored, 0
        else:
            wait += 1
            if patience and wait >= patience:
                lr = max(lr * tcfg.reduce_lr_factor, tcfg.min_learning_rate)
                optimizer.learning_rate.assign(lr)
                wait = 0
        preview = None
        wanted = (
            tcfg.preview_every
            and (epoch % tcfg.preview_every == 0 or epoch == tcfg.epochs or early)
        ) or epoch in preview_epochs
        if wanted and not stopped:
            t_preview = time.perf_counter()
            if step_events_s is not None:
                yield progress("stitching a preview", epoch, steps_per_epoch, steps, losses[-1])
                last_event = time.perf_counter()
            preview = None
            for part in reconstruct(
                bundle, data, dcfg, stop_event=stop_event, window=window, remove_grid=remove_grid
            ):
                preview = part
                # a preview takes seconds: its progress too, at most every step_events_s
                if step_events_s is not None and time.perf_counter() - last_event >= step_events_s:
                    yield progress("stitching a preview", epoch, steps_per_epoch, steps, losses[-1])
                    last_event = time.perf_counter()
            preview_s += time.perf_counter() - t_preview
            # a stop cut the stitching short: no preview (a stop never waits for one)
            preview = preview if preview is not None and preview.done else None
            stopped = preview is None
        snap = snapshot(epoch, preview)
        history.append(dataclasses.replace(snap, preview=None))
        yield snap
        if stopped or early:
            break
    if stopped and (not history or not history[-1].stopped):
        # the stop came between epochs (before the first step of the next one)
        stage = history[-1].stage if history else stage
        snap = snapshot(finished_epochs, None)
        history.append(snap)
        yield snap
    return TrainingResult(
        bundle=bundle,
        groups=train_groups,
        history=tuple(history),
        stopped=stopped,
        elapsed_s=time.perf_counter() - start,
        steps=steps,
        preview_s=preview_s,
        early_stopped_epoch=early_stopped_epoch,
        restored_epoch=restored_epoch,
        best_val_loss=val_loss if restored_epoch else math.nan,
        last_val_loss=last_val_loss,
        jit_compiled=bool(xla),
    )


def run_training(
    data: DiffractionData,
    model_config: ModelConfig,
    training_config: TrainingConfig | None = None,
    data_config: DataConfig | None = None,
    on_snapshot: Callable[[TrainingSnapshot | StepProgress], object] | None = None,
    **kwargs: Any,
) -> TrainingResult:
    """Run :func:`train` to the end; call ``on_snapshot(snapshot)`` for each snapshot."""
    return drain(train(data, model_config, training_config, data_config, **kwargs), on_snapshot)
