"""Reconstruction-quality studies: sweep N, gridsize, dose and loss over seeds (physics.md 3, 8-10).

A study trains and scores one model per *setting* (N, gridsize, photons per pattern, loss,
seed) on simulated data whose ground truth is known, and writes one folder:

* ``study.json``: the :class:`StudySpec`; a folder holds exactly one study;
* ``results.json`` and ``results.csv``: one row per finished setting (columns
  :data:`COLUMNS`), rewritten atomically after every setting, rows in the spec's order;
* ``runs/<setting-id>/``: ``reconstruction.npz``, a ptychodus product ``reconstruction.h5``,
  ``amplitude.png``, ``phase.png`` and ``run.json``;
* ``dose_response.png``, ``convergence.png`` (scores after 50 %, 75 % and 100 % of the
  epochs, :data:`CHECKPOINT_FRACTIONS`) and ``reconstructions_amplitude.png`` /
  ``reconstructions_phase.png`` once every setting is done.

Data of a setting. For each seed there is one ground-truth object, shared by every setting of
that seed. It is sized for the largest supported N (``SUPPORTED_N[-1]``) whatever the study
sweeps, so a setting's data (and its id) never depend on the other settings of the study. The
scan at N is ``make_scan(scan, positions, N / 8, ...)`` around the object's centre: the same
pattern scaled with N, so the overlap is the same at every N. The probe is made at each N. The
Poisson noise depends on (seed, N, photons) only, so the losses and gridsizes of one seed, N and
dose are compared on the very same patterns. Every random stream is derived from the seed with
:func:`derived_seed`.

Determinism. A setting is fully determined by its settings and seed: data as above, weight
initialisation from ``TrainingConfig.seed`` (explicitly seeded Keras initialisers), shuffling
from ``numpy.random.default_rng(TrainingConfig.seed)``, the group draw from
``DataConfig.seed``. No global random state (``keras.utils.set_random_seed``) is read or set.

Executors. ``"local"`` runs the settings one after another in the calling process; ``"dask"``
submits one task per setting to a ``distributed`` cluster (a ``LocalCluster`` of single-thread
worker processes, or an existing scheduler) and writes each result as it arrives. The tasks
return arrays; every file is written by the calling process, so the workers need no access to
the output folder and the files do not depend on the executor.

Resume. A setting id is a readable prefix plus a hash of everything that determines the
setting's result (:func:`setting_key`). Running a study into a folder that already holds the
same spec runs only the settings missing from ``results.json``; a different spec is refused.

This module never imports Qt, and it imports TensorFlow only inside the functions that train.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from ptycho_engine.config import (
    SUPPORTED_GRIDSIZE,
    SUPPORTED_N,
    DataConfig,
    ModelConfig,
    TrainingConfig,
)
from ptycho_engine.data import DiffractionData, StitchSnapshot
from ptycho_engine.errors import ConfigError, DataError

__all__ = [
    "COLUMNS",
    "LOSSES",
    "METRIC_COLUMNS",
    "TIMING_COLUMNS",
    "SettingOutcome",
    "StudyError",
    "StudyProgress",
    "StudyResult",
    "StudySetting",
    "StudySpec",
    "derived_seed",
    "ground_truth",
    "limit_tensorflow_threads",
    "read_results",
    "read_spec",
    "run_setting",
    "run_study",
    "setting_id",
    "setting_key",
    "simulate_setting",
    "study",
    "write_figures",
]

#: Version of the study folder layout and of the setting key (part of every setting id).
STUDY_FORMAT = 1
STUDY_JSON = "study.json"
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
RUNS_DIR = "runs"
DOSE_FIGURE = "dose_response.png"
CONVERGENCE_FIGURE = "convergence.png"
GRID_FIGURES = {
    "amplitude": "reconstructions_amplitude.png",
    "phase": "reconstructions_phase.png",
}
#: Loss name -> (nll_weight, mae_weight) of :class:`~ptycho_engine.config.TrainingConfig`.
LOSSES: dict[str, tuple[float, float]] = {"nll": (1.0, 0.0), "mae": (0.0, 1.0)}
EXECUTORS = ("local", "dask")
#: Scan step as a fraction of N: the same overlap at every N (as ``simulate_dataset``).
STEP_FRACTION = 1.0 / 8.0
#: Margin, in pixels, around the largest scan when sizing the ground-truth object.
OBJECT_MARGIN_PX = 8

_CHANNEL_SCORES = ("ssim", "psnr", "mae", "rmse", "frc_1_7_px", "frc_halfbit_px")
#: Fractions of a setting's epochs after which it is scored too, so that every row shows
#: whether its scores were still changing: a converged setting scores the same at 75 % of its
#: epochs as at the end.
CHECKPOINT_FRACTIONS = (0.5, 0.75)


def checkpoint_column(channel: str, fraction: float) -> str:
    """Results column of the SSIM of ``channel`` after ``fraction`` of the epochs, e.g.
    ``"phase_ssim_at_75pct"``; the final score's own column (``"phase_ssim"``) for 1."""
    if fraction == 1.0:
        return f"{channel}_ssim"
    return f"{channel}_ssim_at_{round(100 * fraction)}pct"


CHECKPOINT_COLUMNS = tuple(
    checkpoint_column(channel, f)
    for f in CHECKPOINT_FRACTIONS
    for channel in ("amplitude", "phase")
)
SETTING_COLUMNS = (
    "setting_id",
    "N",
    "gridsize",
    "photons",
    "loss",
    "seed",
    "epochs",
    "positions",
    "object",
    "scan",
    "probe",
    "n_filters_scale",
    "batch_size",
    "learning_rate",
    "mae_warmup_epochs",
)
#: Columns that must not depend on where or when a setting ran.
METRIC_COLUMNS = (
    *(f"amplitude_{s}" for s in _CHANNEL_SCORES),
    *(f"phase_{s}" for s in _CHANNEL_SCORES),
    *(f"chance_amplitude_{s}" for s in _CHANNEL_SCORES),
    *(f"chance_phase_{s}" for s in _CHANNEL_SCORES),
    "scored_pixels",
    "shift_y_px",
    "shift_x_px",
    "measured_photons",
    "epochs_run",
    "steps",
    "final_loss",
    "final_val_loss",
    "predicted_to_measured_counts",
    "saturated_fraction",
    *CHECKPOINT_COLUMNS,
)
TIMING_COLUMNS = ("train_time_s", "reconstruct_time_s", "checkpoint_time_s", "setting_time_s")
COLUMNS = (*SETTING_COLUMNS, *METRIC_COLUMNS, "region", *TIMING_COLUMNS)


class StudyError(ConfigError):
    """A study cannot run as asked (a folder holding another study, a missing package...)."""


# --------------------------------------------------------------------------------------------
# Spec and settings
# --------------------------------------------------------------------------------------------


def _fail(field_name: str, value: Any, expected: str) -> None:
    raise StudyError(f"StudySpec.{field_name} = {value!r} is invalid: expected {expected}")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _sweep(name: str, values: Any, check: Callable[[Any], bool], expected: str) -> tuple[Any, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        _fail(name, values, f"a list of {expected}")
    items = tuple(values)
    if not items:
        _fail(name, values, f"a non-empty list of {expected}")
    for item in items:
        if not check(item):
            _fail(name, values, f"a list of {expected} (bad item {item!r})")
    if len(set(items)) != len(items):
        _fail(name, values, f"a list of {expected} without repeats")
    return items


@dataclass(frozen=True)
class StudySetting:
    """One point of a study: what is swept, plus the seed.

    Attributes
    ----------
    N : int
        Pattern size in pixels.
    gridsize : int
        Group side ``g`` (``g * g`` positions per group).
    photons : float
        Mean counts per pattern (the dose).
    loss : str
        ``"nll"`` or ``"mae"`` (:data:`LOSSES`).
    seed : int
        Seed of the object, scan, noise, weights, shuffling and groups.
    """

    N: int
    gridsize: int
    photons: float
    loss: str
    seed: int

    def label(self) -> str:
        """Short human-readable name, e.g. ``"N32-g2-1e6-nll-s0"``."""
        return f"N{self.N}-g{self.gridsize}-{_dose_label(self.photons)}-{self.loss}-s{self.seed}"


def _dose_label(photons: float) -> str:
    text = f"{photons:.3g}"
    return text.replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


@dataclass(frozen=True)
class StudySpec:
    """What a study sweeps and the settings it holds fixed.

    Sweeps (lists; every combination is run): ``N``, ``gridsize``, ``photons``, ``loss`` and
    ``seeds``. Fixed: the rest.

    Attributes
    ----------
    N : tuple of int
        Pattern sizes, each one of ``SUPPORTED_N``.
    gridsize : tuple of int
        Group sides, each one of ``SUPPORTED_GRIDSIZE``.
    photons : tuple of float
        Mean counts per pattern (> 0), e.g. ``(1e3, 1e4, 1e6, 1e9)``.
    loss : tuple of str
        ``"nll"`` (``nll_weight`` 1, ``mae_weight`` 0) and/or ``"mae"`` (0, 1).
    seeds : tuple of int
        Seeds (>= 0); each has its own ground-truth object.
    epochs : int
        Training epochs per setting (>= 1).
    positions : int
        Scan positions per data set (>= 8).
    object_kind : str
        ``"lines"``, ``"siemens"`` or ``"file:PATH"`` (:func:`~ptycho_engine.simulate.make_object`).
    scan : str
        ``"spiral"``, ``"raster"`` or ``"random"``.
    probe_kind : str
        ``"disk"`` or ``"gaussian"``.
    n_filters_scale : int
        Network width multiplier (``ModelConfig.n_filters_scale``).
    batch_size : int
        Groups per optimiser step.
    learning_rate : float
        Initial Adam learning rate.
    mae_warmup_epochs : int
        Epochs of MAE-only training before the chosen loss. Default 0, unlike
        ``TrainingConfig``: with a warm-up, a short "nll" run would be an MAE run.
    """

    N: tuple[int, ...]
    gridsize: tuple[int, ...]
    photons: tuple[float, ...]
    loss: tuple[str, ...]
    seeds: tuple[int, ...]
    epochs: int = 30
    positions: int = 1000
    object_kind: str = "lines"
    scan: str = "spiral"
    probe_kind: str = "disk"
    n_filters_scale: int = 2
    batch_size: int = 16
    learning_rate: float = 1e-3
    mae_warmup_epochs: int = 0

    def __post_init__(self) -> None:
        from ptycho_engine.simulate import PROBE_KINDS, SCAN_KINDS

        def put(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        put(
            "N",
            tuple(
                int(v)
                for v in _sweep(
                    "N", self.N, lambda v: _is_int(v) and v in SUPPORTED_N, f"N in {SUPPORTED_N}"
                )
            ),
        )
        put(
            "gridsize",
            tuple(
                int(v)
                for v in _sweep(
                    "gridsize",
                    self.gridsize,
                    lambda v: _is_int(v) and v in SUPPORTED_GRIDSIZE,
                    f"gridsizes in {SUPPORTED_GRIDSIZE}",
                )
            ),
        )
        put(
            "photons",
            _sweep(
                "photons",
                tuple(
                    float(v) if isinstance(v, (int, float, np.number)) else v for v in self.photons
                )
                if isinstance(self.photons, Iterable) and not isinstance(self.photons, str)
                else self.photons,
                lambda v: isinstance(v, float) and math.isfinite(v) and v > 0,
                "finite numbers > 0",
            ),
        )
        put(
            "loss",
            _sweep("loss", self.loss, lambda v: v in LOSSES, f"losses in {tuple(LOSSES)}"),
        )
        put(
            "seeds",
            tuple(
                int(v)
                for v in _sweep(
                    "seeds", self.seeds, lambda v: _is_int(v) and v >= 0, "integers >= 0"
                )
            ),
        )
        for name, low in (
            ("epochs", 1),
            ("positions", 8),
            ("n_filters_scale", 1),
            ("batch_size", 1),
            ("mae_warmup_epochs", 0),
        ):
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                _fail(name, value, f"an integer >= {low}")
            put(name, int(value))
        if (
            not isinstance(self.learning_rate, (int, float))
            or isinstance(self.learning_rate, bool)
            or not math.isfinite(self.learning_rate)
        ):
            _fail("learning_rate", self.learning_rate, "a number in (0, 1]")
        put("learning_rate", float(self.learning_rate))
        if not (
            self.object_kind in ("lines", "siemens")
            or (isinstance(self.object_kind, str) and self.object_kind.startswith("file:"))
        ):
            _fail("object_kind", self.object_kind, "'lines', 'siemens' or 'file:PATH'")
        if self.scan not in SCAN_KINDS:
            _fail("scan", self.scan, f"one of {SCAN_KINDS}")
        if self.probe_kind not in PROBE_KINDS:
            _fail("probe_kind", self.probe_kind, f"one of {PROBE_KINDS}")
        # Let the engine's own configs validate the fixed settings (n_filters_scale range,
        # learning rate, batch size) with their messages.
        for setting in self.settings()[:1]:
            configs(self, setting)

    def settings(self) -> list[StudySetting]:
        """Every setting, in the order of the results files (N, gridsize, photons, loss, seed)."""
        return [
            StudySetting(n, g, p, loss, s)
            for n in self.N
            for g in self.gridsize
            for p in self.photons
            for loss in self.loss
            for s in self.seeds
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON primitives (tuples become lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; unknown fields raise :class:`StudyError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise StudyError(f"StudySpec: unknown field(s) {unknown}; known: {sorted(names)}")
        return cls(**values)


def configs(
    spec: StudySpec, setting: StudySetting
) -> tuple[ModelConfig, TrainingConfig, DataConfig]:
    """Engine configs of one setting: ``(ModelConfig, TrainingConfig, DataConfig)``.

    Previews are off (``preview_every = 0``): the study reconstructs once at the end.
    """
    nll_weight, mae_weight = LOSSES[setting.loss]
    model = ModelConfig(
        N=setting.N, gridsize=setting.gridsize, n_filters_scale=spec.n_filters_scale
    )
    training = TrainingConfig(
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        learning_rate=spec.learning_rate,
        min_learning_rate=min(TrainingConfig().min_learning_rate, spec.learning_rate),
        nll_weight=nll_weight,
        mae_weight=mae_weight,
        mae_warmup_epochs=spec.mae_warmup_epochs,
        preview_every=0,
        seed=setting.seed,
    )
    return model, training, DataConfig(seed=setting.seed)


def checkpoint_epochs(epochs: int) -> dict[float, int]:
    """Epoch after which a setting of ``epochs`` epochs is scored, per fraction of
    :data:`CHECKPOINT_FRACTIONS` (at least 1; the last epoch itself when ``epochs`` is tiny)."""
    return {f: max(1, int(f * epochs)) for f in CHECKPOINT_FRACTIONS}


def setting_key(spec: StudySpec, setting: StudySetting) -> dict[str, Any]:
    """Everything that determines a setting's result, as JSON primitives.

    It holds the setting, the study's fixed settings, the ground-truth object's shape, the
    engine configs and :data:`STUDY_FORMAT`; not the other values of the sweeps.
    """
    model, training, data = configs(spec, setting)
    return {
        "format": STUDY_FORMAT,
        "setting": dataclasses.asdict(setting),
        "positions": spec.positions,
        "object": spec.object_kind,
        "object_shape": list(object_shape(spec, setting.seed)),
        "scan": spec.scan,
        "probe": spec.probe_kind,
        "model_config": model.to_dict(),
        "training_config": training.to_dict(),
        "data_config": data.to_dict(),
    }


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def setting_id(spec: StudySpec, setting: StudySetting) -> str:
    """Stable id: ``<label>-<10 hex digits of sha256(setting_key)>``, e.g.
    ``"N32-g2-1e6-nll-s0-3fa41c09be"``; also the name of the setting's run folder."""
    return f"{setting.label()}-{_digest(setting_key(spec, setting))[:10]}"


def derived_seed(stream: str, *values: Any) -> int:
    """A 63-bit integer seed from a stream name and JSON-serialisable values (stable across
    processes, platforms and Python versions, unlike ``hash``)."""
    return int(_digest([stream, *values])[:16], 16) >> 1


# --------------------------------------------------------------------------------------------
# Data of a setting
# --------------------------------------------------------------------------------------------


def _centred_scan(spec: StudySpec, seed: int, N: int) -> np.ndarray:
    from ptycho_engine.simulate import make_scan

    return make_scan(spec.scan, spec.positions, N * STEP_FRACTION, derived_seed("scan", seed))


def object_shape(spec: StudySpec, seed: int) -> tuple[int, int]:
    """Shape ``(H, W)`` of the ground-truth object of ``seed``: the scan at the largest
    supported N plus that N plus ``2 * OBJECT_MARGIN_PX`` on each axis."""
    n_max = SUPPORTED_N[-1]
    scan = _centred_scan(spec, seed, n_max)
    extent = scan.max(axis=0) - scan.min(axis=0)
    return (
        math.ceil(extent[0]) + n_max + 2 * OBJECT_MARGIN_PX,
        math.ceil(extent[1]) + n_max + 2 * OBJECT_MARGIN_PX,
    )


def ground_truth(spec: StudySpec, seed: int) -> np.ndarray:
    """The ground-truth object of ``seed``, shared by every setting of that seed.

    Returns
    -------
    ndarray, (H, W) complex64
        See :func:`object_shape` for the size.
    """
    from ptycho_engine.simulate import make_object

    return make_object(spec.object_kind, object_shape(spec, seed), derived_seed("object", seed))


def simulate_setting(
    spec: StudySpec, setting: StudySetting, obj: np.ndarray | None = None
) -> DiffractionData:
    """Simulate the data of one setting.

    Parameters
    ----------
    spec : StudySpec
    setting : StudySetting
    obj : ndarray, (H, W) complex, optional
        ``ground_truth(spec, setting.seed)`` when already at hand.

    Returns
    -------
    DiffractionData
        ``amplitudes`` (M, N, N) float32, ``positions_px`` (M, 2) in object pixels, the probe
        at N and ``object_gt``.
    """
    from ptycho_engine.simulate import make_probe, simulate

    gt = ground_truth(spec, setting.seed) if obj is None else obj
    n_max = SUPPORTED_N[-1]
    big = _centred_scan(spec, setting.seed, n_max)
    centre = -big.min(axis=0) + n_max // 2 + OBJECT_MARGIN_PX
    positions = _centred_scan(spec, setting.seed, setting.N) + centre
    probe = make_probe(spec.probe_kind, setting.N, derived_seed("probe", setting.seed))
    noise_seed = derived_seed("noise", setting.seed, setting.N, setting.photons)
    amplitudes = simulate(gt, probe, positions, setting.photons, noise_seed)
    recipe = {
        "N": setting.N,
        "n_positions": spec.positions,
        "photons": setting.photons,
        "object_kind": spec.object_kind,
        "scan": spec.scan,
        "probe_kind": spec.probe_kind,
        "seed": setting.seed,
        "step_px": setting.N * STEP_FRACTION,
    }
    return DiffractionData(
        amplitudes,
        positions,
        probe=probe,
        object_gt=gt,
        provenance={"format": "simulation", "recipe": recipe, "study_format": STUDY_FORMAT},
    )


# --------------------------------------------------------------------------------------------
# One setting
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SettingOutcome:
    """What running one setting produced (numpy arrays and JSON primitives only).

    Attributes
    ----------
    setting_id : str
    row : dict
        One results row, every key of :data:`COLUMNS`; non-finite floats are kept as floats.
    reconstruction : StitchSnapshot
        The stitched object, its valid region and origin.
    probe : ndarray, (N, N) complex64
        The (normalised) probe the model used.
    positions_px : ndarray, (M, 2) float64
        Scan positions in the ground-truth frame.
    history : tuple of dict
        Per epoch: epoch, steps, stage, loss, val_loss, learning_rate, counts ratio, saturation.
    configs : dict
        ``model_config``, ``training_config`` and ``data_config`` as dicts.
    stopped : bool
        True when a stop event ended training early; such an outcome is never recorded.
    """

    setting_id: str
    row: dict[str, Any]
    reconstruction: StitchSnapshot
    probe: np.ndarray
    positions_px: np.ndarray
    history: tuple[dict[str, Any], ...]
    configs: dict[str, Any]
    stopped: bool = False


def run_setting(
    spec: StudySpec,
    setting: StudySetting,
    obj: np.ndarray | None = None,
    stop_event: threading.Event | None = None,
) -> SettingOutcome:
    """Simulate, train, reconstruct and score one setting against its ground truth.

    Parameters
    ----------
    spec : StudySpec
    setting : StudySetting
    obj : ndarray, optional
        The ground truth of ``setting.seed`` when already at hand (saves making it again).
    stop_event : threading.Event, optional
        Passed to training; when set, the outcome is returned with ``stopped=True``.

    Returns
    -------
    SettingOutcome
    """
    from ptycho_engine import inference, training
    from ptycho_engine.metrics import chance_level, compare
    from ptycho_engine.stitching import reference_region

    start = time.perf_counter()
    sid = setting_id(spec, setting)
    data = simulate_setting(spec, setting, obj)
    model_config, training_config, data_config = configs(spec, setting)
    if data.object_gt is None:  # simulate_setting always sets it; a guard for type checkers
        raise DataError(f"{sid}: the simulated data carry no ground truth")
    truth = data.object_gt
    wanted = checkpoint_epochs(spec.epochs)
    early = {e for e in wanted.values() if e < spec.epochs}
    scored: dict[int, Any] = {}
    score_s = 0.0

    def score_checkpoint(snap: Any) -> None:
        nonlocal score_s
        if snap.preview is None or snap.epoch not in early:
            return
        t = time.perf_counter()
        p = snap.preview
        obj_p = p.amplitude * np.exp(1j * p.phase)
        reference_p = reference_region(truth, p.origin_px, obj_p.shape)
        scored[snap.epoch] = compare(obj_p, reference_p, p.valid)
        score_s += time.perf_counter() - t

    result = training.run_training(
        data,
        model_config,
        training_config,
        data_config,
        on_snapshot=score_checkpoint,
        stop_event=stop_event,
        preview_epochs=early,
    )
    checkpoint_s = result.preview_s + score_s
    t_train = result.elapsed_s - checkpoint_s
    t0 = time.perf_counter()
    snap = inference.reconstruct_all(result.bundle, data, data_config)
    t_reconstruct = time.perf_counter() - t0
    reference = reference_region(truth, snap.origin_px, snap.object.shape)
    report = compare(snap.object, reference, snap.valid)
    chance = chance_level(reference, snap.valid)
    last = result.history[-1] if result.history else None
    row: dict[str, Any] = {
        "setting_id": sid,
        "N": setting.N,
        "gridsize": setting.gridsize,
        "photons": setting.photons,
        "loss": setting.loss,
        "seed": setting.seed,
        "epochs": spec.epochs,
        "positions": spec.positions,
        "object": spec.object_kind,
        "scan": spec.scan,
        "probe": spec.probe_kind,
        "n_filters_scale": spec.n_filters_scale,
        "batch_size": spec.batch_size,
        "learning_rate": spec.learning_rate,
        "mae_warmup_epochs": spec.mae_warmup_epochs,
    }
    for prefix, rep in (("", report), ("chance_", chance)):
        for channel in ("amplitude", "phase"):
            scores = getattr(rep, channel)
            for name in _CHANNEL_SCORES:
                row[f"{prefix}{channel}_{name}"] = float(getattr(scores, name))
    row.update(
        {
            "scored_pixels": int(report.n_pixels),
            "shift_y_px": float(report.shift_px[0]),
            "shift_x_px": float(report.shift_px[1]),
            "measured_photons": float(data.photons_per_pattern),
            "epochs_run": int(last.epoch) if last else 0,
            "steps": int(result.steps),
            "final_loss": float(last.loss) if last else math.nan,
            "final_val_loss": float(last.val_loss) if last else math.nan,
            "predicted_to_measured_counts": float(last.health.intensity_ratio)
            if last
            else math.nan,
            "saturated_fraction": float(last.health.saturated_fraction) if last else math.nan,
            "region": report.region,
            "train_time_s": float(t_train),
            "reconstruct_time_s": float(t_reconstruct),
            "checkpoint_time_s": float(checkpoint_s),
            "setting_time_s": time.perf_counter() - start,
        }
    )
    for fraction, epoch in wanted.items():
        at = scored.get(epoch)
        if epoch >= spec.epochs and not result.stopped:
            at = report
        for channel in ("amplitude", "phase"):
            row[checkpoint_column(channel, fraction)] = (
                float(getattr(at, channel).ssim) if at is not None else math.nan
            )
    history = tuple(s.record() for s in result.history)
    return SettingOutcome(
        setting_id=sid,
        row=row,
        reconstruction=snap,
        probe=np.asarray(result.bundle.probe, np.complex64),
        positions_px=data.positions_px,
        history=history,
        configs={
            "model_config": model_config.to_dict(),
            "training_config": training_config.to_dict(),
            "data_config": data_config.to_dict(),
        },
        stopped=result.stopped,
    )


def limit_tensorflow_threads(threads: int = 1) -> bool:
    """Give TensorFlow ``threads`` intra-op and inter-op threads in this process.

    Must run before TensorFlow's runtime starts (the first op); afterwards the pools are fixed
    and this returns False without changing anything.

    Returns
    -------
    bool
        True when the limit was applied (or was already in place).
    """
    import tensorflow as tf

    threading_api = tf.config.threading
    if (
        threading_api.get_intra_op_parallelism_threads() == threads
        and threading_api.get_inter_op_parallelism_threads() == threads
    ):
        return True
    try:
        threading_api.set_intra_op_parallelism_threads(threads)
        threading_api.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # the runtime is already initialised: the pools cannot change
        return False
    return True


def _dask_task(spec: StudySpec, setting: StudySetting) -> SettingOutcome:
    """One setting on a dask worker: one TensorFlow thread, then :func:`run_setting`."""
    limit_tensorflow_threads(1)
    return run_setting(spec, setting)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isfinite(f):
            return f
        return "nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def _from_json_value(value: Any) -> Any:
    if value in ("nan", "inf", "-inf"):
        return float(value)
    return value


def _write_text(path: Path, text: str) -> None:
    from ptycho_engine.runs import atomic_write

    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _csv_text(rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in COLUMNS])
    return buffer.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def write_results(
    out: Path,
    spec: StudySpec,
    rows: dict[str, dict[str, Any]],
    order: Sequence[str] | None = None,
) -> None:
    """Write ``results.json`` then ``results.csv``, each atomically, rows in spec order.

    ``rows`` maps setting ids to rows; ids that are not in ``spec`` are dropped. ``order`` is
    the spec's ids in order when already computed.
    """
    ids = order if order is not None else [setting_id(spec, s) for s in spec.settings()]
    ordered = [rows[i] for i in ids if i in rows]
    payload = {
        "format": STUDY_FORMAT,
        "spec": spec.to_dict(),
        "columns": list(COLUMNS),
        "rows": [_json_value({c: r.get(c) for c in COLUMNS}) for r in ordered],
    }
    _write_text(out / RESULTS_JSON, json.dumps(payload, indent=1, allow_nan=False) + "\n")
    _write_text(out / RESULTS_CSV, _csv_text(ordered))


def read_results(out: Path) -> list[dict[str, Any]]:
    """Rows of a study folder's ``results.json`` (non-finite numbers as floats); [] if none.

    Raises
    ------
    StudyError
        The file exists but is not a study results file.
    """
    path = Path(out) / RESULTS_JSON
    if not path.exists():
        return []
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        rows = payload["rows"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise StudyError(f"{path}: not a study results file ({exc}); move it away") from exc
    return [{k: _from_json_value(v) for k, v in row.items()} for row in rows]


def _spec_difference(stored: dict[str, Any], wanted: dict[str, Any]) -> str:
    keys = sorted(set(stored) | set(wanted))
    return "; ".join(
        f"{k}: stored {stored.get(k)!r}, requested {wanted.get(k)!r}"
        for k in keys
        if stored.get(k) != wanted.get(k)
    )


def _prepare_folder(out: Path, spec: StudySpec) -> None:
    """Create the study folder, or check that it holds this very spec."""
    marker = out / STUDY_JSON
    wanted = spec.to_dict()
    if marker.exists():
        try:
            stored = json.loads(marker.read_text(encoding="utf-8"))["spec"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise StudyError(f"{marker}: not a study spec file ({exc})") from exc
        if stored != wanted:
            raise StudyError(
                f"{out} holds a different study ({_spec_difference(stored, wanted)}); "
                "resume only with the same settings, or choose another --out folder"
            )
        return
    if out.exists() and not out.is_dir():
        raise StudyError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise StudyError(f"{out}: folder is not empty and holds no {STUDY_JSON}; choose another")
    out.mkdir(parents=True, exist_ok=True)
    _write_text(
        marker, json.dumps({"format": STUDY_FORMAT, "spec": wanted}, indent=1, allow_nan=False)
    )


def write_run_folder(folder: Path, outcome: SettingOutcome) -> None:
    """Write one setting's run folder: reconstruction (npz and ptychodus product), PNGs and
    ``run.json`` (``run.json`` last, so a complete folder has one)."""
    from ptycho_engine import runs
    from ptycho_engine.io import write_png, write_product

    folder.mkdir(parents=True, exist_ok=True)
    snap = outcome.reconstruction
    runs.write_reconstruction(folder, snap, None)
    h, w = snap.object.shape
    origin = np.asarray(snap.origin_px, np.float64)
    write_product(
        folder / "reconstruction.h5",
        snap.object,
        outcome.probe,
        outcome.positions_px - origin,
        1.0,
        name=f"ptycho-engine study {outcome.setting_id}",
        comments="simulation without geometry: 1 m stands for 1 object pixel",
        probe_photon_count=float(outcome.row["measured_photons"]),
        object_center_m=(origin[0] + (h - 1) / 2, origin[1] + (w - 1) / 2),
        loss_epochs=[int(h_["epoch"]) for h_ in outcome.history],
        loss_values=[float(h_["loss"]) for h_ in outcome.history],
    )
    title = outcome.setting_id
    for part in ("amplitude", "phase"):
        write_png(folder / f"{part}.png", snap.object, part, title=title, valid=snap.valid)
    _write_text(
        folder / runs.RUN_JSON,
        json.dumps(
            _json_value(
                {
                    "kind": "study-setting",
                    "setting_id": outcome.setting_id,
                    "row": outcome.row,
                    **outcome.configs,
                    "history": list(outcome.history),
                    "versions": runs.versions(),
                }
            ),
            indent=1,
            allow_nan=False,
        )
        + "\n",
    )


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def _finite(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def write_dose_response(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Metrics against dose (log axis): one line per (N, gridsize, loss), mean over seeds with
    their standard deviation as error bars; the chance level is drawn dashed."""
    from matplotlib.figure import Figure

    from ptycho_engine.runs import atomic_write

    panels = (
        ("amplitude_ssim", "amplitude SSIM"),
        ("phase_ssim", "phase SSIM"),
        ("amplitude_frc_1_7_px", "amplitude FRC 1/7 resolution (px)"),
        ("phase_frc_1_7_px", "phase FRC 1/7 resolution (px)"),
    )
    fig = Figure(figsize=(11, 8), dpi=100, layout="constrained")
    axes = fig.subplots(2, 2)
    lines = sorted({(r["N"], r["gridsize"], r["loss"]) for r in rows})
    for ax, (column, label) in zip(axes.ravel(), panels, strict=True):
        for n, g, loss in lines:
            mine = [r for r in rows if (r["N"], r["gridsize"], r["loss"]) == (n, g, loss)]
            doses = sorted({r["photons"] for r in mine})
            xs, means, errs = [], [], []
            for dose in doses:
                values = _finite(r[column] for r in mine if r["photons"] == dose)
                if values:
                    xs.append(dose)
                    means.append(float(np.mean(values)))
                    errs.append(float(np.std(values)))
            if xs:
                ax.errorbar(
                    xs, means, yerr=errs, marker="o", capsize=3, label=f"N={n} g={g} {loss}"
                )
        chance_column = f"chance_{column}"
        chance = _finite(r[chance_column] for r in rows)
        if chance:
            ax.axhline(float(np.mean(chance)), color="grey", ls="--", lw=1, label="chance level")
        ax.set_xscale("log")
        ax.set_xlabel("photons per pattern")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Reconstruction quality against dose (error bars: std over seeds)")

    def save(tmp: Path) -> None:
        fig.savefig(tmp, format="png")

    return atomic_write(path, save, suffix=".png")


def write_convergence(rows: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Amplitude and phase SSIM after 50 %, 75 % and 100 % of the epochs: one panel per dose,
    one line per (N, gridsize, loss), mean over seeds with their standard deviation as error
    bars. Flat lines mean the settings had converged. None (nothing written) when no row
    carries checkpoint scores (a folder of an engine from before they were recorded)."""
    from matplotlib.figure import Figure

    from ptycho_engine.runs import atomic_write

    fractions = (*CHECKPOINT_FRACTIONS, 1.0)
    if not _finite(r.get(c) for r in rows for c in CHECKPOINT_COLUMNS):
        return None
    doses = sorted({r["photons"] for r in rows})
    lines = sorted({(r["N"], r["gridsize"], r["loss"]) for r in rows})
    fig = Figure(figsize=(2.6 * len(doses) + 1.0, 6.2), dpi=100, layout="constrained")
    axes = fig.subplots(2, len(doses), squeeze=False, sharey="row")
    xs = [100 * f for f in fractions]
    for i, channel in enumerate(("amplitude", "phase")):
        for j, dose in enumerate(doses):
            ax = axes[i, j]
            for n, g, loss in lines:
                mine = [
                    r
                    for r in rows
                    if (r["N"], r["gridsize"], r["loss"], r["photons"]) == (n, g, loss, dose)
                ]
                per_x = [
                    _finite(r.get(checkpoint_column(channel, f)) for r in mine) for f in fractions
                ]
                if not all(per_x):
                    continue
                ax.errorbar(
                    xs,
                    [float(np.mean(v)) for v in per_x],
                    yerr=[float(np.std(v)) for v in per_x],
                    marker="o",
                    capsize=3,
                    label=f"N={n} g={g} {loss}",
                )
            ax.set_xticks(xs)
            ax.grid(True, alpha=0.3)
            if i == 0:
                ax.set_title(f"{_dose_label(dose)} photons", fontsize=9)
            else:
                ax.set_xlabel("% of the epochs")
            if j == 0:
                ax.set_ylabel(f"{channel} SSIM")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Convergence: scores during training (error bars: std over seeds)")

    def save(tmp: Path) -> None:
        fig.savefig(tmp, format="png")

    return atomic_write(path, save, suffix=".png")


def write_grid(
    out: Path, spec: StudySpec, rows: Sequence[dict[str, Any]], part: str, path: Path
) -> Path:
    """Reconstructions of the first seed: rows dose (ascending), columns (N, gridsize, loss).

    ``part`` is ``"amplitude"`` or ``"phase"``; cells without a finished run stay blank.
    """
    from matplotlib.figure import Figure

    from ptycho_engine.runs import RECONSTRUCTION, atomic_write, read_reconstruction

    done = {r["setting_id"] for r in rows}
    doses = sorted(spec.photons)
    columns = [(n, g, loss) for n in spec.N for g in spec.gridsize for loss in spec.loss]
    seed = spec.seeds[0]
    fig = Figure(
        figsize=(1.9 * len(columns) + 0.8, 1.9 * len(doses) + 0.6), dpi=100, layout="constrained"
    )
    axes = np.atleast_2d(fig.subplots(len(doses), len(columns), squeeze=False))
    for i, dose in enumerate(doses):
        for j, (n, g, loss) in enumerate(columns):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"N={n} g={g} {loss}", fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{_dose_label(dose)} ph", fontsize=8)
            sid = setting_id(spec, StudySetting(n, g, dose, loss, seed))
            npz = out / RUNS_DIR / sid / RECONSTRUCTION
            if sid not in done or not npz.exists():
                continue
            snap = read_reconstruction(npz)
            obj = snap.object
            image = np.abs(obj) if part == "amplitude" else np.angle(obj)
            image = np.where(snap.valid, image, np.nan)
            cmap = "gray" if part == "amplitude" else "twilight"
            ax.imshow(image, cmap=cmap, interpolation="nearest")
    fig.suptitle(f"{part} of the reconstructions (seed {seed}; rows: dose)", fontsize=10)

    def save(tmp: Path) -> None:
        fig.savefig(tmp, format="png")

    return atomic_write(path, save, suffix=".png")


def read_spec(out: str | Path) -> StudySpec:
    """The :class:`StudySpec` of a study folder (its ``study.json``).

    Raises
    ------
    StudyError
        The folder holds no study, or its ``study.json`` is not a study spec.
    """
    marker = Path(out) / STUDY_JSON
    if not marker.is_file():
        raise StudyError(f"{out}: not a study folder (no {STUDY_JSON})")
    try:
        stored = json.loads(marker.read_text(encoding="utf-8"))["spec"]
        if not isinstance(stored, dict):
            raise TypeError(f"'spec' is a {type(stored).__name__}, expected an object")
        return StudySpec.from_dict(stored)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise StudyError(f"{marker}: not a study spec file ({exc})") from exc


def write_figures(out: Path, spec: StudySpec | None = None) -> list[Path]:
    """Write the dose-response figure and the reconstruction grids from a study folder."""
    out = Path(out)
    if spec is None:
        spec = read_spec(out)
    rows = read_results(out)
    if not rows:
        raise StudyError(f"{out}: no finished settings to plot")
    written = [write_dose_response(rows, out / DOSE_FIGURE)]
    convergence = write_convergence(rows, out / CONVERGENCE_FIGURE)
    if convergence is not None:
        written.append(convergence)
    for part, name in GRID_FIGURES.items():
        written.append(write_grid(out, spec, rows, part, out / name))
    return written


# --------------------------------------------------------------------------------------------
# Executors and the study generator
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyProgress:
    """Yielded after every finished setting (its files are already written).

    Attributes
    ----------
    setting : StudySetting
    setting_id : str
    row : dict
        The results row (non-finite numbers as floats).
    done, total : int
        Finished settings of the study (including those of earlier runs) and all settings.
    elapsed_s : float
        Seconds since this run of the study started.
    """

    setting: StudySetting
    setting_id: str
    row: dict[str, Any]
    done: int
    total: int
    elapsed_s: float


@dataclass(frozen=True)
class StudyResult:
    """The end of a study run.

    Attributes
    ----------
    out : Path
    rows : tuple of dict
        Every finished row, in spec order.
    ran : int
        Settings run now.
    skipped : int
        Settings found finished in the folder and not run again.
    stopped : bool
        True when the stop event ended the run early.
    failures : tuple of (str, str)
        ``(setting_id, message)`` of settings that raised; they are not in ``rows``.
    figures : tuple of Path
        Figures written (none unless every setting is finished).
    """

    out: Path
    rows: tuple[dict[str, Any], ...]
    ran: int
    skipped: int
    stopped: bool
    failures: tuple[tuple[str, str], ...] = ()
    figures: tuple[Path, ...] = field(default_factory=tuple)


_Outcomes = Iterator[tuple[StudySetting, SettingOutcome | BaseException]]


def _local_outcomes(
    spec: StudySpec, todo: Sequence[StudySetting], stop_event: threading.Event | None
) -> _Outcomes:
    truths: dict[int, np.ndarray] = {}
    for setting in todo:
        if stop_event is not None and stop_event.is_set():
            return
        try:
            if setting.seed not in truths:
                truths = {setting.seed: ground_truth(spec, setting.seed)}
            yield setting, run_setting(spec, setting, truths[setting.seed], stop_event)
        except Exception as exc:  # recorded as a failure; the others still run
            yield setting, exc


def _dask_outcomes(
    spec: StudySpec,
    todo: Sequence[StudySetting],
    stop_event: threading.Event | None,
    scheduler: str | None,
    workers: int,
) -> _Outcomes:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise StudyError(
            "the dask executor needs the 'distributed' package: pip install 'dask[distributed]'"
        ) from exc
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            # any free port: a fixed one (8787) clashes with another cluster on the machine
            dashboard_address=":0",
        )
        client = Client(cluster)
    else:
        client = Client(scheduler)
    futures = []
    try:
        futures = [client.submit(_dask_task, spec, s, pure=False) for s in todo]
        by_key = {f.key: s for f, s in zip(futures, todo, strict=True)}
        for future in as_completed(futures):
            setting = by_key[future.key]
            try:
                outcome = future.result()
            except Exception as exc:  # a failed task or a lost worker
                yield setting, exc
            else:
                yield setting, outcome
            future.release()
            if stop_event is not None and stop_event.is_set():
                return
    finally:
        for future in futures:
            future.cancel()
        client.close()
        if cluster is not None:
            cluster.close()


def study(
    spec: StudySpec,
    out: str | Path,
    executor: str = "local",
    scheduler: str | None = None,
    workers: int = 2,
    stop_event: threading.Event | None = None,
) -> Generator[StudyProgress, None, StudyResult]:
    """Run (or resume) a study, yielding after every finished setting.

    Parameters
    ----------
    spec : StudySpec
    out : path
        Study folder: created when missing; when it holds the same spec, only the settings
        missing from its ``results.json`` run; a different spec raises :class:`StudyError`.
    executor : {"local", "dask"}
        ``"local"``: one setting after another in this process. ``"dask"``: one task per
        setting on a ``distributed`` cluster; results are written as they arrive.
    scheduler : str, optional
        Address of a running dask scheduler (``executor="dask"`` only); default: start a
        ``LocalCluster`` of ``workers`` processes with one thread each.
    workers : int
        Worker processes of the LocalCluster.
    stop_event : threading.Event, optional
        Checked between settings (and passed to training by the local executor): when set,
        the study ends after the current setting(s); unfinished settings are not recorded.

    Yields
    ------
    StudyProgress

    Returns
    -------
    StudyResult
        Figures are written when every setting is finished.
    """
    if executor not in EXECUTORS:
        raise StudyError(f"executor {executor!r} is unknown; choose one of {EXECUTORS}")
    if scheduler is not None and executor != "dask":
        raise StudyError("a scheduler address needs executor 'dask'")
    if not _is_int(workers) or workers < 1:
        raise StudyError(f"workers = {workers!r} is invalid: expected an integer >= 1")
    start = time.perf_counter()
    out = Path(out)
    _prepare_folder(out, spec)
    settings = spec.settings()
    ids = {setting_id(spec, s): s for s in settings}
    stored = read_results(out)
    foreign = [str(r.get("setting_id")) for r in stored if r.get("setting_id") not in ids]
    if foreign:
        # Rewriting the results would drop these rows: refuse, and change nothing.
        listed = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
        raise StudyError(
            f"{out / RESULTS_JSON} holds {len(foreign)} result(s) that are not settings of this "
            f"study as this engine defines them ({listed}): the engine's settings or version "
            "changed since they ran. Nothing was changed; choose another --out folder to run "
            "the study again"
        )
    rows = {r["setting_id"]: r for r in stored}
    # Rewrite both files from results.json: a crash between the two renames of an earlier run
    # may have left results.csv one row short.
    order = list(ids)
    write_results(out, spec, rows, order)
    skipped = len(rows)
    todo = [s for i, s in ids.items() if i not in rows]
    if executor == "local":
        outcomes = _local_outcomes(spec, todo, stop_event)
    else:
        outcomes = _dask_outcomes(spec, todo, stop_event, scheduler, workers)
    failures: list[tuple[str, str]] = []
    ran = 0
    stopped = False
    for setting, outcome in outcomes:
        sid = setting_id(spec, setting)
        if isinstance(outcome, BaseException):
            failures.append((sid, f"{type(outcome).__name__}: {outcome}"))
            continue
        if outcome.stopped:
            stopped = True
            break
        write_run_folder(out / RUNS_DIR / sid, outcome)
        rows[sid] = outcome.row
        write_results(out, spec, rows, order)
        ran += 1
        yield StudyProgress(
            setting, sid, outcome.row, len(rows), len(settings), time.perf_counter() - start
        )
    stopped = stopped or (stop_event is not None and stop_event.is_set())
    ordered = tuple(rows[i] for i in ids if i in rows)
    figures: tuple[Path, ...] = ()
    if len(rows) == len(settings):
        figures = tuple(write_figures(out, spec))
    return StudyResult(out, ordered, ran, skipped, stopped, tuple(failures), figures)


def run_study(
    spec: StudySpec,
    out: str | Path,
    executor: str = "local",
    scheduler: str | None = None,
    workers: int = 2,
    on_progress: Callable[[StudyProgress], object] | None = None,
    stop_event: threading.Event | None = None,
) -> StudyResult:
    """Run :func:`study` to the end, calling ``on_progress`` after every setting.

    Raises
    ------
    StudyError
        When some settings failed (after the others were run and written); the message
        names each failed setting and its error.
    """
    gen = study(spec, out, executor, scheduler, workers, stop_event)
    while True:
        try:
            progress = next(gen)
        except StopIteration as stop:
            result: StudyResult = stop.value
            break
        if on_progress is not None:
            on_progress(progress)
    if result.failures:
        listed = "; ".join(f"{sid}: {message}" for sid, message in result.failures)
        raise StudyError(
            f"{len(result.failures)} of {len(spec.settings())} settings failed ({listed}); "
            "the others are in the results; run the same command again to retry them"
        )
    return result
