"""The engine's adapter to Qt: one :class:`EngineWorker` living in a ``QThread``.

This is the only place where the pipeline's events become Qt signals. Runs go through the
engine's one pipeline (:func:`ptycho_engine.pipeline.run`), with the spec the recipe makes of
the panel's settings, so a run here is the run the command line and the studies make of the
same settings. The worker adds what an interactive session needs: warm starts from earlier
runs (:class:`ptycho_engine.pipeline.WarmStarts`), prepared data cached per preparation, the
predicted pattern of a clicked position, and a run folder per finished run in the session
folder, whose ``run.json`` context holds what the app needs to rebuild the run's record
(:func:`ptycho_gui.view_models.session.run_context`).

Jobs follow the app's one worker pattern (:class:`ptycho_gui.jobs.JobWorker`): the newest
request of a kind replaces a pending one, and a run stops within one training step. Run ids
are given when a run is asked for (:meth:`EngineWorker.request_run`), so the table can show a
queued run before it starts; a queued run replaced by a newer request keeps its id.

A prediction asked for while a run trains is made between two of its steps, in this thread
(TensorFlow is used from this thread only), with the newest model that exists: the last run's
state, which is the live model itself when the live run continues it (a warm start).
"""

from __future__ import annotations

import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from ptycho_engine.data import DiffractionData, StepProgress
from ptycho_engine.errors import PtychoError
from ptycho_gui.jobs import JobWorker, error_message
from ptycho_gui.view_models.comparison import position_scale
from ptycho_gui.view_models.run_settings import RunSettings
from ptycho_gui.view_models.runs import (
    RunInfo,
    RunOutcome,
    RunSnapshot,
    summarise,
)
from ptycho_gui.view_models.session import highest_run_id, run_context

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
    prediction_made(int, int)
        Scan position index and the run whose model predicted it (just before
        :attr:`pattern_predicted`).
    prediction_deferred(int, int)
        Scan position index and the run whose end it waits for (0: the next run), when no
        model of the data exists yet.
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
    prediction_made = Signal(int, int)
    prediction_deferred = Signal(int, int)
    probe_read = Signal(str, int, object, str)
    status_changed = Signal(str)

    def __init__(self, session_dir: Path | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # re-entrant: request_run gives a run id and posts the job under one hold of the lock
        self._lock = threading.RLock()  # type: ignore[assignment]
        self._session_dir = session_dir
        self._running_settings: RunSettings | None = None
        self._running_id: int | None = None
        self._next_run_id = 1  # under the lock: ids are given in the GUI thread
        self._model_run_id: int | None = None
        # Worker-thread state below: touched only by jobs, which run in the worker thread.
        from ptycho_engine.pipeline import WarmStarts

        self._tf_ready = False
        self._data: DiffractionData | None = None
        self._prepared: dict[Any, DiffractionData] = {}
        self._warm = WarmStarts()
        self._current: Any = None  # the newest RunResult with a state, for predictions
        self._last_prediction: int | None = None  # predicted again by each newer model

    # ---------------------------------------------------------------- GUI-thread API

    @property
    def running_settings(self) -> RunSettings | None:
        """Settings of the run in progress (None when idle); safe from any thread."""
        with self._lock:
            return self._running_settings

    @property
    def running_run_id(self) -> int | None:
        """Id of the run in progress (None when idle); safe from any thread."""
        with self._lock:
            return self._running_id

    @property
    def model_run_id(self) -> int | None:
        """The run whose model predicts patterns now (None before the first run of the data
        ended); safe from any thread."""
        with self._lock:
            return self._model_run_id

    @property
    def session_dir(self) -> Path | None:
        """Folder that receives the run folders of runs started from now on."""
        with self._lock:
            return self._session_dir

    def set_session(self, folder: str | os.PathLike[str] | None, highest_id: int = 0) -> None:
        """Write the runs started from now on into ``folder``, numbered after ``highest_id``
        (and after every id given so far: ids never repeat in a window)."""
        with self._lock:
            self._session_dir = None if folder is None else Path(folder)
            self._next_run_id = max(self._next_run_id, int(highest_id) + 1)

    def request_warmup(self) -> None:
        """Import TensorFlow and size its thread pool now, before the user waits on it."""
        self.post("warmup", True)

    def request_load(
        self, path: str | os.PathLike[str], profile: str = "", prefetch: Any = None
    ) -> int | None:
        """Load a diffraction file (with a JSON mapping ``profile`` for generic NPZ/HDF5
        files); stops the current run and drops a pending one, whose id it returns (None when
        none was pending). ``prefetch``: the :class:`~ptycho_engine.config.ModelConfig` whose
        pretrained network the first image will want, built while the file is read (None:
        none)."""
        with self._lock:
            dropped = self._drop_pending_run()
            self.post(
                "load",
                ("file", str(path), str(profile), prefetch),
                stop=True,
                drop=("predict",),
            )
        return dropped

    def request_sample(
        self, recipe_path: str | os.PathLike[str], cache_dir: str, prefetch: Any = None
    ) -> int | None:
        """Load the bundled sample data, simulating it into ``cache_dir`` on first use; as
        :meth:`request_load` for the runs and ``prefetch``."""
        with self._lock:
            dropped = self._drop_pending_run()
            self.post(
                "load",
                ("sample", str(recipe_path), cache_dir, prefetch),
                stop=True,
                drop=("predict",),
            )
        return dropped

    def request_probe(self, path: str, n: int) -> None:
        """Read a probe file for size ``n`` (answered by :attr:`probe_read`)."""
        self.post("probe", (str(path), int(n)))

    def request_run(self, settings: RunSettings) -> int:
        """Run ``settings`` next, stopping the current run; replaces any pending run.

        Returns
        -------
        int
            The id the run will have: a pending run's id when it replaces one, else a new one.
        """
        with self._lock:
            pending = self._pending.get(("run", None))
            if pending is not None:
                run_id = int(pending[0])
            else:
                run_id = self._next_run_id
                self._next_run_id += 1
            self.post("run", (run_id, settings), stop=True)
        return run_id

    def request_prediction(self, index: int) -> None:
        """Predict the diffraction of scan position ``index`` with the newest model (between
        two steps of a run in progress)."""
        self.post("predict", int(index))

    def stop_run(self) -> int | None:
        """Stop the current run (within one optimiser step) and drop a pending one; returns
        the dropped run's id (None when none was pending)."""
        with self._lock:
            dropped = self._drop_pending_run()
            self.cancel("run")
        return dropped

    def _drop_pending_run(self) -> int | None:
        """Forget the pending run (call with the lock held); its id, the newest one given, is
        given again to the next run."""
        pending = self._pending.pop(("run", None), None)
        if pending is None:
            return None
        run_id = int(pending[0])
        if run_id == self._next_run_id - 1:
            self._next_run_id = run_id
        return run_id

    # ---------------------------------------------------------------- worker thread

    def handle(self, kind: str, payload: Any, stop: threading.Event) -> None:
        self._ensure_tf()
        if kind == "warmup":
            self._reserve_session_ids()
        elif kind == "load":
            self._load(payload)
        elif kind == "probe":
            self._read_probe(*payload)
        elif kind == "run":
            run_id, settings = payload
            self._run(run_id, settings, stop)
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

    def _reserve_session_ids(self) -> None:
        """Number new runs after those of a session folder that holds some already, so that
        none is overwritten (the first job: before any data, hence before any run)."""
        folder = self.session_dir
        if folder is not None:
            highest = highest_run_id(folder)
            with self._lock:  # ids only: the window may have chosen another folder meanwhile
                self._next_run_id = max(self._next_run_id, highest + 1)

    def _load(self, payload: tuple[Any, ...]) -> None:
        kind, source, extra, prefetch = payload

        def progress(done: int, total: int) -> None:
            self.progress_changed.emit(int(done), int(total), -1.0)

        def read() -> tuple[DiffractionData, str]:
            # file I/O and numpy only (no TensorFlow): safe beside this thread's Keras work
            from ptycho_engine.io import read_data

            if kind == "sample":
                from ptycho_gui.sample_data import ensure_sample_data

                self.status_changed.emit("Preparing the sample data…")
                path = str(ensure_sample_data(Path(source), Path(extra)))
            else:
                path = source
            self.status_changed.emit(f"Reading {path}…")
            profile = extra if kind == "file" else ""
            return read_data(path, profile or None, progress=progress), path

        if prefetch is None:
            data, path = read()
        else:
            # the file is read in a helper thread while this one builds the pretrained network
            # that the first image will want (Keras stays in this thread)
            with ThreadPoolExecutor(1, thread_name_prefix="engine-read") as pool:
                reading = pool.submit(read)
                self._prefetch(prefetch)
                data, path = reading.result()  # its error is the load's error
        self._data = data
        self._prepared.clear()
        self._current = None
        self._last_prediction = None
        with self._lock:
            self._model_run_id = None
        self.status_changed.emit(f"Loaded {data.n_patterns} patterns from {path}")
        self.data_loaded.emit(data, summarise(data, path))  # the window says what to do next

    def _prefetch(self, config: Any) -> None:
        """Build and read the pretrained network of ``config`` into the engine's cache; a
        network that cannot be read is left for the run to report."""
        from ptycho_engine.pretrain import prefetch

        try:
            prefetch(config)
        except (PtychoError, OSError) as exc:
            self.status_changed.emit(f"pretrained network not read ahead: {error_message(exc)}")

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

    def _run(self, run_id: int, settings: RunSettings, stop: threading.Event) -> None:
        from ptycho_engine.pipeline import get_reconstructor, resolve_probe, run
        from ptycho_engine.streams import drain

        with self._lock:
            self._running_settings = settings
            self._running_id = run_id
            folder = self._session_dir  # a run is written where the session was at its start
        start = time.perf_counter()
        started = False
        try:
            spec = settings.run_spec()
            reconstructor = get_reconstructor(spec.reconstructor)
            self.stage_changed.emit(run_id, "preparing data")
            data = self._prepared_data(spec, reconstructor.near_field)
            probe = resolve_probe(spec, data, reconstructor.needs_probe)
            state, warm = self._warm.lookup(spec, probe)
            if warm == "scratch" and spec.reconstructor == "pinn" and spec.training.pretrained:
                from ptycho_engine.pretrain import find_pretrained

                if find_pretrained(spec.model) is not None:
                    warm = "pretrained"  # the pipeline starts from it (its messages say so)
            if warm == "cached" and self._current is not None and state is self._current.state:
                # the run trains the newest model itself: a prediction now shows this run's
                with self._lock:
                    self._model_run_id = run_id
            raw = self._data
            assert raw is not None  # _prepared_data refused the run otherwise
            info = RunInfo(
                run_id,
                settings,
                warm,
                None if probe is None else probe[0],
                data.positions_px,
                pixel_size_m=data.pixel_size_m,
                data_path=str(data.provenance.get("path", "")),
                data_sha256=str(data.provenance.get("sha256", "") or ""),
                position_scale=position_scale(data.positions_px, raw.positions_px),
                energy_ev=data.energy_ev,
                distance_m=data.distance_m,
            )
            self.run_started.emit(info)
            started = True
            events = _EventTranslator(self, run_id, settings.planned_epochs, settings.iterative)
            result = drain(run(spec, data, stop_event=stop, warm_start=state), events)
            self._warm.keep(spec, probe, result.state)
            if result.state is not None:
                self._current = result
                with self._lock:
                    self._model_run_id = run_id
            elapsed = time.perf_counter() - start
            run_dir = self._write_run(folder, info, result, elapsed)
            outcome = _outcome(run_id, result, elapsed, run_dir)
        except Exception as exc:  # reported as a failed run; the worker stays up
            message = error_message(exc)
            if not started:
                self.run_started.emit(RunInfo(run_id, settings, "scratch", None, None))
            self.error_occurred.emit(message)
            outcome = RunOutcome(run_id, "failed", time.perf_counter() - start, message)
        finally:
            with self._lock:
                self._running_settings = None
                self._running_id = None
        self.run_finished.emit(outcome)
        if self._last_prediction is not None and self._current is not None:
            # the newest model predicts the position shown (a pending request follows anyway)
            with self._lock:
                asked = ("predict", None) in self._pending
            if not asked and not self.closing:
                self._predict(self._last_prediction)

    def _write_run(self, folder: Path | None, info: RunInfo, result: Any, elapsed_s: float) -> str:
        """The run's folder in the session folder ("" when none is written: no session
        folder, no image, or the app is closing and must not wait for the files)."""
        from ptycho_engine.runs import write_run_folder

        if folder is None or result.reconstruction is None or self.closing:
            return ""
        target = Path(folder) / f"run-{info.run_id}"
        write_run_folder(target, result, run_context(info, elapsed_s))
        return str(target)

    def _predict(self, index: int) -> None:
        """Predict ``index`` with the newest model; without one, wait for the run in
        progress (or the next) to end."""
        from ptycho_engine.pipeline import get_reconstructor

        current = self._current
        self._last_prediction = index
        with self._lock:
            model_run = self._model_run_id
            running = self._running_id
        if current is None or current.data is None or model_run is None:
            after = f"run #{running}" if running is not None else "the next run"
            self.status_changed.emit(f"no trained model yet: the prediction follows {after}")
            self.prediction_deferred.emit(index, running or 0)
            return
        reconstructor = get_reconstructor(current.reconstructor)
        measured, predicted = reconstructor.predict_pattern(
            current.state, current.data, current.spec, index
        )
        self.prediction_made.emit(index, model_run)
        self.pattern_predicted.emit(index, measured, predicted)

    def _serve_prediction(self) -> None:
        """Between two steps of a run (in this thread, nothing of TensorFlow in flight): make
        a pending prediction now when a model exists, instead of after the run."""
        if self._current is None:
            return  # it stays pending: the run's own model answers it when the run ends
        with self._lock:
            index = self._pending.pop(("predict", None), None)
        if index is not None:
            try:
                self._predict(int(index))
            except Exception as exc:  # shown to the user; the run goes on
                self.error_occurred.emit(error_message(exc))


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
        self._total_steps = 0  # the network's steps in all, from its step progress

    def __call__(self, event: Any) -> None:
        from ptycho_engine.pipeline import EpochFinished, Notice, PartialImage, StageChanged

        w = self.worker
        if isinstance(event, StageChanged):
            w.stage_changed.emit(self.run_id, event.stage)
        elif isinstance(event, Notice):
            w.status_changed.emit(("Warning: " if event.level == "warning" else "") + event.text)
        elif isinstance(event, StepProgress):
            total = event.epochs * event.steps_per_epoch
            self._total_steps = total
            eta = _eta(event.elapsed_s, event.steps, total)
            w.progress_changed.emit(event.steps, total, eta)
            w._serve_prediction()
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
            elif self._total_steps and not snap.stopped:
                # the epoch's end (after its validation, preview and scores): progress too
                steps = int(getattr(snap, "steps", 0))
                eta = _eta(snap.elapsed_s, steps, self._total_steps)
                w.progress_changed.emit(steps, self._total_steps, eta)
            w._serve_prediction()
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
