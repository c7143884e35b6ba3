"""Simulated ptychographic data: phantoms, probes, scan patterns and noisy diffraction.

The forward model is the one of physics.md section 2, evaluated in numpy/scipy (this module
never imports TensorFlow, Keras or Qt). For each scan position the object patch
``patch[i, j] = obj(y - N//2 + i, x - N//2 + j)`` is sampled bilinearly, multiplied by the
probe, propagated to the far field with an orthonormal, centred FFT
(``A = |fftshift(fft2(probe * patch))| / N``), scaled to the requested dose and drawn from a
Poisson distribution. The result is ``sqrt(counts)``, like measured data.

Conventions (physics.md section 1): images are ``(y, x)``; ``positions_px`` are patch centres
in object pixels, columns ``(y, x)``; pixel ``(0, 0)`` is the first pixel of the object and a
patch centred at integer ``(y, x)`` covers ``obj[y - N//2 : y + N//2, x - N//2 : x + N//2]``.

Phantom mapping: a real map ``L`` in ``[0, 1]`` becomes the complex object
``(1 - 0.5 * L) * exp(1j * (pi / 2) * L)``: the background (``L = 0``) has amplitude 1 and
phase 0, features reach amplitude 0.5 and phase pi/2.

Reproducibility: every random choice comes from an explicit integer seed through
``numpy.random.default_rng``; the same arguments give bit-identical arrays.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.spatial

from ptycho_engine.data import DiffractionData
from ptycho_engine.errors import ConfigError, DataError

OBJECT_KINDS = ("lines", "siemens", "file:PATH")
PROBE_KINDS = ("disk", "gaussian")
SCAN_KINDS = ("spiral", "raster", "random")

#: Mean number of line segments per pixel of the "lines" phantom. With segments of 12-48 px
#: this marks about 20 % of the pixels with ``L > 0.1`` (measured: 19-21 % on 256x256).
LINE_DENSITY_PER_PX2 = 6.0e-3
#: Range of the segment lengths of the "lines" phantom, in pixels.
LINE_LENGTH_PX = (12.0, 48.0)
#: Gaussian smoothing of the phantoms, in pixels.
PHANTOM_SIGMA_PX = 0.8
#: Number of spokes of the Siemens star.
SIEMENS_SPOKES = 36
#: Phase curvature of the "disk" probe at its edge (radius N/4), in radians.
DISK_PROBE_ALPHA_RAD = 2.0
#: Width of the soft edge of the probes (tanh profile at radius N/4), in pixels.
PROBE_EDGE_PX = 1.0
#: Margin, in pixels, added on every side of the scan when sizing a simulated object.
OBJECT_MARGIN_PX = 8
#: Target number of pattern pixels processed at once by :func:`simulate` (bounds memory).
CHUNK_PIXELS = 1 << 22
#: Golden angle, radians, used by the Fermat spiral.
GOLDEN_ANGLE_RAD = math.pi * (3.0 - math.sqrt(5.0))

_IMAGE_SUFFIXES = (".npy", ".png", ".tif", ".tiff")


# --------------------------------------------------------------------------------------------
# Objects
# --------------------------------------------------------------------------------------------


def make_object(kind: str, shape: tuple[int, int], seed: int) -> np.ndarray:
    """Make a complex test object.

    Parameters
    ----------
    kind : str
        ``"lines"``: random anti-aliased line segments (about 1-2 px wide, 12-48 px long,
        ``LINE_DENSITY_PER_PX2`` segments per pixel, so about 45-50 % of the pixels carry a
        visible feature; at this density a constant object scores amplitude SSIM about 0.14
        and phase SSIM about 0.025, the chance levels physics.md section 10 quotes),
        smoothed with a Gaussian of ``PHANTOM_SIGMA_PX`` px.
        ``"siemens"``: a centred Siemens star of 36 spokes filling the smaller side of the
        canvas (minus 2 px), anti-aliased and smoothed like the lines.
        ``"file:PATH"``: a greyscale image read from ``.npy`` (real, or complex: then used as
        is), ``.png`` or ``.tif``/``.tiff`` (colour images are converted to grey), resized to
        ``shape`` with bilinear interpolation.
        Real maps are normalised to ``L`` in ``[0, 1]`` and mapped to
        ``(1 - 0.5 L) exp(i pi/2 L)`` (amplitude in ``[0.5, 1]``, phase in ``[0, pi/2]`` rad).
    shape : tuple of int
        ``(H, W)`` in pixels.
    seed : int
        Seed of the random choices (only ``"lines"`` uses it).

    Returns
    -------
    ndarray, (H, W) complex64
        The object transmission.

    Raises
    ------
    ConfigError
        Unknown ``kind``, a bad ``shape`` or an unsupported file suffix.
    DataError
        A file that is missing, unreadable, not 2-D or not finite.
    """
    h, w = _check_shape(shape)
    if kind == "lines":
        return _map_to_object(_lines_map((h, w), seed))
    if kind == "siemens":
        return _map_to_object(_siemens_map((h, w)))
    if isinstance(kind, str) and kind.startswith("file:"):
        return _object_from_file(kind[len("file:") :], (h, w))
    raise ConfigError(f"object kind {kind!r} is unknown; choose one of {', '.join(OBJECT_KINDS)}")


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in shape)
    except (TypeError, ValueError):
        raise ConfigError(f"object shape must be two integers (H, W), got {shape!r}") from None
    if h < 1 or w < 1 or (h, w) != tuple(shape):
        raise ConfigError(f"object shape must be two positive integers (H, W), got {shape!r}")
    return h, w


def _map_to_object(level: np.ndarray) -> np.ndarray:
    """Map a real map in [0, 1] to the complex object (amplitude 1 - L/2, phase pi/2 L)."""
    level = np.clip(level, 0.0, 1.0)
    obj = (1.0 - 0.5 * level) * np.exp(1j * (0.5 * np.pi) * level)
    return obj.astype(np.complex64)


def _normalise(level: np.ndarray) -> np.ndarray:
    """Scale a real map linearly to [0, 1]; a constant map becomes 0 (all background)."""
    lo = float(np.min(level))
    hi = float(np.max(level))
    if hi - lo <= 0.0:
        return np.zeros(level.shape, dtype=np.float64)
    return (level - lo) / (hi - lo)


def _lines_map(shape: tuple[int, int], seed: int) -> np.ndarray:
    from skimage.draw import line_aa

    h, w = shape
    rng = np.random.default_rng(seed)
    # Segment centres are drawn over the canvas grown by half the longest segment, so that
    # the line density is the same at the edges as in the middle.
    margin = 0.5 * LINE_LENGTH_PX[1]
    area = (h + 2.0 * margin) * (w + 2.0 * margin)
    n_lines = int(rng.poisson(LINE_DENSITY_PER_PX2 * area))
    centres = rng.uniform((-margin, -margin), (h + margin, w + margin), size=(n_lines, 2))
    angles = rng.uniform(0.0, np.pi, size=n_lines)
    lengths = rng.uniform(LINE_LENGTH_PX[0], LINE_LENGTH_PX[1], size=n_lines)
    half = 0.5 * lengths[:, None] * np.stack([np.sin(angles), np.cos(angles)], axis=1)
    starts = np.rint(centres - half).astype(np.int64)
    ends = np.rint(centres + half).astype(np.int64)

    canvas = np.zeros(shape, dtype=np.float64)
    for (y0, x0), (y1, x1) in zip(starts.tolist(), ends.tolist(), strict=True):
        rr, cc, val = line_aa(y0, x0, y1, x1)
        keep = (rr >= 0) & (rr < h) & (cc >= 0) & (cc < w)
        rr, cc, val = rr[keep], cc[keep], val[keep]
        canvas[rr, cc] = np.maximum(canvas[rr, cc], val)
    smooth = scipy.ndimage.gaussian_filter(canvas, PHANTOM_SIGMA_PX, mode="constant")
    peak = float(smooth.max())
    return smooth / peak if peak > 0.0 else smooth


def _siemens_map(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    y = np.arange(h, dtype=np.float64)[:, None] - (h - 1) / 2.0
    x = np.arange(w, dtype=np.float64)[None, :] - (w - 1) / 2.0
    r = np.hypot(y, x)
    theta = np.arctan2(y, x)
    # Signed distance (px) to the nearest spoke edge ~ r * sin(n theta) / n: a 1-px ramp
    # anti-aliases the edges, and near the centre the spokes blend to grey as they should.
    level = np.clip(0.5 + r * np.sin(SIEMENS_SPOKES * theta) / SIEMENS_SPOKES, 0.0, 1.0)
    radius = max(min(h, w) / 2.0 - 2.0, 0.0)
    level *= np.clip(radius - r + 0.5, 0.0, 1.0)
    smooth = scipy.ndimage.gaussian_filter(level, PHANTOM_SIGMA_PX, mode="constant")
    return np.clip(smooth, 0.0, 1.0)


def _object_from_file(path_text: str, shape: tuple[int, int]) -> np.ndarray:
    from skimage.transform import resize

    path = Path(path_text)
    suffix = path.suffix.lower()
    if suffix not in _IMAGE_SUFFIXES:
        raise ConfigError(
            f"object file {str(path)!r} has suffix {suffix!r}; supported: "
            f"{', '.join(_IMAGE_SUFFIXES)}"
        )
    if not path.is_file():
        raise DataError(f"object file {str(path)!r} does not exist or is not a file")
    image = _read_image(path, suffix)
    if image.ndim != 2 or image.size == 0:
        raise DataError(
            f"object file {str(path)!r}: expected a 2-D greyscale image, found shape {image.shape}"
        )
    if not np.all(np.isfinite(image)):
        raise DataError(f"object file {str(path)!r}: the image contains NaN or infinite values")

    def fit(part: np.ndarray) -> np.ndarray:
        if part.shape == shape:
            return part.astype(np.float64)
        downsampling = part.shape[0] > shape[0] or part.shape[1] > shape[1]
        return np.asarray(
            resize(
                part, shape, order=1, mode="edge", anti_aliasing=downsampling, preserve_range=True
            ),
            dtype=np.float64,
        )

    if np.iscomplexobj(image):
        return (fit(image.real) + 1j * fit(image.imag)).astype(np.complex64)
    return _map_to_object(_normalise(fit(image.astype(np.float64))))


def _read_image(path: Path, suffix: str) -> np.ndarray:
    try:
        if suffix == ".npy":
            image = np.load(path, allow_pickle=False)
        elif suffix == ".png":
            import skimage.io

            image = np.asarray(skimage.io.imread(path))
        else:
            import tifffile

            image = np.asarray(tifffile.imread(path))
    except (OSError, ValueError) as exc:
        raise DataError(f"object file {str(path)!r} could not be read: {exc}") from exc
    if not isinstance(image, np.ndarray) or not (
        np.issubdtype(image.dtype, np.number) or image.dtype == bool
    ):
        raise DataError(f"object file {str(path)!r}: expected a numeric image array")
    if image.ndim == 3 and image.shape[-1] in (3, 4) and not np.iscomplexobj(image):
        from skimage.color import rgb2gray, rgba2rgb

        rgb = image.astype(np.float64)
        if rgb.shape[-1] == 4:
            rgb = rgba2rgb(rgb / max(float(rgb.max()), 1e-300))
        image = rgb2gray(rgb)
    return image


# --------------------------------------------------------------------------------------------
# Probes
# --------------------------------------------------------------------------------------------


def make_probe(kind: str, N: int, seed: int = 0) -> np.ndarray:
    """Make a probe (illumination) of ``N x N`` pixels centred at ``(N//2, N//2)``.

    Parameters
    ----------
    kind : str
        ``"disk"``: a focused disk, amplitude ``0.5 * (1 - tanh((r - N/4) / 1 px))`` (a disk of
        radius N/4 with a 1-px soft edge, peak amplitude ~1) and a zone-plate-like quadratic
        phase ``2 * (r / (N/4))**2`` rad. ``"gaussian"``: amplitude ``exp(-r**2 / (2 s**2))``
        with ``s = N/10`` px, flat phase, truncated by the same soft disk (its tail beyond
        ``N/4 = 2.5 s`` would otherwise still be 4 % of the peak). Both fall below 1e-3 of
        their maximum beyond ``N/4 + 4`` px, so they fit the object support of ``N/2 x N/2``.
    N : int
        Probe size in pixels, 8 or more (32-256 in practice).
    seed : int, optional
        Unused by the built-in kinds (they are deterministic); kept for a uniform interface.

    Returns
    -------
    ndarray, (N, N) complex64
        The probe; its absolute scale is arbitrary (the dose fixes the intensity).

    Raises
    ------
    ConfigError
        Unknown ``kind`` or a bad ``N``.
    """
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 8:
        raise ConfigError(f"probe size N must be an integer >= 8, got {N!r}")
    n = int(N)
    y = np.arange(n, dtype=np.float64)[:, None] - n // 2
    x = np.arange(n, dtype=np.float64)[None, :] - n // 2
    r = np.hypot(y, x)
    radius = n / 4.0
    # Soft disk of radius N/4 with a 1-px tanh edge: 3.4e-4 at N/4 + 4 px, 1e-7 at N/4 + 8 px.
    soft_disk = 0.5 * (1.0 - np.tanh((r - radius) / PROBE_EDGE_PX))
    if kind == "disk":
        phase = DISK_PROBE_ALPHA_RAD * (r / radius) ** 2
        return (soft_disk * np.exp(1j * phase)).astype(np.complex64)
    if kind == "gaussian":
        sigma = n / 10.0
        # At r = N/4 = 2.5 sigma a Gaussian still has 4.4 % of its peak amplitude: the soft
        # disk truncates that tail so the probe fits the N/2 x N/2 object support.
        gauss = np.exp(-(r**2) / (2.0 * sigma**2)) * soft_disk
        return gauss.astype(np.complex64)
    raise ConfigError(f"probe kind {kind!r} is unknown; choose one of {', '.join(PROBE_KINDS)}")


# --------------------------------------------------------------------------------------------
# Scans
# --------------------------------------------------------------------------------------------


def make_scan(kind: str, n_positions: int, step_px: float, seed: int) -> np.ndarray:
    """Make scan positions, centred on their centroid.

    Parameters
    ----------
    kind : str
        ``"spiral"``: Fermat spiral ``r = c sqrt(n)``, ``theta = n * golden angle``, with ``c``
        computed so that the mean nearest-neighbour distance is exactly ``step_px``
        (deterministic: ``seed`` is unused). ``"raster"``: a grid of ``ceil(sqrt(M))`` columns
        and as many rows as needed, filled row by row and cut at ``M`` points, pitch
        ``step_px``, each coordinate jittered uniformly by +-0.1 ``step_px``.
        ``"random"``: uniform in a square of side ``sqrt(M) * step_px`` (one position per
        ``step_px**2``, the density of the raster; the mean nearest-neighbour distance of such
        a Poisson pattern is only about ``0.5 * step_px``).
    n_positions : int
        Number of positions ``M`` (>= 1).
    step_px : float
        Typical distance between neighbouring positions, in object pixels (> 0).
    seed : int
        Seed of the jitter / random positions.

    Returns
    -------
    ndarray, (M, 2) float64
        Positions ``(y, x)`` in pixels, centroid at ``(0, 0)``.

    Raises
    ------
    ConfigError
        Unknown ``kind``, ``n_positions < 1`` or a non-positive ``step_px``.
    """
    if kind not in SCAN_KINDS:
        raise ConfigError(f"scan kind {kind!r} is unknown; choose one of {', '.join(SCAN_KINDS)}")
    if isinstance(n_positions, bool) or not isinstance(n_positions, (int, np.integer)):
        raise ConfigError(f"n_positions must be an integer >= 1, got {n_positions!r}")
    if n_positions < 1:
        raise ConfigError(f"n_positions must be an integer >= 1, got {n_positions!r}")
    step = float(step_px)
    if not math.isfinite(step) or step <= 0.0:
        raise ConfigError(f"step_px must be a finite number > 0, got {step_px!r}")
    m = int(n_positions)
    rng = np.random.default_rng(seed)

    if kind == "spiral":
        n = np.arange(m, dtype=np.float64)
        r = np.sqrt(n)
        theta = n * GOLDEN_ANGLE_RAD
        points = np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1)
        nn = mean_nearest_neighbour_distance(points)
        points *= step / nn if nn > 0.0 else step
    elif kind == "raster":
        n_cols = math.ceil(math.sqrt(m))
        idx = np.arange(m)
        points = np.stack([idx // n_cols, idx % n_cols], axis=1).astype(np.float64) * step
        points += rng.uniform(-0.1 * step, 0.1 * step, size=(m, 2))
    else:
        side = math.sqrt(m) * step
        points = rng.uniform(0.0, side, size=(m, 2))
    points -= points.mean(axis=0)
    return np.ascontiguousarray(points, dtype=np.float64)


def object_frame(positions: np.ndarray, N: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The object a scan of ``N x N`` patches needs: the positions shifted into its pixel
    frame (patch centres) and its shape, the scan extent plus ``N`` plus
    ``2 * OBJECT_MARGIN_PX`` on each axis."""
    low = positions.min(axis=0)
    extent = positions.max(axis=0) - low
    shape = (
        math.ceil(extent[0]) + N + 2 * OBJECT_MARGIN_PX,
        math.ceil(extent[1]) + N + 2 * OBJECT_MARGIN_PX,
    )
    return positions - low + (N // 2 + OBJECT_MARGIN_PX), shape


def mean_nearest_neighbour_distance(points: np.ndarray) -> float:
    """Mean distance from each point to its nearest neighbour.

    Parameters
    ----------
    points : ndarray, (M, 2) float
        Positions in pixels.

    Returns
    -------
    float
        Mean nearest-neighbour distance in pixels; 0 for fewer than two points.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[0] < 2:
        return 0.0
    dist, _ = scipy.spatial.cKDTree(pts).query(pts, k=2)
    return float(np.mean(dist[:, 1]))


# --------------------------------------------------------------------------------------------
# Forward model and noise
# --------------------------------------------------------------------------------------------


def simulate(
    obj: np.ndarray,
    probe: np.ndarray,
    positions_px: np.ndarray,
    photons_per_pattern: float,
    seed: int,
) -> np.ndarray:
    """Simulate Poisson-noisy diffraction amplitudes.

    For each position the object patch is sampled bilinearly
    (``patch[i, j] = obj(y - N//2 + i, x - N//2 + j)``), the exit wave is ``probe * patch``,
    and the noise-free intensity is ``I = |fftshift(fft2(psi))|**2 / N**2`` (so
    ``sum(I) == sum(|psi|**2)``). All intensities are multiplied by one global factor so that
    the mean over patterns of ``sum(I)`` is exactly ``photons_per_pattern``; the counts are
    ``np.random.default_rng(seed).poisson(I)``. Work is done in chunks of about
    ``CHUNK_PIXELS`` pattern pixels; beyond the returned array, memory stays at a few chunks.

    Parameters
    ----------
    obj : ndarray, (H, W) complex
        Object transmission.
    probe : ndarray, (N, N) or (K, N, N) complex
        Probe, or ``K`` mutually incoherent probe modes (their intensities add).
    positions_px : ndarray, (M, 2) float
        Patch centres ``(y, x)`` in object pixels; each must satisfy
        ``N//2 <= y <= H - N + N//2`` (and likewise for ``x`` with ``W``).
    photons_per_pattern : float
        Mean total counts per pattern (> 0).
    seed : int
        Seed of the Poisson noise.

    Returns
    -------
    ndarray, (M, N, N) float32
        Amplitudes ``sqrt(counts)``, zero frequency at ``(N//2, N//2)``.

    Raises
    ------
    DataError
        Bad array shapes or values, or a patch reaching outside the object.
    ConfigError
        A non-positive or non-finite ``photons_per_pattern``, or a dose too high for the
        Poisson sampler.
    """
    try:
        photons = float(photons_per_pattern)
    except (TypeError, ValueError):
        photons = math.nan
    if not math.isfinite(photons) or photons <= 0.0:
        raise ConfigError(
            f"photons_per_pattern must be a finite number > 0, got {photons_per_pattern!r}"
        )
    modes = np.asarray(probe)
    modes = modes[np.newaxis] if modes.ndim == 2 else modes
    intensity = _noise_free_intensity(obj, modes[0], positions_px)
    for mode in modes[1:]:
        intensity += _noise_free_intensity(obj, mode, positions_px)
    m = intensity.shape[0]
    chunk = _chunk_size(intensity.shape[1])
    totals = np.empty(m, dtype=np.float64)
    peak = 0.0
    for start in range(0, m, chunk):
        block = intensity[start : start + chunk]
        totals[start : start + chunk] = block.sum(axis=(1, 2), dtype=np.float64)
        peak = max(peak, float(block.max()))
    mean_total = float(totals.mean())
    if not mean_total > 0.0:
        raise DataError("the exit waves carry no intensity: the probe or the object is zero")
    scale = photons / mean_total
    if peak * scale > 1e18:
        raise ConfigError(
            f"photons_per_pattern={photons:g} puts {peak * scale:.3g} counts in one pixel, "
            "beyond what the Poisson sampler handles (1e18); lower the dose"
        )
    rng = np.random.default_rng(seed)
    # The Poisson draws consume the stream in C order, so chunking does not change the result.
    for start in range(0, m, chunk):
        lam = intensity[start : start + chunk].astype(np.float64)
        lam *= scale
        intensity[start : start + chunk] = np.sqrt(rng.poisson(lam))
    return intensity


def _chunk_size(n: int) -> int:
    return max(1, CHUNK_PIXELS // (n * n))


def _noise_free_intensity(
    obj: np.ndarray, probe: np.ndarray, positions_px: np.ndarray
) -> np.ndarray:
    """Unscaled far-field intensities ``|fftshift(fft2(P * O))|**2 / N**2``, (M, N, N) float32."""
    probe_arr = np.asarray(probe)
    if (
        probe_arr.ndim != 2
        or probe_arr.shape[0] != probe_arr.shape[1]
        or probe_arr.shape[0] < 1
        or not np.issubdtype(probe_arr.dtype, np.number)
    ):
        raise DataError(f"probe must be a square 2-D numeric array, got shape {probe_arr.shape}")
    if not np.all(np.isfinite(probe_arr)):
        bad = int(np.count_nonzero(~np.isfinite(probe_arr)))
        raise DataError(f"probe: expected finite values, found {bad} NaN or infinite values")
    n = probe_arr.shape[0]
    probe64 = probe_arr.astype(np.complex64)
    out = np.empty((np.asarray(positions_px).shape[0], n, n), dtype=np.float32)
    for start, patch in _patch_chunks(obj, positions_px, n):
        patch *= probe64
        field = scipy.fft.fft2(patch, axes=(-2, -1), overwrite_x=True)
        power = np.square(field.real)
        power += np.square(field.imag)
        power *= np.float32(1.0 / (n * n))
        out[start : start + patch.shape[0]] = scipy.fft.fftshift(power, axes=(-2, -1))
    return out


def object_patches(obj: np.ndarray, positions_px: np.ndarray, N: int) -> np.ndarray:
    """The object's ``N x N`` patches at the scan positions, sampled as :func:`simulate`
    samples them (``patch[i, j] = obj(y - N//2 + i, x - N//2 + j)``, bilinear), (M, N, N)
    complex64: the truth the exit waves of a simulation were made from."""
    out = np.empty((np.asarray(positions_px).shape[0], N, N), dtype=np.complex64)
    for start, patch in _patch_chunks(obj, positions_px, N):
        out[start : start + patch.shape[0]] = patch
    return out


def _patch_chunks(
    obj: np.ndarray, positions_px: np.ndarray, n: int
) -> Iterator[tuple[int, np.ndarray]]:
    """``(first row, patches)`` of the bilinearly sampled ``n x n`` object patches, in chunks
    of about :data:`CHUNK_PIXELS` pixels, after checking the object and the positions."""
    obj_arr = np.asarray(obj)
    pos = np.asarray(positions_px)
    if obj_arr.ndim != 2 or obj_arr.size == 0 or not np.issubdtype(obj_arr.dtype, np.number):
        raise DataError(f"object must be a non-empty 2-D numeric array, got shape {obj_arr.shape}")
    if pos.ndim != 2 or pos.shape[1] != 2 or pos.shape[0] == 0:
        raise DataError(f"positions_px must have shape (M, 2) with M > 0, got {pos.shape}")
    if not np.issubdtype(pos.dtype, np.number) or np.iscomplexobj(pos):
        raise DataError(f"positions_px must be real numbers, got dtype {pos.dtype}")
    pos = pos.astype(np.float64)
    if not np.all(np.isfinite(pos)):
        raise DataError("positions_px contain NaN or infinite values")
    if not np.all(np.isfinite(obj_arr)):
        bad = int(np.count_nonzero(~np.isfinite(obj_arr)))
        raise DataError(f"object: expected finite values, found {bad} NaN or infinite values")

    half = n // 2
    h, w = obj_arr.shape
    whole = np.floor(pos).astype(np.int64)
    frac = (pos - whole).astype(np.float32)
    first = whole - half
    last = first + (n - 1) + (frac > 0)
    limits = np.array([h - 1, w - 1])
    outside = np.any((first < 0) | (last > limits), axis=1)
    if np.any(outside):
        i = int(np.argmax(outside))
        raise DataError(
            f"scan position {i} (y, x) = ({pos[i, 0]:g}, {pos[i, 1]:g}) puts the {n}x{n} patch "
            f"outside the {h}x{w} object; positions must satisfy {half} <= y <= {h - n + half} "
            f"and {half} <= x <= {w - n + half} ({int(outside.sum())} of {pos.shape[0]} "
            "positions are outside)"
        )

    # One extra zero row and column let every patch read an (N+1) x (N+1) window; the extra
    # row/column only ever gets a zero bilinear weight at the object's far edges.
    padded = np.zeros((h + 1, w + 1), dtype=np.complex64)
    padded[:h, :w] = obj_arr
    m = pos.shape[0]
    chunk = _chunk_size(n)
    window = np.empty((min(chunk, m), n + 1, n + 1), dtype=np.complex64)
    for start in range(0, m, chunk):
        stop = min(start + chunk, m)
        b = stop - start
        for k, (y0, x0) in enumerate(first[start:stop].tolist()):
            window[k] = padded[y0 : y0 + n + 1, x0 : x0 + n + 1]
        yield start, _bilinear(window[:b], frac[start:stop], n)


def _bilinear(window: np.ndarray, frac: np.ndarray, n: int) -> np.ndarray:
    """Bilinear sample of (B, N+1, N+1) windows at fractional offsets (B, 2) -> (B, N, N)."""
    fy = frac[:, 0, None, None]
    fx = frac[:, 1, None, None]
    if not np.any(frac[:, 0]):
        rows = window[:, :n, :].copy()
    else:
        rows = window[:, :n, :] * (1 - fy)
        rows += window[:, 1:, :] * fy
    if not np.any(frac[:, 1]):
        return np.ascontiguousarray(rows[:, :, :n])
    patch = rows[:, :, :n] * (1 - fx)
    patch += rows[:, :, 1:] * fx
    return patch


# --------------------------------------------------------------------------------------------
# Data sets
# --------------------------------------------------------------------------------------------


def simulate_dataset(
    N: int = 64,
    n_positions: int = 1000,
    photons: float = 1e6,
    object_kind: str = "lines",
    scan: str = "spiral",
    probe_kind: str = "disk",
    seed: int = 0,
    step_px: float | None = None,
) -> DiffractionData:
    """Simulate a complete data set with its ground truth.

    The scan is built first; the object is sized to the scan extent plus ``N`` plus
    ``2 * OBJECT_MARGIN_PX`` pixels on each axis, and the positions are shifted into its
    pixel frame (patch centres, ``(y, x)``). Object, scan, probe and noise use independent
    streams spawned from ``seed`` (``numpy.random.SeedSequence(seed).spawn(4)``).

    Parameters
    ----------
    N : int
        Pattern (and probe) size in pixels.
    n_positions : int
        Number of scan positions ``M``.
    photons : float
        Mean total counts per pattern.
    object_kind, scan, probe_kind : str
        Kinds for :func:`make_object`, :func:`make_scan` and :func:`make_probe`.
    seed : int
        Master seed (>= 0).
    step_px : float, optional
        Scan step in object pixels; default ``N / 8`` (the same overlap at every N).

    Returns
    -------
    DiffractionData
        ``amplitudes`` (M, N, N) float32, ``positions_px`` (M, 2) float64, ``probe`` (N, N)
        complex64, ``object_gt`` (H, W) complex64, and ``provenance`` =
        ``{"format": "simulation", "recipe": {...every argument, step_px resolved...}}``.
    """
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 8:
        raise ConfigError(f"N must be an integer >= 8, got {N!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be an integer >= 0, got {seed!r}")
    n = int(N)
    step = n / 8.0 if step_px is None else float(step_px)
    seq_scan, seq_object, seq_probe, seq_noise = np.random.SeedSequence(int(seed)).spawn(4)

    positions, shape = object_frame(make_scan(scan, n_positions, step, _int_seed(seq_scan)), n)
    obj = make_object(object_kind, shape, _int_seed(seq_object))
    probe = make_probe(probe_kind, n, _int_seed(seq_probe))
    amplitudes = simulate(obj, probe, positions, photons, _int_seed(seq_noise))
    recipe: dict[str, Any] = {
        "N": n,
        "n_positions": int(n_positions),
        "photons": float(photons),
        "object_kind": object_kind,
        "scan": scan,
        "probe_kind": probe_kind,
        "seed": int(seed),
        "step_px": step,
    }
    return DiffractionData(
        amplitudes,
        positions,
        probe=probe,
        object_gt=obj,
        provenance={"format": "simulation", "recipe": recipe},
    )


def _int_seed(seq: np.random.SeedSequence) -> int:
    return int(seq.generate_state(1, dtype=np.uint64)[0])
