"""The conversion of an image pane's data into the image it shows: the quantity its display
menu chooses (:func:`ptycho_engine.display.display_image`), and the unwrapped phase, computed
in a task worker or, without one, on the GUI thread on a strided image
(:class:`PaneConversionMixin`, a part of
:class:`~ptycho_gui.widgets.image_pane.ImagePaneWidget`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ptycho_engine.display import (
    MAX_DISPLAY_SIDE,
    DisplayMode,
    display_image,
    display_step,
    robust_range,
    unwrap_phase,
)

if TYPE_CHECKING:
    from ptycho_gui.widgets.display_controls import DisplayState

__all__ = ["UNWRAP_KIND", "UNWRAP_SIDE", "PaneConversionMixin"]

#: Without a task worker a pane unwraps on the GUI thread, on an image strided to this side
#: (about 40 ms for 256 x 256 against 150 ms for 512 x 512 on a loaded 2-core machine).
UNWRAP_SIDE = 256
#: The task kind a pane's unwrapping is posted as (the TaskWorker's numerical kind).
UNWRAP_KIND = "compare"


class PaneConversionMixin:
    """What an :class:`~ptycho_gui.widgets.image_pane.ImagePaneWidget` shows for its data:
    the display state's quantity of the complex data, a ready-made image as it is, the
    unwrapped phase once computed."""

    if TYPE_CHECKING:
        # set by ImagePaneWidget
        state: DisplayState
        levels: tuple[float, float] | None
        _amplitude: np.ndarray | None
        _phase: np.ndarray | None
        _valid: np.ndarray | None
        _raw: np.ndarray | None
        _step: int
        _generation: int
        _tasks: Any
        _unwrap_token: tuple[str, int]
        _unwrapped: tuple[tuple[int, bool], np.ndarray, int] | None
        unwrap_pending: bool

        def _render(self) -> bool: ...

    def set_task_worker(self, tasks: Any) -> None:
        """Unwrap phases in ``tasks`` (a :class:`ptycho_gui.jobs.TaskWorker`) instead of on
        the GUI thread; None unwraps here, on an image strided to :data:`UNWRAP_SIDE`."""
        if self._tasks is not None:
            self._tasks.task_finished.disconnect(self._on_tasks_task_finished)
        self._tasks = tasks
        if tasks is not None:
            tasks.task_finished.connect(self._on_tasks_task_finished)

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
