"""The main window's layout: the central views, the docks of the Reconstruction tab (hidden on
the Study tab), the status bar's widgets, and saving and restoring it all (:class:`WindowState`).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStatusBar,
    QTabWidget,
    QWidget,
)

from ptycho_gui.window_state import WindowState

#: Default heights and widths of the docks (px).
RUNS_DOCK_HEIGHT = 150
DATA_DOCK_WIDTH = 270


def central_splitters(
    objects: QWidget, probe: QWidget, loss: QWidget, diffraction: QWidget
) -> tuple[QSplitter, QSplitter]:
    """The object views above probe, loss and diffraction: ``(central, lower)`` splitters."""
    lower = QSplitter(Qt.Orientation.Horizontal)
    lower.setObjectName("lower_splitter")
    for widget in (probe, loss, diffraction):
        lower.addWidget(widget)
    lower.setSizes([380, 300, 380])
    central = QSplitter(Qt.Orientation.Vertical)
    central.setObjectName("central_splitter")
    central.addWidget(objects)
    central.addWidget(lower)
    central.setSizes([560, 300])
    return central, lower


class StatusWidgets:
    """The status bar's widgets: a status line, an error line, the "Restore last session"
    button (hidden until a session can be restored), the progress bar (0 % before anything
    ran) and the ETA."""

    def __init__(self, bar: QStatusBar) -> None:
        self.status_label = QLabel("Starting the engine…")
        self.error_label = QLabel("")
        self.error_label.setStyleSheet("color: #d04040;")
        self.error_label.setWordWrap(False)
        self.restore_button = QPushButton("Restore last session")
        self.restore_button.setVisible(False)
        self.progress_bar = QProgressBar()
        self.progress_bar.setMaximumWidth(220)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.eta_label = QLabel("")
        bar.addWidget(self.status_label, 1)
        bar.addWidget(self.error_label, 2)
        bar.addPermanentWidget(self.restore_button)
        bar.addPermanentWidget(self.progress_bar)
        bar.addPermanentWidget(self.eta_label)


class WindowLayout(QObject):
    """Docks the data panel (left), the settings panel (right, in a scroll area as wide as
    it needs) and the run table (bottom) in ``window``; hides them while the Study tab is
    shown; saves and restores the layout with ``state``."""

    def __init__(
        self,
        window: QMainWindow,
        tabs: QTabWidget,
        study_panel: QWidget,
        panels: tuple[QWidget, QWidget, QWidget],
        splitters: dict[str, QSplitter],
        state: WindowState,
    ) -> None:
        super().__init__(window)
        self.window = window
        self.tabs = tabs
        self.study_panel = study_panel
        self.splitters = splitters
        self.state = state
        data_panel, settings_panel, run_table = panels
        data_panel.setMinimumWidth(250)
        self.data_dock = self._add_dock("data_dock", "Data", data_panel, "left")
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(settings_panel)
        # as wide as the panel needs, so that it never scrolls sideways
        side = settings_panel.minimumSizeHint().width()
        scroll.setMinimumWidth(max(330, side + scroll.verticalScrollBar().sizeHint().width() + 4))
        self.settings_dock = self._add_dock(
            "settings_dock", "Reconstruction settings", scroll, "right"
        )
        self.runs_dock = self._add_dock("runs_dock", "Runs", run_table, "bottom")
        # the docks belong to the Reconstruction tab: the Study tab gets the whole window
        self._hidden: list[QDockWidget] = []
        tabs.currentChanged.connect(self._on_tabs_current_changed)
        self.apply_default_dock_sizes()

    def _add_dock(self, name: str, title: str, widget: QWidget, side: str) -> QDockWidget:
        areas = {
            "left": Qt.DockWidgetArea.LeftDockWidgetArea,
            "right": Qt.DockWidgetArea.RightDockWidgetArea,
            "bottom": Qt.DockWidgetArea.BottomDockWidgetArea,
        }
        dock = QDockWidget(title, self.window)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.window.addDockWidget(areas[side], dock)
        return dock

    def apply_default_dock_sizes(self) -> None:
        """The docks' default sizes."""
        self.window.resizeDocks([self.runs_dock], [RUNS_DOCK_HEIGHT], Qt.Orientation.Vertical)
        self.window.resizeDocks([self.data_dock], [DATA_DOCK_WIDTH], Qt.Orientation.Horizontal)

    def restore(self) -> None:
        """The saved geometry, docks and splitters (the defaults at the first start)."""
        if not self.state.restore(self.window, self.splitters):
            # dock sizes only take once the window is laid out: apply the defaults then
            QTimer.singleShot(0, self.apply_default_dock_sizes)

    def save(self, last_folder: str) -> None:
        """Save the Reconstruction tab's layout, with its docks."""
        self.tabs.setCurrentIndex(0)
        self.state.save(self.window, self.splitters, last_folder)

    def _on_tabs_current_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.study_panel:
            docks = (self.data_dock, self.settings_dock, self.runs_dock)
            self._hidden = [d for d in docks if d.isVisible()]
            for dock in self._hidden:
                dock.hide()
        else:
            for dock in self._hidden:
                dock.show()
            self._hidden = []
