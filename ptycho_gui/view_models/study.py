"""Qt-free model of the Study tab: the form's axes, a study folder's results, the thumbnail
grid, the dose-response series and the records that the comparison view shows.

A study folder is the one :mod:`ptycho_engine.study` writes (``study.json``, ``results.json``,
``runs/<setting-id>/reconstruction.npz``); the app reads folders written by the command line
and the command line resumes folders started in the app.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.data import StitchSnapshot
from ptycho_engine.study import (
    CHECKPOINT_FRACTIONS,
    LOSSES,
    RUNS_DIR,
    StudyError,
    StudySetting,
    StudySpec,
    checkpoint_column,
    ground_truth,
    read_results,
    read_spec,
    setting_id,
)
from ptycho_gui.view_models.run_settings import RunSettings
from ptycho_gui.view_models.runs import RunRecord

#: Metrics the dose plot offers: results column -> axis label.
DOSE_METRICS: dict[str, str] = {
    "amplitude_ssim": "amplitude SSIM",
    "phase_ssim": "phase SSIM",
    "amplitude_psnr": "amplitude PSNR (dB)",
    "phase_psnr": "phase PSNR (dB)",
    "amplitude_frc_1_7_px": "amplitude FRC 1/7 resolution (px)",
    "phase_frc_1_7_px": "phase FRC 1/7 resolution (px)",
}
#: Results columns -> the comparison view's metric keys.
_COMPARE_KEYS = {
    "amplitude_ssim": "amp_ssim",
    "phase_ssim": "phase_ssim",
    "amplitude_psnr": "amp_psnr",
    "phase_psnr": "phase_psnr",
    "amplitude_frc_1_7_px": "amp_frc_px",
    "phase_frc_1_7_px": "phase_frc_px",
}


def parse_numbers(text: str, field: str, *, integers: bool = False) -> tuple[float, ...]:
    """Numbers typed in a form field, separated by spaces or commas (``"1e3, 1e4 1e6"``).

    Raises
    ------
    StudyError
        Naming the field, for an empty field or an item that is not a number.
    """
    items = text.replace(",", " ").split()
    if not items:
        raise StudyError(f"{field}: enter at least one value")
    values: list[float] = []
    for item in items:
        try:
            value = float(item)
        except ValueError:
            raise StudyError(f"{field}: {item!r} is not a number") from None
        if not math.isfinite(value):
            raise StudyError(f"{field}: {item!r} is not a finite number")
        if integers and value != int(value):
            raise StudyError(f"{field}: {item!r} is not a whole number")
        values.append(value)
    return tuple(values)


def spec_from_form(
    *,
    N: Sequence[int],
    gridsize: Sequence[int],
    photons: str,
    loss: Sequence[str],
    seeds: str,
    epochs: int,
    positions: int,
    object_kind: str = "lines",
    n_filters_scale: int = 2,
    mae_warmup_epochs: int = 0,
    base: StudySpec | None = None,
) -> StudySpec:
    """The :class:`StudySpec` that the Study tab's form describes.

    The settings the form does not show (scan, probe, batch size, learning rate) come from
    ``base`` (the study opened last, so that running it again resumes it) or are the defaults.

    Raises
    ------
    StudyError
        A field is empty or invalid (the message names it).
    """
    if not N:
        raise StudyError("N: tick at least one pattern size")
    if not gridsize:
        raise StudyError("gridsize: tick at least one")
    if not loss:
        raise StudyError("loss: tick nll, mae or both")
    hidden: dict[str, Any] = {}
    if base is not None:
        hidden = {
            "scan": base.scan,
            "probe_kind": base.probe_kind,
            "batch_size": base.batch_size,
            "learning_rate": base.learning_rate,
        }
    return StudySpec(
        N=tuple(N),
        gridsize=tuple(gridsize),
        photons=parse_numbers(photons, "photons per pattern"),
        loss=tuple(loss),
        seeds=tuple(int(s) for s in parse_numbers(seeds, "seeds", integers=True)),
        epochs=epochs,
        positions=positions,
        object_kind=object_kind,
        n_filters_scale=n_filters_scale,
        mae_warmup_epochs=mae_warmup_epochs,
        **hidden,
    )


def _fmt_dose(photons: float) -> str:
    exponent = math.log10(photons) if photons > 0 else math.nan
    if math.isfinite(exponent) and abs(exponent - round(exponent)) < 1e-9:
        return f"1e{round(exponent)}"
    return f"{photons:.3g}"


def column_label(n: int, gridsize: int, loss: str) -> str:
    """Title of a grid column, e.g. ``"N=64 g=2 nll"``."""
    return f"N={n} g={gridsize} {loss}"


def dose_label(photons: float) -> str:
    """Title of a grid row, e.g. ``"1e4 ph"``."""
    return f"{_fmt_dose(photons)} ph"


@dataclass(frozen=True)
class StudyGrid:
    """Cells of the thumbnail grid of one seed: rows dose (ascending), columns (N, g, loss).

    Attributes
    ----------
    doses : tuple of float
    columns : tuple of (int, int, str)
    seed : int
    ids : tuple of tuple of str
        ``ids[row][column]``: the setting id of each cell.
    """

    doses: tuple[float, ...]
    columns: tuple[tuple[int, int, str], ...]
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
    """
    seed = spec.seeds[0] if seed is None else seed
    if seed not in spec.seeds:
        raise StudyError(f"seed {seed} is not one of the study's seeds {spec.seeds}")
    doses = tuple(sorted(spec.photons))
    columns = tuple((n, g, loss) for n in spec.N for g in spec.gridsize for loss in spec.loss)

    cells = tuple(
        tuple(_id_of(spec, ids, StudySetting(n, g, dose, loss, seed)) for n, g, loss in columns)
        for dose in doses
    )
    return StudyGrid(doses, columns, seed, cells)


@dataclass(frozen=True)
class DoseSeries:
    """One line of the dose plot: a metric against dose for one (N, gridsize, loss).

    Attributes
    ----------
    label : str
    doses, means, stds : tuple of float
        Mean and standard deviation over the seeds finished at each dose (doses ascending;
        a dose without a finite value is left out).
    counts : tuple of int
        Seeds behind each point.
    """

    label: str
    doses: tuple[float, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]
    counts: tuple[int, ...]


def _finite(values: Iterable[Any]) -> list[float]:
    return [
        float(v)
        for v in values
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ]


def dose_series(rows: Sequence[dict[str, Any]], metric: str) -> list[DoseSeries]:
    """Series of the dose plot for a results column (see :data:`DOSE_METRICS`)."""
    if metric not in DOSE_METRICS:
        raise StudyError(f"unknown metric {metric!r}; choose one of {tuple(DOSE_METRICS)}")

    def key(r: dict[str, Any]) -> tuple[int, int, str]:
        return int(r["N"]), int(r["gridsize"]), str(r["loss"])

    out = []
    for n, g, loss in sorted({key(r) for r in rows}):
        mine = [r for r in rows if key(r) == (n, g, loss)]
        doses, means, stds, counts = [], [], [], []
        for dose in sorted({float(r["photons"]) for r in mine}):
            values = _finite(r.get(metric) for r in mine if float(r["photons"]) == dose)
            if values:
                doses.append(dose)
                means.append(float(np.mean(values)))
                stds.append(float(np.std(values)))
                counts.append(len(values))
        label = column_label(n, g, loss)
        out.append(DoseSeries(label, tuple(doses), tuple(means), tuple(stds), tuple(counts)))
    return out


def cell_tooltip(row: dict[str, Any]) -> str:
    """What hovering a grid cell tells: the setting, its SSIMs, and how they moved during
    training (the scores after 50 % and 75 % of the epochs, when the row carries them):
    equal scores mean the setting had converged, rising ones that it needed more epochs."""
    lines = [str(row.get("setting_id", "?"))]
    epochs = row.get("epochs_run")
    for channel in ("amplitude", "phase"):
        final = _finite([row.get(f"{channel}_ssim")])
        if not final:
            continue
        text = f"{channel} SSIM {final[0]:.3f}"
        steps = [
            (round(100 * f), _finite([row.get(checkpoint_column(channel, f))]))
            for f in CHECKPOINT_FRACTIONS
        ]
        if all(v for _, v in steps):
            text += " (" + ", ".join(f"{v[0]:.3f} at {pct} %" for pct, v in steps)
            text += f" of {epochs} epochs)" if epochs else ")"
        lines.append(text)
    return "\n".join(lines)


def chance_mean(rows: Sequence[dict[str, Any]], metric: str) -> float | None:
    """Mean chance level of a metric over the rows (None when the rows carry none)."""
    values = _finite(r.get(f"chance_{metric}") for r in rows)
    return float(np.mean(values)) if values else None


@dataclass
class StudyFolder:
    """A study folder as the app shows it.

    Attributes
    ----------
    out : Path
    spec : StudySpec
    rows : dict of str to dict
        Finished rows by setting id.
    """

    out: Path
    spec: StudySpec
    rows: dict[str, dict[str, Any]]
    ids: dict[StudySetting, str] = field(default_factory=dict)
    other_engine: int = 0

    @classmethod
    def load(cls, out: str | Path) -> StudyFolder:
        """Read ``study.json`` and ``results.json`` of a folder.

        Rows are matched to the spec's settings by their values (N, gridsize, photons, loss,
        seed), not by their ids: a folder written by another engine version (whose ids hash
        other configuration fields) is still shown; :attr:`other_engine` counts those rows
        (such a study cannot be resumed by this engine).

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
            try:
                setting = StudySetting(
                    int(row["N"]),
                    int(row["gridsize"]),
                    float(row["photons"]),
                    str(row["loss"]),
                    int(row["seed"]),
                )
                sid = str(row["setting_id"])
            except (KeyError, TypeError, ValueError):
                continue  # not a row of a study setting: nothing to show
            if setting not in wanted:
                continue
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
        for s in self.spec.settings():
            if self.id_of(s) == sid:
                return s
        raise StudyError(f"{self.out}: no setting {sid!r} in this study")

    def reconstruction(self, sid: str) -> StitchSnapshot | None:
        """The stitched object of a finished setting (None when it has none on disk)."""
        from ptycho_engine.errors import DataError
        from ptycho_engine.runs import RECONSTRUCTION, read_reconstruction

        path = self.out / RUNS_DIR / sid / RECONSTRUCTION
        if sid not in self.rows or not path.is_file():
            return None
        try:
            return read_reconstruction(path)
        except DataError:
            return None

    def record(self, sid: str, run_id: int, truth: np.ndarray | None = None) -> RunRecord:
        """A finished setting as a run record for the comparison view.

        Parameters
        ----------
        sid : str
        run_id : int
        truth : ndarray, optional
            The ground truth of the setting's seed: when given, the object is aligned to it
            as the metrics align it (sub-pixel shift, global phase offset and ramp, amplitude
            scale; :func:`ptycho_engine.metrics.align_to_reference`), so the comparison shows
            what was scored.

        Raises
        ------
        StudyError
            The setting has no result or no reconstruction on disk.
        """
        snap = self.reconstruction(sid)
        if snap is None:
            raise StudyError(f"{self.out}: setting {sid} has no reconstruction yet")
        obj = snap.object
        if truth is not None:
            from ptycho_engine.errors import DataError
            from ptycho_engine.metrics import align_to_reference
            from ptycho_engine.stitching import reference_region

            reference = reference_region(truth, snap.origin_px, obj.shape)
            try:
                obj = align_to_reference(obj, reference, snap.valid).astype(np.complex64)
            except DataError:  # e.g. an all-zero reconstruction: show it as it is
                obj = snap.object
        s = self.setting(sid)
        nll, mae = LOSSES[s.loss]
        settings = RunSettings(
            N=s.N,
            gridsize=s.gridsize,
            n_filters_scale=self.spec.n_filters_scale,
            nll_weight=nll,
            mae_weight=mae,
            epochs=self.spec.epochs,
            batch_size=self.spec.batch_size,
            learning_rate=self.spec.learning_rate,
        )
        row = self.rows[sid]
        metrics = {
            key: float(row[column])
            for column, key in _COMPARE_KEYS.items()
            if isinstance(row.get(column), (int, float))
        }
        return RunRecord(
            run_id,
            settings,
            state="finished",
            elapsed_s=float(row.get("setting_time_s") or 0.0),
            object=obj,
            valid=snap.valid,
            origin_px=snap.origin_px,
            metrics=metrics,
            extra={"name": s.label(), "setting_id": sid},
        )

    def truth_record(self, seed: int, run_id: int = 0) -> RunRecord:
        """The ground-truth object of ``seed`` as a record (its frame is the scan's frame)."""
        obj = ground_truth(self.spec, seed).astype(np.complex64)
        return RunRecord(
            run_id,
            RunSettings(),
            state="finished",
            object=obj,
            valid=np.ones(obj.shape, bool),
            origin_px=(0.0, 0.0),
            extra={"name": f"ground truth (seed {seed})"},
        )


def shared_amplitude_levels(snaps: Sequence[StitchSnapshot]) -> tuple[float, float]:
    """One (low, high) for the amplitude of every snapshot: 0.5 and 99.5 percentiles of their
    valid pixels (each snapshot subsampled to at most 65,536 pixels, so every run weighs
    about the same)."""
    parts = []
    for snap in snaps:
        values = np.abs(snap.object[snap.valid]).astype(np.float32)
        if values.size > 65_536:
            values = values[:: values.size // 65_536 + 1]
        parts.append(values[np.isfinite(values)])
    values = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    if values.size == 0:
        return 0.0, 1.0
    low, high = (float(v) for v in np.percentile(values, [0.5, 99.5]))
    return (low, high) if high > low else (low - 1e-6, low + 1e-6)


def display_phase(snap: StitchSnapshot) -> np.ndarray:
    """Phase of a reconstruction with its global offset removed (the phase of the sum of the
    valid pixels), so runs with different arbitrary offsets share one colour scale."""
    obj = snap.object
    total = complex(np.sum(obj[snap.valid])) if snap.valid.any() else 0j
    turn = np.complex64(np.conj(total) / abs(total)) if abs(total) > 0 else np.complex64(1)
    return np.angle(obj * turn).astype(np.float32)
