"""ptycho-engine command line: simulate, train, reconstruct, and one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from ptycho_engine.cli import main


def test_simulate_is_bit_identical_and_hits_the_dose(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "c.npz"
    args = ["simulate", "--N", "32", "--positions", "200", "--photons", "1e6", "--seed", "7"]
    assert main([*args, "--out", str(a)]) == 0
    assert main([*args, "--out", str(b)]) == 0
    assert main([*args[:-1], "8", "--out", str(c)]) == 0
    with np.load(a) as fa, np.load(b) as fb, np.load(c) as fc:
        for key in ("diffraction", "xcoords", "ycoords", "probeGuess", "objectGuess"):
            np.testing.assert_array_equal(fa[key], fb[key])
        assert not np.array_equal(fa["diffraction"], fc["diffraction"])
        counts = np.mean(np.sum(fa["diffraction"].astype(np.float64) ** 2, axis=(1, 2)))
    assert abs(counts / 1e6 - 1) < 0.01


def test_train_then_reconstruct_writes_run_folders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.npz"
    assert main(["simulate", "--out", str(data), "--N", "32", "--positions", "60"]) == 0
    run = tmp_path / "run"
    code = main(
        [
            "train",
            str(data),
            "--N",
            "32",
            "--gridsize",
            "2",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--n-filters-scale",
            "1",
            "--out",
            str(run),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "epoch 1/1" in out and "amplitude SSIM" in out
    info = json.loads((run / "run.json").read_text())
    model = info["spec"]["model_config"]
    assert model["N"] == 32 and model["gridsize"] == 2
    assert info["details"]["model_config"] == model  # no automatic probe scale asked
    assert info["context"] == {"command": "train"}
    assert len(info["input"]["sha256"]) == 64
    assert set(info["metrics"]) == {"reconstruction", "chance_level", "flags"}
    assert info["steps"] > 0 and info["timings_s"]["train"] > 0
    (epoch,) = info["history"]
    assert epoch["epoch"] == 1 and epoch["steps"] == info["steps"]
    assert math.isfinite(epoch["loss"]) and epoch["predicted_to_measured_counts"] > 0
    for name in (
        "amplitude.png",
        "phase.png",
        "reconstruction.npz",
        "reconstruction.h5",
        "model.weights.h5",
    ):
        assert (run / name).stat().st_size > 0
    rec = tmp_path / "rec"
    assert main(["reconstruct", str(data), "--model", str(run), "--out", str(rec)]) == 0
    with np.load(run / "reconstruction.npz") as r1, np.load(rec / "reconstruction.npz") as r2:
        np.testing.assert_allclose(r1["object"], r2["object"], atol=1e-5)
    again = json.loads((rec / "run.json").read_text())
    assert set(again) == set(info)  # the same run.json, written by the same writer
    assert again["steps"] == 0 and again["context"]["model_run"] == str(run)
    assert "model.weights.h5" in again["files"]


def test_a_solver_says_that_the_stitching_options_do_not_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.npz"
    assert main(["simulate", "--out", str(data), "--N", "32", "--positions", "40"]) == 0
    capsys.readouterr()
    args = ["reconstruct", str(data), "--algorithm", "rpie", "--iterations", "1"]
    assert main([*args, "--out", str(tmp_path / "plain")]) == 0
    assert "note:" not in capsys.readouterr().err
    extra = ["--keep-grid-pattern", "--stitch-window", "support"]
    assert main([*args, *extra, "--out", str(tmp_path / "noted")]) == 0
    err = capsys.readouterr().err
    assert "note: --keep-grid-pattern applies to a network's stitched patches" in err
    assert "note: --stitch-window applies to a network's stitched patches" in err
    assert (tmp_path / "noted" / "run.json").is_file()


def test_a_run_folder_written_before_the_shared_decoder_still_reconstructs(
    tmp_path: Path,
) -> None:
    """``train --two-decoders`` trains the network of before 2026-12-04; a run.json of that
    time (no decoder fields) rebuilds that network from its weights."""
    data = tmp_path / "d.npz"
    assert main(["simulate", "--out", str(data), "--N", "32", "--positions", "40"]) == 0
    run = tmp_path / "run"
    argv = ["train", str(data), "--N", "32", "--epochs", "1", "--two-decoders"]
    assert main([*argv, "--batch-size", "8", "--out", str(run)]) == 0
    info = json.loads((run / "run.json").read_text())
    for config in (info["spec"]["model_config"], info["details"]["model_config"]):
        assert (config.pop("shared_decoder"), config.pop("decoder_divisor")) == (False, 1)
    (run / "run.json").write_text(json.dumps(info))
    rec = tmp_path / "rec"
    assert main(["reconstruct", str(data), "--model", str(run), "--out", str(rec)]) == 0
    with np.load(run / "reconstruction.npz") as r1, np.load(rec / "reconstruction.npz") as r2:
        np.testing.assert_allclose(r1["object"], r2["object"], atol=1e-5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "missing.npz", "--out", "x"], "missing.npz"),
        (["reconstruct", "missing.npz", "--model", "nowhere", "--out", "x"], "run.json"),
    ],
)
def test_user_errors_print_one_line_and_exit_2(
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1


def test_wrong_patch_size_for_the_data_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.npz"
    assert main(["simulate", "--out", str(data), "--N", "32", "--positions", "30"]) == 0
    assert (
        main(["train", str(data), "--N", "64", "--epochs", "1", "--out", str(tmp_path / "r")]) == 2
    )
    err = capsys.readouterr().err
    assert "d.npz" in err and "N=64 is larger than the 32x32 patterns" in err


def test_inspect_prints_a_summary_and_refuses_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.npz"
    assert main(["simulate", "--out", str(data), "--N", "32", "--positions", "30"]) == 0
    capsys.readouterr()
    assert main(["inspect", str(data)]) == 0
    out = capsys.readouterr().out
    assert "format: pinn-npz" in out and "patterns: 30" in out
    bad = tmp_path / "bad.h5"
    bad.write_text("not an HDF5 file")
    assert main(["inspect", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.h5" in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_probe_window_stitching_weights_by_illumination() -> None:
    from ptycho_engine.config import ModelConfig
    from ptycho_engine.inference import stitch_window
    from ptycho_engine.models import build_models
    from ptycho_engine.simulate import make_probe

    bundle = build_models(ModelConfig(N=32, gridsize=1), make_probe("gaussian", 32), 1.0)
    support = stitch_window(bundle, "support")
    probe = stitch_window(bundle, "probe")
    assert support.max() == 1 and set(np.unique(support)) == {0.0, 1.0}
    assert probe.max() == pytest.approx(1.0) and np.all(probe <= support)
    assert probe[16, 16] > probe[9, 9] > 0 and probe[0, 0] == 0
    with pytest.raises(ValueError, match="window"):
        stitch_window(bundle, "hann")


def test_the_xla_option_defaults_to_the_engine_default() -> None:
    from ptycho_engine.cli import _parser
    from ptycho_engine.config import XLA_CHOICES, XLA_MIN_STEPS, TrainingConfig, uses_xla

    for argv in (["train", "d.npz", "--out", "run"], ["pretrain", "--out", "nets"]):
        args = _parser().parse_args(argv)
        assert XLA_CHOICES[args.xla] is TrainingConfig.jit_compile
    assert XLA_CHOICES == {"auto": None, "on": True, "off": False}
    # "auto": the rule by the run's steps; on and off whatever the length
    assert uses_xla(None, XLA_MIN_STEPS) and not uses_xla(None, XLA_MIN_STEPS - 1)
    assert uses_xla(True, 1) and not uses_xla(False, 10**6)


def test_the_train_help_states_the_engine_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    from ptycho_engine.cli import _parser
    from ptycho_engine.config import EARLY_STOP_MIN_STEPS, PLATEAU_MIN_STEPS, TrainingConfig

    with pytest.raises(SystemExit):
        _parser().parse_args(["train", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    defaults = TrainingConfig()
    assert f"default {defaults.early_stopping_patience}, raised to span at least " in said
    assert f"at least {EARLY_STOP_MIN_STEPS} steps" in said
    assert (
        f"multiplied by {defaults.reduce_lr_factor:g} (default {defaults.reduce_lr_patience}"
        in said
    )
    assert f"at least {PLATEAU_MIN_STEPS} steps" in said
    assert f"default {defaults.preview_every}; 0: none" in said
