""" "Use this run's probe": the probe a run ended with becomes the next network run's probe.

Every mode is written to a ``.npy`` probe file (in the task worker, in the session folder's
``probes`` or a temporary folder removed with the window), which then goes through the settings
panel's probe reading, so it is applied only when it fits N; then the algorithm becomes the
network.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from ptycho_engine.errors import DataError
from ptycho_gui.jobs import TaskWorker
from ptycho_gui.view_models.export import probe_file_task
from ptycho_gui.view_models.runs import RunRecord
from ptycho_gui.view_models.settings_model import SettingsModel
from ptycho_gui.widgets.settings_panel import SettingsPanelWidget


class ProbeHandover(QObject):
    """Hands a run's probe modes to the settings.

    Parameters
    ----------
    session_dir : callable
        The window's session folder now (None: a temporary folder is used).

    Signals
    -------
    applied(int, str)
        The run's probe file is the settings' probe and the algorithm is the network.
    failed(str)
        Why the probe could not be handed over.
    status(str)
        What is being done.
    """

    applied = Signal(int, str)
    failed = Signal(str)
    status = Signal(str)

    def __init__(
        self,
        panel: SettingsPanelWidget,
        model: SettingsModel,
        tasks: TaskWorker,
        session_dir: Callable[[], Path | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.panel = panel
        self.model = model
        self.tasks = tasks
        self.session_dir = session_dir
        self._pending: tuple[int, str] | None = None  # (run id, probe file) being applied
        self._temporary: Path | None = None
        panel.probe_applied.connect(self._on_panel_probe_applied)
        panel.probe_rejected.connect(self._on_panel_probe_rejected)
        tasks.task_finished.connect(self._on_tasks_task_finished)
        tasks.task_failed.connect(self._on_tasks_task_failed)

    def use(self, record: RunRecord | None, run_id: int) -> bool:
        """Write the probe of ``record`` (run ``run_id``) and apply it; False when it has
        none."""
        if record is None or record.probe_modes is None:
            self.failed.emit(f"run #{run_id} has no probe to use: wait until it has ended")
            return False
        path = self._folder() / f"run-{run_id}-probe.npy"
        self.status.emit(f"Writing the probe of run #{run_id}…")
        try:
            task = probe_file_task(record.probe_modes, path)
        except DataError as exc:
            self.failed.emit(f"run #{run_id}: {exc}")
            return False
        return self.tasks.request("probe-file", ("probe-file", run_id), task)

    def cleanup(self) -> None:
        """Remove the temporary folder (call once the task worker has ended)."""
        if self._temporary is not None:
            shutil.rmtree(self._temporary, ignore_errors=True)
            self._temporary = None

    def _folder(self) -> Path:
        session = self.session_dir()
        if session is not None:
            return Path(session) / "probes"
        if self._temporary is None:
            self._temporary = Path(tempfile.mkdtemp(prefix="ptycho-explorer-probes-"))
        return self._temporary

    def _on_tasks_task_finished(self, kind: str, token: object, result: object) -> None:
        if kind == "probe-file" and isinstance(token, tuple) and isinstance(result, Path):
            self._pending = (int(token[1]), str(result))
            # read back in the engine worker: applied only when it fits N
            self.panel.set_probe_path(str(result))

    def _on_tasks_task_failed(self, kind: str, _token: object, message: str) -> None:
        if kind == "probe-file":
            self.failed.emit(f"could not write the probe file: {message}")

    def _on_panel_probe_rejected(self, _message: str) -> None:
        self._pending = None  # a run's probe that does not fit: the algorithm stays

    def _on_panel_probe_applied(self, path: str) -> None:
        pending = self._pending
        if pending is None or pending[1] != path:
            return
        self._pending = None
        # in the same turn as the probe: the debounced commit runs once, with both
        self.model.update(algorithm="pinn")
        self.status.emit(f"The next PINN run starts from the probe of run #{pending[0]}")
        self.applied.emit(pending[0], path)
