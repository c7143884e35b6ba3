"""Sessions: the runs of a window persist in its session folder, come back in a new window
(Restore last session, Open session…), can be copied (Save session as…), and are shown,
compared and exported as live runs are; comparisons of different data are refused."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings

from ptycho_engine.io import read_product, write_pinn_npz
from ptycho_engine.simulate import simulate_dataset
from ptycho_gui.main_window import MainWindow
from ptycho_gui.view_models.run_settings import RunSettings
from ptycho_gui.view_models.runs import RunRecord
from tests.gui.conftest import TINY, WAIT_MS

SETTINGS = [
    TINY,
    TINY.replace(gridsize=2, epochs=1),
    TINY.replace(algorithm="rpie", iterations=3, solver_preview_every=3),
]


def load(qtbot, window: MainWindow, path: Path) -> None:
    with qtbot.waitSignal(window.data_ready, timeout=WAIT_MS):
        window.open_file(str(path))


def run_once(qtbot, window: MainWindow, settings: RunSettings):
    """Run ``settings`` to its end (rerun on change off) and return the outcome."""
    window.settings_panel.rerun_check.setChecked(False)
    window.settings_model.reset(settings)
    with qtbot.waitSignal(window.run_completed, timeout=WAIT_MS) as done:
        window.start_run()
    outcome = done.args[0]
    assert outcome.state == "finished", outcome.message
    return outcome


def same_number(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= 1e-12


def assert_same_run(new: RunRecord, old: RunRecord, same_folder: bool = True) -> None:
    assert (new.run_id, new.settings, new.state, new.warm) == (
        old.run_id,
        old.settings,
        old.state,
        old.warm,
    )
    assert set(new.metrics) == set(old.metrics) and new.metrics
    for name, value in old.metrics.items():
        assert same_number(new.metrics[name], value), name
    assert new.object is not None and old.object is not None
    np.testing.assert_array_equal(new.object, old.object)
    np.testing.assert_array_equal(new.valid, old.valid)
    assert new.origin_px == old.origin_px
    assert len(new.history) == len(old.history)
    for a, b in zip(new.history, old.history, strict=True):
        assert a[0] == b[0] and all(same_number(x, y) for x, y in zip(a[1:], b[1:], strict=True))
    assert new.probe_modes is not None and old.probe_modes is not None
    np.testing.assert_array_equal(new.probe_modes, old.probe_modes)
    assert new.positions_px is not None and old.positions_px is not None
    np.testing.assert_allclose(new.positions_px, old.positions_px, atol=1e-9)
    assert (new.data_path, new.data_sha256, new.pixel_size_m) == (
        old.data_path,
        old.data_sha256,
        old.pixel_size_m,
    )
    assert new.position_scale == old.position_scale and new.elapsed_s == old.elapsed_s
    assert new.flags == old.flags
    assert (
        new.run_dir == old.run_dir if same_folder else Path(new.run_dir).name == f"run-{old.run_id}"
    )


def test_runs_come_back_from_the_session_folder(
    qtbot, qsettings: QSettings, data_file: Path, tmp_path: Path
) -> None:
    session = tmp_path / "session"
    first = MainWindow(qsettings, TINY, session_dir=session)
    qtbot.addWidget(first)
    assert not first.menu_actions.restore_session.isEnabled()  # nothing to restore yet
    load(qtbot, first, data_file)
    ids = [run_once(qtbot, first, s).run_id for s in SETTINGS]
    assert ids == [1, 2, 3]
    before = {r.run_id: r for r in first.run_model.records}
    assert all(r.run_dir == str(session / f"run-{r.run_id}") for r in before.values())
    # Save session as…: a copy of the run folders, made in the task worker
    copy = tmp_path / "saved" / "beamtime"
    with qtbot.waitSignal(first.session_saved, timeout=WAIT_MS) as saved:
        assert first.save_session_as(str(copy))
    assert saved.args == [str(copy), 3]
    assert sorted(p.name for p in copy.iterdir()) == ["run-1", "run-2", "run-3"]
    first.close()

    second = MainWindow(qsettings, TINY, session_dir=session)
    qtbot.addWidget(second)
    restore = second.menu_actions.restore_session
    qtbot.waitUntil(restore.isEnabled, timeout=WAIT_MS)  # counted in the task worker
    assert restore.text() == "Restore last session (3 runs)"
    assert not second.restore_button.isHidden()  # offered in the status bar too, no dialog
    with qtbot.waitSignal(second.session_opened, timeout=WAIT_MS) as opened:
        restore.trigger()
    restored = {r.run_id: r for r in opened.args[0]}
    assert sorted(restored) == [1, 2, 3]
    assert [r.run_id for r in second.run_model.records] == [1, 2, 3]
    for run_id, old in before.items():
        assert_same_run(restored[run_id], old)
    assert second.restore_button.isHidden()
    # the newest restored run is on screen, named in its captions
    assert second.live.pinned_id == 3 and second.live.caption.startswith("#3 rPIE N=32")

    # restored runs are shown, compared and exported like live ones
    second.show_run(1)
    assert second.live.pinned_id == 1 and "showing run #1" in second.windowTitle()
    shown = second.object_views.amplitude_view.image.image
    np.testing.assert_allclose(shown, np.abs(before[1].object), rtol=1e-6)
    compare = second.open_comparison([1, 2])
    assert compare is not None
    with qtbot.waitSignal(compare.comparison_ready, timeout=WAIT_MS):
        pass
    assert compare.metrics_table.rowCount() == 2
    compare.close()
    with qtbot.waitSignal(second.export_finished, timeout=WAIT_MS) as exported:
        assert second.export_run(2, str(tmp_path / "run2.h5"))
    (h5,) = exported.args[0]
    product = read_product(h5)
    np.testing.assert_array_equal(product.object[0], before[2].object)

    # a new run continues the session's numbering in its folder: nothing is overwritten
    load(qtbot, second, data_file)
    assert run_once(qtbot, second, TINY).run_id == 4
    assert (session / "run-4" / "run.json").is_file()

    # Open session…: the copy, read in the task worker
    with qtbot.waitSignal(second.session_opened, timeout=WAIT_MS) as opened:
        assert second.open_session(str(copy))
    assert [r.run_id for r in opened.args[0]] == [1, 2, 3]
    assert second.session_dir == copy
    assert all(Path(r.run_dir).parent == copy for r in second.run_model.records)
    second.close()
    # the last session is the one the window wrote to last
    assert qsettings.value("session/last_dir") == str(copy)

    # a run still going when a session is opened stops, and its end is not a restored run's
    third = MainWindow(qsettings, TINY)
    qtbot.addWidget(third)
    load(qtbot, third, data_file)
    third.settings_panel.rerun_check.setChecked(False)
    third.settings_model.reset(TINY.replace(epochs=300))
    assert third.start_run() == 1  # the id of a run in the session opened next
    qtbot.waitUntil(lambda: third.live.shown_id == 1, timeout=WAIT_MS)
    ended: list = []
    third.run_completed.connect(ended.append)
    with qtbot.waitSignal(third.session_opened, timeout=WAIT_MS):
        assert third.open_session(str(copy))
    qtbot.waitUntil(lambda: len(ended) == 1, timeout=WAIT_MS)
    assert ended[0].run_id == 1 and ended[0].state == "stopped"
    record = third.run_model.record(1)
    assert record is not None
    assert_same_run(record, before[1], same_folder=False)
    assert third.run_model.records[-1].run_id == 3 and third.current_run_id is None
    third.close()


def test_runs_of_different_files_are_not_compared(
    qtbot, qsettings: QSettings, data_file: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other.npz"
    write_pinn_npz(other, simulate_dataset(N=64, n_positions=40, photons=1e6, seed=2))
    win = MainWindow(qsettings, TINY)
    qtbot.addWidget(win)
    load(qtbot, win, data_file)
    first = run_once(qtbot, win, TINY)
    load(qtbot, win, other)
    second = run_once(qtbot, win, TINY)
    records = [win.run_model.record(i) for i in (first.run_id, second.run_id)]
    assert [Path(r.data_path).name for r in records if r is not None] == ["tiny.npz", "other.npz"]
    assert win.open_comparison([first.run_id, second.run_id]) is None
    assert win.compare_windows == []
    message = win.error_label.text()  # the reason, from the comparison's view model
    assert f"runs #{first.run_id} and #{second.run_id} come from different files" in message
    assert "tiny.npz" in message and "other.npz" in message
    win.close()
