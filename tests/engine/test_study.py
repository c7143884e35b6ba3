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
    LOG_AXIS_METRICS,
    METRIC_COLUMNS,
    RESULTS_CSV,
    RESULTS_JSON,
    StudyError,
    StudyFolder,
    StudyResult,
    StudySetting,
    StudySpec,
    chance_mean,
    column_label,
    configs,
    convergence_series,
    dose_label,
    dose_row_label,
    dose_series,
    run_study,
    setting_id,
    setting_of_row,
    ssim_progress,
    study_grid,
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
#: A study of the repository (N=64, 40 settings) kept with its results.csv only.
CONVERGED = Path(__file__).resolve().parents[2] / "docs" / "study_N64_converged"


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
    real = training.train

    def counting(data: Any, model_config: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append((model_config.N, model_config.gridsize, data.provenance["recipe"]["photons"]))
        if len(calls) == interrupt_at[0]:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the third setting
        return real(data, model_config, *args, **kwargs)

    monkeypatch.setattr(training, "train", counting)
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
    # (a fixed warm-up: the default one grows with the epochs, up to 3)
    base = dataclasses.replace(SPEC, N=(32,), gridsize=(2,), photons=(1e6,), mae_warmup_epochs=0)
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


def test_the_settings_of_the_converged_study_in_docs_keep_their_ids() -> None:
    # The folder keeps results.csv (and figures) only: its spec is the one its rows name.
    rows = _csv_rows(CONVERGED / RESULTS_CSV)
    assert len(rows) == 40
    first = rows[0]
    spec = StudySpec(
        N=tuple(dict.fromkeys(int(r["N"]) for r in rows)),
        gridsize=tuple(dict.fromkeys(int(r["gridsize"]) for r in rows)),
        photons=tuple(dict.fromkeys(float(r["photons"]) for r in rows)),
        loss=tuple(dict.fromkeys(r["loss"] for r in rows)),
        seeds=tuple(dict.fromkeys(int(r["seed"]) for r in rows)),
        epochs=int(first["epochs"]),
        positions=int(first["positions"]),
        object_kind=first["object"],
        scan=first["scan"],
        probe_kind=first["probe"],
        n_filters_scale=int(first["n_filters_scale"]),
        two_decoders=True,  # it ran before the shared decoder (results.csv has no column)
        validation="groups",  # and before the pixel validation
        batch_size=int(first["batch_size"]),
        learning_rate=float(first["learning_rate"]),
        mae_warmup_epochs=int(first["mae_warmup_epochs"]),
    )
    assert len(spec.settings()) == 40
    by_setting = {setting_of_row(r): r["setting_id"] for r in rows}
    assert {setting_id(spec, s) for s in spec.settings()} == set(by_setting.values())
    for setting in spec.settings():
        assert setting_id(spec, setting) == by_setting[setting], setting
    assert by_setting[StudySetting(64, 2, 1e6, "nll", 1)] == "N64-g2-1e6-nll-s1-53e835dbd9"


def test_dose_label_is_the_one_of_ids_figures_and_the_app() -> None:
    cases = {1e3: "1e3", 1e4: "1e4", 1e9: "1e9", 2.5e4: "2.5e4", 500.0: "500", 1e-5: "1e-5"}
    for photons, label in cases.items():
        assert dose_label(photons) == label
        assert dose_row_label(photons) == f"{label} ph"
        assert StudySetting(32, 1, photons, "nll", 0).label() == f"N32-g1-{label}-nll-s0"
    assert column_label(64, 2, "mae") == "N=64 g=2 mae"


def test_grid_rows_are_doses_ascending_and_columns_settings() -> None:
    spec = StudySpec(N=(64, 32), gridsize=(1, 2), photons=(1e6, 1e3), loss=("nll",), seeds=(3, 4))
    grid = study_grid(spec, seed=4)
    assert grid.doses == (1e3, 1e6) and grid.shape == (2, 4)
    assert grid.columns == ((64, 1, "nll"), (64, 2, "nll"), (32, 1, "nll"), (32, 2, "nll"))
    sid = setting_id(spec, StudySetting(32, 2, 1e6, "nll", 4))
    assert grid.ids[1][3] == sid and grid.cell_of(sid) == (1, 3)
    assert grid.cell_of("unknown") is None
    assert study_grid(spec).seed == 3
    with pytest.raises(StudyError, match="seed 9"):
        study_grid(spec, seed=9)


def _row(n: int, g: int, loss: str, photons: float, seed: int, value: float) -> dict[str, Any]:
    return {
        "N": n,
        "gridsize": g,
        "loss": loss,
        "photons": photons,
        "seed": seed,
        "amplitude_ssim": value,
        "chance_amplitude_ssim": 0.1,
    }


def test_dose_series_mean_and_std_over_seeds() -> None:
    rows = [
        _row(64, 2, "nll", 1e3, 0, 0.4),
        _row(64, 2, "nll", 1e3, 1, 0.6),
        _row(64, 2, "nll", 1e6, 0, 0.8),
        _row(64, 1, "mae", 1e3, 0, math.nan),
        _row(64, 1, "mae", 1e6, 0, 0.5),
    ]
    series = dose_series(rows, "amplitude_ssim")
    assert [s.label for s in series] == ["N=64 g=1 mae", "N=64 g=2 nll"]  # sorted lines
    nll = series[1]
    assert nll.x == (1e3, 1e6) and nll.counts == (2, 1)
    assert nll.means == pytest.approx((0.5, 0.8)) and nll.stds == pytest.approx((0.1, 0.0))
    assert series[0].x == (1e6,)  # a NaN score leaves its dose out
    assert chance_mean(rows, "amplitude_ssim") == pytest.approx(0.1)
    assert chance_mean(rows, "phase_ssim") is None
    with pytest.raises(StudyError, match="unknown metric"):
        dose_series(rows, "loss")


def _resolution_rows() -> list[dict[str, Any]]:
    """Rows of a few-pixel phase resolution with a chance level near the image size."""
    rows = []
    for photons, px in ((1e3, 4.0), (1e6, 2.5)):
        for seed, spread in ((0, -0.2), (1, 0.2)):
            row = _row(64, 2, "nll", photons, seed, 0.5)
            row.update(phase_frc_1_7_px=px + spread, chance_phase_frc_1_7_px=110.0)
            rows.append(row)
    return rows


def test_dose_figure_draws_resolutions_on_a_log_axis_with_the_chance_level() -> None:
    from ptycho_engine.study.figures import DOSE_PANELS, dose_response_figure

    fig = dose_response_figure(_resolution_rows())
    axes = dict(zip(DOSE_PANELS, fig.axes[: len(DOSE_PANELS)], strict=True))
    assert {"amplitude_frc_1_7_px", "phase_frc_1_7_px"} == LOG_AXIS_METRICS
    for column, ax in axes.items():
        assert ax.get_yscale() == ("log" if column in LOG_AXIS_METRICS else "linear"), column
    # on the log axis a 2-pixel difference spans a readable part of a panel that also shows
    # the chance level (on a linear one it was 2 % of the height)
    low, high = axes["phase_frc_1_7_px"].get_ylim()
    assert low <= 2.3 and high >= 110.0
    span = (math.log10(4.0) - math.log10(2.5)) / (math.log10(high) - math.log10(low))
    assert span > 0.1


def test_convergence_series_keep_lines_scored_at_every_checkpoint() -> None:
    def row(g: int, seed: int, at50: float, at75: float, end: float) -> dict[str, Any]:
        return {
            **_row(32, g, "nll", 1e4, seed, end),
            "amplitude_ssim_at_50pct": at50,
            "amplitude_ssim_at_75pct": at75,
        }

    rows = [
        row(1, 0, 0.2, 0.4, 0.5),
        row(1, 1, 0.4, 0.6, 0.7),
        row(2, 0, math.nan, 0.5, 0.6),  # not scored at 50 %: no line
        {**row(1, 0, 0.9, 0.9, 0.9), "photons": 1e6},  # another dose
    ]
    (series,) = convergence_series(rows, "amplitude", 1e4)
    assert series.label == "N=32 g=1 nll" and series.x == (50.0, 75.0, 100.0)
    assert series.means == pytest.approx((0.3, 0.5, 0.6))
    assert series.stds == pytest.approx((0.1, 0.1, 0.1)) and series.counts == (2, 2, 2)
    assert convergence_series(rows, "phase", 1e4) == []


def test_ssim_progress_reads_the_final_and_checkpoint_scores() -> None:
    row = {
        "amplitude_ssim": 0.8,
        "amplitude_ssim_at_50pct": 0.7,
        "amplitude_ssim_at_75pct": 0.75,
        "phase_ssim": 0.6,
        "phase_ssim_at_50pct": "nan",  # not a number: the phase shows its final score alone
    }
    amplitude, phase = ssim_progress(row)
    assert (amplitude.channel, amplitude.final) == ("amplitude", 0.8)
    assert amplitude.during == ((50, 0.7), (75, 0.75))
    assert (phase.channel, phase.final, phase.during) == ("phase", 0.6, ())
    assert ssim_progress({"amplitude_ssim": math.nan}) == []


def test_a_folder_from_another_engine_version_is_shown_by_setting_values(tmp_path: Path) -> None:
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
    assert list(folder.rows) == [old_id] and folder.other_engine == 1 and folder.total == 4
    assert folder.setting(old_id) == StudySetting(32, 2, 1e6, "nll", 0)
    with pytest.raises(StudyError, match="no setting 'stranger'"):
        folder.setting("stranger")
    grid = study_grid(spec, 0, folder.ids)
    assert grid.cell_of(old_id) == (1, 1)
    assert grid.ids[0][0] == setting_id(spec, StudySetting(32, 1, 1e3, "nll", 0))
    assert folder.next_setting() == StudySetting(32, 1, 1e3, "nll", 0)
    assert [r["setting_id"] for r in folder.ordered_rows()] == [old_id]
    assert folder.reconstruction(old_id) is None  # a row without a run folder


def test_an_algorithm_axis_compares_the_network_and_the_solvers_on_the_same_data(
    tmp_path: Path,
) -> None:
    spec = StudySpec(
        N=(32,),
        gridsize=(2,),
        photons=(1e5,),
        loss=("nll",),
        seeds=(0,),
        epochs=1,
        positions=40,
        n_filters_scale=1,
        algorithms=("pinn", "rpie", "lsqml"),
        iterations=8,
    )
    settings = spec.settings()
    assert [s.label() for s in settings] == [
        "N32-g2-1e5-nll-s0",
        "N32-1e5-rpie-s0",
        "N32-1e5-lsqml-s0",
    ]
    # the network's settings keep the ids they had before the axis existed
    plain = dataclasses.replace(spec, algorithms=("pinn",))
    assert setting_id(spec, settings[0]) == setting_id(plain, settings[0])
    out = tmp_path / "study"
    result = run_study(spec, out)
    rows = {r["algorithm"]: r for r in result.rows}
    assert set(rows) == {"pinn", "rpie", "lsqml"}
    assert rows["rpie"]["iterations"] == 8 and rows["rpie"]["steps"] == 8
    # the network's decoder and validation are columns of its row, not of a solver's
    assert rows["pinn"]["two_decoders"] is False and rows["pinn"]["validation"] == "pixels"
    assert rows["rpie"]["two_decoders"] is None and rows["rpie"]["validation"] is None
    header = (out / "results.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert {"two_decoders", "validation"} <= set(header)
    # a solver on 40 positions of 1e5 photons beats one training epoch by far
    assert rows["rpie"]["amplitude_ssim"] > 0.7 > rows["pinn"]["amplitude_ssim"]
    assert rows["lsqml"]["phase_ssim"] > 0.7
    # checkpoints of a solver: its scores after 50 % and 75 % of the iterations
    assert math.isfinite(rows["rpie"]["amplitude_ssim_at_50pct"])
    grid = study_grid(spec)
    assert [column_label(*c) for c in grid.columns] == ["N=32 g=2 nll", "N=32 rpie", "N=32 lsqml"]
    series = {s.label for s in dose_series(list(result.rows), "amplitude_ssim")}
    assert series == {"N=32 g=2 nll", "N=32 rpie", "N=32 lsqml"}
    # the folder reads back, and running it again resumes (nothing left to run)
    folder = StudyFolder.load(out)
    assert len(folder.rows) == 3 and folder.next_setting() is None
    assert run_study(spec, out).ran == 0


def test_a_study_json_written_before_the_algorithm_axis_still_resumes(tmp_path: Path) -> None:
    spec = dataclasses.replace(SPEC, N=(32,), gridsize=(1,), photons=(1e6,))
    out = tmp_path / "old"
    run_study(spec, out)
    marker = out / "study.json"
    stored = json.loads(marker.read_text())
    for field in ("algorithms", "iterations"):
        del stored["spec"][field]  # as an engine without the axis wrote it
    marker.write_text(json.dumps(stored))
    assert run_study(spec, out).skipped == 1


def test_a_study_with_the_default_decoder_has_other_ids_than_one_with_two_decoders() -> None:
    """A different network is a different experiment: its settings get their own ids (and
    run folders), so a resumed study never mixes the two; a stored spec without the field
    (written before it existed) reads as the two-decoder network it trained."""
    base = {"N": (32,), "gridsize": (1,), "photons": (1e6,), "loss": ("nll",), "seeds": (0,)}
    lean, legacy = StudySpec(**base), StudySpec(**base, two_decoders=True)  # type: ignore[arg-type]
    (setting,) = lean.settings()
    assert setting_id(lean, setting) != setting_id(legacy, setting)
    model_lean, _, _ = configs(lean, setting)
    model_legacy, _, _ = configs(legacy, setting)
    assert model_lean.shared_decoder and not model_legacy.shared_decoder
    stored = legacy.to_dict()
    del stored["two_decoders"]
    assert StudySpec.from_dict(stored) == legacy


def test_a_study_validated_on_pixels_has_other_ids_than_one_validated_on_groups() -> None:
    """The validation changes which patterns train, so it is part of a setting's id; a stored
    spec without the field (written before it existed) reads as the held-out groups it
    validated on, and a solver's id does not depend on it."""
    base = {"N": (32,), "gridsize": (1,), "photons": (1e6,), "loss": ("nll",), "seeds": (0,)}
    pixels = StudySpec(**base)  # type: ignore[arg-type]
    groups = StudySpec(**base, validation="groups")  # type: ignore[arg-type]
    (setting,) = pixels.settings()
    assert setting_id(pixels, setting) != setting_id(groups, setting)
    assert configs(pixels, setting)[2].validation == "pixels"
    assert configs(groups, setting)[2].validation == "groups"
    stored = groups.to_dict()
    del stored["validation"]
    assert StudySpec.from_dict(stored) == groups
    solver = {**base, "algorithms": ("rpie",)}
    (rpie,) = StudySpec(**solver).settings()  # type: ignore[arg-type]
    assert setting_id(StudySpec(**solver), rpie) == setting_id(  # type: ignore[arg-type]
        StudySpec(**solver, validation="groups"),  # type: ignore[arg-type]
        rpie,
    )
    with pytest.raises(StudyError, match="validation"):
        StudySpec(**base, validation="patterns")  # type: ignore[arg-type]
