"""Qt-free parts of sessions, captions, shortcuts and the About text; the app's check for the
system libraries of Qt's xcb platform; the run table's live duration and column sizes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QHeaderView

from ptycho_engine.errors import DataError
from ptycho_gui import app
from ptycho_gui.view_models.run_settings import RunSettings
from ptycho_gui.view_models.run_table_model import COLUMNS, RunTableModel
from ptycho_gui.view_models.runs import RunInfo, RunRecord
from ptycho_gui.view_models.session import (
    copy_session,
    highest_run_id,
    read_session,
    record_from_run_folder,
    run_context,
    run_folders,
    settings_from_json,
    settings_to_json,
)
from ptycho_gui.view_models.texts import (
    SHORTCUTS,
    about_text,
    duration_text,
    run_caption,
    shortcut_keys,
    shortcuts_text,
    start_hint,
)
from ptycho_gui.widgets.run_table import RunTableWidget
from tests.gui.conftest import TINY

# ---------------------------------------------------------------------------- texts


def test_captions_name_the_run_and_its_epoch() -> None:
    assert run_caption(3, RunSettings(N=64, gridsize=2), 12) == "#3 PINN N=64 g=2 · epoch 12"
    rpie = RunSettings(N=64, algorithm="rpie")
    assert run_caption(4, rpie, 40) == "#4 rPIE N=64 · it. 40"
    assert run_caption(4, rpie) == "#4 rPIE N=64"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.04, "0.0 s"), (12.34, "12.3 s"), (75.2, "1 min 15 s"), (3725, "1 h 02 min"), (None, "-")],
)
def test_durations_read_as_time(seconds: float | None, text: str) -> None:
    assert duration_text(seconds) == text


def test_shortcuts_are_listed_once_each() -> None:
    assert shortcut_keys("start") == ("Ctrl+R", "F5")
    assert shortcut_keys("stop") == ("Esc", "Ctrl+.")
    assert shortcut_keys("compare") == ("Ctrl+K",)
    assert (shortcut_keys("next_run"), shortcut_keys("previous_run")) == (
        ("Ctrl+Down",),
        ("Ctrl+Up",),
    )
    keys = [k for _name, _text, ks in SHORTCUTS for k in ks]
    assert len(keys) == len(set(keys))
    lines = shortcuts_text().splitlines()
    assert lines[0] == "Ctrl+R, F5: Start a run with the current settings"
    assert len(lines) == len(SHORTCUTS)
    with pytest.raises(KeyError, match="no shortcut"):
        shortcut_keys("fly")
    assert start_hint("/data/scan 7.cxi") == "Press Start (Ctrl+R) to reconstruct scan 7.cxi"


def test_about_text_names_versions_and_provenance() -> None:
    versions = {"ptycho-explorer": "0.3", "PySide6": "6.8.1", "pyqtgraph": "0.13.7"}
    provenance = {
        "path": "/beamline/scan.cxi",
        "format": "cxi",
        "sha256": "ab" * 32,
        "steps": ["3 NaN/infinite pixels set to 0 and marked bad", "cropped to 128"],
    }
    lines = about_text(versions, provenance).splitlines()
    assert "  PySide6 6.8.1" in lines and "  pyqtgraph 0.13.7" in lines
    assert "  ptycho-explorer 0.3" in lines
    assert "  path: /beamline/scan.cxi" in lines and "  format: cxi" in lines
    assert f"  sha256: {'ab' * 32}" in lines
    assert lines[-2:] == [
        "    - 3 NaN/infinite pixels set to 0 and marked bad",
        "    - cropped to 128",
    ]
    bare = about_text(versions, {"path": "x.npz"}).splitlines()
    assert "  sha256: unknown" in bare and bare[-1].startswith("  preparation steps: none")
    assert about_text(versions, None).splitlines()[-1] == "  none loaded"


# ---------------------------------------------------------------------------- sessions


def test_settings_round_trip_through_json() -> None:
    settings = RunSettings(N=32, algorithm="lsqml", iterations=7, noise_model="poisson")
    payload = json.loads(json.dumps(settings_to_json(settings)))
    assert settings_from_json(payload) == settings
    # a field of a later version is ignored; a missing one takes its default
    payload["a_future_field"] = 3
    del payload["epochs"]
    assert settings_from_json(payload) == settings.replace(epochs=RunSettings().epochs)
    with pytest.raises(DataError, match="gridsize"):
        settings_from_json({**payload, "gridsize": 9})


def test_the_run_context_holds_what_the_record_needs() -> None:
    info = RunInfo(
        7, TINY, "cached", None, None, 2e-8, "/d/x.npz", data_sha256="ff", position_scale=0.5
    )
    context = json.loads(json.dumps(run_context(info, 12.5)))
    assert context["command"] == "app" and context["run_id"] == 7
    assert settings_from_json(context["settings"]) == TINY
    assert (context["warm"], context["data_path"], context["data_sha256"]) == (
        "cached",
        "/d/x.npz",
        "ff",
    )
    assert (context["pixel_size_m"], context["position_scale"], context["elapsed_s"]) == (
        2e-8,
        0.5,
        12.5,
    )


def test_reading_a_session_names_the_folders_it_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a folder"):
        read_session(tmp_path / "missing")
    (tmp_path / "run-2").mkdir()
    (tmp_path / "run-2" / "run.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "run-5").mkdir()  # still being written: no run.json
    (tmp_path / "run-5" / "reconstruction.npz").write_bytes(b"")
    cli = tmp_path / "run-3"
    cli.mkdir()
    (cli / "run.json").write_text(json.dumps({"context": {"command": "train"}}), "utf-8")
    (tmp_path / "notes").mkdir()
    assert [p.name for p in run_folders(tmp_path)] == ["run-2", "run-3"]
    assert highest_run_id(tmp_path) == 5  # new runs never overwrite run-5
    with pytest.raises(DataError, match="not a run of the app"):
        record_from_run_folder(cli)
    contents = read_session(tmp_path)
    assert contents.records == [] and contents.highest_id == 5
    assert [p.split(":")[0] for p in contents.problems] == ["run-2", "run-3"]
    assert "not valid JSON" in contents.problems[0]


def test_copying_a_session_refuses_to_overwrite(tmp_path: Path) -> None:
    source = tmp_path / "session"
    with pytest.raises(DataError, match="no finished run"):
        copy_session(source, tmp_path / "copy")
    for k in (1, 2):
        (source / f"run-{k}").mkdir(parents=True)
        (source / f"run-{k}" / "run.json").write_text("{}", encoding="utf-8")
    (source / "run-3").mkdir()  # being written: not copied
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "file").write_text("x", encoding="utf-8")
    with pytest.raises(DataError, match="not empty"):
        copy_session(source, busy)
    with pytest.raises(DataError, match="inside the session"):
        copy_session(source, source / "backup")
    assert copy_session(source, tmp_path / "copy") == (str(tmp_path / "copy"), 2)
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["run-1", "run-2"]


# ---------------------------------------------------------------------------- run table


def test_the_duration_counts_while_a_run_goes(qtbot) -> None:
    model = RunTableModel()
    col = [name for name, _value in COLUMNS].index("Duration")
    running = RunRecord(1, TINY, state="running", started_at=time.monotonic() - 75.0)
    queued = RunRecord(2, TINY, state="queued")
    done = RunRecord(3, TINY, state="finished", elapsed_s=12.34)
    for record in (done, queued, running):
        model.add(record)
    assert [r.run_id for r in model.records] == [1, 2, 3]  # in run order
    texts = [model.index(row, col).data() for row in range(3)]
    assert texts[0].startswith("1 min 1") and texts[1:] == ["-", "12.3 s"]
    state = [name for name, _value in COLUMNS].index("State")
    assert [model.index(r, state).data() for r in range(3)] == ["running", "queued", "finished"]
    with qtbot.waitSignal(model.dataChanged, timeout=5000) as tick:
        pass  # redrawn once a second while a run goes
    assert tick.args[0].column() == col and tick.args[0].row() == 0
    assert model.remove(2) and not model.remove(2)
    assert [r.run_id for r in model.records] == [1, 3]


def test_columns_fit_their_content_and_the_notes_stretch(qtbot) -> None:
    widget = RunTableWidget(RunTableModel())
    qtbot.addWidget(widget)
    header = widget.table.horizontalHeader()
    names = [name for name, _value in COLUMNS]
    assert names[-1] == "Notes"
    assert header.sectionResizeMode(len(names) - 1) == QHeaderView.ResizeMode.Stretch
    frc = names.index("Phase FRC 1/7 (px)")
    assert header.sectionResizeMode(frc) == QHeaderView.ResizeMode.ResizeToContents


# ---------------------------------------------------------------------------- the app


def _missing(*names: str):
    def find(name: str) -> str | None:
        return None if name in names else f"lib{name}.so"

    return find


def test_missing_xcb_libraries_are_named_with_the_apt_get_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(app.ctypes.util, "find_library", _missing("xcb-icccm", "xcb-cursor"))
    assert app.missing_xcb_packages() == ["libxcb-icccm4", "libxcb-cursor0"]
    message = app.system_library_problem({"QT_QPA_PLATFORM": "xcb"}, "linux")
    assert len(message.splitlines()) == 1
    assert "missing: libxcb-icccm4 libxcb-cursor0;" in message
    assert (
        "sudo apt-get install libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 "
        "libxcb-render-util0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0" in message
    )
    # xcb is Qt's default on Linux outside a Wayland session
    assert app.system_library_problem({}, "linux") == message
    # no check where Qt does not load the xcb plugin, or when asked not to
    assert app.system_library_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") == ""
    assert app.system_library_problem({"QT_QPA_PLATFORM": "xcb"}, "darwin") == ""
    wayland = {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}
    assert app.system_library_problem(wayland, "linux") == ""
    skip = {"QT_QPA_PLATFORM": "xcb", app.SKIP_LIBRARY_CHECK: "1"}
    assert app.system_library_problem(skip, "linux") == ""
    # the app stops with status 2 before Qt starts, and says why in one line
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(sys, "platform", "linux")
    assert app.main(["--quit-when-done"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == message


def test_nothing_is_missing_when_every_library_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.ctypes.util, "find_library", _missing())
    assert app.missing_xcb_packages() == []
    assert app.system_library_problem({"QT_QPA_PLATFORM": "xcb"}, "linux") == ""


def test_the_session_view_models_do_not_import_qt() -> None:
    code = (
        "import sys, ptycho_gui.view_models.session, ptycho_gui.view_models.texts; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == "[]"


def test_record_metrics_survive_nan_and_inf(tmp_path: Path) -> None:
    from ptycho_gui.view_models.session import _flat_metrics

    report = {
        channel: {name: v for name, v in zip(names, values, strict=True)}
        for channel, names, values in (
            ("amplitude", ("ssim", "psnr", "frc_1_7_px"), (0.5, math.inf, 2.0)),
            ("phase", ("ssim", "psnr", "frc_1_7_px"), (math.nan, 10.0, 3.0)),
        )
    }
    flat, flags = _flat_metrics({"reconstruction": report, "flags": ["a flag"]})
    assert flat["amplitude_psnr"] == math.inf and math.isnan(flat["phase_ssim"])
    assert flags == ("a flag",)
    assert _flat_metrics(None) == ({}, ())
    assert np.isfinite(flat["phase_frc_1_7_px"])
