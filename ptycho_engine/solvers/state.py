"""What an iterative solver holds between iterations, how it starts, and what it shows.

The state is the object canvas, the probe modes (physical scale), the scan positions (refined
when asked) and the measurements in the propagator's layout. A finished run's state is its
warm start: a later run on the same data continues from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ptycho_engine.data import DiffractionData, StitchSnapshot
from ptycho_engine.errors import DataError
from ptycho_engine.solvers.config import SolverConfig
from ptycho_engine.solvers.forward import (
    FarField,
    NearField,
    Propagator,
    Scan,
    add_back,
    extract,
)

#: Canvas pixels whose illumination (summed probe intensity over the scan) is at least this
#: fraction of the well-covered level (its 95th percentile) are the valid, scanned region.
VALID_COVERAGE_FRACTION = 0.25
#: Power of each extra probe mode at the start, relative to the first.
EXTRA_MODE_POWER = 0.05
#: Patterns stitched at once when the coverage is computed.
_CHUNK = 256


def propagator_for(data: DiffractionData) -> Propagator:
    """The data's propagator: far field, or near field from the Fresnel-scaled geometry that
    the reader recorded (``provenance["propagation"]``).

    Raises
    ------
    DataError
        Near-field data without the energy or the distance needed by the propagator.
    """
    regime = data.provenance.get("propagation", {}).get("regime", "far-field")
    if regime != "near-field":
        return FarField(data.N)
    src = data.provenance.get("path", "the data")
    record = data.provenance.get("propagation", {})
    if data.energy_ev is None or data.pixel_size_m is None:
        raise DataError(
            f"{src}: near-field data need the energy and the object pixel size for the "
            "Fresnel propagator (give --energy-ev and the geometry)"
        )
    distance = record.get("effective_distance_m") or data.distance_m
    if distance is None:
        raise DataError(f"{src}: near-field data need the detector distance (--distance-m)")
    wavelength = 12.398419843320026e-7 / data.energy_ev
    return NearField(data.N, wavelength, float(distance), float(data.pixel_size_m))


def physical_probe(probe: np.ndarray, data: DiffractionData) -> np.ndarray:
    """``probe`` ``(K, N, N)`` scaled so that ``sum |P|**2`` over all modes is the mean total
    count per pattern (the mode ratios kept)."""
    modes = np.asarray(probe, np.complex64).reshape(-1, data.N, data.N)
    power = float(np.sum(np.abs(modes.astype(np.complex128)) ** 2))
    if not power > 0:
        raise DataError("the probe is zero everywhere: give another probe")
    return (modes * np.float32(math.sqrt(data.photons_per_pattern / power))).astype(np.complex64)


def default_probe(data: DiffractionData, propagator: Propagator) -> np.ndarray:
    """A probe guess from the data alone: the mean measured amplitude propagated back (flat
    phase), ``(1, N, N)`` at physical scale."""
    mean_amplitude = np.sqrt(np.mean(data.amplitudes.astype(np.float64) ** 2, axis=0))
    wave = propagator.measured(mean_amplitude).astype(np.complex64)
    guess = propagator.backward(wave[np.newaxis])[0]
    return physical_probe(guess[np.newaxis], data)


def with_modes(probe: np.ndarray, count: int | None, seed: int) -> np.ndarray:
    """``probe`` with ``count`` modes: extra modes start as weak, smooth perturbations of the
    first (:data:`EXTRA_MODE_POWER` of its power each, total power kept)."""
    if count is None or count == probe.shape[0]:
        return probe
    if count < probe.shape[0]:
        kept = probe[:count]
        scale = math.sqrt(float(np.sum(np.abs(probe) ** 2)) / float(np.sum(np.abs(kept) ** 2)))
        return (kept * np.float32(scale)).astype(np.complex64)
    rng = np.random.default_rng(seed)
    n = probe.shape[-1]
    first = probe[0]
    total = float(np.sum(np.abs(probe) ** 2))
    extra = []
    yy, xx = np.mgrid[0:n, 0:n] / n
    for k in range(count - probe.shape[0]):
        ky, kx = rng.integers(1, 3, size=2)
        pattern = np.exp(2j * np.pi * (ky * yy + kx * xx + rng.random()))
        mode = first * pattern
        mode *= math.sqrt(EXTRA_MODE_POWER * float(np.sum(np.abs(first) ** 2))) / math.sqrt(
            float(np.sum(np.abs(mode) ** 2))
        )
        extra.append(mode.astype(np.complex64))
        del k
    modes = np.concatenate([probe, np.stack(extra)], axis=0)
    modes *= np.float32(math.sqrt(total / float(np.sum(np.abs(modes) ** 2))))
    return orthogonal_modes(modes)


def orthogonal_modes(modes: np.ndarray) -> np.ndarray:
    """Incoherent modes made orthogonal, strongest first, the same total intensity
    (the singular vectors of the modes stacked as rows)."""
    if modes.shape[0] == 1:
        return modes
    k, n = modes.shape[0], modes.shape[-1]
    flat = modes.reshape(k, n * n).astype(np.complex128)
    u, s, vh = np.linalg.svd(flat, full_matrices=False)
    del u
    return (s[:, None] * vh).reshape(k, n, n).astype(np.complex64)


def data_fingerprint(data: DiffractionData) -> tuple[object, ...]:
    """What tells one data set from another: the file's sha256 (when read from a file), the
    shape and the exact total of the squared amplitudes."""
    total = float(np.sum(np.square(data.amplitudes, dtype=np.float64)))
    return (data.provenance.get("sha256"), data.amplitudes.shape, total)


@dataclass(eq=False)
class SolverState:
    """The estimate of an iterative solver.

    Attributes
    ----------
    obj : ndarray, (H, W) complex64
        The object canvas (frame: :attr:`scan`).
    probe : ndarray, (K, N, N) complex64
        Probe modes at physical scale, strongest first.
    positions_px : ndarray, (M, 2) float64
        Scan positions in the data's frame (refined when asked).
    scan : Scan
    propagator : FarField or NearField
    measured : ndarray, (M, N, N) float32
        Measured amplitudes in the propagator's layout.
    good : ndarray, (N, N) bool or None
        Detector pixels that count (None: all).
    iterations_done : int
    """

    obj: np.ndarray
    probe: np.ndarray
    positions_px: np.ndarray
    scan: Scan
    propagator: Propagator
    measured: np.ndarray
    good: np.ndarray | None
    iterations_done: int = 0
    start_positions_px: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    fingerprint: tuple[object, ...] = ()

    @classmethod
    def start(
        cls, data: DiffractionData, probe: np.ndarray | None, config: SolverConfig
    ) -> SolverState:
        """The first estimate: a flat object (1), the given probe (or a guess from the data)
        at physical scale with the configured number of modes."""
        propagator = propagator_for(data)
        start = default_probe(data, propagator) if probe is None else physical_probe(probe, data)
        modes = with_modes(start, config.probe_modes, config.seed)
        positions = np.array(data.positions_px, np.float64, copy=True)
        scan = Scan.around(positions, data.N, margin=4)
        good = None if data.bad_pixels is None else propagator.mask(~data.bad_pixels)
        return cls(
            obj=np.ones(scan.shape, np.complex64),
            probe=modes,
            positions_px=positions,
            scan=scan,
            propagator=propagator,
            measured=propagator.measured(data.amplitudes).astype(np.float32),
            good=good,
            start_positions_px=positions.copy(),
            fingerprint=data_fingerprint(data),
        )

    def fits(self, data: DiffractionData, config: SolverConfig) -> bool:
        """True when this state can continue on ``data`` with ``config``: the very same
        patterns (by their fingerprint) and scan, and the probe modes asked for."""
        modes = config.probe_modes
        return (
            self.fingerprint == data_fingerprint(data)
            and np.array_equal(self.start_positions_px, data.positions_px)
            and (modes is None or modes == self.probe.shape[0])
        )

    def coverage(self) -> np.ndarray:
        """Summed probe intensity over the scan on the canvas, ``(H, W)`` float32."""
        intensity = np.sum(np.abs(self.probe) ** 2, axis=0).astype(np.float32)
        canvas = np.zeros(self.scan.shape, np.float32)
        corners, fractions = self.scan.corners(self.positions_px)
        for start in range(0, corners.shape[0], _CHUNK):
            stop = start + _CHUNK
            values = np.broadcast_to(intensity, (corners[start:stop].shape[0], *intensity.shape))
            add_back(canvas, values, corners[start:stop], fractions[start:stop])
        return canvas

    def image(self) -> StitchSnapshot:
        """The object as a stitched image: valid where the scan illuminated it well."""
        cover = self.coverage()
        level = float(np.percentile(cover[cover > 0], 95)) if np.any(cover > 0) else 0.0
        valid = cover >= VALID_COVERAGE_FRACTION * level if level > 0 else cover > 0
        obj = np.where(valid, self.obj, 0).astype(np.complex64)
        m = self.positions_px.shape[0]
        return StitchSnapshot(obj, valid, m, m, self.scan.origin_px)

    def patches(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(corners, fractions, object patches (b, N, N))`` of the patterns ``rows``."""
        corners, fractions = self.scan.corners(self.positions_px[rows])
        return corners, fractions, extract(self.obj, corners, fractions, self.scan.n)
