"""Side-by-side comparison of 2 to 6 runs: linked views, shared levels, difference, FRC with
its 1/7 and half-bit resolutions (against the reference run, and between any two runs)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ptycho_engine.display import amplitude_lut, phase_lut
from ptycho_gui.jobs import TaskWorker
from ptycho_gui.view_models.comparison import (
    MAX_RUNS,
    MIN_RUNS,
    THRESHOLDS,
    Comparison,
    FrameImage,
    FrcCurve,
    compare_frames,
    crossing_text,
    shared_levels,
)
from ptycho_gui.view_models.runs import RunRecord
from ptycho_gui.widgets.image_views import PHASE_LEVELS, ImagePaneWidget, ViewGroup

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


class CompareWindow(QWidget):
    """Compare finished runs.

    Parameters
    ----------
    records : list of RunRecord
        2 to 6 runs that hold an object.
    scales : list of float
        Each run's pixels per raw-data pixel (see :mod:`ptycho_gui.view_models.comparison`).
    names : list of str, optional
        A name per run for titles, menus and the table (default ``#<run id>``, with the run's
        settings in the pane titles).
    tasks : TaskWorker
        Where the resampling to a common grid and the FRC curves are computed (never on the
        GUI thread); the window draws when they arrive.

    Signals
    -------
    comparison_ready()
        The frames and curves of the current reference are drawn.

    The FRC plot shows every run against the reference (solid), the pair chosen under "FRC
    of" (dashed), the 1/7 line and the half-bit curve; the crossings table gives each curve's
    resolution at both thresholds in pixels of the reference grid and, when a run's pixel
    size is known, in metres.
    """

    comparison_ready = Signal()

    def __init__(
        self,
        records: list[RunRecord],
        scales: list[float],
        tasks: TaskWorker,
        names: list[str] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        if not MIN_RUNS <= len(records) <= MAX_RUNS:
            raise ValueError(f"select {MIN_RUNS} to {MAX_RUNS} runs, got {len(records)}")
        missing = [r.run_id for r in records if r.object is None]
        if missing:
            raise ValueError(f"runs {missing} have no reconstruction to compare")
        if names is not None and len(names) != len(records):
            raise ValueError(f"{len(names)} names for {len(records)} runs")
        self.names = names or [f"#{r.run_id}" for r in records]
        titles = names or [f"#{r.run_id}: {r.settings.label()}" for r in records]
        self.setWindowTitle("Compare " + ", ".join(self.names))
        self.resize(1200, 800)
        self.records = records
        objects = [r.object for r in records if r.object is not None]  # all, checked above
        self._frames_in = [
            FrameImage(
                obj,
                r.valid if r.valid is not None else np.ones(obj.shape, bool),
                r.origin_px,
                s,
                r.pixel_size_m,
            )
            for r, obj, s in zip(records, objects, scales, strict=True)
        ]
        self.mode_combo = QComboBox()
        self.mode_combo.addItems(["amplitude", "phase"])
        self.reference_combo = QComboBox()
        for name, r in zip(self.names, records, strict=True):
            self.reference_combo.addItem(name, r.run_id)
        self.message = QLabel("")
        self.panes: list[ImagePaneWidget] = []
        grid_widget = QWidget()
        grid = QGridLayout(grid_widget)
        columns = 3 if len(records) > 4 else 2
        for k, title in enumerate(titles):
            pane = ImagePaneWidget(title, amplitude_lut())
            self.panes.append(pane)
            grid.addWidget(pane, k // columns, k % columns)
        self.difference_view = ImagePaneWidget("Difference", _diverging_lut())
        views = [p.view for p in self.panes] + [self.difference_view.view]
        self.view_group = ViewGroup(views, self)
        self.difference_combo = QComboBox()
        for name, r in zip(self.names, records, strict=True):
            self.difference_combo.addItem(name, r.run_id)
        self.difference_combo.setCurrentIndex(1)
        self.metrics_table = QTableWidget(len(records), len(METRIC_COLUMNS) + 1)
        self.metrics_table.setHorizontalHeaderLabels(["Run"] + [c[1] for c in METRIC_COLUMNS])
        self.frc_plot = pg.PlotWidget(title="FRC against the reference run")
        self.frc_plot.setLabel("bottom", "spatial frequency (cycles/px)")
        self.frc_plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.frc_plot.setYRange(-0.1, 1.05)
        self.frc_plot.addLegend()
        self.pair_a_combo = QComboBox()
        self.pair_b_combo = QComboBox()
        for combo in (self.pair_a_combo, self.pair_b_combo):
            for name, r in zip(self.names, records, strict=True):
                combo.addItem(name, r.run_id)
            combo.setToolTip(
                "Two runs whose FRC is drawn dashed, beside those against the reference"
            )
        # a pair beside the reference curves when there is one (the reference is run 0)
        self.pair_a_combo.setCurrentIndex(1 if len(records) > 2 else 0)
        self.pair_b_combo.setCurrentIndex(2 if len(records) > 2 else 1)
        self.crossings_table = QTableWidget(0, len(CROSSING_COLUMNS) + 1)
        self.crossings_table.setHorizontalHeaderLabels(["FRC"] + [c[2] for c in CROSSING_COLUMNS])
        self.crossings_table.setToolTip(
            "Resolution where each FRC falls below the 1/7 line and the half-bit curve, in "
            "pixels of the reference grid and, when the pixel size is known, in metres. "
            "'≤ 2 (Nyquist)': no crossing; 'none': below the threshold from the first rings."
        )
        self.crossing_rows: list[tuple[str, FrcCurve]] = []
        self.pixel_size_m: float | None = None
        self.comparison: Comparison | None = None

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Show"))
        controls.addWidget(self.mode_combo)
        controls.addWidget(QLabel("Reference run"))
        controls.addWidget(self.reference_combo)
        controls.addWidget(QLabel("Difference of"))
        controls.addWidget(self.difference_combo)
        controls.addWidget(QLabel("FRC of"))
        controls.addWidget(self.pair_a_combo)
        controls.addWidget(QLabel("and"))
        controls.addWidget(self.pair_b_combo)
        controls.addWidget(self.message, 1)
        tables = QSplitter(Qt.Orientation.Vertical)
        tables.addWidget(self.metrics_table)
        tables.addWidget(self.crossings_table)
        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(self.difference_view)
        lower.addWidget(self.frc_plot)
        lower.addWidget(tables)
        lower.setSizes([300, 420, 480])
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(grid_widget)
        splitter.addWidget(lower)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(splitter, 1)

        self.frames: list[FrameImage] = []
        self.curves: list = []
        self.tasks = tasks
        self._token = ("compare", id(self))
        tasks.task_finished.connect(self._on_tasks_task_finished)
        tasks.task_failed.connect(self._on_tasks_task_failed)
        self.mode_combo.currentTextChanged.connect(lambda _t: self._redraw())
        self.reference_combo.currentIndexChanged.connect(lambda _i: self._rebuild())
        self.difference_combo.currentIndexChanged.connect(lambda _i: self._draw_difference())
        # every pair's FRC is computed with the frames: choosing one only draws
        self.pair_a_combo.currentIndexChanged.connect(lambda _i: self._draw_frc())
        self.pair_b_combo.currentIndexChanged.connect(lambda _i: self._draw_frc())
        self._fill_metrics()
        self._rebuild()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        # The panes were ranged before the window had its size; range the linked views again
        # once it is laid out, so every pane shows the same region at the same zoom.
        QTimer.singleShot(0, self.reset_zoom)

    def reset_zoom(self) -> None:
        """Show the whole common region in every pane."""
        if self.frames:
            h, w = self.frames[0].object.shape
            self.view_group.show(QRectF(0.0, 0.0, float(w), float(h)))

    @property
    def reference_index(self) -> int:
        """Position of the reference run in :attr:`records`."""
        return max(0, self.reference_combo.currentIndex())

    def _rebuild(self) -> None:
        """Ask the task worker for the frames and curves of the current reference."""
        images, reference = list(self._frames_in), self.reference_index
        self.message.setText("Computing the common region and the FRC…")
        self.tasks.request(
            "compare", self._token, lambda _progress, _stop: compare_frames(images, reference)
        )

    def _on_tasks_task_finished(self, kind: str, token: object, result: object) -> None:
        if kind != "compare" or token != self._token or not isinstance(result, Comparison):
            return
        if result.reference != self.reference_index:
            return  # an older request; the newer one is on its way
        self.comparison = result
        self.frames = result.frames
        self.curves = result.curves
        self.pixel_size_m = result.pixel_size_m
        self.message.setText(
            f"common region {self.frames[0].object.shape[1]} x "
            f"{self.frames[0].object.shape[0]} px (reference grid)"
        )
        self._redraw()
        self._draw_frc()
        self.reset_zoom()
        self.comparison_ready.emit()

    def _on_tasks_task_failed(self, kind: str, token: object, message: str) -> None:
        if kind == "compare" and token == self._token:
            self.frames = []
            self.message.setText(message)

    def _channel(self, frame: FrameImage) -> np.ndarray:
        if self.mode_combo.currentText() == "phase":
            return np.angle(frame.object).astype(np.float32)
        return np.abs(frame.object).astype(np.float32)

    def _redraw(self) -> None:
        if not self.frames:
            return
        images = [self._channel(f) for f in self.frames]
        phase = self.mode_combo.currentText() == "phase"
        levels = PHASE_LEVELS if phase else shared_levels(images, [f.valid for f in self.frames])
        lut = phase_lut() if phase else amplitude_lut()
        for pane, image in zip(self.panes, images, strict=True):
            pane.image.setLookupTable(lut)
            pane.set_image(image, levels=levels)
        self._draw_difference()

    def _draw_difference(self) -> None:
        if not self.frames:
            return
        k = max(0, self.difference_combo.currentIndex())
        ref = self.frames[self.reference_index]
        run = self.frames[k]
        if self.mode_combo.currentText() == "phase":
            diff = np.angle(run.object * np.conj(ref.object)).astype(np.float32)
        else:
            diff = (np.abs(run.object) - np.abs(ref.object)).astype(np.float32)
        both = run.valid & ref.valid
        diff = np.where(both, diff, 0.0).astype(np.float32)
        span = float(np.percentile(np.abs(diff[both]), 99.5)) if both.any() else 1.0
        span = span if span > 0 else 1.0
        self.difference_view.set_image(diff, levels=(-span, span))
        self.difference_view.set_title(
            f"{self.names[k]} minus {self.names[self.reference_index]} "
            f"({self.mode_combo.currentText()})"
        )

    def selected_pair(self) -> FrcCurve | None:
        """The FRC of the two runs chosen under "FRC of" (None for one run twice, or when it
        could not be computed)."""
        a, b = self.pair_a_combo.currentIndex(), self.pair_b_combo.currentIndex()
        if self.comparison is None or a < 0 or b < 0 or a == b:
            return None
        return self.comparison.pair(a, b)

    def _draw_frc(self) -> None:
        self.frc_plot.clear()
        ref = self.reference_index
        rows: list[tuple[str, FrcCurve]] = []
        for curve in self.curves:
            colour = CURVE_COLOURS[curve.index % len(CURVE_COLOURS)]
            name = f"{self.names[curve.index]} vs {self.names[ref]}"
            self._plot_curve(curve, pg.mkPen(colour, width=2), colour, name)
            rows.append((name, curve))
        pair = self.selected_pair()
        if pair is not None and ref not in (pair.index, pair.other):
            name = f"{self.names[pair.index]} vs {self.names[pair.other]}"
            pen = pg.mkPen("#f0f0f0", width=2, style=Qt.PenStyle.DashLine)
            self._plot_curve(pair, pen, "#f0f0f0", name)
            rows.append((name, pair))
        self.frc_plot.plot(
            [0, 0.5], [1 / 7, 1 / 7], pen=pg.mkPen(THRESHOLD_PEN, width=1), name="1/7"
        )
        self._plot_half_bit([curve for _name, curve in rows])
        title = f"FRC against {self.names[ref]}"
        if len(rows) > len(self.curves):
            title += f", and {rows[-1][0]} (dashed)"
        self.frc_plot.setTitle(title)
        self.crossing_rows = rows
        self._fill_crossings()

    def _plot_curve(self, curve: FrcCurve, pen: object, colour: str, name: str) -> None:
        self.frc_plot.plot(curve.frequency, curve.curve, pen=pen, name=name)
        # the crossings as marks on the curve: a circle at 1/7, a triangle at half-bit
        for threshold, symbol in zip(THRESHOLDS, ("o", "t"), strict=True):
            crossing = curve.crossing(threshold)
            if crossing is not None and crossing.crossed:
                self.frc_plot.plot(
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
            self.frc_plot.plot(first.frequency, first.half_bit, pen=pen, name="half-bit")
            return
        for k, curve in enumerate(curves):
            colour = CURVE_COLOURS[curve.index % len(CURVE_COLOURS)]
            own = pg.mkPen(colour, width=1, style=Qt.PenStyle.DotLine)
            name = "half-bit (each curve's rings)" if k == 0 else None
            self.frc_plot.plot(curve.frequency, curve.half_bit, pen=own, name=name)

    def _fill_crossings(self) -> None:
        table = self.crossings_table
        table.setRowCount(len(self.crossing_rows))
        for row, (name, curve) in enumerate(self.crossing_rows):
            table.setItem(row, 0, QTableWidgetItem(name))
            for col, (threshold, metres, _title) in enumerate(CROSSING_COLUMNS, start=1):
                crossing = curve.crossing(threshold)
                if crossing is None or (metres and self.pixel_size_m is None):
                    text = "-"
                else:
                    text = crossing_text(crossing, self.pixel_size_m if metres else None)
                table.setItem(row, col, QTableWidgetItem(text))
        table.resizeColumnsToContents()

    def crossing_texts(self) -> list[list[str]]:
        """The crossings table as text, one list per row (name first), for tests."""
        table = self.crossings_table
        return [
            [
                item.text() if (item := table.item(row, col)) is not None else ""
                for col in range(table.columnCount())
            ]
            for row in range(table.rowCount())
        ]

    def _fill_metrics(self) -> None:
        for row, record in enumerate(self.records):
            self.metrics_table.setItem(row, 0, QTableWidgetItem(self.names[row]))
            for col, (key, _title) in enumerate(METRIC_COLUMNS, start=1):
                value = record.metrics.get(key)
                text = "-" if value is None or not math.isfinite(value) else f"{value:.3f}"
                self.metrics_table.setItem(row, col, QTableWidgetItem(text))
        self.metrics_table.resizeColumnsToContents()


def _diverging_lut(n: int = 256) -> np.ndarray:
    """Blue - white - red, (n, 3) uint8."""
    t = np.linspace(-1.0, 1.0, n)
    r = np.where(t < 0, 1.0 + t, 1.0)
    b = np.where(t > 0, 1.0 - t, 1.0)
    g = 1.0 - np.abs(t)
    return np.round(np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)
