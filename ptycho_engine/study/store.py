"""The files of a study folder: ``study.json``, ``results.json`` / ``results.csv`` and
``runs/<setting-id>/``.

Every file is written atomically, in the engine's one JSON convention
(:mod:`ptycho_engine.jsonio`: non-finite numbers as the strings ``"nan"``, ``"inf"``,
``"-inf"``); CSV cells hold ``nan``/``inf``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ptycho_engine import jsonio
from ptycho_engine.study.columns import COLUMNS
from ptycho_engine.study.runner import SettingOutcome, setting_id
from ptycho_engine.study.spec import STUDY_FORMAT, StudyError, StudySpec

STUDY_JSON = "study.json"
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
RUNS_DIR = "runs"
DOSE_FIGURE = "dose_response.png"
CONVERGENCE_FIGURE = "convergence.png"
GRID_FIGURES = {
    "amplitude": "reconstructions_amplitude.png",
    "phase": "reconstructions_phase.png",
}


def run_folder(out: str | Path, sid: str) -> Path:
    """The run folder of a setting in a study folder: ``out/runs/<setting-id>``."""
    return Path(out) / RUNS_DIR / sid


def _write_text(path: Path, text: str) -> None:
    from ptycho_engine.runs import atomic_write

    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _csv_text(rows: Sequence[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in COLUMNS])
    return buffer.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    return str(value)


def write_results(
    out: Path,
    spec: StudySpec,
    rows: dict[str, dict[str, Any]],
    order: Sequence[str] | None = None,
) -> None:
    """Write ``results.json`` then ``results.csv``, each atomically, rows in spec order.

    ``rows`` maps setting ids to rows; ids that are not in ``spec`` are dropped. ``order`` is
    the spec's ids in order when already computed.
    """
    ids = order if order is not None else [setting_id(spec, s) for s in spec.settings()]
    ordered = [rows[i] for i in ids if i in rows]
    payload = {
        "format": STUDY_FORMAT,
        "spec": spec.to_dict(),
        "columns": list(COLUMNS),
        "rows": [{c: r.get(c) for c in COLUMNS} for r in ordered],
    }
    _write_text(out / RESULTS_JSON, jsonio.dumps(payload) + "\n")
    _write_text(out / RESULTS_CSV, _csv_text(ordered))


def read_results(out: Path) -> list[dict[str, Any]]:
    """Rows of a study folder's ``results.json`` (non-finite numbers as floats); [] if none.

    Raises
    ------
    StudyError
        The file exists but is not a study results file.
    """
    path = Path(out) / RESULTS_JSON
    if not path.exists():
        return []
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        rows = payload["rows"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise StudyError(f"{path}: not a study results file ({exc}); move it away") from exc
    return [{k: jsonio.from_json(v) for k, v in row.items()} for row in rows]


def _spec_difference(stored: dict[str, Any], wanted: dict[str, Any]) -> str:
    keys = sorted(set(stored) | set(wanted))
    return "; ".join(
        f"{k}: stored {stored.get(k)!r}, requested {wanted.get(k)!r}"
        for k in keys
        if stored.get(k) != wanted.get(k)
    )


def prepare_folder(out: Path, spec: StudySpec) -> None:
    """Create the study folder, or check that it holds this very spec."""
    marker = out / STUDY_JSON
    wanted = spec.to_dict()
    if marker.exists():
        try:
            stored = json.loads(marker.read_text(encoding="utf-8"))["spec"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise StudyError(f"{marker}: not a study spec file ({exc})") from exc
        # a study.json written before a field existed holds that field's default (a spec
        # that does not read is reported as a difference below)
        with contextlib.suppress(StudyError, TypeError):
            stored = StudySpec.from_dict(stored).to_dict()
        if stored != wanted:
            raise StudyError(
                f"{out} holds a different study ({_spec_difference(stored, wanted)}); "
                "resume only with the same settings, or choose another --out folder"
            )
        return
    if out.exists() and not out.is_dir():
        raise StudyError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise StudyError(f"{out}: folder is not empty and holds no {STUDY_JSON}; choose another")
    out.mkdir(parents=True, exist_ok=True)
    _write_text(marker, jsonio.dumps({"format": STUDY_FORMAT, "spec": wanted}))


def write_setting_folder(folder: Path, outcome: SettingOutcome) -> None:
    """Write one setting's run folder with the engine's one run-folder writer
    (:func:`ptycho_engine.runs.write_run_folder`); its ``run.json`` context holds the
    setting's id and results row."""
    from ptycho_engine import runs

    context = {"command": "study", "setting_id": outcome.setting_id, "row": outcome.row}
    runs.write_run_folder(folder, outcome.result, context, title=outcome.setting_id)


def read_spec(out: str | Path) -> StudySpec:
    """The :class:`StudySpec` of a study folder (its ``study.json``).

    Raises
    ------
    StudyError
        The folder holds no study, or its ``study.json`` is not a study spec.
    """
    marker = Path(out) / STUDY_JSON
    if not marker.is_file():
        raise StudyError(f"{out}: not a study folder (no {STUDY_JSON})")
    try:
        stored = json.loads(marker.read_text(encoding="utf-8"))["spec"]
        if not isinstance(stored, dict):
            raise TypeError(f"'spec' is a {type(stored).__name__}, expected an object")
        return StudySpec.from_dict(stored)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise StudyError(f"{marker}: not a study spec file ({exc})") from exc
