"""The model and training panel: every edit goes to the :class:`SettingsModel`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ptycho_engine.config import SUPPORTED_N
from ptycho_gui.view_models.run_settings import PREP_MODES, RunSettings, valid_n_choices
from ptycho_gui.view_models.settings_model import SettingsModel
from ptycho_gui.widgets.image_views import ProbeViewWidget

PROBE_FILTER = "Probe files (*.npy *.npz *.h5 *.hdf5 *.cxi);;All files (*)"


class SettingsPanelWidget(QWidget):
    """Widgets for N, gridsize, probe, network width, loss weights and training.

    Signals
    -------
    start_clicked(), stop_clicked()
    probe_requested(str, int)
        A probe file to read for size N (the main window passes it to the engine worker).
    probe_applied(str)
        A probe file fits and is now part of the settings.
    probe_rejected(str)
        A chosen probe does not fit or cannot be read; the message says why.
    """

    start_clicked = Signal()
    stop_clicked = Signal()
    probe_requested = Signal(str, int)
    probe_applied = Signal(str)
    probe_rejected = Signal(str)

    def __init__(self, model: SettingsModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.last_folder = ""
        self._updating = False

        self.n_combo = QComboBox()
        self.prep_combo = QComboBox()
        self.prep_combo.addItems(PREP_MODES)
        self.gridsize_spin = QSpinBox()
        self.gridsize_spin.setRange(1, 3)
        self.filters_spin = QSpinBox()
        self.filters_spin.setRange(1, 8)
        self.probe_edit = QLineEdit()
        self.probe_edit.setReadOnly(True)
        self.probe_edit.setPlaceholderText("probe of the data file")
        self.probe_button = QPushButton("Browse…")
        self.probe_clear_button = QPushButton("Data probe")
        self.probe_message = QLabel("")
        self.probe_message.setWordWrap(True)
        self.probe_message.setStyleSheet("color: #d04040;")
        self.probe_view = ProbeViewWidget()
        self.probe_view.setMinimumHeight(150)

        self.nll_spin = _double_spin(0.0, 1e3, 3, 0.1)
        self.mae_spin = _double_spin(0.0, 1e3, 3, 0.1)
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 100000)
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 4096)
        self.lr_spin = _double_spin(1e-5, 1.0, 5, 1e-4)
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.rerun_check = QCheckBox("Rerun on change")
        self.rerun_check.setChecked(True)

        model_box = QGroupBox("Model")
        form = QFormLayout(model_box)
        form.addRow("N (patch size)", self.n_combo)
        form.addRow("Larger patterns", self.prep_combo)
        form.addRow("Gridsize", self.gridsize_spin)
        form.addRow("Filters scale", self.filters_spin)
        probe_row = QHBoxLayout()
        probe_row.addWidget(self.probe_edit, 1)
        probe_row.addWidget(self.probe_button)
        probe_row.addWidget(self.probe_clear_button)
        form.addRow("Probe", probe_row)
        form.addRow(self.probe_message)
        form.addRow(self.probe_view)

        train_box = QGroupBox("Training")
        tform = QFormLayout(train_box)
        tform.addRow("NLL weight", self.nll_spin)
        tform.addRow("MAE weight", self.mae_spin)
        tform.addRow("Epochs", self.epochs_spin)
        tform.addRow("Batch size", self.batch_spin)
        tform.addRow("Learning rate", self.lr_spin)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        tform.addRow(buttons)
        tform.addRow(self.rerun_check)

        layout = QVBoxLayout(self)
        layout.addWidget(model_box)
        layout.addWidget(train_box)
        layout.addStretch(1)

        self.show_settings(model.settings)
        self.n_combo.currentIndexChanged.connect(self._on_n_combo_changed)
        self.prep_combo.currentTextChanged.connect(self._on_prep_combo_changed)
        self.gridsize_spin.valueChanged.connect(lambda v: self._edit(gridsize=v))
        self.filters_spin.valueChanged.connect(lambda v: self._edit(n_filters_scale=v))
        self.nll_spin.valueChanged.connect(lambda v: self._edit(nll_weight=v))
        self.mae_spin.valueChanged.connect(lambda v: self._edit(mae_weight=v))
        self.epochs_spin.valueChanged.connect(lambda v: self._edit(epochs=v))
        self.batch_spin.valueChanged.connect(lambda v: self._edit(batch_size=v))
        self.lr_spin.valueChanged.connect(lambda v: self._edit(learning_rate=v))
        self.probe_button.clicked.connect(self._on_probe_button_clicked)
        self.probe_clear_button.clicked.connect(lambda: self.set_probe_path(""))
        self.start_button.clicked.connect(self.start_clicked)
        self.stop_button.clicked.connect(self.stop_clicked)
        model.settings_changed.connect(self._on_model_settings_changed)
        model.edit_rejected.connect(self.probe_message.setText)
        self.data_probe: np.ndarray | None = None
        self._checked_probe: tuple[str, int] = ("", 0)

    def set_detector(self, detector_side: int) -> None:
        """Offer the N valid for patterns of ``detector_side`` pixels."""
        self._updating = True
        try:
            self.n_combo.clear()
            for n in valid_n_choices(detector_side):
                self.n_combo.addItem(str(n), n)
        finally:
            self._updating = False
        self.show_settings(self.model.settings)

    def show_settings(self, settings: RunSettings) -> None:
        """Put ``settings`` in the widgets without emitting edits."""
        self._updating = True
        try:
            index = self.n_combo.findData(settings.N)
            if index < 0:
                self.n_combo.addItem(str(settings.N), settings.N)
                index = self.n_combo.count() - 1
            self.n_combo.setCurrentIndex(index)
            self.prep_combo.setCurrentText(settings.prep_mode)
            self.gridsize_spin.setValue(settings.gridsize)
            self.filters_spin.setValue(settings.n_filters_scale)
            self.probe_edit.setText(settings.probe_path)
            self.nll_spin.setValue(settings.nll_weight)
            self.mae_spin.setValue(settings.mae_weight)
            self.epochs_spin.setValue(settings.epochs)
            self.batch_spin.setValue(settings.batch_size)
            self.lr_spin.setValue(settings.learning_rate)
        finally:
            self._updating = False

    def set_probe_path(self, path: str) -> None:
        """Use a probe file: read in the engine worker (:attr:`probe_requested`), previewed,
        and applied only when it fits the current N (:meth:`show_probe_read` decides).
        ``""`` goes back to the data's probe at once."""
        if not path:
            self.probe_message.setText("")
            self.probe_view.show_probe(self.data_probe)
            self.model.update(probe_path="")
            return
        self.probe_message.setText(f"Reading {Path(path).name}…")
        self.probe_requested.emit(str(path), self.model.settings.N)

    def show_probe_read(self, path: str, n: int, probe: Any, error: str) -> bool:
        """The worker read the probe file ``path`` for size ``n``: preview it, and apply it
        when it fits (``probe`` is a :class:`~ptycho_engine.io.ProbeData`, None on error).

        Returns
        -------
        bool
            True when the probe was applied.
        """
        if probe is None:
            return self._reject_probe(error)
        self.probe_view.show_probe(probe.probe)
        side = probe.modes.shape[-1]
        if probe.modes.shape[-2:] != (n, n):
            offer = (
                f"choose N={side} or another probe"
                if side in SUPPORTED_N
                else "choose a probe of " + " or ".join(f"{m}x{m}" for m in SUPPORTED_N) + " px"
            )
            return self._reject_probe(
                f"This probe does not fit: {Path(path).name} is {side}x{side} but N={n}: {offer}"
            )
        self.probe_message.setText("")
        self.last_folder = str(Path(path).parent)
        if self.model.settings.probe_path != path:
            self.model.update(probe_path=str(path))
        self.probe_applied.emit(str(path))
        return True

    def _reject_probe(self, message: str) -> bool:
        self.probe_message.setText(message)
        self.probe_rejected.emit(message)
        return False

    def _edit(self, **changes: object) -> None:
        if not self._updating:
            self.model.update(**changes)

    def _on_n_combo_changed(self, index: int) -> None:
        if self._updating or index < 0:
            return
        self._edit(N=int(self.n_combo.itemData(index)))

    def _on_prep_combo_changed(self, text: str) -> None:
        self._edit(prep_mode=text)

    def _on_probe_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a probe", self.last_folder, PROBE_FILTER
        )
        if path:
            self.set_probe_path(path)

    def _on_model_settings_changed(self, settings: RunSettings) -> None:
        self.show_settings(settings)
        checked = (settings.probe_path, settings.N)
        if checked == self._checked_probe:
            return
        self._checked_probe = checked
        if settings.probe_path:
            # a new N: does the chosen probe still fit? (read in the worker)
            self.probe_requested.emit(settings.probe_path, settings.N)


def _double_spin(low: float, high: float, decimals: int, step: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setDecimals(decimals)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    return spin
