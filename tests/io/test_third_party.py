"""The three third-party files of ``shared/datasets/third_party`` open with the conventions of
their CATALOG.md (the files are used in place, never copied)."""

from __future__ import annotations

import numpy as np
import pytest

from ptycho_engine.errors import DataError
from ptycho_engine.io import inspect_file, prepare, read_data
from tests.io.conftest import PROFILES, third_party

TIKE = "tike/ptycho_setup_converted.npz"
PETRA = "cdtools/PETRAIII_P25_Near_Field_Ptycho.cxi"
APS = "probe_position_correction_w_ptychonn/test235_truncated.npz"


def centroid(intensity: np.ndarray) -> np.ndarray:
    y, x = np.mgrid[: intensity.shape[0], : intensity.shape[1]]
    total = intensity.sum()
    return np.array([(intensity * y).sum() / total, (intensity * x).sum() / total])


def test_tike_through_the_shipped_profile() -> None:
    path = third_party(TIKE)
    data = read_data(path, profile=PROFILES / "tike.json")
    assert data.amplitudes.shape == (169, 32, 32)
    # Corner-origin intensities became centred amplitudes.
    mean = np.mean(data.amplitudes.astype(np.float64) ** 2, axis=0)
    np.testing.assert_allclose(centroid(mean), [16.0, 16.0], atol=0.3)
    assert any("fftshift" in step for step in data.provenance["steps"])
    # Top-left corners of 16-px windows (2..110 step 9) became centres: corner + 8.
    with np.load(path, allow_pickle=False) as raw:
        scan, probe_modes, psi, intensities = raw["scan"], raw["probe"], raw["psi"], raw["data"]
    np.testing.assert_array_equal(data.positions_px, scan.astype(np.float64) + 8.0)
    assert data.positions_px.min() == 10.0 and data.positions_px.max() == 118.0
    assert data.object_gt is not None
    np.testing.assert_array_equal(data.object_gt, psi[0])
    assert data.probe is not None and data.probe.shape == (32, 32)
    np.testing.assert_array_equal(data.probe[8:24, 8:24], probe_modes[0, 0, 0])
    outside = data.probe.copy()
    outside[8:24, 8:24] = 0
    assert not outside.any()
    np.testing.assert_allclose(
        data.amplitudes**2, np.fft.fftshift(intensities, axes=(1, 2)), rtol=1e-6
    )
    # Our conventions reproduce the data: a patch of 16 px centred at (y, x) starts at
    # (y - 8, x - 8); the exit wave of both modes is zero-padded to 32; zero frequency at 16.
    for i in (0, 84, 168):
        y, x = (int(v) for v in data.positions_px[i])
        patch = data.object_gt[y - 8 : y + 8, x - 8 : x + 8]
        total = np.zeros((32, 32))
        for mode in probe_modes[0, 0]:
            wave = np.zeros((32, 32), np.complex128)
            wave[8:24, 8:24] = mode * patch
            total += np.abs(np.fft.fftshift(np.fft.fft2(wave, norm="ortho"))) ** 2
        np.testing.assert_allclose(data.amplitudes[i] ** 2, total, rtol=1e-4, atol=1e-5)


def test_petra_cxi_opens_as_near_field_with_its_own_geometry() -> None:
    path = third_party(PETRA)
    data = read_data(path, focus_distance_m=3.65e-3)
    assert data.amplitudes.shape == (200, 100, 100)
    propagation = data.provenance["propagation"]
    assert propagation["regime"] == "near-field"
    assert propagation["source"].startswith("detected")
    assert propagation["magnification"] == pytest.approx(307.85, abs=0.01)
    assert propagation["effective_distance_m"] == pytest.approx(3.638e-3, rel=1e-3)
    assert data.pixel_size_m == pytest.approx(178.66e-9, rel=1e-4)
    assert data.energy_ev == pytest.approx(12658.0, abs=1.0)
    assert data.distance_m == pytest.approx(1.12)
    assert data.detector_pixel_m == pytest.approx(55e-6)
    assert data.bad_pixels is not None and int(data.bad_pixels.sum()) == 5
    with __import__("h5py").File(path, "r") as handle:
        t = handle["entry_1/sample_1/geometry_1/translation"][()].astype(np.float64)
    # row = +y / pixel, column = +x / pixel, minimum shifted to N // 2
    span = np.ptp(data.positions_px, axis=0)
    np.testing.assert_allclose(span, [106.6, 112.8], atol=0.2)
    expected = np.stack([t[:, 1], t[:, 0]], axis=1) / data.pixel_size_m
    np.testing.assert_allclose(data.positions_px - data.positions_px[0], expected - expected[0])
    assert data.positions_px.min(axis=0).tolist() == pytest.approx([50.0, 50.0])
    # Holograms are not re-centred.
    assert not any("fftshift" in step for step in data.provenance["steps"])


def test_petra_far_field_preparation_is_refused() -> None:
    path = third_party(PETRA)
    data = read_data(path)
    assert any("parallel beam" in w for w in data.provenance["warnings"])
    with pytest.raises(DataError, match="near-field") as info:
        prepare(data, 64)
    assert str(path) in str(info.value) and "--algorithm rpie" in str(info.value)
    forced = prepare(data, 64, allow_near_field=True)
    assert forced.N == 64 and "allow_near_field" in forced.provenance["steps"][-2]
    declared = read_data(path, propagation="far-field")
    assert declared.provenance["propagation"]["source"] == "declared"
    assert declared.pixel_size_m == pytest.approx(9.795e-11 * 1.12 / (100 * 55e-6), rel=1e-3)
    assert prepare(declared, 64).N == 64
    summary = inspect_file(path)
    assert summary["patterns"] == 200 and summary["mask"] == 5
    assert any("near-field" in w for w in summary["warnings"])


def test_aps_512_frames_crop_and_bin_to_128() -> None:
    path = third_party(APS)
    data = read_data(path, profile=PROFILES / "test235.json")
    assert data.amplitudes.shape == (20, 512, 512)
    pixel = 12.398419843320026e-7 / 8800 * 2.2 / (512 * 75e-6)
    assert data.pixel_size_m == pytest.approx(pixel, rel=1e-12)
    assert data.pixel_size_m == pytest.approx(8.07e-9, rel=1e-3)
    with np.load(path, allow_pickle=False) as raw:
        position_m, counts = raw["position"], raw["reciprocal"]
    relative = (position_m - position_m[0]) / pixel
    np.testing.assert_allclose(data.positions_px - data.positions_px[0], relative, atol=1e-9)
    mean = np.mean(data.amplitudes.astype(np.float64) ** 2, axis=0)
    np.testing.assert_allclose(centroid(mean), [255.0, 258.4], atol=0.1)  # centred as stored
    total = counts.sum(axis=(1, 2), dtype=np.float64)

    crop = prepare(data, 128)
    assert crop.amplitudes.shape == (20, 128, 128)
    assert crop.pixel_size_m == pytest.approx(4 * pixel, rel=1e-12)
    assert crop.pixel_size_m == pytest.approx(32.29e-9, rel=1e-3)
    np.testing.assert_allclose(crop.positions_px, data.positions_px / 4)
    np.testing.assert_array_equal(crop.amplitudes, data.amplitudes[:, 192:320, 192:320])
    assert np.all(crop.amplitudes.astype(np.float64).__pow__(2).sum(axis=(1, 2)) < total)

    binned = prepare(data, 128, mode="bin")
    assert binned.pixel_size_m == pytest.approx(pixel, rel=1e-12)
    assert binned.detector_pixel_m == pytest.approx(300e-6)
    np.testing.assert_array_equal(binned.positions_px, data.positions_px)
    np.testing.assert_allclose(
        (binned.amplitudes.astype(np.float64) ** 2).sum(axis=(1, 2)), total, rtol=1e-5
    )
    np.testing.assert_allclose(
        binned.amplitudes[0, 10, 20] ** 2, counts[0, 40:44, 80:84].sum(), rtol=1e-5
    )
    binned_mean = np.mean(binned.amplitudes.astype(np.float64) ** 2, axis=0)
    np.testing.assert_allclose(centroid(binned_mean), (centroid(mean) - 1.5) / 4, atol=0.02)
    assert "binned 4x4" in binned.provenance["steps"][-1]
