"""The scan grid's pattern in a stitched network image, measured and divided out.

A network predicts every patch with the same small bias at each pixel of the patch frame (a
little too bright here, a little too dark there: its error depends on where in the patch a
pixel lies, not only on the object). Stitching averages each object pixel over the patches
that cover it. On a spiral or random scan those patches reach the pixel at unrelated places of
their frames and the bias averages out. On a raster every patch lands on the same lattice, so
the average of the bias over the patches that cover a pixel depends only on where the pixel
lies in its lattice cell: the image is the object times a pattern with the period of the scan,
the grid of seams that :mod:`ptycho_engine.metrics.seams` measures.

Measured on the few-patterns case of ``benchmarks/time_to_quality.py`` (500 positions, zone
plate with 2 modes, 1,920 steps): the patch-frame amplitude bias has a standard deviation of
0.0074 over the support, and removing it with the truth brings the seam measure from 1.33 to
1.03.

:func:`remove_grid_pattern` estimates that pattern from the image alone. Each valid pixel's
high-passed log amplitude (its log amplitude less a Gaussian average over one scan step) is
binned by the pixel's place in its lattice cell (one bin per pixel of the step), and the bins
are averaged over all the cells. The object's own content at that period averages towards
zero over hundreds of cells; the pattern does not. What remains of the object is told from the
pattern by splitting the cells into blocks of about 4 x 4 cells (2 to 8 blocks an axis): the
pattern is the same in every block, the object's remnant is not, and the scatter of the
blocks' patterns about their mean gives the power ``n`` the remnant adds to each spatial
harmonic ``F`` of the averaged pattern. Each harmonic is then shrunk by
``1 - sqrt(n / |F|**2)`` (clipped to 0..1): what is left of it has the remnant's expected power,
so the object keeps its own content at the grid's frequencies, and a harmonic that is noise
is left as it is. (Shrinking by ``1 - n / |F|**2``, the least-squares choice, took that
content out too: on the few-patterns case the seam measure fell from 1.33 to 0.83, below the
truth's, and the truth itself lost 9 % of its power there.) The phase is treated the same way,
with the pixel's phase less the phase of a Gaussian average of the complex object (wrap safe).

On a raster with jittered positions, and at the scan's edge where fewer patches overlap, a
part of the patch bias makes no periodic pattern; that part stays.

Measured on 2026-12-07 (N 64, the default recipe, short runs; seam measure of
:mod:`ptycho_engine.metrics.seams` as stitched -> pattern removed, amplitude / phase SSIM):

- few-patterns case, 64 epochs: 1.330 -> 0.933, 0.696 / 0.737 -> 0.698 / 0.738;
- held-out cells / KB probe, 12 epochs, gridsize 1: 20.7 -> 0.698, 0.643 / 0.733 -> 0.712 /
  0.743; gridsize 2: 12.0 -> 2.02, 0.507 / 0.478 -> 0.521 / 0.492;
- three fresh family rasters (800 positions, 12 epochs): 30.2 -> 0.969, 0.577 / 0.504 ->
  0.600 / 0.504; 6.45 -> 2.76, 0.354 / 0.209 -> 0.354 / 0.209; 1.31 -> 0.215 (a network at
  chance level, 0.175 / 0.059 -> 0.176 / 0.065);
- the truth itself, corrected: 0.936 to 0.998 of its own measure, SSIM >= 0.998;
- a spiral scan: left as it is.

On the few-patterns case after 150 epochs (held-out pixel validation) the pattern is small
(0.21 % rms) and the removal takes the seam measure from 0.952 to 0.693 (local ratio 1.181 to
0.860), SSIM 0.780 / 0.850 -> 0.784 / 0.850. A per-harmonic detection threshold (a harmonic
removed only when its power is 9 times the remnant's) was tried and not kept: it leaves that
image as it is (0.952) and the truth untouched (1.000 of its measure), but the pattern there is
real (the harmonics' power is 2.9 times the remnant's in all, where no pattern gives 1), it
halves less of a known synthetic bias (the patch bias of test_grid_pattern, one seed: the
seam measure 2.11 -> 1.80 where the test asks for at most 1.56), and on the two
12-epoch gridsize-2 rasters above it gave 1.01 for 0.97 and 3.10 for 2.76.

A scan counts as a raster when :func:`ptycho_engine.metrics.seams.raster_step` finds its
pitch and the positions keep to one lattice of that pitch: the mean of ``exp(2 pi i y / s_y)``
(and of x) over the positions has a modulus of at least :data:`LATTICE_COHERENCE` (0.94 for the
simulator's jitter of +-0.1 step, about ``1 / sqrt(M)`` for a spiral). Anything else is left
as it is.

This module never imports TensorFlow or Qt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ptycho_engine.errors import DataError
from ptycho_engine.metrics.seams import raster_step

#: Least modulus of the mean of ``exp(2 pi i y / s_y)`` (and x) over the positions for a scan
#: to count as a raster of pitch ``s``.
LATTICE_COHERENCE = 0.5
#: The cells are split into blocks of about this many cells a side (2 to :data:`MAX_BLOCKS`
#: blocks an axis) to tell the pattern from the object.
CELLS_PER_BLOCK = 4
MAX_BLOCKS = 8
#: Least number of lattice cells per axis of the valid region.
MIN_CELLS = 4


@dataclass(frozen=True)
class Lattice:
    """A raster scan's lattice: pitch and the place of one lattice point, ``(y, x)`` pixels."""

    step_px: tuple[float, float]
    offset_px: tuple[float, float]


@dataclass(frozen=True)
class GridPattern:
    """What :func:`remove_grid_pattern` divided out of an image.

    Attributes
    ----------
    lattice : Lattice
    amplitude_rms : float
        RMS of the removed log-amplitude pattern over the valid pixels (0.01 is a 1 % ripple).
    phase_rms_rad : float
        RMS of the removed phase pattern.
    """

    lattice: Lattice
    amplitude_rms: float
    phase_rms_rad: float

    def to_dict(self) -> dict[str, object]:
        return {
            "step_px": list(self.lattice.step_px),
            "offset_px": list(self.lattice.offset_px),
            "amplitude_rms": self.amplitude_rms,
            "phase_rms_rad": self.phase_rms_rad,
        }


def scan_lattice(positions_px: np.ndarray) -> Lattice | None:
    """The lattice of a raster scan, or None for a scan that is not one (module docstring)."""
    pos = np.asarray(positions_px, dtype=np.float64)
    try:
        step = raster_step(pos)
    except DataError:
        return None
    if not all(math.isfinite(s) and s >= 2.0 for s in step):
        return None
    offset = []
    for axis in (0, 1):
        phasor = np.mean(np.exp(2j * np.pi * pos[:, axis] / step[axis]))
        if abs(phasor) < LATTICE_COHERENCE:
            return None
        offset.append(float(np.angle(phasor)) / (2 * np.pi) * step[axis])
    return Lattice((float(step[0]), float(step[1])), (offset[0], offset[1]))


def _agreed_pattern(
    values: np.ndarray, bins: np.ndarray, blocks: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """The cell-averaged pattern ``shape`` of ``values`` (one per valid pixel), each harmonic
    shrunk so that what is left of it has the power of the object's remnant (module
    docstring)."""
    n_bins = shape[0] * shape[1]
    spectra = []
    for block in np.unique(blocks):
        inside = blocks == block
        count = np.bincount(bins[inside], minlength=n_bins)
        total = np.bincount(bins[inside], weights=values[inside], minlength=n_bins)
        seen = count > 0
        mean = np.where(seen, total / np.maximum(count, 1), 0.0)
        mean[seen] -= mean[seen].mean()
        spectra.append(np.fft.fft2(mean.reshape(shape)))
    f = np.asarray(spectra)
    k = len(f)
    average = f.mean(axis=0)
    # the power the object's remnant adds to the average: the scatter of the blocks about it
    noise = np.sum(np.abs(f - average) ** 2, axis=0) / (k * (k - 1))
    share = np.clip(1.0 - np.sqrt(noise / np.maximum(np.abs(average) ** 2, 1e-30)), 0.0, 1.0)
    share[0, 0] = 0.0
    return np.real(np.fft.ifft2(average * share)).ravel()


def remove_grid_pattern(
    obj: np.ndarray,
    valid: np.ndarray,
    origin_px: tuple[float, float],
    positions_px: np.ndarray,
) -> tuple[np.ndarray, GridPattern | None]:
    """Divide the scan grid's pattern out of a stitched object (module docstring).

    Parameters
    ----------
    obj : ndarray, (H, W) complex
        Stitched object, 0 where invalid.
    valid : ndarray, (H, W) bool
    origin_px : (float, float)
        ``(y, x)`` of canvas pixel ``(0, 0)`` in the frame of the positions.
    positions_px : ndarray, (M, 2)
        The scan positions that were stitched.

    Returns
    -------
    (ndarray, GridPattern or None)
        The corrected object (complex64, 0 where invalid) and what was removed; the object
        unchanged and None when the scan is not a raster or the valid region spans fewer than
        :data:`MIN_CELLS` cells on an axis.
    """
    lattice = scan_lattice(positions_px)
    # a pixel that is not finite is no evidence of the pattern (and is left as it is)
    valid_mask = np.asarray(valid, dtype=bool)
    mask = valid_mask & np.isfinite(obj)
    if lattice is None or not mask.any():
        return obj, None
    step = lattice.step_px
    rows, cols = np.nonzero(mask)
    cy = (rows + origin_px[0] - lattice.offset_px[0]) / step[0]
    cx = (cols + origin_px[1] - lattice.offset_px[1]) / step[1]
    cell_y, cell_x = np.floor(cy), np.floor(cx)
    if np.ptp(cell_y) + 1 < MIN_CELLS or np.ptp(cell_x) + 1 < MIN_CELLS:
        return obj, None
    shape = (max(2, round(step[0])), max(2, round(step[1])))
    bins = (np.floor((cy - cell_y) * shape[0]).astype(np.int64) % shape[0]) * shape[1] + (
        np.floor((cx - cell_x) * shape[1]).astype(np.int64) % shape[1]
    )
    span = int(min(np.ptp(cell_y), np.ptp(cell_x))) + 1
    per_axis = int(np.clip(span // CELLS_PER_BLOCK, 2, MAX_BLOCKS))
    blocks = np.zeros(len(rows), np.int64)
    for cells in (cell_y, cell_x):
        edges = np.quantile(cells, np.linspace(0.0, 1.0, per_axis + 1)[1:-1])
        blocks = blocks * per_axis + np.digitize(cells, edges)

    z = np.where(mask, obj, 0).astype(np.complex128)
    weight = mask.astype(np.float64)
    sigma = max(step)
    norm = np.maximum(ndimage.gaussian_filter(weight, sigma), 1e-9)
    magnitude = np.abs(z)
    floor = 1e-3 * float(np.median(magnitude[mask])) + 1e-30
    log_amp = np.log(np.maximum(magnitude, floor))
    smooth = ndimage.gaussian_filter(log_amp * weight, sigma) / norm
    amp_pattern = _agreed_pattern((log_amp - smooth)[mask], bins, blocks, shape)
    local = ndimage.gaussian_filter(z.real * weight, sigma) + 1j * ndimage.gaussian_filter(
        z.imag * weight, sigma
    )
    phase = np.angle(z[mask] * np.conj(local[mask]))
    phase_pattern = _agreed_pattern(phase, bins, blocks, shape)

    out = np.where(valid_mask, obj, 0).astype(np.complex64)
    gain = amp_pattern[bins] + 1j * phase_pattern[bins]
    out[mask] = (z[mask] * np.exp(-gain)).astype(np.complex64)
    removed = GridPattern(
        lattice,
        float(np.sqrt(np.mean(amp_pattern[bins] ** 2))),
        float(np.sqrt(np.mean(phase_pattern[bins] ** 2))),
    )
    return out, removed
