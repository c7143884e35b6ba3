"""Running a study: the local and dask executors, the :func:`study` generator and
:func:`run_study`.

``"local"`` runs the settings one after another in the calling process; ``"dask"`` submits one
task per setting to a ``distributed`` cluster (a ``LocalCluster`` of single-thread worker
processes, or an existing scheduler) and writes each result as it arrives. The tasks return
arrays; every file is written by the calling process, so the workers need no access to the
output folder and the files do not depend on the executor.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.study.data import ground_truth
from ptycho_engine.study.figures import write_figures
from ptycho_engine.study.runner import (
    SettingOutcome,
    limit_tensorflow_threads,
    run_setting,
    setting_id,
)
from ptycho_engine.study.spec import StudyError, StudySetting, StudySpec, is_int
from ptycho_engine.study.store import (
    RESULTS_JSON,
    prepare_folder,
    read_results,
    run_folder,
    write_results,
    write_setting_folder,
)

EXECUTORS = ("local", "dask")


@dataclass(frozen=True)
class StudyProgress:
    """Yielded after every finished setting (its files are already written).

    Attributes
    ----------
    setting : StudySetting
    setting_id : str
    row : dict
        The results row (non-finite numbers as floats).
    done, total : int
        Finished settings of the study (including those of earlier runs) and all settings.
    elapsed_s : float
        Seconds since this run of the study started.
    """

    setting: StudySetting
    setting_id: str
    row: dict[str, Any]
    done: int
    total: int
    elapsed_s: float


@dataclass(frozen=True)
class StudyResult:
    """The end of a study run.

    Attributes
    ----------
    out : Path
    rows : tuple of dict
        Every finished row, in spec order.
    ran : int
        Settings run now.
    skipped : int
        Settings found finished in the folder and not run again.
    stopped : bool
        True when the stop event ended the run early.
    failures : tuple of (str, str)
        ``(setting_id, message)`` of settings that raised; they are not in ``rows``.
    figures : tuple of Path
        Figures written (none unless every setting is finished).
    """

    out: Path
    rows: tuple[dict[str, Any], ...]
    ran: int
    skipped: int
    stopped: bool
    failures: tuple[tuple[str, str], ...] = ()
    figures: tuple[Path, ...] = field(default_factory=tuple)


_Outcomes = Iterator[tuple[StudySetting, SettingOutcome | BaseException]]


def _dask_task(spec: StudySpec, setting: StudySetting) -> SettingOutcome:
    """One setting on a dask worker: one TensorFlow thread, then :func:`run_setting`."""
    limit_tensorflow_threads(1)
    return run_setting(spec, setting)


def _local_outcomes(
    spec: StudySpec, todo: Sequence[StudySetting], stop_event: threading.Event | None
) -> _Outcomes:
    truths: dict[int, np.ndarray] = {}
    for setting in todo:
        if stop_event is not None and stop_event.is_set():
            return
        try:
            if setting.seed not in truths:
                truths = {setting.seed: ground_truth(spec, setting.seed)}
            yield setting, run_setting(spec, setting, truths[setting.seed], stop_event)
        except Exception as exc:  # recorded as a failure; the others still run
            yield setting, exc


def _dask_outcomes(
    spec: StudySpec,
    todo: Sequence[StudySetting],
    stop_event: threading.Event | None,
    scheduler: str | None,
    workers: int,
) -> _Outcomes:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise StudyError(
            "the dask executor needs the 'distributed' package: pip install 'dask[distributed]'"
        ) from exc
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            # any free port: a fixed one (8787) clashes with another cluster on the machine
            dashboard_address=":0",
        )
        client = Client(cluster)
    else:
        client = Client(scheduler)
    futures = []
    try:
        futures = [client.submit(_dask_task, spec, s, pure=False) for s in todo]
        by_key = {f.key: s for f, s in zip(futures, todo, strict=True)}
        for future in as_completed(futures):
            setting = by_key[future.key]
            try:
                outcome = future.result()
            except Exception as exc:  # a failed task or a lost worker
                yield setting, exc
            else:
                yield setting, outcome
            future.release()
            if stop_event is not None and stop_event.is_set():
                return
    finally:
        for future in futures:
            future.cancel()
        client.close()
        if cluster is not None:
            cluster.close()


def pending_settings(spec: StudySpec, out: str | Path) -> list[StudySetting]:
    """The settings of ``spec`` that a run of :func:`study` into ``out`` would run, in the
    order it runs them (those missing from the folder's results, by this engine's ids)."""
    done = {r.get("setting_id") for r in read_results(Path(out))}
    return [s for s in spec.settings() if setting_id(spec, s) not in done]


def study(
    spec: StudySpec,
    out: str | Path,
    executor: str = "local",
    scheduler: str | None = None,
    workers: int = 2,
    stop_event: threading.Event | None = None,
) -> Generator[StudyProgress, None, StudyResult]:
    """Run (or resume) a study, yielding after every finished setting.

    Parameters
    ----------
    spec : StudySpec
    out : path
        Study folder: created when missing; when it holds the same spec, only the settings
        missing from its ``results.json`` run; a different spec raises :class:`StudyError`.
    executor : {"local", "dask"}
        ``"local"``: one setting after another in this process. ``"dask"``: one task per
        setting on a ``distributed`` cluster; results are written as they arrive.
    scheduler : str, optional
        Address of a running dask scheduler (``executor="dask"`` only); default: start a
        ``LocalCluster`` of ``workers`` processes with one thread each.
    workers : int
        Worker processes of the LocalCluster.
    stop_event : threading.Event, optional
        Checked between settings (and passed to training by the local executor): when set,
        the study ends after the current setting(s); unfinished settings are not recorded.

    Yields
    ------
    StudyProgress

    Returns
    -------
    StudyResult
        Figures are written when every setting is finished.
    """
    if executor not in EXECUTORS:
        raise StudyError(f"executor {executor!r} is unknown; choose one of {EXECUTORS}")
    if scheduler is not None and executor != "dask":
        raise StudyError("a scheduler address needs executor 'dask'")
    if not is_int(workers) or workers < 1:
        raise StudyError(f"workers = {workers!r} is invalid: expected an integer >= 1")
    start = time.perf_counter()
    out = Path(out)
    prepare_folder(out, spec)
    settings = spec.settings()
    ids = {setting_id(spec, s): s for s in settings}
    stored = read_results(out)
    foreign = [str(r.get("setting_id")) for r in stored if r.get("setting_id") not in ids]
    if foreign:
        # Rewriting the results would drop these rows: refuse, and change nothing.
        listed = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
        raise StudyError(
            f"{out / RESULTS_JSON} holds {len(foreign)} result(s) that are not settings of this "
            f"study as this engine defines them ({listed}): the engine's settings or version "
            "changed since they ran. Nothing was changed; choose another --out folder to run "
            "the study again"
        )
    rows = {r["setting_id"]: r for r in stored}
    # Rewrite both files from results.json: a crash between the two renames of an earlier run
    # may have left results.csv one row short.
    order = list(ids)
    write_results(out, spec, rows, order)
    skipped = len(rows)
    todo = [s for i, s in ids.items() if i not in rows]
    if executor == "local":
        outcomes = _local_outcomes(spec, todo, stop_event)
    else:
        outcomes = _dask_outcomes(spec, todo, stop_event, scheduler, workers)
    failures: list[tuple[str, str]] = []
    ran = 0
    stopped = False
    for setting, outcome in outcomes:
        sid = setting_id(spec, setting)
        if isinstance(outcome, BaseException):
            failures.append((sid, f"{type(outcome).__name__}: {outcome}"))
            continue
        if outcome.stopped:
            stopped = True
            break
        write_setting_folder(run_folder(out, sid), outcome)
        rows[sid] = outcome.row
        write_results(out, spec, rows, order)
        ran += 1
        yield StudyProgress(
            setting, sid, outcome.row, len(rows), len(settings), time.perf_counter() - start
        )
    stopped = stopped or (stop_event is not None and stop_event.is_set())
    ordered = tuple(rows[i] for i in ids if i in rows)
    figures: tuple[Path, ...] = ()
    if len(rows) == len(settings):
        figures = tuple(write_figures(out, spec))
    return StudyResult(out, ordered, ran, skipped, stopped, tuple(failures), figures)


def run_study(
    spec: StudySpec,
    out: str | Path,
    executor: str = "local",
    scheduler: str | None = None,
    workers: int = 2,
    on_progress: Callable[[StudyProgress], object] | None = None,
    stop_event: threading.Event | None = None,
) -> StudyResult:
    """Run :func:`study` to the end, calling ``on_progress`` after every setting.

    Raises
    ------
    StudyError
        When some settings failed (after the others were run and written); the message
        names each failed setting and its error.
    """
    gen = study(spec, out, executor, scheduler, workers, stop_event)
    while True:
        try:
            progress = next(gen)
        except StopIteration as stop:
            result: StudyResult = stop.value
            break
        if on_progress is not None:
            on_progress(progress)
    if result.failures:
        listed = "; ".join(f"{sid}: {message}" for sid, message in result.failures)
        raise StudyError(
            f"{len(result.failures)} of {len(spec.settings())} settings failed ({listed}); "
            "the others are in the results; run the same command again to retry them"
        )
    return result
