"""Qt-free model of the Study tab, for what only the app does: parsing the form into a
:class:`~ptycho_engine.study.StudySpec`, the text of a cell's tooltip, the run records that the
comparison view shows, and the display of reconstructions (shared amplitude levels, phase
without its global offset).

Reading a study folder, the grid layout, the series over seeds and the labels are the engine's
(:mod:`ptycho_engine.study.aggregate`), so the app and the figures show the same numbers. A
study folder is the one :mod:`ptycho_engine.study` writes; the app reads folders written by the
command line and the command line resumes folders started in the app.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ptycho_engine.data import StitchSnapshot
from ptycho_engine.metrics import CHANNELS, SCORE_NAMES
from ptycho_engine.study import LOSSES, StudyError, StudySpec, ground_truth, ssim_progress
from ptycho_engine.study import StudyFolder as EngineStudyFolder
from ptycho_gui.view_models.run_settings import RunSettings
from ptycho_gui.view_models.runs import RunRecord


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
    n_filters_scale: int = StudySpec.n_filters_scale,
    mae_warmup_epochs: int | None = None,
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


def cell_tooltip(row: dict[str, Any]) -> str:
    """What hovering a grid cell tells: the setting, its SSIMs, and how they moved during
    training (the scores after 50 % and 75 % of the epochs, when the row carries them):
    equal scores mean the setting had converged, rising ones that it needed more epochs."""
    lines = [str(row.get("setting_id", "?"))]
    epochs = row.get("epochs_run")
    for progress in ssim_progress(row):
        text = f"{progress.channel} SSIM {progress.final:.3f}"
        if progress.during:
            text += " (" + ", ".join(f"{v:.3f} at {pct} %" for pct, v in progress.during)
            text += f" of {epochs} epochs)" if epochs else ")"
        lines.append(text)
    return "\n".join(lines)


class StudyFolder(EngineStudyFolder):
    """A study folder (:class:`ptycho_engine.study.StudyFolder`: spec, rows, ids) plus the
    run records that the comparison view shows."""

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
        nll, mae = LOSSES.get(s.loss, (1.0, 0.0))  # (a solver setting has no loss)
        settings = RunSettings(
            N=s.N,
            gridsize=max(1, s.gridsize),
            n_filters_scale=self.spec.n_filters_scale,
            nll_weight=nll,
            mae_weight=mae,
            epochs=self.spec.epochs,
            batch_size=self.spec.batch_size,
            learning_rate=self.spec.learning_rate,
        )
        row = self.rows[sid]
        # results columns carry the engine's score names, the ones the run table uses
        names = [f"{c}_{n}" for c in CHANNELS for n in SCORE_NAMES]
        metrics = {
            name: float(row[name]) for name in names if isinstance(row.get(name), (int, float))
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
