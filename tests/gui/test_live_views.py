"""Every view says what it shows and belongs to its run: captions that name the run, "Show"
pins a finished run while another trains, stopping and queued runs are marked, new data
clear the old data's views, the predicted pattern names its model, and the first launch says
what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ptycho_engine.io import write_pinn_npz
from ptycho_engine.simulate import simulate_dataset
from ptycho_gui.main_window import MainWindow
from ptycho_gui.view_models.run_settings import RunSettings
from ptycho_gui.view_models.run_table_model import COLUMNS
from tests.gui.conftest import TINY, WAIT_MS, Recorder

LONG = TINY.replace(epochs=300)
STATE = [name for name, _value in COLUMNS].index("State")


def run_once(qtbot, window: MainWindow, settings: RunSettings):
    window.settings_panel.rerun_check.setChecked(False)
    window.settings_model.reset(settings)
    with qtbot.waitSignal(window.run_completed, timeout=WAIT_MS) as done:
        window.start_run()
    assert done.args[0].state == "finished", done.args[0].message
    return done.args[0]


def start_long(qtbot, window: MainWindow) -> int:
    """Start a long run and wait until its first epoch's image is drawn; returns its id
    (waits on the window, in the GUI thread: never on a signal of the worker's thread)."""
    window.settings_panel.rerun_check.setChecked(False)
    window.settings_model.reset(LONG)
    run_id = window.start_run()
    assert run_id is not None
    qtbot.waitUntil(lambda: window.live.shown_id == run_id, timeout=WAIT_MS)
    return int(run_id)


def state_of(window: MainWindow, run_id: int) -> str:
    model = window.run_model
    row = [r.run_id for r in model.records].index(run_id)
    return str(model.index(row, STATE).data())


def amplitude_shown(window: MainWindow) -> np.ndarray:
    return np.asarray(window.object_views.amplitude_view.image.image)


def test_the_first_launch_says_what_to_do(window: MainWindow, data_file: Path) -> None:
    hint = f"Press Start (Ctrl+R) to reconstruct {data_file.name}"
    assert window.placeholder.text() == hint and not window.placeholder.isHidden()
    assert hint in window.status_label.text()
    # the reading of the file filled the bar: nothing has run yet, so it is at 0 %
    bar = window.progress_bar
    assert (bar.value(), bar.maximum()) == (0, 1)
    assert window.run_model.records == [] and window.current_run_id is None


def test_show_pins_a_finished_run_while_another_trains(
    qtbot, window: MainWindow, recorder: Recorder
) -> None:
    pinned = run_once(qtbot, window, TINY)
    record = window.run_model.record(pinned.run_id)
    assert record is not None and record.object is not None
    live = start_long(qtbot, window)
    assert window.live.caption.startswith(f"#{live} PINN N=32 g=1 · epoch ")

    window.run_table.select_run_ids([pinned.run_id])
    window.run_table.show_button.click()
    redraws = window.redraws
    expected = np.abs(record.object)
    np.testing.assert_allclose(amplitude_shown(window), expected, rtol=1e-6)
    epochs_of_pinned = [h[0] for h in record.history]
    live_record = window.run_model.record(live)
    assert live_record is not None
    epochs_before = len(live_record.history)
    # the live run goes on: 5 more epochs, each with its image (preview every epoch)
    qtbot.waitUntil(lambda: len(live_record.history) >= epochs_before + 5, timeout=WAIT_MS)
    # ... and overwrites neither the views nor the loss plot
    np.testing.assert_allclose(amplitude_shown(window), expected, rtol=1e-6)
    assert window.redraws == redraws
    assert window.loss_plot.epochs == epochs_of_pinned
    caption = window.live.caption
    assert caption.startswith(f"#{pinned.run_id} PINN N=32 g=1 · epoch 2") and "pinned" in caption
    assert f"showing run #{pinned.run_id}" in window.windowTitle()
    # every image view's title names the pinned run, and so does the loss plot's
    panes = [*window.object_views.panes, *window.probe_view.panes]
    for pane in panes:
        assert pane.caption.startswith(f"#{pinned.run_id} "), (pane.title_text(), pane.caption)
    assert f"#{pinned.run_id}" in window.loss_plot.getPlotItem().titleLabel.text
    assert not window.run_table.live_button.isHidden()
    assert window.menu_actions.live_run.isEnabled()

    # back to the live run: its newest image and its own history only
    window.run_table.live_button.click()
    qtbot.waitUntil(lambda: window.live.shown_id == live, timeout=WAIT_MS)
    assert window.live.caption.startswith(f"#{live} PINN N=32 g=1 · epoch ")
    assert window.loss_plot.epochs[0] == 1 and len(window.loss_plot.epochs) >= 5
    assert window.loss_plot.epochs == sorted(set(window.loss_plot.epochs))  # one run's
    assert window.run_table.live_button.isHidden() and window.live.pinned_id is None
    with qtbot.waitSignal(window.run_completed, timeout=WAIT_MS):
        window.stop_run()


def test_a_settings_change_marks_the_running_run_stopping_and_the_new_one_queued(
    qtbot, window: MainWindow, recorder: Recorder
) -> None:
    first = start_long(qtbot, window)
    window.settings_panel.rerun_check.setChecked(True)
    with qtbot.waitSignal(window.settings_model.settings_committed, timeout=WAIT_MS):
        window.settings_model.update(epochs=2)
    # at once, before the worker has stopped anything
    queued = first + 1
    assert window.status_label.text().startswith(f"Stopping run #{first}…")
    assert f"(run #{queued} is queued)" in window.status_label.text()
    assert state_of(window, first) == "stopping" and state_of(window, queued) == "queued"
    assert "stopping" in window.live.caption and f"run #{queued} pending" in window.live.caption
    assert window.live.caption.startswith(f"#{first} ")

    # (the recorder hears the worker in its own thread: wait on the table, in this one)
    qtbot.waitUntil(lambda: state_of(window, queued) != "queued", timeout=WAIT_MS)
    assert state_of(window, first) == "stopped"
    assert state_of(window, queued) in ("running", "finished")
    qtbot.waitUntil(lambda: window.live.shown_id == queued, timeout=WAIT_MS)
    assert window.live.caption.startswith(f"#{queued} PINN N=32 g=1 · epoch ")
    qtbot.waitUntil(lambda: state_of(window, queued) == "finished", timeout=WAIT_MS)
    assert [info.run_id for info in recorder.started] == [first, queued]


def test_stop_drops_a_queued_run_and_its_id(qtbot, window: MainWindow, recorder: Recorder) -> None:
    first = start_long(qtbot, window)
    queued = window.start_run()
    assert queued == first + 1 and state_of(window, queued) == "queued"
    assert window.start_run() == queued  # a newer request takes the queued run's place
    with qtbot.waitSignal(window.run_completed, timeout=WAIT_MS) as done:
        window.menu_actions.stop.trigger()
        assert [r.run_id for r in window.run_model.records] == [first]
        assert state_of(window, first) == "stopping"
    assert done.args[0].state == "stopped"
    assert [info.run_id for info in recorder.started] == [first]
    # the dropped id is given to the next run
    assert run_once(qtbot, window, TINY).run_id == queued


def test_opening_a_file_clears_what_belongs_to_the_old_one(
    qtbot, window: MainWindow, recorder: Recorder, tmp_path: Path
) -> None:
    run_once(qtbot, window, TINY)
    window.data_panel.position_clicked.emit(3)
    qtbot.waitUntil(lambda: window.diffraction_view.predicted_view.frames == 1, timeout=WAIT_MS)
    window.error_label.setText("an old error")
    other = tmp_path / "other.npz"
    data = simulate_dataset(N=64, n_positions=40, photons=1e6, seed=3)
    write_pinn_npz(other, data)
    with qtbot.waitSignal(window.data_ready, timeout=WAIT_MS):
        window.open_file(str(other))
    for pane in (
        window.object_views.amplitude_view,
        window.object_views.phase_view,
        window.object_views.complex_view,
        window.diffraction_view.measured_view,
        window.diffraction_view.predicted_view,
    ):
        assert pane.image.image is None and pane.frames == 0
    assert window.live.caption == "" and window.diffraction_view.index is None
    # the empty pair says how to fill it, and a click replaces the measured pane's hint
    pair = window.diffraction_view
    hints = type(pair).EMPTY_HINTS
    assert (pair.measured_view.caption, pair.predicted_view.caption) == hints
    assert "click a scan position" in pair.measured_view.toolTip()
    assert window.loss_plot.epochs == [] and window.error_label.text() == ""
    assert window.current_run_id is None and window.live.live_id is None
    assert window.data is not None and window.data.probe is not None
    probe = window.probe_view.amplitude_view.image.image
    np.testing.assert_allclose(probe, np.abs(window.data.probe), rtol=1e-6)
    assert window.probe_view.amplitude_view.caption == "the data file's probe"
    assert window.placeholder.text() == "Press Start (Ctrl+R) to reconstruct other.npz"
    assert window.progress_bar.value() == 0
    assert len(window.run_model.records) == 1  # the old data's runs stay in the table
    window.data_panel.position_clicked.emit(2)
    assert pair.measured_view.caption == "" and pair.measured_view.frames == 1
    assert pair.predicted_view.caption != hints[1]


def test_the_predicted_pattern_waits_for_a_model_and_names_it(
    qtbot, window: MainWindow, recorder: Recorder
) -> None:
    predicted = window.diffraction_view.predicted_view
    pairs: list[tuple] = []
    # (no Qt object is touched in the callback; depending on the binding it runs in the
    # worker's thread or queued after the window's own slot, so the test waits for both)
    window.worker.pattern_predicted.connect(lambda *args: pairs.append(args))
    first = start_long(qtbot, window)
    window.data_panel.position_clicked.emit(4)
    assert window.live.predicted_caption == f"Predicted #4 (after run #{first} ends)"
    with qtbot.waitSignal(window.run_completed, timeout=WAIT_MS):
        window.stop_run()
    # the run's own model answers as soon as the run has ended
    expected = f"Predicted #4 · run #{first}"
    qtbot.waitUntil(
        lambda: window.live.predicted_caption == expected and len(pairs) >= 1, timeout=WAIT_MS
    )
    assert len(pairs) == 1 and pairs[0][0] == 4 and predicted.frames == 1

    # while the next run trains (from the same model), a click is answered between its steps
    second = start_long(qtbot, window)
    window.data_panel.position_clicked.emit(6)
    assert "computing" in window.live.predicted_caption
    expected = f"Predicted #6 · run #{second}"
    qtbot.waitUntil(
        lambda: window.live.predicted_caption == expected and len(pairs) >= 2, timeout=WAIT_MS
    )
    assert len(pairs) == 2 and pairs[1][0] == 6 and window.worker.running_run_id == second
    assert np.all(np.isfinite(pairs[1][2])) and pairs[1][2].max() > 0
    with qtbot.waitSignal(window.run_completed, timeout=WAIT_MS):
        window.stop_run()
    assert recorder.errors == []


@pytest.mark.parametrize("algorithm", ["rpie"])
def test_a_solvers_views_name_its_iteration(
    qtbot, window: MainWindow, recorder: Recorder, algorithm: str
) -> None:
    outcome = run_once(
        qtbot, window, TINY.replace(algorithm=algorithm, iterations=4, solver_preview_every=2)
    )
    assert window.live.caption == f"#{outcome.run_id} rPIE N=32 · it. 4 · finished"
    assert window.probe_view.caption == "it. 4"
    assert window.probe_view.amplitude_view.caption == f"#{outcome.run_id} rPIE N=32"
