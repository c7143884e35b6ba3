"""The region of the compare window (:class:`CompareRegionMixin`, a part of
:class:`~ptycho_gui.widgets.compare_window.CompareWindow`): one rectangle on every pane, each
run's mean and standard deviation in it, and the FRC of the chosen pair over it, computed in
the task worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ptycho_gui.view_models.comparison import FrcCurve, region_frc

if TYPE_CHECKING:
    from PySide6.QtCore import SignalInstance
    from PySide6.QtWidgets import QCheckBox, QComboBox

    from ptycho_gui.jobs import TaskWorker
    from ptycho_gui.view_models.comparison import FrameImage
    from ptycho_gui.widgets.compare_panels import RegionTable
    from ptycho_gui.widgets.image_pane import ImagePaneWidget

__all__ = ["CompareRegionMixin"]


class CompareRegionMixin:
    """The region on every pane of a
    :class:`~ptycho_gui.widgets.compare_window.CompareWindow`, its statistics (the region
    table) and the FRC of the pair chosen under "FRC of" over it (:attr:`region_curve`)."""

    if TYPE_CHECKING:
        # set by CompareWindow
        region_ready: SignalInstance
        region_check: QCheckBox
        pair_a_combo: QComboBox
        pair_b_combo: QComboBox
        panes: list[ImagePaneWidget]
        frames: list[FrameImage]
        names: list[str]
        region_table: RegionTable
        region_curve: FrcCurve | None
        region_message: str
        tasks: TaskWorker
        _region_token: tuple[str, int]

        def _draw_frc(self) -> None: ...

    def show_region(self, on: bool = True) -> None:
        """Show or hide the region on every pane, with its statistics and FRC."""
        self.region_check.blockSignals(True)
        self.region_check.setChecked(on)
        self.region_check.blockSignals(False)
        rect = next((r for p in self.panes if (r := p.region()) is not None), None)
        for pane in self.panes:
            pane.show_region(on)  # checks the panes' menus without their signal
            if on and rect is not None:
                pane.set_region(rect)
        if on and rect is None and self.frames:
            h, w = self.frames[0].object.shape
            self.set_region((0.25 * w, 0.25 * h, 0.5 * w, 0.5 * h))
            return
        self.region_table.setVisible(on)
        if not on:
            self.region_curve, self.region_message = None, ""
            self._draw_frc()
        self._fill_region_table()
        self._request_region_frc()

    def set_region(self, rect: tuple[float, float, float, float]) -> None:
        """Put the region at ``(x, y, width, height)`` (pixels of the common region) on every
        pane; the statistics follow, the FRC over it is computed in the task worker."""
        if not self.region_check.isChecked():
            self.region_check.blockSignals(True)
            self.region_check.setChecked(True)
            self.region_check.blockSignals(False)
        for pane in self.panes:
            pane.set_region(rect)
        self.region_table.setVisible(True)
        self._fill_region_table()
        self._request_region_frc()

    def region(self) -> tuple[float, float, float, float] | None:
        """The region on the panes, None when hidden."""
        return self.panes[0].region()

    def _on_pane_region_toggled(self, on: bool) -> None:
        self.show_region(on)

    def _on_pane_region_changed(self, index: int, rect: tuple[float, float, float, float]) -> None:
        for k, pane in enumerate(self.panes):
            if k != index:
                pane.set_region(rect)
        self._fill_region_table()

    def region_rows(self) -> list[tuple[str, float, float, int]]:
        """(name, mean, std, pixels) of each run in the region (empty without one)."""
        rows = []
        for name, pane in zip(self.names, self.panes, strict=True):
            stats = pane.region_stats()
            if stats is not None:
                rows.append((name, stats.mean, stats.std, stats.count))
        return rows

    def _fill_region_table(self) -> None:
        self.region_table.fill(self.region_rows())

    def _region_pair(self) -> tuple[int, int] | None:
        a, b = self.pair_a_combo.currentIndex(), self.pair_b_combo.currentIndex()
        if a < 0 or b < 0 or a == b:
            return None
        return a, b

    def _request_region_frc(self) -> None:
        rect = self.region()
        pair = self._region_pair()
        if rect is None or pair is None or not self.frames:
            if self.region_curve is not None:
                self.region_curve = None
                self._draw_frc()
            return
        frames, (a, b) = list(self.frames), pair
        self.region_message = "computing the FRC over the region…"
        self.tasks.request(
            "compare",
            self._region_token,
            lambda _progress, _stop: (rect, a, b, region_frc(frames, a, b, rect)),
        )

    def _on_region_frc(self, result: object) -> None:
        if not isinstance(result, tuple) or len(result) != 4:
            return
        rect, a, b, curve = result
        if rect != self.region() or (a, b) != self._region_pair():
            return  # an older request; the newer one is on its way
        self.region_curve = curve if isinstance(curve, FrcCurve) else None
        self.region_message = "" if self.region_curve else "the region is too small for an FRC"
        self._draw_frc()
        self.region_ready.emit()
