"""The live views and what they say: which run each view shows, at which epoch, and whether
that run is live, stopping, waiting for its first image, or pinned by "Show".

:class:`LiveViews` owns no widget: it draws into the window's object, probe, loss and
diffraction views and keeps the rules in one place:

* the views follow the *live* run (the newest run started) and keep only its newest snapshot
  ("latest wins"; a timer draws at most ~20 times a second);
* "Show" on a finished run *pins* it: the live run's snapshots then only fill its record and
  the views, loss plot included, keep the pinned run until :meth:`LiveViews.unpin`;
* every caption names its run (``"#3 PINN N=64 g=2 · epoch 12"``), and says "stopping" or
  "pending" while the image is an old run's;
* new data clear every view of the old data.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from ptycho_gui.view_models.runs import RunOutcome, RunRecord, RunSnapshot
from ptycho_gui.view_models.texts import epoch_text, run_caption
from ptycho_gui.widgets.image_pane import ImagePaneWidget
from ptycho_gui.widgets.image_views import (
    DiffractionPairWidget,
    ObjectViewsWidget,
    ProbeViewWidget,
)
from ptycho_gui.widgets.loss_plot import LossPlotWidget

REDRAW_INTERVAL_MS = 50  # at most 20 redraws per second
#: The probe view's caption while it shows the data's probe.
DATA_PROBE = "the data file's probe"
PLACEHOLDER_STYLE = (
    "QLabel { background: rgba(20, 20, 20, 200); color: #e0e0e0; padding: 14px; "
    "border-radius: 6px; font-size: 13pt; }"
)


def with_placeholder(views: QWidget, placeholder: QLabel) -> QWidget:
    """``views`` with ``placeholder`` centred over them (it lets the mouse through)."""
    box = QWidget()
    grid = QGridLayout(box)
    grid.setContentsMargins(0, 0, 0, 0)
    grid.addWidget(views, 0, 0)
    grid.addWidget(placeholder, 0, 0, Qt.AlignmentFlag.AlignCenter)
    placeholder.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents, True)
    placeholder.setStyleSheet(PLACEHOLDER_STYLE)
    placeholder.setWordWrap(True)
    placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
    return box


class LiveViews(QObject):
    """Draws runs into the window's views (see the module docstring).

    Attributes
    ----------
    live_id : int or None
        The newest run started (its snapshots feed the views unless one is pinned).
    pinned_id : int or None
        The finished run "Show" put in the views.
    shown_id : int or None
        The run whose object the object views show.
    caption : str
        The object views' caption (also in each pane's title).
    redraws, probe_redraws : int
        Frames drawn by the timer (object views, probe view).

    Signals
    -------
    pinned_changed(object)
        The pinned run id, or None when the views follow the live run again.
    """

    pinned_changed = Signal(object)

    def __init__(
        self,
        object_views: ObjectViewsWidget,
        probe_view: ProbeViewWidget,
        loss_plot: LossPlotWidget,
        diffraction_view: DiffractionPairWidget,
        placeholder: QLabel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.object_views = object_views
        self.probe_view = probe_view
        self.loss_plot = loss_plot
        self.diffraction_view = diffraction_view
        self.placeholder = placeholder
        self.live_id: int | None = None
        self.pinned_id: int | None = None
        self.shown_id: int | None = None
        self.caption = ""
        self.predicted_caption = ""
        self.redraws = 0
        self.probe_redraws = 0
        self._live: RunRecord | None = None
        self._shown_base = ""  # the shown run's caption without its state note
        self._stop_note = ""  # "stopping, run #k pending" while the live run stops
        self._pending: RunSnapshot | None = None
        self._pending_probe: RunSnapshot | None = None
        self._live_image: RunSnapshot | None = None  # the live run's newest image
        self._live_probe: RunSnapshot | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_INTERVAL_MS)
        self.timer.timeout.connect(self._on_timer_timeout)
        self.timer.start()

    # ------------------------------------------------------------------ data

    def set_pixel_size(self, pixel_size_m: float | None) -> None:
        """Scale bars and axes in metres for objects of ``pixel_size_m`` (px when None)."""
        self.object_views.set_pixel_size(pixel_size_m)
        self.probe_view.set_pixel_size(pixel_size_m)

    def clear(self, data_probe: np.ndarray | None, hint: str) -> None:
        """New data: forget every view of the old data; the probe view shows the data's probe
        and the placeholder says ``hint``."""
        self.live_id = self.pinned_id = self.shown_id = None
        self._live = None
        self._pending = self._pending_probe = self._live_image = self._live_probe = None
        for pane in self._object_panes():
            pane.clear_image()
        self.object_views.reset_levels()
        self._set_caption("")
        self.probe_view.show_probe(data_probe)
        self.probe_view.set_caption("" if data_probe is None else DATA_PROBE)
        self.loss_plot.clear_history()
        self._loss_title("")
        pair = self.diffraction_view
        for pane, title in ((pair.measured_view, "Measured"), (pair.predicted_view, "Predicted")):
            pane.clear_image()
            pane.set_title(f"{title} (log10)")
        pair.show_hints()
        pair.index = None
        self.predicted_caption = ""
        self.say(hint)
        self.pinned_changed.emit(None)

    def say(self, text: str) -> None:
        """Show ``text`` over the object views ("" hides it)."""
        self.placeholder.setText(text)
        self.placeholder.setVisible(bool(text))
        if text:
            self.placeholder.raise_()

    # ------------------------------------------------------------------ the live run

    def run_stopping(self, record: RunRecord, next_id: int | None) -> None:
        """``record`` was asked to stop (for run ``next_id``, when one is queued)."""
        if self.pinned_id is not None or record.run_id != self.live_id:
            return
        note = "stopping" + (f", run #{next_id} pending" if next_id is not None else "")
        self._stop_note = note
        if self.shown_id == record.run_id:
            self._set_caption(f"{self._shown_base} · {note}")
        else:
            self.say(f"Stopping run #{record.run_id}…")

    def run_started(self, record: RunRecord) -> None:
        """A run started: it is the live run; until its first image the views say so."""
        self.live_id = record.run_id
        self._live = record
        self._stop_note = ""
        self._pending = self._pending_probe = self._live_image = self._live_probe = None
        if self.pinned_id is not None:
            self.pinned_changed.emit(self.pinned_id)  # a live run now goes on beside it
            return
        self.object_views.reset_levels()
        self.set_pixel_size(record.pixel_size_m)
        self._show_history(record)
        if record.probe is not None:
            self._show_probe(record, record.probe, "start" if record.settings.iterative else "")
        if self.shown_id is not None and self.shown_id != record.run_id:
            self._set_caption(f"{self._shown_base} · run #{record.run_id} pending")
        else:
            self.say(f"Run #{record.run_id}: starting…")

    def stage(self, run_id: int, stage: str) -> None:
        """The live run entered ``stage``: said over the views until its first image."""
        if run_id == self.live_id and self.pinned_id is None and self.shown_id is None:
            self.say(f"Run #{run_id}: {stage}…")

    def snapshot(self, snap: RunSnapshot) -> None:
        """Live progress: drawn unless a run is pinned (the record is the window's job)."""
        if snap.run_id != self.live_id:
            return
        if snap.has_image:
            self._live_image = snap
        if snap.probe is not None:
            self._live_probe = snap
        if self.pinned_id is not None:
            return
        if snap.epoch > 0 and not snap.image_only:
            # the stage marks the MAE warm-up's switch to the likelihood on the plot
            self.loss_plot.add_point(snap.epoch, snap.loss, snap.val_loss, snap.stage)
        if snap.has_image:
            self._pending = snap  # latest wins: the timer draws only the newest
        if snap.probe is not None:
            self._pending_probe = snap

    def run_finished(self, record: RunRecord, outcome: RunOutcome) -> None:
        """The live run ended: its last image now, and its end in the captions."""
        if outcome.run_id != self.live_id:
            return
        if self.pinned_id is not None:
            self.pinned_changed.emit(self.pinned_id)  # no live run goes on beside it now
            return
        self.redraw()
        if self.shown_id == outcome.run_id:
            self._set_caption(f"{self._shown_base} · {outcome.state}")
        elif outcome.state == "failed":
            self.say(f"Run #{outcome.run_id} failed: {outcome.message.splitlines()[0]}")
        elif self.shown_id is None:
            self.say(f"Run #{outcome.run_id} {outcome.state} before its first image")

    # ------------------------------------------------------------------ pinning

    @property
    def live_running(self) -> bool:
        """True while the live run has not ended."""
        return self._live is not None and not self._live.ended

    def pin(self, record: RunRecord) -> None:
        """Show a finished run and keep it in the views until :meth:`unpin`."""
        if record.object is None:
            return
        live = self._live
        if live is not None and record.run_id == live.run_id and not live.ended:
            self.unpin()
            return
        self.pinned_id = record.run_id
        self._pending = self._pending_probe = None
        self._draw_record(record)
        self.pinned_changed.emit(record.run_id)

    def unpin(self) -> None:
        """Follow the live run again: its newest image, probe and history."""
        was = self.pinned_id
        self.pinned_id = None
        live = self._live
        if live is None:
            if was is not None:
                self.pinned_changed.emit(None)
            return
        if live.ended and live.object is not None:
            self._draw_record(live, live.state)
        else:
            self.object_views.reset_levels()
            self._show_history(live)
            self._pending = self._live_image
            self._pending_probe = self._live_probe
            if self._live_image is None:
                for pane in self._object_panes():
                    pane.clear_image()
                self.shown_id = None
                self._set_caption("")
                self.say(f"Run #{live.run_id}: waiting for its first image…")
                if live.probe is not None:
                    self._show_probe(live, live.probe)
            self.redraw()
        if was is not None:
            self.pinned_changed.emit(None)

    def _draw_record(self, record: RunRecord, note: str = "pinned") -> None:
        assert record.object is not None
        self.say("")
        self.object_views.reset_levels()
        self.set_pixel_size(record.pixel_size_m)
        self.object_views.show_object(
            np.abs(record.object).astype(np.float32),
            np.angle(record.object).astype(np.float32),
            record.valid,
        )
        epoch = record.history[-1][0] if record.history else None
        self.shown_id = record.run_id
        self._shown_base = run_caption(record.run_id, record.settings, epoch)
        self._set_caption(f"{self._shown_base} · {note}")
        iterative = record.settings.iterative
        self._show_probe(
            record,
            record.probe_modes if iterative else record.probe,
            epoch_text(record.settings, epoch) if epoch is not None and iterative else "",
        )
        self._show_history(record)

    # ------------------------------------------------------------------ predictions

    def prediction_waiting(self, index: int, text: str) -> None:
        """The predicted pattern of ``index`` is not there yet: say why (``text``)."""
        self.predicted_caption = f"Predicted #{index} ({text})"
        pane = self.diffraction_view.predicted_view
        pane.set_title(f"Predicted #{index}")
        pane.set_caption(text)

    def prediction_shown(self, index: int, run_id: int | None) -> None:
        """The pair of ``index`` is drawn: name the model's run."""
        by = f" · run #{run_id}" if run_id else ""
        self.predicted_caption = f"Predicted #{index}{by}"
        self.diffraction_view.predicted_view.set_caption(f"run #{run_id}" if run_id else "")

    # ------------------------------------------------------------------ drawing

    def redraw(self) -> None:
        """Draw the newest pending snapshot and probe now."""
        probe_snap = self._pending_probe
        if probe_snap is not None and probe_snap.probe is not None:
            self._pending_probe = None
            live = self._live
            if live is not None:
                self._show_probe(
                    live, probe_snap.probe, epoch_text(live.settings, probe_snap.epoch)
                )
            self.probe_redraws += 1
        snap = self._pending
        if snap is None:
            return
        self._pending = None
        assert snap.amplitude is not None and snap.phase is not None
        self.object_views.show_object(snap.amplitude, snap.phase, snap.valid)
        self.redraws += 1
        self.say("")
        self.shown_id = snap.run_id
        if self._live is not None:
            self._shown_base = run_caption(snap.run_id, self._live.settings, snap.epoch)
            state = self._live.state
            if state == "stopping" and self._stop_note:
                state = self._stop_note
            note = "" if state == "running" else f" · {state}"
            self._set_caption(self._shown_base + note)

    def _on_timer_timeout(self) -> None:
        self.redraw()

    def _object_panes(self) -> list[ImagePaneWidget]:
        views = self.object_views
        return [views.amplitude_view, views.phase_view, views.complex_view]

    def _set_caption(self, caption: str) -> None:
        self.caption = caption
        self.object_views.set_caption(caption)

    def _show_probe(self, record: RunRecord, probe: np.ndarray | None, when: str = "") -> None:
        """The probe of ``record`` (``when``: ``"start"``, ``"it. 6"``...), its run named."""
        self.probe_view.show_probe(probe, when)
        self.probe_view.set_caption(run_caption(record.run_id, record.settings))

    def _show_history(self, record: RunRecord) -> None:
        """The loss plot shows ``record``'s history only (never two runs joined)."""
        plot = self.loss_plot
        plot.set_iterative(record.settings.iterative)
        plot.clear_history()
        for epoch, loss, val in record.history:
            plot.add_point(epoch, loss, val)
        self._loss_title(run_caption(record.run_id, record.settings))

    def _loss_title(self, caption: str) -> None:
        base = "Normalised error" if self.loss_plot.iterative else "Loss"
        self.loss_plot.setTitle(f"{base} · {caption}" if caption else base, size="9pt")
