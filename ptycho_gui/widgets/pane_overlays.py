"""The overlays of an image pane: axes in pixels or metres and the scale bar, a line with
the profile of the shown quantity along it, and a region with its statistics
(:class:`PaneOverlaysMixin`, a part of
:class:`~ptycho_gui.widgets.image_pane.ImagePaneWidget`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF

from ptycho_engine.display import DisplayMode, RegionStats, line_profile, region_stats
from ptycho_engine.io.images import format_length
from ptycho_gui.widgets.display_controls import set_axis_units

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance

    from ptycho_gui.widgets.display_controls import DisplayMenu, DisplayState, ScaleBarItem
    from ptycho_gui.widgets.image_pane import NarrowLabelItem, PaneViewBox

__all__ = ["AXES_MIN_WIDTH", "PROFILE_HEIGHT", "PaneOverlaysMixin"]

#: Height of a pane's profile plot, in pixels.
PROFILE_HEIGHT = 110
#: Axes are drawn only in panes at least this wide: in narrower ones (the probe's) they
#: would leave the image a few pixels; the scale bar still gives the scale.
AXES_MIN_WIDTH = 300


class PaneOverlaysMixin:
    """The axes, scale bar, line profile and region of an
    :class:`~ptycho_gui.widgets.image_pane.ImagePaneWidget` (shown from its display menu or
    set by its owner); coordinates are pixels of the full image."""

    if TYPE_CHECKING:
        # set by ImagePaneWidget
        region_changed: SignalInstance
        region_finished: SignalInstance
        line_changed: SignalInstance
        state: DisplayState
        menu: DisplayMenu
        view: PaneViewBox
        plot: Any
        scale_bar: ScaleBarItem
        pixel_size_m: float | None
        scalar: np.ndarray | None
        line_roi: pg.LineSegmentROI | None
        profile_plot: pg.PlotItem | None
        profile_curve: pg.PlotDataItem | None
        region_roi: pg.RectROI | None
        _axes_wanted: bool
        _shape: tuple[int, int] | None
        _shown_step: int
        _scalar_valid: np.ndarray | None
        _info: NarrowLabelItem
        _info_shown: bool
        _quiet: bool

        def width(self) -> int: ...
        def addItem(self, item: Any, *args: Any, **kwargs: Any) -> None: ...  # noqa: N802
        def removeItem(self, item: Any) -> None: ...  # noqa: N802
        def _sync_colour_bar(self) -> None: ...

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
