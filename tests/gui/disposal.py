"""A fixture that deletes the widgets a test made, at its end (``dispose(widget)``).

``qtbot.addWidget`` closes a widget but leaves the C++ object alive while Python holds it;
panels full of pyqtgraph views (each with its context menus) then pile up over a test module
and slow the event loop of the tests that follow (a 300 ms debounce window was missed after a
few hundred leaked views). Deleted here, they are gone before the next test starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QWidget

W = TypeVar("W", bound=QWidget)


@pytest.fixture(name="dispose")
def dispose_fixture(qapp) -> Iterator[Callable[[W], W]]:
    """``dispose(widget)`` returns the widget, which is closed and deleted after the test."""
    widgets: list[QWidget] = []

    def keep(widget: W) -> W:
        widgets.append(widget)
        return widget

    yield keep
    for widget in widgets:
        widget.close()
        widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
