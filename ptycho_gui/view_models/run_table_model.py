"""The table of runs: one row per run of every algorithm, filled in as runs start and end."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from ptycho_gui.view_models.run_settings import algorithm_name
from ptycho_gui.view_models.runs import RunRecord

COLUMNS = (
    ("Run", lambda r: f"#{r.run_id}"),
    ("Algorithm", lambda r: algorithm_name(r.settings.algorithm)),
    ("Data", lambda r: Path(r.data_path).name if r.data_path else "-"),
    ("Settings", lambda r: r.settings.label()),
    ("Start", lambda r: r.warm),
    ("State", lambda r: r.state),
    ("Duration", lambda r: f"{r.elapsed_s:.1f} s"),
    ("Amp SSIM", lambda r: _number(r.metrics.get("amplitude_ssim"))),
    ("Phase SSIM", lambda r: _number(r.metrics.get("phase_ssim"))),
    ("Amp PSNR", lambda r: _number(r.metrics.get("amplitude_psnr"), 1)),
    ("Phase FRC 1/7 (px)", lambda r: _number(r.metrics.get("phase_frc_1_7_px"), 2)),
    ("Notes", lambda r: "; ".join(r.flags) if r.flags else ""),
)

_Index = QModelIndex | QPersistentModelIndex


def _number(value: float | None, decimals: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{decimals}f}"


class RunTableModel(QAbstractTableModel):
    """Rows of :class:`RunRecord`, newest last."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.records: list[RunRecord] = []

    def rowCount(self, parent: _Index | None = None) -> int:  # noqa: N802 - Qt API
        return 0 if parent is not None and parent.isValid() else len(self.records)

    def columnCount(self, parent: _Index | None = None) -> int:  # noqa: N802 - Qt API
        return 0 if parent is not None and parent.isValid() else len(COLUMNS)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        record = self.records[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[index.column()][1](record)
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [record.message or record.settings.label()]
            if record.data_path:
                lines.append(f"data: {record.data_path}")
            lines.extend(f"note: {flag}" for flag in record.flags)
            if record.run_dir:
                lines.append(f"folder: {record.run_dir}")
            return "\n".join(lines)
        return None

    def headerData(  # noqa: N802 - Qt API
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section][0]
        return None

    def record(self, run_id: int) -> RunRecord | None:
        """The record of ``run_id`` (None when unknown)."""
        for record in self.records:
            if record.run_id == run_id:
                return record
        return None

    def add(self, record: RunRecord) -> None:
        """Append a run."""
        row = len(self.records)
        self.beginInsertRows(QModelIndex(), row, row)
        self.records.append(record)
        self.endInsertRows()

    def refresh(self, run_id: int) -> None:
        """Redraw the row of ``run_id`` after its record changed."""
        for row, record in enumerate(self.records):
            if record.run_id == run_id:
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
                return
