"""The image pane of the app's views (:class:`ImagePaneWidget`) and the small pyqtgraph
pieces it is built from: linked views (:class:`ViewGroup`), a view box whose right-click menu
is the pane's display menu, and labels that do not widen a narrow pane.

Every pane keeps its colour levels fixed after the first frame of a run (``autoLevels`` is
never used) unless the user changes them on its colour bar or in its display menu, so a
redraw costs one conversion (:mod:`ptycho_engine.display`) and one ``setImage``. A pane holds
the complex data (amplitude and phase), strided to at most 512 x 512 for display, and shows
the quantity its display menu chooses; its view coordinates are pixels of the full image, so
regions, profiles, scale bars and linked views do not depend on the stride.

The conversion of the data into the displayed image (with phase unwrapping) is
:class:`~ptycho_gui.widgets.pane_conversion.PaneConversionMixin`; the axes, scale bar, line
profile and region statistics are :class:`~ptycho_gui.widgets.pane_overlays.PaneOverlaysMixin`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QToolButton, QWidget

from ptycho_engine.display import (
    COMPLEX_MODES,
    PHASE_LEVELS,
    DisplayMode,
    amplitude_lut,
    colour_lut,
    default_colour_map,
    default_levels,
    display_step,
    diverging_lut,
    downsample,
    phase_lut,
    robust_range,
)
from ptycho_gui.widgets.display_controls import (
    DisplayMenu,
    DisplayState,
    ScaleBarItem,
    set_axis_units,
)
from ptycho_gui.widgets.pane_conversion import PaneConversionMixin
from ptycho_gui.widgets.pane_overlays import PaneOverlaysMixin

#: Scalar modes that depend on the phase: no patch, no phase (the complex mode blanks those
#: pixels itself; amplitudes there are 0, drawn black already).
OUTSIDE_COVERED_MODES = frozenset({DisplayMode.PHASE, DisplayMode.REAL, DisplayMode.IMAGINARY})

__all__ = [
    "COLOUR_BAR_MIN_WIDTH",
    "ImagePaneWidget",
    "NarrowLabelItem",
    "PaneViewBox",
    "ViewGroup",
]

#: The colour bar is drawn only in panes at least this wide.
COLOUR_BAR_MIN_WIDTH = 150


class ViewGroup(QObject):
    """Keeps image views showing the same region of their images, wherever they sit.

    pyqtgraph's own ``setXLink``/``setYLink`` line views up by their screen geometry, which
    suits stacked plots but, with locked aspect ratios in a grid of panes, lets panes in
    different rows and columns drift to different zooms. Here a zoom or pan made with the mouse
    in any view (``sigRangeChangedManually``) sets the same view rectangle in every other one,
    and :meth:`show` sets one for all. Changes that are not the user's (a view widening one
    axis to keep its aspect when it is resized) are not passed on: passing those on would
    widen the views in turn, without end.
    """

    def __init__(self, views: list[pg.ViewBox], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.views = list(views)
        for view in self.views:
            view.sigRangeChangedManually.connect(
                lambda _mask, v=view: self.show(v.viewRect(), source=v)
            )

    def show(self, rect: QRectF, source: pg.ViewBox | None = None) -> None:
        """Show ``rect`` (view coordinates) in every view but ``source``."""
        for view in self.views:
            if view is not source:
                view.setRange(rect=rect, padding=0.0)


class PaneViewBox(pg.ViewBox):
    """A ViewBox whose right-click menu is its pane's display menu."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.display_menu: DisplayMenu | None = None

    def raiseContextMenu(self, ev: Any) -> None:  # noqa: N802 - pyqtgraph API
        if self.display_menu is None:
            super().raiseContextMenu(ev)
            return
        self.display_menu.popup(ev.screenPos().toPoint())


class NarrowLabelItem(pg.LabelItem):
    """A label that does not widen its layout: pyqtgraph's makes its text width the minimum
    width of the pane, so a long title or caption would push the image out of a narrow pane.
    Text beyond the pane's width is cut (the pane's tooltip holds it all)."""

    def updateMin(self) -> None:  # noqa: N802 - pyqtgraph API
        super().updateMin()
        self.setMinimumWidth(0)
        height = self._sizeHint[Qt.SizeHint.MinimumSize][1]
        self._sizeHint[Qt.SizeHint.MinimumSize] = (0, height)
        self._sizeHint[Qt.SizeHint.PreferredSize] = (0, height)
        self.updateGeometry()


def _lut_name(lut: np.ndarray | None) -> str | None:
    """The name of one of the app's own maps (grey, cyclic, diverging), else None."""
    if lut is None:
        return None
    for name, table in (
        ("grey", amplitude_lut(len(lut))),
        ("cyclic", phase_lut(len(lut))),
        ("diverging", diverging_lut(len(lut))),
    ):
        if np.array_equal(lut, table):
            return name
    return None


class ImagePaneWidget(PaneConversionMixin, PaneOverlaysMixin, pg.GraphicsLayoutWidget):
    """One titled image in a plot with a locked aspect ratio (row 0 at the top), axes in
    pixels or metres, a scale bar, a colour bar with adjustable levels and a display menu
    (right click, or the ≡ button): the quantity, the colour map, phase ramp removal and
    unwrapping, levels, a line profile and region statistics.

    Parameters
    ----------
    title : str
    lut : ndarray, (n, 3) uint8, optional
        Colour map of the first quantity (the app's grey or cyclic maps mean "the default");
        None for a complex (RGB) pane.
    fixed_levels : (float, float), optional
        Levels of the first quantity that never come from the data (a phase's full circle).
    modes : tuple of DisplayMode, optional
        The quantities the menu offers (default: those of a complex image).
    mode : DisplayMode, optional
        The first quantity (default: complex without a ``lut``, phase with the full circle as
        ``fixed_levels``, else amplitude).
    subject : str, optional
        When given, the title follows the quantity: ``"<subject> <quantity>"``.

    Signals
    -------
    display_changed(DisplayState)
        The user chose another quantity, colour map, ramp removal or unwrapping in the menu.
    levels_edited(tuple)
        The user set the levels (colour bar, menu): ``(low, high)``.
    region_changed(tuple), region_finished(tuple)
        The user moves (is done moving) the region: ``(x, y, width, height)``, pixels.
    line_changed(tuple)
        The user moved the profile line: ``((x0, y0), (x1, y1))``, pixels.

    Coordinates are pixels of the full image (the display may be strided): pixel ``(r, c)``
    covers ``[c, c + 1] x [r, r + 1]``.
    """

    display_changed = Signal(object)
    levels_edited = Signal(object)
    region_changed = Signal(object)
    region_finished = Signal(object)
    line_changed = Signal(object)

    def __init__(
        self,
        title: str,
        lut: np.ndarray | None = None,
        fixed_levels: tuple[float, float] | None = None,
        parent: QWidget | None = None,
        *,
        modes: tuple[DisplayMode, ...] | None = None,
        mode: DisplayMode | None = None,
        subject: str | None = None,
    ) -> None:
        super().__init__(parent)
        self.setMinimumSize(140, 140)
        #: The constructor's title (:meth:`set_title` changes the line shown, not this).
        self.title = title
        self._title = title
        self.caption = ""
        self.subject = subject
        self.modes = tuple(modes) if modes is not None else COMPLEX_MODES
        if mode is None and modes:
            mode = self.modes[0]
        elif mode is None:
            if lut is None:
                mode = DisplayMode.COMPLEX
            elif fixed_levels == PHASE_LEVELS:
                mode = DisplayMode.PHASE
            else:
                mode = DisplayMode.AMPLITUDE
        if self.modes and mode not in self.modes:
            raise ValueError(f"mode {mode.value!r} is not one of the pane's modes")
        self._initial_mode = mode
        name = _lut_name(lut)
        self._custom_lut = lut if lut is not None and name is None else None
        colour = None if name is None or name == default_colour_map(mode, fixed_levels) else name
        self.state = DisplayState(mode, colour)
        self._fixed_levels = fixed_levels
        self.levels: tuple[float, float] | None = fixed_levels
        self.user_levels = False
        self.frames = 0

        self._label = NarrowLabelItem(title, size="9pt")
        self.addItem(self._label, row=0, col=0, colspan=2)
        self.view = PaneViewBox(lockAspect=True, invertY=True)
        self.plot: pg.PlotItem = self.addPlot(row=1, col=0, viewBox=self.view)
        self.plot.setMenuEnabled(False, enableViewBoxMenu=None)
        self.plot.hideButtons()
        for name_ in ("left", "bottom"):
            self.plot.getAxis(name_).setStyle(tickLength=-4)
        self.image = pg.ImageItem()
        self.view.addItem(self.image)
        #: Black over the pixels no patch covered, in the phase-like modes: the canvas holds 0
        #: there, which a phase map would draw as a measured phase of 0.
        self.outside = pg.ImageItem()
        self.outside.setZValue(self.image.zValue() + 1)
        self.outside.setVisible(False)
        self.view.addItem(self.outside)
        self.colour_bar = pg.ColorBarItem(
            values=(0.0, 1.0), width=10, interactive=True, colorMapMenu=False, rounding=1e-6
        )
        self.colour_bar.getAxis("right").setWidth(44)
        self.addItem(self.colour_bar, row=1, col=1)
        self.colour_bar.sigLevelsChanged.connect(self._on_colour_bar_levels_changed)
        self.colour_bar.sigLevelsChangeFinished.connect(self._on_colour_bar_levels_finished)
        self.scale_bar = ScaleBarItem(self.view)
        self._axes_wanted = True
        self.pixel_size_m: float | None = None
        set_axis_units(self.plot, None)

        self.menu = DisplayMenu(self.modes, self)
        self.menu.sync(self.state)
        self.view.display_menu = self.menu
        self.menu.state_chosen.connect(self._on_menu_state_chosen)
        self.menu.levels_requested.connect(self._on_menu_levels_requested)
        self.menu.line_toggled.connect(self.show_line_profile)
        self.menu.region_toggled.connect(self.show_region)
        self.menu.axes_toggled.connect(self.show_axes)
        self.menu.zoom_reset_requested.connect(self.reset_zoom)
        self.menu_button = QToolButton(self)
        self.menu_button.setText("≡")
        self.menu_button.setToolTip("Display: quantity, colour map, levels, profile, region")
        self.menu_button.setAutoRaise(True)
        self.menu_button.setObjectName("display_button")
        # the view is black whatever the application's palette: a light button on it
        self.menu_button.setStyleSheet(
            "QToolButton { color: #e0e0e0; background: rgba(70, 70, 70, 170); border: none;"
            " border-radius: 3px; padding: 0px 4px; font-size: 12pt; }"
            "QToolButton:hover { background: rgba(110, 110, 110, 200); }"
            "QToolButton::menu-indicator { image: none; width: 0px; }"
        )
        self.menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.menu_button.setMenu(self.menu)

        # the data: strided for display, complex (amplitude, phase) or a ready-made image
        self._amplitude: np.ndarray | None = None
        self._phase: np.ndarray | None = None
        self._valid: np.ndarray | None = None
        self._raw: np.ndarray | None = None
        self._step = 1
        self._shape: tuple[int, int] | None = None
        self._generation = 0
        self._rendered = 0
        self._needs_zoom = False
        self._lut_key: object = None
        #: The array the image item shows: (H, W) float32 or (H, W, 3) uint8.
        self.displayed: np.ndarray | None = None
        #: The scalar image statistics and profiles use (the amplitude of a complex view).
        self.scalar: np.ndarray | None = None
        self._scalar_valid: np.ndarray | None = None
        self._shown_step = 1
        self._tasks: Any = None
        self._unwrap_token = ("unwrap", id(self))
        self._unwrapped: tuple[tuple[int, bool], np.ndarray, int] | None = None
        self.unwrap_pending = False

        self.line_roi: pg.LineSegmentROI | None = None
        self.profile_plot: pg.PlotItem | None = None
        self.profile_curve: pg.PlotDataItem | None = None
        self.region_roi: pg.RectROI | None = None
        self._info = NarrowLabelItem("", size="8pt", justify="left")
        self._info_shown = False
        self._quiet = False
        self._update_title()

    # ---------------------------------------------------------------- labels

    def set_title(self, text: str) -> None:
        """Change the title line (what the pane shows)."""
        self._title = text
        self._update_title()

    def set_caption(self, text: str) -> None:
        """A second line under the title naming the data: ``"#3 rPIE N=64 · epoch 12"``
        ("" removes it)."""
        self.caption = text
        self._update_title()

    def _update_title(self) -> None:
        text = self.title_text()
        self.setToolTip(f"{text}\n{self.caption}" if self.caption else text)
        if self.caption:
            text += f"<br><span style='color:#a0a0a0'>{self.caption}</span>"
        self._label.setText(text, size="9pt")

    def title_text(self) -> str:
        """The title line as shown (without the caption)."""
        state = self.state
        if self.subject is not None and (state.mode, state.remove_ramp, state.unwrap) != (
            self._initial_mode,
            False,
            False,
        ):
            return f"{self.subject} {state.text()}"
        return self._title

    # ---------------------------------------------------------------- data

    def set_data(
        self,
        amplitude: np.ndarray,
        phase: np.ndarray | None = None,
        valid: np.ndarray | None = None,
        levels: tuple[float, float] | None = None,
    ) -> None:
        """Show a complex image as the display menu chooses.

        Parameters
        ----------
        amplitude : ndarray, (H, W) float
        phase : ndarray, (H, W) float, optional
            Radians (None: a real, non-negative image such as a diffraction amplitude).
        valid : ndarray, (H, W) bool, optional
            Pixels the levels, statistics, ramp fit and unwrapping use.
        levels : (float, float), optional
            Overrides the stored levels; otherwise the first frame sets them and later frames
            reuse them.
        """
        amp = np.asarray(amplitude)
        step = display_step(amp.shape)
        self._amplitude = downsample(amp)
        self._phase = None if phase is None else downsample(np.asarray(phase))
        self._valid = None if valid is None else downsample(np.asarray(valid, dtype=bool))
        self._raw = None
        self._new_frame(amp.shape, step, levels)

    def set_image(
        self,
        image: np.ndarray,
        levels: tuple[float, float] | None = None,
        valid: np.ndarray | None = None,
    ) -> None:
        """Show a ready-made image (float (H, W) or uint8 (H, W, 3)) without automatic
        levels; the menu's quantities do not apply to it.

        ``levels`` overrides the stored ones; otherwise the first frame sets them from
        :func:`robust_range` of the (valid) pixels and later frames reuse them.
        """
        img = np.asarray(image)
        step = display_step(img.shape)
        self._raw = downsample(img)
        self._valid = None if valid is None else downsample(np.asarray(valid, dtype=bool))
        self._amplitude = self._phase = None
        self._new_frame(img.shape, step, levels)

    def _new_frame(
        self, shape: tuple[int, ...], step: int, levels: tuple[float, float] | None
    ) -> None:
        self._step = step
        self._generation += 1
        if levels is not None:
            self.levels = (float(levels[0]), float(levels[1]))
        for mode, action in self.menu.mode_actions.items():
            action.setEnabled(self._raw is None and mode in self.modes)
        if self._shape != (int(shape[0]), int(shape[1])):
            # a new shape (another N, a binned result): show all of it, once it is drawn
            self._needs_zoom = True
        self._shape = (int(shape[0]), int(shape[1]))
        self._render()

    def clear_image(self) -> None:
        """Remove the image (keeps the title)."""
        self.image.clear()
        self.frames = 0
        self._amplitude = self._phase = self._valid = self._raw = None
        self.displayed = self.scalar = None
        self._shape = None
        self._unwrapped = None
        self.reset_levels()
        self._update_overlays()

    def reset_zoom(self) -> None:
        """Show the whole image."""
        if self._shape is not None:
            h, w = self._shape
            self.view.setRange(rect=QRectF(0.0, 0.0, float(w), float(h)), padding=0.0)

    # ---------------------------------------------------------------- levels

    def reset_levels(self) -> None:
        """Take the levels from the next frame again."""
        initial = self.state.mode is self._initial_mode and not self.state.unwrap
        self.levels = self._fixed_levels if initial else None
        self.user_levels = False

    def set_levels(self, levels: tuple[float, float]) -> None:
        """Set the levels (no signal); they stay until changed or reset."""
        self.levels = (float(levels[0]), float(levels[1]))
        self._apply_levels()

    def _apply_levels(self) -> None:
        if self.levels is None:
            return
        if self.state.mode is DisplayMode.COMPLEX and self._raw is None:
            self._render()  # the levels are the amplitude range of the colours
            return
        self._sync_colour_bar()
        if self.displayed is not None and self.displayed.ndim == 2:
            self.image.setLevels(self.levels)

    def _sync_colour_bar(self) -> None:
        bar = self.colour_bar
        rgb = self.displayed is not None and self.displayed.ndim == 3
        bar.setVisible(not rgb and self.width() >= COLOUR_BAR_MIN_WIDTH)
        if self.levels is None or rgb:
            return
        low, high = self.levels
        bar.rounding = max(abs(high - low), 1e-12) * 1e-4
        bar.setLevels((low, high), update_items=False)

    def _on_colour_bar_levels_changed(self, bar: pg.ColorBarItem) -> None:
        low, high = (float(v) for v in bar.levels())
        if not high > low:
            return
        self.levels = (low, high)
        self.user_levels = True
        if self.displayed is not None and self.displayed.ndim == 2:
            self.image.setLevels(self.levels)
        self.levels_edited.emit(self.levels)

    def _on_colour_bar_levels_finished(self, _bar: pg.ColorBarItem) -> None:
        self._sync_colour_bar()
        self._refresh_colour_map()  # a phase over less than the circle: a non-cyclic map

    def _on_menu_levels_requested(self, which: str) -> None:
        if which == "circle":
            levels = PHASE_LEVELS
        elif self.scalar is not None:
            levels = robust_range(self.scalar, self._scalar_valid)
        else:
            return
        self.levels = levels
        self.user_levels = True
        self._apply_levels()
        self._refresh_colour_map()
        self.levels_edited.emit(self.levels)

    # ---------------------------------------------------------------- display state

    def set_display(self, state: DisplayState) -> None:
        """Show another quantity, colour map, ramp removal or unwrapping (no signal); a new
        quantity takes its levels from the image again."""
        if self.modes and state.mode not in self.modes:
            raise ValueError(f"mode {state.mode.value!r} is not one of the pane's modes")
        old = self.state
        self.state = state
        self.menu.sync(state)
        if (state.mode, state.remove_ramp, state.unwrap) != (
            old.mode,
            old.remove_ramp,
            old.unwrap,
        ):
            self.reset_levels()
        self._update_title()
        self._render()

    def _on_menu_state_chosen(self, state: DisplayState) -> None:
        self.set_display(state)
        self.display_changed.emit(state)

    def _lut(self) -> np.ndarray:
        name = self.state.colour_map
        if name is None and self._custom_lut is not None:
            return self._custom_lut
        if name is None:
            name = default_colour_map(self.state.mode, self.levels)
        return colour_lut(name)

    def _refresh_colour_map(self) -> None:
        if self.displayed is None or self.displayed.ndim == 3:
            return
        lut = self._lut()
        if self._lut_key is not lut:
            self._lut_key = lut
            self.image.setLookupTable(lut)
            n = len(lut)
            self.colour_bar.setColorMap(pg.ColorMap(np.linspace(0.0, 1.0, n), lut))

    @property
    def colour_map_name(self) -> str:
        """The colour map in use (``"custom"`` for a table given to the constructor)."""
        name = self.state.colour_map
        if name is None and self._custom_lut is not None:
            return "custom"
        return name or default_colour_map(self.state.mode, self.levels)

    # ---------------------------------------------------------------- drawing

    def _cover_outside(self, image: np.ndarray, step: int) -> None:
        """Cover the pixels outside the valid region in black (:attr:`outside`) where the
        mode shows the phase as a scalar: phase, real and imaginary part."""
        mask = self._scalar_valid  # the valid mask at the shown image's stride
        if (
            mask is None
            or image.ndim != 2
            or mask.shape != image.shape
            or self.state.mode not in OUTSIDE_COVERED_MODES
            or mask.all()
        ):
            self.outside.setVisible(False)
            return
        rgba = np.zeros((*mask.shape, 4), np.uint8)
        rgba[..., 3] = np.where(mask, 0, 255)
        self.outside.setImage(rgba, autoLevels=False, levels=(0, 255))
        h, w = image.shape
        self.outside.setRect(QRectF(0.0, 0.0, float(w * step), float(h * step)))
        self.outside.setVisible(True)

    def _render(self) -> bool:
        """Convert and show the current data; False when there is nothing (yet) to show."""
        converted = self._convert()
        if converted is None:
            return False
        image, scalar, step = converted
        self.displayed, self.scalar, self._shown_step = image, scalar, step
        if scalar is not None and self._valid is not None and scalar.shape != self._valid.shape:
            k = step // max(self._step, 1)
            self._scalar_valid = self._valid[::k, ::k]
        else:
            self._scalar_valid = self._valid
        if self.levels is None:
            if self._raw is not None:
                self.levels = (0.0, 255.0) if image.ndim == 3 else robust_range(image, self._valid)
            else:
                self.levels = default_levels(
                    image, self.state.mode, self._scalar_valid, unwrap=self.state.unwrap
                )
        shown_levels = (0.0, 255.0) if image.ndim == 3 else self.levels
        self._refresh_colour_map()
        self.image.setImage(image, autoLevels=False, levels=shown_levels)
        h, w = image.shape[:2]
        self.image.setRect(QRectF(0.0, 0.0, float(w * step), float(h * step)))
        self._cover_outside(image, step)
        self._sync_colour_bar()
        if self._rendered != self._generation:
            self._rendered = self._generation
            self.frames += 1
        if self._needs_zoom:
            self._needs_zoom = False
            self.reset_zoom()
        self._update_overlays()
        return True

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        button = getattr(self, "menu_button", None)  # pyqtgraph resizes during __init__
        if button is None:
            return
        button.adjustSize()
        button.move(self.width() - button.width() - 2, 2)
        button.raise_()
        self._fit_decorations()
