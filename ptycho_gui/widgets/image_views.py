"""pyqtgraph image panes: object (amplitude, phase, complex), probe, loss and diffraction.

Every pane keeps its colour levels fixed after the first frame of a run (``autoLevels`` is
never used) unless the user changes them on its colour bar or in its display menu, so a
redraw costs one conversion (:mod:`ptycho_engine.display`) and one ``setImage``. A pane holds
the complex data (amplitude and phase), strided to at most 512 x 512 for display, and shows
the quantity its display menu chooses; its view coordinates are pixels of the full image, so
regions, profiles, scale bars and linked views do not depend on the stride.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QImage, QPixmap, QResizeEvent
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from ptycho_engine.display import (
    COMPLEX_MODES,
    INTENSITY_MODES,
    MAX_DISPLAY_SIDE,
    PHASE_LEVELS,
    DisplayMode,
    RegionStats,
    amplitude_lut,
    colour_lut,
    default_colour_map,
    default_levels,
    display_image,
    display_step,
    diverging_lut,
    downsample,
    line_profile,
    phase_lut,
    phase_wheel,
    region_stats,
    robust_range,
    unwrap_phase,
)
from ptycho_engine.io.images import format_length
from ptycho_gui.widgets.display_controls import (
    DisplayMenu,
    DisplayState,
    ScaleBarItem,
    set_axis_units,
)

__all__ = [
    "PHASE_LEVELS",
    "DecadeAxisItem",
    "DiffractionPairWidget",
    "DisplayState",
    "ImagePaneWidget",
    "LossPlotWidget",
    "ObjectViewsWidget",
    "ProbeViewWidget",
    "ViewGroup",
    "rgba_pixmap",
]

#: Without a task worker a pane unwraps on the GUI thread, on an image strided to this side
#: (about 40 ms for 256 x 256 against 150 ms for 512 x 512 on a loaded 2-core machine).
UNWRAP_SIDE = 256
#: The task kind a pane's unwrapping is posted as (the TaskWorker's numerical kind).
UNWRAP_KIND = "compare"
#: Height of a pane's profile plot, in pixels.
PROFILE_HEIGHT = 110
#: Axes are drawn only in panes at least this wide: in narrower ones (the probe's) they
#: would leave the image a few pixels; the scale bar still gives the scale.
AXES_MIN_WIDTH = 300
#: The colour bar is drawn only in panes at least this wide.
COLOUR_BAR_MIN_WIDTH = 150


def rgba_pixmap(rgba: np.ndarray) -> QPixmap:
    """A QPixmap of an (H, W, 4) uint8 RGBA array (copied)."""
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    h, w = rgba.shape[:2]
    image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return QPixmap.fromImage(image.copy())


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


class ImagePaneWidget(pg.GraphicsLayoutWidget):
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

    def set_task_worker(self, tasks: Any) -> None:
        """Unwrap phases in ``tasks`` (a :class:`ptycho_gui.jobs.TaskWorker`) instead of on
        the GUI thread; None unwraps here, on an image strided to :data:`UNWRAP_SIDE`."""
        if self._tasks is not None:
            self._tasks.task_finished.disconnect(self._on_tasks_task_finished)
        self._tasks = tasks
        if tasks is not None:
            tasks.task_finished.connect(self._on_tasks_task_finished)

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

    def convert(
        self,
        amplitude: np.ndarray,
        phase: np.ndarray | None = None,
        valid: np.ndarray | None = None,
    ) -> np.ndarray:
        """What this pane would show for these data (no unwrapping): for owners that share
        levels between panes."""
        state = self.state
        return display_image(
            amplitude, phase, state.mode, remove_ramp=state.remove_ramp, valid=valid
        )

    # ---------------------------------------------------------------- drawing

    def _convert(self) -> tuple[np.ndarray, np.ndarray | None, int] | None:
        """(displayed, scalar, stride of both) or None while an unwrapped phase is computed."""
        if self._raw is not None:
            raw = self._raw
            return raw, (raw if raw.ndim == 2 else None), self._step
        amp = self._amplitude
        if amp is None:
            return None
        state = self.state
        if state.mode is DisplayMode.PHASE and state.unwrap:
            return self._unwrapped_phase()
        if state.mode is DisplayMode.COMPLEX:
            if self.levels is None:
                self.levels = robust_range(amp, self._valid)
            rgb = display_image(
                amp,
                self._phase,
                DisplayMode.COMPLEX,
                remove_ramp=state.remove_ramp,
                valid=self._valid,
                amplitude_range=self.levels,
            )
            return rgb, np.asarray(amp, dtype=np.float32), self._step
        image = display_image(
            amp, self._phase, state.mode, remove_ramp=state.remove_ramp, valid=self._valid
        )
        return image, image, self._step

    def _unwrap_inputs(
        self, side: int
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, int]:
        amp = self._amplitude
        assert amp is not None
        k = display_step(amp.shape, side)
        phase = None if self._phase is None else self._phase[::k, ::k]
        valid = None if self._valid is None else self._valid[::k, ::k]
        return amp[::k, ::k], phase, valid, self._step * k

    def _unwrapped_phase(self) -> tuple[np.ndarray, np.ndarray, int] | None:
        key = (self._generation, self.state.remove_ramp)
        cached = self._unwrapped
        if cached is not None and cached[0] == key:
            self.unwrap_pending = False
            return cached[1], cached[1], cached[2]
        ramp = self.state.remove_ramp
        if self._tasks is None:
            amp, phase, valid, step = self._unwrap_inputs(UNWRAP_SIDE)
            wrapped = display_image(amp, phase, DisplayMode.PHASE, remove_ramp=ramp, valid=valid)
            out = unwrap_phase(wrapped, valid)
            self._unwrapped = (key, out, step)
            return out, out, step
        amp, phase, valid, step = self._unwrap_inputs(MAX_DISPLAY_SIDE)

        def task(_progress: object, _stop: object) -> tuple[tuple[int, bool], np.ndarray, int]:
            wrapped = display_image(amp, phase, DisplayMode.PHASE, remove_ramp=ramp, valid=valid)
            return key, unwrap_phase(wrapped, valid), step

        self.unwrap_pending = True
        self._tasks.request(UNWRAP_KIND, self._unwrap_token, task)
        return None

    def _on_tasks_task_finished(self, kind: str, token: object, result: object) -> None:
        if kind != UNWRAP_KIND or token != self._unwrap_token or not isinstance(result, tuple):
            return
        if result[0] != (self._generation, self.state.remove_ramp):
            return  # an older frame; the newer one is on its way
        self._unwrapped = result  # type: ignore[assignment]
        self._render()

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
        self._sync_colour_bar()
        if self._rendered != self._generation:
            self._rendered = self._generation
            self.frames += 1
        if self._needs_zoom:
            self._needs_zoom = False
            self.reset_zoom()
        self._update_overlays()
        return True

    # ---------------------------------------------------------------- scale, axes

    def set_pixel_size(self, pixel_size_m: float | None) -> None:
        """Axes and profile in metres and a scale bar when the pixel size is known; pixels
        ("px") when it is None."""
        self.pixel_size_m = pixel_size_m if pixel_size_m and pixel_size_m > 0 else None
        self.scale_bar.set_pixel_size(self.pixel_size_m)
        set_axis_units(self.plot, self.pixel_size_m)
        if self.profile_plot is not None:
            self._label_profile_axis()
        self._update_overlays()

    def show_axes(self, on: bool = True) -> None:
        """Show or hide the image's axes (shown only while the pane is at least
        :data:`AXES_MIN_WIDTH` wide)."""
        self._axes_wanted = on
        self.menu.axes_action.setChecked(on)
        self._fit_decorations()

    @property
    def axes_shown(self) -> bool:
        """True while the axes are drawn."""
        return bool(self.plot.getAxis("bottom").isVisible())

    def _fit_decorations(self) -> None:
        axes = self._axes_wanted and self.width() >= AXES_MIN_WIDTH
        if axes != self.axes_shown:
            for name in ("left", "bottom"):
                self.plot.showAxis(name, axes)
        self._sync_colour_bar()

    def _length_text(self, pixels: float) -> str:
        if self.pixel_size_m is None:
            return f"{pixels:.4g} px"
        return format_length(pixels * self.pixel_size_m)

    # ---------------------------------------------------------------- line profile

    def show_line_profile(self, on: bool = True) -> None:
        """Show or hide a line (drag its ends) and the profile of the shown quantity along it
        in a small plot under the image."""
        self.menu.line_action.setChecked(on)
        if on and self.line_roi is None:
            h, w = self._shape or (64, 64)
            self.line_roi = pg.LineSegmentROI(
                [(0.15 * w, 0.5 * h), (0.85 * w, 0.5 * h)], pen=pg.mkPen("#ffd040", width=2)
            )
            self.view.addItem(self.line_roi)
            self.line_roi.sigRegionChanged.connect(self._on_line_roi_changed)
            self.profile_plot = pg.PlotItem()
            self.profile_plot.setMaximumHeight(PROFILE_HEIGHT)
            self.profile_plot.setMinimumHeight(60)
            self.profile_plot.showGrid(x=True, y=True, alpha=0.25)
            self.profile_plot.setMenuEnabled(False)
            self.profile_curve = self.profile_plot.plot([], [], pen=pg.mkPen("#ffd040", width=1.5))
            self.addItem(self.profile_plot, row=2, col=0, colspan=2)
            self._label_profile_axis()
        elif not on and self.line_roi is not None:
            self.view.removeItem(self.line_roi)
            self.line_roi = None
            if self.profile_plot is not None:
                self.removeItem(self.profile_plot)
            self.profile_plot = self.profile_curve = None
        self._update_overlays()

    def _label_profile_axis(self) -> None:
        assert self.profile_plot is not None
        axis = self.profile_plot.getAxis("bottom")
        if self.pixel_size_m is None:
            axis.enableAutoSIPrefix(False)
            axis.setLabel("distance", units="px")
        else:
            axis.enableAutoSIPrefix(True)
            axis.setLabel("distance", units="m")

    def set_line(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        """Put the profile line from ``start`` to ``end`` (``(x, y)`` pixels), shown."""
        self.show_line_profile(True)
        roi = self.line_roi
        assert roi is not None
        self._quiet = True
        try:
            roi.setPos((0.0, 0.0), update=False, finish=False)
            first, second = roi.getHandles()
            roi.movePoint(first, QPointF(*start), finish=False, coords="parent")
            roi.movePoint(second, QPointF(*end), finish=False, coords="parent")
        finally:
            self._quiet = False
        self._update_overlays()

    def line(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """The profile line's ends ``((x0, y0), (x1, y1))`` in pixels, None when hidden."""
        roi = self.line_roi
        if roi is None:
            return None
        a, b = (roi.mapToParent(p) for p in roi.listPoints())
        return (a.x(), a.y()), (b.x(), b.y())

    def profile(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The profile along the line: distance from its start (pixels of the full image) and
        the shown quantity (the amplitude of a complex view); None without a line."""
        ends = self.line()
        if ends is None or self.scalar is None:
            return None
        step = self._shown_step
        (x0, y0), (x1, y1) = ends
        distance, values = line_profile(self.scalar, (x0 / step, y0 / step), (x1 / step, y1 / step))
        return distance * step, values

    def _on_line_roi_changed(self, _roi: object) -> None:
        self._update_overlays()
        if not self._quiet:
            ends = self.line()
            if ends is not None:
                self.line_changed.emit(ends)

    # ---------------------------------------------------------------- region

    def show_region(self, on: bool = True) -> None:
        """Show or hide a rectangle whose mean and standard deviation of the shown quantity
        are written under the image."""
        self.menu.region_action.setChecked(on)
        if on and self.region_roi is None:
            h, w = self._shape or (64, 64)
            self.region_roi = pg.RectROI(
                (0.3 * w, 0.3 * h), (0.4 * w, 0.4 * h), pen=pg.mkPen("#40e0ff", width=2)
            )
            self.view.addItem(self.region_roi)
            self.region_roi.sigRegionChanged.connect(self._on_region_roi_changed)
            self.region_roi.sigRegionChangeFinished.connect(self._on_region_roi_finished)
        elif not on and self.region_roi is not None:
            self.view.removeItem(self.region_roi)
            self.region_roi = None
        self._update_overlays()

    def set_region(self, rect: tuple[float, float, float, float]) -> None:
        """Put the region at ``(x, y, width, height)`` pixels, shown (no signal)."""
        self.show_region(True)
        roi = self.region_roi
        assert roi is not None
        x, y, w, h = rect
        self._quiet = True
        try:
            roi.setPos((x, y), update=False, finish=False)
            roi.setSize((w, h), update=True, finish=False)
        finally:
            self._quiet = False
        self._update_overlays()

    def region(self) -> tuple[float, float, float, float] | None:
        """The region ``(x, y, width, height)`` in pixels, None when hidden."""
        roi = self.region_roi
        if roi is None:
            return None
        pos, size = roi.pos(), roi.size()
        return (float(pos.x()), float(pos.y()), float(size.x()), float(size.y()))

    def region_stats(self) -> RegionStats | None:
        """Mean, standard deviation and pixel count of the shown quantity (the amplitude of a
        complex view) over the valid pixels of the region; None without a region."""
        rect = self.region()
        if rect is None or self.scalar is None:
            return None
        step = self._shown_step
        x, y, w, h = rect
        return region_stats(
            self.scalar, (x / step, y / step, w / step, h / step), self._scalar_valid
        )

    def _on_region_roi_changed(self, _roi: object) -> None:
        self._update_overlays()
        rect = self.region()
        if not self._quiet and rect is not None:
            self.region_changed.emit(rect)

    def _on_region_roi_finished(self, _roi: object) -> None:
        rect = self.region()
        if not self._quiet and rect is not None:
            self.region_finished.emit(rect)

    # ---------------------------------------------------------------- overlays

    def info_text(self) -> str:
        """The line under the image: the region's statistics (empty without a region)."""
        stats = self.region_stats()
        rect = self.region()
        if stats is None or rect is None:
            return ""
        quantity = "amplitude" if self.state.mode is DisplayMode.COMPLEX else self.state.mode.value
        size = f"{self._length_text(abs(rect[2]))} x {self._length_text(abs(rect[3]))}"
        if stats.count == 0:
            return f"{size}: no valid pixel"
        return f"{size} {quantity}: mean {stats.mean:.4g}, std {stats.std:.3g} ({stats.count} px)"

    def _update_overlays(self) -> None:
        if self.profile_curve is not None:
            profile = self.profile()
            if profile is None:
                self.profile_curve.setData([], [])
            else:
                distance, values = profile
                scale = self.pixel_size_m or 1.0
                keep = np.isfinite(values)
                self.profile_curve.setData(distance[keep] * scale, values[keep])
        text = self.info_text()
        want = self.region_roi is not None
        if want and not self._info_shown:
            row = 3
            self.addItem(self._info, row=row, col=0, colspan=2)
            self._info_shown = True
        elif not want and self._info_shown:
            self.removeItem(self._info)
            self._info_shown = False
        if self._info_shown:
            self._info.setText(text, size="8pt")

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        button = getattr(self, "menu_button", None)  # pyqtgraph resizes during __init__
        if button is None:
            return
        button.adjustSize()
        button.move(self.width() - button.width() - 2, 2)
        button.raise_()
        self._fit_decorations()


class ObjectViewsWidget(QWidget):
    """Object amplitude, phase (cyclic map) and complex view (hue = phase), linked zoom.

    Each pane's display menu can show another quantity of the same object; the complex view
    takes the amplitude view's levels as its brightness range (also when the user sets them).
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.amplitude_view = ImagePaneWidget("Object amplitude", amplitude_lut(), subject="Object")
        self.phase_view = ImagePaneWidget(
            "Object phase (rad, cyclic)", phase_lut(), PHASE_LEVELS, subject="Object"
        )
        self.complex_view = ImagePaneWidget(
            "Complex (hue = phase, value = amplitude)", subject="Object"
        )
        # the same region in the three panes (their widths differ: the complex pane has no
        # colour bar, so pyqtgraph's geometric links would drift)
        self.view_group = ViewGroup([p.view for p in self.panes], self)
        self.wheel = QLabel()
        self.wheel.setPixmap(rgba_pixmap(phase_wheel(56)))
        self.wheel.setToolTip("Phase wheel: angle = phase, radius = amplitude")
        self.wheel.setAlignment(Qt.AlignmentFlag.AlignCenter)
        complex_box = QWidget()
        box = QVBoxLayout(complex_box)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.complex_view, 1)
        box.addWidget(self.wheel, 0)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.amplitude_view, 1)
        layout.addWidget(self.phase_view, 1)
        layout.addWidget(complex_box, 1)
        self.frames = 0
        self.amplitude_view.levels_edited.connect(self._on_amplitude_view_levels_edited)
        self.complex_view.display_changed.connect(self._on_complex_view_display_changed)

    @property
    def panes(self) -> tuple[ImagePaneWidget, ImagePaneWidget, ImagePaneWidget]:
        """The amplitude, phase and complex panes."""
        return (self.amplitude_view, self.phase_view, self.complex_view)

    def reset_levels(self) -> None:
        """New run: the next frame sets every pane's levels again."""
        for pane in self.panes:
            pane.reset_levels()

    def set_pixel_size(self, pixel_size_m: float | None) -> None:
        """Axes in metres and scale bars (None: pixels)."""
        for pane in self.panes:
            pane.set_pixel_size(pixel_size_m)

    def set_caption(self, text: str) -> None:
        """Name what the panes show, under their titles: ``"#3 rPIE N=64 · epoch 12"``."""
        for pane in self.panes:
            pane.set_caption(text)

    def set_task_worker(self, tasks: Any) -> None:
        """Unwrap phases in ``tasks`` (:class:`ptycho_gui.jobs.TaskWorker`), not here."""
        for pane in self.panes:
            pane.set_task_worker(tasks)

    def show_object(
        self, amplitude: np.ndarray, phase: np.ndarray, valid: np.ndarray | None = None
    ) -> None:
        """Show one stitched object; arrays (H, W) float32, large ones strided for display."""
        self.amplitude_view.set_data(amplitude, phase, valid)
        self.phase_view.set_data(amplitude, phase, valid)
        levels = None
        if self.complex_view.levels is None and self._complex_follows_amplitude():
            levels = self.amplitude_view.levels
        self.complex_view.set_data(amplitude, phase, valid, levels=levels)
        self.frames += 1

    def _complex_follows_amplitude(self) -> bool:
        return (
            self.amplitude_view.state.mode is DisplayMode.AMPLITUDE
            and self.complex_view.state.mode is DisplayMode.COMPLEX
        )

    def _on_amplitude_view_levels_edited(self, levels: tuple[float, float]) -> None:
        if self._complex_follows_amplitude():
            self.complex_view.set_levels(levels)

    def _on_complex_view_display_changed(self, state: DisplayState) -> None:
        self.wheel.setVisible(state.mode is DisplayMode.COMPLEX)


class ProbeViewWidget(QWidget):
    """Probe amplitude and phase side by side (the strongest mode of a multi-mode probe)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.amplitude_view = ImagePaneWidget("Probe amplitude", amplitude_lut())
        self.phase_view = ImagePaneWidget("Probe phase", phase_lut(), PHASE_LEVELS)
        self.view_group = ViewGroup([p.view for p in self.panes], self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.amplitude_view)
        layout.addWidget(self.phase_view)
        self.frames = 0
        self.caption = ""

    @property
    def panes(self) -> tuple[ImagePaneWidget, ImagePaneWidget]:
        """The amplitude and phase panes."""
        return (self.amplitude_view, self.phase_view)

    def set_pixel_size(self, pixel_size_m: float | None) -> None:
        """Axes in metres and scale bars (None: pixels)."""
        for pane in self.panes:
            pane.set_pixel_size(pixel_size_m)

    def set_task_worker(self, tasks: Any) -> None:
        """Unwrap phases in ``tasks`` (:class:`ptycho_gui.jobs.TaskWorker`), not here."""
        for pane in self.panes:
            pane.set_task_worker(tasks)

    def set_caption(self, text: str) -> None:
        """A line under both titles naming the probe's run (:meth:`show_probe`'s caption goes
        into the titles)."""
        for pane in self.panes:
            pane.set_caption(text)

    def show_probe(self, probe: np.ndarray | None, caption: str = "") -> None:
        """Show a complex probe, (N, N) or modes (K, N, N) strongest first (the first mode is
        shown); None clears the views. ``caption`` goes after the titles (e.g. the iteration
        of a refined probe)."""
        if probe is not None and probe.ndim == 3:
            if probe.shape[0] > 1:
                modes = f"mode 1 of {probe.shape[0]}"
                caption = f"{caption}, {modes}" if caption else modes
            probe = probe[0]
        self.caption = caption
        suffix = f" ({caption})" if caption else ""
        self.amplitude_view.set_title(f"Probe amplitude{suffix}")
        self.phase_view.set_title(f"Probe phase{suffix}")
        if probe is None:
            self.amplitude_view.clear_image()
            self.phase_view.clear_image()
            return
        self.frames += 1
        amp = np.abs(probe).astype(np.float32)
        peak = float(amp.max()) or 1.0
        # The phase where the probe is dark is noise: show it as 0 there.
        phase = np.where(amp > 0.02 * peak, np.angle(probe), 0.0).astype(np.float32)
        view = self.amplitude_view
        # a refined probe changes its scale: its amplitude levels follow its peak, unless the
        # user set them
        follow = view.state.mode is DisplayMode.AMPLITUDE and not view.user_levels
        view.set_data(amp, phase, levels=(0.0, peak) if follow else None)
        self.phase_view.set_data(amp, phase)


class DecadeAxisItem(pg.AxisItem):
    """An axis whose log scale labels only the decades when two or more are in view, and the
    decades with the 2 and 5 ticks when fewer are: pyqtgraph labels every tick 1..9 of each
    decade, whose labels overlap in a small pane. Linear scales are pyqtgraph's own."""

    #: Decades in view above which pyqtgraph's own ticks (decade steps) are used.
    MAX_DECADES = 6

    def tickValues(self, minVal, maxVal, size):  # noqa: N802 - pyqtgraph API
        # labels on the first level of ticks only in log mode; read right after, when the
        # labels are drawn (setStyle would ask for a redraw)
        self.style["maxTextLevel"] = 0 if self.logMode else 2
        return super().tickValues(minVal, maxVal, size)

    def logTickValues(self, minVal, maxVal, size, stdTicks):  # noqa: N802 - pyqtgraph API
        low, high = math.floor(minVal), math.ceil(maxVal)
        if high - low > self.MAX_DECADES:
            return super().logTickValues(minVal, maxVal, size, stdTicks)
        every = [v + math.log10(k) for v in range(low, high + 1) for k in range(1, 10)]
        inside = [t for t in every if minVal <= t <= maxVal]
        decades = [t for t in inside if abs(t - round(t)) < 1e-9]
        labelled = decades
        if len(decades) < 2:
            steps = (0.0, math.log10(2), math.log10(5))
            labelled = [
                t for t in inside if min(abs((t - math.floor(t)) - a) for a in steps) < 1e-9
            ]
        minor = [t for t in inside if t not in labelled]
        return [(None, labelled), (None, minor)]


#: Legend text of the training stages that :meth:`LossPlotWidget.add_point` receives.
STAGE_TEXTS = {"mae-warmup": "MAE warm-up", "main": "main loss"}
#: On a log scale, losses that are not all positive are shifted so that the smallest sits at
#: this fraction of their range above zero (see :meth:`LossPlotWidget.set_log_scale`).
LOG_OFFSET_FRACTION = 0.01


class LossPlotWidget(pg.PlotWidget):
    """Training and validation loss per epoch (the network), or the normalised error per
    iteration on a log axis (an iterative solver): :meth:`set_iterative` chooses. One run at
    a time (:meth:`clear_history`).

    The "log" box (and :meth:`set_log_scale`) puts the y axis on a log scale. A negative
    log-likelihood loss can be zero or negative: then the curves are drawn shifted, ``loss +
    c`` with ``c = delta - min`` (``min`` the smallest loss drawn, ``delta`` =
    :data:`LOG_OFFSET_FRACTION` of the losses' range), and the axis says so ("loss + 3.26");
    differences between epochs keep their sign and order, and the last decades show how far
    each epoch is above the best one. Where the training stage changes (the MAE warm-up
    ends) a vertical line is drawn halfway between the two epochs.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, axisItems={"left": DecadeAxisItem("left")})
        self.setMinimumSize(200, 140)
        self.legend = self.addLegend(offset=(-10, 10))
        self.showGrid(x=True, y=True, alpha=0.3)
        # symbols too, so the first epochs (a single point) are visible
        self.train_curve = self.plot(
            [],
            [],
            pen=pg.mkPen("#4da3ff", width=2),
            symbol="o",
            symbolSize=5,
            symbolBrush="#4da3ff",
            name="train",
        )
        self.val_curve = self.plot(
            [],
            [],
            pen=pg.mkPen("#ff9f40", width=2, style=Qt.PenStyle.DashLine),
            symbol="s",
            symbolSize=5,
            symbolBrush="#ff9f40",
            name="validation",
        )
        self.epochs: list[int] = []
        self.losses: list[float] = []
        self.val_losses: list[float] = []
        self.stages: list[str] = []
        #: ``(x, old stage, new stage)`` of every stage change drawn.
        self.stage_changes: list[tuple[float, str, str]] = []
        self.stage_lines: list[pg.InfiniteLine] = []
        #: The shift added to the losses drawn on a log scale (0: none).
        self.log_shift = 0.0
        self._log = {True: True, False: False}  # per kind: solver error, network loss
        self.log_check = QCheckBox("log", self)
        self.log_check.setObjectName("log_check")
        self.log_check.setStyleSheet(
            "QCheckBox { color: #c8c8c8; background: transparent; }"
            "QCheckBox::indicator { width: 10px; height: 10px; border: 1px solid #c8c8c8; }"
            "QCheckBox::indicator:checked { background: #4da3ff; }"
        )
        self.log_check.setToolTip(
            "Log scale; losses that are not all positive are drawn shifted (loss + c, the "
            "axis says by how much)"
        )
        self.log_check.toggled.connect(self._on_log_check_toggled)
        self.iterative = True  # so that the call below sets every label
        self.set_iterative(False)

    @property
    def log_scale(self) -> bool:
        """True while the y axis is logarithmic."""
        return self._log[self.iterative]

    def set_log_scale(self, on: bool) -> None:
        """Log or linear y axis for the current kind of run (kept per kind: a solver's error
        starts on a log axis, the network's loss on a linear one)."""
        self._log[self.iterative] = bool(on)
        self._apply_scale()

    def _on_log_check_toggled(self, on: bool) -> None:
        if on != self.log_scale:
            self.set_log_scale(on)

    def _apply_scale(self) -> None:
        on = self.log_scale
        self.log_check.blockSignals(True)
        self.log_check.setChecked(on)
        self.log_check.blockSignals(False)
        self.setLogMode(x=False, y=on)
        # a log axis labels its decades itself: no SI factor beside the label, and text on
        # the decades only (the minor ticks' labels overlap in a small pane)
        self.getAxis("left").enableAutoSIPrefix(not on)
        self._redraw()

    def set_iterative(self, iterative: bool) -> None:
        """Label the plot for a solver (normalised error per iteration, log axis) or the
        network (loss per epoch, linear axis unless "log" is ticked: an NLL may be
        negative)."""
        if iterative == self.iterative:
            return
        self.iterative = iterative
        self.setTitle("Normalised error" if iterative else "Loss", size="9pt")
        self.setLabel("bottom", "iteration" if iterative else "epoch")
        label = self.legend.getLabel(self.train_curve)
        if label is not None:
            label.setText("error" if iterative else "train")
        # a solver has no validation split: no curve, no legend entry
        self.val_curve.setVisible(not iterative)
        if iterative:
            self.legend.removeItem(self.val_curve)
        elif self.legend.getLabel(self.val_curve) is None:
            self.legend.addItem(self.val_curve, "validation")
        self._apply_scale()

    def clear_history(self) -> None:
        """Forget the curves and stage lines (a new run starts)."""
        self.epochs, self.losses, self.val_losses, self.stages = [], [], [], []
        for line in self.stage_lines:
            self.removeItem(line)
        self.stage_lines, self.stage_changes = [], []
        self._redraw()

    def add_point(self, epoch: int, loss: float, val_loss: float, stage: str = "") -> None:
        """Append one epoch and redraw both curves.

        ``stage`` is the epoch's training stage (``"mae-warmup"``, ``"main"``; "" unknown):
        where it changes from the previous known stage, a vertical line marks the switch,
        halfway between the two epochs.
        """
        known = [s for s in self.stages if s]
        if stage and known and known[-1] != stage:
            before = max(e for e, s in zip(self.epochs, self.stages, strict=True) if s)
            self._mark_stage((before + epoch) / 2.0, known[-1], stage)
        self.epochs.append(epoch)
        self.losses.append(loss)
        self.val_losses.append(val_loss)
        self.stages.append(stage)
        self._redraw()

    def _mark_stage(self, x: float, old: str, new: str) -> None:
        text = f"{STAGE_TEXTS.get(old, old)} | {STAGE_TEXTS.get(new, new)}"
        line = pg.InfiniteLine(
            pos=x,
            angle=90,
            pen=pg.mkPen("#c0c0c0", width=1, style=Qt.PenStyle.DashLine),
            label=text,
            labelOpts={"position": 0.06, "color": "#c0c0c0", "anchors": [(0.5, 1), (0.5, 1)]},
        )
        self.addItem(line, ignoreBounds=True)
        self.stage_lines.append(line)
        self.stage_changes.append((x, old, new))

    def _redraw(self) -> None:
        x = np.asarray(self.epochs, dtype=float)
        loss = np.asarray(self.losses, dtype=float)
        val = np.asarray(self.val_losses, dtype=float)
        quantity = "normalised error" if self.iterative else "loss"
        self.log_shift = 0.0
        if self.log_scale:
            drawn = np.concatenate([loss, val if not self.iterative else loss[:0]])
            drawn = drawn[np.isfinite(drawn)]
            if self.iterative:
                pass  # errors are positive; a zero one has no place on a log axis
            elif drawn.size and float(drawn.min()) <= 0:
                low, high = float(drawn.min()), float(drawn.max())
                delta = max(LOG_OFFSET_FRACTION * (high - low), 1e-12 * max(1.0, abs(low)))
                self.log_shift = delta - low
                quantity = f"loss + {self.log_shift:.3g}"
        self.setLabel("left", quantity)
        shifted = loss + self.log_shift
        keep = np.isfinite(shifted) & (shifted > 0 if self.log_scale else True)
        self.train_curve.setData(x[keep], shifted[keep])
        shifted_val = val + self.log_shift
        keep = np.isfinite(shifted_val) & (shifted_val > 0 if self.log_scale else True)
        self.val_curve.setData(x[keep], shifted_val[keep])

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt API
        super().resizeEvent(event)
        if not hasattr(self, "log_check"):  # pyqtgraph resizes during __init__
            return
        self.log_check.adjustSize()
        self.log_check.move(4, 2)
        self.log_check.raise_()


class DiffractionPairWidget(QWidget):
    """Measured and predicted diffraction of one scan position, log scale, same levels.

    Both panes show the quantity chosen in either one's display menu (log10 counts,
    amplitude, log amplitude), with levels shared between them.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.measured_view = ImagePaneWidget(
            "Measured (log10)", amplitude_lut(), modes=INTENSITY_MODES
        )
        self.predicted_view = ImagePaneWidget(
            "Predicted (log10)", amplitude_lut(), modes=INTENSITY_MODES
        )
        self.view_group = ViewGroup([p.view for p in self.panes], self)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.measured_view)
        layout.addWidget(self.predicted_view)
        self.index: int | None = None
        self._measured: np.ndarray | None = None
        self._predicted: np.ndarray | None = None
        for pane in self.panes:
            pane.display_changed.connect(self._on_pane_display_changed)
            pane.levels_edited.connect(self._on_pane_levels_edited)

    @property
    def panes(self) -> tuple[ImagePaneWidget, ImagePaneWidget]:
        """The measured and predicted panes."""
        return (self.measured_view, self.predicted_view)

    def set_pixel_size(self, pixel_size_m: float | None) -> None:
        """Axes and scale bar in metres on the detector (its pixel size; None: pixels)."""
        for pane in self.panes:
            pane.set_pixel_size(pixel_size_m)

    def _quantity(self) -> str:
        mode = self.measured_view.state.mode
        return "log10 counts" if mode is DisplayMode.LOG_INTENSITY else mode.value

    def _levels(self, *amplitudes: np.ndarray) -> tuple[float, float] | None:
        """Shared levels of the patterns in the current quantity (None: keep the user's)."""
        if any(p.user_levels for p in self.panes):
            return None
        images = [self.measured_view.convert(a) for a in amplitudes]
        if self.measured_view.state.mode is DisplayMode.LOG_INTENSITY:
            return 0.0, max(max(float(np.nanmax(im)) for im in images), 1e-3)
        values = np.concatenate([im.ravel() for im in images])
        return robust_range(values)

    def show_measured(self, index: int, amplitude: np.ndarray) -> None:
        """Show the measured pattern of ``index`` and clear a stale prediction."""
        self.index = index
        self._measured, self._predicted = amplitude, None
        self.measured_view.set_data(amplitude, levels=self._levels(amplitude))
        self.measured_view.set_title(f"Measured #{index} ({self._quantity()})")
        self.predicted_view.clear_image()
        self.predicted_view.set_title("Predicted (computing…)")

    def show_pair(self, index: int, measured: np.ndarray, predicted: np.ndarray) -> None:
        """Show measured and predicted amplitudes ``(N, N)`` (log10 counts by default)."""
        self.index = index
        self._measured, self._predicted = measured, predicted
        levels = self._levels(measured, predicted)
        self.measured_view.set_data(measured, levels=levels)
        self.predicted_view.set_data(predicted, levels=levels or self.measured_view.levels)
        self.measured_view.set_title(f"Measured #{index} ({self._quantity()})")
        self.predicted_view.set_title(f"Predicted #{index} ({self._quantity()})")

    def _on_pane_display_changed(self, state: DisplayState) -> None:
        for pane in self.panes:
            pane.set_display(state)
            pane.reset_levels()
        if self.index is None or self._measured is None:
            return
        if self._predicted is None:
            self.show_measured(self.index, self._measured)
        else:
            self.show_pair(self.index, self._measured, self._predicted)

    def _on_pane_levels_edited(self, levels: tuple[float, float]) -> None:
        for pane in self.panes:
            pane.user_levels = True
            if pane.levels != levels:
                pane.set_levels(levels)
