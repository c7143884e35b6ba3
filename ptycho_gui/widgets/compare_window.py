"""Side-by-side comparison of 2 to 6 runs: linked views, shared levels, difference, FRC with
its 1/7 and half-bit resolutions (against the reference run, and between any two runs), and a
region spanning every pane with each run's mean and standard deviation there and the FRC of
the chosen pair over it.

The FRC plot and the tables under the panes are in :mod:`ptycho_gui.widgets.compare_panels`,
the region in :mod:`ptycho_gui.widgets.compare_region`.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ptycho_engine.display import (
    COMPLEX_MODES,
    DisplayMode,
    amplitude_lut,
    diverging_lut,
    downsample,
    remove_phase_ramp,
)
from ptycho_gui.jobs import TaskWorker
from ptycho_gui.view_models.comparison import (
    LEVEL_POLICIES,
    MAX_RUNS,
    MIN_RUNS,
    Comparison,
    FrameImage,
    FrcCurve,
    PaneLevels,
    compare_frames,
    data_mismatch,
    pane_levels,
)
from ptycho_gui.view_models.runs import RunRecord
from ptycho_gui.widgets.compare_panels import (
    CrossingsTable,
    FrcPlotWidget,
    MetricsTable,
    RegionTable,
)
from ptycho_gui.widgets.compare_region import CompareRegionMixin
from ptycho_gui.widgets.display_controls import DisplayState
from ptycho_gui.widgets.image_pane import ImagePaneWidget, ViewGroup

MISMATCH_STYLE = (
    "QLabel { background: #6b4a00; color: #ffe9b0; padding: 6px; border-radius: 4px; "
    "font-weight: bold; }"
)


class CompareWindow(CompareRegionMixin, QWidget):
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
    allow_mixed : bool
        Compare runs of different data files (:func:`data_mismatch`) under a warning banner;
        without it such runs are refused.

    Raises
    ------
    ValueError
        Not 2 to 6 runs, a run without an object, names that do not match, or runs of
        different files without ``allow_mixed`` (the message is :func:`data_mismatch`'s).

    Signals
    -------
    comparison_ready()
        The frames and curves of the current reference are drawn.
    region_ready()
        The FRC of the chosen pair over the region is drawn (or known to be impossible).

    The FRC plot shows every run against the reference (solid), the pair chosen under "FRC
    of" (dashed), the 1/7 line and the half-bit curve; the crossings table gives each curve's
    resolution at both thresholds in pixels of the reference grid and, when a run's pixel
    size is known, in metres.
    """

    comparison_ready = Signal()
    region_ready = Signal()

    def __init__(
        self,
        records: list[RunRecord],
        scales: list[float],
        tasks: TaskWorker,
        names: list[str] | None = None,
        parent: QWidget | None = None,
        *,
        allow_mixed: bool = False,
    ) -> None:
        super().__init__(parent)
        if not MIN_RUNS <= len(records) <= MAX_RUNS:
            raise ValueError(f"select {MIN_RUNS} to {MAX_RUNS} runs, got {len(records)}")
        missing = [r.run_id for r in records if r.object is None]
        if missing:
            raise ValueError(f"runs {missing} have no reconstruction to compare")
        if names is not None and len(names) != len(records):
            raise ValueError(f"{len(names)} names for {len(records)} runs")
        self.mismatch = data_mismatch(records)
        if self.mismatch and not allow_mixed:
            raise ValueError(self.mismatch)
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
        for mode in COMPLEX_MODES:
            self.mode_combo.addItem(mode.value, mode)
        self.mode_combo.setToolTip("The quantity every pane shows (also in each pane's ≡ menu)")
        self.ramp_check = QCheckBox("Remove phase ramp")
        self.ramp_check.setToolTip(
            "Subtract each run's least-squares phase plane, weighted by its amplitude"
        )
        self.levels_combo = QComboBox()
        self.levels_combo.addItems(list(LEVEL_POLICIES))
        self.levels_combo.setToolTip(
            "auto: one colour range for every pane unless that would show a pane nearly flat "
            "(then each its own); shared: always one; per run: each pane its own"
        )
        self.region_check = QCheckBox("Region")
        self.region_check.setToolTip(
            "A rectangle on every pane: each run's mean and standard deviation there, and the "
            "FRC of the pair chosen under 'FRC of' over it"
        )
        self.banner = QLabel(
            f"Warning: {self.mismatch}. The runs may not show the same object."
            if self.mismatch
            else ""
        )
        self.banner.setObjectName("mismatch_banner")
        self.banner.setStyleSheet(MISMATCH_STYLE)
        self.banner.setWordWrap(True)
        self.banner.setVisible(bool(self.mismatch))
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
            pane.set_task_worker(tasks)
            self.panes.append(pane)
            grid.addWidget(pane, k // columns, k % columns)
            pane.display_changed.connect(self._on_pane_display_changed)
            pane.levels_edited.connect(self._on_pane_levels_edited)
            pane.region_changed.connect(lambda rect, k=k: self._on_pane_region_changed(k, rect))
            pane.region_finished.connect(lambda rect: self._request_region_frc())
            pane.menu.region_toggled.connect(self._on_pane_region_toggled)
        self.difference_view = ImagePaneWidget("Difference", diverging_lut(), modes=())
        self.pane_levels: PaneLevels | None = None
        self.region_table = RegionTable(len(records))
        self.region_curve: FrcCurve | None = None
        self.region_message = ""
        views = [p.view for p in self.panes] + [self.difference_view.view]
        self.view_group = ViewGroup(views, self)
        self.difference_combo = QComboBox()
        for name, r in zip(self.names, records, strict=True):
            self.difference_combo.addItem(name, r.run_id)
        self.difference_combo.setCurrentIndex(1)
        self.metrics_table = MetricsTable(len(records))
        self.frc_plot = FrcPlotWidget()
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
        self.crossings_table = CrossingsTable()
        self.crossing_rows: list[tuple[str, FrcCurve]] = []
        self.pixel_size_m: float | None = None
        self.comparison: Comparison | None = None

        display_row = QHBoxLayout()
        display_row.addWidget(QLabel("Show"))
        display_row.addWidget(self.mode_combo)
        display_row.addWidget(self.ramp_check)
        display_row.addWidget(QLabel("Levels"))
        display_row.addWidget(self.levels_combo)
        display_row.addWidget(self.region_check)
        display_row.addWidget(self.message, 1)
        runs_row = QHBoxLayout()
        runs_row.addWidget(QLabel("Reference run"))
        runs_row.addWidget(self.reference_combo, 1)
        runs_row.addWidget(QLabel("Difference of"))
        runs_row.addWidget(self.difference_combo, 1)
        runs_row.addWidget(QLabel("FRC of"))
        runs_row.addWidget(self.pair_a_combo, 1)
        runs_row.addWidget(QLabel("and"))
        runs_row.addWidget(self.pair_b_combo, 1)
        self.message.setWordWrap(True)
        for combo in (
            self.reference_combo,
            self.difference_combo,
            self.pair_a_combo,
            self.pair_b_combo,
        ):
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(8)
        tables = QSplitter(Qt.Orientation.Vertical)
        tables.addWidget(self.metrics_table)
        tables.addWidget(self.crossings_table)
        tables.addWidget(self.region_table)
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
        layout.addWidget(self.banner)
        layout.addLayout(display_row)
        layout.addLayout(runs_row)
        layout.addWidget(splitter, 1)

        self.frames: list[FrameImage] = []
        self.curves: list = []
        self.tasks = tasks
        self._token = ("compare", id(self))
        self._region_token = ("compare-region", id(self))
        tasks.task_finished.connect(self._on_tasks_task_finished)
        tasks.task_failed.connect(self._on_tasks_task_failed)
        self.mode_combo.currentIndexChanged.connect(lambda _i: self._on_controls_changed())
        self.ramp_check.toggled.connect(lambda _on: self._on_controls_changed())
        self.levels_combo.currentIndexChanged.connect(lambda _i: self._redraw())
        self.region_check.toggled.connect(self.show_region)
        self.reference_combo.currentIndexChanged.connect(lambda _i: self._rebuild())
        self.difference_combo.currentIndexChanged.connect(lambda _i: self._draw_difference())
        # every pair's FRC is computed with the frames: choosing one only draws
        self.pair_a_combo.currentIndexChanged.connect(lambda _i: self._on_pair_changed())
        self.pair_b_combo.currentIndexChanged.connect(lambda _i: self._on_pair_changed())
        self.metrics_table.fill(self.records, self.names)
        self.fit_to_screen()
        self._rebuild()

    def fit_to_screen(self) -> None:
        """Keep the window on the primary screen: no larger than its available geometry and
        moved inside it."""
        screen = QGuiApplication.primaryScreen()
        if screen is None:
            return
        available = screen.availableGeometry()
        frame = self.frameGeometry()
        # the frame's margins are only known once shown: keep them out of the size
        extra_w = max(0, frame.width() - self.width())
        extra_h = max(0, frame.height() - self.height())
        width = min(self.width(), available.width() - extra_w)
        height = min(self.height(), available.height() - extra_h)
        self.resize(max(width, 1), max(height, 1))
        frame = self.frameGeometry()
        x = min(max(frame.x(), available.x()), available.x() + available.width() - frame.width())
        y = min(max(frame.y(), available.y()), available.y() + available.height() - frame.height())
        if (x, y) != (frame.x(), frame.y()):
            self.move(max(x, available.x()), max(y, available.y()))

    def on_screen(self) -> bool:
        """True when the whole window lies on the primary screen's available geometry."""
        screen = QGuiApplication.primaryScreen()
        if screen is None:
            return True
        return QRect(screen.availableGeometry()).contains(self.frameGeometry())

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.fit_to_screen()
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
        if kind == "compare" and token == self._region_token:
            self._on_region_frc(result)
            return
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
        for pane in (*self.panes, self.difference_view):
            pane.set_pixel_size(self.pixel_size_m)
        self._redraw()
        self._draw_frc()
        self.reset_zoom()
        self._request_region_frc()
        self.comparison_ready.emit()

    def _on_tasks_task_failed(self, kind: str, token: object, message: str) -> None:
        if kind == "compare" and token == self._token:
            self.frames = []
            self.message.setText(message)
        elif kind == "compare" and token == self._region_token:
            self.region_curve = None
            self.region_message = message
            self._draw_frc()
            self.region_ready.emit()

    @property
    def display_state(self) -> DisplayState:
        """What every pane shows (the "Show" and ramp controls)."""
        mode = self.mode_combo.currentData()
        state = self.panes[0].state
        return state.replace(
            mode=mode if isinstance(mode, DisplayMode) else DisplayMode.AMPLITUDE,
            remove_ramp=self.ramp_check.isChecked(),
        )

    def set_display(self, state: DisplayState) -> None:
        """Show ``state`` in every pane (and in the controls)."""
        for widget in (self.mode_combo, self.ramp_check):
            widget.blockSignals(True)
        self.mode_combo.setCurrentIndex(max(0, self.mode_combo.findData(state.mode)))
        self.ramp_check.setChecked(state.remove_ramp)
        for widget in (self.mode_combo, self.ramp_check):
            widget.blockSignals(False)
        for pane in self.panes:
            pane.set_display(state)
        self._redraw()

    def _on_controls_changed(self) -> None:
        self.set_display(self.display_state)

    def _on_pane_display_changed(self, state: DisplayState) -> None:
        self.set_display(state)

    def _on_pane_levels_edited(self, levels: tuple[float, float]) -> None:
        if self.pane_levels is not None and not self.pane_levels.shared:
            return  # each pane its own levels: the user set one pane's
        for pane in self.panes:
            if pane.levels != levels:
                pane.set_levels(levels)
                pane.user_levels = True

    def _level_inputs(self, state: DisplayState) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The images whose levels the panes share (strided as the panes show them: the
        levels come from the pixels on screen) and their valid masks."""
        images, masks = [], []
        for pane, frame in zip(self.panes, self.frames, strict=True):
            amplitude = downsample(np.abs(frame.object).astype(np.float32))
            valid = downsample(frame.valid)
            if state.mode is DisplayMode.COMPLEX:
                images.append(amplitude)  # the levels are the brightness range
            else:
                phase = downsample(np.angle(frame.object).astype(np.float32))
                images.append(pane.convert(amplitude, phase, valid))
            masks.append(valid)
        return images, masks

    def _redraw(self) -> None:
        if not self.frames:
            return
        state = self.display_state
        policy = self.levels_combo.currentText()
        if state.mode is DisplayMode.PHASE and state.unwrap:
            self.pane_levels = None  # each pane's unwrapped phase sets its own
        else:
            images, masks = self._level_inputs(state)
            phase = state.mode is DisplayMode.PHASE
            self.pane_levels = pane_levels(images, masks, policy, phase)
        for k, (pane, frame) in enumerate(zip(self.panes, self.frames, strict=True)):
            pane.reset_levels()
            levels = None if self.pane_levels is None else self.pane_levels.levels[k]
            pane.set_data(
                np.abs(frame.object).astype(np.float32),
                np.angle(frame.object).astype(np.float32),
                frame.valid,
                levels=levels,
            )
            note = ""
            if self.pane_levels is not None and not self.pane_levels.shared:
                note = " · own levels"
            pane.set_caption(state.text() + note)
        self._say_levels()
        self._draw_difference()
        self._fill_region_table()

    def _say_levels(self) -> None:
        levels = self.pane_levels
        if levels is None or not self.frames:
            return
        region = (
            f"common region {self.frames[0].object.shape[1]} x "
            f"{self.frames[0].object.shape[0]} px (reference grid)"
        )
        if levels.shared or not levels.flat:
            self.message.setText(region)
            return
        flat = ", ".join(self.names[k] for k in levels.flat)
        self.message.setText(f"{region}; levels per run: shared ones would show {flat} nearly flat")

    def _draw_difference(self) -> None:
        if not self.frames:
            return
        k = max(0, self.difference_combo.currentIndex())
        ref = self.frames[self.reference_index]
        run = self.frames[k]
        state = self.display_state
        both = run.valid & ref.valid
        if state.mode is DisplayMode.PHASE:
            diff = np.angle(run.object * np.conj(ref.object)).astype(np.float32)
            if state.remove_ramp:
                weight = np.sqrt(np.abs(run.object) * np.abs(ref.object))
                diff = remove_phase_ramp(diff, weight, both)
            what = "phase"
        elif state.mode is DisplayMode.COMPLEX:
            diff = np.abs(run.object - ref.object).astype(np.float32)
            what = "|difference|"
        else:
            pane = self.panes[k]

            def shown(frame: FrameImage) -> np.ndarray:
                return pane.convert(
                    np.abs(frame.object).astype(np.float32),
                    np.angle(frame.object).astype(np.float32),
                    frame.valid,
                )

            diff = (shown(run) - shown(ref)).astype(np.float32)
            what = state.text()
        diff = np.where(both, diff, 0.0).astype(np.float32)
        finite = np.abs(diff[both & np.isfinite(diff)])
        span = float(np.percentile(finite, 99.5)) if finite.size else 1.0
        span = span if span > 0 else 1.0
        self.difference_view.set_image(diff, levels=(-span, span))
        self.difference_view.set_title(
            f"{self.names[k]} minus {self.names[self.reference_index]} ({what})"
        )

    # ---------------------------------------------------------------- FRC

    def _on_pair_changed(self) -> None:
        self._draw_frc()
        self._request_region_frc()

    def selected_pair(self) -> FrcCurve | None:
        """The FRC of the two runs chosen under "FRC of" (None for one run twice, or when it
        could not be computed)."""
        a, b = self.pair_a_combo.currentIndex(), self.pair_b_combo.currentIndex()
        if self.comparison is None or a < 0 or b < 0 or a == b:
            return None
        return self.comparison.pair(a, b)

    def _draw_frc(self) -> None:
        region = self.region_curve if self.region() is not None else None
        self.crossing_rows = self.frc_plot.draw(
            self.curves, self.names, self.reference_index, self.selected_pair(), region
        )
        self.crossings_table.fill(self.crossing_rows, self.pixel_size_m)

    def crossing_texts(self) -> list[list[str]]:
        """The crossings table as text, one list per row (name first), for tests."""
        return self.crossings_table.texts()
