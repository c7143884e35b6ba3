"""Qt-free exports of a run as the app makes them (a task for the task worker)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ptycho_engine.data import StitchSnapshot
from ptycho_engine.errors import PtychoError
from ptycho_gui.view_models.runs import RunRecord


def export_format(type_filter: str) -> str | None:
    """The suffix of an export dialog's chosen type filter (``"... (*.tif)"`` -> ``".tif"``)."""
    if "(*." not in type_filter:
        return None
    return "." + type_filter.rsplit("(*.", 1)[1].split(")", 1)[0].split()[0]


def export_task(
    record: RunRecord, path: str, fmt: str | None = None
) -> Callable[[object, object], list[Path]]:
    """A task that exports ``record`` to ``path`` (:func:`ptycho_engine.runs.export_object`);
    the arrays it needs are taken now, so the record may change while it runs.

    Raises
    ------
    PtychoError
        The run holds no reconstruction.
    """
    from ptycho_engine.runs import export_object

    if record.object is None:
        raise PtychoError(f"run #{record.run_id} has no reconstruction to export")
    valid = record.valid if record.valid is not None else np.ones(record.object.shape, bool)
    image = StitchSnapshot(record.object, valid, 1, 1, record.origin_px)
    probe, positions, pixel = record.probe, record.positions_px, record.pixel_size_m
    name = f"ptycho-explorer run {record.run_id}: {record.settings.label()}"
    epochs = [h[0] for h in record.history]
    losses = [h[1] for h in record.history]
    energy, distance = record.energy_ev, record.distance_m

    def export(_progress: object, _stop: object) -> list[Path]:
        return export_object(
            path,
            image,
            probe,
            positions,
            pixel,
            name=name,
            fmt=fmt,
            loss_epochs=epochs,
            loss_values=losses,
            energy_ev=energy,
            distance_m=distance,
        )

    return export


def probe_file_task(modes: np.ndarray, path: str | Path) -> Callable[[object, object], Path]:
    """A task that writes probe modes ``(K, N, N)`` (strongest first) to the ``.npy`` file
    ``path`` with :func:`ptycho_engine.io.write_probe` (every mode, atomically). The modes are
    copied now, so the caller may drop them while the task runs."""
    from ptycho_engine.io import write_probe

    stack = np.array(modes, np.complex64, copy=True)
    target = Path(path)

    def write(_progress: object, _stop: object) -> Path:
        return write_probe(target, stack)

    return write
