"""The window's actions: keyboard shortcuts (Start, Stop, Compare, next and previous run),
the Help menu (shortcuts, About with versions and provenance), and undo/redo of settings."""

from __future__ import annotations

from pathlib import Path

import pyqtgraph
import PySide6
import pytest
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QMessageBox

from ptycho_engine.runs import versions
from ptycho_gui.main_window import MainWindow
from ptycho_gui.view_models.run_settings import RunSettings
from ptycho_gui.view_models.settings_model import SettingsModel, settings_change_text
from tests.gui.conftest import TINY, WAIT_MS, Recorder


def keys(action) -> list[str]:
    return [k.toString(QKeySequence.SequenceFormat.PortableText) for k in action.shortcuts()]


def menu_texts(window: MainWindow, title: str) -> list[str]:
    (menu,) = [a.menu() for a in window.menuBar().actions() if a.text() == title]
    return [a.text() for a in menu.actions() if not a.isSeparator()]


def test_actions_carry_their_shortcuts_and_help_lists_them(qtbot, window: MainWindow) -> None:
    acts = window.menu_actions
    assert keys(acts.start) == ["Ctrl+R", "F5"]
    assert keys(acts.stop) == ["Esc", "Ctrl+."]
    assert keys(acts.compare) == ["Ctrl+K"]
    assert keys(acts.next_run) == ["Ctrl+Down"] and keys(acts.previous_run) == ["Ctrl+Up"]
    assert keys(acts.undo) == ["Ctrl+Z"] and keys(acts.redo) == ["Ctrl+Shift+Z"]
    assert menu_texts(window, "&Help") == ["&Keyboard shortcuts", "&About Ptycho Explorer"]
    assert "Open &session…" in menu_texts(window, "&File")
    assert "Save session &as…" in menu_texts(window, "&File")
    acts.shortcuts.trigger()
    (box,) = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert not box.isModal()
    lines = box.text().splitlines()
    assert "Ctrl+R, F5: Start a run with the current settings" in lines
    assert "Ctrl+K: Compare the runs selected in the table (2 to 6)" in lines
    box.close()


def test_about_names_the_versions_and_the_datas_provenance(
    window: MainWindow, data_file: Path
) -> None:
    window.menu_actions.about.trigger()
    box = window.about_box
    assert box is not None and not box.isModal()
    text = box.text()
    assert f"PySide6 {PySide6.__version__}" in text
    assert f"pyqtgraph {pyqtgraph.__version__}" in text
    assert f"numpy {versions()['numpy']}" in text and f"python {versions()['python']}" in text
    assert window.data is not None
    assert f"path: {data_file}" in text and "format: pinn-npz" in text
    assert f"sha256: {window.data.provenance['sha256']}" in text
    assert "preparation steps:" in text
    box.close()


def test_the_run_shortcuts_start_stop_compare_and_step_through_runs(
    qtbot, window: MainWindow, recorder: Recorder
) -> None:
    acts = window.menu_actions
    window.settings_panel.rerun_check.setChecked(False)
    window.settings_model.reset(TINY.replace(epochs=300))
    acts.start.trigger()
    qtbot.waitUntil(lambda: window.live.shown_id is not None, timeout=WAIT_MS)  # an image
    with qtbot.waitSignal(window.run_completed, timeout=WAIT_MS) as stopped:
        acts.stop.trigger()
    first = stopped.args[0]
    assert first.state == "stopped" and first.object is not None
    window.settings_model.reset(TINY)
    with qtbot.waitSignal(window.run_completed, timeout=WAIT_MS) as done:
        acts.start.trigger()
    second = done.args[0]
    assert second.state == "finished"

    acts.previous_run.trigger()
    assert window.live.pinned_id == first.run_id
    assert window.run_table.selected_run_ids() == [first.run_id]
    acts.previous_run.trigger()  # none before the first
    assert window.live.pinned_id == first.run_id and "No previous" in window.status_label.text()
    acts.next_run.trigger()
    assert window.live.pinned_id == second.run_id
    acts.live_run.trigger()
    assert window.live.pinned_id is None

    window.run_table.select_run_ids([first.run_id])
    acts.compare.trigger()  # one run: refused with a reason
    assert window.compare_windows == [] and "select 2 to 6" in window.error_label.text()
    window.run_table.select_run_ids([first.run_id, second.run_id])
    acts.compare.trigger()
    (compare,) = window.compare_windows
    assert compare.names == [f"#{first.run_id}", f"#{second.run_id}"]
    with qtbot.waitSignal(compare.comparison_ready, timeout=WAIT_MS):
        pass
    compare.close()


def test_undo_and_redo_put_the_settings_back_in_the_panel(qtbot, window: MainWindow) -> None:
    model, panel, acts = window.settings_model, window.settings_panel, window.menu_actions
    panel.rerun_check.setChecked(False)
    start = model.settings
    with qtbot.waitSignal(model.settings_committed, timeout=WAIT_MS):
        panel.epochs_spin.setValue(3)
    with qtbot.waitSignal(model.settings_committed, timeout=WAIT_MS):
        model.update(epochs=5, learning_rate=2e-3)
    assert acts.undo.text() == "&Undo epochs 3 → 5, learning_rate 0.001 → 0.002"
    acts.undo.trigger()
    assert (model.settings.epochs, model.settings.learning_rate) == (3, 1e-3)
    assert panel.epochs_spin.value() == 3 and panel.lr_spin.value() == pytest.approx(1e-3)
    acts.undo.trigger()
    assert model.settings == start and panel.epochs_spin.value() == start.epochs
    acts.undo.trigger()
    assert model.settings == start and window.status_label.text() == "Nothing to undo"
    acts.redo.trigger()
    assert model.settings.epochs == 3
    acts.redo.trigger()
    assert model.settings.epochs == 5 and panel.epochs_spin.value() == 5
    assert not model.pending  # undo and redo commit nothing: no run starts
    # an edit not committed yet is undone first, as one step
    model.update(epochs=7)
    assert model.pending
    acts.undo.trigger()
    assert model.settings.epochs == 5 and not model.pending
    assert window.run_model.records == []


def test_each_commit_is_one_undo_step(qtbot) -> None:
    model = SettingsModel(RunSettings(N=32))
    for k in range(5):  # a burst: one commit
        model.update(epochs=10 + k)
    with qtbot.waitSignal(model.settings_committed, timeout=5000):
        pass
    assert model.undo_stack.count() == 1
    model.reset(RunSettings(N=64))  # new data: no step, the next undo goes back to it
    with qtbot.waitSignal(model.settings_committed, timeout=5000):
        model.update(gridsize=3)
    assert model.undo_stack.count() == 2
    assert model.undo() and model.settings == RunSettings(N=64)
    assert model.flush() == RunSettings(N=64) and model.undo_stack.canRedo()
    model.update(gridsize=1)
    model.flush()  # Start: the pending edit is a step, the redo step is gone
    assert not model.undo_stack.canRedo() and model.undo_stack.count() == 2
    assert settings_change_text(RunSettings(N=32), RunSettings(N=64, epochs=3)) == (
        "N 32 → 64, epochs 10 → 3"
    )
