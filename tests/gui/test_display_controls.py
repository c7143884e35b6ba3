"""The image panes' display controls: quantities, levels and colour bar, line profiles and
regions, scale bars and axes, re-ranging on a new shape, the loss plot's log scale and stage
line, and the compare window's levels, region, screen geometry and mixed-file check."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from PySide6.QtCore import QPointF, QRect
from PySide6.QtGui import QGuiApplication

from ptycho_engine.display import (
    PHASE_LEVELS,
    DisplayMode,
    colour_lut,
    remove_phase_ramp,
    robust_range,
    unwrap_phase,
    wrap_phase,
)
from ptycho_engine.io.images import format_length, nice_length
from ptycho_engine.metrics import frc, frc_crossing
from ptycho_gui.jobs import TaskWorker, start_worker, stop_workers
from ptycho_gui.view_models.comparison import (
    MIN_LEVEL_SHARE,
    data_mismatch,
    level_share,
    pane_levels,
)
from ptycho_gui.view_models.run_settings import RunSettings
from ptycho_gui.view_models.runs import RunRecord
from ptycho_gui.widgets.compare_window import CompareWindow
from ptycho_gui.widgets.display_controls import DisplayState
from ptycho_gui.widgets.image_pane import ImagePaneWidget
from ptycho_gui.widgets.image_views import (
    PROBE_LIT_FRACTION,
    DiffractionPairWidget,
    ObjectViewsWidget,
    ProbeViewWidget,
)
from ptycho_gui.widgets.loss_plot import LossPlotWidget
from ptycho_gui.widgets.pane_conversion import UNWRAP_SIDE
from tests.gui.conftest import WAIT_MS


@pytest.fixture
def tasks(qtbot) -> Iterator[TaskWorker]:
    """A task worker in its own thread, stopped after the test."""
    worker = TaskWorker()
    thread = start_worker(worker, "test-task-worker")
    yield worker
    assert stop_workers([(worker, thread)], 5000)


def complex_image(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Amplitude and (wrapped) phase with structure: float32 (n, n)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n].astype(np.float64)
    amp = 0.6 + 0.3 * np.exp(-((x - n / 2) ** 2 + (y - n / 2) ** 2) / (0.1 * n * n))
    amp += 0.02 * rng.standard_normal((n, n))
    phase = wrap_phase(0.2 * x - 0.1 * y + 0.6 * np.sin(x / 5.0))
    return amp.astype(np.float32), phase


def pane(qtbot, **kwargs) -> ImagePaneWidget:
    widget = ImagePaneWidget("Test", colour_lut("grey"), **kwargs)
    qtbot.addWidget(widget)
    widget.resize(420, 420)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def object_views(qtbot) -> ObjectViewsWidget:
    """The three object panes, shown at a size that lays out their axes."""
    views = ObjectViewsWidget()
    qtbot.addWidget(views)
    views.resize(1000, 420)
    views.show()
    return views


def drag_colour_bar(view: ImagePaneWidget, levels: tuple[float, float]) -> None:
    """What the colour bar does when the user drags its handles."""
    bar = view.colour_bar
    bar.values = levels
    bar.sigLevelsChanged.emit(bar)
    bar.sigLevelsChangeFinished.emit(bar)


# ---------------------------------------------------------------------------- quantities


def test_the_display_menu_shows_each_quantity_of_the_data(qtbot) -> None:
    view = pane(qtbot)
    amp, phase = complex_image()
    view.set_data(amp, phase)
    assert view.state.mode is DisplayMode.AMPLITUDE and view.colour_map_name == "grey"
    np.testing.assert_array_equal(view.image.image, amp)
    assert view.levels == pytest.approx(robust_range(amp))
    z = amp * np.exp(1j * phase)
    chosen: list[DisplayState] = []
    view.display_changed.connect(chosen.append)
    expected = {
        DisplayMode.REAL: z.real,
        DisplayMode.IMAGINARY: z.imag,
        DisplayMode.PHASE: phase,
        DisplayMode.LOG_AMPLITUDE: np.log10(amp),
    }
    for mode, values in expected.items():
        view.menu.mode_actions[mode].trigger()
        assert view.state.mode is mode and view.menu.mode_actions[mode].isChecked()
        np.testing.assert_allclose(view.displayed, values, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(view.image.image, view.displayed)
        # a new quantity takes its levels from the image: the phase the full circle
        want = PHASE_LEVELS if mode is DisplayMode.PHASE else robust_range(values)
        assert view.levels == pytest.approx(want, rel=1e-5)
    assert [s.mode for s in chosen] == list(expected)
    assert view.colour_map_name == "grey"
    view.menu.mode_actions[DisplayMode.PHASE].trigger()
    assert view.colour_map_name == "cyclic"
    np.testing.assert_array_equal(view.image.lut, colour_lut("cyclic"))
    view.menu.colour_actions["magma"].trigger()
    assert view.colour_map_name == "magma" and chosen[-1].colour_map == "magma"
    np.testing.assert_array_equal(view.image.lut, colour_lut("magma"))
    view.menu.mode_actions[DisplayMode.COMPLEX].trigger()
    assert view.displayed.shape == (64, 64, 3) and view.displayed.dtype == np.uint8
    assert not view.colour_bar.isVisible()
    assert view.levels == pytest.approx(robust_range(amp))  # the brightness range


def test_phase_ramp_removal_and_unwrapping_in_the_menu(qtbot) -> None:
    view = pane(qtbot)
    amp, phase = complex_image()
    view.set_data(amp, phase)
    view.menu.mode_actions[DisplayMode.PHASE].trigger()
    view.menu.ramp_action.trigger()
    assert view.state.remove_ramp and view.menu.ramp_action.isChecked()
    flat = remove_phase_ramp(phase, amp)
    np.testing.assert_allclose(view.displayed, flat, atol=1e-6)
    assert view.levels == PHASE_LEVELS and view.colour_map_name == "cyclic"
    assert np.ptp(view.displayed) < 0.5 * np.ptp(phase)  # the ramp is gone
    view.menu.unwrap_action.trigger()
    assert view.state.unwrap and view.menu.unwrap_action.isChecked()
    np.testing.assert_allclose(view.displayed, unwrap_phase(flat), atol=1e-5)
    # an unwrapped phase has its own range and a map whose ends differ
    assert view.levels == pytest.approx(robust_range(view.displayed))
    assert view.colour_map_name == "viridis"
    assert view.colour_bar.isVisible()
    # unwrapping a large image on the GUI thread is capped
    big_amp, big_phase = complex_image(600)
    view.set_data(big_amp, big_phase)
    assert max(view.displayed.shape) <= UNWRAP_SIDE
    rect = view.image.mapRectToParent(view.image.boundingRect())
    assert rect.width() == pytest.approx(600, abs=4) and rect.height() == pytest.approx(600, abs=4)


def test_unwrapping_runs_in_the_task_worker_when_there_is_one(qtbot, tasks: TaskWorker) -> None:
    view = pane(qtbot)
    view.set_task_worker(tasks)
    amp, phase = complex_image(128)
    view.set_data(amp, phase)
    before = view.displayed
    view.set_display(DisplayState(DisplayMode.PHASE, unwrap=True))
    assert view.unwrap_pending  # nothing unwrapped on the GUI thread
    assert view.displayed is before
    qtbot.waitUntil(lambda: not view.unwrap_pending and view.displayed is not before)
    np.testing.assert_allclose(view.displayed, unwrap_phase(phase), atol=1e-5)
    assert view.levels == pytest.approx(robust_range(view.displayed))


# ---------------------------------------------------------------------------- levels


def test_levels_stay_fixed_after_the_first_frame_unless_the_user_sets_them(qtbot) -> None:
    view = pane(qtbot)
    amp, phase = complex_image()
    view.set_data(amp, phase)
    first = view.levels
    assert view.colour_bar.levels() == pytest.approx(first)
    view.set_data(3 * amp, phase)  # a brighter frame of the same run
    assert view.levels == first and view.image.levels == pytest.approx(first)
    edited: list[tuple[float, float]] = []
    view.levels_edited.connect(edited.append)
    drag_colour_bar(view, (0.7, 0.8))
    assert view.levels == (0.7, 0.8) and edited == [(0.7, 0.8)] and view.user_levels
    assert tuple(view.image.levels) == pytest.approx((0.7, 0.8))
    view.set_data(amp, phase)
    assert view.levels == (0.7, 0.8)
    view.menu.levels_action.trigger()  # "Levels from this image"
    assert view.levels == pytest.approx(robust_range(amp)) and len(edited) == 2
    view.reset_levels()
    view.set_data(2 * amp, phase)
    assert view.levels == pytest.approx(robust_range(2 * amp))
    assert not view.user_levels


def test_object_views_keep_their_api_and_the_complex_view_follows_the_amplitude(qtbot) -> None:
    views = object_views(qtbot)
    amp, phase = complex_image()
    valid = np.ones(amp.shape, bool)
    valid[:8] = False
    views.show_object(amp, phase, valid)
    assert views.frames == 1
    assert views.amplitude_view.levels == pytest.approx(robust_range(amp, valid))
    assert views.phase_view.levels == PHASE_LEVELS
    assert views.complex_view.levels == views.amplitude_view.levels
    assert views.complex_view.displayed.shape == (64, 64, 3)
    drag_colour_bar(views.amplitude_view, (0.65, 0.75))
    assert views.complex_view.levels == (0.65, 0.75)
    views.set_caption("#3 rPIE N=64 · epoch 12")
    assert all(p.caption == "#3 rPIE N=64 · epoch 12" for p in views.panes)
    assert "#3 rPIE N=64 · epoch 12" in views.amplitude_view._label.text
    assert views.amplitude_view.title == "Object amplitude"  # the base title is kept
    views.reset_levels()
    views.show_object(2 * amp, phase, valid)
    assert views.amplitude_view.levels == pytest.approx(robust_range(2 * amp, valid))


def test_the_phase_view_covers_what_no_patch_reached(qtbot) -> None:
    # outside the scanned region the canvas holds 0: a phase map would draw it as a measured
    # phase of 0 (one cyan square around the object); it is covered in black instead
    views = object_views(qtbot)
    amp, phase = complex_image()
    valid = np.zeros(amp.shape, bool)
    valid[10:50, 12:52] = True
    views.show_object(amp, phase, valid)
    cover = views.phase_view.outside
    assert cover.isVisible() and cover.zValue() > views.phase_view.image.zValue()
    alpha = cover.image[..., 3]
    assert alpha.shape == amp.shape
    assert np.array_equal(alpha == 0, valid)  # see-through exactly where a patch was
    assert not views.amplitude_view.outside.isVisible()  # amplitudes there are 0: black
    views.show_object(amp, phase, np.ones(amp.shape, bool))
    assert not cover.isVisible()
    views.show_object(amp, phase)  # no mask: nothing to cover
    assert not cover.isVisible()


# ---------------------------------------------------------------------------- profile, region


def test_line_profile_values_follow_the_image(qtbot) -> None:
    view = pane(qtbot)
    y, x = np.mgrid[0:64, 0:80].astype(np.float32)
    plane = 2.0 + 0.1 * x + 0.05 * y
    view.set_data(plane)
    lines: list = []
    view.line_changed.connect(lines.append)
    view.set_line((0.5, 10.5), (60.5, 10.5))  # along row 10 through the pixel centres
    assert view.line() == ((0.5, 10.5), (60.5, 10.5)) and lines == []
    profile = view.profile()
    assert profile is not None
    distance, values = profile
    np.testing.assert_allclose(distance, np.arange(61.0))
    np.testing.assert_allclose(values, plane[10, :61], rtol=1e-6)
    assert view.profile_curve is not None
    _x, curve_y = view.profile_curve.getData()
    np.testing.assert_allclose(curve_y, values)
    # the profile follows the quantity shown
    view.menu.mode_actions[DisplayMode.LOG_AMPLITUDE].trigger()
    np.testing.assert_allclose(view.profile()[1], np.log10(plane[10, :61]), rtol=1e-5)
    # a user drag of the line is announced
    view.line_roi.setPos((0.0, 5.0))
    assert lines and lines[-1][0][1] == pytest.approx(15.5)
    # a strided image: coordinates stay those of the full image
    view.menu.mode_actions[DisplayMode.AMPLITUDE].trigger()
    big = np.tile(np.arange(1024, dtype=np.float32), (1024, 1))
    view.set_data(big)
    view.set_line((100.0, 500.0), (900.0, 500.0))
    distance, values = view.profile()
    assert distance[-1] == pytest.approx(800.0)
    assert values[0] == pytest.approx(100, abs=2) and values[-1] == pytest.approx(900, abs=2)
    view.show_line_profile(False)
    assert view.line() is None and view.profile_plot is None


def test_region_mean_and_std_against_numpy(qtbot) -> None:
    view = pane(qtbot)
    amp, phase = complex_image(seed=5)
    valid = np.ones(amp.shape, bool)
    valid[20:25] = False
    view.set_data(amp, phase, valid)
    view.set_region((10.0, 18.0, 30.0, 15.0))
    stats = view.region_stats()
    part, keep = amp[18:33, 10:40], valid[18:33, 10:40]
    assert stats is not None and stats.count == int(keep.sum())
    assert stats.mean == pytest.approx(float(part[keep].mean()), rel=1e-6)
    assert stats.std == pytest.approx(float(part[keep].std()), rel=1e-5)
    assert f"mean {stats.mean:.4g}" in view.info_text() and "30 px x 15 px" in view.info_text()
    view.menu.mode_actions[DisplayMode.PHASE].trigger()
    ph = phase[18:33, 10:40][keep]
    assert view.region_stats().mean == pytest.approx(float(ph.mean()), rel=1e-5)
    assert "phase" in view.info_text()
    regions: list = []
    view.region_changed.connect(regions.append)
    view.region_roi.setPos((12.0, 18.0))
    assert regions and regions[-1] == pytest.approx((12.0, 18.0, 30.0, 15.0))
    view.show_region(False)
    assert view.region() is None and view.region_stats() is None


# ---------------------------------------------------------------------------- scale, axes


def test_scale_bar_and_axes_in_metres_for_a_known_pixel_size(qtbot) -> None:
    view = pane(qtbot)
    amp, phase = complex_image(200)
    view.set_data(amp, phase)
    assert not view.scale_bar.isVisible()
    assert "px" in view.plot.getAxis("bottom").labelString()
    view.set_pixel_size(10e-9)
    width = view.view.viewRect().width()
    bar = view.scale_bar
    assert bar.isVisible()
    assert bar.length_m == pytest.approx(nice_length(0.2 * width * 10e-9))
    assert bar.length_px == pytest.approx(bar.length_m / 10e-9)
    assert bar.label == format_length(bar.length_m) and bar.label.endswith("nm")
    assert bar.text.textItem.toPlainText() == bar.label
    # 200 px of 10 nm: 2 µm; the bar is the largest 1, 2, 5 x 10^k not above a fifth
    assert width >= 200 and bar.length_m <= 0.2 * width * 10e-9 < 2.5 * bar.length_m
    bottom = view.plot.getAxis("bottom").labelString()
    assert "x" in bottom and ("µm" in bottom or "nm" in bottom)
    # zooming in shortens the bar
    view.view.setRange(xRange=(0, 40), yRange=(0, 40), padding=0.0)
    assert bar.length_m < nice_length(0.2 * width * 10e-9)
    assert bar.length_m == pytest.approx(nice_length(0.2 * view.view.viewRect().width() * 1e-8))
    view.show_region(True)
    assert "nm x" in view.info_text()
    view.set_pixel_size(None)
    assert not bar.isVisible() and "(px)" in view.plot.getAxis("bottom").labelString()


def test_the_view_re_ranges_when_the_shape_changes_not_on_every_frame(qtbot) -> None:
    views = object_views(qtbot)
    qtbot.waitExposed(views)
    amp, phase = complex_image(64)
    views.show_object(amp, phase)
    for view in views.panes:
        rect = view.view.viewRect()
        assert rect.left() <= 0.5 and rect.right() >= 63.5 and rect.bottom() >= 63.5
    views.amplitude_view.view.setRange(xRange=(10, 20), yRange=(10, 20), padding=0.0)
    views.show_object(amp, phase)  # another frame of the same shape: the zoom stays
    assert views.amplitude_view.view.viewRect().width() < 30
    small_amp, small_phase = complex_image(32)
    views.show_object(small_amp, small_phase)  # N=32 after N=64
    for view in views.panes:
        rect = view.view.viewRect()
        assert rect.left() <= 0.5 and rect.top() <= 0.5
        assert rect.right() >= 31.5 and rect.bottom() >= 31.5
        assert min(rect.width(), rect.height()) < 40  # ranged to 32 px, not 64


# ---------------------------------------------------------------------------- probe, diffraction


def test_probe_and_diffraction_views(qtbot) -> None:
    probe_view = ProbeViewWidget()
    qtbot.addWidget(probe_view)
    y, x = np.mgrid[0:32, 0:32]
    probe = (np.exp(-((x - 16) ** 2 + (y - 16) ** 2) / 40) * np.exp(0.3j * x)).astype(np.complex64)
    probe_view.show_probe(probe, "it. 3")
    np.testing.assert_allclose(probe_view.amplitude_view.image.image, np.abs(probe), rtol=1e-6)
    assert probe_view.amplitude_view.levels == pytest.approx((0.0, float(np.abs(probe).max())))
    probe_view.set_pixel_size(20e-9)
    assert probe_view.phase_view.scale_bar.isVisible()
    # the phase where the probe is dark is noise: the phase view covers it in black
    lit = np.abs(probe) > PROBE_LIT_FRACTION * np.abs(probe).max()
    assert 0 < lit.sum() < lit.size
    cover = probe_view.phase_view.outside
    assert cover.isVisible()
    assert np.array_equal(cover.image[..., 3] == 0, lit)
    assert not probe_view.amplitude_view.outside.isVisible()

    pair = DiffractionPairWidget()
    qtbot.addWidget(pair)
    measured = np.abs(np.fft.fftshift(np.fft.fft2(probe))).astype(np.float32)
    pair.show_pair(4, measured, 0.5 * measured)
    counts = np.log10(1 + measured.astype(np.float64) ** 2)
    assert pair.measured_view.levels == pytest.approx((0.0, counts.max()), rel=1e-5)
    assert pair.predicted_view.levels == pair.measured_view.levels
    np.testing.assert_allclose(pair.measured_view.displayed, counts, rtol=1e-5, atol=1e-6)
    assert pair.measured_view.title_text() == "Measured #4 (log10 counts)"
    # one menu switches both panes, with shared levels again
    pair.predicted_view.menu.mode_actions[DisplayMode.AMPLITUDE].trigger()
    assert all(p.state.mode is DisplayMode.AMPLITUDE for p in pair.panes)
    np.testing.assert_allclose(pair.predicted_view.displayed, 0.5 * measured)
    both = np.concatenate([measured.ravel(), 0.5 * measured.ravel()])
    assert pair.measured_view.levels == pytest.approx(robust_range(both), rel=1e-5)
    assert pair.predicted_view.levels == pair.measured_view.levels
    assert pair.predicted_view.title_text() == "Predicted #4 (amplitude)"
    assert DisplayMode.PHASE not in pair.measured_view.menu.mode_actions


def test_right_click_and_the_button_open_the_display_menu(qtbot) -> None:
    view = pane(qtbot)
    assert view.menu_button.menu() is view.menu

    class Click:
        def screenPos(self) -> QPointF:  # noqa: N802 - pyqtgraph's event API
            return QPointF(20.0, 20.0)

    view.view.raiseContextMenu(Click())
    qtbot.waitUntil(view.menu.isVisible)
    view.menu.close()
    texts = [a.text() for a in view.menu.actions() if not a.isSeparator()]
    for text in ("Amplitude", "Phase", "Real part", "Imaginary part", "Remove phase ramp"):
        assert text in texts
    assert {a.text() for a in view.menu.colour_menu.actions()} >= {"grey", "cyclic", "viridis"}


# ---------------------------------------------------------------------------- loss plot


def test_loss_plot_marks_the_warm_up_switch_and_takes_the_old_call(qtbot) -> None:
    plot = LossPlotWidget()
    qtbot.addWidget(plot)
    plot.add_point(1, 0.9, 1.0)  # the three-argument call still works
    plot.clear_history()
    losses = [0.8, 0.5, 0.3, -0.5, -1.2, -1.5]
    for epoch, loss in enumerate(losses, start=1):
        plot.add_point(epoch, loss, loss + 0.1, "mae-warmup" if epoch <= 3 else "main")
    assert plot.stage_changes == [(3.5, "mae-warmup", "main")]
    (line,) = plot.stage_lines
    assert line.value() == pytest.approx(3.5) and line in plot.getPlotItem().items
    assert "MAE warm-up" in line.label.toPlainText() and "main" in line.label.toPlainText()
    plot.add_point(7, -1.6, -1.4, "main")  # same stage: no new line
    assert len(plot.stage_lines) == 1
    plot.clear_history()
    assert plot.stage_lines == [] and line not in plot.getPlotItem().items


def test_loss_plot_log_scale_shifts_a_negative_loss(qtbot) -> None:
    plot = LossPlotWidget()
    qtbot.addWidget(plot)
    losses = np.array([2.0, 0.5, -0.5, -1.0])
    for epoch, loss in enumerate(losses, start=1):
        plot.add_point(epoch, float(loss), float(loss) + 0.2)
    assert not plot.log_scale and plot.log_shift == 0.0
    plot.log_check.setChecked(True)
    assert plot.log_scale and plot.getPlotItem().ctrl.logYCheck.isChecked()
    low, high = -1.0, 2.2  # over the train and validation losses
    delta = 0.01 * (high - low)
    assert plot.log_shift == pytest.approx(delta - low)
    y = plot.train_curve.yData  # what is drawn, before pyqtgraph's log10
    np.testing.assert_allclose(y, losses + plot.log_shift)
    assert float(np.min(y)) == pytest.approx(delta)
    assert plot.getAxis("left").labelText == f"loss + {plot.log_shift:.3g}"
    # a solver's errors: log by default, no shift; the network keeps its own choice
    plot.set_iterative(True)
    assert plot.log_scale and plot.log_check.isChecked()
    plot.clear_history()
    for it, err in enumerate([0.5, 0.1, 0.02], start=1):
        plot.add_point(it, err, math.nan)
    assert plot.log_shift == 0.0
    np.testing.assert_allclose(plot.train_curve.yData, [0.5, 0.1, 0.02])
    plot.set_log_scale(False)
    plot.set_iterative(False)
    assert plot.log_scale  # ticked for the network above
    plot.set_iterative(True)
    assert not plot.log_scale


# ---------------------------------------------------------------------------- compare window


def lines_object(n: int = 96, seed: int = 0) -> np.ndarray:
    """A ground-truth-like object: dark lines on a bright background, phase with them."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:n, 0:n].astype(np.float64)
    dark = np.zeros((n, n))
    for _ in range(12):
        angle, offset = rng.uniform(0, np.pi), rng.uniform(0, n)
        distance = np.abs(np.cos(angle) * x + np.sin(angle) * y - offset)
        dark = np.maximum(dark, np.exp(-(distance**2) / 4.0))
    amplitude = 1.0 - 0.5 * dark
    return (amplitude * np.exp(0.5j * dark)).astype(np.complex64)


def record(run_id: int, obj: np.ndarray, data_path: str = "", pixel: float | None = None):
    valid = np.ones(obj.shape, bool)
    valid[:4] = False
    return RunRecord(
        run_id,
        RunSettings(N=32),
        state="finished",
        object=obj,
        valid=valid,
        pixel_size_m=pixel,
        data_path=data_path,
    )


def study_like_records() -> list[RunRecord]:
    """The truth, a nearly uniform early reconstruction, and a good one."""
    truth = lines_object()
    flat = (0.86 + 0.02 * (np.abs(truth) - 0.75)) * np.exp(1j * 0.1 * np.angle(truth))
    rng = np.random.default_rng(3)
    noisy = truth + 0.03 * (
        rng.standard_normal(truth.shape) + 1j * rng.standard_normal(truth.shape)
    )
    return [
        record(0, truth),
        record(1, flat.astype(np.complex64)),
        record(2, noisy.astype(np.complex64)),
    ]


def open_compare(qtbot, records: list[RunRecord], tasks: TaskWorker, **kwargs) -> CompareWindow:
    window = CompareWindow(records, [1.0] * len(records), tasks, **kwargs)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.comparison_ready, timeout=WAIT_MS):
        window.show()
    return window


def displayed_share(view: ImagePaneWidget, valid: np.ndarray) -> float:
    """How much of its levels a pane's displayed image spans (0.5 to 99.5 percentiles)."""
    low, high = np.percentile(view.displayed[valid], [0.5, 99.5])
    lo, hi = view.levels
    return float((min(high, hi) - max(low, lo)) / (hi - lo))


def test_no_compare_pane_is_flat(qtbot, tasks: TaskWorker) -> None:
    window = open_compare(qtbot, study_like_records(), tasks)
    assert window.levels_combo.currentText() == "auto"
    valid = window.frames[0].valid
    shares = [
        displayed_share(p, f.valid & valid)
        for p, f in zip(window.panes, window.frames, strict=True)
    ]
    assert min(shares) > MIN_LEVEL_SHARE, shares
    assert window.pane_levels is not None and window.pane_levels.flat == (1,)
    assert not window.pane_levels.shared and "nearly flat" in window.message.text()
    assert "own levels" in window.panes[1].caption
    # forced shared levels show the early run flat: the check above can fail
    window.levels_combo.setCurrentText("shared")
    assert len({p.levels for p in window.panes}) == 1
    assert displayed_share(window.panes[1], window.frames[1].valid) < 0.1
    # two runs alike share their levels in "auto"
    window.levels_combo.setCurrentText("auto")
    window.close()
    alike = study_like_records()
    window = open_compare(qtbot, [alike[0], alike[2]], tasks)
    assert window.pane_levels is not None and window.pane_levels.shared
    assert len({p.levels for p in window.panes}) == 1
    window.close()


def test_shared_levels_weigh_every_pane_the_same() -> None:
    big = np.linspace(0.0, 1.0, 512 * 512).reshape(512, 512)
    small = np.linspace(2.0, 3.0, 32 * 32).reshape(32, 32)
    masks = [np.ones(big.shape, bool), np.ones(small.shape, bool)]
    levels = pane_levels([big, small], masks, "shared")
    low, high = levels.levels[0]
    assert low < 0.05 and high > 2.9  # the small image is not drowned by the big one
    assert level_share(small, masks[1], (low, high)) == pytest.approx(1 / 3, abs=0.05)
    with pytest.raises(ValueError, match="policy"):
        pane_levels([big], masks[:1], "median")


def test_compare_display_follows_any_panes_menu(qtbot, tasks: TaskWorker) -> None:
    window = open_compare(qtbot, study_like_records(), tasks)
    window.panes[2].menu.mode_actions[DisplayMode.PHASE].trigger()
    assert all(p.state.mode is DisplayMode.PHASE for p in window.panes)
    assert window.mode_combo.currentData() is DisplayMode.PHASE
    assert all(p.caption.startswith("phase") for p in window.panes)
    np.testing.assert_allclose(
        window.panes[0].displayed, np.angle(window.frames[0].object), atol=1e-6
    )
    window.ramp_check.setChecked(True)
    assert all(p.state.remove_ramp for p in window.panes)
    assert "ramp removed" in window.panes[0].caption
    window.close()


def test_compare_region_spans_every_pane_with_stats_and_frc(qtbot, tasks: TaskWorker) -> None:
    window = open_compare(qtbot, study_like_records(), tasks)
    window.pair_a_combo.setCurrentIndex(0)
    window.pair_b_combo.setCurrentIndex(2)
    rect = (20.0, 24.0, 40.0, 30.0)
    with qtbot.waitSignal(window.region_ready, timeout=WAIT_MS):
        window.set_region(rect)
    assert all(p.region() == pytest.approx(rect) for p in window.panes)
    assert window.region_check.isChecked() and window.region_table.isVisibleTo(window)
    rows = window.region_rows()
    for (name, mean, std, count), frame, wanted in zip(
        rows, window.frames, window.names, strict=True
    ):
        part = np.abs(frame.object[24:54, 20:60])
        keep = frame.valid[24:54, 20:60]
        assert name == wanted and count == int(keep.sum())
        assert mean == pytest.approx(float(part[keep].mean()), rel=1e-5)
        assert std == pytest.approx(float(part[keep].std()), rel=1e-4)
    assert window.region_table.item(1, 1).text() == f"{rows[1][1]:.4g}"
    # the FRC of the chosen pair over the region
    a, b = window.frames[0], window.frames[2]
    cut = (slice(24, 54), slice(20, 60))
    frequency, curve, counts = frc(a.object[cut], b.object[cut], a.valid[cut] & b.valid[cut])
    region = window.region_curve
    assert region is not None and (region.index, region.other) == (0, 2)
    np.testing.assert_allclose(region.curve, curve)
    resolution, _f, _level = frc_crossing(frequency, curve, counts, "1/7")
    assert region.crossing("1/7").resolution_px == pytest.approx(resolution)
    last = window.crossing_texts()[-1]
    assert last[0] == f"{window.names[0]} vs {window.names[2]} (region)"
    assert "(region)" in window.frc_plot.getPlotItem().titleLabel.text
    # the user drags the region on one pane: every pane follows, the FRC is computed again
    with qtbot.waitSignal(window.region_ready, timeout=WAIT_MS):
        window.panes[1].region_roi.setPos((30.0, 30.0))
    assert all(p.region()[:2] == pytest.approx((30.0, 30.0)) for p in window.panes)
    assert window.region_rows()[0][3] == int(window.frames[0].valid[30:60, 30:70].sum())
    window.show_region(False)
    assert all(p.region() is None for p in window.panes) and window.region_curve is None
    assert not any("(region)" in row[0] for row in window.crossing_texts())
    window.close()


def test_compare_window_opens_on_the_screen(qtbot, tasks: TaskWorker) -> None:
    window = CompareWindow(study_like_records(), [1.0] * 3, tasks)
    qtbot.addWidget(window)
    window.resize(6000, 5000)
    window.move(-400, 7000)
    with qtbot.waitSignal(window.comparison_ready, timeout=WAIT_MS):
        window.show()
    qtbot.waitExposed(window)
    screen = QGuiApplication.primaryScreen().availableGeometry()
    assert QRect(screen).contains(window.frameGeometry()), (screen, window.frameGeometry())
    assert window.on_screen()
    window.close()


def test_data_mismatch_names_the_runs_and_files() -> None:
    obj = lines_object(32)
    same = [record(1, obj, "/data/a.npz"), record(2, obj, "/data/./a.npz"), record(3, obj)]
    assert data_mismatch(same) == ""
    mixed = [
        record(1, obj, "/data/a.npz"),
        record(2, obj, "/data/a.npz"),
        record(3, obj, "/x/b.cxi"),
    ]
    assert data_mismatch(mixed) == "runs #1 and #3 come from different files: a.npz, b.cxi"
    twins = [record(1, obj, "/one/a.npz"), record(4, obj, "/two/a.npz")]
    assert data_mismatch(twins) == (
        "runs #1 and #4 come from different files: /one/a.npz, /two/a.npz"
    )


def test_compare_window_refuses_or_warns_about_mixed_files(qtbot, tasks: TaskWorker) -> None:
    obj = lines_object()
    mixed = [record(1, obj, "/data/a.npz"), record(3, obj.copy(), "/data/b.cxi", 1e-8)]
    with pytest.raises(ValueError, match=r"runs #1 and #3 come from different files: a\.npz"):
        CompareWindow(mixed, [1.0, 1.0], tasks)
    window = open_compare(qtbot, mixed, tasks, allow_mixed=True)
    assert window.banner.isVisibleTo(window)
    assert "runs #1 and #3 come from different files: a.npz, b.cxi" in window.banner.text()
    # a known pixel size: scale bars and axes in metres on every pane
    assert window.pixel_size_m == pytest.approx(1e-8)
    assert all(p.scale_bar.isVisible() and p.scale_bar.label for p in window.panes)
    window.close()
    same = open_compare(qtbot, [record(1, obj, "/d/a.npz"), record(2, obj, "/d/a.npz")], tasks)
    assert not same.banner.isVisibleTo(same)
    same.close()


def _drawn_ticks(view: ImagePaneWidget, values: list[float]) -> list[str]:
    """The tick labels the axis draws at ``values`` (view coordinates, pixels): pyqtgraph
    draws ``tickStrings`` with its SI-prefix scale times the axis scale."""
    axis = view.plot.getAxis("bottom")
    return axis.tickStrings(values, axis.autoSIPrefixScale * axis.scale, 50.0)


def test_axes_in_pixels_read_the_pixel_coordinates(qtbot) -> None:
    # A file without geometry sets "no pixel size" while the empty view spans -0.5 to 0.5:
    # pyqtgraph then chose the milli prefix even with the prefix off, and 0, 100, 200 px read
    # 0, 100000, 200000 once the image came.
    view = pane(qtbot)
    view.view.setRange(xRange=(-0.5, 0.5), yRange=(-0.5, 0.5), padding=0.0)  # as laid out empty
    assert view.plot.getAxis("bottom").range == pytest.approx([-0.5, 0.5])
    view.set_pixel_size(None)
    amp, phase = complex_image(200)
    view.set_data(amp, phase)
    assert _drawn_ticks(view, [0.0, 100.0, 200.0]) == ["0", "100", "200"]
    view.set_pixel_size(10e-9)  # 200 px of 10 nm: the ticks in µm
    assert [float(t) for t in _drawn_ticks(view, [0.0, 100.0, 200.0])] == [0.0, 1.0, 2.0]
    assert "µm" in view.plot.getAxis("bottom").labelString()
    view.set_pixel_size(None)
    assert _drawn_ticks(view, [0.0, 100.0, 200.0]) == ["0", "100", "200"]
    assert "(px)" in view.plot.getAxis("bottom").labelString()
