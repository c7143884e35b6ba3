"""The simulated family of pretraining: every axis drawn, held-out kinds never drawn."""

from __future__ import annotations

import numpy as np
import pytest

from ptycho_engine.errors import ConfigError
from ptycho_engine.family import (
    CONTRASTS,
    HELD_OUT_OBJECTS,
    HELD_OUT_PROBES,
    TRAIN_OBJECTS,
    TRAIN_PROBES,
    draw_member,
    family_object,
    family_probe,
    simulate_member,
)
from ptycho_engine.physics.probe import support_mask


def test_training_draws_cover_every_axis_and_never_the_held_out_kinds() -> None:
    rng = np.random.default_rng(0)
    members = [draw_member(rng) for _ in range(300)]
    assert {m.object_kind for m in members} == set(TRAIN_OBJECTS)
    assert {m.probe_kind for m in members} == set(TRAIN_PROBES)
    assert {m.contrast for m in members} == set(CONTRASTS)
    assert {m.probe_modes for m in members} == {1, 2, 3}
    doses = np.log10([m.photons for m in members])
    assert doses.min() < 3.3 and doses.max() > 8.7
    held = [draw_member(rng, held_out=True) for _ in range(20)]
    assert {m.object_kind for m in held} <= set(HELD_OUT_OBJECTS)
    assert {m.probe_kind for m in held} <= set(HELD_OUT_PROBES)


@pytest.mark.parametrize("kind", TRAIN_OBJECTS + HELD_OUT_OBJECTS)
@pytest.mark.parametrize("contrast", CONTRASTS)
def test_objects_are_physical_and_not_flat(kind: str, contrast: str) -> None:
    obj = family_object(kind, contrast, (96, 80), np.random.default_rng(1))
    amp = np.abs(obj)
    assert obj.shape == (96, 80) and obj.dtype == np.complex64
    assert amp.max() <= 1.0 + 1e-6 and amp.min() > 0.1
    assert np.ptp(amp) > 0.0 or np.ptp(np.angle(obj)) > 0.0
    if contrast == "phase":
        assert np.ptp(np.angle(obj)) > 4 * np.ptp(amp)
    if contrast == "absorption":
        assert np.ptp(amp) > 1.2 * np.ptp(np.angle(obj))


@pytest.mark.parametrize("kind", TRAIN_PROBES + HELD_OUT_PROBES)
@pytest.mark.parametrize("modes", [1, 3])
def test_probes_fit_the_support_and_their_modes_are_incoherent(kind: str, modes: int) -> None:
    probe = family_probe(kind, 64, 0.8, 2.0, modes, np.random.default_rng(2))
    assert probe.shape == (modes, 64, 64)
    power = np.sum(np.abs(probe) ** 2, axis=(1, 2))
    assert np.all(np.diff(power) < 0)  # strongest first
    outside = ~support_mask(64, True).astype(bool)
    # almost no illumination outside the object support of N/2 x N/2
    assert np.sum(np.abs(probe[0][outside]) ** 2) < 0.02 * power[0]
    for i in range(modes):
        for j in range(i):
            overlap = abs(np.vdot(probe[i], probe[j])) / np.sqrt(power[i] * power[j])
            assert overlap < 1e-4


def test_a_member_simulates_its_dose_with_its_truth() -> None:
    member = draw_member(np.random.default_rng(5), N=32, n_positions=40, photons=1e5)
    data = simulate_member(member)
    assert data.amplitudes.shape == (40, 32, 32)
    assert np.mean(np.sum(data.amplitudes.astype(np.float64) ** 2, axis=(1, 2))) == (
        pytest.approx(1e5, rel=0.01)
    )
    assert data.object_gt is not None and data.provenance["family"] == member.to_dict()
    assert simulate_member(member).amplitudes.tobytes() == data.amplitudes.tobytes()


def test_unknown_kinds_are_named() -> None:
    with pytest.raises(ConfigError, match="object family 'rocks'"):
        family_object("rocks", "mixed", (32, 32), np.random.default_rng(0))
    with pytest.raises(ConfigError, match="probe kind 'laser'"):
        family_probe("laser", 32, 1.0, 0.0, 1, np.random.default_rng(0))
