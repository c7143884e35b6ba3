"""One setting: its engine configs, its id, and :func:`run_setting`, which simulates, trains,
reconstructs and scores it against its ground truth.

Determinism: a setting's result depends on its settings and seed only (weights from
``TrainingConfig.seed``, shuffling and groups from the configs' seeds, data from
:mod:`ptycho_engine.study.data`); no global random state is read or set. TensorFlow is
imported inside the functions that train.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from ptycho_engine.config import DataConfig, ModelConfig, TrainingConfig
from ptycho_engine.errors import DataError
from ptycho_engine.jsonio import from_json
from ptycho_engine.pipeline.events import RunResult
from ptycho_engine.pipeline.spec import RunSpec, recipe
from ptycho_engine.study.columns import CHECKPOINT_FRACTIONS, FLAGS_COLUMN, checkpoint_column
from ptycho_engine.study.data import digest, object_shape, simulate_setting
from ptycho_engine.study.spec import STUDY_FORMAT, StudySetting, StudySpec


def run_length(spec: StudySpec, setting: StudySetting) -> int:
    """Epochs of a network setting, iterations of a solver setting."""
    return spec.epochs if setting.algorithm == "pinn" else spec.iterations


#: Training settings a study fixes, whatever the engine's defaults: a study measures quality
#: against steps, and scores its checkpoints as the results of shorter runs, so it trains
#: every planned epoch and ends on its last weights (no early stopping, no restore); its step
#: runs without XLA so that results stay bit-for-bit those of earlier runs of the same id.
STUDY_TRAINING: dict[str, Any] = {
    "early_stopping_patience": 0,
    "restore_best_weights": False,
    "early_stopping_tolerance": 0.01,  # unused without early stopping and restore
    "jit_compile": False,
    "pretrained": False,  # a study measures training from scratch
}
#: The stitching window a study scores with: the flat support its results were first
#: measured with (the engine's default became the probe window later), so that a setting's
#: results stay those of its id.
STUDY_STITCH_WINDOW = "support"
#: Nor does a study divide the scan grid's pattern out of its images (the engine's default
#: since 2026-12-07), for the same reason.
STUDY_REMOVE_GRID_PATTERN = False


def run_spec(spec: StudySpec, setting: StudySetting) -> RunSpec:
    """The pipeline's run of one setting: the recipe every front end uses, with the study's
    fixed settings (and :data:`STUDY_TRAINING`), the setting's loss (or solver) and seed, no
    live previews, and the checkpoints scored (:data:`CHECKPOINT_FRACTIONS`)."""
    if setting.algorithm != "pinn":
        marks = [e for e in checkpoint_epochs(spec.iterations).values() if e < spec.iterations]
        # a preview at every checkpoint: every gcd(checkpoints)-th iteration
        every = math.gcd(*marks) if marks else 0
        return recipe(
            setting.N,
            reconstructor=setting.algorithm,
            seed=setting.seed,
            solver={"iterations": spec.iterations, "seed": setting.seed, "preview_every": every},
        )
    early = tuple(e for e in checkpoint_epochs(spec.epochs).values() if e < spec.epochs)
    return recipe(
        setting.N,
        setting.gridsize,
        spec.epochs,
        loss=setting.loss,
        seed=setting.seed,
        n_filters_scale=spec.n_filters_scale,
        **(ModelConfig.LEGACY_DECODER if spec.two_decoders else {}),
        validation=spec.validation,
        batch_size=spec.batch_size,
        learning_rate=spec.learning_rate,
        mae_warmup_epochs=spec.mae_warmup_epochs,
        preview_every=0,
        score_epochs=early,
        stitch_window=STUDY_STITCH_WINDOW,
        remove_grid_pattern=STUDY_REMOVE_GRID_PATTERN,
        **STUDY_TRAINING,
    )


def configs(
    spec: StudySpec, setting: StudySetting
) -> tuple[ModelConfig, TrainingConfig, DataConfig]:
    """Engine configs of one setting: ``(ModelConfig, TrainingConfig, DataConfig)`` of its
    :func:`run_spec`."""
    run = run_spec(spec, setting)
    return run.model, run.training, run.grouping


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
    key = {
        "format": STUDY_FORMAT,
        "setting": dataclasses.asdict(setting),
        "positions": spec.positions,
        "object": spec.object_kind,
        "object_shape": list(object_shape(spec, setting.seed)),
        "scan": spec.scan,
        "probe": spec.probe_kind,
        # the decoder fields came after the study format; at the values of the network that
        # studies trained before them they stay out of the key (earlier ids hold)
        "model_config": {
            k: v
            for k, v in model.to_dict().items()
            if not (k in ModelConfig.LEGACY_DECODER and v == ModelConfig.LEGACY_DECODER[k])
        },
        # the fields of STUDY_TRAINING came after the study format; at the values a study
        # fixes they leave a result as it was, so they stay out of the key (earlier ids hold)
        "training_config": {
            k: v
            for k, v in training.to_dict().items()
            if not (k in STUDY_TRAINING and v == STUDY_TRAINING[k])
        },
        # the validation field came after the study format; held-out groups, what studies
        # validated on before it, stay out of the key (earlier ids hold), and so does the
        # field of a solver, which has no validation
        "data_config": {
            k: v
            for k, v in data.to_dict().items()
            if not (k == "validation" and (v == "groups" or setting.algorithm != "pinn"))
        },
    }
    if setting.algorithm != "pinn":
        # a solver's result depends on its own settings, not the network's
        key["solver_config"] = run_spec(spec, setting).solver.to_dict()
    return key


def setting_id(spec: StudySpec, setting: StudySetting) -> str:
    """Stable id: ``<label>-<10 hex digits of sha256(setting_key)>``, e.g.
    ``"N32-g2-1e6-nll-s0-3fa41c09be"``; also the name of the setting's run folder."""
    return f"{setting.label()}-{digest(setting_key(spec, setting))[:10]}"


@dataclass(frozen=True, eq=False)
class SettingOutcome:
    """What running one setting produced (numpy arrays and plain values only: it crosses
    processes).

    Attributes
    ----------
    setting_id : str
    row : dict
        One results row, every key of :data:`COLUMNS`; non-finite floats are kept as floats.
    result : RunResult
        The pipeline's result, without the prepared data and the trained models (so the run
        folder, written by :func:`ptycho_engine.runs.write_run_folder`, is the same whatever
        the executor).
    stopped : bool
        True when a stop event ended training early; such an outcome is never recorded.
    """

    setting_id: str
    row: dict[str, Any]
    result: RunResult
    stopped: bool = False


def _checkpoint_ssim(history: tuple[dict[str, Any], ...], epoch: int, channel: str) -> float:
    for record in history:
        if record["epoch"] == epoch and record.get("metrics"):
            value = record["metrics"]["reconstruction"][channel]["ssim"]
            return float(from_json(value))
    return math.nan


def run_setting(
    spec: StudySpec,
    setting: StudySetting,
    obj: np.ndarray | None = None,
    stop_event: threading.Event | None = None,
) -> SettingOutcome:
    """Simulate one setting and run it through the pipeline; score it against its truth.

    Parameters
    ----------
    spec : StudySpec
    setting : StudySetting
    obj : ndarray, optional
        The ground truth of ``setting.seed`` when already at hand (saves making it again).
    stop_event : threading.Event, optional
        Passed to the pipeline; when set, the outcome is returned with ``stopped=True``.

    Returns
    -------
    SettingOutcome
    """
    from ptycho_engine.metrics import flag_text, flat_scores
    from ptycho_engine.pipeline import run
    from ptycho_engine.streams import drain

    start = time.perf_counter()
    sid = setting_id(spec, setting)
    data = simulate_setting(spec, setting, obj)
    if data.object_gt is None:  # simulate_setting always sets it; a guard for type checkers
        raise DataError(f"{sid}: the simulated data carry no ground truth")
    result = drain(run(run_spec(spec, setting), data, stop_event=stop_event))
    result = dataclasses.replace(result, data=None, state=None)
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
        # the network's settings; a solver has neither
        "two_decoders": spec.two_decoders if setting.algorithm == "pinn" else None,
        "validation": spec.validation if setting.algorithm == "pinn" else None,
        "batch_size": spec.batch_size,
        "learning_rate": spec.learning_rate,
        "mae_warmup_epochs": spec.mae_warmup_epochs,
        "algorithm": setting.algorithm,
        "iterations": spec.iterations if setting.algorithm != "pinn" else None,
    }
    scores = result.scores
    if scores is not None:
        row.update(flat_scores(scores.report))
        row.update(flat_scores(scores.chance, "chance_"))
    last = result.history[-1] if result.history else None
    timings = result.timings_s
    checkpoint_s = timings.get("previews", 0.0) + timings.get("preview_scoring", 0.0)
    row.update(
        {
            "scored_pixels": int(scores.report.n_pixels) if scores else 0,
            "shift_y_px": float(scores.report.shift_px[0]) if scores else math.nan,
            "shift_x_px": float(scores.report.shift_px[1]) if scores else math.nan,
            "measured_photons": float(data.photons_per_pattern),
            "epochs_run": int(last["epoch"]) if last else 0,
            "steps": int(result.steps),
            "final_loss": float(last["loss"]) if last else math.nan,
            "final_val_loss": float(last["val_loss"]) if last else math.nan,
            "predicted_to_measured_counts": float(last["predicted_to_measured_counts"])
            if last
            else math.nan,
            "saturated_fraction": float(last["saturated_fraction"]) if last else math.nan,
            "region": scores.report.region if scores else "nothing scored",
            FLAGS_COLUMN: flag_text(scores.report) if scores else "no reconstruction",
            # the network's training, or the solver's iterations
            "train_time_s": float(timings.get("train", timings.get("iterate", math.nan))),
            "reconstruct_time_s": float(timings.get("reconstruct", 0.0)),
            "checkpoint_time_s": float(checkpoint_s),
            "setting_time_s": time.perf_counter() - start,
        }
    )
    length = run_length(spec, setting)
    for fraction, epoch in checkpoint_epochs(length).items():
        for channel in ("amplitude", "phase"):
            if epoch >= length and not result.stopped and scores is not None:
                value = float(getattr(scores.report, channel).ssim)
            else:
                value = _checkpoint_ssim(result.history, epoch, channel)
            row[checkpoint_column(channel, fraction)] = value
    return SettingOutcome(setting_id=sid, row=row, result=result, stopped=result.stopped)


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
