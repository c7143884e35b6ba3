"""Settings, debouncing, comparison frames and the sample data, without the worker."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from ptycho_gui.sample_data import ensure_sample_data, read_recipe
from ptycho_gui.view_models.comparison import FrameImage, common_frame, shared_levels
from ptycho_gui.view_models.run_settings import RunSettings, valid_n_choices
from ptycho_gui.view_models.settings_model import DEBOUNCE_MS, SettingsModel


def test_valid_n_choices() -> None:
    assert valid_n_choices(64) == [32, 64]
    assert valid_n_choices(300) == [32, 64, 128, 256]
    assert valid_n_choices(16) == []


def test_run_settings_validate_and_compare_models() -> None:
    with pytest.raises(ValueError, match="gridsize"):
        RunSettings(gridsize=4)
    a = RunSettings(N=32)
    assert a.needs_new_model(a.replace(N=64))
    assert a.needs_new_model(a.replace(probe_path="p.npy"))
    assert not a.needs_new_model(a.replace(learning_rate=1e-4))


def test_burst_of_edits_commits_once_with_the_last_settings(qtbot) -> None:
    model = SettingsModel(RunSettings(N=32))
    committed: list[RunSettings] = []
    model.settings_committed.connect(committed.append)
    for k in range(20):
        assert model.update(epochs=k + 1)
        assert model.pending and committed == []
    with qtbot.waitSignal(model.settings_committed, timeout=2000) as blocker:
        pass
    assert blocker.args[0].epochs == 20
    # the debounce timer is single-shot and now idle: no second commit can follow
    assert not model.pending
    assert len(committed) == 1 and committed[0].epochs == 20


def test_an_edit_while_pending_restarts_the_debounce(qtbot) -> None:
    model = SettingsModel(RunSettings(N=32))
    timer = model.findChild(QTimer)
    assert timer is not None and timer.interval() == DEBOUNCE_MS
    committed: list[RunSettings] = []
    model.settings_committed.connect(committed.append)
    model.update(epochs=2)
    qtbot.waitUntil(lambda: 0 <= timer.remainingTime() < DEBOUNCE_MS // 2, timeout=2000)
    model.update(epochs=3)
    assert committed == []
    assert timer.remainingTime() > DEBOUNCE_MS // 2  # counted again from the last edit
    with qtbot.waitSignal(model.settings_committed, timeout=2000) as blocker:
        pass
    assert blocker.args[0].epochs == 3 and len(committed) == 1


def test_invalid_edit_is_rejected_with_the_field_name(qtbot) -> None:
    model = SettingsModel()
    with qtbot.waitSignal(model.edit_rejected) as blocker:
        assert not model.update(learning_rate=5.0)
    assert "learning_rate" in blocker.args[0]
    assert model.settings.learning_rate == 1e-3


def test_common_frame_cuts_to_the_shared_region() -> None:
    a = FrameImage(np.ones((20, 20), np.complex64), np.ones((20, 20), bool), (0.0, 0.0))
    b = FrameImage(2 * np.ones((20, 24), np.complex64), np.ones((20, 24), bool), (5.0, 2.0))
    out = common_frame([a, b])
    assert [o.object.shape for o in out] == [(15, 18), (15, 18)]
    assert out[0].origin_px == (5.0, 2.0)
    low, high = shared_levels([np.abs(o.object) for o in out], [o.valid for o in out])
    assert low == pytest.approx(1.0) and high == pytest.approx(2.0)


def test_common_frame_resamples_to_the_reference_grid() -> None:
    fine = FrameImage(np.ones((40, 40), np.complex64), np.ones((40, 40), bool), (0.0, 0.0), 1.0)
    coarse = FrameImage(np.ones((20, 20), np.complex64), np.ones((20, 20), bool), (0.0, 0.0), 0.5)
    out = common_frame([fine, coarse])
    assert out[0].object.shape == out[1].object.shape == (40, 40)


def test_sample_data_is_generated_once(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.json"
    args = {"N": 32, "n_positions": 20, "photons": 1e5, "object_kind": "lines", "seed": 0}
    recipe.write_text(json.dumps({"arguments": args}))
    assert read_recipe(recipe) == args
    first = ensure_sample_data(recipe, tmp_path / "cache")
    stamp = first.stat().st_mtime_ns
    assert ensure_sample_data(recipe, tmp_path / "cache") == first
    assert first.stat().st_mtime_ns == stamp
    recipe.write_text(json.dumps({"arguments": {**args, "bogus": 1}}))
    with pytest.raises(ValueError, match="bogus"):
        read_recipe(recipe)
