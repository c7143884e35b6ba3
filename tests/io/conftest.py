"""Shared fixtures of the I/O tests: small simulated data sets and the third-party folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from ptycho_engine.data import DiffractionData
from ptycho_engine.io.geometry import farfield_pixel_m
from ptycho_engine.simulate import simulate_dataset

#: ``../shared/datasets/third_party`` relative to the project root (never copied here).
THIRD_PARTY = Path(__file__).resolve().parents[2].parent / "shared/datasets/third_party"
PROFILES = Path(__file__).resolve().parent / "profiles"

ENERGY_EV = 8800.0
DISTANCE_M = 2.0
DETECTOR_PIXEL_M = 75e-6

_CACHE: dict[int, DiffractionData] = {}


def simulated(n: int) -> DiffractionData:
    """A small simulated data set (30 positions) with a far-field geometry attached."""
    if n not in _CACHE:
        data = simulate_dataset(N=n, n_positions=30, photons=1e5, seed=3)
        _CACHE[n] = data.replace(
            energy_ev=ENERGY_EV,
            distance_m=DISTANCE_M,
            detector_pixel_m=DETECTOR_PIXEL_M,
            pixel_size_m=farfield_pixel_m(ENERGY_EV, DISTANCE_M, DETECTOR_PIXEL_M, n),
        )
    return _CACHE[n]


def third_party(relative: str) -> Path:
    """Path of a third-party file, or skip the test with the reason."""
    path = THIRD_PARTY / relative
    if not path.is_file():
        pytest.skip(f"third-party data not available: {path} (shared/datasets is absent)")
    return path


@pytest.fixture(params=[32, 64, 128], ids=lambda n: f"N{n}")
def sim(request: pytest.FixtureRequest) -> DiffractionData:
    return simulated(int(request.param))
