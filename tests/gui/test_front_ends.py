"""One pipeline: the same setting through the command line, the study runner and the app's
worker gives the same run (metrics and run.json keys)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ptycho_engine.cli import main as engine_main
from ptycho_engine.io import write_pinn_npz
from ptycho_engine.study import StudySpec, run_setting, simulate_setting, write_setting_folder
from ptycho_engine.study.runner import STUDY_REMOVE_GRID_PATTERN, STUDY_STITCH_WINDOW
from ptycho_gui.jobs import start_worker, stop_workers
from ptycho_gui.view_models.run_settings import RunSettings
from ptycho_gui.worker import EngineWorker
from tests.gui.conftest import WAIT_MS

SPEC = StudySpec(
    N=(32,),
    gridsize=(1,),
    photons=(1e5,),
    loss=("nll",),
    seeds=(0,),
    epochs=2,
    positions=40,
    n_filters_scale=1,
)


def _scores(run_json: Path) -> dict[str, float]:
    info = json.loads(run_json.read_text(encoding="utf-8"))
    report = info["metrics"]["reconstruction"]
    return {
        f"{channel}_{name}": float(report[channel][name])
        for channel in ("amplitude", "phase")
        for name in ("ssim", "psnr", "mae", "rmse", "frc_1_7_px", "frc_halfbit_px")
    }


def test_cli_study_and_app_worker_make_the_same_run(qtbot, tmp_path: Path) -> None:
    (setting,) = SPEC.settings()
    # the study runner
    outcome = run_setting(SPEC, setting)
    study_dir = tmp_path / "study-run"
    write_setting_folder(study_dir, outcome)
    # the same data as a file, for the command line and the app
    data_file = tmp_path / "setting.npz"
    write_pinn_npz(data_file, simulate_setting(SPEC, setting))
    cli_dir = tmp_path / "cli-run"
    argv = ["train", str(data_file), "--N", "32", "--gridsize", "1", "--epochs", "2"]
    argv += ["--n-filters-scale", "1", "--seed", "0", "--preview-every", "0"]
    # what a study fixes in its training (study.STUDY_TRAINING): every epoch, the last
    # weights, no XLA, from scratch; its stitching window (study.STUDY_STITCH_WINDOW), and
    # the grid pattern left in (study.STUDY_REMOVE_GRID_PATTERN)
    argv += ["--early-stopping-patience", "0", "--keep-last-weights", "--xla", "off"]
    argv += ["--from-scratch", "--stitch-window", STUDY_STITCH_WINDOW, "--keep-grid-pattern"]
    assert engine_main([*argv, "--out", str(cli_dir)]) == 0
    # the app's worker, in its thread
    worker = EngineWorker(tmp_path / "session")
    thread = start_worker(worker, "engine-worker")
    try:
        with qtbot.waitSignal(worker.data_loaded, timeout=WAIT_MS):
            worker.request_load(str(data_file))
        settings = RunSettings(
            N=32,
            gridsize=1,
            n_filters_scale=1,
            epochs=2,
            preview_every=0,
            early_stopping=False,
            jit_compile=False,
            pretrained=False,
            stitch_window=STUDY_STITCH_WINDOW,
            remove_grid_pattern=STUDY_REMOVE_GRID_PATTERN,
        )
        with qtbot.waitSignal(worker.run_finished, timeout=WAIT_MS) as finished:
            worker.request_run(settings)
    finally:
        assert stop_workers([(worker, thread)])
    app = finished.args[0]
    assert app.state == "finished" and app.run_dir
    app_dir = Path(app.run_dir)

    runs = {"study": study_dir, "cli": cli_dir, "app": app_dir}
    infos = {k: json.loads((d / "run.json").read_text(encoding="utf-8")) for k, d in runs.items()}
    assert set(infos["study"]) == set(infos["cli"]) == set(infos["app"])
    assert infos["study"]["context"]["command"] == "study"
    specs = {k: info["spec"] for k, info in infos.items()}
    for key in (
        "model_config",
        "data_config",
        "preparation",
        "stitch_window",
        "remove_grid_pattern",
    ):
        assert specs["study"][key] == specs["cli"][key] == specs["app"][key], key
    training = {k: dict(s["training_config"], preview_every=0) for k, s in specs.items()}
    assert training["study"] == training["cli"] == training["app"]
    scores = {k: _scores(d / "run.json") for k, d in runs.items()}
    for name, value in scores["study"].items():
        assert scores["cli"][name] == pytest.approx(value, abs=1e-6), name
        assert scores["app"][name] == pytest.approx(value, abs=1e-6), name
    # and the app's table shows those very numbers
    assert app.metrics["amplitude_ssim"] == pytest.approx(scores["study"]["amplitude_ssim"])
