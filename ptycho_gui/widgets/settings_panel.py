"""The settings panel (algorithm, data and geometry, network or solver, advanced network
options): every edit goes to the :class:`SettingsModel`.

The basic settings are always shown; the network's advanced options (probe scale and its
automatic lowering, a trainable probe, the MAE warm-up, batch size, learning rate, stitching
window) sit in a collapsible section. A probe file that does not fit N is refused with the
choices that make it fit, as buttons.

The geometry section is :class:`~ptycho_gui.widgets.geometry_box.GeometryBox`, the network's
and the solvers' settings are :class:`~ptycho_gui.widgets.engine_options.EngineOptionsWidget`;
their widgets are attributes of the panel too (``panel.energy_spin``, ``panel.epochs_spin``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from ptycho_engine.config import SUPPORTED_N
from ptycho_engine.data import DiffractionData
from ptycho_gui.view_models.geometry import FileGeometry, Geometry
from ptycho_gui.view_models.panel_text import breakable
from ptycho_gui.view_models.run_settings import (
    GEOMETRY_FIELDS,
    NETWORK,
    PREP_MODES,
    RunSettings,
    algorithm_choices,
    valid_n_choices,
)
from ptycho_gui.view_models.settings_model import SettingsModel
from ptycho_gui.widgets.engine_options import EngineOptionsWidget
from ptycho_gui.widgets.geometry_box import GeometryBox
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

        # the geometry (physics.md section 6); the values go to the run as overrides
        self.geometry_box = GeometryBox()
        self.energy_spin = self.geometry_box.energy_spin
        self.energy_unit_combo = self.geometry_box.energy_unit_combo
        self.distance_spin = self.geometry_box.distance_spin
        self.detector_pixel_spin = self.geometry_box.detector_pixel_spin
        self.geometry_spins = self.geometry_box.geometry_spins
        self.geometry_reset_button = self.geometry_box.geometry_reset_button
        self.geometry_source_label = self.geometry_box.geometry_source_label
        self.sampling_label = self.geometry_box.sampling_label
        self.choice_label = self.geometry_box.choice_label

        # the network's and the solvers' settings, the panel's widgets too
        self.engine_options = options = EngineOptionsWidget()
        self.gridsize_spin = options.gridsize_spin
        self.filters_spin = options.filters_spin
        self.nll_spin = options.nll_spin
        self.mae_spin = options.mae_spin
        self.epochs_spin = options.epochs_spin
        self.batch_spin = options.batch_spin
        self.lr_spin = options.lr_spin
        self.probe_scale_spin = options.probe_scale_spin
        self.auto_probe_scale_check = options.auto_probe_scale_check
        self.probe_trainable_check = options.probe_trainable_check
        self.warmup_spin = options.warmup_spin
        self.early_stopping_check = options.early_stopping_check
        self.pretrained_check = options.pretrained_check
        self.stitch_combo = options.stitch_combo
        self.remove_grid_check = options.remove_grid_check
        self.iterations_spin = options.iterations_spin
        self.refine_probe_check = options.refine_probe_check
        self.probe_modes_spin = options.probe_modes_spin
        self.refine_positions_check = options.refine_positions_check
        self.noise_combo = options.noise_combo
        self.solver_batch_spin = options.solver_batch_spin
        self.network_box = options.network_box
        self.train_box = options.train_box
        self.advanced_button = options.advanced_button
        self.advanced_box = options.advanced_box
        self.solver_box = options.solver_box
        self.solver_form = options.solver_form

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

        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.edit_message)
        layout.addWidget(model_box)
        layout.addWidget(self.geometry_box)
        layout.addWidget(self.engine_options)
        layout.addLayout(buttons)
        layout.addWidget(self.rerun_check)
        layout.addStretch(1)

        self.show_settings(model.settings)
        self.algorithm_combo.currentIndexChanged.connect(self._on_algorithm_combo_changed)
        self.n_combo.currentIndexChanged.connect(self._on_n_combo_changed)
        self.prep_combo.currentTextChanged.connect(self._on_prep_combo_changed)
        self.engine_options.edited.connect(self._on_engine_options_edited)
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
            self.probe_edit.setText(settings.probe_path)
            self.engine_options.show_settings(settings)
            self.geometry_box.show_geometry(
                settings, self.file_geometry, self.run_geometry().missing
            )
        finally:
            self._updating = False
        self.engine_options.show_algorithm(settings.algorithm)
        self.geometry_box.show_sampling(settings, self.file_geometry)

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

    # ------------------------------------------------------------------ geometry

    def _on_geometry_spin_value_changed(self, name: str) -> None:
        if self._updating:
            return
        value = self.geometry_box.override(name, self.file_geometry)
        before = getattr(self.model.settings, name)
        if not self.model.update(**{name: value}) or before == value:
            # unchanged settings emit nothing: show the value in use again
            self.show_settings(self.model.settings)

    def _on_energy_unit_combo_changed(self, unit: str) -> None:
        self._updating = True
        try:
            self.geometry_box.set_energy_unit(unit)
        finally:
            self._updating = False
        self.show_settings(self.model.settings)

    def _on_geometry_reset_button_clicked(self) -> None:
        self.model.update(**dict.fromkeys(GEOMETRY_FIELDS))

    # ------------------------------------------------------------------ slots

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

    def _on_engine_options_edited(self, changes: dict[str, object]) -> None:
        self._edit(**changes)

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


def _message_label() -> QLabel:
    """A red message that wraps inside the dock (long file names break at their separators,
    and the label never asks the dock for more width)."""
    label = QLabel("")
    label.setWordWrap(True)
    label.setStyleSheet("color: #d04040;")
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.setVisible(False)
    return label
