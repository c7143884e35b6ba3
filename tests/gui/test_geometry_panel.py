"""Geometry and units: the object pixel and field of view of crop and bin (physics.md section
6), the geometry fields of the settings panel, and the overrides they make for the run."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QWidget

from ptycho_engine.data import DiffractionData
from ptycho_engine.io import read_data, write_cxi
from ptycho_engine.pipeline import prepare_data
from ptycho_engine.simulate import simulate_dataset
from ptycho_gui.view_models.geometry import (
    FileGeometry,
    Geometry,
    choice_sentence,
    object_sampling,
)
from ptycho_gui.view_models.run_settings import RunSettings
from ptycho_gui.view_models.runs import summarise
from ptycho_gui.view_models.settings_model import SettingsModel
from ptycho_gui.widgets.settings_panel import SettingsPanelWidget
from tests.gui.disposal import dispose_fixture  # noqa: F401 - the dispose fixture

ENERGY_EV = 8800.0
DISTANCE_M = 2.0
DETECTOR_PIXEL_M = 75e-6
N0 = 128


def wavelength(energy_ev: float) -> float:
    return 12.398419843320026e-7 / energy_ev  # physics.md section 6


@pytest.fixture(scope="module")
def geometry_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CXI file of 128x128 patterns at 8.8 keV, 2 m, 75 µm pixels."""
    data = simulate_dataset(N=N0, n_positions=20, photons=1e5, seed=2)
    data = data.replace(energy_ev=ENERGY_EV, distance_m=DISTANCE_M, detector_pixel_m=75e-6)
    path = tmp_path_factory.mktemp("geometry") / "scan.cxi"
    write_cxi(path, data)
    return path


@pytest.fixture(scope="module")
def measured(geometry_file: Path) -> DiffractionData:
    return read_data(geometry_file)


@pytest.fixture
def panel(dispose) -> SettingsPanelWidget:
    widget = SettingsPanelWidget(SettingsModel(RunSettings(N=64)))
    dispose(widget)
    return widget


def test_crop_and_bin_at_n64_match_physics_section_6(measured: DiffractionData) -> None:
    file = FileGeometry.of(measured)
    assert (file.detector_n, file.geometry.complete) == (N0, True)
    lam = wavelength(ENERGY_EV)
    # crop: the central 64x64 detector pixels, lambda z / (N dx)
    crop_pixel = lam * DISTANCE_M / (64 * DETECTOR_PIXEL_M)
    # bin by 2: 64 pixels of 2 dx, the full detector's lambda z / (N0 dx)
    bin_pixel = lam * DISTANCE_M / (64 * 2 * DETECTOR_PIXEL_M)
    crop = object_sampling(file, 64, "crop")
    binned = object_sampling(file, 64, "bin")
    assert crop.pixel_size_m == pytest.approx(crop_pixel, rel=1e-6)
    assert crop.field_of_view_m == pytest.approx(64 * crop_pixel, rel=1e-6)
    assert binned.pixel_size_m == pytest.approx(bin_pixel, rel=1e-6)
    assert binned.field_of_view_m == pytest.approx(64 * bin_pixel, rel=1e-6)
    # what each choice does: crop keeps the field of view, bin keeps the pixel
    full = object_sampling(file, N0, "crop")
    assert full.pixel_size_m is not None and full.field_of_view_m is not None
    assert crop.field_of_view_m == pytest.approx(full.field_of_view_m, rel=1e-6)
    assert binned.pixel_size_m == pytest.approx(full.pixel_size_m, rel=1e-6)
    assert binned.field_of_view_m == pytest.approx(full.field_of_view_m / 2, rel=1e-6)
    # and the engine prepares the patterns to those very pixels
    for mode, expected in (("crop", crop_pixel), ("bin", bin_pixel)):
        spec = RunSettings(N=64, prep_mode=mode).run_spec()
        prepared = prepare_data(measured, spec.preparation)
        assert prepared.pixel_size_m == pytest.approx(expected, rel=1e-6), mode
    assert crop.text() == "Object pixel 58.7 nm, field of view 3.76 µm"
    assert binned.text() == "Object pixel 29.4 nm, field of view 1.88 µm"


def test_the_sentence_says_what_crop_and_bin_do() -> None:
    assert choice_sentence(128, 64) == (
        "Crop keeps the central 64x64 of the 128x128 detector pixels (object pixel x2, same "
        "field of view); bin sums 2x2 pixels (same object pixel, field of view /2)."
    )
    assert "bin cannot reach N=64 (it needs N to divide 100)" in choice_sentence(100, 64)
    assert "keep every pixel" in choice_sentence(64, 64)


def test_unknown_geometry_is_said() -> None:
    nothing = FileGeometry(Geometry(), 64)
    sampling = object_sampling(nothing, 32, "crop")
    assert sampling.pixel_size_m is None and sampling.field_of_view_m is None
    assert sampling.text() == "Object pixel and field of view: unknown (no energy/distance/pixel)"
    partial = object_sampling(nothing, 32, "crop", Geometry(energy_ev=9000.0))
    assert partial.note == "unknown (no distance/pixel)"
    # a file that gives its object pixel only: crop scales it by N0/N, bin keeps it
    pixel_only = FileGeometry(Geometry(), 64, pixel_size_m=10e-9)
    assert object_sampling(pixel_only, 32, "crop").pixel_size_m == pytest.approx(20e-9)
    assert object_sampling(pixel_only, 32, "bin").pixel_size_m == pytest.approx(10e-9)
    assert "from the file's object pixel" in object_sampling(pixel_only, 32, "bin").text()
    odd = object_sampling(FileGeometry(Geometry(8e3, 1.0, 1e-4), 100), 64, "bin")
    assert odd.pixel_size_m is None and "divide the detector side 100" in odd.note


def test_overrides_reach_the_preparation_and_its_provenance(measured: DiffractionData) -> None:
    settings = RunSettings(N=64, energy_ev=10_000.0, detector_pixel_m=55e-6)
    spec = settings.run_spec()
    assert spec.preparation.overrides == {"energy_ev": 10_000.0, "detector_pixel_m": 55e-6}
    assert spec.to_dict()["preparation"]["energy_ev"] == 10_000.0  # run.json holds them
    prepared = prepare_data(measured, spec.preparation)
    assert (
        "geometry override energy_ev=10000, detector_pixel_m=5.5e-05"
        in (prepared.provenance["steps"])
    )
    expected = wavelength(10_000.0) * DISTANCE_M / (64 * 55e-6)
    assert prepared.pixel_size_m == pytest.approx(expected, rel=1e-6)
    readout = object_sampling(
        FileGeometry.of(measured), 64, "crop", Geometry(10_000.0, None, 55e-6)
    )
    assert readout.pixel_size_m == pytest.approx(expected, rel=1e-6)
    assert "geometry E 10 keV dx 55 µm" in settings.label()
    with pytest.raises(ValueError, match="energy_ev"):
        settings.replace(energy_ev=-1.0)


def test_the_summary_states_the_geometry(measured: DiffractionData, geometry_file: Path) -> None:
    summary = summarise(measured, str(geometry_file))
    lines = summary.lines()
    assert "Energy: 8.8 keV (wavelength 0.141 nm)" in lines
    assert "Detector distance: 2 m" in lines
    assert "Detector pixel: 75 µm" in lines
    assert "Object pixel size at the file's N=128: 29.4 nm" in lines
    full = wavelength(ENERGY_EV) * DISTANCE_M / (N0 * DETECTOR_PIXEL_M)
    assert summary.object_pixel_m == pytest.approx(full, rel=1e-6)
    bare = simulate_dataset(N=32, n_positions=4, photons=1e4, seed=0)
    bare_lines = summarise(bare, "bare.npz").lines()
    assert "Energy: unknown" in bare_lines and "Detector distance: unknown" in bare_lines
    assert "Detector pixel: unknown" in bare_lines
    assert "Object pixel size at the file's N=32: unknown (no energy/distance/pixel)" in bare_lines


def test_geometry_fields_are_filled_from_the_file_and_edits_are_overrides(
    panel: SettingsPanelWidget, measured: DiffractionData
) -> None:
    model = panel.model
    panel.show_data(measured)
    assert panel.energy_spin.value() == pytest.approx(8.8)
    assert panel.energy_spin.suffix() == " keV"
    assert panel.distance_spin.value() == pytest.approx(2.0)
    assert panel.detector_pixel_spin.value() == pytest.approx(75.0)
    assert panel.geometry_source_label.text() == "From the file."
    assert panel.sampling_label.text() == (
        "Object pixel 58.7 nm, field of view 3.76 µm, at N=64 (crop)."
    )
    assert panel.choice_label.text() == choice_sentence(N0, 64)
    assert model.settings.geometry_overrides == {}

    panel.prep_combo.setCurrentText("bin")
    assert panel.sampling_label.text() == (
        "Object pixel 29.4 nm, field of view 1.88 µm, at N=64 (bin)."
    )
    panel.energy_spin.setValue(9.0)  # keV
    assert model.settings.energy_ev == pytest.approx(9000.0)
    assert model.settings.run_spec().preparation.energy_ev == pytest.approx(9000.0)
    expected = wavelength(9000.0) * DISTANCE_M / (N0 * DETECTOR_PIXEL_M)
    assert f"Object pixel {expected * 1e9:.3g} nm" in panel.sampling_label.text()
    assert panel.energy_spin.font().bold()
    assert panel.geometry_source_label.text().startswith("Edited (bold): energy")
    # the unit changes the display only
    panel.energy_unit_combo.setCurrentText("eV")
    assert panel.energy_spin.value() == pytest.approx(9000.0)
    assert model.settings.energy_ev == pytest.approx(9000.0)
    # the file's own value is no override
    panel.energy_spin.setValue(8800.0)
    assert model.settings.energy_ev is None
    panel.distance_spin.setValue(3.5)
    assert model.settings.distance_m == pytest.approx(3.5)
    panel.geometry_reset_button.click()
    assert model.settings.geometry_overrides == {}
    assert panel.distance_spin.value() == pytest.approx(2.0)
    # "unknown" (0) goes back to the file's value
    panel.detector_pixel_spin.setValue(0.0)
    assert model.settings.detector_pixel_m is None
    assert panel.detector_pixel_spin.value() == pytest.approx(75.0)


def test_another_file_forgets_the_edits_and_unknown_geometry_is_said(
    panel: SettingsPanelWidget, measured: DiffractionData
) -> None:
    panel.show_data(measured)
    panel.distance_spin.setValue(5.0)
    assert panel.model.settings.distance_m == pytest.approx(5.0)
    panel.show_data(measured)  # the same file again (a reload): the edit stays
    assert panel.model.settings.distance_m == pytest.approx(5.0)
    bare = simulate_dataset(N=64, n_positions=4, photons=1e4, seed=0)
    bare = bare.replace(provenance={**bare.provenance, "path": "/data/other.npz"})
    assert bare.pixel_size_m is None and bare.energy_ev is None
    panel.show_data(bare)
    assert panel.model.settings.geometry_overrides == {}
    for spin in (panel.energy_spin, panel.distance_spin, panel.detector_pixel_spin):
        assert spin.text() == "unknown"
    assert panel.sampling_label.text() == (
        "Object pixel and field of view: unknown (no energy/distance/pixel), at N=64 (crop)."
    )
    assert "Not in the file: energy, distance, pixel" in panel.geometry_source_label.text()
    panel.energy_spin.setValue(8.8)
    panel.distance_spin.setValue(2.0)
    panel.detector_pixel_spin.setValue(75.0)
    # the full detector of 64 pixels, cropped to 64: lambda z / (64 dx)
    expected = wavelength(8800.0) * 2.0 / (64 * 75e-6)
    assert panel.model.settings.geometry_overrides == pytest.approx(
        {"energy_ev": 8800.0, "distance_m": 2.0, "detector_pixel_m": 75e-6}
    )
    assert f"Object pixel {expected * 1e9:.3g} nm" in panel.sampling_label.text()


def test_geometry_fields_say_what_they_do(panel: SettingsPanelWidget) -> None:
    widgets: tuple[QWidget, ...] = (
        panel.energy_spin,
        panel.energy_unit_combo,
        panel.distance_spin,
        panel.detector_pixel_spin,
        panel.geometry_reset_button,
        panel.sampling_label,
    )
    for widget in widgets:
        assert len(widget.toolTip()) > 15, widget
    assert panel.sampling_label.text() == "Object pixel and field of view: open a file."
    assert panel.energy_spin.value() == 0.0 and panel.energy_spin.text() == "unknown"
