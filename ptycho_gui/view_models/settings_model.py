"""The settings view model: collects edits and commits the newest settings, debounced."""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from ptycho_gui.view_models.run_settings import RunSettings

DEBOUNCE_MS = 300


class SettingsModel(QObject):
    """Holds the current :class:`RunSettings` and commits them ``DEBOUNCE_MS`` after the
    last edit, so a burst of edits (a spin box held down, a slider dragged) commits once.

    Signals
    -------
    settings_changed(RunSettings)
        After every accepted edit (immediately).
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
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._on_timer_timeout)

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
        self.settings_changed.emit(settings)

    def flush(self) -> RunSettings:
        """Cancel the pending commit and return the current settings (for Start)."""
        self._timer.stop()
        return self._settings

    def _on_timer_timeout(self) -> None:
        self.settings_committed.emit(self._settings)
