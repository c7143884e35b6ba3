"""Geometry of a far-field (or near-field) measurement: photon energy and wavelength, the object
pixel size, far field or near field, and scan positions from metres to object pixels
(physics.md section 6).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.errors import DataError

#: ``h * c`` in eV * m: ``lambda_m = HC_EV_M / energy_ev`` (physics.md section 6).
HC_EV_M = 12.398419843320026e-7
#: One electronvolt in joules (exact, SI 2019).
ELECTRON_VOLT_J = 1.602176634e-19


def wavelength_m(energy_ev: float) -> float:
    """Photon wavelength in metres for an energy in eV (physics.md section 6)."""
    return HC_EV_M / energy_ev


def energy_ev_from_wavelength(wavelength: float) -> float:
    """Photon energy in eV for a wavelength in metres (the inverse of :func:`wavelength_m`)."""
    return HC_EV_M / wavelength


def farfield_pixel_m(energy_ev: float, distance_m: float, detector_pixel_m: float, n: int) -> float:
    """Object pixel size ``lambda * z / (N * detector_pixel)`` for the N x N region used."""
    return wavelength_m(energy_ev) * distance_m / (n * detector_pixel_m)


def nearest_step(points: np.ndarray) -> float:
    """Median distance from each scan point to its nearest neighbour (0 for one point)."""
    if points.shape[0] < 2:
        return 0.0
    import scipy.spatial

    distance, _ = scipy.spatial.cKDTree(points).query(points, k=2)
    return float(np.median(distance[:, 1]))


def propagation_record(regime: str, source: str, **details: Any) -> dict[str, Any]:
    """The ``provenance["propagation"]`` entry: regime, how it was decided, numbers used."""
    record: dict[str, Any] = {"regime": regime, "source": source}
    record.update(details)
    return record


def detect_propagation(positions_m: np.ndarray, n: int, farfield_pixel: float) -> tuple[str, str]:
    """Decide far-field or near-field from the scan overlap that a far-field reading implies.

    In far field the illuminated area is at most ``N`` object pixels wide (``N/2`` with the
    usual 2x oversampling), so neighbouring scan points must lie closer than ``N/2`` pixels
    for the patches to overlap. A scan whose median nearest-neighbour step, converted with the
    far-field pixel ``lambda z / (N dx)``, is ``N/2`` pixels or more cannot be a far-field
    ptychography scan; such files are taken as near-field (Fresnel) holograms.

    Returns
    -------
    regime : str
        ``"far-field"`` or ``"near-field"``.
    reason : str
        The numbers behind the decision.
    """
    step = nearest_step(positions_m[:, :2])
    step_px = step / farfield_pixel
    reason = (
        f"median scan step {step:.3g} m = {step_px:.1f} far-field pixels of "
        f"{farfield_pixel:.4g} m, limit N/2 = {n / 2:g}"
    )
    if step > 0 and step_px >= n / 2:
        return "near-field", reason
    return "far-field", reason


def positions_from_metres(
    positions_yx_m: np.ndarray,
    n: int,
    *,
    energy_ev: float,
    distance_m: float,
    detector_pixel_m: float,
    propagation: str | None,
    focus_distance_m: float | None,
    src: Path | str,
) -> tuple[np.ndarray, float, dict[str, Any], list[str]]:
    """Convert scan positions from metres to object pixels with the file's own geometry.

    Parameters
    ----------
    positions_yx_m : ndarray, (M, 2) float64
        Positions ``(y, x)`` in metres.
    n : int
        Detector size ``N`` actually read.
    energy_ev, distance_m, detector_pixel_m : float
        Geometry.
    propagation : {"far-field", "near-field", None}
        Declared regime; None detects it with :func:`detect_propagation`.
    focus_distance_m : float, optional
        Focus-to-sample distance of a near-field (cone-beam) set-up. The Fresnel scaling gives
        the magnification ``Mg = (f + z) / f``, the object pixel ``dx / Mg`` and the effective
        distance ``z / Mg``. Without it a near-field file is read as parallel-beam
        (``Mg = 1``, object pixel = detector pixel) and a warning says so.
    src : str
        File name for messages.

    Returns
    -------
    positions_px : ndarray, (M, 2) float64
        ``(y, x)`` patch centres. When a patch would start at a negative pixel, the scan is
        shifted (per axis) so that its lowest centre sits at ``N // 2``; otherwise positions are
        kept as stored, so files written here read back unchanged.
    pixel_size_m : float
        Object pixel size.
    record : dict
        ``provenance["propagation"]`` (regime, how it was decided, magnification, ...), plus the
        shift under ``"positions_offset_px"``.
    warnings : list of str
    """
    notes: list[str] = []
    pixel_ff = farfield_pixel_m(energy_ev, distance_m, detector_pixel_m, n)
    if propagation is None:
        regime, reason = detect_propagation(positions_yx_m, n, pixel_ff)
        source = f"detected: {reason}"
    elif propagation in ("far-field", "near-field"):
        regime, source = propagation, "declared"
    else:
        raise DataError(
            f"{src}: propagation must be 'far-field' or 'near-field', got {propagation!r}"
        )
    details: dict[str, Any] = {}
    if regime == "far-field":
        pixel = pixel_ff
    else:
        if focus_distance_m is not None:
            if not (math.isfinite(focus_distance_m) and focus_distance_m > 0):
                raise DataError(
                    f"{src}: focus_distance_m must be a positive number, got {focus_distance_m!r}"
                )
            magnification = (focus_distance_m + distance_m) / focus_distance_m
        else:
            magnification = 1.0
            notes.append(
                f"{src}: near-field data without a focus-to-sample distance: read as a "
                "parallel beam (magnification 1, object pixel = detector pixel); pass "
                "focus_distance_m for a cone-beam (Fresnel-scaled) geometry"
            )
        pixel = detector_pixel_m / magnification
        details = {
            "magnification": magnification,
            "focus_distance_m": focus_distance_m,
            "effective_distance_m": distance_m / magnification,
        }
    pos = positions_yx_m[:, :2] / pixel
    low = pos.min(axis=0)
    offset = np.where(low < n // 2 - 1e-6, n // 2 - low, 0.0)
    pos = pos + offset
    record = propagation_record(regime, source, **details)
    record["positions_offset_px"] = [float(offset[0]), float(offset[1])]
    return pos, pixel, record, notes
