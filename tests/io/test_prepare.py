"""Preparation for a chosen N: origin, crop, bin, masks, geometry overrides, probe files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ptycho_engine.data import DiffractionData
from ptycho_engine.errors import DataError
from ptycho_engine.io import (
    detect_origin,
    fourier_resample,
    prepare,
    read_data,
    read_probe,
    write_cxi,
)
from ptycho_engine.io.geometry import farfield_pixel_m
from tests.io.conftest import simulated


def test_corner_origin_is_detected_and_fixed(tmp_path: Path) -> None:
    data = simulated(64)
    corner = np.fft.ifftshift(data.amplitudes, axes=(1, 2))
    assert detect_origin(corner)[0] == "corner"
    assert detect_origin(data.amplitudes)[0] == "centred"
    np.savez(tmp_path / "corner.npz", frames=corner**2, pos=data.positions_px)
    profile = {"patterns": {"path": "frames"}, "positions": {"path": "pos"}}
    back = read_data(tmp_path / "corner.npz", profile=profile)
    np.testing.assert_allclose(back.amplitudes, data.amplitudes, rtol=1e-6)
    assert any("corner-origin" in s and "detected" in s for s in back.provenance["steps"])
    # prepare() fixes arrays handed in corner-first too
    fixed = prepare(DiffractionData(corner, data.positions_px))
    np.testing.assert_array_equal(fixed.amplitudes, data.amplitudes)


def test_crop_scales_pixel_positions_probe_and_object() -> None:
    data = simulated(64)
    assert data.pixel_size_m is not None and data.object_gt is not None
    crop = prepare(data, 32)
    assert crop.amplitudes.shape == (30, 32, 32)
    np.testing.assert_array_equal(crop.amplitudes, data.amplitudes[:, 16:48, 16:48])
    assert crop.pixel_size_m == pytest.approx(2 * data.pixel_size_m)
    assert crop.pixel_size_m == pytest.approx(farfield_pixel_m(8800, 2.0, 75e-6, 32))
    np.testing.assert_allclose(crop.positions_px, data.positions_px / 2)
    assert crop.probe is not None and crop.probe.shape == (32, 32)
    # The probe keeps its field of view: its power per object area is preserved.
    assert data.probe is not None and crop.pixel_size_m is not None
    p0 = np.sum(np.abs(data.probe) ** 2) * data.pixel_size_m**2
    p1 = np.sum(np.abs(crop.probe) ** 2) * crop.pixel_size_m**2
    assert p1 == pytest.approx(p0, rel=0.05)
    assert crop.object_gt is not None
    h, w = data.object_gt.shape
    assert crop.object_gt.shape == ((h - 1) // 2 + 1, (w - 1) // 2 + 1)
    assert "cropped 64x64 -> 32x32" in crop.provenance["steps"][-1]
    assert crop.provenance["prepared"] == {"N": 32, "from_N": 64, "mode": "crop"}


def test_fourier_resample_keeps_constants_and_fields_of_view() -> None:
    np.testing.assert_allclose(fourier_resample(np.full((16, 16), 2 + 1j), 8), 2 + 1j, atol=1e-6)
    y, x = np.mgrid[:64, :64] - 32
    gauss = np.exp(-(x**2 + y**2) / (2 * 6.0**2))
    small = fourier_resample(gauss.astype(np.complex64), 32)
    y2, x2 = np.mgrid[:32, :32] - 16
    np.testing.assert_allclose(small.real, np.exp(-(x2**2 + y2**2) / (2 * 3.0**2)), atol=1e-3)


def test_bin_keeps_the_pixel_and_sums_counts() -> None:
    data = simulated(64)
    binned = prepare(data, 16, mode="bin")
    assert binned.pixel_size_m == data.pixel_size_m
    assert binned.detector_pixel_m == pytest.approx(4 * 75e-6)
    np.testing.assert_array_equal(binned.positions_px, data.positions_px)
    counts = data.amplitudes.astype(np.float64) ** 2
    np.testing.assert_allclose(
        binned.amplitudes**2, counts.reshape(30, 16, 4, 16, 4).sum(axis=(2, 4)), rtol=1e-5
    )
    assert data.probe is not None and binned.probe is not None
    np.testing.assert_array_equal(binned.probe, data.probe[24:40, 24:40])
    with pytest.raises(DataError, match="divide"):
        prepare(data, 24, mode="bin")


def test_crop_and_bin_resize_every_probe_mode_like_the_probe() -> None:
    data = simulated(64)
    assert data.probe is not None
    second = 0.5 * np.roll(data.probe, 3, axis=1)  # a weaker, incoherent second mode
    modal = data.replace(probe_modes=np.stack([data.probe, second]))
    crop = prepare(modal, 32)
    assert crop.probe_modes is not None and crop.probe_modes.shape == (2, 32, 32)
    np.testing.assert_array_equal(crop.probe_modes[0], crop.probe)
    np.testing.assert_allclose(crop.probe_modes[1], fourier_resample(second, 32), atol=1e-6)
    binned = prepare(modal, 16, mode="bin")
    assert binned.probe_modes is not None and binned.probe_modes.shape == (2, 16, 16)
    np.testing.assert_array_equal(binned.probe_modes[0], binned.probe)
    np.testing.assert_array_equal(binned.probe_modes[1], second[24:40, 24:40])
    assert prepare(modal, 64).probe_modes is not None  # no resizing: kept as they are
    assert prepare(data, 32).probe_modes is None


def test_bad_pixels_from_nan_saturation_and_mask() -> None:
    data = simulated(32)
    amps = data.amplitudes.copy()
    amps[3, 1, 2] = np.nan
    amps[:, 30, 30] = 1000.0  # saturated: 1e6 counts
    mask = np.zeros((32, 32), bool)
    mask[0, 0] = True
    prepared = prepare(data.replace(amplitudes=amps, bad_pixels=mask), saturation_counts=5e5)
    assert prepared.bad_pixels is not None
    assert {tuple(p) for p in np.argwhere(prepared.bad_pixels)} == {(0, 0), (1, 2), (30, 30)}
    assert np.all(prepared.amplitudes[:, prepared.bad_pixels] == 0)
    assert np.all(np.isfinite(prepared.amplitudes))
    steps = " | ".join(prepared.provenance["steps"])
    assert "NaN" in steps and "500000 counts" in steps
    # the mask is cropped with the patterns
    small = prepare(data.replace(amplitudes=amps), 16, saturation_counts=5e5)
    assert small.bad_pixels is not None and small.bad_pixels.shape == (16, 16)
    # crop window [8, 24): (30, 30) and (1, 2) fall outside, nothing is bad inside
    assert not small.bad_pixels.any()
    centre = data.amplitudes.copy()
    centre[:, 10, 20] = np.inf
    inside = prepare(data.replace(amplitudes=centre), 16)
    assert inside.bad_pixels is not None
    assert [tuple(p) for p in np.argwhere(inside.bad_pixels)] == [(2, 12)]


def test_intensities_to_amplitudes_and_errors() -> None:
    data = simulated(32)
    counts = data.replace(amplitudes=data.amplitudes**2)
    back = prepare(counts, intensities=True)
    np.testing.assert_allclose(back.amplitudes, data.amplitudes, rtol=1e-6)
    with pytest.raises(DataError, match="padding"):
        prepare(data, 64)
    with pytest.raises(DataError, match="mode"):
        prepare(data, 16, mode="zoom")


def test_geometry_override_rescales_positions_given_in_metres(tmp_path: Path) -> None:
    data = simulated(32)
    path = write_cxi(tmp_path / "sim.cxi", data)
    read = read_data(path)
    assert read.provenance["positions_unit"] == "m"
    moved = prepare(read, distance_m=4.0)
    assert read.pixel_size_m is not None
    assert moved.pixel_size_m == pytest.approx(2 * read.pixel_size_m)
    np.testing.assert_allclose(moved.positions_px, read.positions_px / 2)
    assert "geometry override distance_m=4" in " ".join(moved.provenance["steps"])
    again = read_data(path, energy_ev=17600.0)
    np.testing.assert_allclose(again.positions_px, read.positions_px * 2, rtol=1e-9)


def test_probe_files(tmp_path: Path) -> None:
    data = simulated(32)
    assert data.probe is not None
    np.save(tmp_path / "modes.npy", np.stack([data.probe, 0.1 * data.probe]))
    probe = read_probe(tmp_path / "modes.npy", 32)
    assert probe.modes.shape == (2, 32, 32)
    np.testing.assert_array_equal(probe.probe, data.probe)
    np.savez(tmp_path / "p.npz", probeGuess=data.probe)
    np.testing.assert_array_equal(read_probe(tmp_path / "p.npz").probe, data.probe)
    cxi = write_cxi(tmp_path / "sim.cxi", data)
    assert read_probe(cxi).provenance["format"] == "cxi"
    with pytest.raises(DataError, match="resample"):
        read_probe(tmp_path / "p.npz", 16)
    small = read_probe(tmp_path / "p.npz", 16, resample=True)
    assert small.modes.shape == (1, 16, 16)
    assert "Fourier-resampled" in small.provenance["steps"][-1]


def test_profile_json_round_trip_and_units(tmp_path: Path) -> None:
    from ptycho_engine.io import MappingProfile, load_profile, save_profile

    data = simulated(32)
    assert data.pixel_size_m is not None
    positions_um = data.positions_px[:, ::-1] * data.pixel_size_m * 1e6  # (x, y) in µm
    np.savez(tmp_path / "gen.npz", amp=data.amplitudes, xy=positions_um, en=np.float64(8.8))
    raw = {
        "name": "generic",
        "patterns": {"path": "amp", "values": "amplitude", "origin": "centred"},
        "positions": {"path": "xy", "unit": "um", "order": "xy"},
        "energy_ev": {"path": "en", "unit": "keV"},
        "distance_m": 2.0,
        "detector_pixel_m": 75e-6,
    }
    profile = MappingProfile.from_dict(raw)
    saved = save_profile(tmp_path / "gen.json", profile)
    assert json.loads(saved.read_text())["positions"]["order"] == "xy"
    back = read_data(tmp_path / "gen.npz", profile=load_profile(saved))
    np.testing.assert_array_equal(back.amplitudes, data.amplitudes)
    np.testing.assert_allclose(back.positions_px, data.positions_px, rtol=1e-9)
    assert back.energy_ev == pytest.approx(8800.0)
    assert back.provenance["profile"] == "generic"
