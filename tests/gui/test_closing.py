"""Closing the window during any job ends every worker thread within the close timeout.

``MainWindow.shutdown`` waits for the threads at most ``SHUTDOWN_TIMEOUT_MS`` (1.8 s) in all
and lists the ones still running in ``threads_left``; an empty list after ``close()`` is the
proof that every job stopped within that bound (the benchmark prints the times).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings

from ptycho_engine.study import StudySpec
from ptycho_gui.main_window import SHUTDOWN_TIMEOUT_MS, MainWindow
from ptycho_gui.view_models.runs import RunRecord
from tests.gui.conftest import TINY, WAIT_MS


def _threads_of(win: MainWindow) -> list:
    return [win.engine_thread, win.study_thread, win.tasks_thread]


def test_the_close_timeout_is_under_two_seconds() -> None:
    assert SHUTDOWN_TIMEOUT_MS < 2000


def test_close_during_training_ends_every_thread(
    qtbot, qsettings: QSettings, data_file: Path
) -> None:
    win = MainWindow(qsettings, TINY.replace(epochs=500, preview_every=1))
    with qtbot.waitSignal(win.data_ready, timeout=WAIT_MS):
        win.open_file(str(data_file))
    with qtbot.waitSignal(win.worker.snapshot_ready, timeout=WAIT_MS):
        win.start_run()
    assert win.worker.running_kind == "run"
    win.close()
    assert win.threads_left == []
    assert not any(t.isRunning() for t in _threads_of(win))


def test_close_during_a_study_ends_every_thread(
    qtbot, qsettings: QSettings, tmp_path: Path
) -> None:
    win = MainWindow(qsettings, TINY)
    spec = StudySpec(
        N=(32,),
        gridsize=(1,),
        photons=(1e4, 1e6),
        loss=("nll",),
        seeds=(0,),
        epochs=400,
        positions=24,
        n_filters_scale=1,
    )
    with qtbot.waitSignal(win.study_worker.setting_started, timeout=WAIT_MS):
        assert win.start_study(spec, str(tmp_path / "study"))
    qtbot.waitUntil(lambda: win.study_worker.running_kind == "study", timeout=WAIT_MS)
    win.close()
    assert win.threads_left == []
    assert not any(t.isRunning() for t in _threads_of(win))


def test_close_during_an_export_ends_every_thread(
    qtbot, qsettings: QSettings, tmp_path: Path
) -> None:
    win = MainWindow(qsettings, TINY)
    rng = np.random.default_rng(0)
    big = (rng.random((1024, 1024)) * np.exp(1j * rng.random((1024, 1024)))).astype(np.complex64)
    record = RunRecord(
        1,
        TINY,
        state="finished",
        object=big,
        valid=np.ones(big.shape, bool),
        probe=np.ones((32, 32), np.complex64),
        positions_px=rng.random((100, 2)) * 900 + 50,
    )
    win.run_model.add(record)
    assert win.export_run(1, str(tmp_path / "big.png"))
    qtbot.waitUntil(lambda: win.tasks.running_kind == "export", timeout=WAIT_MS)
    win.close()
    assert win.threads_left == []
    assert not any(t.isRunning() for t in _threads_of(win))
