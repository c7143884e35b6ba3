"""The main window driving the real engine worker with tiny configurations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

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
    assert set(record.metrics) >= {"amplitude_ssim", "phase_ssim", "phase_frc_1_7_px"}
    assert window.redraws >= 1 and window.object_views.frames >= 1


def test_burst_of_changes_runs_once_with_the_last_settings(
    qtbot,
    window: MainWindow,
    recorder: Recorder,
) -> None:
    start_long_run(qtbot, window)
    n_started = len(recorder.started)
    committed: list = []
    window.settings_model.settings_committed.connect(committed.append)
    rates = np.linspace(1e-3, 2e-3, 20)
    for k, rate in enumerate(rates):
        window.settings_model.update(learning_rate=float(rate), epochs=1 + (k == 19))
        assert window.settings_model.pending
    last = window.settings_model.settings
    assert last.epochs == 2 and last.learning_rate == pytest.approx(2e-3)
    outcome = wait_for_run(qtbot, recorder, lambda o, s: s == last and o.state == "finished")
    # one commit and none pending: nothing can ask the worker for another run
    assert committed == [last] and not window.settings_model.pending
    qtbot.waitUntil(lambda: window.worker.running_settings is None, timeout=WAIT_MS)
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
    with qtbot.waitSignal(window.settings_panel.probe_rejected, timeout=WAIT_MS):
        window.settings_panel.set_probe_path(str(probe))  # read in the engine worker
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
    with qtbot.waitSignal(window.settings_panel.probe_applied, timeout=WAIT_MS):
        window.settings_panel.set_probe_path(str(path))
    assert window.settings_model.settings.probe_path == str(path)
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
    import ptycho_engine.pipeline as pipeline

    real = pipeline.run
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated engine failure")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "run", flaky)
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
    with qtbot.waitSignal(compare.comparison_ready, timeout=WAIT_MS):
        pass  # resampled and correlated in the task worker
    levels = {pane.levels for pane in compare.panes}
    assert len(levels) == 1 and None not in levels  # shared colour levels
    assert compare.metrics_table.rowCount() == 2
    assert len(compare.curves) == 1 and compare.curves[0].curve.size > 4
    compare.close()


def exported(qtbot, window: MainWindow, run_id: int, path: Path, fmt: str | None = None) -> list:
    with qtbot.waitSignal(window.export_finished, timeout=WAIT_MS) as blocker:
        assert window.export_run(run_id, str(path), fmt)
    return blocker.args[0]


def test_exports_hold_the_run(
    qtbot,
    window: MainWindow,
    recorder: Recorder,
    tmp_path: Path,
) -> None:
    import tifffile
    from matplotlib.image import imread

    from ptycho_engine.io import read_product

    window.settings_panel.rerun_check.setChecked(False)
    window.start_run()
    outcome = wait_for_run(qtbot, recorder, lambda o, s: o.state == "finished")
    record = window.run_model.record(outcome.run_id)
    assert record is not None and record.object is not None and record.probe is not None
    assert record.positions_px is not None

    (h5,) = exported(qtbot, window, outcome.run_id, tmp_path / "run.h5")
    product = read_product(h5)
    np.testing.assert_array_equal(product.object[0], record.object)
    np.testing.assert_array_equal(product.probe[0], record.probe)
    origin = np.asarray(record.origin_px)
    np.testing.assert_allclose(product.positions_px, record.positions_px - origin, atol=1e-9)
    np.testing.assert_allclose(product.loss_values, [h[1] for h in record.history])

    # no suffix: the type chosen in the dialog decides
    amp, phase = exported(qtbot, window, outcome.run_id, tmp_path / "run", ".tif")
    assert (amp.name, phase.name) == ("run_amplitude.tif", "run_phase.tif")
    np.testing.assert_array_equal(tifffile.imread(amp), np.abs(record.object))
    np.testing.assert_array_equal(tifffile.imread(phase), np.angle(record.object))

    amp_png, phase_png = exported(qtbot, window, outcome.run_id, tmp_path / "run.png")
    grey = imread(amp_png)[..., :3]
    colour = imread(phase_png)[..., :3]
    assert grey.shape == colour.shape == (500, 600, 3)
    # the amplitude is drawn with the app's grey map, the phase with its cyclic colour map
    chroma_grey = grey.max(axis=2) - grey.min(axis=2)
    chroma_colour = colour.max(axis=2) - colour.min(axis=2)
    assert np.mean(chroma_grey < 0.02) > 0.99
    assert np.mean(chroma_colour > 0.2) > 0.05

    bad = exported(qtbot, window, outcome.run_id, tmp_path / "run.jpg")
    assert bad == [] and "unknown export type" in window.error_label.text()
