"""Geometry of a far-field measurement for the GUI: the object pixel and field of view that a
choice of N and crop or bin gives (physics.md section 6). No Qt.

For a detector of ``N0 x N0`` pixels of size ``dx`` at distance ``z``, photon energy ``E``
(wavelength ``lambda = 12.398419843320026e-7 / E`` m):

- the full detector samples the object with pixels of ``lambda z / (N0 dx)``;
- **crop** to ``N`` keeps the central ``N x N`` detector pixels: the object pixel is
  ``lambda z / (N dx)`` (it grows by ``N0 / N``), the field of view ``N`` pixels
  ``= lambda z / dx`` stays that of the full detector;
- **bin** by ``b = N0 / N`` sums ``b x b`` detector pixels into pixels of ``b dx``: the object
  pixel ``lambda z / (N b dx) = lambda z / (N0 dx)`` is the full detector's, the field of view
  ``N`` pixels shrinks by ``b``.

The field of view is that of one pattern: the ``N x N`` object patch that one diffraction
pattern sees. Without a complete geometry the file's own object pixel (when it gives one)
stands for the full detector's, as in :func:`ptycho_engine.io.prepare`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ptycho_engine.data import DiffractionData
from ptycho_engine.io.geometry import farfield_pixel_m, wavelength_m
from ptycho_engine.io.prepare import MODES

#: Names of the geometry values, as the "unknown (no ...)" note lists them.
GEOMETRY_WORDS = {"energy_ev": "energy", "distance_m": "distance", "detector_pixel_m": "pixel"}


@dataclass(frozen=True)
class Geometry:
    """Photon energy (eV), detector distance (m) and detector pixel (m); None when unknown."""

    energy_ev: float | None = None
    distance_m: float | None = None
    detector_pixel_m: float | None = None

    @property
    def missing(self) -> tuple[str, ...]:
        """The unknown values, as words (``("energy", "distance")``)."""
        return tuple(word for name, word in GEOMETRY_WORDS.items() if getattr(self, name) is None)

    @property
    def complete(self) -> bool:
        return not self.missing

    def overridden_by(self, overrides: Geometry) -> Geometry:
        """This geometry with the values that ``overrides`` sets replacing its own."""
        return Geometry(
            *(
                getattr(self, name)
                if getattr(overrides, name) is None
                else getattr(overrides, name)
                for name in GEOMETRY_WORDS
            )
        )

    @property
    def is_empty(self) -> bool:
        """True when no value is set."""
        return len(self.missing) == len(GEOMETRY_WORDS)


@dataclass(frozen=True)
class FileGeometry:
    """What a loaded file says about its sampling.

    Attributes
    ----------
    geometry : Geometry
    detector_n : int
        Pattern side ``N0`` in pixels.
    pixel_size_m : float or None
        The file's object pixel at ``N0`` (when it gives one).
    near_field : bool
        Near-field holograms: the far-field rules of crop and bin do not apply.
    """

    geometry: Geometry
    detector_n: int
    pixel_size_m: float | None = None
    near_field: bool = False

    @classmethod
    def of(cls, data: DiffractionData) -> FileGeometry:
        """The geometry facts of a data set as read."""
        propagation = data.provenance.get("propagation") or {}
        return cls(
            Geometry(data.energy_ev, data.distance_m, data.detector_pixel_m),
            data.N,
            data.pixel_size_m,
            propagation.get("regime") == "near-field",
        )


@dataclass(frozen=True)
class Sampling:
    """Object sampling of one choice of N and preparation.

    Attributes
    ----------
    N, detector_n : int
    mode : {"crop", "bin"}
    pixel_size_m, field_of_view_m : float or None
        Object pixel and field of view of one pattern (``N * pixel``); None when unknown or
        when the choice is not possible.
    note : str
        Why the values are missing ("unknown (no energy/distance/pixel)", "bin needs N to
        divide 100", ...), or where they come from when not from the geometry.
    """

    N: int
    detector_n: int
    mode: str
    pixel_size_m: float | None
    field_of_view_m: float | None
    note: str = ""

    def text(self) -> str:
        """``"Object pixel 24.8 nm, field of view 794 nm"`` (with the note, if any)."""
        if self.pixel_size_m is None or self.field_of_view_m is None:
            return f"Object pixel and field of view: {self.note}"
        out = (
            f"Object pixel {format_length(self.pixel_size_m)}, field of view "
            f"{format_length(self.field_of_view_m)}"
        )
        return f"{out} ({self.note})" if self.note else out


def format_length(value_m: float) -> str:
    """A length with 3 significant digits in nm, µm, mm or m (``"24.8 nm"``)."""
    size = abs(value_m)
    for scale, unit in ((1e-9, "nm"), (1e-6, "µm"), (1e-3, "mm")):
        if size < scale * 1e3:
            return f"{value_m / scale:.3g} {unit}"
    return f"{value_m:.3g} m"


def unknown_note(geometry: Geometry) -> str:
    """``"unknown (no energy/distance/pixel)"``, naming only the values missing."""
    return f"unknown (no {'/'.join(geometry.missing)})"


def full_detector_pixel(
    file: FileGeometry, overrides: Geometry | None = None
) -> tuple[float | None, str]:
    """Object pixel of the full ``N0 x N0`` detector and a note on where it comes from.

    The rule of :func:`ptycho_engine.io.prepare`: geometry overrides that complete the
    geometry give ``lambda z / (N0 dx)``; otherwise the file's own object pixel; otherwise the
    file's complete geometry. Near-field data keep the file's pixel (no far-field formula).
    """
    overrides = overrides or Geometry()
    geometry = file.geometry.overridden_by(overrides)
    if file.near_field:
        if file.pixel_size_m is None:
            return None, "unknown (near-field file without an object pixel size)"
        return file.pixel_size_m, "near-field holograms: the file's object pixel"
    if geometry.complete and (not overrides.is_empty or file.pixel_size_m is None):
        assert geometry.energy_ev and geometry.distance_m and geometry.detector_pixel_m
        pixel = farfield_pixel_m(
            geometry.energy_ev, geometry.distance_m, geometry.detector_pixel_m, file.detector_n
        )
        return pixel, ""
    if file.pixel_size_m is not None:
        return file.pixel_size_m, "" if geometry.complete else "from the file's object pixel"
    return None, unknown_note(geometry)


def object_sampling(
    file: FileGeometry, n: int, mode: str, overrides: Geometry | None = None
) -> Sampling:
    """Object pixel and field of view of one pattern for ``N = n`` and ``mode``.

    Parameters
    ----------
    file : FileGeometry
        The loaded file (geometry, detector side ``N0``, object pixel).
    n : int
        Pattern size of the run.
    mode : {"crop", "bin"}
    overrides : Geometry, optional
        Geometry that replaces the file's values that it sets.

    Returns
    -------
    Sampling
        crop: pixel ``lambda z / (n dx)`` (the full detector's times ``N0 / n``), field of
        view ``n * pixel``; bin by ``b = N0 / n``: pixel the full detector's, field of view
        ``n * pixel`` (the full detector's divided by ``b``).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    n0 = file.detector_n
    if n > n0:
        note = f"N={n} is larger than the {n0}x{n0} detector (padding is not done)"
        return Sampling(n, n0, mode, None, None, note)
    if mode == "bin" and n0 % n:
        note = f"binning needs N to divide the detector side {n0}: crop, or another N"
        return Sampling(n, n0, mode, None, None, note)
    full, note = full_detector_pixel(file, overrides)
    if full is None:
        return Sampling(n, n0, mode, None, None, note)
    if file.near_field:
        return Sampling(n, n0, mode, full, n * full, note)
    pixel = full * n0 / n if mode == "crop" else full
    return Sampling(n, n0, mode, pixel, n * pixel, note)


def choice_sentence(detector_n: int, n: int) -> str:
    """One sentence on what crop and bin do to the object pixel and the field of view."""
    if n >= detector_n:
        return (
            f"N is the detector's {detector_n} pixels: crop and bin keep every pixel, so the "
            "object pixel and the field of view are the file's."
        )
    ratio = detector_n / n
    crop = (
        f"Crop keeps the central {n}x{n} of the {detector_n}x{detector_n} detector pixels "
        f"(object pixel x{ratio:g}, same field of view)"
    )
    if detector_n % n:
        return f"{crop}; bin cannot reach N={n} (it needs N to divide {detector_n})."
    b = detector_n // n
    return f"{crop}; bin sums {b}x{b} pixels (same object pixel, field of view /{b})."


def energy_text(energy_ev: float | None) -> str:
    """``"8.8 keV (wavelength 0.141 nm)"`` or ``"unknown"``."""
    if energy_ev is None:
        return "unknown"
    value = f"{energy_ev / 1e3:.4g} keV" if energy_ev >= 1e3 else f"{energy_ev:.4g} eV"
    return f"{value} (wavelength {format_length(wavelength_m(energy_ev))})"


def is_close(a: float | None, b: float | None) -> bool:
    """Equal within 1e-9 relative (None equals None only)."""
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9)
