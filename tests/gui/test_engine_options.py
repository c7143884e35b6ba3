"""The engine options a measured file needs, in the settings panel (basic and advanced), and the
mapping profile of the data panel: each reaches the run's spec, and the tike settings made in
the widgets are the command line's run."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QWidget

import ptycho_engine.pipeline as pipeline
from ptycho_engine.cli import main as engine_main
from ptycho_engine.config import (
    DEFAULT_WARMUP_EPOCHS,
    EARLY_STOP_MIN_STEPS,
    DataConfig,
    TrainingConfig,
)
from ptycho_engine.errors import PtychoError
from ptycho_engine.io import read_data
from ptycho_engine.pipeline.spec import DataSource
from ptycho_gui.view_models.run_settings import RunSettings
from ptycho_gui.view_models.settings_model import SettingsModel
from ptycho_gui.widgets.data_panel import DataPanelWidget
from ptycho_gui.widgets.settings_panel import SettingsPanelWidget
from tests.gui.conftest import TINY
from tests.gui.disposal import dispose_fixture  # noqa: F401 - the dispose fixture

ROOT = Path(__file__).resolve().parents[2]
TIKE = ROOT.parent / "shared/datasets/third_party/tike/ptycho_setup_converted.npz"
PROFILE = ROOT / "tests/io/profiles/tike.json"


@pytest.fixture
def panel(dispose) -> SettingsPanelWidget:
    widget = SettingsPanelWidget(SettingsModel(TINY))
    dispose(widget)
    return widget


def test_advanced_options_fold_and_reach_the_spec(panel: SettingsPanelWidget) -> None:
    model = panel.model
    assert not panel.advanced_box.isVisibleTo(panel)  # folded at first
    assert panel.advanced_button.isVisibleTo(panel)
    panel.advanced_button.click()
    assert panel.advanced_box.isVisibleTo(panel)
    assert panel.warmup_spin.text() == "default (0 epochs)"  # 2 epochs: a third is 0
    panel.epochs_spin.setValue(30)
    assert panel.warmup_spin.text() == "default (3 epochs)"

    panel.probe_scale_spin.setValue(2.5)
    panel.auto_probe_scale_check.setChecked(True)
    panel.probe_trainable_check.setChecked(True)
    panel.warmup_spin.setValue(5)
    assert panel.early_stopping_check.isChecked()  # on by default
    assert model.settings.run_spec().training.early_stopping_patience == 10
    panel.early_stopping_check.setChecked(False)
    assert not panel.pretrained_check.isChecked()  # the tests' settings start from scratch
    panel.pretrained_check.setChecked(True)
    assert model.settings.run_spec().training.pretrained is True
    assert "from scratch" not in model.settings.label()
    panel.pretrained_check.setChecked(False)
    assert "from scratch" in model.settings.label()
    assert panel.stitch_combo.currentText() == "probe"  # the engine's default window
    panel.stitch_combo.setCurrentText("support")
    assert panel.remove_grid_check.isChecked()  # the engine's default: seams divided out
    panel.remove_grid_check.setChecked(False)
    spec = model.settings.run_spec()
    assert spec.training.pretrained is False
    assert spec.training.early_stopping_patience == 0
    assert spec.training.restore_best_weights is False
    assert spec.model.probe_scale == 2.5 and spec.model.auto_probe_scale is True
    assert spec.model.probe_trainable is True
    assert spec.training.mae_warmup_epochs == 5 and spec.training.warmup_epochs == 5
    assert spec.stitch_window == "support"
    assert spec.remove_grid_pattern is False
    assert (
        "probe scale <= 2.5, probe trained, MAE warm-up 5, no early stopping, from scratch, "
        "support window, grid pattern kept"
    ) in model.settings.label()
    panel.warmup_spin.setValue(panel.warmup_spin.minimum())  # "default"
    assert model.settings.mae_warmup_epochs is None
    assert model.settings.run_spec().training.warmup_epochs == 3

    # the network's options only: a solver hides them
    panel.algorithm_combo.setCurrentIndex(panel.algorithm_combo.findData("rpie"))
    assert not panel.advanced_button.isVisibleTo(panel)
    assert not panel.advanced_box.isVisibleTo(panel)
    panel.algorithm_combo.setCurrentIndex(panel.algorithm_combo.findData("pinn"))
    assert panel.advanced_box.isVisibleTo(panel)
    panel.advanced_button.click()
    assert not panel.advanced_box.isVisibleTo(panel)


def test_every_option_says_what_it_does(panel: SettingsPanelWidget, dispose) -> None:
    data_panel = DataPanelWidget()
    dispose(data_panel)
    widgets: tuple[QWidget, ...] = (
        panel.probe_scale_spin,
        panel.auto_probe_scale_check,
        panel.probe_trainable_check,
        panel.warmup_spin,
        panel.stitch_combo,
        panel.remove_grid_check,
        panel.batch_spin,
        panel.lr_spin,
        panel.advanced_button,
        data_panel.profile_button,
        data_panel.profile_edit,
        data_panel.profile_clear_button,
    )
    for widget in widgets:
        assert len(widget.toolTip()) > 30, widget
    assert "probe scale" in panel.auto_probe_scale_check.toolTip().lower()
    assert "mapping profile" in data_panel.profile_button.toolTip().lower()


def test_the_tooltips_state_the_engine_defaults(panel: SettingsPanelWidget) -> None:
    # the numbers a tooltip gives are the engine's own, not copies of them
    stopping = panel.early_stopping_check.toolTip()
    assert f"{TrainingConfig.early_stopping_patience} epochs" in stopping
    assert f"at least {EARLY_STOP_MIN_STEPS} steps" in stopping
    assert f"{100 * DataConfig.validation_fraction:g} % of the pixels" in stopping
    assert f"default: {DEFAULT_WARMUP_EPOCHS} epochs" in panel.warmup_spin.toolTip()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"probe_scale": -1.0}, "probe_scale"),
        ({"auto_probe_scale": "yes"}, "auto_probe_scale"),
        ({"probe_trainable": 1}, "probe_trainable"),
        ({"mae_warmup_epochs": -3}, "mae_warmup_epochs"),
        ({"stitch_window": "gaussian"}, "stitch_window"),
        ({"remove_grid_pattern": "no"}, "remove_grid_pattern"),
        ({"energy_ev": 0.0}, "energy_ev"),
        ({"distance_m": -2.0}, "distance_m"),
        ({"detector_pixel_m": float("nan")}, "detector_pixel_m"),
    ],
)
def test_invalid_options_are_refused_naming_the_field(
    panel: SettingsPanelWidget, change: dict, field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        TINY.replace(**change)
    assert not panel.model.update(**change)
    assert panel.edit_message.isVisibleTo(panel)
    assert field in panel.edit_message.text().replace("\u200b", "")
    assert panel.model.settings == TINY
    panel.model.update(epochs=3)  # the next accepted edit clears the message
    assert not panel.edit_message.isVisibleTo(panel)


def test_the_profile_reads_the_open_file_again(qtbot, dispose, tmp_path: Path) -> None:
    data_panel = DataPanelWidget()
    dispose(data_panel)
    reloads: list[tuple[str, str]] = []
    data_panel.reload_requested.connect(lambda p, q: reloads.append((p, q)))
    profile = tmp_path / "beamline.json"
    profile.write_text("{}", encoding="utf-8")
    data_panel.set_profile(str(profile))  # no file yet: only remembered
    assert reloads == [] and data_panel.profile == str(profile)
    assert data_panel.profile_edit.text() == "beamline.json"
    data_panel.set_profile("")
    data_panel.note_opening("/data/scan.h5")  # the main window opens a file (it may fail)
    with qtbot.waitSignal(data_panel.reload_requested) as blocker:
        data_panel.set_profile(str(profile))
    assert blocker.args == ["/data/scan.h5", str(profile)]
    with qtbot.waitSignal(data_panel.reload_requested) as blocker:
        data_panel.profile_clear_button.click()
    assert blocker.args == ["/data/scan.h5", ""]
    assert data_panel.profile == "" and data_panel.profile_edit.text() == ""


def test_tike_settings_in_the_widgets_make_the_command_lines_run(
    qtbot, dispose, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if not TIKE.is_file():
        pytest.skip(f"third-party data not present: {TIKE}")
    # the command line's run, as its ``train`` makes it
    captured: dict[str, object] = {}

    class CapturedError(PtychoError):
        pass

    def capture(spec, source, **_kw):
        captured["spec"], captured["source"] = spec, source
        raise CapturedError("captured")

    monkeypatch.setattr(pipeline, "run", capture)
    argv = ["train", str(TIKE), "--profile", str(PROFILE), "--N", "32", "--gridsize", "1"]
    argv += ["--epochs", "200", "--auto-probe-scale", "--stitch-window", "probe"]
    assert engine_main([*argv, "--out", str(tmp_path / "cli")]) == 2
    cli_spec = captured["spec"]
    assert isinstance(cli_spec, pipeline.RunSpec)

    # the app: the profile chosen in the data panel, the settings in the widgets
    data_panel = DataPanelWidget()
    model = SettingsModel(RunSettings())
    panel = SettingsPanelWidget(model)
    dispose(data_panel)
    dispose(panel)
    data_panel.note_opening(str(TIKE))
    with qtbot.waitSignal(data_panel.reload_requested) as blocker:
        data_panel.set_profile(str(PROFILE))
    path, profile = blocker.args
    assert DataSource(path, profile) == captured["source"]
    data = read_data(path, profile)  # what the worker's load with a profile does
    model.reset(model.settings.replace(N=32))  # as the main window does for a 32x32 file
    panel.show_data(data)
    assert [panel.n_combo.itemData(k) for k in range(panel.n_combo.count())] == [32]
    panel.gridsize_spin.setValue(1)
    panel.epochs_spin.setValue(200)
    panel.set_advanced_shown(True)
    panel.auto_probe_scale_check.setChecked(True)
    panel.stitch_combo.setCurrentText("probe")
    app = model.settings.run_spec().to_dict()
    cli = cli_spec.to_dict()
    # previews only read the model (the app shows one every epoch): everything else agrees
    assert app["training_config"].pop("preview_every") == 1
    assert cli["training_config"].pop("preview_every") == 5
    assert app == cli
    assert "Object pixel and field of view: unknown (no energy/distance/pixel)" in (
        panel.sampling_label.text()
    )


def test_the_app_starts_from_the_pretrained_network_by_default() -> None:
    assert RunSettings().pretrained is True
    assert RunSettings().run_spec().training.pretrained is True
    assert RunSettings(pretrained=False).run_spec().training.pretrained is False
