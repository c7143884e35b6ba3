"""The run table with its actions: show, compare, export, use a run's probe, and back to the
live run while a finished one is shown."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ptycho_gui.view_models.comparison import MAX_RUNS, MIN_RUNS
from ptycho_gui.view_models.run_table_model import RunTableModel


class RunTableWidget(QWidget):
    """A table of every run (every algorithm's), buttons acting on the selection and a
    context menu with the same actions and "Use this run's probe".

    Signals
    -------
    show_requested(int)
        Run id to show in the live views.
    compare_requested(list)
        Run ids (2 to 6) to compare.
    export_requested(int)
        Run id to export.
    use_probe_requested(int)
        Run id whose probe the next network run should start from.
    live_requested()
        "Back to live run": the views follow the live run again.
    """

    show_requested = Signal(int)
    compare_requested = Signal(list)
    export_requested = Signal(int)
    use_probe_requested = Signal(int)
    live_requested = Signal()

    def __init__(self, model: RunTableModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.table = QTableView()
        self.table.setModel(model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        header = self.table.horizontalHeader()
        # every column as wide as its content; the last one (the notes) takes what is left
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(model.columnCount() - 1, QHeaderView.ResizeMode.Stretch)
        header.setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.doubleClicked.connect(lambda index: self._on_show_clicked())
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._on_table_context_menu_requested)
        self.show_button = QPushButton("Show")
        self.compare_button = QPushButton(f"Compare ({MIN_RUNS}-{MAX_RUNS})")
        self.export_button = QPushButton("Export…")
        self.live_button = QPushButton("Back to live run")
        self.live_button.setToolTip("Show the live run in the views again (Ctrl+L).")
        self.live_button.setVisible(False)
        self.live_button.clicked.connect(self.live_requested)
        self.hint = QLabel("")
        self.show_button.clicked.connect(self._on_show_clicked)
        self.compare_button.clicked.connect(self._on_compare_clicked)
        self.export_button.clicked.connect(self._on_export_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(self.show_button)
        buttons.addWidget(self.compare_button)
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.live_button)
        buttons.addWidget(self.hint, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

    def selected_run_ids(self) -> list[int]:
        """Run ids of the selected rows, in table order."""
        rows = sorted({index.row() for index in self.table.selectionModel().selectedRows()})
        return [self.model.records[row].run_id for row in rows]

    def select_run_ids(self, run_ids: list[int]) -> None:
        """Select the rows of ``run_ids`` (for tests and scripting)."""
        self.table.clearSelection()
        mode = self.table.selectionMode()
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        for row, record in enumerate(self.model.records):
            if record.run_id in run_ids:
                self.table.selectRow(row)
        self.table.setSelectionMode(mode)

    def set_pinned(self, run_id: int | None, live_id: int | None = None) -> None:
        """Say which finished run the views show (None: they follow the live run); "Back to
        live run" is offered while the run ``live_id`` goes on."""
        self.live_button.setVisible(run_id is not None and live_id is not None)
        if run_id is None:
            self.hint.setText("")
        elif live_id is None:
            self.hint.setText(f"Showing run #{run_id}.")
        else:
            self.hint.setText(f"Showing run #{run_id}; run #{live_id} goes on.")

    def context_menu(self) -> QMenu:
        """The menu of the selected runs: Show, Compare, Export and "Use this run's probe"
        (each enabled only when it applies to the selection)."""
        ids = self.selected_run_ids()
        records = [r for r in (self.model.record(i) for i in ids) if r is not None]
        menu = QMenu(self)
        show = menu.addAction("Show")
        show.setEnabled(len(records) >= 1)
        show.triggered.connect(self._on_show_clicked)
        compare = menu.addAction(f"Compare ({MIN_RUNS}-{MAX_RUNS})")
        compare.setEnabled(MIN_RUNS <= len(records) <= MAX_RUNS)
        compare.triggered.connect(self._on_compare_clicked)
        export = menu.addAction("Export…")
        export.setEnabled(len(records) == 1 and records[0].has_object)
        export.triggered.connect(self._on_export_clicked)
        menu.addSeparator()
        use_probe = menu.addAction("Use this run's probe")
        use_probe.setObjectName("use_probe_action")
        use_probe.setToolTip(
            "Write the probe modes this run ended with to a probe file and start the next "
            "PINN run from it."
        )
        use_probe.setEnabled(len(records) == 1 and records[0].probe_modes is not None)
        use_probe.triggered.connect(self._on_use_probe_triggered)
        return menu

    def _on_table_context_menu_requested(self, pos: QPoint) -> None:
        menu = self.context_menu()
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
        menu.popup(self.table.viewport().mapToGlobal(pos))

    def _on_use_probe_triggered(self) -> None:
        ids = self.selected_run_ids()
        if len(ids) != 1:
            self.hint.setText("Select one run to use its probe.")
            return
        self.hint.setText("")
        self.use_probe_requested.emit(ids[0])

    def _on_show_clicked(self) -> None:
        ids = self.selected_run_ids()
        if ids:
            self.show_requested.emit(ids[0])

    def _on_compare_clicked(self) -> None:
        ids = self.selected_run_ids()
        if not MIN_RUNS <= len(ids) <= MAX_RUNS:
            self.hint.setText(f"Select {MIN_RUNS} to {MAX_RUNS} runs to compare.")
            return
        self.hint.setText("")
        self.compare_requested.emit(ids)

    def _on_export_clicked(self) -> None:
        ids = self.selected_run_ids()
        if len(ids) != 1:
            self.hint.setText("Select one run to export.")
            return
        self.hint.setText("")
        self.export_requested.emit(ids[0])
