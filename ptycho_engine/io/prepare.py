"""Preparation of a read data set for a chosen pattern size N (physics.md sections 1, 3 and 6).

Every step taken is appended, in words, to ``provenance["steps"]``.

Order of the steps in :func:`prepare`:

1. Refuse near-field data (``provenance["propagation"]["regime"] == "near-field"``) unless
   ``allow_near_field=True``: the engine's forward model is far-field only.
2. Intensities to amplitudes (only when the arrays handed in hold counts).
3. Bad pixels: the file's mask, plus pixels that are NaN/infinite in any pattern (the
   NaN/infinity policy of :mod:`ptycho_engine.io.validation`, as in every reader: a pattern
   without a finite value, or a detector without a pixel finite in every pattern, is an
   error), plus pixels at or above ``saturation_counts`` in any pattern. Bad pixels are set
   to 0.
4. Corner-origin detection and fix (``fftshift`` of the last two axes): the mean intensity is
   summed in a box of half-width ``N/8`` around the centre ``(N//2, N//2)`` and in the same box
   around the corner (the wrapped zero frequency); the layout holding more than twice the
   other's share wins, otherwise the patterns are kept as stored.
5. Geometry overrides (energy, distance, detector pixel): the object pixel is recomputed as
   ``lambda z / (N0 dx)``, and positions that the file gave in metres are rescaled to it.
6. Size N:

   - ``crop`` (default): keep the central ``N x N`` detector pixels (zero frequency stays at
     ``(N//2, N//2)``). The object pixel grows by ``N0/N``; positions in pixels scale by
     ``N/N0``; the probe (each of its incoherent modes alike) is resampled to the coarser grid
     by cropping its centred Fourier transform to ``N x N`` (same field of view,
     band-limited); a ground-truth object is
     resampled to the new pixel (Gaussian anti-aliasing, then bilinear sampling at
     ``j * N0 / N``) so it stays in the frame of the positions.
   - ``bin``: sum ``b x b`` detector pixels, ``b = N0 / N`` (an integer). The detector pixel
     grows by ``b``, so the object pixel ``lambda z / (N b dx)`` is unchanged; the field of view
     shrinks by ``b``: the probe is centre-cropped to ``N x N``; positions and object are
     unchanged. A binned pixel is bad when any of its detector pixels is. Binning starts at
     detector pixel 0, so the zero frequency of an even ``N0`` lands at the corner of binned
     pixel ``N//2`` (an offset of ``(b - 1) / (2 b)`` binned pixels, below the sampling).

   Padding beyond the detector is not done: ``N > N0`` is an error.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ptycho_engine.data import DiffractionData
from ptycho_engine.errors import DataError
from ptycho_engine.io.geometry import farfield_pixel_m
from ptycho_engine.io.validation import (
    check_pattern_values,
    merge_masks,
    nonfinite_step,
    require_usable_detector,
)

ORIGINS = ("auto", "centred", "corner")
#: How patterns reach the network's N: a centred crop or binning (the one list; the pipeline
#: and the app read it here).
MODES = ("crop", "bin")
#: Patterns sampled (evenly) to detect the origin of a large stack.
ORIGIN_SAMPLE = 256
#: Share ratio above which the origin is decided.
ORIGIN_RATIO = 2.0


def detect_origin(
    amplitudes: np.ndarray, bad_pixels: np.ndarray | None = None
) -> tuple[str, dict[str, float]]:
    """Tell centred from corner-origin patterns by where the intensity lies.

    Parameters
    ----------
    amplitudes : ndarray, (M, N, N) float
        Amplitudes (or any non-negative values whose square is the intensity).
    bad_pixels : ndarray, (N, N) bool, optional
        Pixels left out.

    Returns
    -------
    origin : str
        ``"centred"``, ``"corner"`` or ``"unknown"``.
    evidence : dict
        ``centre_share`` and ``corner_share`` (fractions of the mean intensity in a box of
        half-width ``max(1, N // 8)`` around ``(N//2, N//2)`` and around ``(0, 0)`` wrapped),
        and ``peak_y``, ``peak_x`` of the mean intensity.
    """
    m, n = amplitudes.shape[0], amplitudes.shape[-1]
    index = np.unique(np.linspace(0, m - 1, min(m, ORIGIN_SAMPLE)).round().astype(int))
    mean = np.zeros((n, n), dtype=np.float64)
    for i in index:
        frame = np.asarray(amplitudes[i], dtype=np.float64)
        mean += np.where(np.isfinite(frame), frame * frame, 0.0)
    if bad_pixels is not None:
        mean[bad_pixels] = 0.0
    total = float(mean.sum())
    peak = np.unravel_index(int(np.argmax(mean)), mean.shape)
    evidence = {
        "centre_share": 0.0,
        "corner_share": 0.0,
        "peak_y": float(peak[0]),
        "peak_x": float(peak[1]),
    }
    if total <= 0.0:
        return "unknown", evidence
    h, c = max(1, n // 8), n // 2
    centre = float(mean[c - h : c + h, c - h : c + h].sum()) / total
    corner = float(np.fft.fftshift(mean)[c - h : c + h, c - h : c + h].sum()) / total
    evidence["centre_share"], evidence["corner_share"] = centre, corner
    if corner > ORIGIN_RATIO * centre:
        return "corner", evidence
    if centre > ORIGIN_RATIO * corner:
        return "centred", evidence
    return "unknown", evidence


def center_patterns(
    amplitudes: np.ndarray, bad_pixels: np.ndarray | None, origin: str
) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Return centred patterns (and mask), fixing a corner-origin layout.

    Parameters
    ----------
    amplitudes : ndarray, (M, N, N) float32
    bad_pixels : ndarray, (N, N) bool, optional
    origin : {"auto", "centred", "corner"}
        Declared layout; ``"auto"`` uses :func:`detect_origin`.

    Returns
    -------
    amplitudes, bad_pixels, step
        ``step`` describes what was done ("" when the patterns were declared centred).
    """
    if origin not in ORIGINS:
        raise DataError(f"origin must be one of {ORIGINS}, got {origin!r}")
    if origin == "centred":
        return amplitudes, bad_pixels, ""
    if origin == "auto":
        found, ev = detect_origin(amplitudes, bad_pixels)
        why = (
            f"intensity share {ev['centre_share']:.3f} near the centre, "
            f"{ev['corner_share']:.3f} near the corners, peak at "
            f"({ev['peak_y']:.0f}, {ev['peak_x']:.0f})"
        )
        if found != "corner":
            return amplitudes, bad_pixels, f"origin detected {found} ({why}); kept as stored"
        reason = f"detected ({why})"
    else:
        reason = "declared"
    shifted = np.fft.fftshift(amplitudes, axes=(-2, -1))
    mask = None if bad_pixels is None else np.fft.fftshift(bad_pixels)
    return shifted, mask, f"corner-origin patterns ({reason}) centred with fftshift"


def pad_center(image: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad (or centre-crop) a 2-D image to ``n x n`` keeping pixel ``(H//2, W//2)`` at
    ``(n//2, n//2)``."""
    h, w = image.shape
    out = np.zeros((n, n), dtype=image.dtype)
    oy, ox = n // 2 - h // 2, n // 2 - w // 2
    ys, xs = max(0, oy), max(0, ox)
    ye, xe = min(n, oy + h), min(n, ox + w)
    out[ys:ye, xs:xe] = image[ys - oy : ye - oy, xs - ox : xe - ox]
    return out


def fourier_resample(image: np.ndarray, n: int) -> np.ndarray:
    """Resample a complex image of ``N0 x N0`` pixels to ``n x n`` over the same field of view.

    The centred Fourier transform is cropped (``n < N0``) or zero-padded (``n > N0``) to
    ``n x n``; values keep their scale (a constant image stays the same constant).

    Parameters
    ----------
    image : ndarray, (N0, N0) complex
    n : int

    Returns
    -------
    ndarray, (n, n) complex64
    """
    n0 = image.shape[0]
    spectrum = np.fft.fftshift(np.fft.fft2(image.astype(np.complex128)))
    resized = pad_center(spectrum, n)
    out = np.fft.ifft2(np.fft.ifftshift(resized)) * (n * n) / (n0 * n0)
    return out.astype(np.complex64)


def resample_object(obj: np.ndarray, factor: float) -> np.ndarray:
    """Resample an object to a pixel ``1/factor`` times larger; pixel ``j`` samples ``j/factor``.

    Parameters
    ----------
    obj : ndarray, (H, W) complex
    factor : float
        New pixels per old pixel (``N / N0`` for a crop), ``0 < factor <= 1``.

    Returns
    -------
    ndarray, (floor((H-1) * factor) + 1, floor((W-1) * factor) + 1) complex64
    """
    import scipy.ndimage

    h, w = obj.shape
    shape = (
        math.floor((h - 1) * factor + 1e-9) + 1,
        math.floor((w - 1) * factor + 1e-9) + 1,
    )
    sigma = 0.5 * (1.0 / factor - 1.0) if factor < 1 else 0.0
    grid = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64) / factor
    out = np.empty(shape, dtype=np.complex64)
    parts = []
    for part in (obj.real, obj.imag):
        smooth = scipy.ndimage.gaussian_filter(part.astype(np.float64), sigma) if sigma else part
        parts.append(scipy.ndimage.map_coordinates(smooth, grid, order=1, mode="nearest"))
    out[...] = parts[0] + 1j * parts[1]
    return out


def prepare(
    data: DiffractionData,
    N: int | None = None,
    mode: str = "crop",
    *,
    origin: str = "auto",
    energy_ev: float | None = None,
    distance_m: float | None = None,
    detector_pixel_m: float | None = None,
    saturation_counts: float | None = None,
    intensities: bool = False,
    allow_near_field: bool = False,
) -> DiffractionData:
    """Prepare a data set for the engine at pattern size ``N`` (see the module docstring).

    Parameters
    ----------
    data : DiffractionData
        As read (``amplitudes`` (M, N0, N0)).
    N : int, optional
        Pattern size wanted; default ``N0`` (no resizing).
    mode : {"crop", "bin"}
        How to reach ``N``.
    origin : {"auto", "centred", "corner"}
        Layout of the patterns handed in.
    energy_ev, distance_m, detector_pixel_m : float, optional
        Geometry overrides (eV, m, m).
    saturation_counts : float, optional
        Pixels reaching this many counts in any pattern are marked bad.
    intensities : bool
        True when ``data.amplitudes`` actually holds counts.
    allow_near_field : bool
        Prepare near-field data anyway (the result is not valid for a far-field model).

    Returns
    -------
    DiffractionData
        Centred amplitudes (M, N, N) float32, positions, probe, object, mask and pixel size
        updated, every step appended to ``provenance["steps"]``.

    Raises
    ------
    DataError
        Near-field data, ``N`` larger than the detector, ``N0`` not divisible by ``N`` for
        binning, bad options, negative counts, a pattern without a finite value or a
        detector without a pixel that is finite in every pattern.
    """
    provenance: dict[str, Any] = dict(data.provenance)
    src = provenance.get("path", "<arrays>")
    steps: list[str] = list(provenance.get("steps", []))
    if mode not in MODES:
        raise DataError(f"{src}: mode must be one of {MODES}, got {mode!r}")
    if origin not in ORIGINS:
        raise DataError(f"{src}: origin must be one of {ORIGINS}, got {origin!r}")
    n0 = data.N
    n = n0 if N is None else N
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise DataError(f"{src}: N must be an integer >= 2, got {N!r}")
    n = int(n)
    if n > n0:
        raise DataError(
            f"{src}: N={n} is larger than the {n0}x{n0} patterns; padding beyond the detector "
            f"is not done: choose N <= {n0}"
        )
    propagation = provenance.get("propagation") or {}
    near = propagation.get("regime") == "near-field"
    if near and not allow_near_field:
        raise DataError(
            f"{src}: these are near-field (Fresnel) holograms ({propagation.get('source')}); "
            "the network's physics is far-field only: reconstruct them with an iterative "
            "solver (--algorithm rpie or lsqml; in the app, the algorithm menu), which has a "
            "near-field propagator. If the file is in fact far-field, read it with "
            "propagation='far-field' (--propagation far-field)"
        )
    if near:
        steps.append("near-field data prepared on request (allow_near_field=True)")

    amplitudes = np.array(data.amplitudes, dtype=np.float32, copy=True)
    nonfinite = check_pattern_values(
        amplitudes,
        src,
        "amplitudes",
        what="counts" if intensities else "amplitudes",
        negative_ok=not intensities,
    )
    require_usable_detector(nonfinite, src, "amplitudes")
    if intensities:
        np.sqrt(amplitudes, out=amplitudes)
        steps.append("intensities converted to amplitudes (sqrt)")
    bad = None if data.bad_pixels is None else data.bad_pixels.copy()
    if nonfinite is not None:
        bad = merge_masks(bad, nonfinite)
        steps.append(nonfinite_step(nonfinite))
    if saturation_counts is not None:
        limit = math.sqrt(float(saturation_counts))
        saturated = np.asarray((amplitudes >= limit).any(axis=0))
        if saturated.any():
            bad = merge_masks(bad, saturated)
        steps.append(f"{int(saturated.sum())} pixels at >= {saturation_counts:g} counts marked bad")
    if bad is not None and bad.any():
        amplitudes[:, bad] = 0.0

    if not near:
        amplitudes, bad, step = center_patterns(amplitudes, bad, origin)
        if step:
            steps.append(step)

    energy = data.energy_ev if energy_ev is None else float(energy_ev)
    distance = data.distance_m if distance_m is None else float(distance_m)
    det_pixel = data.detector_pixel_m if detector_pixel_m is None else float(detector_pixel_m)
    pixel = data.pixel_size_m
    positions = data.positions_px.copy()
    overrides = {
        k: v
        for k, v in (
            ("energy_ev", energy_ev),
            ("distance_m", distance_m),
            ("detector_pixel_m", detector_pixel_m),
        )
        if v is not None
    }
    if overrides:
        for key, value in overrides.items():
            if not (math.isfinite(value) and value > 0):
                raise DataError(f"{src}: {key} must be a positive number, got {value!r}")
        steps.append("geometry override " + ", ".join(f"{k}={v:g}" for k, v in overrides.items()))
        if energy is not None and distance is not None and det_pixel is not None and not near:
            new_pixel = farfield_pixel_m(energy, distance, det_pixel, n0)
            if provenance.get("positions_unit") == "m" and pixel is not None:
                positions *= pixel / new_pixel
                steps.append(
                    f"positions rescaled from object pixel {pixel:.6g} m to {new_pixel:.6g} m"
                )
            pixel = new_pixel

    probe = data.probe
    modes = data.probe_modes  # every incoherent mode, resized like the probe
    obj = data.object_gt
    if n != n0 and mode == "crop":
        start = n0 // 2 - n // 2
        amplitudes = np.ascontiguousarray(amplitudes[:, start : start + n, start : start + n])
        if bad is not None:
            bad = bad[start : start + n, start : start + n].copy()
        factor = n / n0
        positions *= factor
        if pixel is not None:
            pixel = pixel / factor
        if probe is not None:
            probe = fourier_resample(probe, n)
        if modes is not None:
            modes = np.stack([fourier_resample(m, n) for m in modes])
        if obj is not None:
            obj = resample_object(obj, factor)
        steps.append(
            f"cropped {n0}x{n0} -> {n}x{n} (centre): object pixel x{n0 / n:g}"
            + (f" = {pixel:.6g} m" if pixel is not None else "")
            + f", positions x{factor:g}"
            + (", probe Fourier-resampled" if probe is not None else "")
            + (f", object resampled to {obj.shape}" if obj is not None else "")
        )
    elif n != n0:
        if n0 % n:
            raise DataError(
                f"{src}: binning {n0}x{n0} patterns to N={n} needs N to divide {n0}; choose "
                f"N among {[d for d in range(2, n0) if n0 % d == 0][-6:]} or crop"
            )
        b = n0 // n
        binned = np.empty((amplitudes.shape[0], n, n), dtype=np.float32)
        chunk = max(1, (32 << 20) // (n0 * n0 * 8))
        for s in range(0, amplitudes.shape[0], chunk):
            block = amplitudes[s : s + chunk].astype(np.float64) ** 2
            summed = block.reshape(block.shape[0], n, b, n, b).sum(axis=(2, 4))
            binned[s : s + chunk] = np.sqrt(summed)
        amplitudes = binned
        if bad is not None:
            bad = np.asarray(bad.reshape(n, b, n, b).any(axis=(1, 3)))
        if det_pixel is not None:
            det_pixel = det_pixel * b
        if probe is not None:
            probe = pad_center(probe, n)
        if modes is not None:
            modes = np.stack([pad_center(m, n) for m in modes])
        steps.append(
            f"binned {b}x{b}: {n0}x{n0} -> {n}x{n}, object pixel unchanged"
            + (f" ({pixel:.6g} m)" if pixel is not None else "")
            + f", field of view /{b}"
            + (", probe centre-cropped" if probe is not None else "")
        )
    provenance["steps"] = steps
    provenance["prepared"] = {"N": n, "from_N": n0, "mode": mode}
    return DiffractionData(
        amplitudes,
        positions,
        probe=probe,
        probe_modes=modes,
        object_gt=obj,
        bad_pixels=bad,
        pixel_size_m=pixel,
        energy_ev=energy,
        distance_m=distance,
        detector_pixel_m=det_pixel,
        provenance=provenance,
    )
