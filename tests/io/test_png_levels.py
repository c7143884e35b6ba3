"""The phase PNG's levels: a phase of a fraction of the circle uses the whole colour map."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from ptycho_engine.display import colour_lut
from ptycho_engine.io import write_png


def _object(phase_amplitude: float, n: int = 96) -> np.ndarray:
    y, x = np.mgrid[0:n, 0:n].astype(np.float64)
    phase = phase_amplitude * np.sin(2 * math.pi * x / 40.0) * np.cos(2 * math.pi * y / 55.0)
    return (0.8 * np.exp(1j * phase)).astype(np.complex64)


def _map_indices(path: Path, lut: np.ndarray) -> np.ndarray:
    """Colour-map entries of the image's pixels: the PNG's pixels left of the colour bar
    (the left 70% of the figure) whose colour is an entry of ``lut`` (the image is drawn
    with nearest-neighbour interpolation, so its pixels are the map's colours exactly)."""
    from matplotlib.image import imread

    rgb = np.round(imread(path)[..., :3] * 255).astype(np.int64)
    left = rgb[:, : int(0.7 * rgb.shape[1])].reshape(-1, 3)
    keys = (left[:, 0] << 16) | (left[:, 1] << 8) | left[:, 2]
    table = lut.astype(np.int64)
    entries = {int((r << 16) | (g << 8) | b): k for k, (r, g, b) in enumerate(table)}
    found = np.array([entries.get(int(key), -1) for key in keys])
    return found[found >= 0]


@pytest.mark.parametrize("phase_amplitude", [0.7, 0.2])
def test_a_small_phase_spans_most_of_the_colour_map(tmp_path: Path, phase_amplitude: float) -> None:
    path = write_png(tmp_path / "phase.png", _object(phase_amplitude), "phase")
    indices = _map_indices(path, colour_lut("viridis"))
    assert indices.size > 2000  # the image is drawn in the range map
    low, high = np.percentile(indices, [2, 98])
    # the old rule (-pi..pi) put +-0.7 rad on 22% of the map, +-0.2 rad on 6%
    assert high - low > 0.75 * 255, (low, high)


def test_a_phase_over_the_circle_keeps_the_cyclic_map(tmp_path: Path) -> None:
    n = 96
    x = np.mgrid[0:n, 0:n][1]
    ramp = np.exp(1j * 2 * math.pi * x / 24.0).astype(np.complex64)  # every phase
    path = write_png(tmp_path / "ramp.png", ramp, "phase")
    cyclic = _map_indices(path, colour_lut("cyclic"))
    assert cyclic.size > 2000
    assert np.percentile(cyclic, 98) - np.percentile(cyclic, 2) > 0.9 * 255
    assert _map_indices(path, colour_lut("viridis")).size < 0.05 * cyclic.size


def test_valid_pixels_alone_set_the_phase_levels(tmp_path: Path) -> None:
    obj = _object(0.7)
    valid = np.zeros(obj.shape, bool)
    valid[10:80, 10:80] = True
    obj[~valid] = 0.8 * np.exp(3j)  # a far phase outside the valid region
    path = write_png(tmp_path / "masked.png", obj, "phase", valid=valid)
    indices = _map_indices(path, colour_lut("viridis"))
    assert np.percentile(indices, 98) - np.percentile(indices, 2) > 0.7 * 255
