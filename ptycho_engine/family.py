"""A broad family of simulated scans: what pretrained networks learn from, and held-out data.

Every axis of a scan is drawn at random from a seed: the object (lines, Siemens stars, smooth
and sharp random textures, blobs; phase-dominant, absorption-dominant or mixed), the probe
(focused disks of varied size and curvature, Gaussians, zone-plate-like probes with side lobes;
1 to 3 incoherent modes), the dose (1e3 to 1e9 photons per pattern, log-uniform), and the scan
(spiral, raster or random, of varied density).

Two kinds are never drawn by :func:`draw_member` with ``held_out=False``: the object family
``"cells"`` (a Voronoi tessellation with walls, the look of biological tissue or of grains)
and the probe ``"kb"`` (the square, separable focus of a pair of Kirkpatrick-Baez mirrors,
with sinc side lobes along its axes). ``held_out=True`` draws them: data that a network
pretrained on the family has never seen.

Conventions are physics.md's: objects ``(H, W)`` complex64, amplitudes at most 1; probes
``(K, N, N)`` complex64 centred at ``(N//2, N//2)``, strongest mode first, fitting the object
support of ``N/2 x N/2`` (below 1e-3 of their peak beyond a radius of ``N/4 + 4`` px, where
the soft disk of :func:`ptycho_engine.simulate.make_probe` cuts them); intensities of the modes
add. This module imports numpy and scipy only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.spatial

from ptycho_engine.data import DiffractionData
from ptycho_engine.errors import ConfigError
from ptycho_engine.simulate import (
    PHANTOM_SIGMA_PX,
    _lines_map,
    _siemens_map,
    make_scan,
    object_frame,
    simulate,
)

#: Object families of the pretraining draws.
TRAIN_OBJECTS = ("lines", "siemens", "smooth", "sharp", "blobs")
#: Probe kinds of the pretraining draws.
TRAIN_PROBES = ("disk", "gaussian", "zoneplate")
#: Kinds that pretraining never draws (held-out data).
HELD_OUT_OBJECTS = ("cells",)
HELD_OUT_PROBES = ("kb",)
#: How an object's map becomes amplitude and phase.
CONTRASTS = ("mixed", "phase", "absorption")
SCANS = ("spiral", "raster", "random")
DOSE_RANGE = (1e3, 1e9)
#: Incoherent probe modes a member draws (one of these, equally likely: one mode half the time).
PROBE_MODE_CHOICES = (1, 1, 2, 3)
#: The most probe modes a member has.
MAX_PROBE_MODES = max(PROBE_MODE_CHOICES)


@dataclass(frozen=True)
class Member:
    """The recipe of one simulated scan of the family (JSON primitives)."""

    N: int
    n_positions: int
    photons: float
    object_kind: str
    contrast: str
    probe_kind: str
    probe_modes: int
    probe_size: float
    probe_curvature_rad: float
    scan: str
    step_px: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def draw_member(
    rng: np.random.Generator,
    N: int = 64,
    n_positions: int = 500,
    held_out: bool = False,
    photons: float | None = None,
) -> Member:
    """Draw one member's recipe: every axis at random (held-out kinds only when asked)."""
    objects = HELD_OUT_OBJECTS if held_out else TRAIN_OBJECTS
    probes = HELD_OUT_PROBES if held_out else TRAIN_PROBES
    dose = photons
    if dose is None:
        dose = float(10 ** rng.uniform(math.log10(DOSE_RANGE[0]), math.log10(DOSE_RANGE[1])))
    return Member(
        N=N,
        n_positions=n_positions,
        photons=dose,
        object_kind=str(rng.choice(objects)),
        contrast=str(rng.choice(CONTRASTS)),
        probe_kind=str(rng.choice(probes)),
        probe_modes=int(rng.choice(PROBE_MODE_CHOICES)),
        probe_size=float(rng.uniform(0.6, 1.0)),
        probe_curvature_rad=float(rng.uniform(-4.0, 4.0)),
        scan=str(rng.choice(SCANS)),
        step_px=float(N / 8 * rng.uniform(0.75, 1.5)),
        seed=int(rng.integers(0, 2**31 - 1)),
    )


# --------------------------------------------------------------------------------------------
# Objects
# --------------------------------------------------------------------------------------------


def _smooth_map(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    sigma = rng.uniform(2.0, 8.0)
    field = scipy.ndimage.gaussian_filter(rng.normal(size=shape), sigma, mode="wrap")
    return field


def _sharp_map(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    field = _smooth_map(shape, rng)
    levels = rng.integers(2, 5)
    edges = np.quantile(field, np.linspace(0, 1, levels + 1)[1:-1])
    step = np.digitize(field, edges).astype(np.float64)
    return scipy.ndimage.gaussian_filter(step, PHANTOM_SIGMA_PX)


def _blobs_map(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    canvas = np.zeros(shape)
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(int(rng.poisson(h * w / 600.0)) + 1):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(2.0, 12.0, size=2)
        angle = rng.uniform(0, np.pi)
        dy, dx = yy - cy, xx - cx
        u = dy * math.cos(angle) + dx * math.sin(angle)
        v = -dy * math.sin(angle) + dx * math.cos(angle)
        inside = (u / ry) ** 2 + (v / rx) ** 2 <= 1.0
        canvas[inside] = np.maximum(canvas[inside], rng.uniform(0.3, 1.0))
    return scipy.ndimage.gaussian_filter(canvas, PHANTOM_SIGMA_PX)


def _cells_map(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    h, w = shape
    n_cells = max(4, int(h * w / rng.uniform(150.0, 500.0)))
    seeds = rng.uniform((0, 0), (h, w), size=(n_cells, 2))
    yy, xx = np.mgrid[0:h, 0:w]
    points = np.stack([yy.ravel(), xx.ravel()], axis=1).astype(np.float64)
    dist, index = scipy.spatial.cKDTree(seeds).query(points, k=2)
    wall = (dist[:, 1] - dist[:, 0]).reshape(shape) < rng.uniform(1.0, 2.5)
    interior = rng.uniform(0.0, 0.6, size=n_cells)[index[:, 0]].reshape(shape)
    level = np.where(wall, 1.0, interior)
    return scipy.ndimage.gaussian_filter(level, PHANTOM_SIGMA_PX)


def _normalised(level: np.ndarray) -> np.ndarray:
    lo, hi = float(level.min()), float(level.max())
    return (level - lo) / (hi - lo) if hi > lo else np.zeros_like(level)


def family_object(
    kind: str, contrast: str, shape: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """A complex object of one family and contrast, amplitude in ``(0, 1]``.

    ``"mixed"``: amplitude ``1 - a L`` and phase ``p L`` with ``a`` in [0.2, 0.6] and ``p`` in
    [0.5, 2] rad; ``"phase"``: ``a`` in [0, 0.1], ``p`` in [0.5, 2.5] rad;
    ``"absorption"``: ``a`` in [0.3, 0.8], ``p`` in [0, 0.2] rad. For every contrast the
    amplitude and the phase come from two different maps of the family half the time (an
    object whose phase does not follow its absorption).
    """
    makers = {
        "lines": lambda: _lines_map(shape, int(rng.integers(2**31))),
        "siemens": lambda: _siemens_map(shape),
        "smooth": lambda: _smooth_map(shape, rng),
        "sharp": lambda: _sharp_map(shape, rng),
        "blobs": lambda: _blobs_map(shape, rng),
        "cells": lambda: _cells_map(shape, rng),
    }
    if kind not in makers:
        raise ConfigError(f"object family {kind!r} is unknown; choose one of {sorted(makers)}")
    if contrast not in CONTRASTS:
        raise ConfigError(f"contrast {contrast!r} is unknown; choose one of {CONTRASTS}")
    a_range, p_range = {
        "mixed": ((0.2, 0.6), (0.5, 2.0)),
        "phase": ((0.0, 0.1), (0.5, 2.5)),
        "absorption": ((0.3, 0.8), (0.0, 0.2)),
    }[contrast]
    amp_map = _normalised(makers[kind]())
    phase_map = amp_map if kind == "siemens" or rng.random() < 0.5 else _normalised(makers[kind]())
    a, p = rng.uniform(*a_range), rng.uniform(*p_range)
    return ((1.0 - a * amp_map) * np.exp(1j * p * phase_map)).astype(np.complex64)


# --------------------------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------------------------


def _soft_disk(n: int, radius: float) -> np.ndarray:
    y = np.arange(n, dtype=np.float64)[:, None] - n // 2
    x = np.arange(n, dtype=np.float64)[None, :] - n // 2
    return 0.5 * (1.0 - np.tanh((np.hypot(y, x) - radius) / 1.0))


def _focus(n: int, pupil: np.ndarray, defocus_rad: float) -> np.ndarray:
    """The focus of a pupil (frequency domain) with a quadratic defocus across it."""
    f = scipy.fft.fftshift(scipy.fft.fftfreq(n)) * 2.0  # -1 .. 1 over the frequency window
    fy, fx = np.meshgrid(f, f, indexing="ij")
    field = pupil * np.exp(1j * defocus_rad * (fy**2 + fx**2) / 0.25)
    return scipy.fft.fftshift(scipy.fft.ifft2(scipy.fft.ifftshift(field)))


def family_probe(
    kind: str, N: int, size: float, curvature_rad: float, modes: int, rng: np.random.Generator
) -> np.ndarray:
    """Probe modes ``(K, N, N)`` complex64, strongest first (module docstring).

    ``size`` in [0.6, 1] scales the probe's width (1: a disk of radius ``N/4``); the curvature
    is the quadratic phase at the edge (disk, Gaussian) or the defocus (zone plate, KB).
    Modes after the first are the first mode multiplied by low-order Hermite-like patterns,
    made orthogonal to those before, with powers 30 % and 10 % of the first.
    """
    n = int(N)
    y = np.arange(n, dtype=np.float64)[:, None] - n // 2
    x = np.arange(n, dtype=np.float64)[None, :] - n // 2
    r = np.hypot(y, x)
    radius = n / 4.0 * size
    cut = _soft_disk(n, n / 4.0)
    if kind == "disk":
        first = _soft_disk(n, radius) * np.exp(1j * curvature_rad * (r / radius) ** 2)
    elif kind == "gaussian":
        sigma = radius / 2.5
        first = np.exp(-(r**2) / (2 * sigma**2)) * np.exp(1j * curvature_rad * (r / radius) ** 2)
    elif kind == "zoneplate":
        # an annular pupil (central stop) focused: an Airy-like core with rings
        f = scipy.fft.fftshift(scipy.fft.fftfreq(n)) * 2.0
        fr = np.hypot(*np.meshgrid(f, f, indexing="ij"))
        outer = 0.35 / size
        pupil = ((fr < outer) & (fr > outer * rng.uniform(0.2, 0.5))).astype(np.float64)
        first = _focus(n, pupil, curvature_rad)
    elif kind == "kb":
        f = scipy.fft.fftshift(scipy.fft.fftfreq(n)) * 2.0
        fy, fx = np.meshgrid(f, f, indexing="ij")
        half = 0.3 / size
        pupil = ((np.abs(fy) < half) & (np.abs(fx) < half * rng.uniform(0.7, 1.0))).astype(float)
        first = _focus(n, pupil, curvature_rad)
    else:
        known = TRAIN_PROBES + HELD_OUT_PROBES
        raise ConfigError(f"probe kind {kind!r} is unknown; choose one of {known}")
    first = first * cut
    first /= np.abs(first).max()
    stack = [first]
    patterns = [y / radius, x / radius, (y * x) / radius**2]
    powers = [0.3, 0.1]
    for k in range(1, int(modes)):
        mode = first * patterns[(k - 1) % len(patterns)]
        for previous in stack:
            overlap = np.vdot(previous, mode) / np.vdot(previous, previous)
            mode = mode - overlap * previous
        norm = math.sqrt(np.sum(np.abs(mode) ** 2) / np.sum(np.abs(first) ** 2))
        stack.append(mode / norm * math.sqrt(powers[k - 1]) if norm > 0 else mode)
    return np.stack(stack).astype(np.complex64)


# --------------------------------------------------------------------------------------------
# Scans
# --------------------------------------------------------------------------------------------


def simulate_member(member: Member) -> DiffractionData:
    """Simulate one member: Poisson counts of the modes' summed intensities, with its truth."""
    rng = np.random.default_rng(member.seed)
    n = member.N
    scan = make_scan(member.scan, member.n_positions, member.step_px, int(rng.integers(2**31)))
    positions, shape = object_frame(scan, n)
    obj = family_object(member.object_kind, member.contrast, shape, rng)
    modes = family_probe(
        member.probe_kind,
        n,
        member.probe_size,
        member.probe_curvature_rad,
        member.probe_modes,
        rng,
    )
    amplitudes = simulate(obj, modes, positions, member.photons, int(rng.integers(2**31)))
    return DiffractionData(
        amplitudes,
        positions,
        probe=modes[0],
        probe_modes=modes if modes.shape[0] > 1 else None,
        object_gt=obj,
        provenance={"format": "simulation", "family": member.to_dict()},
    )
