"""A probe file of another size: refused with the choices in words, or Fourier-resampled to N
when the run asks for it (``RunSpec.probe_resample``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ptycho_engine.errors import DataError
from ptycho_engine.io.prepare import fourier_resample
from ptycho_engine.pipeline import prepare_data, recipe, resolve_probe
from ptycho_engine.pipeline.spec import RunSpec
from ptycho_engine.simulate import simulate_dataset


@pytest.fixture(scope="module")
def data():
    raw = simulate_dataset(N=64, n_positions=12, photons=1e5, seed=3)
    return prepare_data(raw, recipe(32, 1, 1).preparation)


def _probe_file(tmp_path: Path, side: int) -> tuple[Path, np.ndarray]:
    y, x = np.mgrid[:side, :side] - side / 2
    probe = (np.exp(-(x**2 + y**2) / (2 * (side / 6) ** 2)) * np.exp(1j * 0.01 * x**2)).astype(
        np.complex64
    )
    path = tmp_path / f"probe{side}.npy"
    np.save(path, probe)
    return path, probe


def test_a_probe_of_another_size_is_refused_with_the_choices_in_words(data, tmp_path) -> None:
    path, _ = _probe_file(tmp_path, 16)
    spec = recipe(32, 1, 1, probe_path=str(path))
    with pytest.raises(DataError) as info:
        resolve_probe(spec, data)
    message = str(info.value)
    assert "16x16" in message and "N=32" in message
    assert "Resample to N" in message and "choose N=16" in message
    assert "read_probe" not in message and "resample=True" not in message


def test_probe_resample_fourier_resamples_the_file_to_n(data, tmp_path) -> None:
    path, probe = _probe_file(tmp_path, 16)
    spec = recipe(32, 1, 1, probe_path=str(path), probe_resample=True)
    assert spec.probe_resample is True
    modes = resolve_probe(spec, data)
    assert modes is not None and modes.shape == (1, 32, 32) and modes.dtype == np.complex64
    np.testing.assert_allclose(modes[0], fourier_resample(probe, 32), rtol=1e-5, atol=1e-6)
    # a probe that fits is used as it is, resampling or not
    fit_path, fit = _probe_file(tmp_path, 32)
    same = resolve_probe(recipe(32, 1, 1, probe_path=str(fit_path), probe_resample=True), data)
    assert same is not None
    np.testing.assert_array_equal(same[0], fit)


def test_probe_resample_round_trips_and_is_validated() -> None:
    spec = recipe(32, 1, 1, probe_path="p.npy", probe_resample=True)
    values = spec.to_dict()
    assert values["probe_resample"] is True
    assert RunSpec.from_dict(values) == spec
    del values["probe_resample"]  # a run.json written before the option
    assert RunSpec.from_dict(values).probe_resample is False
    with pytest.raises(ValueError, match="probe_resample"):
        spec.replace(probe_resample="yes")
