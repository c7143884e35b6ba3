"""The plot and tables under the compare window's panes: the FRC curves with their 1/7 and
half-bit thresholds (:class:`FrcPlotWidget`), each curve's crossings (:class:`CrossingsTable`),
each run's metrics (:class:`MetricsTable`) and each run's statistics in the region
(:class:`RegionTable`)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem, QWidget

from ptycho_gui.view_models.comparison import THRESHOLDS, FrcCurve, crossing_text
from ptycho_gui.view_models.runs import RunRecord

__all__ = [
    "CROSSING_COLUMNS",
    "CURVE_COLOURS",
    "METRIC_COLUMNS",
    "REGION_PEN_COLOUR",
    "THRESHOLD_PEN",
    "CrossingsTable",
    "FrcPlotWidget",
    "MetricsTable",
    "RegionTable",
]

CURVE_COLOURS = ("#4da3ff", "#ff9f40", "#50d050", "#ff5050", "#c080ff", "#e0e040")
METRIC_COLUMNS = (
    ("amplitude_ssim", "Amp SSIM"),
    ("phase_ssim", "Phase SSIM"),
    ("amplitude_psnr", "Amp PSNR"),
    ("phase_psnr", "Phase PSNR"),
    ("amplitude_frc_1_7_px", "Amp FRC (px)"),
    ("phase_frc_1_7_px", "Phase FRC (px)"),
)
#: Columns of the FRC crossings table, after the curve's name: (threshold, in metres?).
CROSSING_COLUMNS = (
    ("1/7", False, "1/7 (px)"),
    ("half-bit", False, "half-bit (px)"),
    ("1/7", True, "1/7 (m)"),
    ("half-bit", True, "half-bit (m)"),
)
THRESHOLD_PEN = "#9a9a9a"
REGION_PEN_COLOUR = "#40e0ff"


class FrcPlotWidget(pg.PlotWidget):
    """The FRC of every run against the reference (solid), of a chosen pair (dashed) and of
    the pair over the region (dotted), with their crossings marked, the 1/7 line and the
    half-bit curve."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, title="FRC against the reference run")
        self.setLabel("bottom", "spatial frequency (cycles/px)")
        self.getAxis("bottom").enableAutoSIPrefix(False)
        self.setYRange(-0.1, 1.05)
        self.addLegend()

    def draw(
        self,
        curves: list[FrcCurve],
        names: list[str],
        reference: int,
        pair: FrcCurve | None,
        region: FrcCurve | None,
    ) -> list[tuple[str, FrcCurve]]:
        """Draw ``curves`` (each run against run ``reference``), ``pair`` (unless it holds
        the reference: then it is one of ``curves``) and ``region`` (None: none), named with
        ``names``.

        Returns
        -------
        list of (str, FrcCurve)
            The curves drawn and their legend names, in order.
        """
        self.clear()
        ref = reference
        rows: list[tuple[str, FrcCurve]] = []
        for curve in curves:
            colour = CURVE_COLOURS[curve.index % len(CURVE_COLOURS)]
            name = f"{names[curve.index]} vs {names[ref]}"
            self._plot_curve(curve, pg.mkPen(colour, width=2), colour, name)
            rows.append((name, curve))
        if pair is not None and ref not in (pair.index, pair.other):
            name = f"{names[pair.index]} vs {names[pair.other]}"
            pen = pg.mkPen("#f0f0f0", width=2, style=Qt.PenStyle.DashLine)
            self._plot_curve(pair, pen, "#f0f0f0", name)
            rows.append((name, pair))
        if region is not None:
            name = f"{names[region.index]} vs {names[region.other]} (region)"
            pen = pg.mkPen(REGION_PEN_COLOUR, width=2, style=Qt.PenStyle.DotLine)
            self._plot_curve(region, pen, REGION_PEN_COLOUR, name)
            rows.append((name, region))
        self.plot([0, 0.5], [1 / 7, 1 / 7], pen=pg.mkPen(THRESHOLD_PEN, width=1), name="1/7")
        self._plot_half_bit([curve for _name, curve in rows])
        title = f"FRC against {names[ref]}"
        extra = [name for name, _c in rows[len(curves) :]]
        if extra:
            title += ", and " + ", ".join(extra)
        self.setTitle(title, size="9pt")
        return rows

    def _plot_curve(self, curve: FrcCurve, pen: object, colour: str, name: str) -> None:
        self.plot(curve.frequency, curve.curve, pen=pen, name=name)
        # the crossings as marks on the curve: a circle at 1/7, a triangle at half-bit
        for threshold, symbol in zip(THRESHOLDS, ("o", "t"), strict=True):
            crossing = curve.crossing(threshold)
            if crossing is not None and crossing.crossed:
                self.plot(
                    [crossing.frequency],
                    [crossing.level],
                    pen=None,
                    symbol=symbol,
                    symbolSize=9,
                    symbolBrush=colour,
                    symbolPen="#000000",
                )

    def _plot_half_bit(self, curves: list[FrcCurve]) -> None:
        """One half-bit curve when every curve has the same rings (the usual case on one common
        region), else one per curve in its colour."""
        if not curves:
            return
        pen = pg.mkPen(THRESHOLD_PEN, width=1, style=Qt.PenStyle.DashLine)
        first = curves[0]
        if all(np.array_equal(c.counts, first.counts) for c in curves):
            self.plot(first.frequency, first.half_bit, pen=pen, name="half-bit")
            return
        for k, curve in enumerate(curves):
            colour = CURVE_COLOURS[curve.index % len(CURVE_COLOURS)]
            own = pg.mkPen(colour, width=1, style=Qt.PenStyle.DotLine)
            name = "half-bit (each curve's rings)" if k == 0 else None
            self.plot(curve.frequency, curve.half_bit, pen=own, name=name)


class CrossingsTable(QTableWidget):
    """Each FRC curve's resolution at the 1/7 and half-bit thresholds, in pixels of the
    reference grid and in metres."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(CROSSING_COLUMNS) + 1, parent)
        self.setHorizontalHeaderLabels(["FRC"] + [c[2] for c in CROSSING_COLUMNS])
        self.setToolTip(
            "Resolution where each FRC falls below the 1/7 line and the half-bit curve, in "
            "pixels of the reference grid and, when the pixel size is known, in metres. "
            "'≤ 2 (Nyquist)': no crossing; 'none': below the threshold from the first rings."
        )

    def fill(self, rows: list[tuple[str, FrcCurve]], pixel_size_m: float | None) -> None:
        """One row per ``(name, curve)``; the metres columns need ``pixel_size_m``."""
        self.setRowCount(len(rows))
        for row, (name, curve) in enumerate(rows):
            self.setItem(row, 0, QTableWidgetItem(name))
            for col, (threshold, metres, _title) in enumerate(CROSSING_COLUMNS, start=1):
                crossing = curve.crossing(threshold)
                if crossing is None or (metres and pixel_size_m is None):
                    text = "-"
                else:
                    text = crossing_text(crossing, pixel_size_m if metres else None)
                self.setItem(row, col, QTableWidgetItem(text))
        self.resizeColumnsToContents()

    def texts(self) -> list[list[str]]:
        """The table as text, one list per row (name first)."""
        return [
            [
                item.text() if (item := self.item(row, col)) is not None else ""
                for col in range(self.columnCount())
            ]
            for row in range(self.rowCount())
        ]


class MetricsTable(QTableWidget):
    """The metrics each run recorded (:data:`METRIC_COLUMNS`), one row per run."""

    def __init__(self, runs: int, parent: QWidget | None = None) -> None:
        super().__init__(runs, len(METRIC_COLUMNS) + 1, parent)
        self.setHorizontalHeaderLabels(["Run"] + [c[1] for c in METRIC_COLUMNS])

    def fill(self, records: list[RunRecord], names: list[str]) -> None:
        """Write the metrics of ``records`` (``"-"`` where unknown), named with ``names``."""
        for row, record in enumerate(records):
            self.setItem(row, 0, QTableWidgetItem(names[row]))
            for col, (key, _title) in enumerate(METRIC_COLUMNS, start=1):
                value = record.metrics.get(key)
                text = "-" if value is None or not math.isfinite(value) else f"{value:.3f}"
                self.setItem(row, col, QTableWidgetItem(text))
        self.resizeColumnsToContents()


class RegionTable(QTableWidget):
    """Each run's mean, standard deviation and pixel count in the region (hidden until a
    region is shown)."""

    def __init__(self, runs: int, parent: QWidget | None = None) -> None:
        super().__init__(runs, 4, parent)
        self.setHorizontalHeaderLabels(["Run", "Mean", "Std", "Pixels"])
        self.setToolTip(
            "The shown quantity over each run's valid pixels in the region (the amplitude in "
            "the complex view)"
        )
        self.setVisible(False)

    def fill(self, rows: list[tuple[str, float, float, int]]) -> None:
        """One row per ``(name, mean, std, pixels)``."""
        self.setRowCount(len(rows))
        for row, (name, mean, std, count) in enumerate(rows):
            texts = [name, f"{mean:.4g}", f"{std:.3g}", str(count)]
            for col, text in enumerate(texts):
                self.setItem(row, col, QTableWidgetItem(text))
        self.resizeColumnsToContents()
