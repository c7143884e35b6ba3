"""Stitching: the ceiling of the pipeline (physics.md section 10) and the canvas frame."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ptycho_engine.metrics import compare
from ptycho_engine.physics.probe import support_mask
from ptycho_engine.simulate import simulate_dataset
from ptycho_engine.stitching import reference_region, stitch


def test_stitching_true_patches_reaches_the_ceiling() -> None:
    """True object patches cut bilinearly at the scan positions and stitched back score near
    1 against the ground truth (physics.md quotes 0.94 / 0.99 for its data)."""
    data = simulate_dataset(N=32, n_positions=150, photons=1e6, seed=2)
    n = data.N
    obj = data.object_gt
    assert obj is not None
    yy, xx = np.mgrid[:n, :n]
    patches = []
    for y, x in data.positions_px:
        coords = [y - n // 2 + yy, x - n // 2 + xx]
        patches.append(
            ndimage.map_coordinates(obj.real, coords, order=1)
            + 1j * ndimage.map_coordinates(obj.imag, coords, order=1)
        )
    window = support_mask(n)
    snap = stitch(np.asarray(patches, np.complex64) * window, data.positions_px, window)
    assert snap.done and snap.valid.sum() > 2000
    assert float(snap.origin_px[0]).is_integer() and float(snap.origin_px[1]).is_integer()
    ref = reference_region(obj, snap.origin_px, snap.object.shape)
    report = compare(snap.object, ref, snap.valid)
    assert report.amplitude.ssim > 0.9 and report.phase.ssim > 0.9
    assert max(abs(s) for s in report.shift_px) < 0.5
