"""The one worker pattern of the app: jobs run in a ``QThread``, the newest request wins, and a
running job stops cooperatively.

A :class:`JobWorker` lives in its own thread. The GUI thread calls :meth:`JobWorker.post`
(through the subclasses' ``request_*`` methods), which stores the request under a lock (a
pending request of the same kind is *replaced*: a burst of edits never queues stale work),
optionally sets the running job's stop event, and emits a queued signal; the worker thread then
takes jobs in its kinds' order and runs them. Every job gets a fresh ``threading.Event``
(:attr:`JobWorker.stop_event` while it runs), which engine code checks between steps.

Thread-safety: the worker touches nothing Qt but its own signals; everything it emits is numpy
arrays or plain values that it does not modify afterwards.
"""

from __future__ import annotations

import threading
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal

from ptycho_engine.errors import PtychoError


def error_message(exc: BaseException) -> str:
    """The message a scientist reads: engine errors as they are, others with their type."""
    if isinstance(exc, PtychoError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class JobWorker(QObject):
    """Base of the app's workers (engine, study, file and numerical tasks).

    Subclasses set :attr:`KINDS` (job kinds in the order they are taken) and implement
    :meth:`handle`.

    Signals
    -------
    error_occurred(str)
        A job raised; the worker keeps serving jobs.
    busy_changed(bool)
        A job started (True) or the queue ran empty (False).
    """

    KINDS: tuple[str, ...] = ()
    error_occurred = Signal(str)
    busy_changed = Signal(bool)
    _jobs_posted = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, Any], Any] = {}
        self._stop_event = threading.Event()
        self._running: str | None = None
        self._closing = False
        self._jobs_posted.connect(self._on_self_jobs_posted, Qt.ConnectionType.QueuedConnection)

    # ---------------------------------------------------------------- any thread

    @property
    def stop_event(self) -> threading.Event:
        """The stop event of the job running now (a fresh one per job)."""
        with self._lock:
            return self._stop_event

    @property
    def busy(self) -> bool:
        """True while a job runs or waits."""
        with self._lock:
            return self._running is not None or bool(self._pending)

    @property
    def running_kind(self) -> str | None:
        """Kind of the job running now, None when idle."""
        with self._lock:
            return self._running

    def post(
        self,
        kind: str,
        payload: Any,
        *,
        stop: bool = False,
        drop: tuple[str, ...] = (),
        key: Any = None,
    ) -> bool:
        """Queue a job of ``kind``, replacing a pending one of the same kind (and ``key``).

        ``stop`` also stops the running job; ``drop`` removes pending jobs of other kinds;
        ``key`` keeps requests of one kind apart (e.g. one per window). Returns False (and
        queues nothing) once the worker is shut down.
        """
        if kind not in self.KINDS:
            raise ValueError(f"{type(self).__name__} has no job kind {kind!r}: {self.KINDS}")
        with self._lock:
            if self._closing:
                return False
            for name in drop:
                for pending in [k for k in self._pending if k[0] == name]:
                    del self._pending[pending]
            self._pending[(kind, key)] = payload
            if stop:
                self._stop_event.set()
        self._jobs_posted.emit()
        return True

    def cancel(self, *kinds: str) -> None:
        """Drop pending jobs of ``kinds`` (all when none given) and stop the running one if it
        is of those kinds."""
        with self._lock:
            for pending in [k for k in self._pending if not kinds or k[0] in kinds]:
                del self._pending[pending]
            if self._running is not None and (not kinds or self._running in kinds):
                self._stop_event.set()

    def shutdown(self) -> None:
        """Stop the running job and start no other. Call ``QThread.quit`` and ``wait`` next."""
        with self._lock:
            self._closing = True
            self._pending.clear()
            self._stop_event.set()

    @property
    def closing(self) -> bool:
        """True after :meth:`shutdown`."""
        with self._lock:
            return self._closing

    # ---------------------------------------------------------------- worker thread

    def handle(self, kind: str, payload: Any, stop: threading.Event) -> None:
        """Run one job (in the worker thread); ``stop`` is set when it should end early."""
        raise NotImplementedError

    def _take_job(self) -> tuple[str, Any, threading.Event] | None:
        with self._lock:
            self._running = None
            if self._closing:
                return None
            for kind in self.KINDS:
                for pending in self._pending:
                    if pending[0] == kind:
                        self._running = kind
                        self._stop_event = threading.Event()
                        return kind, self._pending.pop(pending), self._stop_event
        return None

    def _on_self_jobs_posted(self) -> None:
        started = False
        while (job := self._take_job()) is not None:
            if not started:
                started = True
                self.busy_changed.emit(True)
            kind, payload, stop = job
            try:
                self.handle(kind, payload, stop)
            except Exception as exc:  # shown to the user; the worker keeps serving jobs
                self.error_occurred.emit(error_message(exc))
        if started:
            self.busy_changed.emit(False)


def start_worker(worker: JobWorker, name: str, parent: QObject | None = None) -> QThread:
    """A started thread named ``name`` that owns ``worker`` (deleted with the thread)."""
    thread = QThread(parent)
    thread.setObjectName(name)
    worker.moveToThread(thread)
    thread.finished.connect(worker.deleteLater)
    thread.start()
    return thread


def stop_workers(pairs: list[tuple[JobWorker, QThread]], timeout_ms: int = 1800) -> bool:
    """Shut the workers down and wait for their threads, all within ``timeout_ms``.

    Returns
    -------
    bool
        True when every thread ended in time.
    """
    import time

    for worker, thread in pairs:
        worker.shutdown()
        thread.quit()
    end = time.monotonic() + timeout_ms / 1000.0
    ok = True
    for _worker, thread in pairs:
        left = max(1, int((end - time.monotonic()) * 1000))
        ok = thread.wait(left) and ok
    return ok


class TaskWorker(JobWorker):
    """File and numerical work the GUI thread must not do: probe files, exports, reading study
    folders, comparisons (alignment, FRC). Each job is a Qt-free callable.

    A task is posted as ``(token, fn)`` where ``fn(progress, stop)`` does the work:
    ``progress(done, total)`` reports, ``stop`` is the job's ``threading.Event``. The newest
    task of a kind replaces a pending one (e.g. a second comparison request).

    Signals
    -------
    task_finished(str, object, object)
        Kind, token and the callable's return value.
    task_failed(str, object, str)
        Kind, token and the error message.
    task_progress(str, int, int)
        Kind, done, total.
    """

    KINDS = ("probe-file", "export", "study-folder", "compare", "study-compare")
    task_finished = Signal(str, object, object)
    task_failed = Signal(str, object, str)
    task_progress = Signal(str, int, int)

    def request(self, kind: str, token: Any, fn: Any) -> bool:
        """Run ``fn(progress, stop)`` as a job of ``kind``; ``token`` comes back with it. A
        newer request with the same kind and token replaces a pending one."""
        return self.post(kind, (token, fn), key=token)

    def handle(self, kind: str, payload: Any, stop: threading.Event) -> None:
        token, fn = payload

        def progress(done: int, total: int) -> None:
            self.task_progress.emit(kind, int(done), int(total))

        try:
            result = fn(progress, stop)
        except Exception as exc:  # reported with its token; the worker stays up
            self.task_failed.emit(kind, token, error_message(exc))
            return
        self.task_finished.emit(kind, token, result)
