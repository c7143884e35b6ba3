"""Runs in the window: asks the engine worker for runs, keeps their records in the run table
through queued, running, stopping and their end, feeds the live views, and says in the status
bar what happens (with the progress bar and the ETA).

A run has its id from the moment it is asked for (:meth:`EngineWorker.request_run`), so the
table shows it "queued" at once, and the run it replaces is "stopping" until the worker says
it stopped.
"""

from __future__ import annotations

import math
import time

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QProgressBar

from ptycho_gui.live_views import LiveViews
from ptycho_gui.view_models.run_settings import RunSettings
from ptycho_gui.view_models.run_table_model import RunTableModel
from ptycho_gui.view_models.runs import RunInfo, RunOutcome, RunRecord, RunSnapshot
from ptycho_gui.view_models.session import SessionContents
from ptycho_gui.worker import EngineWorker


class RunController(QObject):
    """Connects the engine worker's run signals to the run table, the live views and the
    status bar widgets.

    Attributes
    ----------
    current_run_id : int or None
        The newest run started on the loaded data (None after new data or a session).

    Signals
    -------
    run_completed(RunOutcome)
        A run ended and its record is updated.
    """

    run_completed = Signal(object)

    def __init__(
        self,
        worker: EngineWorker,
        run_model: RunTableModel,
        live: LiveViews,
        status_label: QLabel,
        error_label: QLabel,
        progress_bar: QProgressBar,
        eta_label: QLabel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.worker = worker
        self.run_model = run_model
        self.live = live
        self.status_label = status_label
        self.error_label = error_label
        self.progress_bar = progress_bar
        self.eta_label = eta_label
        self.current_run_id: int | None = None
        self._prediction_run: int | None = None
        # runs of a session left while they still went: their last signals are not the
        # restored runs' (a restored session may hold the same ids)
        self._left: set[int] = set()
        worker.run_started.connect(self._on_worker_run_started)
        worker.snapshot_ready.connect(self._on_worker_snapshot_ready)
        worker.run_finished.connect(self._on_worker_run_finished)
        worker.stage_changed.connect(self._on_worker_stage_changed)
        worker.progress_changed.connect(self._on_worker_progress_changed)
        worker.prediction_made.connect(self._on_worker_prediction_made)
        worker.prediction_deferred.connect(self._on_worker_prediction_deferred)
        worker.pattern_predicted.connect(self._on_worker_pattern_predicted)

    # ------------------------------------------------------------------ requests

    def request_run(self, settings: RunSettings, data_path: str) -> int:
        """Ask the worker for a run: a queued row at once, the running run marked stopping.
        Returns the run's id."""
        running = self._running()
        run_id = self.worker.request_run(settings)
        record = self.run_model.record(run_id)
        if record is None:
            self.run_model.add(RunRecord(run_id, settings, state="queued", data_path=data_path))
        else:  # a queued run replaced by newer settings keeps its id
            record.settings = settings
            self.run_model.refresh(run_id)
        self.status_label.setText(f"Run #{run_id} queued: {settings.label()}")
        self.stopping(None, running, run_id)
        return run_id

    def stopping(
        self,
        dropped: int | None,
        running: list[RunRecord] | None = None,
        next_id: int | None = None,
    ) -> None:
        """The worker was asked to stop: drop the queued row ``dropped``, mark the running
        runs stopping and say so."""
        if dropped is not None:
            self.run_model.remove(dropped)
        for record in self._running() if running is None else running:
            record.state = "stopping"
            self.run_model.refresh(record.run_id)
            then = f" (run #{next_id} is queued)" if next_id is not None else ""
            self.status_label.setText(f"Stopping run #{record.run_id}…{then}")
            self.live.run_stopping(record, next_id)

    def data_loaded(self) -> None:
        """New data: no run of them yet (the progress of the file's reading is forgotten)."""
        self.current_run_id = None
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.eta_label.setText("")

    def adopt_session(self, contents: SessionContents) -> None:
        """The run table holds the runs of a session folder; new runs are written there."""
        self._left |= {r.run_id for r in self.run_model.live_records()}
        self.run_model.set_records(contents.records)
        self.worker.set_session(contents.folder, contents.highest_id)
        self.current_run_id = None  # a run still stopping belongs to the session left

    def prediction_asked(self, index: int) -> None:
        """A scan position was clicked: say which model will predict it, and ask."""
        model, running = self.worker.model_run_id, self.worker.running_run_id
        if model is not None:
            self.live.prediction_waiting(index, f"computing with run #{model}…")
        elif running is not None:
            self.live.prediction_waiting(index, f"after run #{running} ends")
        self.worker.request_prediction(index)

    def _running(self) -> list[RunRecord]:
        return [r for r in self.run_model.live_records() if r.state != "queued"]

    # ------------------------------------------------------------------ worker

    def _on_worker_run_started(self, info: RunInfo) -> None:
        if info.run_id in self._left:
            return
        record = self.run_model.record(info.run_id)
        if record is None:
            record = RunRecord(info.run_id, info.settings)
            self.run_model.add(record)
        record.start(info, time.monotonic())
        self.run_model.refresh(info.run_id)
        self.current_run_id = info.run_id
        self.live.run_started(record)
        self.progress_bar.setRange(0, info.settings.planned_epochs)
        self.progress_bar.setValue(0)
        self.eta_label.setText("")
        self.error_label.setText("")
        self.status_label.setText(f"Run #{info.run_id} ({info.warm}): {info.settings.label()}")

    def _on_worker_snapshot_ready(self, snap: RunSnapshot) -> None:
        if snap.run_id in self._left:
            return
        record = self.run_model.record(snap.run_id)
        if record is not None and snap.epoch > 0 and not snap.image_only:
            record.add_epoch(snap)
            self.run_model.refresh(snap.run_id)
        if snap.run_id == self.current_run_id:
            self.live.snapshot(snap)

    def _on_worker_run_finished(self, outcome: RunOutcome) -> None:
        if outcome.run_id in self._left:
            self._left.discard(outcome.run_id)
            self.run_completed.emit(outcome)
            return
        record = self.run_model.record(outcome.run_id)
        if record is not None:
            record.finish(outcome)
            self.run_model.refresh(outcome.run_id)
        if record is not None and outcome.run_id == self.current_run_id:
            self.live.run_finished(record, outcome)
            self.status_label.setText(outcome_text(outcome))
            self.eta_label.setText("")
            if outcome.state == "finished":
                self.progress_bar.setValue(self.progress_bar.maximum())
        self.run_completed.emit(outcome)

    def _on_worker_stage_changed(self, run_id: int, stage: str) -> None:
        if run_id == self.current_run_id or self.current_run_id is None:
            self.status_label.setText(f"Run #{run_id}: {stage}…")
            self.live.stage(run_id, stage)

    def _on_worker_progress_changed(self, done: int, total: int, eta_s: float) -> None:
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)
        self.eta_label.setText(f"ETA {eta_s:.0f} s" if eta_s >= 0 and done < total else "")

    def _on_worker_prediction_made(self, _index: int, run_id: int) -> None:
        self._prediction_run = run_id

    def _on_worker_prediction_deferred(self, index: int, run_id: int) -> None:
        after = f"after run #{run_id} ends" if run_id else "after the first run ends"
        self.live.prediction_waiting(index, after)

    def _on_worker_pattern_predicted(
        self, index: int, measured: np.ndarray, predicted: np.ndarray
    ) -> None:
        self.live.diffraction_view.show_pair(index, measured, predicted)
        self.live.prediction_shown(index, self._prediction_run)


def outcome_text(outcome: RunOutcome) -> str:
    """The status line of a run's end: state, time, the SSIMs and the scoring's flags."""
    text = f"Run #{outcome.run_id} {outcome.state} in {outcome.elapsed_s:.1f} s"
    if outcome.metrics:
        text += (
            f" — amplitude SSIM {outcome.metrics.get('amplitude_ssim', math.nan):.3f}, "
            f"phase SSIM {outcome.metrics.get('phase_ssim', math.nan):.3f}"
        )
    if outcome.flags:
        text += f" ({'; '.join(outcome.flags)})"
    return text
