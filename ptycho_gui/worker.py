"""The engine's adapter to Qt: one :class:`EngineWorker` living in a ``QThread``.

This is the only place where engine results become Qt signals. The GUI thread talks to the
worker through its ``request_*`` methods, which only store the newest request under a lock,
set a ``threading.Event`` when a running job must stop, and emit a queued signal; the job
itself runs in the worker thread. Because a pending request of each kind is *replaced* by a
newer one, a burst of edits never queues stale runs: when the thread gets to it, only the
newest settings run.

Thread-safety: nothing Qt is touched from the worker thread except emitting signals; all
arrays sent are numpy arrays that the worker does not modify afterwards.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, Signal

from ptycho_engine.data import DiffractionData, TrainingSnapshot
from ptycho_engine.errors import PtychoError
from ptycho_gui.view_models.run_settings import RunSettings
from ptycho_gui.view_models.runs import (
    RunInfo,
    RunOutcome,
    RunSnapshot,
    metrics_of,
    summarise,
)

MAX_CACHED_BUNDLES = 8
JOB_ORDER = ("warmup", "load", "run", "predict")


def _engine_train(*args: Any, **kwargs: Any) -> Any:
    """``ptycho_engine.training.train``, imported on first use (it imports TensorFlow)."""
    from ptycho_engine.training import train

    return train(*args, **kwargs)


def _engine_reconstruct(*args: Any, **kwargs: Any) -> Any:
    """``ptycho_engine.inference.reconstruct`` (a generator of partial canvases)."""
    from ptycho_engine.inference import reconstruct

    return reconstruct(*args, **kwargs)


def probe_digest(probe: np.ndarray) -> str:
    """A short hash of a probe's values (complex64), to key trained models by probe."""
    return hashlib.sha1(np.ascontiguousarray(probe, np.complex64).tobytes()).hexdigest()[:16]


def error_message(exc: BaseException) -> str:
    """The message a scientist reads: engine errors as they are, others with their type."""
    if isinstance(exc, PtychoError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class EngineWorker(QObject):
    """Runs data loading, training, inference and predictions in its own thread.

    Signals
    -------
    data_loaded(DiffractionData, DataSummary)
    run_started(RunInfo)
    snapshot_ready(RunSnapshot)
        Once per epoch, and once at the start of a warm run (``epoch == 0``).
    run_finished(RunOutcome)
        For every run that started, finished, stopped or failed.
    error_occurred(str)
    progress_changed(int, int, float)
        ``done, total, eta_s`` (``eta_s`` < 0 when unknown).
    pattern_predicted(int, ndarray, ndarray)
        Scan position index, measured and predicted amplitudes ``(N, N)`` float32.
    status_changed(str)
        Short notes for the status bar.
    """

    data_loaded = Signal(object, object)
    run_started = Signal(object)
    snapshot_ready = Signal(object)
    run_finished = Signal(object)
    error_occurred = Signal(str)
    progress_changed = Signal(int, int, float)
    pattern_predicted = Signal(int, object, object)
    status_changed = Signal(str)
    _jobs_posted = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: dict[str, Any] = {}
        self._stop_event = threading.Event()
        self._running_settings: RunSettings | None = None
        self._closing = False
        # Worker-thread state below: touched only by jobs, which run in the worker thread.
        self._tf_ready = False
        self._data: DiffractionData | None = None
        self._prepared: dict[tuple[int, str], DiffractionData] = {}
        self._bundles: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._latest_by_model: dict[tuple[Any, ...], Any] = {}
        self._current: tuple[Any, DiffractionData, Any, tuple[Any, ...]] | None = None
        self._next_run_id = 1
        self._deferred_prediction: int | None = None
        self._jobs_posted.connect(self._on_self_jobs_posted, Qt.ConnectionType.QueuedConnection)

    # ---------------------------------------------------------------- GUI-thread API

    @property
    def running_settings(self) -> RunSettings | None:
        """Settings of the run in progress (None when idle); safe from any thread."""
        with self._lock:
            return self._running_settings

    def request_warmup(self) -> None:
        """Import TensorFlow and size its thread pool now, before the user waits on it."""
        self._post("warmup", True)

    def request_load(self, path: str | os.PathLike[str]) -> None:
        """Load a diffraction file; stops the current run and drops a pending one."""
        self._post("load", ("file", str(path)), stop=True, drop=("run", "predict"))

    def request_sample(self, recipe_path: str | os.PathLike[str], cache_dir: str) -> None:
        """Load the bundled sample data, simulating it into ``cache_dir`` on first use."""
        self._post(
            "load", ("sample", str(recipe_path), cache_dir), stop=True, drop=("run", "predict")
        )

    def request_run(self, settings: RunSettings) -> None:
        """Run ``settings`` next, stopping the current run; replaces any pending run."""
        self._post("run", settings, stop=True)

    def request_prediction(self, index: int) -> None:
        """Predict the diffraction of scan position ``index`` with the newest model."""
        self._post("predict", int(index))

    def stop_run(self) -> None:
        """Stop the current run (within one optimiser step) and drop a pending one."""
        with self._lock:
            self._pending.pop("run", None)
            self._stop_event.set()

    def shutdown(self) -> None:
        """Stop everything; afterwards no job starts. Call ``QThread.quit`` and ``wait`` next."""
        with self._lock:
            self._closing = True
            self._pending.clear()
            self._stop_event.set()

    def _post(
        self, kind: str, payload: Any, stop: bool = False, drop: tuple[str, ...] = ()
    ) -> None:
        with self._lock:
            if self._closing:
                return
            for name in drop:
                self._pending.pop(name, None)
            self._pending[kind] = payload
            if stop:
                self._stop_event.set()
        self._jobs_posted.emit()

    # ---------------------------------------------------------------- worker thread

    def _take_job(self) -> tuple[str, Any] | None:
        with self._lock:
            if self._closing:
                return None
            for kind in JOB_ORDER:
                if kind in self._pending:
                    return kind, self._pending.pop(kind)
        return None

    def _on_self_jobs_posted(self) -> None:
        while (job := self._take_job()) is not None:
            kind, payload = job
            try:
                self._ensure_tf()
                if kind == "load":
                    self._load(payload)
                elif kind == "run":
                    self._run(payload)
                elif kind == "predict":
                    self._predict(payload)
            except Exception as exc:  # shown to the user; the worker keeps serving jobs
                self.error_occurred.emit(error_message(exc))

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

    def _prepared_data(self, settings: RunSettings) -> DiffractionData:
        from ptycho_engine.io import prepare

        if self._data is None:
            raise PtychoError("no data loaded: open a diffraction file first")
        key = (settings.N, settings.prep_mode)
        if key not in self._prepared:
            data = self._data
            if data.N == settings.N:
                self._prepared[key] = data
            else:
                self._prepared[key] = prepare(data, settings.N, settings.prep_mode)
        return self._prepared[key]

    @staticmethod
    def _probe_for(settings: RunSettings, data: DiffractionData) -> np.ndarray:
        from ptycho_engine.io import read_probe

        if settings.probe_path:
            return read_probe(settings.probe_path, settings.N).probe
        if data.probe is None:
            raise PtychoError("the data hold no probe: choose a probe file")
        return data.probe

    def _warm_bundle(self, key: tuple[Any, ...]) -> tuple[Any, str]:
        if key in self._bundles:
            self._bundles.move_to_end(key)
            return self._bundles[key], "cached"
        if key[:2] in self._latest_by_model:
            return self._latest_by_model[key[:2]], "transfer"
        return None, "scratch"

    def _keep_bundle(self, key: tuple[Any, ...], bundle: Any) -> None:
        self._bundles[key] = bundle
        self._bundles.move_to_end(key)
        self._latest_by_model[key[:2]] = bundle
        while len(self._bundles) > MAX_CACHED_BUNDLES:
            old_key, old = self._bundles.popitem(last=False)
            if self._latest_by_model.get(old_key[:2]) is old:
                del self._latest_by_model[old_key[:2]]

    def _run(self, settings: RunSettings) -> None:
        run_id = self._next_run_id
        self._next_run_id += 1
        stop = threading.Event()
        with self._lock:
            if self._closing:
                return
            self._stop_event = stop
            self._running_settings = settings
        start = time.perf_counter()
        started = False
        try:
            data = self._prepared_data(settings)
            probe = self._probe_for(settings, data)
            mcfg = settings.model_config()
            dcfg = settings.data_config()
            key = (mcfg, settings.prep_mode, probe_digest(probe))
            bundle, warm = self._warm_bundle(key)
            self.run_started.emit(RunInfo(run_id, settings, warm, probe, data.positions_px))
            started = True
            if bundle is not None and not stop.is_set():
                self._first_image(run_id, settings, bundle, data, dcfg)
            outcome = self._train(run_id, settings, data, probe, bundle, key, stop, start)
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

    def _first_image(
        self, run_id: int, settings: RunSettings, bundle: Any, data: DiffractionData, dcfg: Any
    ) -> None:
        # partial canvases as the batches finish: the first one is on screen after one batch
        # (about 0.1 s), not after the whole scan (seconds at N=64, gridsize 2); the views
        # keep only the newest, so emitting each is cheap
        for snap in _engine_reconstruct(bundle, data, dcfg, stop_event=self._stop_event):
            self.snapshot_ready.emit(
                RunSnapshot(
                    run_id,
                    0,
                    settings.epochs,
                    amplitude=np.abs(snap.object).astype(np.float32),
                    phase=np.angle(snap.object).astype(np.float32),
                    valid=snap.valid,
                    origin_px=snap.origin_px,
                )
            )

    def _train(
        self,
        run_id: int,
        settings: RunSettings,
        data: DiffractionData,
        probe: np.ndarray,
        bundle: Any,
        key: tuple[Any, ...],
        stop: threading.Event,
        start: float,
    ) -> RunOutcome:
        gen = _engine_train(
            data,
            settings.model_config(),
            settings.training_config(),
            settings.data_config(),
            stop_event=stop,
            # the data's own probe goes with all its incoherent modes (the views show the
            # strongest); a probe file replaces it
            probe=probe if settings.probe_path else data.probe_all_modes,
            bundle=bundle,
        )
        last_image: RunSnapshot | None = None
        history: list[tuple[int, float, float]] = []
        while True:
            try:
                snap: TrainingSnapshot = next(gen)
            except StopIteration as done:
                result = done.value
                break
            live = self._live(run_id, snap)
            history.append((snap.epoch, snap.loss, snap.val_loss))
            if live.has_image:
                last_image = live
            self.snapshot_ready.emit(live)
            per_epoch = snap.elapsed_s / max(snap.epoch, 1)
            eta = per_epoch * (snap.epochs - snap.epoch)
            self.progress_changed.emit(snap.epoch, snap.epochs, eta)
        self._keep_bundle(key, result.bundle)
        self._current = (result.bundle, data, settings.data_config(), key)
        state = "stopped" if result.stopped else "finished"
        outcome_kwargs: dict[str, Any] = {}
        if last_image is not None:
            assert last_image.amplitude is not None and last_image.phase is not None
            obj = (last_image.amplitude * np.exp(1j * last_image.phase)).astype(np.complex64)
            outcome_kwargs = {
                "object": obj,
                "valid": last_image.valid,
                "origin_px": last_image.origin_px,
                "metrics": self._metrics(obj, last_image.valid, last_image.origin_px, data),
            }
        if self._pending_prediction():
            self._deferred_prediction = self._take_prediction()
        if self._deferred_prediction is not None:
            index, self._deferred_prediction = self._deferred_prediction, None
            self._predict(index)
        return RunOutcome(
            run_id,
            state,
            time.perf_counter() - start,
            history=tuple(history),
            **outcome_kwargs,
        )

    @staticmethod
    def _live(run_id: int, snap: TrainingSnapshot) -> RunSnapshot:
        preview = snap.preview
        return RunSnapshot(
            run_id,
            snap.epoch,
            snap.epochs,
            loss=snap.loss,
            val_loss=snap.val_loss,
            elapsed_s=snap.elapsed_s,
            amplitude=None if preview is None else preview.amplitude,
            phase=None if preview is None else preview.phase,
            valid=None if preview is None else preview.valid,
            origin_px=(0.0, 0.0) if preview is None else preview.origin_px,
        )

    def _metrics(
        self,
        obj: np.ndarray,
        valid: np.ndarray | None,
        origin_px: tuple[float, float],
        data: DiffractionData,
    ) -> dict[str, float]:
        if data.object_gt is None:
            return {}
        from ptycho_engine.metrics import compare
        from ptycho_engine.stitching import reference_region

        reference = reference_region(data.object_gt, origin_px, obj.shape)
        try:
            return metrics_of(compare(obj, reference, valid, data.pixel_size_m))
        except ValueError as exc:
            self.status_changed.emit(f"metrics not computed: {exc}")
            return {}

    def _pending_prediction(self) -> bool:
        with self._lock:
            return "predict" in self._pending

    def _take_prediction(self) -> int:
        with self._lock:
            return int(self._pending.pop("predict"))

    def _predict(self, index: int) -> None:
        if self._current is None:
            self.status_changed.emit("no trained model yet: the prediction follows the next run")
            self._deferred_prediction = index
            return
        from ptycho_engine.grouping import GroupedPatterns
        from ptycho_engine.inference import inference_groups
        from ptycho_engine.models import ensure_canvas

        bundle, data, dcfg, _ = self._current
        if not 0 <= index < data.n_patterns:
            raise PtychoError(f"scan position {index} does not exist (0..{data.n_patterns - 1})")
        groups = inference_groups(data, bundle.config.gridsize, dcfg)
        rows = np.flatnonzero(groups.indices[:, 0] == index)
        if rows.size == 0:
            raise PtychoError(f"scan position {index} seeds no group")
        bundle = ensure_canvas(bundle, groups.max_offset_px)
        x, o = GroupedPatterns(data.amplitudes, groups).batch(rows[:1])
        predicted = np.asarray(bundle.training([x, o], training=False))
        self.pattern_predicted.emit(
            index, x[0, :, :, 0].astype(np.float32), predicted[0, :, :, 0].astype(np.float32)
        )
