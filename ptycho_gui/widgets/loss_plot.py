"""The error curve of a run: training and validation loss per epoch (the network), or the
normalised error per iteration on a log axis (an iterative solver), with an axis that labels
only the decades a small pane has room for."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QCheckBox, QWidget

__all__ = ["LOG_OFFSET_FRACTION", "STAGE_TEXTS", "DecadeAxisItem", "LossPlotWidget"]


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
