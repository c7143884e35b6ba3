"""The GUI tests' guard against threads that outlive a test: Python threads and ``QThread``.

A ``QThread`` started from Python runs its code in a thread that ``threading`` only knows as
a ``_DummyThread`` (never ending), so counting Python threads cannot see it. The guard
therefore wraps ``QThread.start`` for the duration of each test, keeps a weak reference to
every ``QThread`` started (a subclass that does not override ``start`` included) and where it
was started, and fails the test at teardown when one of them is still running after a short
wait. A leaked ``QThread`` is then asked to quit and waited for, so that it cannot abort the
interpreter later ("QThread: Destroyed while thread is still running").

Not seen: threads that C++ code starts by itself (``QThreadPool``, ``QThread::create``) and a
``start`` slot connected before the test began.

This module imports only pytest and PySide6, so a pytest run can load it as a plugin without
the app (``tests/gui/test_thread_guard.py`` does, to show that the guard fails).
"""

from __future__ import annotations

import threading
import traceback
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import shiboken6
from PySide6.QtCore import QThread

#: How long a test's threads get to end after the test, in milliseconds.
SETTLE_MS = 10_000
#: How long a leaked QThread gets to quit once the guard has failed, in milliseconds.
CLEANUP_MS = 5_000


@dataclass(frozen=True)
class StartedQThread:
    """A ``QThread`` started during a test: a weak reference and where ``start`` was called."""

    ref: weakref.ReferenceType[QThread]
    started_at: str

    def running(self) -> QThread | None:
        """The thread when it is alive and still running, else None."""
        thread = self.ref()
        if thread is None or not shiboken6.isValid(thread):
            return None
        return thread if thread.isRunning() else None


def python_threads() -> list[threading.Thread]:
    """Live Python threads, less the dummy entries of threads started outside Python."""
    # Threads started by Qt or TensorFlow appear as _DummyThread entries that never end;
    # QThreads are tracked through QThread.start instead.
    return [t for t in threading.enumerate() if type(t).__name__ != "_DummyThread"]


def _describe(thread: QThread) -> str:
    name = thread.objectName()
    return f"{type(thread).__name__} {name!r}" if name else f"{type(thread).__name__} (unnamed)"


def _caller(depth: int = 3) -> str:
    """``file:line in function`` of the code that called ``QThread.start`` and its callers."""
    frames = traceback.extract_stack(limit=depth + 2)[:-2]  # less the wrapper and this
    return " <- ".join(f"{f.filename}:{f.lineno} in {f.name}" for f in reversed(frames))


@contextmanager
def recording_qthreads() -> Iterator[list[StartedQThread]]:
    """Record every ``QThread.start`` call made inside the block."""
    started: list[StartedQThread] = []
    original: Callable[..., Any] = QThread.start

    def start(thread: QThread, *args: Any, **kwargs: Any) -> Any:
        started.append(StartedQThread(weakref.ref(thread), _caller()))
        return original(thread, *args, **kwargs)

    QThread.start = start
    try:
        yield started
    finally:
        QThread.start = original


def _stop(threads: list[QThread]) -> None:
    """Quit and wait for leaked QThreads so that a later test or the exit does not crash."""
    for thread in threads:
        thread.requestInterruption()
        thread.quit()
    for thread in threads:
        thread.wait(CLEANUP_MS)


def check_threads(
    qtbot: Any, python_before: set[int | None], started: list[StartedQThread], timeout_ms: int
) -> None:
    """Wait up to ``timeout_ms`` for the test's threads to end; fail naming those that did not.

    Raises
    ------
    pytest.fail.Exception
        Naming every QThread still running (name, class, where it was started) and every
        Python thread the test started that is still alive.
    """

    def leaked_python() -> list[threading.Thread]:
        return [t for t in python_threads() if t.ident not in python_before]

    def settled() -> bool:
        return not leaked_python() and all(s.running() is None for s in started)

    try:
        qtbot.waitUntil(settled, timeout=timeout_ms)
    except qtbot.TimeoutError:
        pass
    else:
        return
    lines = []
    running: list[QThread] = []
    for record in started:
        thread = record.running()
        if thread is not None:
            running.append(thread)
            lines.append(
                f"QThread still running: {_describe(thread)}, started at {record.started_at}"
            )
    lines += [f"Python thread still running: {t.name!r} ({t!r})" for t in leaked_python()]
    _stop(running)
    if not lines:  # everything ended between the last poll and now
        return
    pytest.fail(
        f"the test left {len(lines)} thread(s) running after {timeout_ms} ms:\n" + "\n".join(lines),
        pytrace=False,
    )


@pytest.fixture(autouse=True)
def no_thread_left(qtbot: Any) -> Iterator[None]:
    """Fail when a test leaves a Python thread or a ``QThread`` it started running."""
    python_before = {t.ident for t in python_threads()}
    with recording_qthreads() as started:
        yield
    check_threads(qtbot, python_before, started, SETTLE_MS)
