"""The main window: data, settings, live views, runs; owns the engine worker's thread."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QWidget,
)

from ptycho_engine.config import ModelConfig
from ptycho_engine.data import DiffractionData
from ptycho_engine.study import StudySpec
from ptycho_gui.jobs import start_worker, stop_workers
from ptycho_gui.live_views import LiveViews, with_placeholder
from ptycho_gui.probe_handover import ProbeHandover
from ptycho_gui.run_controller import RunController
from ptycho_gui.session import AppTaskWorker, SessionController
from ptycho_gui.study_controller import StudyController
from ptycho_gui.study_worker import StudyWorker
from ptycho_gui.view_models.comparison import MAX_RUNS, MIN_RUNS, data_mismatch, position_scale
from ptycho_gui.view_models.export import export_format, export_task
from ptycho_gui.view_models.run_settings import RunSettings, valid_n_choices
from ptycho_gui.view_models.run_table_model import RunTableModel
from ptycho_gui.view_models.runs import DataSummary, RunRecord
from ptycho_gui.view_models.session import SessionContents
from ptycho_gui.view_models.settings_model import SettingsModel
from ptycho_gui.view_models.texts import about_text, shortcuts_text, start_hint
from ptycho_gui.widgets.compare_window import CompareWindow
from ptycho_gui.widgets.data_panel import DataPanelWidget
from ptycho_gui.widgets.image_views import (
    DiffractionPairWidget,
    ObjectViewsWidget,
    ProbeViewWidget,
)
from ptycho_gui.widgets.loss_plot import LossPlotWidget
from ptycho_gui.widgets.run_table import RunTableWidget
from ptycho_gui.widgets.settings_panel import SettingsPanelWidget
from ptycho_gui.widgets.study_panel import StudyPanelWidget, default_study_folder
from ptycho_gui.window_actions import WindowActions, about_versions, message_box
from ptycho_gui.window_layout import StatusWidgets, WindowLayout, central_splitters
from ptycho_gui.window_state import WindowState
from ptycho_gui.worker import EngineWorker

DATA_FILTER = "Diffraction data (*.npz *.h5 *.hdf5 *.cxi *.nxs);;All files (*)"
EXPORT_FILTER = (
    "Ptychodus product (*.h5);;TIFF amplitude + phase (*.tif);;PNG amplitude + phase (*.png)"
)
#: Longest wait for the workers' threads when the window closes.
SHUTDOWN_TIMEOUT_MS = 1800
TITLE = "Ptycho Explorer"


class MainWindow(QMainWindow):
    """The application window.

    Parameters
    ----------
    settings : QSettings
        Where the layout, last folder, recent files and last session folder are kept.
    run_settings : RunSettings, optional
        Initial settings of the model and training panels.
    show_error_dialogs : bool
        Also show errors in a (non-modal) message box; tests keep it off and read
        :attr:`error_label`.
    session_dir : Path, optional
        Folder that receives a run folder per finished run (None: runs are not written).

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
    session_opened(list)
        A session folder's runs fill the run table (the records).
    session_saved(str, int)
        The session was copied: the folder and its run count.
    """

    data_ready = Signal(object)
    run_completed = Signal(object)
    study_completed = Signal(object)
    export_finished = Signal(object)
    run_probe_applied = Signal(int, str)
    session_opened = Signal(object)
    session_saved = Signal(str, int)

    def __init__(
        self,
        settings: QSettings,
        run_settings: RunSettings | None = None,
        show_error_dialogs: bool = False,
        session_dir: Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(TITLE)
        self.resize(1500, 950)
        self.qsettings = settings
        self.show_error_dialogs = show_error_dialogs
        #: the settings last committed (a new model among them shows a pretrained image)
        self._committed: RunSettings | None = None
        self.data: DiffractionData | None = None
        self.summary: DataSummary | None = None
        self.window_state = WindowState(settings)
        self.last_folder = self.window_state.last_folder
        self.compare_windows: list[CompareWindow] = []
        self.about_box: QMessageBox | None = None
        self._closed = False
        self.threads_left: list[str] = []

        self.settings_model = SettingsModel(run_settings or RunSettings(), self)
        self.run_model = RunTableModel(self)
        self._build_widgets()
        self.menu_actions = WindowActions(self, self._action_handlers())
        self.recent_menu = self.menu_actions.recent_menu

        self.session_dir = session_dir
        self.worker = EngineWorker(session_dir)
        self.tasks = AppTaskWorker()
        self.session = SessionController(settings, self.tasks, session_dir, self)
        self.live = LiveViews(
            self.object_views, self.probe_view, self.loss_plot, self.diffraction_view,
            self.placeholder, self,
        )  # fmt: skip
        self.live.pinned_changed.connect(self._on_live_pinned_changed)
        self.redraw_timer = self.live.timer
        self.runs = RunController(
            self.worker, self.run_model, self.live, self.status_label, self.error_label,
            self.progress_bar, self.eta_label, self,
        )  # fmt: skip
        self.runs.run_completed.connect(self.run_completed)
        w = self.worker
        w.data_loaded.connect(self._on_worker_data_loaded)
        w.error_occurred.connect(self._show_error)
        w.status_changed.connect(self.status_label.setText)
        w.probe_read.connect(self.settings_panel.show_probe_read)
        self.tasks.task_finished.connect(self._on_tasks_task_finished)
        self.tasks.task_failed.connect(self._on_tasks_task_failed)
        self.session.offer_with(self.menu_actions.restore_session, self.restore_button)
        self.session.session_read.connect(self._on_session_session_read)
        self.session.session_saved.connect(self._on_session_session_saved)
        self.session.failed.connect(self._show_error)
        self.engine_thread = start_worker(self.worker, "engine-worker", self)
        self.tasks_thread = start_worker(self.tasks, "task-worker", self)
        # phase unwrapping of big images runs in the task worker, not the GUI thread
        self.object_views.set_task_worker(self.tasks)
        self.probe_view.set_task_worker(self.tasks)
        self.worker.request_warmup()

        self.study_worker = StudyWorker()
        self.study_thread = start_worker(self.study_worker, "study-worker", self)
        self.study = StudyController(
            self.study_panel, self.study_worker, self.tasks, self.qsettings, self._show_comparison
        )
        self.study.study_completed.connect(self.study_completed)

        self.settings_model.settings_committed.connect(self._on_settings_model_settings_committed)
        self.settings_model.undo_stack.indexChanged.connect(self._on_undo_stack_index_changed)
        self.settings_panel.start_clicked.connect(self.start_run)
        self.settings_panel.stop_clicked.connect(self.stop_run)
        self.settings_panel.probe_rejected.connect(self._show_error)
        self.settings_panel.probe_requested.connect(self.worker.request_probe)
        self.data_panel.open_requested.connect(self.choose_file)
        self.data_panel.reload_requested.connect(self.open_file)
        self.data_panel.position_clicked.connect(self._on_data_panel_position_clicked)
        self.run_table.show_requested.connect(self.show_run)
        self.run_table.compare_requested.connect(self.open_comparison)
        self.run_table.export_requested.connect(self._on_run_table_export_requested)
        self.run_table.use_probe_requested.connect(self.use_run_probe)
        self.run_table.live_requested.connect(self.back_to_live_run)
        self.probe_handover = ProbeHandover(
            self.settings_panel, self.settings_model, self.tasks, lambda: self.session_dir, self
        )
        self.probe_handover.applied.connect(self.run_probe_applied)
        self.probe_handover.failed.connect(self._show_error)
        self.probe_handover.status.connect(self.status_label.setText)

        self._on_undo_stack_index_changed()
        self.setAcceptDrops(True)
        self._restore_layout()
        self.session.count_last_session()

    @property
    def current_run_id(self) -> int | None:
        """The newest run started on the loaded data."""
        return self.runs.current_run_id

    @property
    def redraws(self) -> int:
        """Object frames drawn."""
        return self.live.redraws

    @property
    def probe_redraws(self) -> int:
        """Refined probes drawn."""
        return self.live.probe_redraws

    # ------------------------------------------------------------------ construction

    def _build_widgets(self) -> None:
        self.object_views = ObjectViewsWidget()
        self.probe_view = ProbeViewWidget()
        self.loss_plot = LossPlotWidget()
        self.diffraction_view = DiffractionPairWidget()
        self.placeholder = QLabel("Open a diffraction file (File > Open data…, Ctrl+O)")
        central, lower = central_splitters(
            with_placeholder(self.object_views, self.placeholder),
            self.probe_view, self.loss_plot, self.diffraction_view,
        )  # fmt: skip
        self.central_splitter, self.lower_splitter = central, lower
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
        self.layout_manager = WindowLayout(
            self, self.tabs, self.study_panel,
            (self.data_panel, self.settings_panel, self.run_table),
            {"central": central, "lower": lower}, self.window_state,
        )  # fmt: skip
        status = StatusWidgets(self.statusBar())
        self.status_label, self.error_label = status.status_label, status.error_label
        self.progress_bar, self.eta_label = status.progress_bar, status.eta_label
        self.restore_button = status.restore_button
        self.restore_button.clicked.connect(self.restore_last_session)

    def _action_handlers(self) -> dict[str, Callable[[], object]]:
        return {
            "open_data": self.choose_file,
            "open_session": self._on_open_session_triggered,
            "save_session": self._on_save_session_triggered,
            "restore_session": self.restore_last_session,
            "quit": self.close,
            "undo": lambda: self._undo(self.settings_model.undo, "undo"),
            "redo": lambda: self._undo(self.settings_model.redo, "redo"),
            "start": self.start_run,
            "stop": self.stop_run,
            "compare": self.compare_selected,
            "next_run": lambda: self.show_adjacent_run(+1),
            "previous_run": lambda: self.show_adjacent_run(-1),
            "live_run": self.back_to_live_run,
            "shortcuts": lambda: message_box(self, "Keyboard shortcuts", shortcuts_text()),
            "about": self.show_about,
        }

    # ------------------------------------------------------------------ public actions

    def open_file(self, path: str, profile: str | None = None) -> None:
        """Load a diffraction file in the worker (stops the current run); ``profile`` is a
        JSON mapping profile (default: the data panel's choice)."""
        self.last_folder = str(Path(path).parent)
        profile = self.data_panel.profile if profile is None else profile
        self.data_panel.note_opening(path)
        self.status_label.setText(f"Opening {path}…")
        prefetch = self._pretrained_model(self.settings_model.settings)
        self._stopping(self.worker.request_load(path, profile, prefetch))

    def open_sample(self, recipe_path: str, cache_dir: str) -> None:
        """Load the bundled sample data (simulated on first use)."""
        prefetch = self._pretrained_model(self.settings_model.settings)
        self._stopping(self.worker.request_sample(recipe_path, cache_dir, prefetch))

    @staticmethod
    def _pretrained_model(settings: RunSettings) -> ModelConfig | None:
        """The model whose pretrained network ``settings`` start from (None when they start
        none): the first image of a file shows it, and the worker builds it while the file is
        read."""
        if settings.iterative or not settings.pretrained:
            return None
        return settings.model_config()

    def choose_file(self) -> None:
        """Ask for a data file."""
        path, _ = QFileDialog.getOpenFileName(self, "Open data", self.last_folder, DATA_FILTER)
        if path:
            self.open_file(path)

    def start_run(self) -> int | None:
        """Run the current settings now (the views follow that run: a shown run is unpinned);
        returns the run's id (None without data)."""
        if self.data is None:
            self._show_error("no data loaded: open a diffraction file first")
            return None
        self.live.unpin()
        return self._request_run(self.settings_model.flush())

    def stop_run(self) -> None:
        """Stop the running run (within one step) and drop a queued one."""
        self._stopping(self.worker.stop_run())

    def recent_files(self) -> list[str]:
        """Recently opened files, newest first."""
        return self.window_state.recent_files()

    def show_run(self, run_id: int) -> None:
        """Show a run in the views: a finished run is pinned there (the live run goes on
        without overwriting it) until :meth:`back_to_live_run`; the live run unpins."""
        record = self.run_model.record(run_id)
        if record is not None and record.run_id == self.live.live_id and not record.ended:
            self.back_to_live_run()
        elif record is None or record.object is None:
            self.status_label.setText(f"Run #{run_id} has no image to show yet")
        else:
            self.live.pin(record)

    def back_to_live_run(self) -> None:
        """The views follow the live run again."""
        self.live.unpin()

    def show_adjacent_run(self, step: int) -> None:
        """Show the next (``step`` > 0) or previous finished run after the one shown."""
        ids = [r.run_id for r in self.run_model.records if r.ended and r.object is not None]
        shown = self.live.pinned_id or self.live.shown_id
        if shown is None:
            later = ids if step > 0 else ids[::-1]
        else:
            later = [i for i in ids if i > shown] if step > 0 else [i for i in ids if i < shown]
            later = later if step > 0 else later[::-1]
        if not later:
            self.status_label.setText(f"No {'next' if step > 0 else 'previous'} finished run")
            return
        self.run_table.select_run_ids([later[0]])
        self.show_run(later[0])

    def compare_selected(self) -> CompareWindow | None:
        """Compare the runs selected in the table."""
        ids = self.run_table.selected_run_ids()
        if not MIN_RUNS <= len(ids) <= MAX_RUNS:
            self._show_error(f"select {MIN_RUNS} to {MAX_RUNS} runs in the table to compare")
            return None
        return self.open_comparison(ids)

    def open_comparison(self, run_ids: list[int]) -> CompareWindow | None:
        """Open a comparison of 2 to 6 runs of one data file; refusals go to the status bar."""
        records = [r for r in (self.run_model.record(i) for i in run_ids) if r is not None]
        mismatch = data_mismatch(records)
        if mismatch:
            self._show_error(mismatch)
            return None
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
        """Hand the probe a run ended with to the next network run (see
        :mod:`ptycho_gui.probe_handover`): :attr:`run_probe_applied` says when it is done;
        errors go to the status bar. Returns False when the run has no probe."""
        return self.probe_handover.use(self.run_model.record(run_id), run_id)

    def open_session(self, folder: str) -> bool:
        """Fill the run table with the runs of a session folder (read in the task worker;
        :attr:`session_opened` says when); new runs then go to that folder. Stops the run."""
        self.stop_run()
        self.status_label.setText(f"Reading the session {folder}…")
        return self.session.open(folder)

    def restore_last_session(self) -> bool:
        """:meth:`open_session` of the last session that made runs."""
        if not self.session.last_dir:
            self._show_error("no earlier session to restore")
            return False
        return self.open_session(self.session.last_dir)

    def save_session_as(self, folder: str) -> bool:
        """Copy this session's finished runs to the new folder ``folder`` (task worker;
        :attr:`session_saved` says when)."""
        self.status_label.setText(f"Copying the session to {folder}…")
        return self.session.save_as(folder)

    def show_about(self) -> QMessageBox:
        """The About box: versions and the loaded data's provenance (non-modal)."""
        provenance = None if self.data is None else dict(self.data.provenance)
        text = about_text(about_versions(), provenance)
        self.about_box = message_box(self, f"About {TITLE}", text)
        return self.about_box

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
        self.probe_handover.cleanup()  # the task worker has ended: nothing writes there now

    # ------------------------------------------------------------------ runs

    def _request_run(self, settings: RunSettings) -> int:
        self.restore_button.setVisible(False)  # this session has begun (the menu keeps it)
        return self.runs.request_run(settings, self.summary.path if self.summary else "")

    def _stopping(self, dropped: int | None) -> None:
        self.runs.stopping(dropped)

    def _on_settings_model_settings_committed(self, settings: RunSettings) -> None:
        before, self._committed = self._committed, settings
        if self.data is not None and self.settings_panel.rerun_check.isChecked():
            self._request_run(settings)
        elif before is None or settings.needs_new_model(before):
            self._pretrained_first_image(settings)

    def _pretrained_first_image(self, settings: RunSettings) -> None:
        """Show the pretrained network's inference at once (a run of 0 epochs, kept like
        every run; Start then fine-tunes it) when one fits these settings and no run is
        going: opening data, or a new N or gridsize, gives an image without training."""
        from ptycho_engine.pretrain import find_pretrained

        model = self._pretrained_model(settings)
        if self.data is None or model is None:
            return
        if self.worker.running_settings is not None or settings.epochs == 0:
            return
        if find_pretrained(model) is None:  # one small file, read once
            return
        self._request_run(settings.replace(epochs=0))

    def _on_live_pinned_changed(self, run_id: int | None) -> None:
        live = self.live.live_id if self.live.live_running else None
        self.run_table.set_pinned(run_id, live)
        self.menu_actions.live_run.setEnabled(run_id is not None)
        self.run_model.set_shown(run_id)
        name = f" — {Path(self.summary.path).name}" if self.summary is not None else ""
        pinned = f" — showing run #{run_id}" if run_id is not None else ""
        self.setWindowTitle(f"{TITLE}{name}{pinned}")

    # ------------------------------------------------------------------ slots: settings

    def _undo(self, step: Callable[[], bool], name: str) -> None:
        if not step():
            self.status_label.setText(f"Nothing to {name}")

    def _on_undo_stack_index_changed(self, _index: int = 0) -> None:
        self.menu_actions.show_undo_state(self.settings_model.undo_stack)

    # ------------------------------------------------------------------ slots: worker

    def _on_worker_data_loaded(self, data: DiffractionData, summary: DataSummary) -> None:
        self.data = data
        self.summary = summary
        self.runs.data_loaded()
        self.error_label.setText("")
        self.error_label.setToolTip("")
        self.statusBar().clearMessage()
        self.data_panel.set_data(data, summary)
        choices = valid_n_choices(data.N)
        current = self.settings_model.settings
        if not choices:
            self._show_error(f"patterns are {data.N}x{data.N}: the model needs at least 32x32")
        elif current.N not in choices:
            fitting = [n for n in choices if n <= current.N] or choices
            self.settings_model.reset(current.replace(N=fitting[-1]))
        # the valid N, the file's geometry and probe; a new file clears the old one's edits
        self.settings_panel.show_data(data)
        self.live.set_pixel_size(data.pixel_size_m)
        hint = start_hint(summary.path)
        self.live.clear(data.probe, hint)
        self.status_label.setText(f"Loaded {data.n_patterns} patterns. {hint}.")
        self._remember_file(summary.path)
        self._committed = self.settings_model.settings
        self._pretrained_first_image(self._committed)
        self.data_ready.emit(summary)

    def _on_tasks_task_finished(self, kind: str, token: object, result: object) -> None:
        if kind == "export" and isinstance(result, list):
            self.status_label.setText("Exported " + ", ".join(str(p) for p in result))
            self.export_finished.emit(result)

    def _on_tasks_task_failed(self, kind: str, token: object, message: str) -> None:
        if kind == "export":
            self._show_error(f"export failed: {message}")
            self.export_finished.emit([])

    # ------------------------------------------------------------------ slots: sessions

    def _on_session_session_read(self, contents: SessionContents) -> None:
        self.runs.adopt_session(contents)
        self.session_dir = Path(contents.folder)
        shown = [r for r in contents.records if r.object is not None]
        if shown:
            self.show_run(shown[-1].run_id)
        text = f"Opened the session {contents.folder}: {len(contents.records)} runs"
        self.status_label.setText(text)
        if contents.problems:
            self._show_error(f"{len(contents.problems)} run folders could not be read: "
                             + "; ".join(contents.problems))  # fmt: skip
        self.session_opened.emit(contents.records)

    def _on_session_session_saved(self, folder: str, count: int) -> None:
        self.status_label.setText(f"Session saved to {folder} ({count} runs)")
        self.session_saved.emit(folder, count)

    def _on_open_session_triggered(self) -> None:
        start = str(self.session_dir.parent) if self.session_dir is not None else self.last_folder
        folder = QFileDialog.getExistingDirectory(self, "Open session", start)
        if folder:
            self.open_session(folder)

    def _on_save_session_triggered(self) -> None:
        folder, _ = QFileDialog.getSaveFileName(self, "Save session as (a new folder)", "")
        if folder:
            self.save_session_as(folder)

    # ------------------------------------------------------------------ slots: panels

    def _on_data_panel_position_clicked(self, index: int) -> None:
        if self.data is None:
            return
        self.diffraction_view.show_measured(index, self.data.amplitudes[index])
        self.runs.prediction_asked(index)

    def _on_run_table_export_requested(self, run_id: int) -> None:
        path, chosen = QFileDialog.getSaveFileName(
            self, f"Export run #{run_id}", self.last_folder, EXPORT_FILTER
        )
        if path:
            self.export_run(run_id, path, export_format(chosen))

    # ------------------------------------------------------------------ helpers

    def _scale_of(self, record: RunRecord) -> float:
        if record.position_scale is not None:
            return record.position_scale
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
            box = QMessageBox(QMessageBox.Icon.Warning, TITLE, message, parent=self)
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

    def _restore_layout(self) -> None:
        self._rebuild_recent_menu()
        self.layout_manager.restore()

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
        self.session.remember(any(r.run_dir for r in self.run_model.records))
        self.layout_manager.save(self.last_folder)
        self.shutdown()
        super().closeEvent(event)
