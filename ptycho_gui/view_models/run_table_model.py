"""The table of runs: one row per run of every algorithm, filled in as runs are asked for,
start and end; the running time of a live run counts up once a second."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
)
from PySide6.QtGui import QFont

from ptycho_gui.view_models.run_settings import algorithm_name
from ptycho_gui.view_models.runs import RunRecord
from ptycho_gui.view_models.texts import duration_text

#: How often the running time of a live run is redrawn.
TICK_MS = 1000


def _number(value: float | None, decimals: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{decimals}f}"


def _duration(record: RunRecord) -> str:
    return duration_text(record.running_time_s(time.monotonic()))


COLUMNS: tuple[tuple[str, Callable[[RunRecord], str]], ...] = (
    ("Run", lambda r: f"#{r.run_id}"),
    ("Algorithm", lambda r: algorithm_name(r.settings.algorithm)),
    ("Data", lambda r: Path(r.data_path).name if r.data_path else "-"),
    ("Settings", lambda r: r.settings.label()),
    ("Start", lambda r: "-" if r.state == "queued" else r.warm),
    ("State", lambda r: r.state),
    ("Duration", _duration),
    ("Amp SSIM", lambda r: _number(r.metrics.get("amplitude_ssim"))),
    ("Phase SSIM", lambda r: _number(r.metrics.get("phase_ssim"))),
    ("Amp PSNR", lambda r: _number(r.metrics.get("amplitude_psnr"), 1)),
    ("Phase FRC 1/7 (px)", lambda r: _number(r.metrics.get("phase_frc_1_7_px"), 2)),
    ("Notes", lambda r: "; ".join(r.flags) if r.flags else ""),
)
DURATION_COLUMN = [name for name, _value in COLUMNS].index("Duration")

_Index = QModelIndex | QPersistentModelIndex


class RunTableModel(QAbstractTableModel):
    """Rows of :class:`RunRecord`, in run order; the run the views show is in bold."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.records: list[RunRecord] = []
        self.shown_run_id: int | None = None
        self._tick = QTimer(self)
        self._tick.setInterval(TICK_MS)
        self._tick.timeout.connect(self._on_tick_timeout)

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
        if role == Qt.ItemDataRole.FontRole and record.run_id == self.shown_run_id:
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [record.message or record.settings.label()]
            if record.run_id == self.shown_run_id:
                lines.append("shown in the views")
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
        """Insert a run at its place in run order (a run is asked for with a new id)."""
        row = sum(1 for r in self.records if r.run_id < record.run_id)
        self.beginInsertRows(QModelIndex(), row, row)
        self.records.insert(row, record)
        self.endInsertRows()
        self._update_tick()

    def remove(self, run_id: int) -> bool:
        """Drop the row of ``run_id`` (a queued run that was dropped); False when unknown."""
        for row, record in enumerate(self.records):
            if record.run_id == run_id:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self.records[row]
                self.endRemoveRows()
                self._update_tick()
                return True
        return False

    def set_records(self, records: list[RunRecord]) -> None:
        """Show ``records`` instead of every row (a session was opened)."""
        self.beginResetModel()
        self.records = sorted(records, key=lambda r: r.run_id)
        self.shown_run_id = None
        self.endResetModel()
        self._update_tick()

    def refresh(self, run_id: int) -> None:
        """Redraw the row of ``run_id`` after its record changed."""
        for row, record in enumerate(self.records):
            if record.run_id == run_id:
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
                break
        self._update_tick()

    def set_shown(self, run_id: int | None) -> None:
        """Mark the run the views show (bold)."""
        old, self.shown_run_id = self.shown_run_id, run_id
        for rid in {old, run_id} - {None}:
            assert rid is not None
            self.refresh(rid)

    def live_records(self) -> list[RunRecord]:
        """Runs that have not ended (queued, running, stopping)."""
        return [r for r in self.records if not r.ended]

    def _update_tick(self) -> None:
        running = any(r.started_at is not None and not r.ended for r in self.records)
        if running and not self._tick.isActive():
            self._tick.start()
        elif not running and self._tick.isActive():
            self._tick.stop()

    def _on_tick_timeout(self) -> None:
        for row, record in enumerate(self.records):
            if record.started_at is not None and not record.ended:
                index = self.index(row, DURATION_COLUMN)
                self.dataChanged.emit(index, index, [Qt.ItemDataRole.DisplayRole])
