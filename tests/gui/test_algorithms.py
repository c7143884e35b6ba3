"""Iterative reconstruction beside the PINN in the app: the algorithm choice and its fields, an
rPIE run with live views, handing a run's probe to the next PINN run, and FRC crossings in the
comparison of a PINN run and an rPIE run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QWidget

from ptycho_engine.config import ModelConfig
from ptycho_engine.io import read_probe
from ptycho_engine.metrics import frc_resolution
from ptycho_engine.pipeline import get_reconstructor, reconstructor_names
from ptycho_engine.solvers.config import SolverConfig
from ptycho_gui.app import build_parser
from ptycho_gui.main_window import MainWindow
from ptycho_gui.view_models.comparison import crossing_text, metres_text
from ptycho_gui.view_models.export import probe_file_task
from ptycho_gui.view_models.run_settings import RunSettings, algorithm_name
from ptycho_gui.view_models.run_table_model import COLUMNS
from ptycho_gui.view_models.settings_model import SettingsModel
from ptycho_gui.widgets.settings_panel import SettingsPanelWidget
from tests.gui.conftest import TINY, WAIT_MS, Recorder

#: A few rPIE iterations on the tiny data, an image every other one.
RPIE = TINY.replace(algorithm="rpie", iterations=6, solver_preview_every=2)


def run_to_end(qtbot, window: MainWindow, recorder: Recorder, settings: RunSettings):
    """Run ``settings`` (rerun on change off) and return its finished outcome."""
    window.settings_panel.rerun_check.setChecked(False)
    window.settings_model.reset(settings)
    n_before = len(recorder.finished)
    window.start_run()
    qtbot.waitUntil(lambda: len(recorder.finished) > n_before, timeout=WAIT_MS)
    outcome = recorder.finished[-1]
    assert outcome.state == "finished", outcome.message
    assert recorder.started[-1].settings == settings
    return outcome


def column(name: str) -> int:
    return [title for title, _value in COLUMNS].index(name)


# ---------------------------------------------------------------------------- settings


def test_run_settings_give_the_solver_spec() -> None:
    settings = RunSettings(
        N=32,
        algorithm="lsqml",
        iterations=7,
        noise_model="poisson",
        refine_probe=True,
        probe_modes=2,
        refine_positions=True,
        solver_batch_size=8,
    )
    spec = settings.run_spec()
    assert spec.reconstructor == "lsqml"
    assert spec.preparation.N == 32 and spec.preparation.mode == "crop"
    solver = spec.solver
    assert (solver.iterations, solver.noise_model, solver.batch_size) == (7, "poisson", 8)
    assert (solver.refine_probe, solver.probe_modes, solver.refine_positions) == (True, 2, True)
    assert settings.iterative and settings.planned_epochs == 7
    label = settings.label()
    assert label.startswith("LSQML N=32") and "7 it" in label and "poisson" in label
    # the network's spec is the command line's: the default solver settings
    pinn = RunSettings(N=32, iterations=7)
    assert pinn.run_spec().reconstructor == "pinn" and pinn.run_spec().solver == SolverConfig()
    assert not pinn.iterative and pinn.planned_epochs == pinn.epochs
    assert "PINN" not in pinn.label() and "ep" in pinn.label()
    assert RPIE.label().startswith("rPIE N=32 crop, 6 it, probe refined")
    assert [algorithm_name(n) for n in reconstructor_names()] == ["PINN", "rPIE", "LSQML"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"algorithm": "epie"}, "algorithm"),
        ({"iterations": -1}, "iterations"),
        ({"noise_model": "laplace"}, "noise_model"),
        ({"probe_modes": 9}, "probe_modes"),
    ],
)
def test_invalid_solver_settings_name_the_field(change: dict, field: str) -> None:
    # checked for a network run too: switching the algorithm must not meet a bad value
    with pytest.raises(ValueError, match=field):
        TINY.replace(**change)


def test_settings_panel_shows_the_chosen_algorithms_fields(qtbot) -> None:
    model = SettingsModel(TINY)
    panel = SettingsPanelWidget(model)
    qtbot.addWidget(panel)
    combo = panel.algorithm_combo
    names = [combo.itemData(k) for k in range(combo.count())]
    assert names == list(reconstructor_names())
    assert [combo.itemText(k) for k in range(combo.count())] == [
        get_reconstructor(n).title for n in names
    ]
    network = (panel.network_box, panel.train_box, panel.gridsize_spin, panel.epochs_spin)
    solver = (panel.solver_box, panel.iterations_spin, panel.refine_probe_check)
    shared = (panel.n_combo, panel.prep_combo, panel.probe_edit, panel.start_button)

    def shown(widgets: tuple[QWidget, ...]) -> list[bool]:
        return [w.isVisibleTo(panel) for w in widgets]

    assert shown(network) == [True] * 4 and shown(solver) == [False] * 3
    assert shown(shared) == [True] * 4

    combo.setCurrentIndex(combo.findData("rpie"))
    assert model.settings.algorithm == "rpie"
    assert shown(network) == [False] * 4 and shown(solver) == [True] * 3
    assert shown(shared) == [True] * 4
    assert not panel.solver_form.isRowVisible(panel.noise_combo)  # rPIE has no noise model

    combo.setCurrentIndex(combo.findData("lsqml"))
    assert model.settings.algorithm == "lsqml"
    assert panel.solver_form.isRowVisible(panel.noise_combo)
    panel.noise_combo.setCurrentText("poisson")
    panel.iterations_spin.setValue(12)
    panel.refine_positions_check.setChecked(True)
    panel.probe_modes_spin.setValue(3)
    panel.solver_batch_spin.setValue(0)  # "auto"
    s = model.settings
    assert (s.noise_model, s.iterations, s.refine_positions) == ("poisson", 12, True)
    assert (s.probe_modes, s.solver_batch_size) == (3, None)
    assert panel.solver_batch_spin.text() == "auto"
    panel.refine_probe_check.setChecked(False)
    assert not model.settings.refine_probe and not panel.probe_modes_spin.isEnabled()

    combo.setCurrentIndex(combo.findData("pinn"))
    assert shown(network) == [True] * 4 and shown(solver) == [False] * 3
    assert model.settings.iterations == 12  # the solver's settings are kept for next time
    # every field says what it does
    for widget in (*network[2:], *solver[1:], panel.noise_combo, panel.probe_modes_spin):
        assert len(widget.toolTip()) > 20, widget
    assert len(combo.toolTip()) > 20


def test_the_app_takes_an_algorithm() -> None:
    args = build_parser().parse_args(["--algorithm", "rpie", "--iterations", "5"])
    assert (args.algorithm, args.iterations) == ("rpie", 5)
    assert build_parser().parse_args([]).algorithm == "pinn"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--algorithm", "epie"])


def test_the_app_command_line_defaults_are_the_run_settings_defaults() -> None:
    """One place for each default: the app's command line starts from the run settings,
    whose network width is the engine's (it said width 2 while the engine chose 1)."""
    args = build_parser().parse_args([])
    defaults = RunSettings()
    assert defaults.n_filters_scale == ModelConfig.n_filters_scale
    for arg, field in (
        ("N", "N"),
        ("gridsize", "gridsize"),
        ("epochs", "epochs"),
        ("filters_scale", "n_filters_scale"),
        ("algorithm", "algorithm"),
        ("iterations", "iterations"),
    ):
        assert getattr(args, arg) == getattr(defaults, field), arg


def test_probe_file_task_writes_every_mode(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    modes = (rng.normal(size=(3, 32, 32)) + 1j * rng.normal(size=(3, 32, 32))).astype(np.complex128)
    path = probe_file_task(modes, tmp_path / "probes" / "run-1-probe.npy")(None, None)
    assert path == tmp_path / "probes" / "run-1-probe.npy"
    assert sorted(p.name for p in path.parent.iterdir()) == ["run-1-probe.npy"]
    back = read_probe(path, 32).modes
    assert back.dtype == np.complex64
    np.testing.assert_array_equal(back, modes.astype(np.complex64))
    bad = probe_file_task(np.ones((2, 32, 16), np.complex64), tmp_path / "bad.npy")
    with pytest.raises(ValueError, match=r"\(K, N, N\)"):
        bad(None, None)  # the task fails in the worker, which reports it
    assert not (tmp_path / "bad.npy").exists()


# ---------------------------------------------------------------------------- runs


def test_an_rpie_run_streams_its_error_images_and_probe_and_keeps_its_result(
    qtbot, window: MainWindow, recorder: Recorder
) -> None:
    outcome = run_to_end(qtbot, window, recorder, RPIE)
    assert recorder.errors == [] and window.error_label.text() == ""
    record = window.run_model.record(outcome.run_id)
    assert record is not None and record.object is not None
    assert record.object.dtype == np.complex64 and record.valid is not None
    assert record.valid.shape == record.object.shape and record.valid.mean() > 0.1
    for name in ("amplitude_ssim", "phase_ssim", "phase_frc_1_7_px"):
        assert math.isfinite(record.metrics[name]), name
    assert record.metrics["amplitude_ssim"] > 0.5  # rPIE recovers the tiny object
    # the error curve: one normalised error per iteration, falling
    errors = [h[1] for h in record.history]
    assert [h[0] for h in record.history] == list(range(1, 7))
    assert all(e > 0 for e in errors) and errors[-1] < 0.5 * errors[0]
    plot = window.loss_plot
    assert plot.iterative and plot.losses == pytest.approx(errors)
    assert plot.getAxis("left").labelText == "normalised error"
    assert plot.getAxis("bottom").labelText == "iteration"
    assert plot.getPlotItem().ctrl.logYCheck.isChecked()
    assert window.progress_bar.maximum() == 6 and window.progress_bar.value() == 6
    # the object views streamed its images, the probe view its refined probe
    assert window.redraws >= 1 and window.object_views.frames >= 1
    assert window.probe_redraws >= 1 and window.probe_view.caption == "it. 6"
    assert record.probe_modes is not None and record.probe_modes.shape[1:] == (32, 32)
    np.testing.assert_array_equal(record.probe, record.probe_modes[0])
    shown = window.probe_view.amplitude_view.image.image
    np.testing.assert_allclose(shown, np.abs(record.probe), rtol=1e-6)
    start = recorder.started[-1].probe
    assert start is not None and not np.allclose(np.abs(record.probe), np.abs(start))
    # one table for every algorithm
    model = window.run_model
    row = model.records.index(record)
    assert model.index(row, column("Algorithm")).data() == "rPIE"
    assert model.index(row, column("Settings")).data().startswith("rPIE N=32")
    # a PINN run shown again puts the loss axis back
    pinn = run_to_end(qtbot, window, recorder, TINY)
    assert not window.loss_plot.iterative
    assert window.loss_plot.getAxis("left").labelText == "loss"
    assert model.index(model.rowCount() - 1, column("Algorithm")).data() == "PINN"
    window.show_run(outcome.run_id)
    assert window.loss_plot.iterative and window.loss_plot.losses == pytest.approx(errors)
    window.show_run(pinn.run_id)
    assert not window.loss_plot.iterative and len(window.loss_plot.losses) == 2


def use_probe_action(window: MainWindow, run_id: int) -> QAction:
    window.run_table.select_run_ids([run_id])
    menu = window.run_table.context_menu()
    action = menu.findChild(QAction, "use_probe_action")
    assert action is not None and action.text() == "Use this run's probe"
    return action


def test_use_this_runs_probe_starts_the_next_pinn_run_from_it(
    qtbot, window: MainWindow, recorder: Recorder
) -> None:
    assert not window.use_run_probe(99) and "no probe" in window.error_label.text()
    rpie = run_to_end(qtbot, window, recorder, RPIE.replace(probe_modes=2))
    record = window.run_model.record(rpie.run_id)
    assert record is not None and record.probe_modes is not None
    assert record.probe_modes.shape == (2, 32, 32)

    # the probe goes through the panel's probe reading: one that does not fit N is refused
    window.settings_model.reset(RPIE.replace(N=64))
    with qtbot.waitSignal(window.settings_panel.probe_rejected, timeout=WAIT_MS):
        use_probe_action(window, rpie.run_id).trigger()
    assert "does not fit" in window.settings_panel.probe_message.text()
    assert window.settings_model.settings.algorithm == "rpie"
    assert window.settings_model.settings.probe_path == ""

    window.settings_model.reset(RPIE)
    action = use_probe_action(window, rpie.run_id)
    assert action.isEnabled()
    with qtbot.waitSignal(window.run_probe_applied, timeout=WAIT_MS) as blocker:
        action.trigger()
    run_id, path = blocker.args
    settings = window.settings_model.settings
    assert run_id == rpie.run_id and settings.probe_path == path
    assert settings.algorithm == "pinn" and path.endswith(f"run-{rpie.run_id}-probe.npy")
    assert window.settings_panel.network_box.isVisibleTo(window.settings_panel)
    np.testing.assert_array_equal(np.load(path), record.probe_modes)  # every mode

    outcome = run_to_end(qtbot, window, recorder, settings)
    info = recorder.started[-1]
    assert info.run_id == outcome.run_id and info.settings.algorithm == "pinn"
    assert info.probe is not None
    np.testing.assert_array_equal(info.probe, record.probe_modes[0].astype(info.probe.dtype))
    assert recorder.errors == []
    # without a session folder the probe lives in a temporary folder, gone with the window
    folder = Path(path).parent
    window.close()
    assert not folder.exists()


def test_comparison_of_a_pinn_and_an_rpie_run_reports_frc_crossings(
    qtbot, window: MainWindow, recorder: Recorder
) -> None:
    pinn = run_to_end(qtbot, window, recorder, TINY.replace(epochs=4))
    rpie = run_to_end(qtbot, window, recorder, RPIE)
    compare = window.open_comparison([pinn.run_id, rpie.run_id])
    assert compare is not None
    with qtbot.waitSignal(compare.comparison_ready, timeout=WAIT_MS):
        pass  # frames, curves and crossings are computed in the task worker
    (curve,) = compare.curves
    assert (curve.index, curve.other) == (1, 0)
    comparison = compare.comparison
    assert comparison is not None and comparison.pair(0, 1) is not None
    # the crossings are the engine's FRC resolutions of the same frames
    ref, run = compare.frames
    both = ref.valid & run.valid
    expected = {t: frc_resolution(run.object, ref.object, both, t) for t in ("1/7", "half-bit")}
    for threshold, value in expected.items():
        crossing = curve.crossing(threshold)
        assert crossing is not None and crossing.resolution_px == pytest.approx(value)
    (row,) = compare.crossing_texts()
    assert row[0] == f"#{rpie.run_id} vs #{pinn.run_id}"
    px = [crossing_text(curve.crossing(t)) for t in ("1/7", "half-bit")]  # type: ignore[arg-type]
    assert row[1:3] == px and row[3:] == ["-", "-"]  # no pixel size: no metres
    assert all(text[0].isdigit() or text[0] == "≤" or text == "none" for text in px)
    names = [item.name() for item in compare.frc_plot.getPlotItem().listDataItems()]
    assert {"1/7", "half-bit", row[0]} <= set(names)
    compare.close()

    # with a pixel size the crossings are in metres too
    for run_id in (pinn.run_id, rpie.run_id):
        record = window.run_model.record(run_id)
        assert record is not None
        record.pixel_size_m = 12e-9
    compare = window.open_comparison([pinn.run_id, rpie.run_id])
    assert compare is not None
    with qtbot.waitSignal(compare.comparison_ready, timeout=WAIT_MS):
        pass
    assert compare.pixel_size_m == pytest.approx(12e-9)
    (row,) = compare.crossing_texts()
    (curve,) = compare.curves
    for col, threshold in ((3, "1/7"), (4, "half-bit")):
        crossing = curve.crossing(threshold)
        assert crossing is not None
        assert row[col] == crossing_text(crossing, 12e-9)
        if math.isfinite(crossing.resolution_px) and crossing.crossed:
            assert row[col] == metres_text(crossing.resolution_px * 12e-9)
            assert row[col].endswith("nm")
    assert any(row[c].endswith("m") for c in (3, 4)), row
    compare.close()


def test_context_menu_offers_the_run_actions(qtbot, window: MainWindow) -> None:
    menu = window.run_table.context_menu()
    texts = [a.text() for a in menu.actions() if not a.isSeparator()]
    assert texts == ["Show", "Compare (2-6)", "Export…", "Use this run's probe"]
    assert not any(a.isEnabled() for a in menu.actions() if not a.isSeparator())  # no runs
    assert window.run_table.table.contextMenuPolicy() == Qt.ContextMenuPolicy.CustomContextMenu
