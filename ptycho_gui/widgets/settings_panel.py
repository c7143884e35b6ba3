"""The settings panel (algorithm, data and geometry, network or solver, advanced network
options): every edit goes to the :class:`SettingsModel`.

The basic settings are always shown; the network's advanced options (probe scale and its
automatic lowering, a trainable probe, the MAE warm-up, batch size, learning rate, stitching
window) sit in a collapsible section. A probe file that does not fit N is refused with the
choices that make it fit, as buttons.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
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
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ptycho_engine.config import SUPPORTED_N, TrainingConfig
from ptycho_engine.data import DiffractionData
from ptycho_engine.solvers.config import NOISE_MODELS
from ptycho_gui.view_models.geometry import (
    FileGeometry,
    Geometry,
    choice_sentence,
    object_sampling,
)
from ptycho_gui.view_models.panel_text import breakable
from ptycho_gui.view_models.run_settings import (
    GEOMETRY_FIELDS,
    NETWORK,
    NOISE_MODEL_SOLVERS,
    PREP_MODES,
    STITCH_CHOICES,
    RunSettings,
    algorithm_choices,
    valid_n_choices,
)
from ptycho_gui.view_models.settings_model import SettingsModel
from ptycho_gui.widgets.image_views import ProbeViewWidget

PROBE_FILTER = "Probe files (*.npy *.npz *.h5 *.hdf5 *.cxi);;All files (*)"
#: Display units of the geometry fields: ``{field: (unit, metres or eV per unit, decimals)}``;
#: the energy's unit is chosen in the panel (:data:`ENERGY_UNITS`).
GEOMETRY_UNITS = {"distance_m": ("m", 1.0, 4), "detector_pixel_m": ("µm", 1e-6, 2)}
ENERGY_UNITS = {"keV": (1e3, 4), "eV": (1.0, 1)}
#: Value of the MAE warm-up spin box that stands for "the engine's default rule".
WARMUP_DEFAULT = -1


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
        A chosen probe does not fit or cannot be read; the message says why (the panel then
        offers the choices that make it fit: resample it to N, use N = the probe's side, or
        keep the data's probe).

    The main window calls :meth:`show_data` when a file is loaded (it offers the valid N,
    fills the geometry from the file and clears the probe message of the previous file).
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
        self.data_probe: np.ndarray | None = None
        #: What the file says about its sampling (None before a file is shown).
        self.file_geometry: FileGeometry | None = None
        #: The probe array shown in the preview (None: nothing shown).
        self.preview_probe: np.ndarray | None = None
        self._file_path = ""
        self._detector_side = 0
        # the probe file of the settings and its array, once it was read and applied
        self._applied: tuple[str, np.ndarray] | None = None
        # the probe refused last: (path, N it was read for, its modes)
        self._rejected: tuple[str, int, np.ndarray] | None = None
        self._checked_probe: tuple[str, int, bool] = ("", 0, False)

        self.edit_message = _message_label()

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
            "crop: keep the central N x N detector pixels (the object pixel grows by N0/N, the "
            "field of view stays); bin: sum b x b pixel blocks, b = N0/N (the object pixel "
            "stays, the field of view shrinks by b)."
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
        self.probe_button.setToolTip("Choose a probe file; it is used only if it fits N.")
        self.probe_clear_button = QPushButton("Data probe")
        self.probe_clear_button.setToolTip("Go back to the probe of the data file.")
        self.probe_message = _message_label()
        self.resample_button = QPushButton("Resample to N")
        self.resample_button.setToolTip(
            "Use this probe, Fourier-resampled to N x N (the same field of view; to the data's "
            "object pixel when the probe file gives its pixel size)."
        )
        self.use_n_button = QPushButton("Use N")
        self.use_n_button.setToolTip("Use this probe as it is, and set N to its side.")
        self.keep_data_probe_button = QPushButton("Keep the data's probe")
        self.keep_data_probe_button.setToolTip("Forget this probe file: the data's probe is used.")
        self.probe_choices = QWidget()
        choices = QVBoxLayout(self.probe_choices)
        choices.setContentsMargins(0, 0, 0, 0)
        first = QHBoxLayout()
        first.addWidget(self.resample_button)
        first.addWidget(self.use_n_button)
        choices.addLayout(first)
        choices.addWidget(self.keep_data_probe_button)
        self.probe_choices.setVisible(False)
        self.probe_view = ProbeViewWidget()
        self.probe_view.setMinimumHeight(150)

        # geometry (physics.md section 6); the values go to the run as overrides
        self.energy_spin = _geometry_spin()
        self.energy_unit_combo = QComboBox()
        self.energy_unit_combo.addItems(list(ENERGY_UNITS))
        self.energy_unit_combo.setToolTip("Unit of the photon energy.")
        self.distance_spin = _geometry_spin(" m")
        self.detector_pixel_spin = _geometry_spin(" µm")
        self.geometry_spins = {
            "energy_ev": self.energy_spin,
            "distance_m": self.distance_spin,
            "detector_pixel_m": self.detector_pixel_spin,
        }
        self._set_energy_unit("keV")
        self.energy_spin.setToolTip(
            "Photon energy. Filled from the file; an edit replaces the file's value for the "
            "run (recorded in its preparation steps)."
        )
        self.distance_spin.setToolTip(
            "Sample-to-detector distance in metres. Filled from the file; an edit replaces "
            "the file's value for the run."
        )
        self.detector_pixel_spin.setToolTip(
            "Detector pixel size in micrometres. Filled from the file; an edit replaces the "
            "file's value for the run."
        )
        self.geometry_reset_button = QPushButton("File's geometry")
        self.geometry_reset_button.setToolTip("Forget the edits: use the file's geometry.")
        self.geometry_source_label = _note_label()
        self.sampling_label = QLabel("")
        self.sampling_label.setWordWrap(True)
        self.sampling_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.sampling_label.setToolTip(
            "Object pixel = wavelength x distance / (N x detector pixel) for the N x N detector "
            "region used; field of view = N object pixels (one pattern's patch)."
        )
        self.choice_label = _note_label()

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
        self.warmup_spin = QSpinBox()
        self.warmup_spin.setRange(WARMUP_DEFAULT, 100000)
        self.warmup_spin.setToolTip(
            "MAE warm-up: epochs trained on the amplitude error alone before the weighted "
            "loss, to leave the Poisson 'fog' plateau. default: 3 epochs, never more than a "
            "third of the run; 0: no warm-up."
        )
        self.stitch_combo = QComboBox()
        self.stitch_combo.addItems(list(STITCH_CHOICES))
        self.stitch_combo.setToolTip(
            "Stitch window: how the final image weights each patch: 'support' (the flat "
            "object support) or 'probe' (the probe amplitude on it, which helps when the "
            "probe leaves parts of the support dark)."
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
        form.addRow(self.probe_choices)
        form.addRow(self.probe_view)

        self.geometry_box = QGroupBox("Geometry")
        gform = QFormLayout(self.geometry_box)
        energy_row = QHBoxLayout()
        energy_row.addWidget(self.energy_spin, 1)
        energy_row.addWidget(self.energy_unit_combo)
        gform.addRow("Energy", energy_row)
        gform.addRow("Distance", self.distance_spin)
        gform.addRow("Detector pixel", self.detector_pixel_spin)
        gform.addRow(self.geometry_source_label)
        gform.addRow(self.geometry_reset_button)
        gform.addRow(self.sampling_label)
        gform.addRow(self.choice_label)

        self.network_box = QGroupBox("Network")
        nform = QFormLayout(self.network_box)
        nform.addRow("Gridsize", self.gridsize_spin)
        nform.addRow("Filters scale", self.filters_spin)

        self.train_box = QGroupBox("Training")
        tform = QFormLayout(self.train_box)
        tform.addRow("NLL weight", self.nll_spin)
        tform.addRow("MAE weight", self.mae_spin)
        tform.addRow("Epochs", self.epochs_spin)

        self.advanced_button = QToolButton()
        self.advanced_button.setText("Advanced network settings")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.setToolTip(
            "Show or hide the network's advanced settings: probe scale, a trainable probe, the "
            "MAE warm-up, batch size, learning rate and the stitch window."
        )
        self.advanced_box = QGroupBox("Advanced")
        aform = QFormLayout(self.advanced_box)
        aform.addRow("Probe scale", self.probe_scale_spin)
        aform.addRow(self.auto_probe_scale_check)
        aform.addRow(self.probe_trainable_check)
        aform.addRow("MAE warm-up", self.warmup_spin)
        aform.addRow("Batch size", self.batch_spin)
        aform.addRow("Learning rate", self.lr_spin)
        aform.addRow("Stitch window", self.stitch_combo)
        self.advanced_box.setVisible(False)

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
        layout.addWidget(self.edit_message)
        layout.addWidget(model_box)
        layout.addWidget(self.geometry_box)
        layout.addWidget(self.network_box)
        layout.addWidget(self.train_box)
        layout.addWidget(self.advanced_button)
        layout.addWidget(self.advanced_box)
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
        self.probe_scale_spin.valueChanged.connect(lambda v: self._edit(probe_scale=v))
        self.auto_probe_scale_check.toggled.connect(lambda on: self._edit(auto_probe_scale=on))
        self.probe_trainable_check.toggled.connect(lambda on: self._edit(probe_trainable=on))
        self.warmup_spin.valueChanged.connect(self._on_warmup_spin_value_changed)
        self.stitch_combo.currentTextChanged.connect(lambda t: self._edit(stitch_window=t))
        self.iterations_spin.valueChanged.connect(lambda v: self._edit(iterations=v))
        self.refine_probe_check.toggled.connect(lambda on: self._edit(refine_probe=on))
        self.probe_modes_spin.valueChanged.connect(lambda v: self._edit(probe_modes=v or None))
        self.refine_positions_check.toggled.connect(lambda on: self._edit(refine_positions=on))
        self.noise_combo.currentTextChanged.connect(lambda t: self._edit(noise_model=t))
        self.solver_batch_spin.valueChanged.connect(
            lambda v: self._edit(solver_batch_size=v or None)
        )
        for name, spin in self.geometry_spins.items():
            spin.valueChanged.connect(lambda _v, n=name: self._on_geometry_spin_value_changed(n))
        self.energy_unit_combo.currentTextChanged.connect(self._on_energy_unit_combo_changed)
        self.geometry_reset_button.clicked.connect(self._on_geometry_reset_button_clicked)
        self.advanced_button.toggled.connect(self.set_advanced_shown)
        self.probe_button.clicked.connect(self._on_probe_button_clicked)
        self.probe_clear_button.clicked.connect(lambda: self.set_probe_path(""))
        self.resample_button.clicked.connect(self._on_resample_button_clicked)
        self.use_n_button.clicked.connect(self._on_use_n_button_clicked)
        self.keep_data_probe_button.clicked.connect(lambda: self.set_probe_path(""))
        self.start_button.clicked.connect(self.start_clicked)
        self.stop_button.clicked.connect(self.stop_clicked)
        model.settings_changed.connect(self._on_model_settings_changed)
        model.edit_rejected.connect(self._on_model_edit_rejected)

    # ------------------------------------------------------------------ public API

    def show_data(self, data: DiffractionData) -> None:
        """A file was loaded: offer its valid N, fill the geometry from it, show its probe
        (unless a probe file is chosen) and clear what the previous file left (the probe
        message and, for another file, the geometry edits)."""
        path = str(data.provenance.get("path", ""))
        new_file = path != self._file_path
        self._file_path = path
        self.data_probe = data.probe
        self.file_geometry = FileGeometry.of(data)
        settings = self.model.settings
        if new_file and settings.geometry_overrides:
            # edits of one file's geometry are not another file's
            self.model.reset(settings.replace(**dict.fromkeys(GEOMETRY_FIELDS)))
        self.reset_for_new_file()
        self.set_detector(data.N)

    def reset_for_new_file(self) -> None:
        """Forget the probe message and choices of the previous file, and show the probe the
        settings use (the data's, or the applied probe file's)."""
        self._rejected = None
        self._set_probe_message("")
        self._preview_settings_probe()

    def set_detector(self, detector_side: int) -> None:
        """Offer the N valid for patterns of ``detector_side`` pixels."""
        self._detector_side = int(detector_side)
        self._updating = True
        try:
            self.n_combo.clear()
            for n in valid_n_choices(detector_side):
                self.n_combo.addItem(str(n), n)
        finally:
            self._updating = False
        self.show_settings(self.model.settings)

    def set_advanced_shown(self, shown: bool) -> None:
        """Unfold (True) or fold the advanced network settings."""
        if self.advanced_button.isChecked() != shown:
            self.advanced_button.setChecked(shown)  # comes back here through ``toggled``
            return
        arrow = Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow
        self.advanced_button.setArrowType(arrow)
        self.advanced_box.setVisible(shown and self.model.settings.algorithm == NETWORK)

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
            self.probe_scale_spin.setValue(settings.probe_scale)
            self.auto_probe_scale_check.setChecked(settings.auto_probe_scale)
            self.probe_trainable_check.setChecked(settings.probe_trainable)
            default = TrainingConfig(epochs=settings.epochs).warmup_epochs
            self.warmup_spin.setSpecialValueText(f"default ({default} epochs)")
            warmup = settings.mae_warmup_epochs
            self.warmup_spin.setValue(WARMUP_DEFAULT if warmup is None else warmup)
            self.stitch_combo.setCurrentText(settings.stitch_window)
            self.iterations_spin.setValue(settings.iterations)
            self.refine_probe_check.setChecked(settings.refine_probe)
            self.probe_modes_spin.setValue(settings.probe_modes or 0)
            self.refine_positions_check.setChecked(settings.refine_positions)
            self.noise_combo.setCurrentText(settings.noise_model)
            self.solver_batch_spin.setValue(settings.solver_batch_size or 0)
            self._show_geometry(settings)
        finally:
            self._updating = False
        self._show_algorithm_fields(settings.algorithm)
        self._show_sampling(settings)

    def run_geometry(self) -> Geometry:
        """The geometry the run uses: the file's, with the edits in the settings."""
        settings = Geometry(*(getattr(self.model.settings, k) for k in GEOMETRY_FIELDS))
        if self.file_geometry is None:
            return settings
        return self.file_geometry.geometry.overridden_by(settings)

    def set_probe_path(self, path: str) -> None:
        """Use a probe file: read in the engine worker (:attr:`probe_requested`), previewed,
        and applied only when it fits the current N (:meth:`show_probe_read` decides).
        ``""`` goes back to the data's probe at once."""
        if not path:
            self._rejected = None
            self._applied = None
            self._set_probe_message("")
            self._preview(self.data_probe)
            self.model.update(probe_path="", probe_resample=False)
            return
        self._set_probe_message(f"Reading {Path(path).name}…", error=False)
        self.probe_requested.emit(str(path), self.model.settings.N)

    def show_probe_read(self, path: str, n: int, probe: Any, error: str) -> bool:
        """The worker read the probe file ``path`` for size ``n``: apply it when it fits
        (``probe`` is a :class:`~ptycho_engine.io.ProbeData`, None on error), or refuse it,
        offering the choices that make it fit, and show the probe in use again.

        Returns
        -------
        bool
            True when the probe was applied.
        """
        path = str(path)
        if probe is None:
            self._rejected = None
            return self._reject_probe(f"Cannot use {Path(path).name}: {error}")
        modes = np.asarray(probe.modes)
        h, w = modes.shape[-2:]
        settings = self.model.settings
        resampled = settings.probe_path == path and settings.probe_resample and h == w
        if (h, w) != (n, n) and not resampled:
            self._rejected = (path, n, modes)
            return self._reject_probe(self._misfit_message(path, h, w, n))
        self._apply_probe(path, modes, resample=resampled)
        return True

    # ------------------------------------------------------------------ probe helpers

    def _misfit_message(self, path: str, h: int, w: int, n: int) -> str:
        name = Path(path).name
        if h != w:
            return (
                f"This probe does not fit: {name} is {h}x{w}, not square; N={n} needs an "
                f"{n}x{n} probe: choose another probe or keep the data's."
            )
        offers = [f"resample it to N={n}"]
        if h in self._valid_n():
            offers.append(f"use N={h}")
        offers.append("keep the data's probe")
        return f"This probe does not fit: {name} is {h}x{w} but N={n}: " + ", ".join(offers) + "."

    def _valid_n(self) -> list[int]:
        side = self._detector_side or max(SUPPORTED_N)
        return valid_n_choices(side)

    def _apply_probe(self, path: str, modes: np.ndarray, resample: bool) -> None:
        self._rejected = None
        self._applied = (path, modes)
        self._set_probe_message("")
        self.last_folder = str(Path(path).parent)
        settings = self.model.settings
        self._checked_probe = (path, settings.N, resample)
        if settings.probe_path != path or settings.probe_resample != resample:
            self.model.update(probe_path=path, probe_resample=resample)
        self._preview_settings_probe()
        self.probe_applied.emit(path)

    def _reject_probe(self, message: str) -> bool:
        self._set_probe_message(message)
        self._preview_settings_probe()  # the refused probe does not stay on screen
        self.probe_rejected.emit(message)
        return False

    def _set_probe_message(self, message: str, error: bool = True) -> None:
        self.probe_message.setText(breakable(message))
        self.probe_message.setVisible(bool(message))
        self.probe_message.setStyleSheet("color: #d04040;" if error else "")
        rejected = self._rejected
        self.probe_choices.setVisible(rejected is not None)
        if rejected is None:
            return
        _path, n, modes = rejected
        h, w = modes.shape[-2:]
        self.resample_button.setText(f"Resample to N={n}")
        self.resample_button.setVisible(h == w)
        self.use_n_button.setText(f"Use N={h}")
        self.use_n_button.setVisible(h == w and h in self._valid_n())

    def _preview_settings_probe(self) -> None:
        settings = self.model.settings
        applied = self._applied
        if not settings.probe_path:
            self._preview(self.data_probe)
        elif applied is not None and applied[0] == settings.probe_path:
            side = applied[1].shape[-1]
            if settings.probe_resample and side != settings.N and self._rejected is None:
                # a note, not an error: the preview is the file's probe, before resampling
                self._set_probe_message(
                    f"{Path(applied[0]).name} is {side}x{side}: the run resamples it to "
                    f"N={settings.N} (same field of view).",
                    error=False,
                )
            self._preview(applied[1])

    def _preview(self, probe: np.ndarray | None, caption: str = "") -> None:
        self.preview_probe = probe
        self.probe_view.show_probe(probe, caption)

    # ------------------------------------------------------------------ geometry helpers

    def _set_energy_unit(self, unit: str) -> None:
        scale, decimals = ENERGY_UNITS[unit]
        self.energy_spin.setDecimals(decimals)
        self.energy_spin.setRange(0.0, 1e6 / scale)
        self.energy_spin.setSuffix(f" {unit}")
        self.energy_spin.setSingleStep(0.1 if unit == "keV" else 100.0)

    def _unit(self, name: str) -> tuple[float, int]:
        """Size of a display unit of the geometry field ``name`` (eV or m) and its decimals."""
        if name == "energy_ev":
            return ENERGY_UNITS[self.energy_unit_combo.currentText()]
        _unit, scale, decimals = GEOMETRY_UNITS[name]
        return scale, decimals

    def _file_value(self, name: str) -> float | None:
        if self.file_geometry is None:
            return None
        value = getattr(self.file_geometry.geometry, name)
        return None if value is None else float(value)

    def _show_geometry(self, settings: RunSettings) -> None:
        edited = []
        for name, spin in self.geometry_spins.items():
            override = getattr(settings, name)
            value = self._file_value(name) if override is None else float(override)
            scale, decimals = self._unit(name)
            if name != "energy_ev":
                spin.setDecimals(decimals)
            spin.setValue(0.0 if value is None else value / scale)
            font = spin.font()
            font.setBold(override is not None)
            spin.setFont(font)
            if override is not None:
                edited.append(name.rsplit("_", 1)[0].replace("_", " "))
        missing = self.run_geometry().missing
        if edited:
            text = f"Edited (bold): {', '.join(edited)}; the run records them as overrides."
        elif self.file_geometry is None:
            text = "Open a file to see its geometry."
        elif missing:
            text = f"Not in the file: {', '.join(missing)}. Enter them to size the object pixel."
        else:
            text = "From the file."
        self.geometry_source_label.setText(text)
        self.geometry_reset_button.setEnabled(bool(edited))

    def _show_sampling(self, settings: RunSettings) -> None:
        file = self.file_geometry
        if file is None:
            self.sampling_label.setText("Object pixel and field of view: open a file.")
            self.choice_label.setText("")
            return
        overrides = Geometry(*(getattr(settings, k) for k in GEOMETRY_FIELDS))
        sampling = object_sampling(file, settings.N, settings.prep_mode, overrides)
        self.sampling_label.setText(f"{sampling.text()}, at N={settings.N} ({settings.prep_mode}).")
        self.choice_label.setText(choice_sentence(file.detector_n, settings.N))

    def _geometry_override(self, name: str) -> float | None:
        """The override that the spin box of ``name`` holds (None: the file's value)."""
        spin = self.geometry_spins[name]
        scale, decimals = self._unit(name)
        shown = spin.value()
        if shown <= 0:
            return None  # "unknown": back to the file's value
        file_value = self._file_value(name)
        if file_value is not None and abs(shown - round(file_value / scale, decimals)) < (
            0.5 * 10.0**-decimals
        ):
            return None  # the file's own value, as displayed
        return shown * scale

    def _on_geometry_spin_value_changed(self, name: str) -> None:
        if self._updating:
            return
        value = self._geometry_override(name)
        before = getattr(self.model.settings, name)
        if not self.model.update(**{name: value}) or before == value:
            # unchanged settings emit nothing: show the value in use again
            self.show_settings(self.model.settings)

    def _on_energy_unit_combo_changed(self, unit: str) -> None:
        self._updating = True
        try:
            self._set_energy_unit(unit)
        finally:
            self._updating = False
        self.show_settings(self.model.settings)

    def _on_geometry_reset_button_clicked(self) -> None:
        self.model.update(**dict.fromkeys(GEOMETRY_FIELDS))

    # ------------------------------------------------------------------ slots

    def _show_algorithm_fields(self, algorithm: str) -> None:
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

    def _on_warmup_spin_value_changed(self, value: int) -> None:
        self._edit(mae_warmup_epochs=None if value == WARMUP_DEFAULT else value)

    def _on_probe_button_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a probe", self.last_folder, PROBE_FILTER
        )
        if path:
            self.set_probe_path(path)

    def _on_resample_button_clicked(self) -> None:
        if self._rejected is None:
            return
        path, _n, modes = self._rejected
        self._apply_probe(path, modes, resample=True)

    def _on_use_n_button_clicked(self) -> None:
        if self._rejected is None:
            return
        path, _n, modes = self._rejected
        side = int(modes.shape[-1])
        # N and the probe in one edit: one commit, and the probe fits as it is
        self._checked_probe = (path, side, False)
        if not self.model.update(N=side, probe_path=path, probe_resample=False):
            return
        self._apply_probe(path, modes, resample=False)

    def _on_model_edit_rejected(self, message: str) -> None:
        self.edit_message.setText(breakable(message))
        self.edit_message.setVisible(True)

    def _on_model_settings_changed(self, settings: RunSettings) -> None:
        self.edit_message.setVisible(False)
        self.show_settings(settings)
        checked = (settings.probe_path, settings.N, settings.probe_resample)
        if checked == self._checked_probe:
            return
        self._checked_probe = checked
        if settings.probe_path:
            # a new N: does the chosen probe still fit? (read in the worker)
            self.probe_requested.emit(settings.probe_path, settings.N)
        else:
            self._applied = None
            self._preview_settings_probe()


def _double_spin(low: float, high: float, decimals: int, step: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setDecimals(decimals)
    spin.setRange(low, high)
    spin.setSingleStep(step)
    return spin


def _geometry_spin(suffix: str = "") -> QDoubleSpinBox:
    """A geometry field: 0 shows "unknown"; a value counts once typed (Enter or focus out),
    so that a run does not start on a half-typed number."""
    spin = QDoubleSpinBox()
    spin.setRange(0.0, 1e4)
    spin.setSpecialValueText("unknown")
    spin.setSuffix(suffix)
    spin.setKeyboardTracking(False)
    return spin


def _message_label() -> QLabel:
    """A red message that wraps inside the dock (long file names break at their separators,
    and the label never asks the dock for more width)."""
    label = QLabel("")
    label.setWordWrap(True)
    label.setStyleSheet("color: #d04040;")
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.setVisible(False)
    return label


def _note_label() -> QLabel:
    label = QLabel("")
    label.setWordWrap(True)
    label.setStyleSheet("color: #808080;")
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label
