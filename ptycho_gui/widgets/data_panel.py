"""The data panel: file summary, scan positions (clickable) and a pattern viewer."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ptycho_engine.data import DiffractionData
from ptycho_engine.display import amplitude_lut, log_scale
from ptycho_gui.view_models.runs import DataSummary
from ptycho_gui.widgets.image_views import ImagePaneWidget


class DataPanelWidget(QWidget):
    """Summary, scan positions and patterns of the loaded data.

    Signals
    -------
    open_requested()
        The user asked for the file dialog.
    position_clicked(int)
        Index of the scan position clicked in the scatter plot.
    """

    open_requested = Signal()
    position_clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.open_button = QPushButton("Open data…")
        self.open_button.clicked.connect(self.open_requested)
        self.summary_label = QLabel("No data: open a file, drop one here, or use the sample.")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.scatter_plot = pg.PlotWidget()
        self.scatter_plot.setMinimumHeight(160)
        self.scatter_plot.setTitle("Scan positions (click one)", size="9pt")
        self.scatter_plot.setLabel("bottom", "x (px)")
        self.scatter_plot.setLabel("left", "y (px)")
        self.scatter_plot.invertY(True)
        self.scatter_plot.setAspectLocked(True)
        self.scatter = pg.ScatterPlotItem(size=5, brush=pg.mkBrush(80, 160, 255, 160), pen=None)
        self.scatter.sigClicked.connect(self._on_scatter_clicked)
        self.selected = pg.ScatterPlotItem(size=11, brush=None, pen=pg.mkPen("#ff5050", width=2))
        self.scatter_plot.addItem(self.scatter)
        self.scatter_plot.addItem(self.selected)
        self.pattern_view = ImagePaneWidget("Pattern (log10 counts)", amplitude_lut())
        self.pattern_slider = QSlider(Qt.Orientation.Horizontal)
        self.pattern_slider.setEnabled(False)
        self.pattern_slider.valueChanged.connect(self._on_pattern_slider_value_changed)
        self.pattern_label = QLabel("-")
        layout = QVBoxLayout(self)
        layout.addWidget(self.open_button)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.scatter_plot, 2)
        layout.addWidget(self.pattern_view, 2)
        row = QHBoxLayout()
        row.addWidget(self.pattern_slider, 1)
        row.addWidget(self.pattern_label)
        layout.addLayout(row)
        self._data: DiffractionData | None = None

    def set_data(self, data: DiffractionData, summary: DataSummary) -> None:
        """Show a newly loaded data set."""
        self._data = data
        name = summary.path.rsplit("/", 1)[-1]
        self.summary_label.setText(f"<b>{name}</b><br>" + "<br>".join(summary.lines()))
        self.summary_label.setToolTip(summary.path)
        pos = data.positions_px
        self.scatter.setData(x=pos[:, 1], y=pos[:, 0], data=np.arange(pos.shape[0]))
        self.selected.setData([], [])
        self.scatter_plot.autoRange()
        self.pattern_view.reset_levels()
        self.pattern_view.frames = 0
        self.pattern_slider.setEnabled(True)
        self.pattern_slider.setRange(0, data.n_patterns - 1)
        if self.pattern_slider.value() == 0:
            self._on_pattern_slider_value_changed(0)
        else:
            self.pattern_slider.setValue(0)

    def select_position(self, index: int) -> None:
        """Mark a scan position and show its pattern."""
        if self._data is None:
            return
        y, x = self._data.positions_px[index]
        self.selected.setData([x], [y])
        self.pattern_slider.setValue(index)

    def _on_scatter_clicked(self, _item: object, points: list, _event: object) -> None:
        if len(points) == 0:
            return
        index = int(points[0].data())
        self.select_position(index)
        self.position_clicked.emit(index)

    def _on_pattern_slider_value_changed(self, index: int) -> None:
        if self._data is None:
            return
        counts = log_scale(np.square(self._data.amplitudes[index]))
        if self.pattern_view.levels is None:
            self.pattern_view.levels = (0.0, max(float(counts.max()), 1e-3))
        self.pattern_view.set_image(counts)
        self.pattern_label.setText(f"{index + 1} / {self._data.n_patterns}")
