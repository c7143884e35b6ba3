"""The settings panel (algorithm, data, network or solver): every edit goes to the
:class:`SettingsModel`."""

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
from ptycho_engine.solvers.config import NOISE_MODELS
from ptycho_gui.view_models.run_settings import (
    NETWORK,
    NOISE_MODEL_SOLVERS,
    PREP_MODES,
    RunSettings,
    algorithm_choices,
    valid_n_choices,
)
from ptycho_gui.view_models.settings_model import SettingsModel
from ptycho_gui.widgets.image_views import ProbeViewWidget

PROBE_FILTER = "Probe files (*.npy *.npz *.h5 *.hdf5 *.cxi);;All files (*)"


class SettingsPanelWidget(QWidget):
    """Widgets for the algorithm, N, the probe, and the settings of the chosen algorithm: the
    network's (gridsize, width, loss weights, training) or a solver's (iterations, probe and
    position refinement, noise model, batch). Only the chosen algorithm's are shown.

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

        self.algorithm_combo = QComboBox()
        # the titles are long: let the combo be narrower than the longest (the dock is narrow)
        self.algorithm_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.algorithm_combo.setMinimumContentsLength(14)
        for name, title in algorithm_choices():
            self.algorithm_combo.addItem(title, name)
        self.algorithm_combo.setToolTip(
            "How the object is reconstructed: the physics-informed network (trained on the "
            "patterns), or an iterative solver (rPIE: regularised ptychographic engine; "
            "LSQML: least-squares maximum likelihood, batched)."
        )
        self.n_combo = QComboBox()
        self.n_combo.setToolTip(
            "Pattern size in pixels: larger patterns are cropped or binned to N x N, for "
            "every algorithm."
        )
        self.prep_combo = QComboBox()
        self.prep_combo.addItems(PREP_MODES)
        self.prep_combo.setToolTip(
            "crop: keep the central N x N detector pixels (the object pixel grows, the field "
            "of view stays); bin: sum pixel blocks (the object pixel stays)."
        )
        self.gridsize_spin = QSpinBox()
        self.gridsize_spin.setRange(1, 3)
        self.gridsize_spin.setToolTip(
            "Scan positions per group side: the network reconstructs gridsize x gridsize "
            "neighbouring positions together."
        )
        self.filters_spin = QSpinBox()
        self.filters_spin.setRange(1, 8)
        self.filters_spin.setToolTip("Width multiplier of the network's convolution filters.")
        self.probe_edit = QLineEdit()
        self.probe_edit.setReadOnly(True)
        self.probe_edit.setPlaceholderText("probe of the data file")
        self.probe_edit.setToolTip(
            "Probe file the run starts from (.npy with all modes, .npz, product, CXI); empty: "
            "the data's probe. A solver without any probe makes a guess from the data."
        )
        self.probe_button = QPushButton("Browse…")
        self.probe_clear_button = QPushButton("Data probe")
        self.probe_clear_button.setToolTip("Go back to the probe of the data file.")
        self.probe_message = QLabel("")
        self.probe_message.setWordWrap(True)
        self.probe_message.setStyleSheet("color: #d04040;")
        self.probe_view = ProbeViewWidget()
        self.probe_view.setMinimumHeight(150)

        self.nll_spin = _double_spin(0.0, 1e3, 3, 0.1)
        self.nll_spin.setToolTip("Weight of the Poisson negative log-likelihood loss.")
        self.mae_spin = _double_spin(0.0, 1e3, 3, 0.1)
        self.mae_spin.setToolTip("Weight of the mean absolute error of the amplitudes.")
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 100000)
        self.epochs_spin.setToolTip("Passes of the training over every group.")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 4096)
        self.batch_spin.setToolTip("Groups per training step.")
        self.lr_spin = _double_spin(1e-5, 1.0, 5, 1e-4)
        self.lr_spin.setToolTip("Initial learning rate of the optimiser (lowered on plateaus).")

        self.iterations_spin = QSpinBox()
        self.iterations_spin.setRange(1, 100000)
        self.iterations_spin.setToolTip("Passes of the solver over every scan position.")
        self.refine_probe_check = QCheckBox("Refine the probe")
        self.refine_probe_check.setToolTip(
            "Update the probe with the object (from the data's probe, a probe file or a guess); "
            "the probe view follows it during the run."
        )
        self.probe_modes_spin = QSpinBox()
        self.probe_modes_spin.setRange(0, 8)
        self.probe_modes_spin.setSpecialValueText("as the start")
        self.probe_modes_spin.setToolTip(
            "Incoherent probe modes to reconstruct; 'as the start' keeps the modes of the "
            "starting probe. Extra modes start as weak perturbations of the first."
        )
        self.refine_positions_check = QCheckBox("Refine the positions")
        self.refine_positions_check.setToolTip(
            "Correct the scan positions (a least-squares shift of each pattern per iteration)."
        )
        self.noise_combo = QComboBox()
        self.noise_combo.addItems(NOISE_MODELS)
        self.noise_combo.setToolTip(
            "LSQML's likelihood: Gaussian noise on the amplitudes, or Poisson photon counts."
        )
        self.solver_batch_spin = QSpinBox()
        self.solver_batch_spin.setRange(0, 4096)
        self.solver_batch_spin.setSpecialValueText("auto")
        self.solver_batch_spin.setToolTip(
            "Positions updated together from one estimate; auto: the solver's choice "
            "(rPIE with 1 is the sequential algorithm)."
        )

        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Run the current settings now.")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop the run within one step (or iteration).")
        self.rerun_check = QCheckBox("Rerun on change")
        self.rerun_check.setToolTip("Start a new run whenever a setting changes.")
        self.rerun_check.setChecked(True)

        model_box = QGroupBox("Algorithm and data")
        form = QFormLayout(model_box)
        form.addRow("Algorithm", self.algorithm_combo)
        form.addRow("N (patch size)", self.n_combo)
        form.addRow("Larger patterns", self.prep_combo)
        # the file name on a row of its own: the dock is narrow
        form.addRow("Probe", self.probe_edit)
        probe_row = QHBoxLayout()
        probe_row.addWidget(self.probe_button)
        probe_row.addWidget(self.probe_clear_button)
        form.addRow("", probe_row)
        form.addRow(self.probe_message)
        form.addRow(self.probe_view)

        self.network_box = QGroupBox("Network")
        nform = QFormLayout(self.network_box)
        nform.addRow("Gridsize", self.gridsize_spin)
        nform.addRow("Filters scale", self.filters_spin)

        self.train_box = QGroupBox("Training")
        tform = QFormLayout(self.train_box)
        tform.addRow("NLL weight", self.nll_spin)
        tform.addRow("MAE weight", self.mae_spin)
        tform.addRow("Epochs", self.epochs_spin)
        tform.addRow("Batch size", self.batch_spin)
        tform.addRow("Learning rate", self.lr_spin)

        self.solver_box = QGroupBox("Solver")
        self.solver_form = QFormLayout(self.solver_box)
        self.solver_form.addRow("Iterations", self.iterations_spin)
        self.solver_form.addRow(self.refine_probe_check)
        self.solver_form.addRow("Probe modes", self.probe_modes_spin)
        self.solver_form.addRow(self.refine_positions_check)
        self.solver_form.addRow("Noise model", self.noise_combo)
        self.solver_form.addRow("Batch size", self.solver_batch_spin)

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addWidget(model_box)
        layout.addWidget(self.network_box)
        layout.addWidget(self.train_box)
        layout.addWidget(self.solver_box)
        layout.addLayout(buttons)
        layout.addWidget(self.rerun_check)
        layout.addStretch(1)

        self.show_settings(model.settings)
        self.algorithm_combo.currentIndexChanged.connect(self._on_algorithm_combo_changed)
        self.n_combo.currentIndexChanged.connect(self._on_n_combo_changed)
        self.prep_combo.currentTextChanged.connect(self._on_prep_combo_changed)
        self.gridsize_spin.valueChanged.connect(lambda v: self._edit(gridsize=v))
        self.filters_spin.valueChanged.connect(lambda v: self._edit(n_filters_scale=v))
        self.nll_spin.valueChanged.connect(lambda v: self._edit(nll_weight=v))
        self.mae_spin.valueChanged.connect(lambda v: self._edit(mae_weight=v))
        self.epochs_spin.valueChanged.connect(lambda v: self._edit(epochs=v))
        self.batch_spin.valueChanged.connect(lambda v: self._edit(batch_size=v))
        self.lr_spin.valueChanged.connect(lambda v: self._edit(learning_rate=v))
        self.iterations_spin.valueChanged.connect(lambda v: self._edit(iterations=v))
        self.refine_probe_check.toggled.connect(lambda on: self._edit(refine_probe=on))
        self.probe_modes_spin.valueChanged.connect(lambda v: self._edit(probe_modes=v or None))
        self.refine_positions_check.toggled.connect(lambda on: self._edit(refine_positions=on))
        self.noise_combo.currentTextChanged.connect(lambda t: self._edit(noise_model=t))
        self.solver_batch_spin.valueChanged.connect(
            lambda v: self._edit(solver_batch_size=v or None)
        )
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
            self.algorithm_combo.setCurrentIndex(self.algorithm_combo.findData(settings.algorithm))
            self.prep_combo.setCurrentText(settings.prep_mode)
            self.gridsize_spin.setValue(settings.gridsize)
            self.filters_spin.setValue(settings.n_filters_scale)
            self.probe_edit.setText(settings.probe_path)
            self.nll_spin.setValue(settings.nll_weight)
            self.mae_spin.setValue(settings.mae_weight)
            self.epochs_spin.setValue(settings.epochs)
            self.batch_spin.setValue(settings.batch_size)
            self.lr_spin.setValue(settings.learning_rate)
            self.iterations_spin.setValue(settings.iterations)
            self.refine_probe_check.setChecked(settings.refine_probe)
            self.probe_modes_spin.setValue(settings.probe_modes or 0)
            self.refine_positions_check.setChecked(settings.refine_positions)
            self.noise_combo.setCurrentText(settings.noise_model)
            self.solver_batch_spin.setValue(settings.solver_batch_size or 0)
        finally:
            self._updating = False
        self._show_algorithm_fields(settings.algorithm)

    def _show_algorithm_fields(self, algorithm: str) -> None:
        """Show the settings of ``algorithm`` only."""
        iterative = algorithm != NETWORK
        self.network_box.setVisible(not iterative)
        self.train_box.setVisible(not iterative)
        self.solver_box.setVisible(iterative)
        self.solver_form.setRowVisible(self.noise_combo, algorithm in NOISE_MODEL_SOLVERS)
        self.probe_modes_spin.setEnabled(self.refine_probe_check.isChecked())

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

    def _on_algorithm_combo_changed(self, index: int) -> None:
        if self._updating or index < 0:
            return
        self._edit(algorithm=str(self.algorithm_combo.itemData(index)))

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
