"""The Study tab: choose axes, run the queue with progress and cancel, thumbnails with shared
levels and linked zoom, the dose plot, and clicking a cell to compare it with the truth."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtCore import QPoint, QPointF, QRectF, QSettings, Qt

from ptycho_engine.study import RESULTS_CSV, RESULTS_JSON
from ptycho_gui.main_window import MainWindow
from ptycho_gui.widgets.study_panel import StudyPanelWidget
from tests.gui.conftest import TINY, WAIT_MS


@pytest.fixture
def bare_window(qtbot, qsettings: QSettings) -> Iterator[MainWindow]:
    """A main window without data (a study needs none)."""
    win = MainWindow(qsettings, TINY)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    win.tabs.setCurrentWidget(win.study_panel)
    yield win
    win.close()
    assert not win.engine_thread.isRunning()
    assert not win.study_thread.isRunning()


def fill_form(
    panel: StudyPanelWidget, folder: Path, *, gridsize=(1, 2), photons="1e4 1e6", epochs=1
) -> None:
    for n, box in panel.n_checks.items():
        box.setChecked(n == 32)
    for g, box in panel.gridsize_checks.items():
        box.setChecked(g in gridsize)
    for name, box in panel.loss_checks.items():
        box.setChecked(name == "nll")
    panel.photons_edit.setText(photons)
    panel.seeds_edit.setText("0")
    panel.epochs_spin.setValue(epochs)
    panel.positions_spin.setValue(24)
    panel.folder_edit.setText(str(folder))


def click_cell(qtbot, panel: StudyPanelWidget, sid: str, ctrl: bool = False) -> None:
    centre = panel.grid_view.cell_centre(sid)
    assert centre is not None
    point = panel.grid_view.mapFromScene(QPointF(*centre))
    modifier = Qt.KeyboardModifier.ControlModifier if ctrl else Qt.KeyboardModifier.NoModifier
    qtbot.mouseClick(
        panel.grid_view.viewport(),
        Qt.MouseButton.LeftButton,
        modifier,
        QPoint(point.x(), point.y()),
    )


def test_study_tab_runs_a_study_and_shows_it(qtbot, bare_window: MainWindow, tmp_path: Path):
    win = bare_window
    panel = win.study_panel
    out = tmp_path / "study"
    fill_form(panel, out)
    assert panel.count_label.text() == "4 settings"
    started: list[tuple[str, int, int]] = []
    win.study_worker.setting_started.connect(lambda *a: started.append(a))
    with qtbot.waitSignal(win.study_completed, timeout=4 * WAIT_MS) as blocker:
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
        assert not panel.run_button.isEnabled() and panel.cancel_button.isEnabled()
    result = blocker.args[0]
    assert result.ran == 4 and not result.stopped and not result.failures
    assert [s[1:] for s in started] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert panel.progress_bar.value() == 4 and panel.progress_bar.maximum() == 4
    assert panel.status_label.text().startswith("Done: 4 settings")
    assert panel.run_button.isEnabled() and not panel.cancel_button.isEnabled()
    rows = json.loads((out / RESULTS_JSON).read_text())["rows"]
    assert len(rows) == 4

    # thumbnails: rows dose, columns (N, g, loss); one image per setting, shared levels
    grid = panel.grid_view
    assert grid.grid is not None and grid.grid.shape == (2, 2)
    assert set(grid.images) == {r["setting_id"] for r in rows}
    for r in rows:  # hovering a cell tells its scores (1 epoch: the checkpoints are the end)
        tip = grid.images[r["setting_id"]].toolTip().splitlines()
        assert tip[0] == r["setting_id"]
        assert tip[1].startswith(f"amplitude SSIM {r['amplitude_ssim']:.3f} (")
    levels = {tuple(np.round(item.levels, 6)) for item in grid.images.values()}
    assert len(levels) == 1 and grid.levels[1] > grid.levels[0]
    # every cell starts on the region that holds all the reconstructions
    views = list(grid.views.values())
    start = views[0].viewRect()
    assert all(v.viewRect().center() == start.center() for v in views)
    for item in grid.images.values():
        assert start.contains(item.mapRectToParent(item.boundingRect()))
    # linked zoom: zooming one cell with the mouse shows the same region in every cell
    views[-1].setRange(rect=QRectF(5.0, 7.0, 20.0, 20.0), padding=0.0)
    views[-1].sigRangeChangedManually.emit(views[-1].state["mouseEnabled"])  # as a wheel does
    for view in views[:-1]:
        rect = view.viewRect()
        assert rect.center().x() == pytest.approx(15.0, abs=0.5)
        assert rect.center().y() == pytest.approx(17.0, abs=0.5)
        assert min(rect.width(), rect.height()) == pytest.approx(20.0, rel=0.05)
    panel.part_combo.setCurrentText("phase")
    assert grid.levels == pytest.approx((-np.pi, np.pi))

    # dose plot: one line per (N, g, loss), a point per dose, at the rows' mean values
    assert set(panel.dose_plot.curves) == {"N=32 g=1 nll", "N=32 g=2 nll"}
    for label, curve in panel.dose_plot.curves.items():
        x, y = curve.getData()
        g = int(label.split("g=")[1].split()[0])
        expected = [r["amplitude_ssim"] for r in rows if r["gridsize"] == g]
        assert np.allclose(x, [4.0, 6.0]) and np.allclose(sorted(y), sorted(expected))

    # a click opens the run next to its ground truth in the comparison view
    first = rows[0]["setting_id"]
    with qtbot.waitSignal(win.study.comparison_opened, timeout=WAIT_MS) as opened:
        click_cell(qtbot, panel, first)  # the truth is made and aligned in a worker
    assert len(win.compare_windows) == 1
    compare = win.compare_windows[-1]
    assert compare is opened.args[0]
    assert compare.names[0] == "ground truth (seed 0)" and compare.names[1].startswith("N32-g1")
    assert compare.metrics_table.item(1, 1).text() == f"{rows[0]['amplitude_ssim']:.3f}"
    compare.close()

    # ctrl+click selects; "Compare selected" shows the truth and every selected run
    click_cell(qtbot, panel, rows[1]["setting_id"], ctrl=True)
    click_cell(qtbot, panel, rows[3]["setting_id"], ctrl=True)
    assert grid.selected == [rows[1]["setting_id"], rows[3]["setting_id"]]
    qtbot.waitUntil(lambda: not win.compare_windows)  # the closed one is gone, none opened
    with qtbot.waitSignal(win.study.comparison_opened, timeout=WAIT_MS):
        qtbot.mouseClick(panel.compare_button, Qt.MouseButton.LeftButton)
    assert len(win.compare_windows) == 1 and len(win.compare_windows[0].panes) == 3

    # a folder that holds no study is refused with its name; the tab stays usable
    empty = tmp_path / "empty"
    empty.mkdir()
    with qtbot.waitSignal(win.study.study_open_failed, timeout=WAIT_MS):
        win.open_study(str(empty))
    assert (
        str(empty) in panel.error_label.text() and "not a study folder" in panel.error_label.text()
    )
    with qtbot.waitSignal(win.study.study_opened, timeout=WAIT_MS):
        win.open_study(str(out))
    assert len(grid.images) == 4


def test_app_opens_a_study_folder_from_the_command_line(tmp_path: Path, data_file: Path):
    from ptycho_engine.study import StudySpec, run_study

    out = tmp_path / "study"
    spec = StudySpec(
        N=(32,),
        gridsize=(1,),
        photons=(1e4, 1e6),
        loss=("nll",),
        seeds=(0,),
        epochs=1,
        positions=24,
        n_filters_scale=1,
    )
    run_study(spec, out)
    shot = tmp_path / "shot.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ptycho_gui.app",
            str(data_file),
            "--study",
            str(out),
            "--screenshot",
            str(shot),
            "--quit-when-done",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_study_tab_cancel_then_resume(qtbot, bare_window: MainWindow, tmp_path: Path):
    win = bare_window
    panel = win.study_panel
    out = tmp_path / "study"
    fill_form(panel, out, gridsize=(1,), photons="1e4 1e5 1e6", epochs=12)
    finished: list = []
    win.study_worker.setting_finished.connect(finished.append)
    with qtbot.waitSignal(win.study_completed, timeout=4 * WAIT_MS) as blocker:
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(finished) >= 1, timeout=4 * WAIT_MS)
        qtbot.mouseClick(panel.cancel_button, Qt.MouseButton.LeftButton)
    cancelled = blocker.args[0]
    assert cancelled.stopped and cancelled.ran < 3
    assert panel.status_label.text().startswith("Cancelled")
    assert panel.run_button.isEnabled()
    with open(out / RESULTS_CSV, newline="") as handle:
        assert len(list(csv.DictReader(handle))) == cancelled.ran
    # the grid shows the finished settings only
    assert len(panel.grid_view.images) == cancelled.ran

    # the same axes again: only the missing settings run
    with qtbot.waitSignal(win.study_completed, timeout=4 * WAIT_MS) as blocker:
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    resumed = blocker.args[0]
    assert resumed.skipped == cancelled.ran and resumed.ran == 3 - cancelled.ran
    assert not resumed.stopped and len(resumed.rows) == 3
    assert len({r["setting_id"] for r in resumed.rows}) == 3
    assert len(panel.grid_view.images) == 3


def test_study_form_errors_name_the_field(qtbot, bare_window: MainWindow, tmp_path: Path):
    panel = bare_window.study_panel
    fill_form(panel, tmp_path / "s")
    panel.photons_edit.setText("1e4 lots")
    assert "photons per pattern" in panel.count_label.text()
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert "'lots' is not a number" in panel.error_label.text()
    assert not bare_window.study_worker.busy
    panel.photons_edit.setText("1e4")
    for box in panel.gridsize_checks.values():
        box.setChecked(False)
    qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    assert panel.error_label.text().startswith("gridsize")
    # a folder holding another study is refused by the engine, and the tab says so
    other = tmp_path / "other"
    other.mkdir()
    (other / "unrelated.txt").write_text("x")
    fill_form(panel, other)
    with qtbot.waitSignal(bare_window.study_worker.study_failed, timeout=WAIT_MS):
        qtbot.mouseClick(panel.run_button, Qt.MouseButton.LeftButton)
    # the blocker hears the worker's signal in its thread; the window's slot comes after
    qtbot.waitUntil(lambda: "not empty" in panel.error_label.text())
    assert str(other) in panel.error_label.text()
    qtbot.waitUntil(panel.run_button.isEnabled)
    assert panel.status_label.text() == "The study did not run"


def test_opening_a_study_fills_the_form_so_that_run_resumes_it(
    qtbot, bare_window: MainWindow, tmp_path: Path
):
    from ptycho_engine.study import StudySpec

    win = bare_window
    panel = win.study_panel
    spec = StudySpec(
        N=(64,),
        gridsize=(1, 2),
        photons=(1e3, 1e9),
        loss=("nll", "mae"),
        seeds=(0, 1),
        epochs=50,
        positions=500,
        n_filters_scale=1,
        mae_warmup_epochs=2,
        scan="raster",
        batch_size=8,
        learning_rate=5e-4,
    )
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"format": 1, "spec": spec.to_dict()}))
    with qtbot.waitSignal(win.study.study_opened, timeout=WAIT_MS):
        win.open_study(str(out))
    assert panel.width_spin.value() == 1 and panel.warmup_spin.value() == 2
    assert panel.spec() == spec  # Run on this folder resumes it instead of refusing it
    assert panel.count_label.text() == "16 settings"
    panel.width_spin.setValue(2)  # a changed field makes another study
    assert panel.spec().n_filters_scale == 2 and panel.spec().scan == "raster"


def test_dose_plot_draws_resolutions_on_a_log_axis(qtbot):
    """A resolution in pixels against dose: log y, so a few pixels and the chance level near
    the image size are both readable; the curves, error bars and the chance line agree."""
    from ptycho_engine.study import LOG_AXIS_METRICS
    from ptycho_gui.widgets.study_panel import DosePlotWidget

    rows = []
    for photons, px in ((1e3, 4.0), (1e6, 2.5)):
        for seed, spread in ((0, -0.5), (1, 0.5)):
            rows.append(
                {"N": 64, "gridsize": 2, "loss": "nll", "photons": photons, "seed": seed,
                 "phase_ssim": 0.5 + spread / 10, "phase_frc_1_7_px": px + spread,
                 "chance_phase_frc_1_7_px": 110.0}
            )  # fmt: skip
    plot = DosePlotWidget()
    qtbot.addWidget(plot)
    assert "phase_frc_1_7_px" in LOG_AXIS_METRICS and "phase_ssim" not in LOG_AXIS_METRICS

    def drawn(kind):
        return [i for i in plot.getPlotItem().items if isinstance(i, kind)]

    plot.show_rows(rows, "phase_frc_1_7_px")
    assert plot.getPlotItem().ctrl.logYCheck.isChecked()
    x, y = plot.curves["N=64 g=2 nll"].getData()  # in the view's coordinates: log10
    assert np.allclose(x, [3.0, 6.0]) and np.allclose(y, np.log10([4.0, 2.5]))
    [bars] = drawn(pg.ErrorBarItem)
    opts = bars.opts
    assert np.allclose(opts["y"], np.log10([4.0, 2.5]))
    assert np.allclose(opts["y"] + opts["top"], np.log10([4.5, 3.0]))
    assert np.allclose(opts["y"] - opts["bottom"], np.log10([3.5, 2.0]))
    [chance] = [i for i in drawn(pg.InfiniteLine) if i.angle == 0]
    assert chance.value() == pytest.approx(np.log10(110.0))

    plot.show_rows(rows, "phase_ssim")  # a score stays on a linear axis
    assert not plot.getPlotItem().ctrl.logYCheck.isChecked()
    [bars] = drawn(pg.ErrorBarItem)
    assert np.allclose(bars.opts["y"], [0.5, 0.5]) and np.allclose(bars.opts["height"], 0.1)
