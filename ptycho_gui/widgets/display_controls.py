"""The display controls of the image panes: what a pane shows (:class:`DisplayState`), the
display menu that changes it, a scale bar in metres and the axes in metres or pixels.

Nothing here converts images: the numpy converters are in :mod:`ptycho_engine.display`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Signal, SignalInstance
from PySide6.QtGui import QAction, QActionGroup, QBrush, QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QMenu, QWidget

from ptycho_engine.display import COLOUR_MAPS, PHASE_MODES, DisplayMode
from ptycho_engine.io.images import format_length, nice_length

#: Menu texts of the display modes.
MODE_TEXTS = {
    DisplayMode.AMPLITUDE: "Amplitude",
    DisplayMode.PHASE: "Phase",
    DisplayMode.REAL: "Real part",
    DisplayMode.IMAGINARY: "Imaginary part",
    DisplayMode.LOG_AMPLITUDE: "Log amplitude (log10)",
    DisplayMode.COMPLEX: "Complex (hue = phase)",
    DisplayMode.LOG_INTENSITY: "Log counts (log10(1 + |a|²))",
}
#: The scale bar is the largest 1, 2 or 5 x 10^k m not above this fraction of the view's width.
SCALE_BAR_FRACTION = 0.2


@dataclass(frozen=True)
class DisplayState:
    """What an image pane shows.

    Attributes
    ----------
    mode : DisplayMode
    colour_map : str or None
        One of :data:`ptycho_engine.display.COLOUR_MAPS`; None: the mode's default
        (:func:`ptycho_engine.display.default_colour_map`).
    remove_ramp : bool
        Phase ramp removed (the amplitude-weighted least-squares plane) in the modes that
        depend on the phase.
    unwrap : bool
        Phase unwrapped (phase mode only).
    """

    mode: DisplayMode = DisplayMode.AMPLITUDE
    colour_map: str | None = None
    remove_ramp: bool = False
    unwrap: bool = False

    def replace(self, **changes: object) -> DisplayState:
        """A copy with ``changes``."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def text(self) -> str:
        """A short description: ``"phase, ramp removed, unwrapped"``."""
        parts = [self.mode.value]
        if self.remove_ramp and self.mode in PHASE_MODES:
            parts.append("ramp removed")
        if self.unwrap and self.mode is DisplayMode.PHASE:
            parts.append("unwrapped")
        return ", ".join(parts)


class DisplayMenu(QMenu):
    """The display menu of an image pane (right click, or its tool button).

    Parameters
    ----------
    modes : tuple of DisplayMode
        The modes the pane's data allow (none for a ready-made image).

    Signals
    -------
    state_chosen(DisplayState)
        The user chose a mode, a colour map, ramp removal or unwrapping.
    levels_requested(str)
        ``"image"``: levels from the image shown; ``"circle"``: the full circle (phase).
    line_toggled(bool), region_toggled(bool), axes_toggled(bool)
        The line profile, the region statistics or the axes were switched.
    zoom_reset_requested()
    """

    state_chosen = Signal(object)
    levels_requested = Signal(str)
    line_toggled = Signal(bool)
    region_toggled = Signal(bool)
    axes_toggled = Signal(bool)
    zoom_reset_requested = Signal()

    def __init__(self, modes: tuple[DisplayMode, ...], parent: QWidget | None = None) -> None:
        super().__init__("Display", parent)
        self.setObjectName("display_menu")
        self.state = DisplayState(modes[0] if modes else DisplayMode.AMPLITUDE)
        self.mode_actions: dict[DisplayMode, QAction] = {}
        group = QActionGroup(self)
        for mode in modes:
            action = self.addAction(MODE_TEXTS[mode])
            action.setCheckable(True)
            action.setObjectName(f"mode_{mode.name.lower()}")
            group.addAction(action)
            action.triggered.connect(lambda _c=False, m=mode: self._choose(mode=m))
            self.mode_actions[mode] = action
        if modes:
            self.addSeparator()
        self.colour_menu = self.addMenu("Colour map")
        self.colour_actions: dict[str | None, QAction] = {}
        colours = QActionGroup(self)
        for name in (None, *COLOUR_MAPS):
            action = self.colour_menu.addAction(
                "default for the quantity" if name is None else name
            )
            action.setCheckable(True)
            colours.addAction(action)
            action.triggered.connect(lambda _c=False, n=name: self._choose(colour_map=n))
            self.colour_actions[name] = action
        has_phase = any(m in PHASE_MODES for m in modes)
        self.ramp_action = self.addAction("Remove phase ramp")
        self.ramp_action.setCheckable(True)
        self.ramp_action.setToolTip(
            "Subtract the least-squares plane of the phase, weighted by the amplitude"
        )
        self.ramp_action.triggered.connect(lambda on: self._choose(remove_ramp=bool(on)))
        self.unwrap_action = self.addAction("Unwrap phase")
        self.unwrap_action.setCheckable(True)
        self.unwrap_action.triggered.connect(lambda on: self._choose(unwrap=bool(on)))
        for action in (self.ramp_action, self.unwrap_action):
            action.setVisible(has_phase)
        self.addSeparator()
        self.levels_action = self.addAction("Levels from this image")
        self.levels_action.triggered.connect(lambda: self.levels_requested.emit("image"))
        self.circle_action = self.addAction("Levels: full circle (±π)")
        self.circle_action.triggered.connect(lambda: self.levels_requested.emit("circle"))
        self.addSeparator()
        self.line_action = self._toggle("Line profile", self.line_toggled)
        self.region_action = self._toggle("Region statistics", self.region_toggled)
        self.axes_action = self._toggle("Axes", self.axes_toggled)
        self.axes_action.setChecked(True)
        self.zoom_action = self.addAction("Reset zoom")
        self.zoom_action.triggered.connect(self.zoom_reset_requested)
        self.sync(self.state)

    def _toggle(self, text: str, signal: SignalInstance) -> QAction:
        action = self.addAction(text)
        action.setCheckable(True)
        action.triggered.connect(lambda on: signal.emit(bool(on)))
        return action

    def _choose(self, **changes: object) -> None:
        self.state_chosen.emit(self.state.replace(**changes))

    def sync(self, state: DisplayState) -> None:
        """Show ``state`` in the checks (no signal)."""
        self.state = state
        action = self.mode_actions.get(state.mode)
        if action is not None:
            action.setChecked(True)
        self.colour_actions[state.colour_map].setChecked(True)
        self.ramp_action.setChecked(state.remove_ramp)
        self.unwrap_action.setChecked(state.unwrap)
        phase_dependent = state.mode in PHASE_MODES
        self.ramp_action.setEnabled(phase_dependent)
        self.unwrap_action.setEnabled(state.mode is DisplayMode.PHASE)
        self.circle_action.setVisible(state.mode is DisplayMode.PHASE)
        self.colour_menu.setEnabled(state.mode is not DisplayMode.COMPLEX)


class ScaleBarItem(pg.GraphicsWidgetAnchor, pg.GraphicsObject):
    """A scale bar in the lower left corner of a ViewBox whose coordinates are pixels: the
    largest 1, 2 or 5 x 10^k m not above :data:`SCALE_BAR_FRACTION` of the visible width, with
    its length as a label (:func:`ptycho_engine.io.images.nice_length`, ``format_length``).
    It follows zooming; it is hidden while the pixel size is unknown.

    Attributes
    ----------
    pixel_size_m : float or None
    length_m : float
        The bar's length (0 while hidden).
    length_px : float
        The same in view pixels.
    label : str
        ``"200 nm"``.
    """

    def __init__(self, view: pg.ViewBox) -> None:
        pg.GraphicsObject.__init__(self)
        pg.GraphicsWidgetAnchor.__init__(self)
        self.setFlag(self.GraphicsItemFlag.ItemHasNoContents)
        self.view = view
        self.pixel_size_m: float | None = None
        self.length_m = 0.0
        self.length_px = 0.0
        self.label = ""
        self.bar = QGraphicsRectItem()
        self.bar.setPen(QPen(QColor("black"), 0))
        self.bar.setBrush(QBrush(QColor("white")))
        self.bar.setParentItem(self)
        # left-aligned over the bar: a centred label wider than a short bar would be cut off
        self.text = pg.TextItem("", color="w", fill=pg.mkBrush(0, 0, 0, 140), anchor=(0.0, 1.0))
        self.text.setParentItem(self)
        self.setParentItem(view)
        self.anchor(itemPos=(0, 1), parentPos=(0, 1), offset=(12, -10))
        view.sigRangeChanged.connect(self.update_bar)
        view.sigResized.connect(self.update_bar)
        self.setZValue(50)
        self.setVisible(False)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt API
        return QRectF()

    def set_pixel_size(self, pixel_size_m: float | None) -> None:
        """Set the view's pixel size (None: no bar)."""
        self.pixel_size_m = pixel_size_m if pixel_size_m and pixel_size_m > 0 else None
        self.update_bar()

    def update_bar(self, *_args: object) -> None:
        """Choose the length for the visible width and redraw."""
        width_px = self.view.viewRect().width()
        if self.pixel_size_m is None or not width_px > 0:
            self.length_m, self.length_px, self.label = 0.0, 0.0, ""
            self.setVisible(False)
            return
        self.length_m = nice_length(SCALE_BAR_FRACTION * width_px * self.pixel_size_m)
        self.length_px = self.length_m / self.pixel_size_m
        self.label = format_length(self.length_m)
        p0 = self.view.mapFromViewToItem(self, QPointF(0.0, 0.0))
        p1 = self.view.mapFromViewToItem(self, QPointF(self.length_px, 0.0))
        width = abs(p1.x() - p0.x())
        self.bar.setRect(QRectF(0.0, -5.0, width, 5.0))
        self.text.setText(self.label)
        self.text.setPos(-4.0, -6.0)
        self.setVisible(True)


def set_axis_units(plot: pg.PlotItem, pixel_size_m: float | None) -> None:
    """Label the image axes in metres (SI prefix from the range: µm, nm) when the pixel size
    is known, in pixels otherwise; the view's coordinates stay pixels."""
    for name, text in (("bottom", "x"), ("left", "y")):
        axis = plot.getAxis(name)
        if pixel_size_m:
            axis.setScale(pixel_size_m)
            axis.setLabel(text, units="m")
            axis.enableAutoSIPrefix(True)
        else:
            axis.setScale(1.0)
            # No prefix range: pyqtgraph computes the prefix once more when it is switched
            # off, from the range shown then (an empty view's -0.5 to 0.5 gave "milli", and
            # the ticks read 1000 times the pixels).
            axis.setLabel(text, units="px", siPrefixEnableRanges=())
            axis.enableAutoSIPrefix(False)
