"""The app's image views, built from image panes
(:class:`~ptycho_gui.widgets.image_pane.ImagePaneWidget`): the object (amplitude, phase,
complex), the probe and a pair of measured and predicted diffraction patterns, each with
linked zoom.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ptycho_engine.display import (
    INTENSITY_MODES,
    PHASE_LEVELS,
    DisplayMode,
    amplitude_lut,
    phase_lut,
    phase_wheel,
    robust_range,
)
from ptycho_gui.widgets.display_controls import DisplayState
from ptycho_gui.widgets.image_pane import ImagePaneWidget, ViewGroup

__all__ = [
    "PHASE_LEVELS",
    "PROBE_LIT_FRACTION",
    "DiffractionPairWidget",
    "ObjectViewsWidget",
    "ProbeViewWidget",
    "rgba_pixmap",
]


#: The probe's phase is shown where its amplitude is above this fraction of its peak.
PROBE_LIT_FRACTION = 0.02


def rgba_pixmap(rgba: np.ndarray) -> QPixmap:
    """A QPixmap of an (H, W, 4) uint8 RGBA array (copied)."""
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    h, w = rgba.shape[:2]
    image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888)
    return QPixmap.fromImage(image.copy())


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
        # The phase where the probe is dark is noise: 0 there, and the phase view covers it
        # in black (it reads the lit pixels only, for its levels, ramp fit and unwrapping)
        lit = amp > PROBE_LIT_FRACTION * peak
        phase = np.where(lit, np.angle(probe), 0.0).astype(np.float32)
        view = self.amplitude_view
        # a refined probe changes its scale: its amplitude levels follow its peak, unless the
        # user set them
        follow = view.state.mode is DisplayMode.AMPLITUDE and not view.user_levels
        view.set_data(amp, phase, levels=(0.0, peak) if follow else None)
        self.phase_view.set_data(amp, phase, lit)


class DiffractionPairWidget(QWidget):
    """Measured and predicted diffraction of one scan position, log scale, same levels.

    Both panes show the quantity chosen in either one's display menu (log10 counts,
    amplitude, log amplitude), with levels shared between them. Until a position is chosen
    (a click in the data panel's scan) the panes say so (:data:`EMPTY_HINTS`).
    """

    #: The captions of the empty measured and predicted panes.
    EMPTY_HINTS = ("click a scan position", "the model's pattern, after a run")

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
        self.show_hints()

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

    def show_hints(self) -> None:
        """Empty panes: each caption says what brings a pattern (:data:`EMPTY_HINTS`)."""
        for pane, hint in zip(self.panes, self.EMPTY_HINTS, strict=True):
            pane.set_caption(hint)

    def show_measured(self, index: int, amplitude: np.ndarray) -> None:
        """Show the measured pattern of ``index`` and clear a stale prediction."""
        for pane in self.panes:
            pane.set_caption("")
        self.index = index
        self._measured, self._predicted = amplitude, None
        self.measured_view.set_data(amplitude, levels=self._levels(amplitude))
        self.measured_view.set_title(f"Measured #{index} ({self._quantity()})")
        self.predicted_view.clear_image()
        self.predicted_view.set_title("Predicted (computing…)")

    def show_pair(self, index: int, measured: np.ndarray, predicted: np.ndarray) -> None:
        """Show measured and predicted amplitudes ``(N, N)`` (log10 counts by default)."""
        self.measured_view.set_caption("")
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
