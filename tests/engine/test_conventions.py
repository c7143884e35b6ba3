"""One convention across every reconstructor: the network and the iterative solvers put the
same object at the same place (same axes, signs and scan-position frame; no flip)."""

from __future__ import annotations

import numpy as np

from ptycho_engine.data import StitchSnapshot
from ptycho_engine.metrics import register_shift, ssim
from ptycho_engine.pipeline import recipe, run
from ptycho_engine.simulate import simulate_dataset
from ptycho_engine.streams import drain


def _common(a: StitchSnapshot, b: StitchSnapshot) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both images cut to the region of the scan frame they share: (a, b, both valid)."""
    oy = round(max(a.origin_px[0], b.origin_px[0]))
    ox = round(max(a.origin_px[1], b.origin_px[1]))
    h = round(min(im.origin_px[0] + im.object.shape[0] for im in (a, b))) - oy
    w = round(min(im.origin_px[1] + im.object.shape[1] for im in (a, b))) - ox
    cuts = []
    for im in (a, b):
        y0, x0 = oy - round(im.origin_px[0]), ox - round(im.origin_px[1])
        cuts.append((im.object[y0 : y0 + h, x0 : x0 + w], im.valid[y0 : y0 + h, x0 : x0 + w]))
    (oa, va), (ob, vb) = cuts
    return oa, ob, va & vb


def test_the_network_and_the_solvers_agree_on_the_object_frame() -> None:
    data = simulate_dataset(N=32, n_positions=200, photons=1e6, seed=6)
    pinn = drain(run(recipe(32, 2, 12, n_filters_scale=1, preview_every=0), data))
    images = {"pinn": pinn.reconstruction}
    for name in ("rpie", "lsqml"):
        spec = recipe(None, reconstructor=name, solver={"iterations": 10, "preview_every": 0})
        images[name] = drain(run(spec, data)).reconstruction
    # each against the truth: registered with a shift well under half a pixel
    assert pinn.scores is not None and pinn.scores.report.amplitude.ssim > 0.5
    assert max(abs(v) for v in pinn.scores.report.shift_px) < 0.5
    for name in ("rpie", "lsqml"):
        a, b, both = _common(images["pinn"], images[name])
        dy, dx = register_shift(np.abs(b), np.abs(a), both)
        assert abs(dy) < 0.5 and abs(dx) < 0.5, (name, dy, dx)
        straight = ssim(np.abs(a), np.abs(b), both)
        flipped_mask = both & both[::-1, ::-1]
        flipped = ssim(np.abs(a)[::-1, ::-1], np.abs(b), flipped_mask)
        transposed = ssim(np.abs(a).T, np.abs(b), both & both.T) if a.shape[0] == a.shape[1] else -1
        assert straight > 0.5 and straight > flipped + 0.3 and straight > transposed + 0.3
