"""The geometry section of the settings panel (:class:`GeometryBox`): the photon energy (in
keV or eV), the detector distance and the detector pixel, filled from the file and edited as
overrides for the run, with the object pixel and field of view they give at N.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QWidget,
)

from ptycho_gui.view_models.geometry import (
    FileGeometry,
    Geometry,
    choice_sentence,
    object_sampling,
)
from ptycho_gui.view_models.run_settings import GEOMETRY_FIELDS, RunSettings

__all__ = ["ENERGY_UNITS", "GEOMETRY_UNITS", "GeometryBox"]

#: Display units of the geometry fields: ``{field: (unit, metres or eV per unit, decimals)}``;
#: the energy's unit is chosen in the panel (:data:`ENERGY_UNITS`).
GEOMETRY_UNITS = {"distance_m": ("m", 1.0, 4), "detector_pixel_m": ("µm", 1e-6, 2)}
ENERGY_UNITS = {"keV": (1e3, 4), "eV": (1.0, 1)}


class GeometryBox(QGroupBox):
    """The "Geometry" group (physics.md section 6): energy, distance and detector pixel in
    display units, a note on where the values come from, the button that goes back to the
    file's values, and the object pixel and field of view at N.

    The box shows the settings and converts its fields to overrides (:meth:`override`); the
    settings panel (:class:`~ptycho_gui.widgets.settings_panel.SettingsPanelWidget`) owns the
    model and connects the fields, the unit and the reset button to its edits.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Geometry", parent)
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
        self.set_energy_unit("keV")
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

        gform = QFormLayout(self)
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

    def set_energy_unit(self, unit: str) -> None:
        """Show the energy in ``unit`` (one of :data:`ENERGY_UNITS`)."""
        scale, decimals = ENERGY_UNITS[unit]
        self.energy_spin.setDecimals(decimals)
        self.energy_spin.setRange(0.0, 1e6 / scale)
        self.energy_spin.setSuffix(f" {unit}")
        self.energy_spin.setSingleStep(0.1 if unit == "keV" else 100.0)

    def unit(self, name: str) -> tuple[float, int]:
        """Size of a display unit of the geometry field ``name`` (eV or m) and its decimals."""
        if name == "energy_ev":
            return ENERGY_UNITS[self.energy_unit_combo.currentText()]
        _unit, scale, decimals = GEOMETRY_UNITS[name]
        return scale, decimals

    def show_geometry(
        self,
        settings: RunSettings,
        file_geometry: FileGeometry | None,
        missing: tuple[str, ...],
    ) -> None:
        """Show the geometry of ``settings``: its overrides in bold, the file's values where it
        has none, and where they come from (``missing``: the values the run does not know)."""
        edited = []
        for name, spin in self.geometry_spins.items():
            override = getattr(settings, name)
            value = _file_value(file_geometry, name) if override is None else float(override)
            scale, decimals = self.unit(name)
            if name != "energy_ev":
                spin.setDecimals(decimals)
            spin.setValue(0.0 if value is None else value / scale)
            font = spin.font()
            font.setBold(override is not None)
            spin.setFont(font)
            if override is not None:
                edited.append(name.rsplit("_", 1)[0].replace("_", " "))
        if edited:
            text = f"Edited (bold): {', '.join(edited)}; the run records them as overrides."
        elif file_geometry is None:
            text = "Open a file to see its geometry."
        elif missing:
            text = f"Not in the file: {', '.join(missing)}. Enter them to size the object pixel."
        else:
            text = "From the file."
        self.geometry_source_label.setText(text)
        self.geometry_reset_button.setEnabled(bool(edited))

    def show_sampling(self, settings: RunSettings, file_geometry: FileGeometry | None) -> None:
        """Show the object pixel and field of view that ``settings`` give for the file."""
        file = file_geometry
        if file is None:
            self.sampling_label.setText("Object pixel and field of view: open a file.")
            self.choice_label.setText("")
            return
        overrides = Geometry(*(getattr(settings, k) for k in GEOMETRY_FIELDS))
        sampling = object_sampling(file, settings.N, settings.prep_mode, overrides)
        self.sampling_label.setText(f"{sampling.text()}, at N={settings.N} ({settings.prep_mode}).")
        self.choice_label.setText(choice_sentence(file.detector_n, settings.N))

    def override(self, name: str, file_geometry: FileGeometry | None) -> float | None:
        """The override that the spin box of ``name`` holds (None: the file's value)."""
        spin = self.geometry_spins[name]
        scale, decimals = self.unit(name)
        shown = spin.value()
        if shown <= 0:
            return None  # "unknown": back to the file's value
        file_value = _file_value(file_geometry, name)
        if file_value is not None and abs(shown - round(file_value / scale, decimals)) < (
            0.5 * 10.0**-decimals
        ):
            return None  # the file's own value, as displayed
        return shown * scale


def _file_value(file_geometry: FileGeometry | None, name: str) -> float | None:
    if file_geometry is None:
        return None
    value = getattr(file_geometry.geometry, name)
    return None if value is None else float(value)


def _geometry_spin(suffix: str = "") -> QDoubleSpinBox:
    """A geometry field: 0 shows "unknown"; a value counts once typed (Enter or focus out),
    so that a run does not start on a half-typed number."""
    spin = QDoubleSpinBox()
    spin.setRange(0.0, 1e4)
    spin.setSpecialValueText("unknown")
    spin.setSuffix(suffix)
    spin.setKeyboardTracking(False)
    return spin


def _note_label() -> QLabel:
    label = QLabel("")
    label.setWordWrap(True)
    label.setStyleSheet("color: #808080;")
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    return label
