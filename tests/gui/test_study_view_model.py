"""The Qt-free model of the Study tab: form parsing, display levels, tooltips (the grid, the
series and folder reading are the engine's: tests/engine/test_study.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ptycho_engine.data import StitchSnapshot
from ptycho_engine.study import StudyError, StudySpec
from ptycho_gui.view_models.study import (
    cell_tooltip,
    display_phase,
    parse_numbers,
    shared_amplitude_levels,
    spec_from_form,
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
    # the engine's width default (one place: ModelConfig)
    assert (spec.n_filters_scale, spec.mae_warmup_epochs, spec.scan) == (1, None, "spiral")
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
