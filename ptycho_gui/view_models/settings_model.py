"""The settings view model: collects edits and commits the newest settings, debounced; every
commit is one step of its undo stack."""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from ptycho_gui.view_models.run_settings import RunSettings

DEBOUNCE_MS = 300


def settings_change_text(old: RunSettings, new: RunSettings) -> str:
    """What changed, for the Edit menu: ``"epochs 2 → 5, N 32 → 64"`` (at most three)."""
    changes = [
        f"{f.name} {getattr(old, f.name)} → {getattr(new, f.name)}"
        for f in dataclasses.fields(RunSettings)
        if getattr(old, f.name) != getattr(new, f.name)
    ]
    if len(changes) > 3:
        changes = [*changes[:3], "…"]
    return ", ".join(changes) or "settings"


class _SettingsCommand(QUndoCommand):
    """One committed edit: from ``old`` to ``new`` settings."""

    def __init__(self, model: SettingsModel, old: RunSettings, new: RunSettings) -> None:
        super().__init__(settings_change_text(old, new))
        self.model = model
        self.old = old
        self.new = new
        self._done = True  # pushed after the edit was made: the first redo does nothing

    def redo(self) -> None:
        if self._done:
            self._done = False
            return
        self.model._apply(self.new)

    def undo(self) -> None:
        self.model._apply(self.old)


class SettingsModel(QObject):
    """Holds the current :class:`RunSettings` and commits them ``DEBOUNCE_MS`` after the
    last edit, so a burst of edits (a spin box held down, a slider dragged) commits once.

    Every commit is one step of :attr:`undo_stack`: :meth:`undo` puts the settings of the
    commit before back (as :meth:`reset` does: without a new commit, so no run starts), and
    :meth:`redo` the undone ones. Settings replaced with :meth:`reset` (new data, a script)
    are no step: the next edit is undone to them.

    Signals
    -------
    settings_changed(RunSettings)
        After every accepted edit (immediately), reset, undo and redo.
    settings_committed(RunSettings)
        Once the edits have settled: the settings a new run should use.
    edit_rejected(str)
        An edit was invalid; the message names the field.
    """

    settings_changed = Signal(object)
    settings_committed = Signal(object)
    edit_rejected = Signal(str)

    def __init__(self, settings: RunSettings | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings or RunSettings()
        self._baseline = self._settings  # the settings of the last commit (or reset)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._on_timer_timeout)
        self.undo_stack = QUndoStack(self)

    @property
    def settings(self) -> RunSettings:
        """The current settings."""
        return self._settings

    @property
    def pending(self) -> bool:
        """True while edits wait for the debounce timer."""
        return self._timer.isActive()

    def update(self, **changes: object) -> bool:
        """Apply an edit; returns False (and emits ``edit_rejected``) when it is invalid."""
        try:
            new = self._settings.replace(**changes)
        except (ValueError, TypeError) as exc:
            self.edit_rejected.emit(str(exc))
            return False
        if new == self._settings:
            return True
        self._settings = new
        self.settings_changed.emit(new)
        self._timer.start()
        return True

    def reset(self, settings: RunSettings) -> None:
        """Replace the settings without committing (e.g. after new data were loaded)."""
        self._timer.stop()
        self._settings = settings
        self._baseline = settings
        self.settings_changed.emit(settings)

    def flush(self) -> RunSettings:
        """Cancel the pending commit and return the current settings (for Start); pending
        edits become an undo step."""
        self._timer.stop()
        self._record(self._settings)
        return self._settings

    def undo(self) -> bool:
        """Go back one committed edit; edits not committed yet are dropped first (one step).
        Returns False when there is nothing to undo."""
        if self.pending:
            self._apply(self._baseline)
            return True
        if not self.undo_stack.canUndo():
            return False
        self.undo_stack.undo()
        return True

    def redo(self) -> bool:
        """Redo the last undone edit; False when there is none."""
        if self.pending or not self.undo_stack.canRedo():
            return False
        self.undo_stack.redo()
        return True

    def _record(self, settings: RunSettings) -> None:
        if settings != self._baseline:
            self.undo_stack.push(_SettingsCommand(self, self._baseline, settings))
            self._baseline = settings

    def _apply(self, settings: RunSettings) -> None:
        self._timer.stop()
        self._settings = settings
        self._baseline = settings
        self.settings_changed.emit(settings)

    def _on_timer_timeout(self) -> None:
        self._record(self._settings)
        self.settings_committed.emit(self._settings)
