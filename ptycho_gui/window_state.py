"""What the app remembers between sessions (QSettings, organisation ``ptycho-explorer``):
window geometry, dock layout and splitter sizes, the last folder and the recent files."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtWidgets import QMainWindow, QSplitter

MAX_RECENT_FILES = 8


class WindowState:
    """Reads and writes the remembered state of a main window in ``settings``."""

    def __init__(self, settings: QSettings) -> None:
        self.settings = settings

    @property
    def last_folder(self) -> str:
        """The folder of the last file opened ("" at first)."""
        return str(self.settings.value("session/last_folder", "", str))

    def recent_files(self) -> list[str]:
        """Recently opened files, newest first."""
        value = self.settings.value("session/recent_files", [], list)
        return [str(v) for v in value] if isinstance(value, list) else []

    def remember_file(self, path: str) -> None:
        """Put ``path`` first in the recent files (at most :data:`MAX_RECENT_FILES`)."""
        recent = [p for p in self.recent_files() if p != path]
        recent.insert(0, path)
        self.settings.setValue("session/recent_files", recent[:MAX_RECENT_FILES])
        self.settings.setValue("session/last_folder", str(Path(path).parent))

    def restore(self, window: QMainWindow, splitters: dict[str, QSplitter]) -> bool:
        """Restore the geometry, the docks and the splitters; False when no dock layout was
        saved yet (first start: the caller applies its default dock sizes)."""
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            window.restoreGeometry(geometry)
        state = self.settings.value("window/state")
        restored = isinstance(state, QByteArray) and window.restoreState(state)
        for name, splitter in splitters.items():
            sizes = self.settings.value(f"window/{name}_splitter")
            if isinstance(sizes, QByteArray):
                splitter.restoreState(sizes)
        return bool(restored)

    def save(self, window: QMainWindow, splitters: dict[str, QSplitter], last_folder: str) -> None:
        """Save the geometry, the docks, the splitters and the last folder."""
        self.settings.setValue("window/geometry", window.saveGeometry())
        self.settings.setValue("window/state", window.saveState())
        for name, splitter in splitters.items():
            self.settings.setValue(f"window/{name}_splitter", splitter.saveState())
        self.settings.setValue("session/last_folder", last_folder)
        self.settings.sync()
