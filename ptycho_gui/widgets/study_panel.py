"""The Study tab: choose the axes, run the queue, see the thumbnails and the dose plot.

The panel only shows and asks; the main window owns the :class:`~ptycho_gui.study_worker.
StudyWorker` and answers the panel's signals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ptycho_engine.config import SUPPORTED_GRIDSIZE, SUPPORTED_N
from ptycho_engine.data import StitchSnapshot
from ptycho_engine.display import PHASE_LEVELS, amplitude_lut, phase_lut
from ptycho_engine.errors import PtychoError
from ptycho_engine.study import (
    DOSE_METRICS,
    LOG_AXIS_METRICS,
    LOSSES,
    StudyGrid,
    StudySpec,
    chance_mean,
    column_label,
    dose_label,
    dose_row_label,
    dose_series,
    study_grid,
)
from ptycho_gui.view_models.study import (
    StudyFolder,
    cell_tooltip,
    display_phase,
    shared_amplitude_levels,
    spec_from_form,
)
from ptycho_gui.widgets.image_pane import ViewGroup

SERIES_COLOURS = (
    "#4da3ff",
    "#ff9f40",
    "#50d050",
    "#ff5050",
    "#c080ff",
    "#e0e040",
    "#40e0d0",
    "#ff80c0",
)
SELECTED_PEN = pg.mkPen("#ffcc00", width=3)
MAX_SELECTED = 5  # plus the ground truth: the comparison view's limit of 6


class ThumbnailGridWidget(pg.GraphicsLayoutWidget):
    """Reconstructions of one seed: rows dose, columns (N, gridsize, loss).

    Every cell shows its object at its place in the ground truth's frame, all views are linked
    (zoom and pan one, the others follow) and all share one set of colour levels.

    Signals
    -------
    cell_clicked(str, bool)
        Setting id of a clicked cell with a reconstruction; True when Ctrl was held.
    """

    cell_clicked = Signal(str, bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(300, 200)
        self.grid: StudyGrid | None = None
        self.views: dict[tuple[int, int], pg.ViewBox] = {}
        self.images: dict[str, pg.ImageItem] = {}
        self.levels: tuple[float, float] = (0.0, 1.0)
        self.part = "amplitude"
        self.selected: list[str] = []
        self.view_group: ViewGroup | None = None
        self.scene().sigMouseClicked.connect(self._on_scene_clicked)

    def show_grid(
        self,
        grid: StudyGrid,
        snaps: dict[str, StitchSnapshot],
        part: str = "amplitude",
        tooltips: dict[str, str] | None = None,
    ) -> None:
        """Draw ``grid`` with the reconstructions at hand (cells without one stay empty);
        ``tooltips`` maps setting ids to the text shown on hover (default: the id)."""
        self.clear()
        self.grid = grid
        self.part = part
        self.views = {}
        self.images = {}
        self.selected = [s for s in self.selected if any(s in row for row in grid.ids)]
        shown = [snaps[sid] for row in grid.ids for sid in row if sid in snaps]
        if part == "phase":
            self.levels = PHASE_LEVELS
            lut = phase_lut()
        else:
            self.levels = shared_amplitude_levels(shown)
            lut = amplitude_lut()
        for j, (n, g, loss) in enumerate(grid.columns):
            self.addLabel(column_label(n, g, loss), row=0, col=j + 1, size="9pt")
        if self.view_group is not None:
            self.view_group.deleteLater()
        for i, dose in enumerate(grid.doses):
            self.addLabel(dose_row_label(dose), row=i + 1, col=0, angle=-90, size="9pt")
            for j in range(len(grid.columns)):
                view = self.addViewBox(row=i + 1, col=j + 1, lockAspect=True, invertY=True)
                view.setMenuEnabled(False)
                self.views[(i, j)] = view
                sid = grid.ids[i][j]
                snap = snaps.get(sid)
                if snap is None:
                    continue
                image = display_phase(snap) if part == "phase" else np.abs(snap.object)
                image = np.where(snap.valid, image, np.nan).astype(np.float32)
                item = pg.ImageItem(axisOrder="row-major")
                item.setLookupTable(lut)
                item.setImage(image, autoLevels=False, levels=self.levels)
                h, w = image.shape
                item.setRect(QRectF(snap.origin_px[1], snap.origin_px[0], w, h))
                item.setToolTip((tooltips or {}).get(sid, sid))
                view.addItem(item)
                self.images[sid] = item
        self.view_group = ViewGroup(list(self.views.values()), self)
        self.reset_zoom()
        self._draw_selection()

    def reset_zoom(self) -> None:
        """Show, in every cell, the region that holds all the reconstructions of the grid."""
        if self.view_group is None or not self.images:
            return
        rect = QRectF()
        for item in self.images.values():
            rect = rect.united(item.mapRectToParent(item.boundingRect()))
        pad = 0.02 * max(rect.width(), rect.height())
        self.view_group.show(rect.adjusted(-pad, -pad, pad, pad))

    def set_selected(self, ids: Sequence[str]) -> None:
        """Mark cells as selected (a yellow border)."""
        self.selected = list(ids)
        self._draw_selection()

    def cell_centre(self, sid: str) -> tuple[float, float] | None:
        """Scene coordinates of the centre of a cell (for tests and tools)."""
        if self.grid is None:
            return None
        cell = self.grid.cell_of(sid)
        if cell is None or cell not in self.views:
            return None
        rect = self.views[cell].sceneBoundingRect()
        return rect.center().x(), rect.center().y()

    def _draw_selection(self) -> None:
        if self.grid is None:
            return
        chosen = {self.grid.cell_of(s) for s in self.selected}
        for cell, view in self.views.items():
            view.setBorder(SELECTED_PEN if cell in chosen else None)

    def _on_scene_clicked(self, event: object) -> None:
        if self.grid is None:
            return
        pos = event.scenePos()  # type: ignore[attr-defined]
        for (i, j), view in self.views.items():
            if view.sceneBoundingRect().contains(pos):
                sid = self.grid.ids[i][j]
                if sid in self.images:
                    ctrl = bool(event.modifiers() & Qt.KeyboardModifier.ControlModifier)  # type: ignore[attr-defined]
                    self.cell_clicked.emit(sid, ctrl)
                return


def _error_bars(
    x: np.ndarray, y: np.ndarray, std: np.ndarray, log_y: bool, colour: str
) -> pg.ErrorBarItem:
    """Bars of one standard deviation about the means ``y``, in the view's coordinates (log10
    of the values when ``log_y``; a bar reaching 0 or below stops at a tenth of the mean)."""
    if not log_y:
        return pg.ErrorBarItem(x=x, y=y, height=2 * std, beam=0.06, pen=colour)
    centre = np.log10(y)
    top = np.log10(y + std) - centre
    bottom = centre - np.log10(np.maximum(y - std, 0.1 * y))
    return pg.ErrorBarItem(x=x, y=centre, top=top, bottom=bottom, beam=0.06, pen=colour)


class DosePlotWidget(pg.PlotWidget):
    """A metric against dose (log axis): one line per (N, gridsize, loss), error bars over
    seeds, the chance level dashed; resolutions (:data:`LOG_AXIS_METRICS`) on a log axis."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(160)
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setLabel("bottom", "photons per pattern")
        self.getAxis("left").enableAutoSIPrefix(False)
        self.legend = self.addLegend(offset=(10, 10))
        self.curves: dict[str, pg.PlotDataItem] = {}

    def show_rows(self, rows: Sequence[dict[str, object]], metric: str) -> None:
        """Plot the finished rows for a results column of :data:`DOSE_METRICS`."""
        self.clear()
        self.curves = {}
        self.setLabel("left", DOSE_METRICS[metric])
        log_y = metric in LOG_AXIS_METRICS
        # in log mode the view's coordinates are log10 of the values: the plotted curves are
        # transformed by pyqtgraph, the error bars and the chance line here
        self.setLogMode(x=False, y=log_y)
        doses: set[float] = set()
        for k, series in enumerate(dose_series(list(rows), metric)):  # type: ignore[arg-type]
            if not series.x:
                continue
            x = np.log10(np.asarray(series.x))
            y = np.asarray(series.means)
            colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
            curve = self.plot(
                x,
                y,
                pen=pg.mkPen(colour, width=2),
                symbol="o",
                symbolSize=7,
                symbolBrush=colour,
                name=series.label,
            )
            self.curves[series.label] = curve
            if any(c > 1 for c in series.counts):
                self.addItem(_error_bars(x, y, np.asarray(series.stds), log_y, colour))
            doses.update(series.x)
        chance = chance_mean(list(rows), metric)  # type: ignore[arg-type]
        if chance is not None:
            line = pg.InfiniteLine(
                pos=math.log10(chance) if log_y and chance > 0 else chance,
                angle=0,
                pen=pg.mkPen("#999999", width=1, style=Qt.PenStyle.DashLine),
                label="chance",
                labelOpts={"position": 0.95, "color": "#999999"},  # clear of the legend
            )
            self.addItem(line)
        ticks = [(math.log10(d), dose_label(d)) for d in sorted(doses)]
        self.getAxis("bottom").setTicks([ticks] if ticks else None)


class StudyPanelWidget(QWidget):
    """The Study tab.

    Signals
    -------
    run_requested(StudySpec, str)
        Run (or resume) the spec of the form into the folder.
    cancel_requested()
    open_requested(str)
        Show an existing study folder.
    compare_requested(list)
        Setting ids to compare with their ground truth.
    """

    run_requested = Signal(object, str)
    cancel_requested = Signal()
    open_requested = Signal(str)
    compare_requested = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.folder: StudyFolder | None = None
        self.snaps: dict[str, StitchSnapshot] = {}
        self.last_folder = ""

        # ---- the form
        self.n_checks = {n: QCheckBox(str(n)) for n in SUPPORTED_N}
        self.gridsize_checks = {g: QCheckBox(str(g)) for g in SUPPORTED_GRIDSIZE}
        self.loss_checks = {loss: QCheckBox(loss) for loss in LOSSES}
        self.photons_edit = QLineEdit("1e3 1e4 1e6 1e9")
        self.photons_edit.setToolTip("photons per pattern, separated by spaces or commas")
        self.seeds_edit = QLineEdit("0")
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 10_000)
        self.epochs_spin.setValue(10)
        self.positions_spin = QSpinBox()
        self.positions_spin.setRange(8, 1_000_000)
        self.positions_spin.setValue(400)
        self.object_combo = QComboBox()
        self.object_combo.addItems(["lines", "siemens"])
        self.width_spin = QSpinBox()
        self.width_spin.setRange(1, 8)
        self.width_spin.setValue(StudySpec.n_filters_scale)
        self.width_spin.setToolTip(
            "network width (n_filters_scale): 1 trains about 3x faster per step than 2"
        )
        self.warmup_spin = QSpinBox()
        # -1 shows "default": the engine's one warm-up rule (None in the spec)
        self.warmup_spin.setRange(-1, 10_000)
        self.warmup_spin.setSpecialValueText("default (3, at most a third)")
        self.warmup_spin.setValue(-1)
        self.warmup_spin.setSuffix(" epochs")
        self.warmup_spin.setToolTip(
            "MAE-only epochs before the chosen loss. Default: the engine's rule, as in the "
            "app and the command line (3 epochs, never more than a third of the run); "
            "0: the loss is what the column says from the first step"
        )
        self.base_spec: StudySpec | None = None
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("study folder (new, or one to resume)")
        browse = QPushButton("…")
        browse.setMaximumWidth(32)
        browse.clicked.connect(self._browse_folder)
        self.count_label = QLabel("")
        self.run_button = QPushButton("Run study")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.open_button = QPushButton("Open study…")
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.error_label = QLabel("")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #d04040;")
        for n, box in self.n_checks.items():
            box.setChecked(n == 64)
        for g, box in self.gridsize_checks.items():
            box.setChecked(g in (1, 2))
        self.loss_checks["nll"].setChecked(True)

        def row(boxes: dict[object, QCheckBox]) -> QWidget:
            holder = QWidget()
            layout = QHBoxLayout(holder)
            layout.setContentsMargins(0, 0, 0, 0)
            for box in boxes.values():
                layout.addWidget(box)
                box.toggled.connect(self._update_count)
            layout.addStretch(1)
            return holder

        form = QFormLayout()
        form.addRow("N", row(self.n_checks))  # type: ignore[arg-type]
        form.addRow("gridsize", row(self.gridsize_checks))  # type: ignore[arg-type]
        form.addRow("photons", self.photons_edit)
        form.addRow("loss", row(self.loss_checks))  # type: ignore[arg-type]
        form.addRow("seeds", self.seeds_edit)
        form.addRow("epochs", self.epochs_spin)
        form.addRow("positions", self.positions_spin)
        form.addRow("object", self.object_combo)
        form.addRow("network width", self.width_spin)
        form.addRow("MAE warm-up", self.warmup_spin)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(browse)
        form.addRow("folder", folder_row)
        axes_box = QGroupBox("Axes")
        axes_box.setLayout(form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(axes_box)
        left_layout.addWidget(self.count_label)
        left_layout.addLayout(buttons)
        left_layout.addWidget(self.open_button)
        left_layout.addWidget(self.progress_bar)
        left_layout.addWidget(self.status_label)
        left_layout.addWidget(self.error_label)
        left_layout.addStretch(1)
        left.setMaximumWidth(340)
        self.photons_edit.textChanged.connect(self._update_count)
        self.seeds_edit.textChanged.connect(self._update_count)

        # ---- results
        self.part_combo = QComboBox()
        self.part_combo.addItems(["amplitude", "phase"])
        self.seed_combo = QComboBox()
        self.compare_button = QPushButton("Compare selected")
        self.compare_button.setEnabled(False)
        self.grid_view = ThumbnailGridWidget()
        self.metric_combo = QComboBox()
        for key, label in DOSE_METRICS.items():
            self.metric_combo.addItem(label, key)
        self.dose_plot = DosePlotWidget()
        self.title_label = QLabel("No study yet: set the axes and run, or open a study folder.")
        grid_controls = QHBoxLayout()
        grid_controls.addWidget(QLabel("Show"))
        grid_controls.addWidget(self.part_combo)
        grid_controls.addWidget(QLabel("Seed"))
        grid_controls.addWidget(self.seed_combo)
        grid_controls.addWidget(self.compare_button)
        hint = QLabel("Click a cell: compare it with the ground truth. Ctrl+click: select.")
        hint.setStyleSheet("color: #888888;")
        grid_controls.addWidget(hint, 1)
        grid_box = QWidget()
        grid_layout = QVBoxLayout(grid_box)
        grid_layout.setContentsMargins(0, 0, 0, 0)
        grid_layout.addWidget(self.title_label)
        grid_layout.addLayout(grid_controls)
        grid_layout.addWidget(self.grid_view, 1)
        plot_box = QWidget()
        plot_layout = QVBoxLayout(plot_box)
        plot_layout.setContentsMargins(0, 0, 0, 0)
        plot_controls = QHBoxLayout()
        plot_controls.addWidget(QLabel("Metric"))
        plot_controls.addWidget(self.metric_combo)
        plot_controls.addStretch(1)
        plot_layout.addLayout(plot_controls)
        plot_layout.addWidget(self.dose_plot, 1)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(grid_box)
        right.addWidget(plot_box)
        right.setSizes([600, 300])
        layout = QHBoxLayout(self)
        layout.addWidget(left)
        layout.addWidget(right, 1)

        self.run_button.clicked.connect(self._on_run_clicked)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.open_button.clicked.connect(self._choose_study)
        self.part_combo.currentTextChanged.connect(lambda _t: self._draw_grid())
        self.seed_combo.currentIndexChanged.connect(lambda _i: self._draw_grid())
        self.metric_combo.currentIndexChanged.connect(lambda _i: self._draw_plot())
        self.compare_button.clicked.connect(self._compare_selected)
        self.grid_view.cell_clicked.connect(self._on_cell_clicked)
        self._update_count()

    # ------------------------------------------------------------------ the form

    def spec(self) -> StudySpec:
        """The spec the form describes.

        Raises
        ------
        StudyError
            A field is empty or invalid (the message names it).
        """
        return spec_from_form(
            N=[n for n, box in self.n_checks.items() if box.isChecked()],
            gridsize=[g for g, box in self.gridsize_checks.items() if box.isChecked()],
            photons=self.photons_edit.text(),
            loss=[name for name, box in self.loss_checks.items() if box.isChecked()],
            seeds=self.seeds_edit.text(),
            epochs=self.epochs_spin.value(),
            positions=self.positions_spin.value(),
            object_kind=self.object_combo.currentText(),
            n_filters_scale=self.width_spin.value(),
            mae_warmup_epochs=None if self.warmup_spin.value() < 0 else self.warmup_spin.value(),
            base=self.base_spec,
        )

    def set_spec(self, spec: StudySpec) -> None:
        """Fill the form from a spec (when a study folder is opened)."""
        for n, box in self.n_checks.items():
            box.setChecked(n in spec.N)
        for g, box in self.gridsize_checks.items():
            box.setChecked(g in spec.gridsize)
        for name, box in self.loss_checks.items():
            box.setChecked(name in spec.loss)
        self.photons_edit.setText(" ".join(dose_label(p) for p in spec.photons))
        self.seeds_edit.setText(" ".join(str(s) for s in spec.seeds))
        self.epochs_spin.setValue(spec.epochs)
        self.positions_spin.setValue(spec.positions)
        if self.object_combo.findText(spec.object_kind) < 0:
            self.object_combo.addItem(spec.object_kind)
        self.object_combo.setCurrentText(spec.object_kind)
        self.width_spin.setValue(spec.n_filters_scale)
        warmup = spec.mae_warmup_epochs
        self.warmup_spin.setValue(-1 if warmup is None else warmup)
        self.base_spec = spec

    def set_running(self, running: bool) -> None:
        """Enable the buttons that make sense while a study runs (or not)."""
        self.run_button.setEnabled(not running)
        self.open_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def show_error(self, message: str) -> None:
        self.error_label.setText(message)

    def _update_count(self) -> None:
        try:
            total = len(self.spec().settings())
        except PtychoError as exc:
            self.count_label.setText(str(exc))
            return
        self.count_label.setText(f"{total} settings")

    def _on_run_clicked(self) -> None:
        self.error_label.setText("")
        folder = self.folder_edit.text().strip()
        if not folder:
            self.show_error("folder: choose a study folder (a new one, or one to resume)")
            return
        try:
            spec = self.spec()
        except PtychoError as exc:
            self.show_error(str(exc))
            return
        self.run_requested.emit(spec, folder)

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Study folder", self.last_folder)
        if path:
            self.folder_edit.setText(path)

    def _choose_study(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a study folder", self.last_folder)
        if path:
            self.open_requested.emit(path)

    # ------------------------------------------------------------------ results

    def show_folder(self, folder: StudyFolder, snaps: dict[str, StitchSnapshot]) -> None:
        """Show a study folder's results; ``snaps`` are the reconstructions read (in a worker)
        since the folder was last shown (:meth:`StudyFolder.reconstructions` of the ids not
        in :attr:`snaps`)."""
        if self.folder is None or self.folder.out != folder.out or self.folder.spec != folder.spec:
            self.snaps = {}
            self.grid_view.set_selected([])
            self.seed_combo.blockSignals(True)
            self.seed_combo.clear()
            for seed in folder.spec.seeds:
                self.seed_combo.addItem(str(seed), seed)
            self.seed_combo.blockSignals(False)
        self.folder = folder
        self.last_folder = str(folder.out.parent)
        self.snaps.update(snaps)
        other = (
            f"; {folder.other_engine} made by another engine version (view only)"
            if folder.other_engine
            else ""
        )
        self.title_label.setText(
            f"{folder.out}: {len(folder.rows)} of {folder.total} settings done "
            f"({folder.spec.epochs} epochs, {folder.spec.positions} positions, "
            f"{folder.spec.object_kind}){other}"
        )
        self._draw_grid()
        self._draw_plot()

    def _draw_grid(self) -> None:
        if self.folder is None:
            return
        seed = self.seed_combo.currentData()
        grid = study_grid(self.folder.spec, None if seed is None else int(seed), self.folder.ids)
        tips = {sid: cell_tooltip(row) for sid, row in self.folder.rows.items()}
        self.grid_view.show_grid(grid, self.snaps, self.part_combo.currentText(), tips)

    def _draw_plot(self) -> None:
        if self.folder is None:
            return
        metric = str(self.metric_combo.currentData())
        self.dose_plot.show_rows(self.folder.ordered_rows(), metric)

    def _on_cell_clicked(self, sid: str, ctrl: bool) -> None:
        if not ctrl:
            self.compare_requested.emit([sid])
            return
        chosen = list(self.grid_view.selected)
        if sid in chosen:
            chosen.remove(sid)
        elif len(chosen) < MAX_SELECTED:
            chosen.append(sid)
        else:
            self.show_error(f"select at most {MAX_SELECTED} cells to compare")
        self.grid_view.set_selected(chosen)
        self.compare_button.setEnabled(bool(chosen))
        self.compare_button.setText(f"Compare selected ({len(chosen)})")

    def _compare_selected(self) -> None:
        if self.grid_view.selected:
            self.compare_requested.emit(list(self.grid_view.selected))


def default_study_folder(base: Path) -> Path:
    """A new folder name under ``base``: ``study-1``, ``study-2``, … (the first not taken)."""
    k = 1
    while (base / f"study-{k}").exists():
        k += 1
    return base / f"study-{k}"
