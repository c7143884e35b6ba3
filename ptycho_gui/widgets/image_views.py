"""pyqtgraph image panes: object (amplitude, phase, complex), probe, loss and diffraction.

Every pane keeps its colour levels fixed after the first frame of a run (``autoLevels`` is
never used), so a redraw costs one ``setImage``.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from ptycho_engine.display import (
    PHASE_LEVELS,
    amplitude_lut,
    complex_to_rgb,
    downsample,
    log_scale,
    phase_lut,
    phase_wheel,
    robust_range,
)


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


class ImagePaneWidget(pg.GraphicsLayoutWidget):
    """One titled image in a ViewBox with a locked aspect ratio, row 0 at the top.

    Parameters
    ----------
    title : str
    lut : ndarray, (n, 3) uint8, optional
        Colour map; None for RGB images.
    fixed_levels : (float, float), optional
        Levels that never change (phase); otherwise set from the first frame.
    """

    def __init__(
        self,
        title: str,
        lut: np.ndarray | None = None,
        fixed_levels: tuple[float, float] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setMinimumSize(140, 140)
        self.title = title
        self._label = self.addLabel(title, row=0, col=0, size="9pt")
        self.view = self.addViewBox(row=1, col=0, lockAspect=True, invertY=True)
        self.view.setMenuEnabled(False)
        self.image = pg.ImageItem()
        if lut is not None:
            self.image.setLookupTable(lut)
        self.view.addItem(self.image)
        self._fixed_levels = fixed_levels
        self.levels: tuple[float, float] | None = fixed_levels
        self.frames = 0

    def set_title(self, text: str) -> None:
        """Change the title line."""
        self._label.setText(text, size="9pt")

    def reset_levels(self) -> None:
        """Take the levels from the next frame again."""
        self.levels = self._fixed_levels

    def set_image(
        self,
        image: np.ndarray,
        levels: tuple[float, float] | None = None,
        valid: np.ndarray | None = None,
    ) -> None:
        """Show ``image`` (float (H, W) or uint8 (H, W, 3)) without automatic levels.

        ``levels`` overrides the stored ones; otherwise the first frame sets them from
        :func:`robust_range` of the (valid) pixels and later frames reuse them.
        """
        if levels is not None:
            self.levels = levels
        elif self.levels is None:
            self.levels = (0.0, 255.0) if image.ndim == 3 else robust_range(image, valid)
        first = self.frames == 0
        self.image.setImage(image, autoLevels=False, levels=self.levels)
        self.frames += 1
        if first:
            self.view.autoRange(padding=0.0)

    def clear_image(self) -> None:
        """Remove the image (keeps the title)."""
        self.image.clear()
        self.frames = 0
        self.reset_levels()


class ObjectViewsWidget(QWidget):
    """Object amplitude, phase (cyclic map) and complex view (hue = phase), linked zoom."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.amplitude_view = ImagePaneWidget("Object amplitude", amplitude_lut())
        self.phase_view = ImagePaneWidget("Object phase (rad, cyclic)", phase_lut(), PHASE_LEVELS)
        self.complex_view = ImagePaneWidget("Complex (hue = phase, value = amplitude)")
        for pane in (self.phase_view, self.complex_view):
            pane.view.setXLink(self.amplitude_view.view)
            pane.view.setYLink(self.amplitude_view.view)
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

    def reset_levels(self) -> None:
        """New run: the next frame sets the amplitude levels again."""
        self.amplitude_view.reset_levels()

    def show_object(
        self, amplitude: np.ndarray, phase: np.ndarray, valid: np.ndarray | None = None
    ) -> None:
        """Show one stitched object; arrays (H, W) float32, large ones strided for display."""
        amp = downsample(amplitude)
        ph = downsample(phase)
        val = None if valid is None else downsample(valid)
        self.amplitude_view.set_image(amp, valid=val)
        self.phase_view.set_image(ph)
        self.complex_view.set_image(
            complex_to_rgb(amp, ph, self.amplitude_view.levels, val), (0.0, 255.0)
        )
        self.frames += 1


class ProbeViewWidget(QWidget):
    """Probe amplitude and phase side by side (the strongest mode of a multi-mode probe)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.amplitude_view = ImagePaneWidget("Probe amplitude", amplitude_lut())
        self.phase_view = ImagePaneWidget("Probe phase", phase_lut(), PHASE_LEVELS)
        self.phase_view.view.setXLink(self.amplitude_view.view)
        self.phase_view.view.setYLink(self.amplitude_view.view)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.amplitude_view)
        layout.addWidget(self.phase_view)
        self.frames = 0
        self.caption = ""

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
        self.amplitude_view.set_image(amp, levels=(0.0, peak))
        # The phase where the probe is dark is noise: show it as 0 there.
        phase = np.where(amp > 0.02 * peak, np.angle(probe), 0.0).astype(np.float32)
        self.phase_view.set_image(phase)


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


class LossPlotWidget(pg.PlotWidget):
    """Training and validation loss per epoch (the network), or the normalised error per
    iteration on a log axis (an iterative solver): :meth:`set_iterative` chooses."""

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
        self.iterative = True  # so that the call below sets every label
        self.set_iterative(False)

    def set_iterative(self, iterative: bool) -> None:
        """Label the plot for a solver (normalised error per iteration, log axis) or the
        network (loss per epoch, linear axis: an NLL loss may be negative)."""
        if iterative == self.iterative:
            return
        self.iterative = iterative
        quantity = "normalised error" if iterative else "loss"
        self.setTitle("Normalised error" if iterative else "Loss", size="9pt")
        self.setLabel("left", quantity)
        self.setLabel("bottom", "iteration" if iterative else "epoch")
        self.setLogMode(x=False, y=iterative)
        # a log axis labels its decades itself: no SI factor beside the label, and text on
        # the decades only (the minor ticks' labels overlap in a small pane)
        self.getAxis("left").enableAutoSIPrefix(not iterative)
        label = self.legend.getLabel(self.train_curve)
        if label is not None:
            label.setText("error" if iterative else "train")
        # a solver has no validation split: no curve, no legend entry
        self.val_curve.setVisible(not iterative)
        if iterative:
            self.legend.removeItem(self.val_curve)
        elif self.legend.getLabel(self.val_curve) is None:
            self.legend.addItem(self.val_curve, "validation")
        self._redraw()

    def clear_history(self) -> None:
        """Forget the curves (a new run starts)."""
        self.epochs, self.losses, self.val_losses = [], [], []
        self.train_curve.setData([], [])
        self.val_curve.setData([], [])

    def add_point(self, epoch: int, loss: float, val_loss: float) -> None:
        """Append one epoch and redraw both curves."""
        self.epochs.append(epoch)
        self.losses.append(loss)
        self.val_losses.append(val_loss)
        self._redraw()

    def _redraw(self) -> None:
        x = np.asarray(self.epochs, dtype=float)
        loss = np.asarray(self.losses, dtype=float)
        # a log axis has no place for zero or negative values
        keep = loss > 0 if self.iterative else np.isfinite(loss)
        self.train_curve.setData(x[keep], loss[keep])
        val = np.asarray(self.val_losses, dtype=float)
        keep = np.isfinite(val)
        self.val_curve.setData(x[keep], val[keep])


class DiffractionPairWidget(QWidget):
    """Measured and predicted diffraction of one scan position, log scale, same levels."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.measured_view = ImagePaneWidget("Measured (log10)", amplitude_lut())
        self.predicted_view = ImagePaneWidget("Predicted (log10)", amplitude_lut())
        self.predicted_view.view.setXLink(self.measured_view.view)
        self.predicted_view.view.setYLink(self.measured_view.view)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.measured_view)
        layout.addWidget(self.predicted_view)
        self.index: int | None = None

    def show_measured(self, index: int, amplitude: np.ndarray) -> None:
        """Show the measured pattern of ``index`` and clear a stale prediction."""
        self.index = index
        counts = log_scale(np.square(amplitude))
        levels = (0.0, max(float(counts.max()), 1e-3))
        self.measured_view.set_image(counts, levels=levels)
        self.measured_view.set_title(f"Measured #{index} (log10 counts)")
        self.predicted_view.clear_image()
        self.predicted_view.set_title("Predicted (computing…)")

    def show_pair(self, index: int, measured: np.ndarray, predicted: np.ndarray) -> None:
        """Show measured and predicted amplitudes ``(N, N)`` as log10 counts."""
        self.index = index
        meas = log_scale(np.square(measured))
        pred = log_scale(np.square(predicted))
        levels = (0.0, max(float(meas.max()), float(pred.max()), 1e-3))
        self.measured_view.set_image(meas, levels=levels)
        self.predicted_view.set_image(pred, levels=levels)
        self.measured_view.set_title(f"Measured #{index} (log10 counts)")
        self.predicted_view.set_title(f"Predicted #{index} (log10 counts)")
