"""The thread guard of the GUI tests can fail: an inner pytest run that leaks a QThread errors.

The inner run is a subprocess (its own QApplication) with the guard of ``thread_guard`` as its
only conftest; it holds one test that leaks a running QThread, one that leaks a Python thread
and one that stops its QThread properly.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]

INNER_CONFTEST = """
pytest_plugins = ["tests.gui.thread_guard"]
"""

INNER_TESTS = """
import threading

from PySide6.QtCore import QThread

KEPT = []  # the leaked thread must outlive its test, as a thread kept by the app would


def _started(qtbot, name):
    thread = QThread()
    thread.setObjectName(name)
    thread.start()
    qtbot.waitUntil(thread.isRunning)
    return thread


def test_leaks_a_running_qthread(qtbot):
    KEPT.append(_started(qtbot, "leaky-thread"))


def test_leaks_a_python_thread():
    release = threading.Event()
    KEPT.append(release)
    threading.Thread(target=release.wait, name="leaky-python-thread", daemon=True).start()


def test_stops_its_qthread(qtbot):
    thread = _started(qtbot, "tidy-thread")
    thread.quit()
    assert thread.wait(5000)
    assert not thread.isRunning()
"""


def test_guard_fails_on_a_leaked_qthread_and_passes_a_stopped_one(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    # only the plugins named below: the inner run does not depend on what else is installed
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeini("[pytest]\nfilterwarnings =\n    error\n")
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS)
    result = pytester.runpytest_subprocess("-p", "pytestqt.plugin", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaks_a_running_qthread*",
            "*QThread still running: QThread 'leaky-thread', started at *test_inner.py:*",
            "*ERROR at teardown of test_leaks_a_python_thread*",
            "*Python thread still running: 'leaky-python-thread'*",
            "*ERROR test_inner.py::test_leaks_a_running_qthread*",
            "*ERROR test_inner.py::test_leaks_a_python_thread*",
        ]
    )
    assert "tidy-thread" not in result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
