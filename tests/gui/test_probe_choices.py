"""A probe file that does not fit N: refused with the valid choices as buttons (resample it to
N, use N = its side, keep the data's probe), never left in the preview, forgotten with the next
file, and a long message wraps inside the dock."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QScrollArea

from ptycho_engine.data import DiffractionData
from ptycho_engine.io import read_probe
from ptycho_engine.io.prepare import fourier_resample
from ptycho_engine.pipeline import prepare_data, resolve_probe
from ptycho_engine.simulate import simulate_dataset
from ptycho_gui.view_models.settings_model import SettingsModel
from ptycho_gui.widgets.settings_panel import SettingsPanelWidget
from tests.gui.conftest import TINY
from tests.gui.disposal import dispose_fixture  # noqa: F401 - the dispose fixture


@pytest.fixture(scope="module")
def data() -> DiffractionData:
    """64x64 patterns: N 32 or 64."""
    raw = simulate_dataset(N=64, n_positions=10, photons=1e5, seed=4)
    return raw.replace(provenance={**raw.provenance, "path": "/data/scan64.npz"})


@pytest.fixture
def panel(dispose, data: DiffractionData) -> SettingsPanelWidget:
    widget = SettingsPanelWidget(SettingsModel(TINY))  # N=32
    dispose(widget)
    widget.show_data(data)
    return widget


def probe_file(folder: Path, side: int, name: str = "") -> str:
    y, x = np.mgrid[:side, :side] - side / 2
    probe = np.exp(-(x**2 + y**2) / (2 * (side / 5) ** 2)) * np.exp(0.02j * x * y)
    path = folder / (name or f"probe{side}.npy")
    np.save(path, probe.astype(np.complex64))
    return str(path)


def read(panel: SettingsPanelWidget, path: str) -> bool:
    """What the main window does: the panel asks, the worker reads, the panel decides."""
    requested: list[tuple[str, int]] = []
    panel.probe_requested.connect(lambda p, n: requested.append((p, n)))
    panel.set_probe_path(path)
    assert requested == [(path, panel.model.settings.N)]
    return panel.show_probe_read(path, requested[0][1], read_probe(path), "")


def plain(text: str) -> str:
    return text.replace("\u200b", "")


def test_a_misfit_is_refused_with_resample_and_keep(
    qtbot, panel: SettingsPanelWidget, data: DiffractionData, tmp_path: Path
) -> None:
    path = probe_file(tmp_path, 16)
    with qtbot.waitSignal(panel.probe_rejected) as blocker:
        assert not read(panel, path)
    message = plain(panel.probe_message.text())
    assert message == blocker.args[0]
    assert message == (
        "This probe does not fit: probe16.npy is 16x16 but N=32: resample it to N=32, keep "
        "the data's probe."
    )
    assert "(" not in message and "resample=True" not in message  # no Python call
    assert panel.probe_choices.isVisibleTo(panel)
    assert panel.resample_button.isVisibleTo(panel)
    assert panel.resample_button.text() == "Resample to N=32"
    assert not panel.use_n_button.isVisibleTo(panel)  # 16 is no valid N
    assert panel.keep_data_probe_button.isVisibleTo(panel)
    # the refused probe is not left on screen: the data's probe is
    assert panel.preview_probe is data.probe
    assert panel.model.settings.probe_path == ""

    with qtbot.waitSignal(panel.probe_applied) as applied:
        panel.resample_button.click()
    assert applied.args == [path]
    settings = panel.model.settings
    assert (settings.probe_path, settings.probe_resample) == (path, True)
    assert settings.run_spec().probe_resample is True
    assert plain(panel.probe_message.text()) == (
        "probe16.npy is 16x16: the run resamples it to N=32 (same field of view)."
    )
    assert panel.probe_message.styleSheet() == ""  # a note, not an error
    assert not panel.probe_choices.isVisibleTo(panel)
    assert panel.preview_probe is not None and panel.preview_probe.shape[-1] == 16
    # the run gets the probe resampled to N
    spec = settings.run_spec()
    modes = resolve_probe(spec, prepare_data(data, spec.preparation))
    assert modes is not None and modes.shape == (1, 32, 32)
    np.testing.assert_allclose(modes[0], fourier_resample(np.load(path), 32), rtol=1e-5, atol=1e-6)

    # another N: the probe is checked again, and it still fits resampled
    requested: list[tuple[str, int]] = []
    panel.probe_requested.connect(lambda p, n: requested.append((p, n)))
    panel.model.update(N=64)
    assert requested == [(path, 64)]
    assert panel.show_probe_read(path, 64, read_probe(path), "")
    assert "resamples it to N=64" in plain(panel.probe_message.text())


def test_use_n_sets_n_to_the_probes_side(qtbot, panel: SettingsPanelWidget, tmp_path: Path) -> None:
    path = probe_file(tmp_path, 64)
    assert not read(panel, path)
    assert "use N=64" in plain(panel.probe_message.text())
    assert panel.use_n_button.isVisibleTo(panel) and panel.use_n_button.text() == "Use N=64"
    with qtbot.waitSignal(panel.probe_applied):
        panel.use_n_button.click()
    settings = panel.model.settings
    assert (settings.N, settings.probe_path, settings.probe_resample) == (64, path, False)
    assert panel.n_combo.currentData() == 64
    assert not panel.probe_choices.isVisibleTo(panel)
    assert panel.preview_probe is not None and panel.preview_probe.shape[-1] == 64
    # a probe larger than the detector: no "Use N" (N cannot exceed the detector)
    big = probe_file(tmp_path, 128)
    panel.model.update(N=32)
    assert not read(panel, big)
    assert not panel.use_n_button.isVisibleTo(panel)
    assert "use N=" not in plain(panel.probe_message.text())


def test_keep_the_data_probe_and_the_next_file_forget_the_misfit(
    panel: SettingsPanelWidget, data: DiffractionData, tmp_path: Path
) -> None:
    fitting = probe_file(tmp_path, 32)
    assert read(panel, fitting)
    assert panel.model.settings.probe_path == fitting
    applied = panel.preview_probe
    assert applied is not None and applied.shape[-1] == 32
    # a misfit while a probe file is in use: the one in use stays on screen
    assert not read(panel, probe_file(tmp_path, 16))
    assert panel.preview_probe is applied and panel.model.settings.probe_path == fitting
    panel.keep_data_probe_button.click()
    assert panel.model.settings.probe_path == "" and not panel.model.settings.probe_resample
    assert panel.preview_probe is data.probe
    assert not panel.probe_message.isVisibleTo(panel)

    assert not read(panel, probe_file(tmp_path, 16))
    assert panel.probe_message.isVisibleTo(panel)
    panel.reset_for_new_file()
    assert not panel.probe_message.isVisibleTo(panel) and panel.probe_message.text() == ""
    assert not panel.probe_choices.isVisibleTo(panel)
    assert not read(panel, probe_file(tmp_path, 16))
    other = data.replace(provenance={**data.provenance, "path": "/data/other.npz"})
    panel.show_data(other)  # what the main window calls on load
    assert panel.probe_message.text() == "" and not panel.probe_choices.isVisibleTo(panel)
    assert panel.preview_probe is other.probe


def test_an_unreadable_probe_says_why(panel: SettingsPanelWidget) -> None:
    assert not panel.show_probe_read("/tmp/none.npy", 32, None, "/tmp/none.npy: no such file")
    assert plain(panel.probe_message.text()) == ("Cannot use none.npy: /tmp/none.npy: no such file")
    assert panel.probe_choices.isHidden()  # nothing to resample


def test_a_long_message_wraps_inside_the_dock(
    qtbot, dispose, data: DiffractionData, tmp_path
) -> None:
    panel = SettingsPanelWidget(SettingsModel(TINY))
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(panel)
    dispose(scroll)
    scroll.resize(340, 900)
    scroll.show()
    qtbot.waitExposed(scroll)
    panel.show_data(data)
    name = "scan_0042_probe_reconstructed_with_the_beamline_pipeline_version_3_final.npy"
    assert not read(panel, probe_file(tmp_path, 16, name))
    qtbot.waitUntil(lambda: panel.probe_message.isVisible())
    line = panel.probe_message.fontMetrics().height()
    assert panel.probe_message.height() >= 3 * line  # wrapped over several lines
    assert panel.probe_message.width() <= scroll.viewport().width()
    assert not scroll.horizontalScrollBar().isVisible()
    assert panel.minimumSizeHint().width() < 340
    assert name in plain(panel.probe_message.text())
