"""Fixtures of the GUI tests: a tiny data file, a temporary QSettings, a window with the
real worker, and a check that no test leaves a thread running (``thread_guard``)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from ptycho_engine.io import write_pinn_npz
from ptycho_engine.simulate import simulate_dataset
from ptycho_gui.app import collect_garbage_in_gui_thread, configure_pyqtgraph, preload_tensorflow
from ptycho_gui.main_window import MainWindow
from ptycho_gui.view_models.run_settings import RunSettings
from tests.gui.thread_guard import no_thread_left  # noqa: F401 - autouse fixture of every GUI test

WAIT_MS = 120_000

#: The tests' runs start from new weights, so that what they check does not depend on the
#: shipped pretrained networks (tests/gui/test_pretrained_start.py checks that start).
TINY = RunSettings(
    N=32, gridsize=1, n_filters_scale=1, epochs=2, batch_size=16, preview_every=1,
    pretrained=False,
)  # fmt: skip


@pytest.fixture(scope="session", autouse=True)
def _gui_session(tmp_path_factory: pytest.TempPathFactory) -> None:
    preload_tensorflow()
    configure_pyqtgraph()
    # Any QSettings built without a path lands in a temporary folder, never the user's.
    folder = str(tmp_path_factory.mktemp("qsettings"))
    for fmt in (QSettings.Format.IniFormat, QSettings.Format.NativeFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, folder)
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)


@pytest.fixture(scope="package", autouse=True)
def _garbage_in_gui_thread(qapp) -> Iterator[None]:
    """As in the app: Python garbage is collected in the GUI thread only (a collection in a
    worker thread may free a Qt object there and hang), for the GUI tests' duration."""
    collector = collect_garbage_in_gui_thread()
    yield
    del collector
    gc.enable()
    gc.collect()


@pytest.fixture(autouse=True)
def _collect_after_test() -> Iterator[None]:
    """Free what a test left (closed windows, their workers) now, in the GUI thread.

    What survives the collection is then frozen (``gc.freeze``): later collections skip it.
    Without that, each collection walked the whole heap of TensorFlow and of every earlier
    test: 2.4 s per test late in the suite (measured), minutes in all.
    """
    yield
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 simulated 64x64 patterns with probe and ground truth."""
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    write_pinn_npz(path, simulate_dataset(N=64, n_positions=60, photons=1e6, seed=1))
    return path


@pytest.fixture
def qsettings(tmp_path: Path) -> QSettings:
    """A settings file of this test only."""
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, qsettings: QSettings, data_file: Path) -> Iterator[MainWindow]:
    """A main window with the real worker and the tiny data loaded."""
    win = MainWindow(qsettings, TINY)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.data_ready, timeout=WAIT_MS):
        win.open_file(str(data_file))
    yield win
    win.close()
    assert not win.engine_thread.isRunning()


class Recorder:
    """Collects the worker's signals of a test."""

    def __init__(self, win: MainWindow) -> None:
        self.started: list = []
        self.finished: list = []
        self.errors: list[str] = []
        win.worker.run_started.connect(self.started.append)
        win.run_completed.connect(self.finished.append)
        win.worker.error_occurred.connect(self.errors.append)

    def outcome(self, run_id: int):
        return next((o for o in self.finished if o.run_id == run_id), None)


@pytest.fixture
def recorder(window: MainWindow) -> Recorder:
    return Recorder(window)
