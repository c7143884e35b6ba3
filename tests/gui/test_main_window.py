"""The main window driving the real engine worker with tiny configurations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ptycho_gui.worker as worker_module
from ptycho_gui.main_window import MainWindow
from tests.gui.conftest import TINY, WAIT_MS, Recorder

LONG = 200  # epochs of a run that must still be training when the test changes something


def start_long_run(qtbot, window: MainWindow) -> int:
    """Start a long run and wait for its first epoch; returns its run id."""
    window.settings_model.reset(TINY.replace(epochs=LONG))
    with qtbot.waitSignal(window.worker.snapshot_ready, timeout=WAIT_MS) as blocker:
        window.start_run()
    return blocker.args[0].run_id


def wait_for_run(qtbot, recorder: Recorder, check) -> object:
    """Wait until a finished outcome satisfies ``check(outcome, settings)``."""

    def found() -> bool:
        settings = {info.run_id: info.settings for info in recorder.started}
        return any(check(o, settings[o.run_id]) for o in recorder.finished)

    qtbot.waitUntil(found, timeout=WAIT_MS)
    settings = {info.run_id: info.settings for info in recorder.started}
    return next(o for o in recorder.finished if check(o, settings[o.run_id]))


@pytest.mark.parametrize("change", [{"N": 64}, {"gridsize": 2}])
def test_change_while_training_gives_a_run_at_the_new_setting(
    qtbot,
    window: MainWindow,
    recorder: Recorder,
    change: dict,
) -> None:
    first = start_long_run(qtbot, window)
    window.settings_model.update(epochs=1, **change)
    key, value = next(iter(change.items()))
    outcome = wait_for_run(
        qtbot, recorder, lambda o, s: getattr(s, key) == value and o.state == "finished"
    )
    assert recorder.errors == []
    assert window.error_label.text() == ""
    assert recorder.outcome(first).state == "stopped"
    record = window.run_model.record(outcome.run_id)
    assert record is not None and record.object is not None
    assert set(record.metrics) >= {"amp_ssim", "phase_ssim"}
    assert window.redraws >= 1 and window.object_views.frames >= 1


def test_burst_of_changes_runs_once_with_the_last_settings(
    qtbot,
    window: MainWindow,
    recorder: Recorder,
) -> None:
    start_long_run(qtbot, window)
    n_started = len(recorder.started)
    rates = np.linspace(1e-3, 2e-3, 20)
    for k, rate in enumerate(rates):
        window.settings_model.update(learning_rate=float(rate), epochs=1 + (k == 19))
        qtbot.wait(40)
    last = window.settings_model.settings
    assert last.epochs == 2 and last.learning_rate == pytest.approx(2e-3)
    outcome = wait_for_run(qtbot, recorder, lambda o, s: s == last and o.state == "finished")
    with qtbot.assertNotEmitted(window.worker.run_started, wait=800):
        pass
    new_runs = recorder.started[n_started:]
    assert [info.run_id for info in new_runs] == [outcome.run_id]
    assert new_runs[0].settings == last
    assert new_runs[0].warm == "cached"  # same model as the stopped run: its weights go on


def test_probe_that_does_not_fit_is_reported_and_the_app_stays_usable(
    qtbot,
    window: MainWindow,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    probe = tmp_path / "small_probe.npy"
    np.save(probe, np.ones((16, 16), np.complex64))
    assert not window.settings_panel.set_probe_path(str(probe))
    message = window.settings_panel.probe_message.text()
    assert "does not fit" in message and "16x16" in message and "N=32" in message
    assert "16x16" in window.error_label.text()
    assert window.settings_model.settings.probe_path == ""
    window.start_run()
    outcome = wait_for_run(qtbot, recorder, lambda o, s: True)
    assert outcome.state == "finished"


def test_probe_that_fits_is_used_and_warm_starts_from_current_weights(
    qtbot,
    window: MainWindow,
    recorder: Recorder,
    tmp_path: Path,
    data_file: Path,
) -> None:
    window.settings_panel.rerun_check.setChecked(False)
    window.start_run()
    wait_for_run(qtbot, recorder, lambda o, s: o.state == "finished")
    data = np.load(data_file)
    probe = np.asarray(data["probeGuess"])[16:48, 16:48] * 0.9
    path = tmp_path / "probe32.npy"
    np.save(path, probe.astype(np.complex64))
    assert window.settings_panel.set_probe_path(str(path))
    window.start_run()
    outcome = wait_for_run(qtbot, recorder, lambda o, s: bool(s.probe_path))
    assert outcome.state == "finished"
    assert recorder.started[-1].warm == "transfer"
    assert recorder.errors == []


def test_worker_exception_is_shown_and_the_next_run_works(
    qtbot,
    window: MainWindow,
    recorder: Recorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = worker_module._engine_train
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated engine failure")
        return real(*args, **kwargs)

    monkeypatch.setattr(worker_module, "_engine_train", flaky)
    window.start_run()
    failed = wait_for_run(qtbot, recorder, lambda o, s: True)
    assert failed.state == "failed"
    assert "simulated engine failure" in window.error_label.text()
    assert recorder.errors == ["RuntimeError: simulated engine failure"]
    window.start_run()
    outcome = wait_for_run(qtbot, recorder, lambda o, s: o.state == "finished")
    assert outcome.object is not None and outcome.object.dtype == np.complex64


def test_close_during_a_run_stops_the_worker_thread(
    qtbot,
    qsettings,
    data_file: Path,
) -> None:
    win = MainWindow(qsettings, TINY.replace(epochs=LONG))
    with qtbot.waitSignal(win.data_ready, timeout=WAIT_MS):
        win.open_file(str(data_file))
    with qtbot.waitSignal(win.worker.snapshot_ready, timeout=WAIT_MS):
        win.start_run()
    assert win.worker.running_settings is not None
    win.close()
    assert not win.engine_thread.isRunning()
    assert qsettings.value("session/recent_files", [], list) == [str(data_file)]


def test_prediction_comparison_and_export(
    qtbot,
    window: MainWindow,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    window.settings_panel.rerun_check.setChecked(False)
    window.start_run()
    first = wait_for_run(qtbot, recorder, lambda o, s: o.state == "finished")
    window.settings_model.reset(TINY.replace(gridsize=2, epochs=1))
    window.start_run()
    second = wait_for_run(qtbot, recorder, lambda o, s: s.gridsize == 2)
    with qtbot.waitSignal(window.worker.pattern_predicted, timeout=WAIT_MS) as blocker:
        window.data_panel.position_clicked.emit(5)
    index, measured, predicted = blocker.args
    assert index == 5 and measured.shape == predicted.shape == (32, 32)
    assert np.all(np.isfinite(predicted)) and predicted.max() > 0

    compare = window.open_comparison([first.run_id, second.run_id])
    assert compare is not None and len(compare.panes) == 2
    levels = {pane.levels for pane in compare.panes}
    assert len(levels) == 1  # shared colour levels
    assert compare.metrics_table.rowCount() == 2
    compare.close()

    written = window.export_run(first.run_id, str(tmp_path / "run.h5"))
    written += window.export_run(first.run_id, str(tmp_path / "run.tif"))
    assert [p.name for p in written] == ["run.h5", "run_amplitude.tif", "run_phase.tif"]
    assert all(p.stat().st_size > 0 for p in written)
