"""The app's pretrained start: opening data shows the pretrained network's image without
training, the run table says which start a run used, and Start fine-tunes that network."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt

import ptycho_engine.pretrain as pretrain_module
from ptycho_gui.main_window import MainWindow
from tests.gui.conftest import TINY, WAIT_MS, Recorder


def test_opening_data_shows_the_pretrained_image_and_start_fine_tunes_it(
    qtbot, qsettings: QSettings, data_file: Path, shipped: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(pretrain_module, "PRETRAINED_DIR", shipped)
    reads: list[str] = []
    load = pretrain_module.load_pretrained

    def counted(path: str | Path) -> object:
        reads.append(threading.current_thread().name)
        return load(path)

    monkeypatch.setattr(pretrain_module, "load_pretrained", counted)
    pretrain_module._loaded_version.cache_clear()  # another test may have read it already
    win = MainWindow(qsettings, TINY.replace(pretrained=True))
    qtbot.addWidget(win)
    recorder = Recorder(win)
    try:
        with qtbot.waitSignal(win.data_ready, timeout=WAIT_MS):
            win.open_file(str(data_file))
        # the network was built while the file was read, in the engine's thread (not the
        # GUI thread, nor the thread that read the file)
        assert len(reads) == 1 and reads[0] != threading.main_thread().name
        assert not reads[0].startswith("engine-read")
        # no Start pressed: the pretrained network's inference is run and shown
        qtbot.waitUntil(lambda: len(recorder.finished) == 1, timeout=WAIT_MS)
        first = win.run_model.record(recorder.finished[0].run_id)
        assert first is not None and first.warm == "pretrained"
        assert first.settings.epochs == 0 and first.object is not None
        assert len(reads) == 1  # the first image took the network read ahead
        assert "inference only" in first.settings.label()
        model = win.run_model
        horizontal = Qt.Orientation.Horizontal
        starts = [
            c for c in range(model.columnCount()) if model.headerData(c, horizontal) == "Start"
        ]
        assert starts and model.index(0, starts[0]).data() == "pretrained"
        # Start fine-tunes the network the first image came from
        run_id = win.start_run()
        qtbot.waitUntil(lambda: recorder.outcome(run_id) is not None, timeout=WAIT_MS)
        second = win.run_model.record(run_id)
        assert second is not None and second.warm == "cached" and second.settings.epochs == 2
        assert recorder.outcome(run_id).state == "finished"
        # from scratch: no pretrained image on a new N either
        win.settings_panel.pretrained_check.setChecked(False)
        assert win.settings_model.flush().pretrained is False
        assert not recorder.errors
    finally:
        win.close()
