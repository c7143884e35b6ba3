"""Reading a study folder and summarising its results, for the figures and for the app.

* :class:`StudyFolder`: a folder's spec and finished rows, matched to the spec's settings by
  their values, so that a folder written by another engine version (whose setting ids hash
  other configuration fields) can still be shown;
* :func:`study_grid`: the layout of the reconstruction grid (rows dose, columns N, gridsize
  and loss) with each cell's setting id;
* :func:`dose_series`, :func:`convergence_series`, :func:`chance_mean`: means and standard
  deviations over seeds, one series per (N, gridsize, loss);
* :func:`ssim_progress`: a row's SSIMs at the end and during training;
* :func:`column_label`, :func:`dose_row_label`: the titles of the grid's columns and rows
  (doses are labelled by :func:`~ptycho_engine.study.spec.dose_label`).

numpy only: no Qt, no matplotlib, no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np

from ptycho_engine.data import StitchSnapshot
from ptycho_engine.study.columns import CHECKPOINT_FRACTIONS, checkpoint_column
from ptycho_engine.study.runner import setting_id
from ptycho_engine.study.spec import StudyError, StudySetting, StudySpec, dose_label
from ptycho_engine.study.store import read_results, read_spec, run_folder

#: Metrics a dose plot offers: results column -> axis label.
DOSE_METRICS: dict[str, str] = {
    "amplitude_ssim": "amplitude SSIM",
    "phase_ssim": "phase SSIM",
    "amplitude_psnr": "amplitude PSNR (dB)",
    "phase_psnr": "phase PSNR (dB)",
    "amplitude_frc_1_7_px": "amplitude FRC 1/7 resolution (px)",
    "phase_frc_1_7_px": "phase FRC 1/7 resolution (px)",
}
#: Metrics drawn against a logarithmic axis: resolutions in pixels, where a few pixels and the
#: chance level (near the image size) must both stay readable.
LOG_AXIS_METRICS = frozenset({"amplitude_frc_1_7_px", "phase_frc_1_7_px"})

#: Fractions of the epochs a convergence series shows: the checkpoints and the end.
CONVERGENCE_FRACTIONS = (*CHECKPOINT_FRACTIONS, 1.0)
#: A line of the plots: (N, gridsize, loss).
Line = tuple[int, int, str]


def finite(values: Iterable[Any]) -> list[float]:
    """The finite numbers among ``values`` as floats (None, strings, bools and NaN dropped)."""
    return [
        float(v)
        for v in values
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]


def line_of(row: dict[str, Any]) -> Line:
    """The (N, gridsize, loss) of a results row."""
    return int(row["N"]), int(row["gridsize"]), str(row["loss"])


def column_label(n: int, gridsize: int, loss: str) -> str:
    """Title of a grid column and name of a plot line, e.g. ``"N=64 g=2 nll"``, or
    ``"N=64 rpie"`` for an iterative solver (gridsize 0)."""
    if gridsize == 0:
        return f"N={n} {loss}"
    return f"N={n} g={gridsize} {loss}"


def dose_row_label(photons: float) -> str:
    """Title of a grid row, e.g. ``"1e4 ph"``."""
    return f"{dose_label(photons)} ph"


# --------------------------------------------------------------------------------------------
# The reconstruction grid
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyGrid:
    """Cells of the reconstruction grid of one seed: rows dose (ascending), columns (N, g, loss).

    Attributes
    ----------
    doses : tuple of float
    columns : tuple of (int, int, str)
    seed : int
    ids : tuple of tuple of str
        ``ids[row][column]``: the setting id of each cell.
    """

    doses: tuple[float, ...]
    columns: tuple[Line, ...]
    seed: int
    ids: tuple[tuple[str, ...], ...]

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.doses), len(self.columns)

    def cell_of(self, sid: str) -> tuple[int, int] | None:
        """``(row, column)`` of a setting id, or None when it is not in this grid."""
        for i, row in enumerate(self.ids):
            if sid in row:
                return i, row.index(sid)
        return None


def _id_of(spec: StudySpec, ids: dict[StudySetting, str] | None, setting: StudySetting) -> str:
    """The id a folder gave ``setting`` (``ids``, by setting values), else this engine's."""
    return (ids or {}).get(setting) or setting_id(spec, setting)


def study_grid(
    spec: StudySpec, seed: int | None = None, ids: dict[StudySetting, str] | None = None
) -> StudyGrid:
    """The grid of ``seed`` (default: the spec's first seed).

    ``ids`` gives the id of each setting found in a folder (:attr:`StudyFolder.ids`); other
    settings get the id this engine computes.

    Raises
    ------
    StudyError
        ``seed`` is not one of the spec's seeds.
    """
    seed = spec.seeds[0] if seed is None else seed
    if seed not in spec.seeds:
        raise StudyError(f"seed {seed} is not one of the study's seeds {spec.seeds}")
    doses = tuple(sorted(spec.photons))
    columns = tuple(dict.fromkeys((s.N, s.gridsize, s.loss) for s in spec.settings()))
    cells = tuple(
        tuple(_id_of(spec, ids, StudySetting(n, g, dose, loss, seed)) for n, g, loss in columns)
        for dose in doses
    )
    return StudyGrid(doses, columns, seed, cells)


# --------------------------------------------------------------------------------------------
# Series over seeds
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One line of a plot: a metric's mean and standard deviation over seeds at each x, for
    one (N, gridsize, loss).

    Attributes
    ----------
    label : str
        :func:`column_label` of the line.
    x : tuple of float
        Ascending; an x without a finite value is left out.
    means, stds : tuple of float
        Mean and (population) standard deviation over the seeds finished at each x.
    counts : tuple of int
        Seeds behind each point.
    """

    label: str
    x: tuple[float, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    counts: tuple[int, ...]


def _series(line: Line, points: Iterable[tuple[float, list[float]]]) -> Series:
    """The series of ``line`` through ``(x, values over seeds)``; an x without values is left
    out."""
    kept = [(x, values) for x, values in points if values]
    return Series(
        column_label(*line),
        tuple(x for x, _ in kept),
        tuple(float(np.mean(v)) for _, v in kept),
        tuple(float(np.std(v)) for _, v in kept),
        tuple(len(v) for _, v in kept),
    )


def dose_series(rows: Sequence[dict[str, Any]], metric: str) -> list[Series]:
    """A results column against dose (``x``: photons per pattern), one series per
    (N, gridsize, loss) in sorted order, including series without any finite value.

    Raises
    ------
    StudyError
        ``metric`` is not one of :data:`DOSE_METRICS`.
    """
    if metric not in DOSE_METRICS:
        raise StudyError(f"unknown metric {metric!r}; choose one of {tuple(DOSE_METRICS)}")
    out = []
    for line in sorted({line_of(r) for r in rows}):
        mine = [r for r in rows if line_of(r) == line]
        points = [
            (dose, finite(r.get(metric) for r in mine if float(r["photons"]) == dose))
            for dose in sorted({float(r["photons"]) for r in mine})
        ]
        out.append(_series(line, points))
    return out


def convergence_series(
    rows: Sequence[dict[str, Any]], channel: str, photons: float
) -> list[Series]:
    """The SSIM of ``channel`` at one dose after 50 %, 75 % and 100 % of the epochs (``x``:
    percent of the epochs), one series per (N, gridsize, loss) in sorted order; a line is left
    out unless each of its points has a finite value."""
    out = []
    for line in sorted({line_of(r) for r in rows}):
        mine = [r for r in rows if line_of(r) == line and float(r["photons"]) == photons]
        points = [
            (100 * f, finite(r.get(checkpoint_column(channel, f)) for r in mine))
            for f in CONVERGENCE_FRACTIONS
        ]
        series = _series(line, points)
        if len(series.x) == len(CONVERGENCE_FRACTIONS):
            out.append(series)
    return out


def chance_mean(rows: Sequence[dict[str, Any]], metric: str) -> float | None:
    """Mean chance level of a metric over the rows (None when the rows carry none)."""
    values = finite(r.get(f"chance_{metric}") for r in rows)
    return float(np.mean(values)) if values else None


@dataclass(frozen=True)
class SsimProgress:
    """The SSIM of one channel of a results row, at the end and during training.

    Attributes
    ----------
    channel : str
        ``"amplitude"`` or ``"phase"``.
    final : float
        After all the epochs.
    during : tuple of (int, float)
        ``(percent of the epochs, SSIM)`` for each of :data:`~ptycho_engine.study.columns.
        CHECKPOINT_FRACTIONS`; empty when the row lacks any of them (a row of an engine that
        did not score checkpoints). Equal scores mean the setting had converged, rising ones
        that it needed more epochs.
    """

    channel: str
    final: float
    during: tuple[tuple[int, float], ...]


def ssim_progress(row: dict[str, Any]) -> list[SsimProgress]:
    """The SSIMs of a row, one per channel with a finite final SSIM."""
    out = []
    for channel in ("amplitude", "phase"):
        final = finite([row.get(f"{channel}_ssim")])
        if not final:
            continue
        steps = [
            (round(100 * f), finite([row.get(checkpoint_column(channel, f))]))
            for f in CHECKPOINT_FRACTIONS
        ]
        during = tuple((pct, v[0]) for pct, v in steps) if all(v for _, v in steps) else ()
        out.append(SsimProgress(channel, final[0], during))
    return out


# --------------------------------------------------------------------------------------------
# A study folder
# --------------------------------------------------------------------------------------------


def setting_of_row(row: dict[str, Any]) -> StudySetting | None:
    """The setting a results row belongs to, by its values (N, gridsize, photons, loss, seed);
    None when the row lacks them."""
    try:
        return StudySetting(
            int(row["N"]),
            int(row["gridsize"]),
            float(row["photons"]),
            str(row["loss"]),
            int(row["seed"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


@dataclass
class StudyFolder:
    """A study folder as it is shown: its spec and finished rows.

    Attributes
    ----------
    out : Path
    spec : StudySpec
    rows : dict of str to dict
        Finished rows by setting id.
    ids : dict of StudySetting to str
        The folder's id of each finished setting.
    other_engine : int
        Rows whose id is not the one this engine computes (written by another version).
    """

    out: Path
    spec: StudySpec
    rows: dict[str, dict[str, Any]]
    ids: dict[StudySetting, str] = field(default_factory=dict)
    other_engine: int = 0

    @classmethod
    def load(cls, out: str | Path) -> Self:
        """Read ``study.json`` and ``results.json`` of a folder.

        Rows are matched to the spec's settings by their values (N, gridsize, photons, loss,
        seed), not by their ids: a folder written by another engine version (whose ids hash
        other configuration fields) is still shown; :attr:`other_engine` counts those rows
        (such a study cannot be resumed by this engine). Rows of no setting of the spec are
        left out.

        Raises
        ------
        StudyError
            Not a study folder, or unreadable files (the message names the file).
        """
        out = Path(out)
        spec = read_spec(out)
        wanted = set(spec.settings())
        rows: dict[str, dict[str, Any]] = {}
        ids: dict[StudySetting, str] = {}
        other = 0
        for row in read_results(out):
            setting = setting_of_row(row)
            if setting is None or "setting_id" not in row or setting not in wanted:
                continue
            sid = str(row["setting_id"])
            rows[sid] = row
            ids[setting] = sid
            other += sid != setting_id(spec, setting)
        return cls(out, spec, rows, ids, other)

    @property
    def total(self) -> int:
        return len(self.spec.settings())

    def id_of(self, setting: StudySetting) -> str:
        """The id of a setting: the folder's when it holds a result, else this engine's."""
        return _id_of(self.spec, self.ids, setting)

    def ordered_rows(self) -> list[dict[str, Any]]:
        """Finished rows in the spec's order."""
        order = [self.id_of(s) for s in self.spec.settings()]
        return [self.rows[i] for i in order if i in self.rows]

    def next_setting(self) -> StudySetting | None:
        """The first setting (spec order) without a result: the one a local run does next."""
        for setting in self.spec.settings():
            if setting not in self.ids:
                return setting
        return None

    def setting(self, sid: str) -> StudySetting:
        """The setting of an id of this folder.

        Raises
        ------
        StudyError
            No setting of the study has this id.
        """
        for s in self.spec.settings():
            if self.id_of(s) == sid:
                return s
        raise StudyError(f"{self.out}: no setting {sid!r} in this study")

    def reconstruction(self, sid: str) -> StitchSnapshot | None:
        """The stitched object of a finished setting (None when it has none on disk)."""
        from ptycho_engine.errors import DataError
        from ptycho_engine.runs import RECONSTRUCTION, read_reconstruction

        path = run_folder(self.out, sid) / RECONSTRUCTION
        if sid not in self.rows or not path.is_file():
            return None
        try:
            return read_reconstruction(path)
        except DataError:
            return None

    def reconstructions(
        self,
        known: Iterable[str] = (),
        progress: Callable[[int, int], object] | None = None,
    ) -> dict[str, StitchSnapshot]:
        """The stitched objects of the finished settings not in ``known``, read from disk
        (settings without a readable reconstruction are left out)."""
        todo = [sid for sid in self.rows if sid not in set(known)]
        out: dict[str, StitchSnapshot] = {}
        for k, sid in enumerate(todo, start=1):
            snap = self.reconstruction(sid)
            if snap is not None:
                out[sid] = snap
            if progress is not None:
                progress(k, len(todo))
        return out
