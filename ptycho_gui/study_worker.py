"""The Study tab's adapter to the engine: one :class:`StudyWorker` living in its own ``QThread``.

A study runs settings one after another (the engine's local executor) in the worker thread,
into a study folder: starting one on a folder that holds the same study resumes it. Cancel is a
``threading.Event`` set from the GUI thread; the engine checks it between training steps, and
the unfinished setting is not recorded (running the study again picks it up).

Thread-safety: the worker touches nothing Qt but its own signals; it sends the engine's
progress records (plain Python values) and never modifies them afterwards.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from ptycho_engine.study import (
    StudyError,
    StudyProgress,
    StudyResult,
    StudySpec,
    read_results,
    setting_id,
)
from ptycho_gui.worker import error_message


class StudyWorker(QObject):
    """Runs one study at a time.

    Signals
    -------
    setting_started(str, int, int)
        Label of the setting now training, finished settings so far, all settings.
    setting_finished(StudyProgress)
        A setting's row and files are written.
    study_finished(StudyResult)
        The run ended: all done, cancelled (``stopped``), or with failed settings
        (``failures``).
    study_failed(str)
        The study could not run at all (e.g. the folder holds another study).
    """

    setting_started = Signal(str, int, int)
    setting_finished = Signal(object)
    study_finished = Signal(object)
    study_failed = Signal(str)
    _start_requested = Signal(object, str)

    def __init__(self) -> None:
        super().__init__()
        self._stop = threading.Event()
        self._busy = threading.Event()
        self._start_requested.connect(self._run)

    @property
    def busy(self) -> bool:
        """True from :meth:`start` until the run's last signal."""
        return self._busy.is_set()

    def start(self, spec: StudySpec, out: str) -> bool:
        """Run (or resume) ``spec`` into the folder ``out``; False when a study is running.

        Called from the GUI thread; the study runs in the worker's thread.
        """
        if self._busy.is_set():
            return False
        self._busy.set()
        self._stop.clear()
        self._start_requested.emit(spec, out)
        return True

    def cancel(self) -> None:
        """Ask the running study to stop soon (safe from any thread)."""
        self._stop.set()

    @Slot(object, str)
    def _run(self, spec: StudySpec, out: str) -> None:
        from ptycho_engine.study import study

        try:
            gen = study(spec, Path(out), stop_event=self._stop)
            while True:
                pending, done, total = self._pending(spec, out)
                if pending is not None and not self._stop.is_set():
                    self.setting_started.emit(pending, done, total)
                try:
                    progress: StudyProgress = next(gen)
                except StopIteration as stop:
                    result: StudyResult = stop.value
                    break
                self.setting_finished.emit(progress)
            self.study_finished.emit(result)
        except Exception as exc:  # reported to the user; the app stays up
            self.study_failed.emit(error_message(exc))
        finally:
            self._busy.clear()

    @staticmethod
    def _pending(spec: StudySpec, out: str) -> tuple[str | None, int, int]:
        """Label of the setting the local executor runs next, settings done, all settings."""
        settings = spec.settings()
        try:
            done_ids = {r.get("setting_id") for r in read_results(Path(out))}
        except StudyError:  # the engine reports the bad file when the study starts
            done_ids = set()
        todo = [s for s in settings if setting_id(spec, s) not in done_ids]
        label = todo[0].label() if todo else None
        return label, len(settings) - len(todo), len(settings)


def wait_idle(worker: StudyWorker, timeout_s: float) -> bool:
    """Block until the worker is idle (tests and shutdown); True when it is."""
    end = time.monotonic() + timeout_s
    while worker.busy and time.monotonic() < end:
        time.sleep(0.01)
    return not worker.busy
