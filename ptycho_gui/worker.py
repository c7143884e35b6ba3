"""The engine's adapter to Qt: one :class:`EngineWorker` living in a ``QThread``.

This is the only place where the pipeline's events become Qt signals. Runs go through the
engine's one pipeline (:func:`ptycho_engine.pipeline.run`), with the spec the recipe makes of
the panel's settings, so a run here is the run the command line and the studies make of the
same settings. The worker adds what an interactive session needs: warm starts from earlier
runs (:class:`ptycho_engine.pipeline.WarmStarts`), prepared data cached per preparation, the
predicted pattern of a clicked position, and a run folder per finished run in the session
folder.

Jobs follow the app's one worker pattern (:class:`ptycho_gui.jobs.JobWorker`): the newest
request of a kind replaces a pending one, and a run stops within one training step.
"""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from ptycho_engine.data import DiffractionData, StepProgress
from ptycho_engine.errors import PtychoError
from ptycho_gui.jobs import JobWorker, error_message
from ptycho_gui.view_models.run_settings import RunSettings
from ptycho_gui.view_models.runs import (
    RunInfo,
    RunOutcome,
    RunSnapshot,
    summarise,
)

__all__ = ["EngineWorker", "error_message"]


class EngineWorker(JobWorker):
    """Runs data loading, probe reading, runs and predictions in its own thread.

    Parameters
    ----------
    session_dir : Path, optional
        Folder that receives a run folder (``run-<id>``) per finished run; None writes none.

    Signals
    -------
    data_loaded(DiffractionData, DataSummary)
    run_started(RunInfo)
    stage_changed(int, str)
        Run id and the stage it entered ("preparing data", "building the model", "first step
        (compiling)", "training", "reconstructing", "scoring").
    snapshot_ready(RunSnapshot)
        Once per epoch (with the scores of stitched epochs), and for each image shown while
        the run goes on (the first image of a warm start has ``epoch == 0``).
    run_finished(RunOutcome)
        For every run that started, finished, stopped or failed.
    progress_changed(int, int, float)
        ``done, total, eta_s`` in training steps (``eta_s`` < 0 when unknown); about once a
        second during training, and while a file loads (patterns read).
    pattern_predicted(int, ndarray, ndarray)
        Scan position index, measured and predicted amplitudes ``(N, N)`` float32.
    probe_read(str, int, object, str)
        Probe file, the N it was read for, its :class:`~ptycho_engine.io.ProbeData` (None
        when it could not be read) and the error message ("" when it could).
    status_changed(str)
        Short notes for the status bar.
    """

    KINDS = ("warmup", "load", "probe", "run", "predict")
    data_loaded = Signal(object, object)
    run_started = Signal(object)
    stage_changed = Signal(int, str)
    snapshot_ready = Signal(object)
    run_finished = Signal(object)
    progress_changed = Signal(int, int, float)
    pattern_predicted = Signal(int, object, object)
    probe_read = Signal(str, int, object, str)
    status_changed = Signal(str)

    def __init__(self, session_dir: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.session_dir = session_dir
        self._running_settings: RunSettings | None = None
        # Worker-thread state below: touched only by jobs, which run in the worker thread.
        from ptycho_engine.pipeline import WarmStarts

        self._tf_ready = False
        self._data: DiffractionData | None = None
        self._prepared: dict[Any, DiffractionData] = {}
        self._warm = WarmStarts()
        self._current: Any = None  # the newest RunResult with a state, for predictions
        self._next_run_id = 1
        self._deferred_prediction: int | None = None

    # ---------------------------------------------------------------- GUI-thread API

    @property
    def running_settings(self) -> RunSettings | None:
        """Settings of the run in progress (None when idle); safe from any thread."""
        with self._lock:
            return self._running_settings

    def request_warmup(self) -> None:
        """Import TensorFlow and size its thread pool now, before the user waits on it."""
        self.post("warmup", True)

    def request_load(self, path: str | os.PathLike[str]) -> None:
        """Load a diffraction file; stops the current run and drops a pending one."""
        self.post("load", ("file", str(path)), stop=True, drop=("run", "predict"))

    def request_sample(self, recipe_path: str | os.PathLike[str], cache_dir: str) -> None:
        """Load the bundled sample data, simulating it into ``cache_dir`` on first use."""
        self.post(
            "load", ("sample", str(recipe_path), cache_dir), stop=True, drop=("run", "predict")
        )

    def request_probe(self, path: str, n: int) -> None:
        """Read a probe file for size ``n`` (answered by :attr:`probe_read`)."""
        self.post("probe", (str(path), int(n)))

    def request_run(self, settings: RunSettings) -> None:
        """Run ``settings`` next, stopping the current run; replaces any pending run."""
        self.post("run", settings, stop=True)

    def request_prediction(self, index: int) -> None:
        """Predict the diffraction of scan position ``index`` with the newest model."""
        self.post("predict", int(index))

    def stop_run(self) -> None:
        """Stop the current run (within one optimiser step) and drop a pending one."""
        self.cancel("run")

    # ---------------------------------------------------------------- worker thread

    def handle(self, kind: str, payload: Any, stop: threading.Event) -> None:
        self._ensure_tf()
        if kind == "load":
            self._load(payload)
        elif kind == "probe":
            self._read_probe(*payload)
        elif kind == "run":
            self._run(payload, stop)
        elif kind == "predict":
            self._predict(payload)

    def _ensure_tf(self) -> None:
        if self._tf_ready:
            return
        import tensorflow as tf

        self._tf_ready = True
        threads = max(1, (os.cpu_count() or 2) - 1)
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
        except RuntimeError:
            # TensorFlow was already initialised in this process (e.g. by a test of the
            # engine); its pool size can no longer change.
            self.status_changed.emit("TensorFlow already initialised: thread count unchanged")
        else:
            self.status_changed.emit(f"TensorFlow ready ({threads} compute threads)")

    def _load(self, payload: tuple[str, ...]) -> None:
        from ptycho_engine.io import read_data

        if payload[0] == "sample":
            from ptycho_gui.sample_data import ensure_sample_data

            self.status_changed.emit("Preparing the sample data…")
            path = str(ensure_sample_data(Path(payload[1]), Path(payload[2])))
        else:
            path = payload[1]
        self.status_changed.emit(f"Reading {path}…")

        def progress(done: int, total: int) -> None:
            self.progress_changed.emit(int(done), int(total), -1.0)

        data = read_data(path, progress=progress)
        self._data = data
        self._prepared.clear()
        self._current = None
        self.data_loaded.emit(data, summarise(data, path))
        self.status_changed.emit(f"Loaded {data.n_patterns} patterns from {path}")

    def _read_probe(self, path: str, n: int) -> None:
        from ptycho_engine.io import read_probe

        try:
            # read as it is: the panel previews it and tells whether it fits N
            probe = read_probe(path)
        except (PtychoError, OSError) as exc:
            self.probe_read.emit(path, n, None, error_message(exc))
            return
        self.probe_read.emit(path, n, probe, "")

    def _prepared_data(self, spec: Any, near_field: bool) -> DiffractionData:
        from ptycho_engine.pipeline import prepare_data

        if self._data is None:
            raise PtychoError("no data loaded: open a diffraction file first")
        key = (spec.preparation, near_field)
        if key not in self._prepared:
            self._prepared[key] = prepare_data(self._data, spec.preparation, near_field)
        return self._prepared[key]

    def _run(self, settings: RunSettings, stop: threading.Event) -> None:
        from ptycho_engine.pipeline import get_reconstructor, resolve_probe, run
        from ptycho_engine.streams import drain

        run_id = self._next_run_id
        self._next_run_id += 1
        with self._lock:
            self._running_settings = settings
        start = time.perf_counter()
        started = False
        try:
            spec = settings.run_spec()
            reconstructor = get_reconstructor(spec.reconstructor)
            self.stage_changed.emit(run_id, "preparing data")
            data = self._prepared_data(spec, reconstructor.near_field)
            probe = resolve_probe(spec, data, reconstructor.needs_probe)
            state, warm = self._warm.lookup(spec, probe)
            info = RunInfo(
                run_id,
                settings,
                warm,
                None if probe is None else probe[0],
                data.positions_px,
                pixel_size_m=data.pixel_size_m,
                data_path=str(data.provenance.get("path", "")),
            )
            self.run_started.emit(info)
            started = True
            events = _EventTranslator(self, run_id, settings.planned_epochs, settings.iterative)
            result = drain(run(spec, data, stop_event=stop, warm_start=state), events)
            self._warm.keep(spec, probe, result.state)
            if result.state is not None:
                self._current = result
            run_dir = self._write_run(run_id, result)
            outcome = _outcome(run_id, result, time.perf_counter() - start, run_dir)
        except Exception as exc:  # reported as a failed run; the worker stays up
            message = error_message(exc)
            if not started:
                self.run_started.emit(RunInfo(run_id, settings, "scratch", None, None))
            self.error_occurred.emit(message)
            outcome = RunOutcome(run_id, "failed", time.perf_counter() - start, message)
        finally:
            with self._lock:
                self._running_settings = None
        self.run_finished.emit(outcome)
        if self._deferred_prediction is not None and self._current is not None:
            index, self._deferred_prediction = self._deferred_prediction, None
            self._predict(index)

    def _write_run(self, run_id: int, result: Any) -> str:
        """The run's folder in the session folder ("" when none is written: no session
        folder, no image, or the app is closing and must not wait for the files)."""
        from ptycho_engine.runs import write_run_folder

        if self.session_dir is None or result.reconstruction is None or self.closing:
            return ""
        folder = Path(self.session_dir) / f"run-{run_id}"
        write_run_folder(folder, result, {"command": "app", "run_id": run_id})
        return str(folder)

    def _predict(self, index: int) -> None:
        from ptycho_engine.pipeline import get_reconstructor

        current = self._current
        if current is None or current.data is None:
            self.status_changed.emit("no trained model yet: the prediction follows the next run")
            self._deferred_prediction = index
            return
        reconstructor = get_reconstructor(current.reconstructor)
        measured, predicted = reconstructor.predict_pattern(
            current.state, current.data, current.spec, index
        )
        self.pattern_predicted.emit(index, measured, predicted)


class _EventTranslator:
    """Turns one run's pipeline events into the worker's signals (in the worker thread).

    An iterative solver reports no step progress within an iteration: its progress is the
    iterations done, sent with each iteration's end.
    """

    def __init__(self, worker: EngineWorker, run_id: int, epochs: int, iterative: bool) -> None:
        self.worker = worker
        self.run_id = run_id
        self.epochs = epochs
        self.iterative = iterative
        self._shown_preview: Any = None

    def __call__(self, event: Any) -> None:
        from ptycho_engine.pipeline import EpochFinished, Notice, PartialImage, StageChanged

        w = self.worker
        if isinstance(event, StageChanged):
            w.stage_changed.emit(self.run_id, event.stage)
        elif isinstance(event, Notice):
            w.status_changed.emit(("Warning: " if event.level == "warning" else "") + event.text)
        elif isinstance(event, StepProgress):
            total = event.epochs * event.steps_per_epoch
            eta = _eta(event.elapsed_s, event.steps, total)
            w.progress_changed.emit(event.steps, total, eta)
        elif isinstance(event, EpochFinished):
            snap = event.snapshot
            preview = snap.preview
            self._shown_preview = preview
            w.snapshot_ready.emit(
                RunSnapshot(
                    self.run_id,
                    snap.epoch,
                    snap.epochs,
                    loss=snap.loss,
                    val_loss=snap.val_loss,
                    elapsed_s=snap.elapsed_s,
                    stage=snap.stage,
                    amplitude=None if preview is None else preview.amplitude,
                    phase=None if preview is None else preview.phase,
                    valid=None if preview is None else preview.valid,
                    origin_px=(0.0, 0.0) if preview is None else preview.origin_px,
                    metrics={} if event.scores is None else _flat(event.scores),
                    probe=snap.probe,
                )
            )
            if self.iterative and not snap.stopped:
                eta = _eta(snap.elapsed_s, snap.epoch, snap.epochs)
                w.progress_changed.emit(snap.epoch, snap.epochs, eta)
        elif isinstance(event, PartialImage):
            if event.image is self._shown_preview:
                return  # sent with its epoch already
            image = event.image
            w.snapshot_ready.emit(
                RunSnapshot(
                    self.run_id,
                    event.epoch,
                    self.epochs,
                    image_only=True,
                    amplitude=image.amplitude,
                    phase=image.phase,
                    valid=image.valid,
                    origin_px=image.origin_px,
                )
            )


def _eta(elapsed_s: float, done: int, total: int) -> float:
    if done <= 0 or total <= 0:
        return -1.0
    return elapsed_s / done * max(total - done, 0)


def _flat(report: Any) -> dict[str, float]:
    from ptycho_engine.metrics import flat_scores

    return flat_scores(report)


def _outcome(run_id: int, result: Any, elapsed_s: float, run_dir: str) -> RunOutcome:
    image = result.reconstruction
    history = tuple(
        (int(h["epoch"]), float(h["loss"]), float(h["val_loss"]))
        for h in result.history
        if int(h["epoch"]) > 0
    )
    metrics: dict[str, float] = {}
    flags: tuple[str, ...] = ()
    if result.scores is not None:
        metrics = _flat(result.scores.report)
        flags = tuple(result.scores.report.flags)
    return RunOutcome(
        run_id,
        result.state_name,
        elapsed_s,
        object=None if image is None else image.object,
        valid=None if image is None else image.valid,
        origin_px=(0.0, 0.0) if image is None else image.origin_px,
        metrics=metrics,
        flags=flags,
        history=history,
        run_dir=run_dir,
        steps=int(result.steps),
        timings_s=dict(result.timings_s),
        loss=float(history[-1][1]) if history else math.nan,
        probe_modes=np.asarray(result.probe_modes),
        positions_px=np.asarray(result.positions_px, np.float64),
    )
