"""The Qt-free model of the Study tab: form parsing, grid layout, dose series."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptycho_engine.data import StitchSnapshot
from ptycho_engine.study import StudyError, StudySetting, StudySpec, setting_id
from ptycho_gui.view_models.study import (
    cell_tooltip,
    chance_mean,
    display_phase,
    dose_series,
    parse_numbers,
    shared_amplitude_levels,
    spec_from_form,
    study_grid,
)


def test_parse_numbers_accepts_spaces_and_commas_and_names_the_field():
    assert parse_numbers("1e3, 1e4 1e6", "photons") == (1e3, 1e4, 1e6)
    assert parse_numbers(" 0 1 ", "seeds", integers=True) == (0.0, 1.0)
    for text, fragment in (
        ("", "at least one"),
        ("1e3 x", "'x' is not a number"),
        ("nan", "not a finite"),
        ("1.5", "not a whole number"),
    ):
        with pytest.raises(StudyError, match="seeds") as info:
            parse_numbers(text, "seeds", integers=True)
        assert fragment in str(info.value)


def test_spec_from_form_builds_the_study_the_form_shows():
    spec = spec_from_form(
        N=[32, 64],
        gridsize=[1, 2],
        photons="1e4 1e6",
        loss=["nll", "mae"],
        seeds="0 1",
        epochs=3,
        positions=50,
    )
    assert len(spec.settings()) == 2 * 2 * 2 * 2 * 2
    assert spec.photons == (1e4, 1e6) and spec.seeds == (0, 1) and spec.epochs == 3
    assert (spec.n_filters_scale, spec.mae_warmup_epochs, spec.scan) == (2, 0, "spiral")
    base = StudySpec(
        N=(32,),
        gridsize=(1,),
        photons=(1e3,),
        loss=("nll",),
        seeds=(0,),
        scan="raster",
        probe_kind="gaussian",
        batch_size=8,
        learning_rate=5e-4,
    )
    kept = spec_from_form(
        N=[64],
        gridsize=[2],
        photons="1e5",
        loss=["mae"],
        seeds="3",
        epochs=7,
        positions=90,
        n_filters_scale=1,
        mae_warmup_epochs=2,
        base=base,
    )
    assert kept == StudySpec(
        N=(64,),
        gridsize=(2,),
        photons=(1e5,),
        loss=("mae",),
        seeds=(3,),
        epochs=7,
        positions=90,
        n_filters_scale=1,
        mae_warmup_epochs=2,
        scan="raster",
        probe_kind="gaussian",
        batch_size=8,
        learning_rate=5e-4,
    )
    with pytest.raises(StudyError, match=r"^N:"):
        spec_from_form(
            N=[], gridsize=[1], photons="1e4", loss=["nll"], seeds="0", epochs=1, positions=50
        )
    with pytest.raises(StudyError, match="photons"):
        spec_from_form(
            N=[32], gridsize=[1], photons="-5", loss=["nll"], seeds="0", epochs=1, positions=50
        )


def test_grid_rows_are_doses_ascending_and_columns_settings():
    spec = StudySpec(N=(64, 32), gridsize=(1, 2), photons=(1e6, 1e3), loss=("nll",), seeds=(3, 4))
    grid = study_grid(spec, seed=4)
    assert grid.doses == (1e3, 1e6)
    assert grid.columns == ((64, 1, "nll"), (64, 2, "nll"), (32, 1, "nll"), (32, 2, "nll"))
    sid = setting_id(spec, StudySetting(32, 2, 1e6, "nll", 4))
    assert grid.ids[1][3] == sid and grid.cell_of(sid) == (1, 3)
    assert study_grid(spec).seed == 3
    with pytest.raises(StudyError, match="seed 9"):
        study_grid(spec, seed=9)


def _row(n, g, loss, photons, seed, value):
    return {
        "N": n,
        "gridsize": g,
        "loss": loss,
        "photons": photons,
        "seed": seed,
        "amplitude_ssim": value,
        "chance_amplitude_ssim": 0.1,
    }


def test_dose_series_mean_and_std_over_seeds():
    rows = [
        _row(64, 2, "nll", 1e3, 0, 0.4),
        _row(64, 2, "nll", 1e3, 1, 0.6),
        _row(64, 2, "nll", 1e6, 0, 0.8),
        _row(64, 1, "mae", 1e3, 0, math.nan),
        _row(64, 1, "mae", 1e6, 0, 0.5),
    ]
    series = {s.label: s for s in dose_series(rows, "amplitude_ssim")}
    nll = series["N=64 g=2 nll"]
    assert nll.doses == (1e3, 1e6) and nll.counts == (2, 1)
    assert nll.means == pytest.approx((0.5, 0.8)) and nll.stds == pytest.approx((0.1, 0.0))
    assert series["N=64 g=1 mae"].doses == (1e6,)  # a NaN score leaves its dose out
    assert chance_mean(rows, "amplitude_ssim") == pytest.approx(0.1)
    assert chance_mean(rows, "phase_ssim") is None
    with pytest.raises(StudyError, match="unknown metric"):
        dose_series(rows, "loss")


def test_display_phase_removes_the_global_offset_and_levels_are_shared():
    rng = np.random.default_rng(0)
    phase = rng.uniform(-0.5, 0.5, (16, 16))
    valid = np.ones((16, 16), bool)
    a = StitchSnapshot((np.exp(1j * (phase + 2.0))).astype(np.complex64), valid, 1, 1, (0.0, 0.0))
    b = StitchSnapshot(
        (3 * np.exp(1j * (phase - 1.0))).astype(np.complex64), valid, 1, 1, (0.0, 0.0)
    )
    assert np.allclose(display_phase(a), display_phase(b), atol=1e-5)
    assert abs(float(np.mean(display_phase(a)))) < 0.05
    low, high = shared_amplitude_levels([a, b])
    assert low == pytest.approx(1.0, abs=1e-4) and high == pytest.approx(3.0, abs=1e-4)


def test_a_folder_from_another_engine_version_is_shown_by_setting_values(tmp_path):
    import json

    from ptycho_engine.study import write_results
    from ptycho_gui.view_models.study import StudyFolder

    spec = StudySpec(N=(32,), gridsize=(1, 2), photons=(1e3, 1e6), loss=("nll",), seeds=(0,))
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"format": 1, "spec": spec.to_dict()}))
    old_id = "N32-g2-1e6-nll-s0-0000000000"  # the id an older engine gave this setting
    rows = {
        old_id: {
            "setting_id": old_id,
            "N": 32,
            "gridsize": 2,
            "photons": 1e6,
            "loss": "nll",
            "seed": 0,
            "amplitude_ssim": 0.5,
        },
        "stranger": {
            "setting_id": "stranger",
            "N": 64,
            "gridsize": 1,
            "photons": 1e6,
            "loss": "nll",
            "seed": 0,
        },
    }
    write_results(out, spec, rows, order=[old_id, "stranger"])
    folder = StudyFolder.load(out)
    assert list(folder.rows) == [old_id] and folder.other_engine == 1
    assert folder.setting(old_id) == StudySetting(32, 2, 1e6, "nll", 0)
    grid = study_grid(spec, 0, folder.ids)
    assert grid.cell_of(old_id) == (1, 1)
    assert grid.ids[0][0] == setting_id(spec, StudySetting(32, 1, 1e3, "nll", 0))
    assert folder.next_setting() == StudySetting(32, 1, 1e3, "nll", 0)
    assert [r["setting_id"] for r in folder.ordered_rows()] == [old_id]


def test_cell_tooltip_shows_the_scores_during_training():
    row = {
        "setting_id": "N64-g2-1e6-nll-s0-0123456789",
        "epochs_run": 50,
        "amplitude_ssim": 0.8021,
        "amplitude_ssim_at_50pct": 0.7012,
        "amplitude_ssim_at_75pct": 0.7904,
        "phase_ssim": 0.7,
        "phase_ssim_at_50pct": 0.6,
        "phase_ssim_at_75pct": 0.69,
    }
    assert cell_tooltip(row).splitlines() == [
        "N64-g2-1e6-nll-s0-0123456789",
        "amplitude SSIM 0.802 (0.701 at 50 %, 0.790 at 75 % of 50 epochs)",
        "phase SSIM 0.700 (0.600 at 50 %, 0.690 at 75 % of 50 epochs)",
    ]
    # a row from an engine that did not score checkpoints: the final scores alone
    old = {k: v for k, v in row.items() if "_at_" not in k}
    old["phase_ssim"] = math.nan
    assert cell_tooltip(old).splitlines() == [
        "N64-g2-1e6-nll-s0-0123456789",
        "amplitude SSIM 0.802",
    ]
