"""The main window's menus and actions (File, Edit, Run, Help), with the keyboard shortcuts of
:data:`ptycho_gui.view_models.texts.SHORTCUTS`."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import QMainWindow, QMenu, QMessageBox, QWidget

from ptycho_gui.view_models.texts import SHORTCUTS

#: Action name -> menu text, per menu, in menu order ("-" is a separator, "recent" the
#: "Open recent" submenu).
MENUS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "&File",
        (
            ("open_data", "&Open data…"),
            ("recent", "Open &recent"),
            ("-", ""),
            ("open_session", "Open &session…"),
            ("save_session", "Save session &as…"),
            ("restore_session", "Restore last session"),
            ("-", ""),
            ("quit", "&Quit"),
        ),
    ),
    ("&Edit", (("undo", "&Undo"), ("redo", "&Redo"))),
    (
        "&Run",
        (
            ("start", "&Start"),
            ("stop", "S&top"),
            ("-", ""),
            ("compare", "&Compare selected runs"),
            ("next_run", "Show &next run"),
            ("previous_run", "Show &previous run"),
            ("live_run", "Back to &live run"),
        ),
    ),
    ("&Help", (("shortcuts", "&Keyboard shortcuts"), ("about", "&About Ptycho Explorer"))),
)


class WindowActions:
    """Builds the menu bar of ``window``; each action's ``triggered`` calls
    ``handlers[name]``, and the action is the attribute ``name`` (e.g. :attr:`start`).

    Attributes
    ----------
    recent_menu : QMenu
        "Open recent", filled by the window.
    actions : dict of str to QAction
    """

    def __init__(self, window: QMainWindow, handlers: Mapping[str, Callable[[], object]]) -> None:
        keys = {name: shortcut for name, _text, shortcut in SHORTCUTS}
        self.actions: dict[str, QAction] = {}
        bar = window.menuBar()
        for title, entries in MENUS:
            menu = bar.addMenu(title)
            for name, text in entries:
                if name == "-":
                    menu.addSeparator()
                elif name == "recent":
                    self.recent_menu: QMenu = menu.addMenu(text)
                else:
                    action = QAction(text, window)
                    action.setObjectName(f"{name}_action")
                    if name in keys:
                        action.setShortcuts([QKeySequence(k) for k in keys[name]])
                    action.triggered.connect(lambda _checked=False, n=name: handlers[n]())
                    menu.addAction(action)
                    self.actions[name] = action
        self.restore_session.setEnabled(False)
        self.live_run.setEnabled(False)

    def show_undo_state(self, stack: QUndoStack) -> None:
        """Undo and Redo name the settings change they would undo or redo."""
        for action, name, text, able in (
            (self.undo, "Undo", stack.undoText(), stack.canUndo()),
            (self.redo, "Redo", stack.redoText(), stack.canRedo()),
        ):
            action.setText(f"&{name} {text}" if text else f"&{name}")
            action.setToolTip(f"{name} the settings change: {text}" if able else name)

    def __getattr__(self, name: str) -> QAction:
        actions = self.__dict__.get("actions", {})
        if name in actions:
            return actions[name]
        raise AttributeError(name)


def about_versions() -> dict[str, str]:
    """The versions the About box names: the engine's (:func:`ptycho_engine.runs.versions`),
    then PySide6, Qt and pyqtgraph."""
    import pyqtgraph
    import PySide6
    from PySide6.QtCore import qVersion

    from ptycho_engine.runs import versions

    return {
        **versions(),
        "PySide6": PySide6.__version__,
        "Qt": qVersion(),
        "pyqtgraph": str(pyqtgraph.__version__),
    }


def message_box(parent: QWidget, title: str, text: str) -> QMessageBox:
    """A non-modal information box, shown (tests read its text)."""
    box = QMessageBox(QMessageBox.Icon.Information, title, text, parent=parent)
    box.setModal(False)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.show()
    return box
