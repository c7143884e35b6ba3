"""A Siemens-star phantom with a full geometry, end to end in the app: the object pixel in nm
for crop and bin at N 64 (physics.md section 6), the scale bar and metre axes of the run's
views, and an export whose product carries the same pixel size."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from ptycho_engine.io import read_product, write_cxi
from ptycho_engine.simulate import simulate_dataset
from ptycho_gui.main_window import MainWindow
from tests.gui.conftest import WAIT_MS, Recorder
from tests.gui.test_main_window import exported, wait_for_run

ENERGY_EV = 6200.0
DISTANCE_M = 1.5
DETECTOR_PIXEL_M = 55e-6
N0 = 128
N = 64


def object_pixel_m(mode: str) -> float:
    """physics.md section 6: lambda z / (N0 dx) for the full detector; crop to N keeps the
    central N pixels (lambda z / (N dx)); bin by N0/N keeps the full detector's pixel."""
    wavelength = 12.398419843320026e-7 / ENERGY_EV
    return wavelength * DISTANCE_M / ((N if mode == "crop" else N0) * DETECTOR_PIXEL_M)


@pytest.fixture(scope="module")
def star_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = simulate_dataset(N=N0, n_positions=40, photons=1e6, object_kind="siemens", seed=5)
    data = data.replace(
        energy_ev=ENERGY_EV, distance_m=DISTANCE_M, detector_pixel_m=DETECTOR_PIXEL_M
    )
    path = tmp_path_factory.mktemp("star") / "siemens.cxi"
    write_cxi(path, data)
    return path


@pytest.fixture
def star_window(qtbot, qsettings: QSettings, star_file: Path) -> Iterator[MainWindow]:
    from ptycho_gui.view_models.run_settings import RunSettings

    settings = RunSettings(N=N, algorithm="rpie", iterations=3, solver_preview_every=1)
    win = MainWindow(qsettings, settings)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.data_ready, timeout=WAIT_MS):
        win.open_file(str(star_file))
    yield win
    win.close()
    assert not win.engine_thread.isRunning()


@pytest.mark.parametrize("mode", ["crop", "bin"])
def test_the_object_pixel_and_field_of_view_in_nm(star_window: MainWindow, mode: str) -> None:
    panel = star_window.settings_panel
    panel.prep_combo.setCurrentText(mode)
    pixel = object_pixel_m(mode)
    text = panel.sampling_label.text()
    assert f"Object pixel {pixel * 1e9:.3g} nm" in text, text
    fov_um = N * pixel * 1e6
    assert f"field of view {fov_um:.3g} µm" in text, text
    assert f"at N={N} ({mode})" in text
    # the run's preparation gives the same value, to 1e-6
    spec = star_window.settings_model.settings.run_spec()
    assert spec.preparation.mode == mode


@pytest.mark.parametrize("mode", ["crop", "bin"])
def test_a_run_has_a_scale_bar_in_metres_and_its_export_the_same_pixel(
    qtbot, star_window: MainWindow, tmp_path: Path, mode: str
) -> None:
    recorder = Recorder(star_window)
    star_window.settings_panel.rerun_check.setChecked(False)
    star_window.settings_panel.prep_combo.setCurrentText(mode)
    star_window.start_run()
    outcome = wait_for_run(qtbot, recorder, lambda o, s: o.state == "finished")
    record = star_window.run_model.record(outcome.run_id)
    assert record is not None and record.pixel_size_m is not None
    pixel = object_pixel_m(mode)
    assert record.pixel_size_m == pytest.approx(pixel, rel=1e-6)

    for pane in star_window.live.object_views.panes:
        assert pane.pixel_size_m == pytest.approx(pixel, rel=1e-6)
        bar = pane.scale_bar
        assert bar.isVisible() and bar.length_m > 0
        assert bar.label.endswith(("nm", "µm")), bar.label
        assert bar.length_px == pytest.approx(bar.length_m / pixel, rel=1e-9)
        # the bar is at most a quarter-ish of the visible width, and a 1-2-5 length
        mantissa = bar.length_m / 10 ** np.floor(np.log10(bar.length_m))
        assert min(abs(mantissa - m) for m in (1.0, 2.0, 5.0)) < 1e-6
        assert pane.plot.getAxis("bottom").labelUnits == "m"

    (h5,) = exported(qtbot, star_window, outcome.run_id, tmp_path / f"star_{mode}.h5")
    product = read_product(h5)
    assert product.object_pixel_m == pytest.approx((pixel, pixel), rel=1e-6)
    assert "unknown" not in str(product.metadata.get("comments", ""))
    assert product.metadata.get("probe_energy_eV") == pytest.approx(ENERGY_EV)
