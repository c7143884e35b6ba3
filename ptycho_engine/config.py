"""Frozen, validated configuration of the engine.

Three dataclasses hold every setting: :class:`ModelConfig` (what the Keras model looks like),
:class:`DataConfig` (how scan positions are grouped) and :class:`TrainingConfig` (how the
model is optimised). They are frozen: change a setting with :func:`dataclasses.replace`, which
validates again. Each validates in ``__post_init__`` and raises :class:`ConfigError` (a
``ValueError``) naming the field and the value received. All of them serialise to JSON
primitives with :meth:`to_dict` and back with :meth:`from_dict`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from ptycho_engine.errors import ConfigError

SUPPORTED_N = (32, 64, 128, 256)
SUPPORTED_GRIDSIZE = (1, 2, 3)
AMP_ACTIVATIONS = ("sigmoid", "softplus")
INPUT_COMPRESSIONS = ("log", "none")
DECODER_DIVISORS = (1, 2, 4)
#: MAE warm-up epochs of a long enough run (:attr:`TrainingConfig.warmup_epochs`).
DEFAULT_WARMUP_EPOCHS = 3
#: The learning rate is cut on a plateau only after at least this many optimiser steps
#: without improvement (:func:`ptycho_engine.training.plateau_patience`).
PLATEAU_MIN_STEPS = 300
#: Early stopping waits at least this many optimiser steps without a new best validation
#: loss: longer than the plateau patience, so the learning rate is cut before a run ends
#: (:func:`ptycho_engine.training.early_stopping_patience`).
EARLY_STOP_MIN_STEPS = 800
#: With ``jit_compile=None`` (the automatic rule, not the default) a run of at least this
#: many optimiser steps compiles its step with XLA (:func:`uses_xla`).
XLA_MIN_STEPS = 300
#: The command line's ``--xla`` choices (``train`` and ``pretrain``) and the
#: ``jit_compile`` value each stands for.
XLA_CHOICES: dict[str, bool | None] = {"auto": None, "on": True, "off": False}
XLA_CHOICES_INVERSE = {value: name for name, value in XLA_CHOICES.items()}


def uses_xla(jit_compile: bool | None, steps: int) -> bool:
    """Whether a run of ``steps`` optimiser steps compiles its step with XLA: ``jit_compile``
    (:attr:`TrainingConfig.jit_compile`) when it is a bool, else (None) the automatic rule,
    at least :data:`XLA_MIN_STEPS` steps. Training and pretraining both ask here."""
    if jit_compile is None:
        return steps >= XLA_MIN_STEPS
    return bool(jit_compile)


def _check(condition: bool, owner: str, field: str, value: Any, expected: str) -> None:
    if not condition:
        raise ConfigError(f"{owner}.{field} = {value!r} is invalid: expected {expected}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Serialisable:
    """Mixin: JSON round trip for flat dataclasses of primitives."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload, no-any-return]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown}; known: {sorted(names)}")
        return cls(**values)


@dataclass(frozen=True)
class ModelConfig(_Serialisable):
    """Settings that define the network and the physics layer.

    Attributes
    ----------
    N : int
        Patch (and diffraction) size in pixels, a power of two from 32 to 256.
    gridsize : int
        ``g``: each group holds ``g * g`` neighbouring scan positions (1 to 3).
    n_filters_scale : int
        Width multiplier of the encoder and decoders (base width ``16 * n_filters_scale``).
        Default 1, chosen by time to quality (``benchmarks/time_to_quality.py``): width 2
        learns a little more per step but costs 2.35x more per step (measured on 2 cores at
        N 64, gridsize 2, batch 16: 1,100 ms against 468 ms); physics.md still names 2.
    amp_activation : str
        Output activation of the amplitude head: ``"sigmoid"`` (default) or ``"softplus"``.
    pad_object : bool
        Keep the object patch non-zero only in its central ``N/2 x N/2`` support.
    probe_scale : float
        The probe is divided by ``probe_scale * mean(|mask * P|)`` (physics.md section 2).
    auto_probe_scale : bool
        With the sigmoid amplitude head, treat ``probe_scale`` as an upper bound: training
        lowers it when the brightest patterns would need an object amplitude above 0.75
        (:func:`ptycho_engine.physics.probe.auto_probe_scale`), so that the head does not
        saturate. The trained bundle's config holds the scale used. Off by default: the
        contract's default is a fixed ``probe_scale = 4`` (physics.md section 2); the command
        line warns when the data would saturate the head at the scale in use.
    probe_mask : bool
        Also apply the disk mask of radius ``N/4`` to the exit wave.
    probe_trainable : bool
        Let the optimiser refine the probe.
    intensity_scale_trainable : bool
        Let the optimiser refine the intensity scale ``s``.
    amp_init_from_probe : bool
        Start the amplitude head at the intensity-matched level (physics.md section 10).
    input_compression : str
        ``"log"`` (default): the encoder sees ``log(1 + 10 X)`` of the normalised amplitudes
        ``X``, which tames the central peak (measured: amplitude SSIM 0.40 instead of 0.20
        after 120 steps at N=64, gridsize 2); ``"none"``: it sees ``X``.
    input_backprojection : bool
        Also give the encoder a real-space estimate of each object patch: the measured
        amplitudes with the phase of the probe's own far field, propagated back and divided by
        the probe (one error-reduction step from a flat object). The network then refines an
        image instead of learning a Fourier transform from scratch.
    shared_decoder : bool
        One decoder feeds both heads (default) instead of one decoder per head.
    decoder_divisor : int
        The decoder's filters at each resolution are the encoder's at that resolution divided
        by this (1, 2 or 4; at least the base width 16 * ``n_filters_scale``).

        The defaults (one shared decoder at half the encoder's width) were chosen by time to
        quality (``benchmarks/time_to_quality.py``, 2 cores, N 64, gridsize 2, batch 16, 180 s
        from scratch, three held-out simulations): 99 ms per step against 161 ms for two
        decoders of the encoder's width; about as much SSIM per step on one scan and less on
        another, and equal or better SSIM after equal wall time on all three. A
        configuration written before these fields existed has two full-width decoders, and
        :meth:`from_dict` reads it so.
    """

    N: int = 64
    gridsize: int = 2
    n_filters_scale: int = 1
    amp_activation: str = "sigmoid"
    pad_object: bool = True
    probe_scale: float = 4.0
    auto_probe_scale: bool = False
    probe_mask: bool = False
    probe_trainable: bool = False
    intensity_scale_trainable: bool = False
    amp_init_from_probe: bool = True
    input_compression: str = "log"
    input_backprojection: bool = True
    shared_decoder: bool = True
    decoder_divisor: int = 2

    #: The decoder of configurations written before ``shared_decoder`` and
    #: ``decoder_divisor`` existed.
    LEGACY_DECODER: ClassVar[dict[str, Any]] = {"shared_decoder": False, "decoder_divisor": 1}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """As :meth:`_Serialisable.from_dict`; a dict without the decoder fields (written
        before they existed) describes :data:`LEGACY_DECODER`, the network it was trained as."""
        return super().from_dict({**cls.LEGACY_DECODER, **values})

    def __post_init__(self) -> None:
        o = "ModelConfig"
        _check(
            self.input_compression in INPUT_COMPRESSIONS,
            o,
            "input_compression",
            self.input_compression,
            f"one of {INPUT_COMPRESSIONS}",
        )
        _check(_is_int(self.N) and self.N in SUPPORTED_N, o, "N", self.N, f"one of {SUPPORTED_N}")
        _check(
            _is_int(self.gridsize) and self.gridsize in SUPPORTED_GRIDSIZE,
            o,
            "gridsize",
            self.gridsize,
            f"one of {SUPPORTED_GRIDSIZE}",
        )
        _check(
            _is_int(self.n_filters_scale) and 1 <= self.n_filters_scale <= 8,
            o,
            "n_filters_scale",
            self.n_filters_scale,
            "an integer from 1 to 8",
        )
        _check(
            _is_int(self.decoder_divisor) and self.decoder_divisor in DECODER_DIVISORS,
            o,
            "decoder_divisor",
            self.decoder_divisor,
            f"one of {DECODER_DIVISORS}",
        )
        _check(
            self.amp_activation in AMP_ACTIVATIONS,
            o,
            "amp_activation",
            self.amp_activation,
            f"one of {AMP_ACTIVATIONS}",
        )
        _check(
            _is_number(self.probe_scale) and self.probe_scale > 0,
            o,
            "probe_scale",
            self.probe_scale,
            "a finite number > 0",
        )
        for name in (
            "pad_object",
            "auto_probe_scale",
            "probe_mask",
            "probe_trainable",
            "intensity_scale_trainable",
            "amp_init_from_probe",
            "input_backprojection",
            "shared_decoder",
        ):
            value = getattr(self, name)
            _check(isinstance(value, bool), o, name, value, "True or False")

    @property
    def channels(self) -> int:
        """Scan positions per group, ``gridsize ** 2``."""
        return self.gridsize * self.gridsize


#: What a validation loss can be measured on (:attr:`DataConfig.validation`).
VALIDATIONS = ("pixels", "groups")


@dataclass(frozen=True)
class DataConfig(_Serialisable):
    """How scan positions are grouped for the overlap constraint (physics.md section 4).

    Attributes
    ----------
    neighbor_count : int
        ``K``: a group is drawn from a seed position and its K nearest neighbours.
    n_groups : int or None
        Number of groups to draw; None means one group per scan position.
    seed : int
        Seed of the group draw (deterministic).
    validation_fraction : float
        Fraction held out for the validation loss (0 disables validation): of the detector
        pixels, or of the groups (``validation``).
    validation : {"pixels", "groups"}
        What the validation loss is measured on. ``"pixels"`` (default): every group leaves
        a random ``validation_fraction`` of the detector pixels out of its training loss, a
        set of its own among ``1 / validation_fraction`` disjoint sets (so each pixel trains
        in all other groups), every group trains, and the validation loss is the loss on
        those pixels (:func:`ptycho_engine.training.validation_split`). It measures how well the
        reconstruction predicts counts it was not fitted to, at the scanned positions: it
        rises when the network fits the noise. ``"groups"``: ``validation_fraction`` of the
        groups is held out of training, and the validation loss is their whole loss. That
        measures how the network generalises to unseen patterns, which on a small scan
        rises while the image of the scan still improves (measured on the 169-pattern tike
        file: the restore to its best epoch lost 0.15-0.22 amplitude SSIM).
    """

    neighbor_count: int = 7
    n_groups: int | None = None
    seed: int = 0
    validation_fraction: float = 0.05
    validation: str = "pixels"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """As :meth:`_Serialisable.from_dict`; a dict without ``validation`` (written before
        it existed) describes the held-out groups its run validated on."""
        return super().from_dict({"validation": "groups", **values})

    def __post_init__(self) -> None:
        o = "DataConfig"
        _check(
            _is_int(self.neighbor_count) and 1 <= self.neighbor_count <= 64,
            o,
            "neighbor_count",
            self.neighbor_count,
            "an integer from 1 to 64",
        )
        _check(
            self.n_groups is None or (_is_int(self.n_groups) and self.n_groups >= 1),
            o,
            "n_groups",
            self.n_groups,
            "None or an integer >= 1",
        )
        _check(_is_int(self.seed) and self.seed >= 0, o, "seed", self.seed, "an integer >= 0")
        _check(
            _is_number(self.validation_fraction) and 0 <= self.validation_fraction < 0.5,
            o,
            "validation_fraction",
            self.validation_fraction,
            "a number in [0, 0.5)",
        )
        _check(
            self.validation in VALIDATIONS,
            o,
            "validation",
            self.validation,
            f"one of {', '.join(VALIDATIONS)}",
        )


@dataclass(frozen=True)
class TrainingConfig(_Serialisable):
    """How the model is optimised.

    The loss is ``nll_weight * NLL + mae_weight * MAE`` (physics.md section 3). For the first
    ``mae_warmup_epochs`` epochs the loss is MAE of amplitudes alone: this walks the network
    out of the Poisson "fog" plateau before the likelihood takes over (physics.md section 10).

    Attributes
    ----------
    epochs : int
        Number of passes over the training groups.
    batch_size : int
        Groups per optimiser step.
    learning_rate : float
        Initial Adam learning rate.
    nll_weight, mae_weight : float
        Loss weights; at least one must be > 0.
    mae_warmup_epochs : int or None
        Epochs of MAE-only training before the weighted loss (0 disables the warm-up); None
        (the default) applies the rule :attr:`warmup_epochs` states, the one warm-up default
        of the engine.
    reduce_lr_patience : int
        Epochs without improvement of the monitored loss before the rate is halved
        (0 disables reduce-on-plateau); never fewer epochs than span 300 optimiser steps
        (see :func:`ptycho_engine.training.plateau_patience`).
    reduce_lr_factor : float
        Factor applied to the learning rate on a plateau.
    early_stopping_patience : int
        Epochs of the likelihood stage without a new best validation loss after which
        training stops early, if the loss is then above its best by more than
        ``early_stopping_tolerance`` (0 disables early stopping); never fewer epochs than span
        800 optimiser steps (:func:`ptycho_engine.training.early_stopping_patience`), so
        that the learning rate has been reduced on the plateau first. Only with a
        validation split.
    restore_best_weights : bool
        At the end of training (also after an early stop), give the model back the weights
        of the epoch with the lowest validation loss of the likelihood stage when the last
        epoch is worse by more than the tolerance, and say so (the run's details and a
        notice). Only with a validation split; a stop by the user keeps the current weights.
    early_stopping_tolerance : float
        How far above its best (a fraction of ``|best|``) the validation loss must be before
        early stopping or the restore act. Measured on the noise-free tike file: the
        validation loss was best at epoch 29 of 100 and ended 0.64 % above it while the
        amplitude SSIM rose from 0.29 to 0.45, so a tiny rise is no sign of overfitting.
    min_learning_rate : float
        Lower bound of the learning rate.
    jit_compile : bool or None
        Compile the training step with XLA. False (the default since 2026-12-07): with the
        default network the step runs faster without XLA at every size measured (2 cores,
        the training loop from a fresh process, 45-60 s each: N 32 gridsize 1 15 ms per step
        against 20 ms, N 64 gridsize 2 75-81 ms against 96-98 ms, N 128 gridsize 2 317 ms
        against 434 ms; the same losses to 1e-4). None: the rule that was the default
        before, XLA when the run plans at least :data:`XLA_MIN_STEPS`
        optimiser steps (it paid for the wider two-decoder network: 343 ms per step instead
        of 468 ms at N 64, gridsize 2, width 1).
    pretrained : bool
        Start from the shipped pretrained network of the same ``N``, gridsize and network
        (:func:`ptycho_engine.pretrain.find_pretrained`), given the data's probe, when the
        run has no other warm start (the pipeline's runs; :func:`ptycho_engine.training.train`
        itself starts from the ``bundle`` it is given). Its inference is the first image, and
        the MAE warm-up of the default rule is skipped: the network is past the fog. False:
        from scratch.
    preview_every : int
        A stitched preview is attached to every ``preview_every``-th epoch's snapshot
        (and to the last one); 0 disables previews.
    seed : int
        Seed of weight initialisation and shuffling.
    """

    epochs: int = 30
    batch_size: int = 16
    learning_rate: float = 1e-3
    nll_weight: float = 1.0
    mae_weight: float = 0.0
    mae_warmup_epochs: int | None = None
    reduce_lr_patience: int = 3
    reduce_lr_factor: float = 0.5
    early_stopping_patience: int = 10
    restore_best_weights: bool = True
    early_stopping_tolerance: float = 0.01
    min_learning_rate: float = 1e-5
    jit_compile: bool | None = False
    pretrained: bool = True
    preview_every: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        o = "TrainingConfig"
        _check(
            _is_int(self.epochs) and self.epochs >= 0, o, "epochs", self.epochs, "an integer >= 0"
        )
        _check(
            _is_int(self.batch_size) and 1 <= self.batch_size <= 4096,
            o,
            "batch_size",
            self.batch_size,
            "an integer from 1 to 4096",
        )
        _check(
            _is_number(self.learning_rate) and 0 < self.learning_rate <= 1,
            o,
            "learning_rate",
            self.learning_rate,
            "a number in (0, 1]",
        )
        for name in ("nll_weight", "mae_weight"):
            value = getattr(self, name)
            _check(_is_number(value) and value >= 0, o, name, value, "a finite number >= 0")
        _check(
            self.nll_weight + self.mae_weight > 0,
            o,
            "nll_weight",
            self.nll_weight,
            "nll_weight + mae_weight > 0",
        )
        _check(
            self.mae_warmup_epochs is None
            or (_is_int(self.mae_warmup_epochs) and self.mae_warmup_epochs >= 0),
            o,
            "mae_warmup_epochs",
            self.mae_warmup_epochs,
            "None or an integer >= 0",
        )
        _check(
            _is_int(self.reduce_lr_patience) and self.reduce_lr_patience >= 0,
            o,
            "reduce_lr_patience",
            self.reduce_lr_patience,
            "an integer >= 0",
        )
        _check(
            _is_int(self.early_stopping_patience) and self.early_stopping_patience >= 0,
            o,
            "early_stopping_patience",
            self.early_stopping_patience,
            "an integer >= 0",
        )
        _check(
            _is_number(self.early_stopping_tolerance) and self.early_stopping_tolerance >= 0,
            o,
            "early_stopping_tolerance",
            self.early_stopping_tolerance,
            "a finite number >= 0",
        )
        _check(
            isinstance(self.restore_best_weights, bool),
            o,
            "restore_best_weights",
            self.restore_best_weights,
            "True or False",
        )
        _check(
            _is_number(self.reduce_lr_factor) and 0 < self.reduce_lr_factor < 1,
            o,
            "reduce_lr_factor",
            self.reduce_lr_factor,
            "a number in (0, 1)",
        )
        _check(
            _is_number(self.min_learning_rate)
            and 0 <= self.min_learning_rate <= self.learning_rate,
            o,
            "min_learning_rate",
            self.min_learning_rate,
            "a number in [0, learning_rate]",
        )
        _check(
            self.jit_compile is None or isinstance(self.jit_compile, bool),
            o,
            "jit_compile",
            self.jit_compile,
            "None, True or False",
        )
        _check(isinstance(self.pretrained, bool), o, "pretrained", self.pretrained, "True or False")
        _check(
            _is_int(self.preview_every) and self.preview_every >= 0,
            o,
            "preview_every",
            self.preview_every,
            "an integer >= 0",
        )
        _check(_is_int(self.seed) and self.seed >= 0, o, "seed", self.seed, "an integer >= 0")

    @property
    def warmup_epochs(self) -> int:
        """Epochs of MAE warm-up this run trains: ``mae_warmup_epochs`` when set, else
        ``min(DEFAULT_WARMUP_EPOCHS, epochs // 3)``: 3 epochs, never more than a third of the
        run, so that a short run of the likelihood is not an MAE run."""
        if self.mae_warmup_epochs is not None:
            return self.mae_warmup_epochs
        return min(DEFAULT_WARMUP_EPOCHS, self.epochs // 3)
