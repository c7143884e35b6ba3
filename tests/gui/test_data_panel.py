"""The data panel: the position shown agrees with the slider (both bases stated), and the
summary states the file's geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ptycho_engine.io import read_data, write_cxi
from ptycho_engine.simulate import simulate_dataset
from ptycho_gui.view_models.panel_text import breakable, position_text
from ptycho_gui.view_models.runs import summarise
from ptycho_gui.widgets.data_panel import DataPanelWidget
from tests.gui.disposal import dispose_fixture  # noqa: F401 - the dispose fixture


@pytest.fixture(scope="module")
def cxi_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = simulate_dataset(N=64, n_positions=40, photons=1e5, seed=5)
    data = data.replace(energy_ev=6200.0, distance_m=1.5, detector_pixel_m=172e-6)
    path = tmp_path_factory.mktemp("panel") / "scan_0001.cxi"
    write_cxi(path, data)
    return path


def test_position_text_states_both_bases() -> None:
    assert position_text(2, 400) == "position 3 of 400 (#2)"
    assert position_text(0, 1) == "position 1 of 1 (#0)"


def test_slider_label_marker_and_click_agree(dispose, cxi_file: Path) -> None:
    data = read_data(cxi_file)
    panel = DataPanelWidget()
    dispose(panel)
    panel.set_data(data, summarise(data, str(cxi_file)))
    assert panel.pattern_label.text() == "position 1 of 40 (#0)"
    panel.pattern_slider.setValue(2)
    assert panel.pattern_label.text() == "position 3 of 40 (#2)"
    marked = np.column_stack(panel.selected.getData())[0]
    np.testing.assert_allclose(marked, data.positions_px[2][::-1])  # (x, y) of index 2
    # a click on the scatter plot: the index it emits is the one the label names after '#'
    clicked: list[int] = []
    panel.position_clicked.connect(clicked.append)
    point = panel.scatter.points()[7]
    panel._on_scatter_clicked(panel.scatter, [point], None)
    assert clicked == [7]
    assert panel.pattern_label.text() == "position 8 of 40 (#7)"
    assert panel.pattern_slider.value() == 7
    assert "counted from 1" in panel.pattern_label.toolTip()


def test_the_summary_shows_the_geometry_lines(dispose, cxi_file: Path) -> None:
    data = read_data(cxi_file)
    panel = DataPanelWidget()
    dispose(panel)
    summary = summarise(data, str(cxi_file))
    panel.set_data(data, summary)
    text = panel.summary_label.text().replace("\u200b", "")
    wavelength = 12.398419843320026e-7 / 6200.0
    pixel = wavelength * 1.5 / (64 * 172e-6)
    assert summary.object_pixel_m == pytest.approx(pixel, rel=1e-6)
    for line in (
        "Energy: 6.2 keV (wavelength 0.2 nm)",
        "Detector distance: 1.5 m",
        "Detector pixel: 172 µm",
        f"Object pixel size at the file's N=64: {pixel * 1e9:.3g} nm",
    ):
        assert line in text.split("<br>"), line
    assert text.startswith("<b>scan_0001.cxi</b>")
    assert panel.source_path == str(cxi_file)
    assert breakable("a_b.npy") == "a_\u200bb.\u200bnpy"
