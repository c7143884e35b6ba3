"""The Study tab's adapter to the engine: one :class:`StudyWorker` living in its own ``QThread``.

A study runs settings one after another (the engine's local executor) in the worker thread,
into a study folder: starting one on a folder that holds the same study resumes it. It follows
the app's one worker pattern (:class:`ptycho_gui.jobs.JobWorker`): cancel sets the job's stop
event, which the pipeline checks between training steps; the unfinished setting is not
recorded (running the study again picks it up).

Thread-safety: the worker touches nothing Qt but its own signals; it sends the engine's
progress records (plain Python values) and never modifies them afterwards.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from ptycho_engine.study import StudyError, StudyProgress, StudySpec
from ptycho_gui.jobs import JobWorker, error_message


class StudyWorker(JobWorker):
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

    KINDS = ("study",)
    setting_started = Signal(str, int, int)
    setting_finished = Signal(object)
    study_finished = Signal(object)
    study_failed = Signal(str)

    def start(self, spec: StudySpec, out: str) -> bool:
        """Run (or resume) ``spec`` into the folder ``out``; False when a study is running
        or waiting. Called from the GUI thread; the study runs in the worker's thread."""
        if self.busy:
            return False
        return self.post("study", (spec, str(out)))

    def handle(self, kind: str, payload: Any, stop: threading.Event) -> None:
        from ptycho_engine.streams import drain
        from ptycho_engine.study import pending_settings, study

        spec, out = payload
        total = len(spec.settings())

        def announce() -> None:
            try:
                todo = pending_settings(spec, out)
            except StudyError:  # the engine reports the bad file when the study starts
                return
            if todo and not stop.is_set():
                self.setting_started.emit(todo[0].label(), total - len(todo), total)

        def on_progress(progress: StudyProgress) -> None:
            self.setting_finished.emit(progress)
            announce()

        try:
            announce()
            result = drain(study(spec, Path(out), stop_event=stop), on_progress)
        except Exception as exc:  # reported to the user; the app stays up
            self.study_failed.emit(error_message(exc))
            return
        self.study_finished.emit(result)
