"""Sessions without Qt: what a run folder records for the app, and reading a session back.

A session is a folder of run folders ``run-<id>`` written by the engine's one writer
(:func:`ptycho_engine.runs.write_run_folder`). The app adds to ``run.json``'s ``context``
what it needs to rebuild its :class:`~ptycho_gui.view_models.runs.RunRecord`
(:func:`run_context`): the panel's :class:`RunSettings` as JSON, the warm start, the data
file (path and sha256), the object pixel size, the position scale and the running time.
Everything else (object, metrics, history, probe, positions) is read from the files the
writer makes anyway: ``reconstruction.npz``, ``run.json`` and the product.

The functions here do file I/O: the window calls them in its task worker
(:func:`read_session_task`, :func:`copy_session_task`, :func:`count_runs_task`).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.errors import DataError
from ptycho_gui.view_models.run_settings import RunSettings
from ptycho_gui.view_models.runs import RunInfo, RunRecord

#: Prefix of a run folder's name in a session folder (``run-<id>``).
RUN_PREFIX = "run-"
#: What the app writes as ``context["command"]``.
COMMAND = "app"


def settings_to_json(settings: RunSettings) -> dict[str, Any]:
    """The settings as JSON primitives (every field, by name)."""
    return dataclasses.asdict(settings)


def settings_from_json(payload: dict[str, Any]) -> RunSettings:
    """Settings written by :func:`settings_to_json`; fields this version does not know are
    ignored, fields it misses take their defaults.

    Raises
    ------
    DataError
        Not a mapping, or a value the settings refuse (the message names the field).
    """
    if not isinstance(payload, dict):
        raise DataError(f"settings must be a JSON object, got {type(payload).__name__}")
    names = {f.name for f in dataclasses.fields(RunSettings)}
    try:
        return RunSettings(**{k: v for k, v in payload.items() if k in names})
    except (TypeError, ValueError) as exc:
        raise DataError(f"settings: {exc}") from exc


def run_context(info: RunInfo, elapsed_s: float) -> dict[str, Any]:
    """The ``context`` of the app's ``run.json`` (JSON primitives)."""
    return {
        "command": COMMAND,
        "run_id": int(info.run_id),
        "settings": settings_to_json(info.settings),
        "warm": info.warm,
        "data_path": info.data_path,
        "data_sha256": info.data_sha256,
        "pixel_size_m": info.pixel_size_m,
        "position_scale": float(info.position_scale),
        "elapsed_s": float(elapsed_s),
    }


def run_folder_id(path: Path) -> int | None:
    """The run id in a folder name ``run-<id>`` (None for other names)."""
    name = path.name
    if not name.startswith(RUN_PREFIX):
        return None
    digits = name[len(RUN_PREFIX) :]
    return int(digits) if digits.isdigit() else None


def run_folders(folder: str | Path) -> list[Path]:
    """The complete run folders (with a ``run.json``) of a session folder, by run id; a
    missing folder has none."""
    from ptycho_engine.runs import RUN_JSON

    root = Path(folder)
    if not root.is_dir():
        return []
    found = [
        (run_id, p)
        for p in root.iterdir()
        if (run_id := run_folder_id(p)) is not None and (p / RUN_JSON).is_file()
    ]
    return [p for _run_id, p in sorted(found)]


def highest_run_id(folder: str | Path) -> int:
    """The highest ``run-<id>`` in a session folder, complete or not (0 when none)."""
    root = Path(folder)
    if not root.is_dir():
        return 0
    ids = [run_id for p in root.iterdir() if (run_id := run_folder_id(p)) is not None]
    return max(ids, default=0)


def _flat_metrics(metrics: Any) -> tuple[dict[str, float], tuple[str, ...]]:
    """``run.json``'s ``metrics`` as the app's flat scores (the names of
    :func:`ptycho_engine.metrics.flat_scores`) and the report's flags."""
    from ptycho_engine.metrics.reports import CHANNELS, SCORE_NAMES

    if not isinstance(metrics, dict):
        return {}, ()
    report = metrics.get("reconstruction") or {}
    flat = {
        f"{channel}_{name}": float(report[channel][name])
        for channel in CHANNELS
        for name in SCORE_NAMES
        if channel in report and report[channel].get(name) is not None
    }
    flags = tuple(str(f) for f in metrics.get("flags", report.get("flags", [])))
    return flat, flags


def record_from_run_folder(folder: str | Path) -> RunRecord:
    """Rebuild the app's record of a run from its folder.

    Returns
    -------
    RunRecord
        With its settings, state, metrics and flags, history, object, valid region, origin,
        probe modes (from the product; ``probe`` is the strongest mode) and scan positions
        (in the frame of the data, as a live record holds them).

    Raises
    ------
    DataError
        A missing or malformed file, or a folder the app did not write (no settings in its
        ``run.json`` context).
    """
    from ptycho_engine import jsonio
    from ptycho_engine.io import read_product
    from ptycho_engine.runs import PRODUCT, RUN_JSON, read_run

    path = Path(folder)
    if "settings" not in (jsonio.read_json(path / RUN_JSON).get("context") or {}):
        raise DataError(
            f"{path}: not a run of the app (its run.json holds no settings): open it with "
            "ptycho-engine instead"
        )
    info, image = read_run(path)
    context = info.get("context") or {}
    try:
        settings = settings_from_json(context["settings"])
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from exc
    run_id = context.get("run_id", run_folder_id(path))
    if not isinstance(run_id, int):
        raise DataError(f"{path}: no run id in its name or its run.json")
    metrics, flags = _flat_metrics(info.get("metrics"))
    history = [
        (int(h["epoch"]), float(h["loss"]), float(h["val_loss"]))
        for h in info.get("history", [])
        if int(h.get("epoch", 0)) > 0
    ]
    product = read_product(path / PRODUCT)
    modes = np.asarray(product.probe, np.complex64)
    origin = (float(image.origin_px[0]), float(image.origin_px[1]))
    data = info.get("input") or {}
    pixel = context.get("pixel_size_m", data.get("pixel_size_m"))
    elapsed = context.get("elapsed_s", (info.get("timings_s") or {}).get("total", math.nan))
    scale = context.get("position_scale")
    return RunRecord(
        run_id,
        settings,
        warm=str(context.get("warm", "scratch")),
        state=str(info.get("state", "finished")),
        elapsed_s=float(elapsed),
        probe=modes[0] if modes.size else None,
        positions_px=np.asarray(product.positions_px, np.float64) + np.asarray(origin),
        object=image.object,
        valid=image.valid,
        origin_px=origin,
        metrics=metrics,
        flags=flags,
        history=history,
        pixel_size_m=None if pixel is None else float(pixel),
        data_path=str(context.get("data_path") or data.get("path") or ""),
        run_dir=str(path),
        probe_modes=modes if modes.size else None,
        data_sha256=str(context.get("data_sha256") or data.get("sha256") or ""),
        position_scale=None if scale is None else float(scale),
        energy_ev=_positive(data.get("energy_ev")),
        distance_m=_positive(data.get("distance_m")),
    )


def _positive(value: Any) -> float | None:
    """A geometry value of ``run.json`` (None, NaN or 0 when unknown) as a float or None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


@dataclass(frozen=True, eq=False)
class SessionContents:
    """What a session folder holds.

    Attributes
    ----------
    folder : str
    records : list of RunRecord
        One per readable run folder, by run id.
    problems : tuple of str
        One line per run folder that could not be read, naming it and why.
    highest_id : int
        The highest run id of the folder (unreadable folders included): new runs are numbered
        after it, so that none overwrites a folder.
    """

    folder: str
    records: list[RunRecord]
    problems: tuple[str, ...]
    highest_id: int


def read_session(
    folder: str | Path,
    progress: Callable[[int, int], None] | None = None,
    stop: Any = None,
) -> SessionContents:
    """Read every complete run folder of a session folder.

    Raises
    ------
    DataError
        ``folder`` is not a folder.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder: choose a session folder (of run-<id> folders)")
    folders = run_folders(root)
    records: list[RunRecord] = []
    problems: list[str] = []
    for k, path in enumerate(folders):
        if stop is not None and stop.is_set():
            break
        try:
            records.append(record_from_run_folder(path))
        except (DataError, OSError, KeyError, TypeError, ValueError) as exc:
            problems.append(f"{path.name}: {exc}")
        if progress is not None:
            progress(k + 1, len(folders))
    return SessionContents(str(root), records, tuple(problems), highest_run_id(root))


def read_session_task(folder: str | Path) -> Callable[[Any, Any], SessionContents]:
    """A task for the task worker: :func:`read_session` of ``folder``."""
    target = Path(folder)

    def read(progress: Any, stop: Any) -> SessionContents:
        return read_session(target, progress, stop)

    return read


def count_runs_task(folder: str | Path) -> Callable[[Any, Any], tuple[str, int]]:
    """A task for the task worker: ``(folder, complete run folders in it)``."""
    target = Path(folder)

    def count(_progress: Any, _stop: Any) -> tuple[str, int]:
        return str(target), len(run_folders(target))

    return count


def copy_session(
    source: str | Path,
    target: str | Path,
    progress: Callable[[int, int], None] | None = None,
    stop: Any = None,
) -> tuple[str, int]:
    """Copy the complete run folders of ``source`` into the new folder ``target``.

    A run folder still being written (no ``run.json`` yet) is not copied.

    Returns
    -------
    (str, int)
        The target folder and the number of runs copied.

    Raises
    ------
    DataError
        ``target`` exists and is not empty, lies inside ``source``, or ``source`` holds no run.
    """
    src, dst = Path(source), Path(target)
    folders = run_folders(src)
    if not folders:
        raise DataError(f"{src}: this session holds no finished run yet: nothing to save")
    if dst.resolve().is_relative_to(src.resolve()):
        raise DataError(f"{dst}: lies inside the session folder {src}: choose another folder")
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise DataError(f"{dst}: exists and is not empty: choose a new folder name")
    dst.mkdir(parents=True, exist_ok=True)
    for k, folder in enumerate(folders):
        if stop is not None and stop.is_set():
            break
        shutil.copytree(folder, dst / folder.name)
        if progress is not None:
            progress(k + 1, len(folders))
    return str(dst), len(run_folders(dst))


def copy_session_task(
    source: str | Path, target: str | Path
) -> Callable[[Any, Any], tuple[str, int]]:
    """A task for the task worker: :func:`copy_session`."""
    src, dst = Path(source), Path(target)

    def copy(progress: Any, stop: Any) -> tuple[str, int]:
        return copy_session(src, dst, progress, stop)

    return copy
