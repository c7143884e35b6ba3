"""The Study tab's logic, out of the main window: run, cancel and resume studies, open study
folders and compare settings with their ground truth.

The GUI thread only draws: a study runs in the :class:`~ptycho_gui.study_worker.StudyWorker`,
and reading a study folder (its results and every reconstruction), regenerating a ground truth
and aligning runs to it are tasks of the :class:`~ptycho_gui.jobs.TaskWorker`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, Signal

from ptycho_engine.study import StudyProgress, StudyResult, StudySpec
from ptycho_gui.jobs import TaskWorker
from ptycho_gui.study_worker import StudyWorker
from ptycho_gui.view_models.study import StudyFolder
from ptycho_gui.widgets.compare_window import CompareWindow
from ptycho_gui.widgets.study_panel import StudyPanelWidget


def _load_folder(
    out: str, known: frozenset[str]
) -> Callable[[Callable[[int, int], object], object], tuple[StudyFolder, dict[str, Any]]]:
    """A task that reads a study folder and the reconstructions not in ``known``."""

    def task(progress: Callable[[int, int], object], _stop: object) -> tuple[StudyFolder, Any]:
        folder = StudyFolder.load(out)
        return folder, folder.reconstructions(known, progress)

    return task


def _comparison_records(folder: StudyFolder, setting_ids: list[str]) -> Callable[..., list[Any]]:
    """A task that regenerates the ground truth and aligns each setting's object to it."""

    def task(_progress: object, _stop: object) -> list[Any]:
        seed = folder.setting(setting_ids[0]).seed
        truth = folder.truth_record(seed, run_id=0)
        assert truth.object is not None
        return [truth] + [
            folder.record(sid, run_id=k, truth=truth.object)
            for k, sid in enumerate(setting_ids, start=1)
        ]

    return task


class StudyController(QObject):
    """Connects the Study tab, the study worker and the task worker.

    Parameters
    ----------
    panel : StudyPanelWidget
    worker : StudyWorker
    tasks : TaskWorker
    qsettings : QSettings
        Where the last study base folder is kept.
    show_window : callable
        Shows a comparison window (the main window keeps the list of open ones).

    Signals
    -------
    study_completed(StudyResult)
        A study run ended (all done, cancelled or with failures) and the tab shows it.
    study_opened(StudyFolder)
        A study folder (and its reconstructions) is on screen.
    study_open_failed(str)
        A study folder asked for by :meth:`open_study` could not be read (the message).
    comparison_opened(CompareWindow)
        A comparison of settings with their ground truth is open.
    """

    study_completed = Signal(object)
    study_opened = Signal(object)
    study_open_failed = Signal(str)
    comparison_opened = Signal(object)

    def __init__(
        self,
        panel: StudyPanelWidget,
        worker: StudyWorker,
        tasks: TaskWorker,
        qsettings: QSettings,
        show_window: Callable[[CompareWindow], None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.panel = panel
        self.worker = worker
        self.tasks = tasks
        self.qsettings = qsettings
        self.show_window = show_window
        self.out = ""
        # a finished study is announced once its folder is on screen
        self._completed: dict[str, StudyResult] = {}
        worker.setting_started.connect(self._on_worker_setting_started)
        worker.setting_finished.connect(self._on_worker_setting_finished)
        worker.study_finished.connect(self._on_worker_study_finished)
        worker.study_failed.connect(self._on_worker_study_failed)
        tasks.task_finished.connect(self._on_tasks_task_finished)
        tasks.task_failed.connect(self._on_tasks_task_failed)
        panel.run_requested.connect(self.start_study)
        panel.cancel_requested.connect(self.cancel_study)
        panel.open_requested.connect(self.open_study)
        panel.compare_requested.connect(self.open_comparison)

    # ------------------------------------------------------------------ actions

    def start_study(self, spec: StudySpec, out: str) -> bool:
        """Run (or resume) a study into the folder ``out`` in the study worker's thread.

        Returns False (and says why in the tab) when a study is already running.
        """
        if not self.worker.start(spec, out):
            self.panel.show_error("a study is running: cancel it first")
            return False
        panel = self.panel
        panel.show_error("")
        panel.set_spec(spec)
        panel.folder_edit.setText(out)
        panel.set_running(True)
        panel.progress_bar.setRange(0, len(spec.settings()))
        panel.status_label.setText(f"Starting the study in {out}…")
        self.qsettings.setValue("study/base", str(Path(out).parent))
        self.out = out
        return True

    def cancel_study(self) -> None:
        """Stop the running study soon (after the current training step); its finished
        settings stay in the folder, and running it again resumes."""
        self.worker.cancel()
        if self.worker.busy:
            self.panel.status_label.setText("Cancelling after the current step…")

    def open_study(self, path: str) -> None:
        """Read a study folder in the task worker, then show it (:attr:`study_opened`);
        errors go to the tab."""
        self.panel.show_error("")
        self.panel.status_label.setText(f"Reading {path}…")
        self._load(path, select_tab=True)

    def open_comparison(self, setting_ids: list[str]) -> None:
        """Compare study settings with their ground truth (the truth is the reference): the
        truth is regenerated and the settings aligned to it in the task worker."""
        folder = self.panel.folder
        if not isinstance(folder, StudyFolder) or not setting_ids:
            return
        self.panel.status_label.setText("Preparing the comparison with the ground truth…")
        self.tasks.request(
            "study-compare", "study-compare", _comparison_records(folder, list(setting_ids))
        )

    # ------------------------------------------------------------------ helpers

    def _load(self, out: str, select_tab: bool = False) -> None:
        shown = self.panel.folder
        same = shown is not None and Path(shown.out) == Path(out)
        known = frozenset(self.panel.snaps) if same else frozenset()
        self.tasks.request("study-folder", (str(Path(out)), select_tab), _load_folder(out, known))

    def _on_tasks_task_finished(self, kind: str, token: object, result: object) -> None:
        if kind == "study-folder" and isinstance(token, tuple) and isinstance(result, tuple):
            folder: StudyFolder = result[0]
            snaps: dict[str, Any] = result[1]
            panel = self.panel
            panel.set_spec(folder.spec)
            panel.folder_edit.setText(str(folder.out))
            panel.show_folder(folder, snaps)
            if token[1]:
                panel.status_label.setText("")
                self.study_opened.emit(folder)
            self._announce(token[0])
        elif kind == "study-compare" and isinstance(result, list):
            names = [str(r.extra["name"]) for r in result]
            try:
                window = CompareWindow(result, [1.0] * len(result), self.tasks, names=names)
            except ValueError as exc:
                self.panel.show_error(str(exc))
                return
            self.panel.status_label.setText("")
            self.show_window(window)
            self.comparison_opened.emit(window)

    def _on_tasks_task_failed(self, kind: str, token: object, message: str) -> None:
        if kind in ("study-folder", "study-compare"):
            self.panel.show_error(message)
            if kind == "study-compare" or (isinstance(token, tuple) and token[1]):
                self.panel.status_label.setText("")
        if kind == "study-folder" and isinstance(token, tuple):
            if token[1]:
                self.study_open_failed.emit(message)
            self._announce(token[0])

    def _announce(self, out: str) -> None:
        result = self._completed.pop(str(out), None)
        if result is not None:
            self.study_completed.emit(result)

    # ------------------------------------------------------------------ slots: study worker

    def _on_worker_setting_started(self, label: str, done: int, total: int) -> None:
        self.panel.progress_bar.setRange(0, max(total, 1))
        self.panel.progress_bar.setValue(done)
        self.panel.status_label.setText(f"Setting {done + 1} of {total}: {label}")

    def _on_worker_setting_finished(self, progress: StudyProgress) -> None:
        self.panel.progress_bar.setValue(progress.done)
        row = progress.row
        self.panel.status_label.setText(
            f"Finished {progress.setting.label()}: amplitude SSIM {row['amplitude_ssim']:.3f}, "
            f"phase SSIM {row['phase_ssim']:.3f}"
        )
        self._load(self.out)

    def _on_worker_study_finished(self, result: StudyResult) -> None:
        panel = self.panel
        panel.set_running(False)
        done = len(result.rows)
        total = panel.progress_bar.maximum()
        if result.stopped:
            text = f"Cancelled: {done} of {total} settings done; run again to resume"
        elif result.failures:
            text = f"{len(result.failures)} settings failed; {done} of {total} done"
            panel.show_error("; ".join(f"{sid}: {msg}" for sid, msg in result.failures))
        else:
            text = f"Done: {done} settings ({result.ran} run now, {result.skipped} earlier)"
        panel.status_label.setText(text)
        self._completed[str(Path(result.out))] = result
        self._load(str(result.out))

    def _on_worker_study_failed(self, message: str) -> None:
        self.panel.set_running(False)
        self.panel.show_error(message)
        self.panel.status_label.setText("The study did not run")
