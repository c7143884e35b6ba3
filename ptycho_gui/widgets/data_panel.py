"""The data panel: the mapping profile, file summary, scan positions (clickable) and a pattern
viewer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ptycho_engine.data import DiffractionData
from ptycho_engine.display import amplitude_lut, log_scale
from ptycho_gui.view_models.panel_text import breakable, position_text
from ptycho_gui.view_models.runs import DataSummary
from ptycho_gui.widgets.image_pane import ImagePaneWidget

PROFILE_FILTER = "Mapping profiles (*.json);;All files (*)"


class DataPanelWidget(QWidget):
    """Mapping profile, summary, scan positions and patterns of the loaded data.

    Signals
    -------
    open_requested()
        The user asked for the file dialog (the main window opens the file chosen, with
        :attr:`profile`).
    position_clicked(int)
        Index (from 0) of the scan position clicked in the scatter plot.
    reload_requested(str, str)
        Read the file ``path`` again with the mapping profile ``profile`` (``""``: none, the
        format from the file's content): the user chose or cleared a profile while a file is
        open (or failed to open, :meth:`note_opening`).
    profile_changed(str)
        The mapping profile chosen (``""`` when cleared).
    """

    open_requested = Signal()
    position_clicked = Signal(int)
    reload_requested = Signal(str, str)
    profile_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.last_folder = ""
        self._profile = ""
        self._source = ""  # the file shown, or the one being opened
        self.open_button = QPushButton("Open data…")
        self.open_button.setToolTip(
            "Open a diffraction file (PINN NPZ, CXI, ptychodus product, or a generic NPZ/HDF5 "
            "file with the mapping profile below)."
        )
        self.open_button.clicked.connect(self.open_requested)
        self.profile_edit = QLineEdit()
        self.profile_edit.setReadOnly(True)
        self.profile_edit.setPlaceholderText("none: format from the file")
        self.profile_button = QPushButton("Mapping profile…")
        self.profile_clear_button = QPushButton("No profile")
        profile_tip = (
            "A mapping profile (JSON) says where a generic NPZ or HDF5 file keeps its patterns, "
            "positions, probe and geometry, and in which units and layout (e.g. "
            "tests/io/profiles/tike.json). It changes how the file is read: choosing or "
            "clearing one reads the open file again."
        )
        for widget in (self.profile_edit, self.profile_button):
            widget.setToolTip(profile_tip)
        self.profile_clear_button.setToolTip(
            "Read files without a mapping profile (the format is recognised from the content)."
        )
        self.profile_button.clicked.connect(self._on_profile_button_clicked)
        self.profile_clear_button.clicked.connect(lambda: self.set_profile(""))
        self.summary_label = QLabel("No data: open a file, drop one here, or use the sample.")
        self.summary_label.setWordWrap(True)
        self.summary_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
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
        self.pattern_slider.setToolTip("The pattern of one scan position (marked in red above).")
        self.pattern_slider.valueChanged.connect(self._on_pattern_slider_value_changed)
        self.pattern_label = QLabel("-")
        self.pattern_label.setToolTip(
            "Positions are counted from 1; #index is counted from 0 (the file's row, and the "
            "number in the diffraction views' titles)."
        )
        layout = QVBoxLayout(self)
        layout.addWidget(self.open_button)
        profile_row = QHBoxLayout()
        profile_row.addWidget(QLabel("Profile"))
        profile_row.addWidget(self.profile_edit, 1)
        layout.addLayout(profile_row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.profile_button)
        buttons.addWidget(self.profile_clear_button)
        layout.addLayout(buttons)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.scatter_plot, 2)
        layout.addWidget(self.pattern_view, 2)
        row = QHBoxLayout()
        row.addWidget(self.pattern_slider, 1)
        row.addWidget(self.pattern_label)
        layout.addLayout(row)
        self._data: DiffractionData | None = None

    @property
    def profile(self) -> str:
        """The mapping profile files are read with (``""``: none)."""
        return self._profile

    @property
    def source_path(self) -> str:
        """The file shown (or being opened); ``""`` before any."""
        return self._source

    def note_opening(self, path: str) -> None:
        """The main window opens ``path``: a profile chosen next (after a failed read, say)
        reads that file again."""
        self._source = str(path)

    def set_profile(self, path: str) -> None:
        """Use the mapping profile ``path`` (``""``: none); the open file is read again with it
        (:attr:`reload_requested`)."""
        path = str(path)
        if path == self._profile:
            return
        self._profile = path
        self.profile_edit.setText(Path(path).name if path else "")
        self.profile_edit.setToolTip(path or self.profile_button.toolTip())
        if path:
            self.last_folder = str(Path(path).parent)
        self.profile_changed.emit(path)
        if self._source:
            self.summary_label.setText(
                breakable(f"Reading {Path(self._source).name} again")
                + (f" with {breakable(Path(path).name)}…" if path else " without a profile…")
            )
            self.reload_requested.emit(self._source, path)

    def set_data(self, data: DiffractionData, summary: DataSummary) -> None:
        """Show a newly loaded data set."""
        self._data = data
        self._source = summary.path
        name = summary.path.replace("\\", "/").rsplit("/", 1)[-1]
        self.summary_label.setText(f"<b>{breakable(name)}</b><br>" + "<br>".join(summary.lines()))
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
        self.pattern_slider.setValue(index)
        self._mark(index)

    def _mark(self, index: int) -> None:
        assert self._data is not None
        y, x = self._data.positions_px[index]
        self.selected.setData([x], [y])

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
        self.pattern_label.setText(position_text(index, self._data.n_patterns))
        self._mark(index)  # the marker follows the slider: one position on screen

    def _on_profile_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a mapping profile", self.last_folder, PROFILE_FILTER
        )
        if path:
            self.set_profile(path)
