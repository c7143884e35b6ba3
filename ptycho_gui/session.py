"""Sessions in the window: the runs of a session folder persist, and come back.

Every finished run is a run folder ``run-<id>`` in the window's session folder (written by the
engine worker). :class:`SessionController` adds what the File menu offers:

* "Restore last session (N runs)": the session folder of the last window that made runs is
  remembered (QSettings ``session/last_dir``); at start its runs are counted in the task
  worker, and the action (and a button in the status bar, never a modal prompt) offers them;
* "Open session…": every run folder is read in the task worker, then the run table holds those
  runs and new runs are written to that folder, numbered after its runs;
* "Save session as…": the complete run folders are copied to a new folder in the task worker
  (the window goes on writing to its own session folder).

Restored runs are ordinary :class:`~ptycho_gui.view_models.runs.RunRecord` objects: they can
be shown, compared and exported as live ones.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QPushButton

from ptycho_gui.jobs import TaskWorker
from ptycho_gui.view_models.session import (
    SessionContents,
    copy_session_task,
    count_runs_task,
    read_session_task,
)

#: QSettings key of the last session folder that received runs.
LAST_SESSION_KEY = "session/last_dir"


class AppTaskWorker(TaskWorker):
    """The window's task worker: the tasks of :class:`TaskWorker` and the session's."""

    # (mypy infers TaskWorker.KINDS as a tuple of five strings)
    KINDS = (*TaskWorker.KINDS, "session-count", "session-read", "session-copy")  # type: ignore[assignment]


class SessionController(QObject):
    """Restores, opens and copies session folders through the task worker.

    Parameters
    ----------
    settings : QSettings
    tasks : TaskWorker
        A worker with the kinds of :class:`AppTaskWorker`.
    session_dir : Path or None
        The window's session folder (None: runs are not written).

    Signals
    -------
    restore_available(str, int)
        The last session's folder and its run count (sent when that count is known and > 0).
    session_read(object)
        A session folder was read: its :class:`~ptycho_gui.view_models.session.SessionContents`
        (the window fills the run table and writes new runs there).
    session_saved(str, int)
        A copy was made: its folder and how many runs it holds.
    failed(str)
        Reading or copying a session failed: the message says why.
    """

    restore_available = Signal(str, int)
    session_read = Signal(object)
    session_saved = Signal(str, int)
    failed = Signal(str)

    def __init__(
        self,
        settings: QSettings,
        tasks: TaskWorker,
        session_dir: Path | None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings
        self.tasks = tasks
        self.session_dir = session_dir
        self.last_dir = str(settings.value(LAST_SESSION_KEY, "", str) or "")
        self.last_count = 0
        tasks.task_finished.connect(self._on_tasks_task_finished)
        tasks.task_failed.connect(self._on_tasks_task_failed)

    def count_last_session(self) -> bool:
        """Count the runs of the last session (answered by :attr:`restore_available`);
        False when there is none to count."""
        if not self.last_dir:
            return False
        return self.tasks.request("session-count", "last", count_runs_task(self.last_dir))

    def offer_with(self, action: QAction, button: QPushButton) -> None:
        """Let ``action`` and ``button`` offer the last session once its runs are counted
        (the button is hidden again when a session is read)."""

        def offer(folder: str, count: int) -> None:
            text = f"Restore last session ({count} run{'s' if count != 1 else ''})"
            action.setText(text)
            action.setToolTip(folder)
            action.setEnabled(True)
            button.setText(text + "…")
            button.setToolTip(f"Read the runs of {folder} into the run table")
            button.setVisible(True)

        self.restore_available.connect(offer)
        self.session_read.connect(lambda _contents: button.setVisible(False))

    def restore_last(self) -> bool:
        """Read the last session's runs (answered by :attr:`session_read`)."""
        if not self.last_dir:
            self.failed.emit("no earlier session to restore")
            return False
        return self.open(self.last_dir)

    def open(self, folder: str) -> bool:
        """Read every run folder of ``folder`` (answered by :attr:`session_read`)."""
        return self.tasks.request("session-read", "read", read_session_task(folder))

    def save_as(self, folder: str) -> bool:
        """Copy the session's runs to the new folder ``folder`` (answered by
        :attr:`session_saved`)."""
        if self.session_dir is None:
            self.failed.emit("this window keeps no session folder: its runs are not on disk")
            return False
        task = copy_session_task(self.session_dir, folder)
        return self.tasks.request("session-copy", "copy", task)

    def adopt(self, folder: str) -> None:
        """``folder`` is the window's session folder from now on."""
        self.session_dir = Path(folder)

    def remember(self, has_runs: bool) -> None:
        """At close: remember the session folder for the next start when it received runs."""
        if has_runs and self.session_dir is not None:
            self.settings.setValue(LAST_SESSION_KEY, str(self.session_dir))

    def _on_tasks_task_finished(self, kind: str, _token: object, result: object) -> None:
        if kind == "session-count" and isinstance(result, tuple):
            folder, count = result
            self.last_count = int(count)
            if count > 0:
                self.restore_available.emit(str(folder), int(count))
        elif kind == "session-read" and isinstance(result, SessionContents):
            self.adopt(result.folder)
            self.session_read.emit(result)
        elif kind == "session-copy" and isinstance(result, tuple):
            self.session_saved.emit(str(result[0]), int(result[1]))

    def _on_tasks_task_failed(self, kind: str, _token: object, message: str) -> None:
        if kind == "session-read":
            self.failed.emit(f"could not open the session: {message}")
        elif kind == "session-copy":
            self.failed.emit(f"could not save the session: {message}")
