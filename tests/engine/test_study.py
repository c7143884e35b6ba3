"""Reconstruction-quality studies: rows, files, isolation, resume, and the dask executor.

Tiny on purpose: N 32/64, n_filters_scale 1, 40 positions, 1 epoch. One module-scoped study of
8 settings serves as the uninterrupted, in-process reference for the other tests.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ptycho_engine import training
from ptycho_engine.study import (
    METRIC_COLUMNS,
    RESULTS_CSV,
    RESULTS_JSON,
    StudyError,
    StudyResult,
    StudySetting,
    StudySpec,
    run_study,
    setting_id,
    write_results,
)

SPEC = StudySpec(
    N=(32, 64),
    gridsize=(1, 2),
    photons=(1e3, 1e6),
    loss=("nll",),
    seeds=(0,),
    epochs=1,
    positions=40,
    n_filters_scale=1,
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def full_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StudyResult]:
    out = tmp_path_factory.mktemp("study") / "full"
    return out, run_study(SPEC, out)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _assert_same_metrics(a: dict[str, Any], b: dict[str, Any], label: str) -> None:
    for column in METRIC_COLUMNS:
        x, y = float(a[column]), float(b[column])
        if math.isnan(x) or math.isnan(y) or math.isinf(x) or math.isinf(y):
            assert str(x) == str(y), f"{label} {column}: {x} != {y}"
        else:
            assert abs(x - y) <= TOLERANCE * max(1.0, abs(x)), f"{label} {column}: {x} != {y}"


def test_study_writes_a_row_per_setting_runs_and_figures(
    full_study: tuple[Path, StudyResult],
) -> None:
    out, result = full_study
    assert (result.ran, result.skipped, result.stopped, result.failures) == (8, 0, False, ())
    rows = _csv_rows(out / "results.csv")
    assert len(rows) == 8
    assert [r["setting_id"] for r in rows] == [setting_id(SPEC, s) for s in SPEC.settings()]
    combos = {(int(r["N"]), int(r["gridsize"]), float(r["photons"])) for r in rows}
    assert combos == {(n, g, p) for n in (32, 64) for g in (1, 2) for p in (1e3, 1e6)}
    for row in rows:
        for column in (
            "amplitude_ssim",
            "phase_ssim",
            "chance_amplitude_ssim",
            "chance_phase_ssim",
        ):
            assert math.isfinite(float(row[column])), (row["setting_id"], column)
        assert -1 <= float(row["amplitude_ssim"]) <= 1
        assert float(row["amplitude_psnr"]) > 0 and float(row["amplitude_mae"]) > 0
        assert int(row["epochs_run"]) == 1 and int(row["steps"]) >= 1
        assert float(row["train_time_s"]) > 0
        assert abs(float(row["measured_photons"]) / float(row["photons"]) - 1) < 0.05
        folder = out / "runs" / row["setting_id"]
        for name in ("reconstruction.h5", "reconstruction.npz", "run.json"):
            assert (folder / name).stat().st_size > 0, folder / name
        for name in ("amplitude.png", "phase.png"):
            assert (folder / name).read_bytes()[:8] == PNG_MAGIC
    payload = json.loads((out / "results.json").read_text())
    assert payload["spec"] == SPEC.to_dict() and len(payload["rows"]) == 8
    assert json.loads((out / "study.json").read_text())["spec"] == SPEC.to_dict()
    figures = (
        "dose_response.png",
        "convergence.png",
        "reconstructions_amplitude.png",
        "reconstructions_phase.png",
    )
    for name in figures:
        data = (out / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 10_000, name
    assert {p.name for p in result.figures} == set(figures)
    for row in rows:  # with 1 epoch, every checkpoint is the last epoch: the final scores
        for channel in ("amplitude", "phase"):
            for pct in (50, 75):
                assert row[f"{channel}_ssim_at_{pct}pct"] == row[f"{channel}_ssim"]


def test_setting_ids_depend_on_the_setting_not_on_the_other_sweeps() -> None:
    setting = StudySetting(32, 2, 1e3, "nll", 0)
    small = dataclasses.replace(SPEC, N=(32,), gridsize=(2,), photons=(1000,))
    assert setting_id(SPEC, setting) == setting_id(small, setting)
    assert setting_id(SPEC, setting).startswith("N32-g2-1e3-nll-s0-")
    assert setting_id(dataclasses.replace(SPEC, epochs=2), setting) != setting_id(SPEC, setting)
    assert setting_id(SPEC, dataclasses.replace(setting, seed=1)) != setting_id(SPEC, setting)
    with pytest.raises(StudyError, match=r"StudySpec\.N = \(48,\).*bad item 48"):
        dataclasses.replace(SPEC, N=(48,))
    with pytest.raises(StudyError, match="without repeats"):
        dataclasses.replace(SPEC, photons=(1e3, 1000))


def test_a_setting_run_alone_in_a_new_process_matches_it_run_after_the_others(
    full_study: tuple[Path, StudyResult], tmp_path: Path
) -> None:
    out, _ = full_study
    last = SPEC.settings()[-1]  # N=64, gridsize 2, 1e6: ran after the 7 others in this process
    alone = tmp_path / "alone"
    args = [
        *("--N", str(last.N), "--gridsize", str(last.gridsize), "--photons", "1e6"),
        *("--loss", "nll", "--epochs", "1", "--positions", "40", "--seeds", "0"),
        *("--n-filters-scale", "1", "--out", str(alone)),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-m", "ptycho_engine.study_cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "[1/1] N64-g2-1e6-nll-s0-" in done.stdout
    (row,) = _csv_rows(alone / "results.csv")
    reference = {r["setting_id"]: r for r in _csv_rows(out / "results.csv")}
    assert row["setting_id"] == setting_id(SPEC, last)
    _assert_same_metrics(row, reference[row["setting_id"]], "alone vs after others")


def test_an_interrupted_study_resumes_only_the_missing_settings(
    full_study: tuple[Path, StudyResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out_full, _ = full_study
    spec = dataclasses.replace(SPEC, N=(32,))  # 4 settings, all also in the full study
    out = tmp_path / "resumed"
    calls: list[tuple[int, int, float]] = []
    interrupt_at = [3]
    real = training.run_training

    def counting(data: Any, model_config: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((model_config.N, model_config.gridsize, data.provenance["recipe"]["photons"]))
        if len(calls) == interrupt_at[0]:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the third setting
        return real(data, model_config, *args, **kwargs)

    monkeypatch.setattr(training, "run_training", counting)
    with pytest.raises(KeyboardInterrupt):
        run_study(spec, out)
    first = _csv_rows(out / "results.csv")
    assert len(first) == 2 and len(json.loads((out / "results.json").read_text())["rows"]) == 2
    assert not (out / "dose_response.png").exists()
    finished_first = calls[:2]

    with pytest.raises(StudyError, match=r"holds a different study.*epochs: stored 1, requested 2"):
        run_study(dataclasses.replace(spec, epochs=2), out)

    interrupt_at[0] = -1
    result = run_study(spec, out)
    assert (result.ran, result.skipped) == (2, 2)
    resumed = calls[3:]
    assert len(resumed) == 2 and not set(resumed) & set(finished_first)
    assert calls[2] in resumed  # the interrupted setting ran again, to the end
    final = _csv_rows(out / "results.csv")
    expected = [setting_id(spec, s) for s in spec.settings()]
    assert [r["setting_id"] for r in final] == expected
    reference = {r["setting_id"]: r for r in _csv_rows(out_full / "results.csv")}
    for row in final:
        _assert_same_metrics(row, reference[row["setting_id"]], row["setting_id"])
    assert (out / "dose_response.png").read_bytes()[:8] == PNG_MAGIC


def test_dask_executor_on_a_local_cluster_matches_the_local_executor(
    full_study: tuple[Path, StudyResult], tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    out_full, _ = full_study
    spec = dataclasses.replace(SPEC, N=(32,), photons=(1e3,))  # 2 settings
    out = tmp_path / "dask"
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    try:
        result = run_study(spec, out, executor="dask", scheduler=cluster.scheduler_address)
        with distributed.Client(cluster) as client:
            threads = client.run(_tensorflow_threads)
    finally:
        cluster.close()
    assert result.ran == 2 and len(threads) == 2
    assert all(value == (1, 1) for value in threads.values()), threads
    rows = _csv_rows(out / "results.csv")
    assert [r["setting_id"] for r in rows] == [setting_id(spec, s) for s in spec.settings()]
    reference = {r["setting_id"]: r for r in _csv_rows(out_full / "results.csv")}
    for row in rows:
        _assert_same_metrics(row, reference[row["setting_id"]], f"dask {row['setting_id']}")
        assert (out / "runs" / row["setting_id"] / "reconstruction.h5").exists()


def _tensorflow_threads() -> tuple[int, int]:
    import tensorflow as tf

    return (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )


def test_study_cli_errors_are_one_line_and_importing_study_skips_tensorflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ptycho_engine.study_cli import main

    code = main(["--N", "48", "--gridsize", "1", "--photons", "1e3", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "StudySpec.N" in err
    code = main(
        [
            *("--N", "32", "--gridsize", "1", "--photons", "1e3"),
            *("--scheduler", "tcp://h:1", "--out", str(tmp_path / "y")),
        ]
    )
    assert code == 2 and "--scheduler needs --executor dask" in capsys.readouterr().err
    probe = (
        "import sys, ptycho_engine.study, ptycho_engine.study_cli; "
        "print('tensorflow' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "False", done.stderr


def test_resume_refuses_results_it_does_not_know_and_changes_nothing(tmp_path: Path) -> None:
    # Results from another engine version (other setting ids) must not be silently dropped
    # by the rewrite of the results files at the start of a resume.
    spec = dataclasses.replace(SPEC, N=(32,), gridsize=(1,), photons=(1e3,))
    out = tmp_path / "study"
    out.mkdir()
    (out / "study.json").write_text(
        json.dumps({"format": 1, "spec": spec.to_dict()}), encoding="utf-8"
    )
    old_id = "N32-g1-1e3-nll-s0-0123456789"
    row = {"setting_id": old_id, "N": 32, "gridsize": 1, "photons": 1e3, "loss": "nll"}
    write_results(out, spec, {old_id: row}, order=[old_id])
    before = {name: (out / name).read_bytes() for name in (RESULTS_JSON, RESULTS_CSV)}
    with pytest.raises(StudyError, match="holds 1 result") as info:
        run_study(spec, out)
    assert old_id in str(info.value) and "another --out folder" in str(info.value)
    assert {name: (out / name).read_bytes() for name in before} == before
    assert not (out / "runs").exists()


def test_checkpoint_scores_are_the_scores_of_shorter_runs(tmp_path: Path) -> None:
    # A 4-epoch setting is scored after epochs 2 and 3 (50 % and 75 %) as well: those scores
    # must equal the final scores of the same setting trained for 2 and 3 epochs, which also
    # shows that scoring during training leaves the training itself unchanged.
    base = dataclasses.replace(SPEC, N=(32,), gridsize=(2,), photons=(1e6,))
    rows = {}
    for epochs in (2, 3, 4):
        out = tmp_path / f"e{epochs}"
        run_study(dataclasses.replace(base, epochs=epochs), out)
        (rows[epochs],) = _csv_rows(out / "results.csv")
    four = rows[4]
    assert int(four["epochs_run"]) == 4
    for channel in ("amplitude", "phase"):
        for pct, epochs in ((50, 2), (75, 3)):
            at, final = (
                float(four[f"{channel}_ssim_at_{pct}pct"]),
                float(rows[epochs][f"{channel}_ssim"]),
            )
            assert math.isfinite(at) and abs(at - final) <= 1e-3, (channel, pct, at, final)
        assert float(four[f"{channel}_ssim_at_50pct"]) != float(four[f"{channel}_ssim"])
    assert float(four["checkpoint_time_s"]) > 0 and float(rows[2]["checkpoint_time_s"]) > 0
    assert (tmp_path / "e4" / "convergence.png").read_bytes()[:8] == PNG_MAGIC
