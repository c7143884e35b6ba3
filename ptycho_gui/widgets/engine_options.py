"""The chosen algorithm's own settings in the settings panel (:class:`EngineOptionsWidget`):
the network's (gridsize, filters, loss weights, epochs) with its advanced options in a
collapsible section (probe scale and its automatic lowering, a trainable probe, the MAE
warm-up, batch size, learning rate, stitch window, grid pattern), or an iterative solver's
(iterations, probe and position refinement, probe modes, noise model, batch).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ptycho_engine.config import (
    DEFAULT_WARMUP_EPOCHS,
    EARLY_STOP_MIN_STEPS,
    DataConfig,
    TrainingConfig,
)
from ptycho_engine.solvers.config import NOISE_MODELS
from ptycho_engine.stitching import WINDOWS
from ptycho_gui.view_models.run_settings import (
    NETWORK,
    NOISE_MODEL_SOLVERS,
    RunSettings,
)

__all__ = ["WARMUP_DEFAULT", "EngineOptionsWidget"]

#: Value of the MAE warm-up spin box that stands for "the engine's default rule".
WARMUP_DEFAULT = -1


class EngineOptionsWidget(QWidget):
    """The group boxes of the network's settings ("Network", "Training", the folded
    "Advanced") and of the solvers' ("Solver"); only the chosen algorithm's are shown
    (:meth:`show_algorithm`).

    Signals
    -------
    edited(dict)
        The user changed a field: ``{setting: value}``, changes of the
        :class:`~ptycho_gui.view_models.run_settings.RunSettings` (the settings panel passes
        them to its model, unless it is filling the widgets itself).
    """

    edited = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.gridsize_spin = QSpinBox()
        self.gridsize_spin.setRange(1, 3)
        self.gridsize_spin.setToolTip(
            "Scan positions per group side: the network reconstructs gridsize x gridsize "
            "neighbouring positions together."
        )
        self.filters_spin = QSpinBox()
        self.filters_spin.setRange(1, 8)
        self.filters_spin.setToolTip("Width multiplier of the network's convolution filters.")

        self.nll_spin = _double_spin(0.0, 1e3, 3, 0.1)
        self.nll_spin.setToolTip("Weight of the Poisson negative log-likelihood loss.")
        self.mae_spin = _double_spin(0.0, 1e3, 3, 0.1)
        self.mae_spin.setToolTip("Weight of the mean absolute error of the amplitudes.")
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 100000)
        self.epochs_spin.setToolTip("Passes of the training over every group.")
        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(1, 4096)
        self.batch_spin.setToolTip(
            "Batch size: groups of scan positions per training step (one optimiser update)."
        )
        self.lr_spin = _double_spin(1e-5, 1.0, 5, 1e-4)
        self.lr_spin.setToolTip("Initial learning rate of the optimiser (lowered on plateaus).")

        # the network's advanced options
        self.probe_scale_spin = _double_spin(0.01, 1000.0, 3, 0.5)
        self.probe_scale_spin.setToolTip(
            "Probe normalisation: the probe is divided by this times its mean amplitude in "
            "the central disk (default 4). A smaller value leaves the network more object "
            "amplitude for bright patterns."
        )
        self.auto_probe_scale_check = QCheckBox("Lower it when patterns are too bright")
        self.auto_probe_scale_check.setToolTip(
            "Automatic probe scale: treat the probe scale as an upper bound, lowered just "
            "enough that the brightest patterns do not saturate the amplitude head "
            "(recommended for measured data)."
        )
        self.probe_trainable_check = QCheckBox("Refine the probe in training")
        self.probe_trainable_check.setToolTip(
            "Probe trainable: the optimiser refines the probe with the network (off: the "
            "probe stays fixed)."
        )
        self.pretrained_check = QCheckBox("Start from the pretrained network")
        self.pretrained_check.setToolTip(
            "Start from the network shipped for this N and gridsize, pretrained on a broad "
            "family of simulated scans: its inference is the first image, within seconds, "
            "and training fine-tunes it on these data. The run table's Start column and the "
            "messages say which start a run used, and warn when the data look unlike the "
            "pretraining family. Off: new weights (from scratch)."
        )
        self.early_stopping_check = QCheckBox("Stop early, end on the best epoch")
        fraction = DataConfig.validation_fraction
        sets = round(1 / fraction)
        patience = TrainingConfig.early_stopping_patience
        self.early_stopping_check.setToolTip(
            "Early stopping: end training when the validation loss has not improved for "
            f"{patience} epochs (at least {EARLY_STOP_MIN_STEPS} steps), and give the "
            "network back the weights of the epoch with the lowest validation loss; the "
            "run's messages say when it did. The "
            "validation loss is the fit to detector pixels left out of the training loss: "
            f"{100 * fraction:g} % of the pixels, a different set at each scan position "
            f"(group), so every pixel still trains at {sets - 1} positions of {sets}. It "
            "rises when the network fits the noise. "
            "Off: train every epoch and keep the last weights."
        )
        self.warmup_spin = QSpinBox()
        self.warmup_spin.setRange(WARMUP_DEFAULT, 100000)
        self.warmup_spin.setToolTip(
            "MAE warm-up: epochs trained on the amplitude error alone before the weighted "
            "loss, to leave the Poisson 'fog' plateau. default: "
            f"{DEFAULT_WARMUP_EPOCHS} epochs, never more than a third of the run; 0: no warm-up."
        )
        self.stitch_combo = QComboBox()
        self.stitch_combo.addItems(list(WINDOWS))
        self.stitch_combo.setToolTip(
            "Stitch window: how the final image weights each patch: 'support' (the flat "
            "object support) or 'probe' (the probe amplitude on it, which helps when the "
            "probe leaves parts of the support dark)."
        )
        self.remove_grid_check = QCheckBox("Remove the scan grid's pattern")
        self.remove_grid_check.setToolTip(
            "On a raster scan, the network's small patch-to-patch bias stitches into a faint "
            "grid with the scan's pitch (seams). On: the pattern that repeats in every part of "
            "the image is measured and divided out of the amplitude and phase; the run's "
            "messages give its size. Off: the image as stitched. Spiral and random scans are "
            "never changed."
        )

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

        self.network_box = QGroupBox("Network")
        nform = QFormLayout(self.network_box)
        nform.addRow("Gridsize", self.gridsize_spin)
        nform.addRow("Filters scale", self.filters_spin)

        self.train_box = QGroupBox("Training")
        tform = QFormLayout(self.train_box)
        tform.addRow("NLL weight", self.nll_spin)
        tform.addRow("MAE weight", self.mae_spin)
        tform.addRow("Epochs", self.epochs_spin)
        tform.addRow(self.pretrained_check)

        self.advanced_button = QToolButton()
        self.advanced_button.setText("Advanced network settings")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.setToolTip(
            "Show or hide the network's advanced settings: probe scale, a trainable probe, the "
            "MAE warm-up, early stopping, batch size, learning rate, the stitch window and the "
            "grid pattern."
        )
        self.advanced_box = QGroupBox("Advanced")
        aform = QFormLayout(self.advanced_box)
        aform.addRow("Probe scale", self.probe_scale_spin)
        aform.addRow(self.auto_probe_scale_check)
        aform.addRow(self.probe_trainable_check)
        aform.addRow("MAE warm-up", self.warmup_spin)
        aform.addRow(self.early_stopping_check)
        aform.addRow("Batch size", self.batch_spin)
        aform.addRow("Learning rate", self.lr_spin)
        aform.addRow("Stitch window", self.stitch_combo)
        aform.addRow(self.remove_grid_check)
        self.advanced_box.setVisible(False)

        self.solver_box = QGroupBox("Solver")
        self.solver_form = QFormLayout(self.solver_box)
        self.solver_form.addRow("Iterations", self.iterations_spin)
        self.solver_form.addRow(self.refine_probe_check)
        self.solver_form.addRow("Probe modes", self.probe_modes_spin)
        self.solver_form.addRow(self.refine_positions_check)
        self.solver_form.addRow("Noise model", self.noise_combo)
        self.solver_form.addRow("Batch size", self.solver_batch_spin)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.network_box)
        layout.addWidget(self.train_box)
        layout.addWidget(self.advanced_button)
        layout.addWidget(self.advanced_box)
        layout.addWidget(self.solver_box)

        self.gridsize_spin.valueChanged.connect(lambda v: self._edit(gridsize=v))
        self.filters_spin.valueChanged.connect(lambda v: self._edit(n_filters_scale=v))
        self.nll_spin.valueChanged.connect(lambda v: self._edit(nll_weight=v))
        self.mae_spin.valueChanged.connect(lambda v: self._edit(mae_weight=v))
        self.epochs_spin.valueChanged.connect(lambda v: self._edit(epochs=v))
        self.batch_spin.valueChanged.connect(lambda v: self._edit(batch_size=v))
        self.lr_spin.valueChanged.connect(lambda v: self._edit(learning_rate=v))
        self.probe_scale_spin.valueChanged.connect(lambda v: self._edit(probe_scale=v))
        self.auto_probe_scale_check.toggled.connect(lambda on: self._edit(auto_probe_scale=on))
        self.probe_trainable_check.toggled.connect(lambda on: self._edit(probe_trainable=on))
        self.warmup_spin.valueChanged.connect(self._on_warmup_spin_value_changed)
        self.early_stopping_check.toggled.connect(lambda on: self._edit(early_stopping=on))
        self.pretrained_check.toggled.connect(lambda on: self._edit(pretrained=on))
        self.stitch_combo.currentTextChanged.connect(lambda t: self._edit(stitch_window=t))
        self.remove_grid_check.toggled.connect(lambda on: self._edit(remove_grid_pattern=on))
        self.iterations_spin.valueChanged.connect(lambda v: self._edit(iterations=v))
        self.refine_probe_check.toggled.connect(lambda on: self._edit(refine_probe=on))
        self.probe_modes_spin.valueChanged.connect(lambda v: self._edit(probe_modes=v or None))
        self.refine_positions_check.toggled.connect(lambda on: self._edit(refine_positions=on))
        self.noise_combo.currentTextChanged.connect(lambda t: self._edit(noise_model=t))
        self.solver_batch_spin.valueChanged.connect(
            lambda v: self._edit(solver_batch_size=v or None)
        )

    def show_settings(self, settings: RunSettings) -> None:
        """Put the network's and the solvers' fields of ``settings`` in the widgets (the
        settings panel ignores the edits this emits: it calls it while filling itself)."""
        self.gridsize_spin.setValue(settings.gridsize)
        self.filters_spin.setValue(settings.n_filters_scale)
        self.nll_spin.setValue(settings.nll_weight)
        self.mae_spin.setValue(settings.mae_weight)
        self.epochs_spin.setValue(settings.epochs)
        self.batch_spin.setValue(settings.batch_size)
        self.lr_spin.setValue(settings.learning_rate)
        self.probe_scale_spin.setValue(settings.probe_scale)
        self.auto_probe_scale_check.setChecked(settings.auto_probe_scale)
        self.probe_trainable_check.setChecked(settings.probe_trainable)
        default = TrainingConfig(epochs=settings.epochs).warmup_epochs
        self.warmup_spin.setSpecialValueText(f"default ({default} epochs)")
        warmup = settings.mae_warmup_epochs
        self.warmup_spin.setValue(WARMUP_DEFAULT if warmup is None else warmup)
        self.early_stopping_check.setChecked(settings.early_stopping)
        self.pretrained_check.setChecked(settings.pretrained)
        self.stitch_combo.setCurrentText(settings.stitch_window)
        self.remove_grid_check.setChecked(settings.remove_grid_pattern)
        self.iterations_spin.setValue(settings.iterations)
        self.refine_probe_check.setChecked(settings.refine_probe)
        self.probe_modes_spin.setValue(settings.probe_modes or 0)
        self.refine_positions_check.setChecked(settings.refine_positions)
        self.noise_combo.setCurrentText(settings.noise_model)
        self.solver_batch_spin.setValue(settings.solver_batch_size or 0)

    def show_algorithm(self, algorithm: str) -> None:
        """Show the settings of ``algorithm`` only."""
        iterative = algorithm != NETWORK
        self.network_box.setVisible(not iterative)
        self.train_box.setVisible(not iterative)
        self.advanced_button.setVisible(not iterative)
        self.advanced_box.setVisible(not iterative and self.advanced_button.isChecked())
        self.solver_box.setVisible(iterative)
        self.solver_form.setRowVisible(self.noise_combo, algorithm in NOISE_MODEL_SOLVERS)
        self.probe_modes_spin.setEnabled(self.refine_probe_check.isChecked())

    def _edit(self, **changes: object) -> None:
        self.edited.emit(changes)

    def _on_warmup_spin_value_changed(self, value: int) -> None:
        self._edit(mae_warmup_epochs=None if value == WARMUP_DEFAULT else value)


def _double_spin(low: float, high: float, decimals: int, step: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setDecimals(decimals)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    return spin
