"""The main window: data, settings, live views, runs; owns the engine worker's thread."""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QWidget,
)

from ptycho_engine.data import DiffractionData
from ptycho_engine.errors import DataError
from ptycho_engine.study import StudySpec
from ptycho_gui.jobs import TaskWorker, start_worker, stop_workers
from ptycho_gui.study_controller import StudyController
from ptycho_gui.study_worker import StudyWorker
from ptycho_gui.view_models.comparison import position_scale
from ptycho_gui.view_models.export import export_format, export_task, probe_file_task
from ptycho_gui.view_models.run_settings import RunSettings, valid_n_choices
from ptycho_gui.view_models.run_table_model import RunTableModel
from ptycho_gui.view_models.runs import (
    DataSummary,
    RunInfo,
    RunOutcome,
    RunRecord,
    RunSnapshot,
)
from ptycho_gui.view_models.settings_model import SettingsModel
from ptycho_gui.widgets.compare_window import CompareWindow
from ptycho_gui.widgets.data_panel import DataPanelWidget
from ptycho_gui.widgets.image_views import (
    DiffractionPairWidget,
    LossPlotWidget,
    ObjectViewsWidget,
    ProbeViewWidget,
)
from ptycho_gui.widgets.run_table import RunTableWidget
from ptycho_gui.widgets.settings_panel import SettingsPanelWidget
from ptycho_gui.widgets.study_panel import StudyPanelWidget, default_study_folder
from ptycho_gui.window_state import WindowState
from ptycho_gui.worker import EngineWorker

REDRAW_INTERVAL_MS = 50  # at most 20 redraws per second
DATA_FILTER = "Diffraction data (*.npz *.h5 *.hdf5 *.cxi *.nxs);;All files (*)"
EXPORT_FILTER = (
    "Ptychodus product (*.h5);;TIFF amplitude + phase (*.tif);;PNG amplitude + phase (*.png)"
)
#: Longest wait for the workers' threads when the window closes.
SHUTDOWN_TIMEOUT_MS = 1800


class MainWindow(QMainWindow):
    """The application window.

    Parameters
    ----------
    settings : QSettings
        Where the session (layout, last folder, recent files) is kept.
    run_settings : RunSettings, optional
        Initial settings of the model and training panels.
    show_error_dialogs : bool
        Also show errors in a (non-modal) message box; tests keep it off and read
        :attr:`error_label`.

    Signals
    -------
    data_ready(DataSummary)
        New data are shown.
    run_completed(RunOutcome)
        A run ended (finished, stopped or failed) and its record is updated.
    study_completed(StudyResult)
        A study run ended (all done, cancelled or with failures) and the tab shows it.
    export_finished(list)
        An export ended: the files written (empty when it failed).
    run_probe_applied(int, str)
        A run's probe (every mode, written to the probe file) is the settings' probe and the
        algorithm is the network (:meth:`use_run_probe`).
    """

    data_ready = Signal(object)
    run_completed = Signal(object)
    study_completed = Signal(object)
    export_finished = Signal(object)
    run_probe_applied = Signal(int, str)

    def __init__(
        self,
        settings: QSettings,
        run_settings: RunSettings | None = None,
        show_error_dialogs: bool = False,
        session_dir: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Ptycho Explorer")
        self.resize(1500, 950)
        self.qsettings = settings
        self.show_error_dialogs = show_error_dialogs
        self.data: DiffractionData | None = None
        self.summary: DataSummary | None = None
        self.current_run_id: int | None = None
        self.window_state = WindowState(settings)
        self.last_folder = self.window_state.last_folder
        self.compare_windows: list[CompareWindow] = []
        self._pending_snapshot: RunSnapshot | None = None
        self._pending_probe: RunSnapshot | None = None
        self.redraws = 0
        self.probe_redraws = 0
        # probe file of a run being handed to the settings: (run id, path)
        self._probe_handover: tuple[int, str] | None = None
        self._probe_dir: Path | None = None  # a temporary folder, without a session folder
        self._closed = False
        self.threads_left: list[str] = []

        self.settings_model = SettingsModel(run_settings or RunSettings(), self)
        self.run_model = RunTableModel(self)
        self._build_widgets()
        self._build_menus()

        self.session_dir = session_dir
        self.worker = EngineWorker(session_dir)
        self.tasks = TaskWorker()
        w = self.worker
        w.data_loaded.connect(self._on_worker_data_loaded)
        w.run_started.connect(self._on_worker_run_started)
        w.snapshot_ready.connect(self._on_worker_snapshot_ready)
        w.run_finished.connect(self._on_worker_run_finished)
        w.error_occurred.connect(self._on_worker_error_occurred)
        w.progress_changed.connect(self._on_worker_progress_changed)
        w.pattern_predicted.connect(self._on_worker_pattern_predicted)
        w.status_changed.connect(self._on_worker_status_changed)
        w.stage_changed.connect(self._on_worker_stage_changed)
        w.probe_read.connect(self.settings_panel.show_probe_read)
        self.tasks.task_finished.connect(self._on_tasks_task_finished)
        self.tasks.task_failed.connect(self._on_tasks_task_failed)
        self.engine_thread = start_worker(self.worker, "engine-worker", self)
        self.tasks_thread = start_worker(self.tasks, "task-worker", self)
        self.worker.request_warmup()

        self.study_worker = StudyWorker()
        self.study_thread = start_worker(self.study_worker, "study-worker", self)
        self.study = StudyController(
            self.study_panel, self.study_worker, self.tasks, self.qsettings, self._show_comparison
        )
        self.study.study_completed.connect(self.study_completed)

        self.settings_model.settings_committed.connect(self._on_settings_model_settings_committed)
        self.settings_panel.start_clicked.connect(self._on_settings_panel_start_clicked)
        self.settings_panel.stop_clicked.connect(self.worker.stop_run)
        self.settings_panel.probe_rejected.connect(self._on_settings_panel_probe_rejected)
        self.settings_panel.probe_requested.connect(self.worker.request_probe)
        self.data_panel.open_requested.connect(self.choose_file)
        self.data_panel.position_clicked.connect(self._on_data_panel_position_clicked)
        self.run_table.show_requested.connect(self.show_run)
        self.run_table.compare_requested.connect(self.open_comparison)
        self.run_table.export_requested.connect(self._on_run_table_export_requested)
        self.run_table.use_probe_requested.connect(self.use_run_probe)
        self.settings_panel.probe_applied.connect(self._on_settings_panel_probe_applied)

        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(REDRAW_INTERVAL_MS)
        self.redraw_timer.timeout.connect(self._on_redraw_timer_timeout)
        self.redraw_timer.start()
        self.setAcceptDrops(True)
        self._restore_session()

    # ------------------------------------------------------------------ construction

    def _build_widgets(self) -> None:
        self.object_views = ObjectViewsWidget()
        self.probe_view = ProbeViewWidget()
        self.loss_plot = LossPlotWidget()
        self.diffraction_view = DiffractionPairWidget()
        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.setObjectName("lower_splitter")
        lower.addWidget(self.probe_view)
        lower.addWidget(self.loss_plot)
        lower.addWidget(self.diffraction_view)
        lower.setSizes([380, 300, 380])
        central = QSplitter(Qt.Orientation.Vertical)
        central.setObjectName("central_splitter")
        central.addWidget(self.object_views)
        central.addWidget(lower)
        central.setSizes([560, 300])
        self.central_splitter = central
        self.lower_splitter = lower
        self.study_panel = StudyPanelWidget()
        base = Path(str(self.qsettings.value("study/base", str(Path.home() / "ptycho-studies"))))
        self.study_panel.folder_edit.setText(str(default_study_folder(base)))
        self.study_panel.last_folder = str(base)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("main_tabs")
        self.tabs.addTab(central, "Reconstruction")
        self.tabs.addTab(self.study_panel, "Study")
        self.setCentralWidget(self.tabs)

        self.data_panel = DataPanelWidget()
        self.settings_panel = SettingsPanelWidget(self.settings_model)
        self.run_table = RunTableWidget(self.run_model)
        self.data_panel.setMinimumWidth(250)
        data_dock = self._add_dock(
            "data_dock", "Data", self.data_panel, Qt.DockWidgetArea.LeftDockWidgetArea
        )
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.settings_panel)
        # as wide as the panel needs, so that it never scrolls sideways
        side = self.settings_panel.minimumSizeHint().width()
        scroll.setMinimumWidth(max(330, side + scroll.verticalScrollBar().sizeHint().width() + 4))
        settings_dock = self._add_dock(
            "settings_dock",
            "Reconstruction settings",
            scroll,
            Qt.DockWidgetArea.RightDockWidgetArea,
        )
        runs_dock = self._add_dock(
            "runs_dock", "Runs", self.run_table, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self._default_docks = (runs_dock, data_dock)
        # the docks belong to the Reconstruction tab: the Study tab gets the whole window
        self._reconstruction_docks = (data_dock, settings_dock, runs_dock)
        self._hidden_docks: list[QDockWidget] = []
        self.tabs.currentChanged.connect(self._on_tabs_current_changed)
        self.resizeDocks([runs_dock], [150], Qt.Orientation.Vertical)
        self.resizeDocks([data_dock], [270], Qt.Orientation.Horizontal)

        self.status_label = QLabel("Starting the engine…")
        self.error_label = QLabel("")
        self.error_label.setStyleSheet("color: #d04040;")
        self.error_label.setWordWrap(False)
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.eta_label = QLabel("")
        bar = self.statusBar()
        bar.addWidget(self.status_label, 1)
        bar.addWidget(self.error_label, 2)
        bar.addPermanentWidget(self.progress_bar)
        bar.addPermanentWidget(self.eta_label)

    def _add_dock(
        self, name: str, title: str, widget: QWidget, area: Qt.DockWidgetArea
    ) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        open_action = QAction("&Open data…", self)
        open_action.setShortcut("Ctrl+O")
        open_action.triggered.connect(self.choose_file)
        file_menu.addAction(open_action)
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut("Ctrl+Q")
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        run_menu = self.menuBar().addMenu("&Run")
        start = QAction("&Start", self)
        start.triggered.connect(self._on_settings_panel_start_clicked)
        stop = QAction("S&top", self)
        stop.triggered.connect(lambda: self.worker.stop_run())
        run_menu.addAction(start)
        run_menu.addAction(stop)
        self._rebuild_recent_menu()

    # ------------------------------------------------------------------ public actions

    def open_file(self, path: str) -> None:
        """Load a diffraction file in the worker (stops the current run)."""
        self.last_folder = str(Path(path).parent)
        self.status_label.setText(f"Opening {path}…")
        self.worker.request_load(path)

    def open_sample(self, recipe_path: str, cache_dir: str) -> None:
        """Load the bundled sample data (simulated on first use)."""
        self.worker.request_sample(recipe_path, cache_dir)

    def choose_file(self) -> None:
        """Ask for a data file."""
        path, _ = QFileDialog.getOpenFileName(self, "Open data", self.last_folder, DATA_FILTER)
        if path:
            self.open_file(path)

    def start_run(self) -> None:
        """Run the current settings now."""
        self._on_settings_panel_start_clicked()

    def recent_files(self) -> list[str]:
        """Recently opened files, newest first."""
        return self.window_state.recent_files()

    def show_run(self, run_id: int) -> None:
        """Show a finished run's object and probe in the live views."""
        record = self.run_model.record(run_id)
        if record is None or record.object is None:
            return
        self.object_views.reset_levels()
        self.object_views.show_object(
            np.abs(record.object).astype(np.float32),
            np.angle(record.object).astype(np.float32),
            record.valid,
        )
        self.probe_view.show_probe(record.probe)
        self.loss_plot.set_iterative(record.settings.iterative)
        self.loss_plot.clear_history()
        for epoch, loss, val in record.history:
            self.loss_plot.add_point(epoch, loss, val)

    def open_comparison(self, run_ids: list[int]) -> CompareWindow | None:
        """Open a comparison of 2 to 6 runs; errors go to the status bar."""
        records = [r for r in (self.run_model.record(i) for i in run_ids) if r is not None]
        try:
            scales = [self._scale_of(r) for r in records]
            window = CompareWindow(records, scales, self.tasks)
        except ValueError as exc:
            self._show_error(str(exc))
            return None
        self._show_comparison(window)
        return window

    def _show_comparison(self, window: CompareWindow) -> None:
        window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        window.destroyed.connect(lambda _obj=None, w=window: self._forget_comparison(w))
        self.compare_windows.append(window)
        window.show()

    def export_run(self, run_id: int, path: str, fmt: str | None = None) -> bool:
        """Export a run (ptychodus product, or amplitude and phase TIFF/PNG) in the task
        worker; :attr:`export_finished` reports the files, errors go to the status bar.

        ``fmt`` (``".h5"``, ``".tif"``, ``".png"``) is the dialog's type filter, used when
        ``path`` has no suffix. Returns False when the run has nothing to export.
        """
        record = self.run_model.record(run_id)
        if record is None or record.object is None:
            self._show_error(f"run #{run_id} has no reconstruction to export")
            return False
        self.status_label.setText(f"Exporting run #{run_id}…")
        task = export_task(record, path, fmt)
        return self.tasks.request("export", ("export", run_id, path), task)

    def use_run_probe(self, run_id: int) -> bool:
        """Hand the probe a run ended with to the next network run: every mode is written to
        a ``.npy`` probe file (in the task worker, in the session folder or a temporary
        one), which then goes through the settings panel's probe reading, so it is applied
        only when it fits N; then the algorithm becomes the network. :attr:`run_probe_applied`
        says when it is done; errors go to the status bar. Returns False when the run has no
        probe."""
        record = self.run_model.record(run_id)
        if record is None or record.probe_modes is None:
            self._show_error(f"run #{run_id} has no probe to use: wait until it has ended")
            return False
        path = self._probe_folder() / f"run-{run_id}-probe.npy"
        self.status_label.setText(f"Writing the probe of run #{run_id}…")
        try:
            task = probe_file_task(record.probe_modes, path)
        except DataError as exc:
            self._show_error(f"run #{run_id}: {exc}")
            return False
        return self.tasks.request("probe-file", ("probe-file", run_id), task)

    def _probe_folder(self) -> Path:
        if self.session_dir is not None:
            return Path(self.session_dir) / "probes"
        if self._probe_dir is None:
            self._probe_dir = Path(tempfile.mkdtemp(prefix="ptycho-explorer-probes-"))
        return self._probe_dir

    def start_study(self, spec: StudySpec, out: str) -> bool:
        """Run (or resume) a study into the folder ``out`` (see :class:`StudyController`)."""
        return self.study.start_study(spec, out)

    def cancel_study(self) -> None:
        """Stop the running study after the current training step."""
        self.study.cancel_study()

    def open_study(self, path: str) -> None:
        """Show a study folder in the Study tab (read in a worker; :attr:`study_opened` of
        :attr:`study` says when it is on screen)."""
        self.tabs.setCurrentWidget(self.study_panel)
        self.study.open_study(path)

    def open_study_comparison(self, setting_ids: list[str]) -> None:
        """Compare study settings with their ground truth (prepared in a worker)."""
        self.study.open_comparison(setting_ids)

    def shutdown(self) -> None:
        """Stop every worker and wait for their threads (2 s at most); safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self.redraw_timer.stop()
        self.study_worker.cancel()
        pairs = [
            (self.worker, self.engine_thread),
            (self.study_worker, self.study_thread),
            (self.tasks, self.tasks_thread),
        ]
        if not stop_workers(pairs, SHUTDOWN_TIMEOUT_MS):
            running = [t.objectName() for _w, t in pairs if t.isRunning()]
            self.threads_left = running
        for window in list(self.compare_windows):
            window.close()
        if self._probe_dir is not None:
            # the task worker has ended: nothing writes there any more
            shutil.rmtree(self._probe_dir, ignore_errors=True)
            self._probe_dir = None

    # ------------------------------------------------------------------ slots: settings

    def _on_settings_model_settings_committed(self, settings: RunSettings) -> None:
        if self.data is not None and self.settings_panel.rerun_check.isChecked():
            self.worker.request_run(settings)

    def _on_settings_panel_start_clicked(self) -> None:
        if self.data is None:
            self._show_error("no data loaded: open a diffraction file first")
            return
        self.worker.request_run(self.settings_model.flush())

    def _on_settings_panel_probe_rejected(self, message: str) -> None:
        self._probe_handover = None  # a run's probe that does not fit: the algorithm stays
        self._show_error(message)

    def _on_settings_panel_probe_applied(self, path: str) -> None:
        handover = self._probe_handover
        if handover is None or handover[1] != path:
            return
        self._probe_handover = None
        # in the same turn as the probe: the debounced commit runs once, with both
        self.settings_model.update(algorithm="pinn")
        self.status_label.setText(f"The next PINN run starts from the probe of run #{handover[0]}")
        self.run_probe_applied.emit(handover[0], path)

    # ------------------------------------------------------------------ slots: worker

    def _on_worker_data_loaded(self, data: DiffractionData, summary: DataSummary) -> None:
        self.data = data
        self.summary = summary
        self.error_label.setText("")
        self.data_panel.set_data(data, summary)
        choices = valid_n_choices(data.N)
        current = self.settings_model.settings
        if not choices:
            self._show_error(f"patterns are {data.N}x{data.N}: the model needs at least 32x32")
        elif current.N not in choices:
            fitting = [n for n in choices if n <= current.N] or choices
            self.settings_model.reset(current.replace(N=fitting[-1]))
        self.settings_panel.set_detector(data.N)
        self.settings_panel.data_probe = data.probe
        if not self.settings_model.settings.probe_path:
            self.settings_panel.probe_view.show_probe(data.probe)
        self._remember_file(summary.path)
        self.data_ready.emit(summary)

    def _on_worker_run_started(self, info: RunInfo) -> None:
        record = RunRecord(
            info.run_id,
            info.settings,
            warm=info.warm,
            probe=info.probe,
            positions_px=info.positions_px,
            pixel_size_m=info.pixel_size_m,
            data_path=info.data_path,
        )
        self.run_model.add(record)
        self.current_run_id = info.run_id
        self._pending_snapshot = None
        self._pending_probe = None
        self.object_views.reset_levels()
        self.loss_plot.set_iterative(info.settings.iterative)
        self.loss_plot.clear_history()
        if info.probe is not None:
            self.probe_view.show_probe(info.probe, "start" if info.settings.iterative else "")
        self.progress_bar.setRange(0, info.settings.planned_epochs)
        self.progress_bar.setValue(0)
        self.eta_label.setText("")
        self.error_label.setText("")
        self.status_label.setText(f"Run #{info.run_id} ({info.warm}): {info.settings.label()}")

    def _on_worker_snapshot_ready(self, snap: RunSnapshot) -> None:
        record = self.run_model.record(snap.run_id)
        epoch_end = snap.epoch > 0 and not snap.image_only
        if record is not None and epoch_end:
            record.history.append((snap.epoch, snap.loss, snap.val_loss))
            record.elapsed_s = snap.elapsed_s
            if snap.metrics:
                record.metrics = dict(snap.metrics)
            self.run_model.refresh(snap.run_id)
        if snap.run_id != self.current_run_id:
            return
        if epoch_end:
            self.loss_plot.add_point(snap.epoch, snap.loss, snap.val_loss)
        if snap.has_image:
            self._pending_snapshot = snap  # latest wins: the timer draws only the newest
        if snap.probe is not None:
            self._pending_probe = snap  # the refined probe: latest wins too

    def _on_redraw_timer_timeout(self) -> None:
        probe_snap = self._pending_probe
        if probe_snap is not None and probe_snap.probe is not None:
            self._pending_probe = None
            self.probe_view.show_probe(probe_snap.probe, f"it. {probe_snap.epoch}")
            self.probe_redraws += 1
        snap = self._pending_snapshot
        if snap is None:
            return
        self._pending_snapshot = None
        assert snap.amplitude is not None and snap.phase is not None
        self.object_views.show_object(snap.amplitude, snap.phase, snap.valid)
        self.redraws += 1

    def _on_worker_run_finished(self, outcome: RunOutcome) -> None:
        record = self.run_model.record(outcome.run_id)
        if record is not None:
            record.state = outcome.state
            record.elapsed_s = outcome.elapsed_s
            record.message = outcome.message
            record.object = outcome.object
            record.valid = outcome.valid
            record.origin_px = outcome.origin_px
            record.metrics = dict(outcome.metrics)
            record.flags = outcome.flags
            record.run_dir = outcome.run_dir
            record.history = list(outcome.history) or record.history
            if outcome.probe_modes is not None and outcome.probe_modes.size:
                record.probe_modes = outcome.probe_modes
                if record.settings.iterative:
                    # a solver's result is its refined probe too: shown and exported with it
                    record.probe = outcome.probe_modes[0]
            if outcome.positions_px is not None:
                record.positions_px = outcome.positions_px
            self.run_model.refresh(outcome.run_id)
        if outcome.run_id == self.current_run_id:
            self._on_redraw_timer_timeout()  # the final image, without waiting for the timer
            text = f"Run #{outcome.run_id} {outcome.state} in {outcome.elapsed_s:.1f} s"
            if outcome.metrics:
                text += (
                    f" — amplitude SSIM {outcome.metrics.get('amplitude_ssim', math.nan):.3f}, "
                    f"phase SSIM {outcome.metrics.get('phase_ssim', math.nan):.3f}"
                )
            if outcome.flags:
                text += f" ({'; '.join(outcome.flags)})"
            self.status_label.setText(text)
            self.eta_label.setText("")
        self.run_completed.emit(outcome)

    def _on_worker_stage_changed(self, run_id: int, stage: str) -> None:
        if run_id == self.current_run_id or self.current_run_id is None:
            self.status_label.setText(f"Run #{run_id}: {stage}…")

    def _on_tasks_task_finished(self, kind: str, token: object, result: object) -> None:
        if kind == "export" and isinstance(result, list):
            self.status_label.setText("Exported " + ", ".join(str(p) for p in result))
            self.export_finished.emit(result)
        elif kind == "probe-file" and isinstance(token, tuple) and isinstance(result, Path):
            self._probe_handover = (int(token[1]), str(result))
            # read back in the engine worker: applied only when it fits N
            self.settings_panel.set_probe_path(str(result))

    def _on_tasks_task_failed(self, kind: str, token: object, message: str) -> None:
        if kind == "export":
            self._show_error(f"export failed: {message}")
            self.export_finished.emit([])
        elif kind == "probe-file":
            self._show_error(f"could not write the probe file: {message}")

    def _on_worker_error_occurred(self, message: str) -> None:
        self._show_error(message)

    def _on_worker_progress_changed(self, done: int, total: int, eta_s: float) -> None:
        self.progress_bar.setRange(0, max(total, 1))
        self.progress_bar.setValue(done)
        self.eta_label.setText(f"ETA {eta_s:.0f} s" if eta_s >= 0 and done < total else "")

    def _on_worker_pattern_predicted(
        self, index: int, measured: np.ndarray, predicted: np.ndarray
    ) -> None:
        self.diffraction_view.show_pair(index, measured, predicted)

    def _on_worker_status_changed(self, text: str) -> None:
        self.status_label.setText(text)

    # ------------------------------------------------------------------ slots: panels

    def _on_data_panel_position_clicked(self, index: int) -> None:
        if self.data is None:
            return
        self.diffraction_view.show_measured(index, self.data.amplitudes[index])
        self.worker.request_prediction(index)

    def _on_run_table_export_requested(self, run_id: int) -> None:
        path, chosen = QFileDialog.getSaveFileName(
            self, f"Export run #{run_id}", self.last_folder, EXPORT_FILTER
        )
        if path:
            self.export_run(run_id, path, export_format(chosen))

    # ------------------------------------------------------------------ helpers

    def _scale_of(self, record: RunRecord) -> float:
        if self.data is None or record.positions_px is None:
            return 1.0
        return position_scale(record.positions_px, self.data.positions_px)

    def _forget_comparison(self, window: CompareWindow) -> None:
        if window in self.compare_windows:
            self.compare_windows.remove(window)

    def _show_error(self, message: str) -> None:
        first_line = message.splitlines()[0] if message else ""
        self.error_label.setText(first_line)
        self.error_label.setToolTip(message)
        self.statusBar().showMessage(first_line, 15000)
        if self.show_error_dialogs:
            box = QMessageBox(QMessageBox.Icon.Warning, "Ptycho Explorer", message, parent=self)
            box.setModal(False)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
            box.show()

    def _remember_file(self, path: str) -> None:
        self.window_state.remember_file(path)
        self._rebuild_recent_menu()

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_files():
            action = QAction(path, self)
            action.triggered.connect(lambda _checked=False, p=path: self.open_file(p))
            self.recent_menu.addAction(action)
        self.recent_menu.setEnabled(bool(self.recent_files()))

    def _restore_session(self) -> None:
        if not self.window_state.restore(self, self._splitters()):
            # dock sizes only take once the window is laid out: apply the defaults then
            QTimer.singleShot(0, self._apply_default_dock_sizes)

    def _splitters(self) -> dict[str, QSplitter]:
        return {"central": self.central_splitter, "lower": self.lower_splitter}

    def _apply_default_dock_sizes(self) -> None:
        runs_dock, data_dock = self._default_docks
        self.resizeDocks([runs_dock], [150], Qt.Orientation.Vertical)
        self.resizeDocks([data_dock], [270], Qt.Orientation.Horizontal)

    def _on_tabs_current_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.study_panel:
            self._hidden_docks = [d for d in self._reconstruction_docks if d.isVisible()]
            for dock in self._hidden_docks:
                dock.hide()
        else:
            for dock in self._hidden_docks:
                dock.show()
            self._hidden_docks = []

    def _save_session(self) -> None:
        # the layout saved is the Reconstruction tab's, with its docks
        self.tabs.setCurrentIndex(0)
        self.window_state.save(self, self._splitters(), self.last_folder)

    # ------------------------------------------------------------------ Qt events

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt API
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt API
        for url in event.mimeData().urls():
            if url.isLocalFile():
                self.open_file(url.toLocalFile())
                event.acceptProposedAction()
                return

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt API
        self._save_session()
        self.shutdown()
        super().closeEvent(event)
