"""Tests of ptycho_engine.simulate: phantoms, probes, scans and the noisy forward model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage

from ptycho_engine import simulate as sim
from ptycho_engine.errors import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[2]


def reference_intensity(obj: np.ndarray, probe: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Noise-free |fftshift(fft2(P * O))|**2 / N**2 with bilinear patches, in float64."""
    n = probe.shape[0]
    grid = np.arange(n) - n // 2
    out = []
    for y, x in positions:
        coords = np.stack(np.meshgrid(y + grid, x + grid, indexing="ij"))
        patch = scipy.ndimage.map_coordinates(
            obj.real.astype(np.float64), coords, order=1
        ) + 1j * scipy.ndimage.map_coordinates(obj.imag.astype(np.float64), coords, order=1)
        psi = probe.astype(np.complex128) * patch
        out.append(np.abs(np.fft.fftshift(np.fft.fft2(psi))) ** 2 / n**2)
    return np.array(out)


@pytest.fixture(scope="module")
def small_case() -> tuple[np.ndarray, np.ndarray]:
    obj = sim.make_object("lines", (80, 90), seed=5)
    probe = sim.make_probe("disk", 32)
    return obj, probe


# ---------------------------------------------------------------------------- reproducibility


def test_same_seed_gives_bit_identical_data() -> None:
    a = sim.simulate_dataset(N=32, n_positions=40, photons=1e5, seed=3)
    b = sim.simulate_dataset(N=32, n_positions=40, photons=1e5, seed=3)
    assert np.array_equal(a.amplitudes, b.amplitudes)
    assert np.array_equal(a.positions_px, b.positions_px)
    assert a.object_gt is not None and b.object_gt is not None
    assert np.array_equal(a.object_gt, b.object_gt)
    assert a.probe is not None and b.probe is not None
    assert np.array_equal(a.probe, b.probe)
    assert a.provenance == b.provenance


def test_different_seed_differs() -> None:
    a = sim.simulate_dataset(N=32, n_positions=40, photons=1e5, seed=3)
    b = sim.simulate_dataset(N=32, n_positions=40, photons=1e5, seed=4)
    assert a.object_gt is not None and b.object_gt is not None
    assert a.object_gt.shape == b.object_gt.shape  # same scan (spiral), same object size
    assert not np.array_equal(a.object_gt, b.object_gt)
    assert not np.array_equal(a.amplitudes, b.amplitudes)


def test_dataset_fields_and_recipe() -> None:
    d = sim.simulate_dataset(N=32, n_positions=30, photons=1e4, scan="raster", seed=2)
    assert d.amplitudes.shape == (30, 32, 32) and d.amplitudes.dtype == np.float32
    assert d.positions_px.shape == (30, 2) and d.positions_px.dtype == np.float64
    assert d.probe is not None and d.probe.shape == (32, 32) and d.probe.dtype == np.complex64
    assert d.object_gt is not None and d.object_gt.dtype == np.complex64
    h, w = d.object_gt.shape
    extent = np.ptp(d.positions_px, axis=0)
    assert (h, w) == tuple(int(np.ceil(e)) + 32 + 16 for e in extent)
    # Every patch lies inside the object with the 8 px margin.
    assert d.positions_px.min() >= 16 + 8 - 1e-9
    assert np.all(d.positions_px.max(axis=0) <= np.array([h, w]) - 16 - 8 + 1e-9)
    assert d.provenance["format"] == "simulation"
    assert d.provenance["recipe"] == {
        "N": 32,
        "n_positions": 30,
        "photons": 1e4,
        "object_kind": "lines",
        "scan": "raster",
        "probe_kind": "disk",
        "seed": 2,
        "step_px": 4.0,
    }
    assert np.all(d.amplitudes >= 0)
    counts = d.amplitudes.astype(np.float64) ** 2
    assert np.allclose(counts, np.round(counts), atol=1e-3)  # amplitudes are sqrt(integers)


def test_chunking_does_not_change_the_result(
    small_case: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    obj, probe = small_case
    pos = sim.make_scan("random", 23, 4.0, seed=1) + np.array([40.0, 45.0])
    whole = sim.simulate(obj, probe, pos, 1e5, seed=9)
    monkeypatch.setattr(sim, "CHUNK_PIXELS", 32 * 32 * 5)  # chunks of 5 patterns
    chunked = sim.simulate(obj, probe, pos, 1e5, seed=9)
    assert np.array_equal(whole, chunked)


# ---------------------------------------------------------------------------- dose and physics


@pytest.mark.parametrize("photons", [1e3, 1e6, 1e9])
def test_mean_counts_match_the_dose(photons: float) -> None:
    d = sim.simulate_dataset(N=32, n_positions=200, photons=photons, seed=11)
    mean_counts = float(np.mean(np.sum(d.amplitudes.astype(np.float64) ** 2, axis=(1, 2))))
    assert mean_counts == pytest.approx(photons, rel=0.01)
    assert d.photons_per_pattern == pytest.approx(photons, rel=0.01)


def test_high_dose_matches_noise_free_forward_model(
    small_case: tuple[np.ndarray, np.ndarray],
) -> None:
    obj, probe = small_case
    pos = np.array([[16, 16], [40, 50], [63, 73], [30, 60]], dtype=np.float64)
    amp = sim.simulate(obj, probe, pos, 1e12, seed=0)
    measured = amp.astype(np.float64) ** 2
    ref = reference_intensity(obj, probe, pos)
    ref *= 1e12 / ref.sum(axis=(1, 2)).mean()
    err = np.linalg.norm(measured - ref) / np.linalg.norm(ref)
    assert err < 1e-3
    # Centred: the brightest pixel of a smooth-phase exit wave sits near the centre.
    peak = np.unravel_index(np.argmax(measured[0]), measured[0].shape)
    assert abs(peak[0] - 16) <= 3 and abs(peak[1] - 16) <= 3


def test_fractional_positions_sample_bilinearly(
    small_case: tuple[np.ndarray, np.ndarray],
) -> None:
    obj, probe = small_case
    pos = np.array([[20.5, 30.25], [47.75, 58.1]])
    amp = sim.simulate(obj, probe, pos, 1e12, seed=1)
    ref = reference_intensity(obj, probe, pos)
    ref *= 1e12 / ref.sum(axis=(1, 2)).mean()
    err = np.linalg.norm(amp.astype(np.float64) ** 2 - ref) / np.linalg.norm(ref)
    assert err < 1e-3
    # A wrong shift sign would give a clearly different pattern.
    wrong = reference_intensity(obj, probe, np.floor(pos) - (pos - np.floor(pos)))
    wrong *= 1e12 / wrong.sum(axis=(1, 2)).mean()
    assert np.linalg.norm(amp.astype(np.float64) ** 2 - wrong) / np.linalg.norm(wrong) > 1e-2


def test_pattern_totals_follow_exit_wave_energy(small_case: tuple[np.ndarray, np.ndarray]) -> None:
    """Parseval per pattern: the dose is shared between patterns as the exit-wave energy."""
    obj, probe = small_case
    pos = np.array([[16, 16], [40, 50], [63, 73], [50, 20], [25, 70]], dtype=np.float64)
    amp = sim.simulate(obj, probe, pos, 1e12, seed=2)
    totals = np.sum(amp.astype(np.float64) ** 2, axis=(1, 2))
    psi_energy = np.array(
        [
            np.sum(np.abs(probe * obj[int(y) - 16 : int(y) + 16, int(x) - 16 : int(x) + 16]) ** 2)
            for y, x in pos
        ]
    )
    expected = 1e12 * psi_energy / psi_energy.mean()
    np.testing.assert_allclose(totals, expected, rtol=1e-4)


def test_positions_outside_the_object_are_refused(
    small_case: tuple[np.ndarray, np.ndarray],
) -> None:
    obj, probe = small_case
    h, w = obj.shape
    ok = np.array([[16.0, 16.0], [h - 16.0, w - 16.0]])
    assert sim.simulate(obj, probe, ok, 1e4, seed=0).shape == (2, 32, 32)
    for bad in ([15.5, 40.0], [40.0, w - 15.5], [h - 16.0 + 0.01, 40.0]):
        with pytest.raises(DataError, match="outside"):
            sim.simulate(obj, probe, np.array([[40.0, 40.0], bad]), 1e4, seed=0)
    with pytest.raises(ConfigError, match="photons_per_pattern"):
        sim.simulate(obj, probe, ok, -1.0, seed=0)


def test_a_value_that_is_not_finite_is_named_where_it_is(
    small_case: tuple[np.ndarray, np.ndarray],
) -> None:
    obj, probe = small_case
    ok = np.array([[16.0, 16.0], [40.0, 40.0]])
    bad_probe = probe.copy()
    bad_probe[3, 4] = np.nan
    with pytest.raises(DataError, match=r"^probe: expected finite values, found 1 NaN"):
        sim.simulate(obj, bad_probe, ok, 1e4, seed=0)
    bad_obj = obj.copy()
    bad_obj[:2, 0] = np.inf
    with pytest.raises(DataError, match=r"^object: expected finite values, found 2 NaN"):
        sim.simulate(bad_obj, probe, ok, 1e4, seed=0)


# ---------------------------------------------------------------------------- probes


@pytest.mark.parametrize("kind", ["disk", "gaussian"])
@pytest.mark.parametrize("n", [32, 64, 128, 256])
def test_probe_is_confined_to_the_support(kind: str, n: int) -> None:
    probe = sim.make_probe(kind, n)
    assert probe.shape == (n, n) and probe.dtype == np.complex64
    amp = np.abs(probe)
    yy, xx = np.indices((n, n)) - n // 2
    r = np.hypot(yy, xx)
    assert amp[r > n / 4 + 4].max() < 1e-3 * amp.max()
    assert amp[n // 2, n // 2] == pytest.approx(amp.max(), rel=1e-3)


def test_disk_probe_has_curved_phase() -> None:
    n = 64
    probe = sim.make_probe("disk", n)
    phase_centre = np.angle(probe[n // 2, n // 2])
    phase_edge = np.angle(probe[n // 2, n // 2 + 8])  # r = N/8: alpha * 0.25 = 0.5 rad
    assert phase_centre == pytest.approx(0.0, abs=1e-6)
    assert phase_edge == pytest.approx(0.5, abs=1e-5)
    assert np.abs(probe[n // 2, n // 2 + 8]) == pytest.approx(1.0, abs=1e-3)
    gauss = sim.make_probe("gaussian", n)
    assert np.allclose(np.angle(gauss), 0.0)


# ---------------------------------------------------------------------------- objects


@pytest.mark.parametrize("kind", ["lines", "siemens"])
def test_object_ranges(kind: str) -> None:
    obj = sim.make_object(kind, (96, 120), seed=7)
    assert obj.shape == (96, 120) and obj.dtype == np.complex64
    amp, phase = np.abs(obj), np.angle(obj)
    assert amp.min() >= 0.5 - 1e-6 and amp.max() <= 1 + 1e-6
    assert phase.min() >= -1e-6 and phase.max() <= np.pi / 2 + 1e-6
    assert amp.max() == pytest.approx(1.0, abs=1e-6)  # background present
    level = (1 - amp) / 0.5
    np.testing.assert_allclose(phase, (np.pi / 2) * level, atol=1e-5)


def test_lines_cover_about_half_of_the_canvas() -> None:
    for seed in range(3):
        obj = sim.make_object("lines", (160, 200), seed=seed)
        level = (1 - np.abs(obj)) / 0.5
        assert 0.40 <= np.mean(level > 0.1) <= 0.55
        assert level.max() == pytest.approx(1.0, abs=1e-5)


def test_siemens_star_has_36_spokes() -> None:
    obj = sim.make_object("siemens", (128, 128), seed=0)
    level = (1 - np.abs(obj)) / 0.5
    angles = np.linspace(0, 2 * np.pi, 2000, endpoint=False)
    ring = scipy.ndimage.map_coordinates(
        level, [63.5 + 45 * np.sin(angles), 63.5 + 45 * np.cos(angles)], order=1
    )
    crossings = np.count_nonzero(np.diff(np.append(ring, ring[0]) > 0.5))
    assert crossings == 72
    assert level[0, 0] == pytest.approx(0.0, abs=1e-6)  # outside the star: background


def test_object_from_files(tmp_path: Path) -> None:
    import skimage.io
    import tifffile

    ramp = np.tile(np.linspace(0.0, 5.0, 40), (30, 1))
    np.save(tmp_path / "ramp.npy", ramp)
    obj = sim.make_object(f"file:{tmp_path / 'ramp.npy'}", (60, 80), seed=0)
    assert obj.shape == (60, 80) and obj.dtype == np.complex64
    amp = np.abs(obj)
    assert amp[:, 0].min() == pytest.approx(1.0, abs=1e-6)
    assert amp[:, -1].max() == pytest.approx(0.5, abs=1e-6)
    assert np.all(np.diff(amp[10]) <= 1e-6)

    cplx = (np.exp(1j * ramp) * 0.8).astype(np.complex64)
    np.save(tmp_path / "c.npy", cplx)
    same = sim.make_object(f"file:{tmp_path / 'c.npy'}", (30, 40), seed=0)
    np.testing.assert_allclose(same, cplx, atol=1e-6)

    img = (np.tile(np.arange(64), (32, 1)) * 4).astype(np.uint8)
    skimage.io.imsave(tmp_path / "img.png", img, check_contrast=False)
    tifffile.imwrite(tmp_path / "img.tif", img.astype(np.float32))
    for name in ("img.png", "img.tif"):
        o = sim.make_object(f"file:{tmp_path / name}", (32, 64), seed=0)
        np.testing.assert_allclose(np.abs(o[5]), 1 - 0.5 * np.arange(64) / 63, atol=1e-5)

    with pytest.raises(DataError, match=r"missing\.npy"):
        sim.make_object(f"file:{tmp_path / 'missing.npy'}", (32, 32), seed=0)
    with pytest.raises(ConfigError, match=r"\.bmp"):
        sim.make_object(f"file:{tmp_path / 'x.bmp'}", (32, 32), seed=0)


# ---------------------------------------------------------------------------- scans


@pytest.mark.parametrize("kind", ["spiral", "raster"])
@pytest.mark.parametrize("m", [50, 400])
def test_scan_spacing(kind: str, m: int) -> None:
    pos = sim.make_scan(kind, m, 6.0, seed=4)
    assert pos.shape == (m, 2) and pos.dtype == np.float64
    assert np.allclose(pos.mean(axis=0), 0.0, atol=1e-9)
    assert sim.mean_nearest_neighbour_distance(pos) == pytest.approx(6.0, rel=0.25)


def test_raster_is_a_jittered_grid() -> None:
    pos = sim.make_scan("raster", 30, 5.0, seed=1)
    grid = pos - pos.min(axis=0)
    offsets = grid / 5.0 - np.round(grid / 5.0)
    assert np.abs(offsets).max() <= 0.2 + 1e-9  # +-0.1 step per point, relative to the corner
    assert np.abs(offsets).max() > 0.0
    assert len({round(v) for v in (grid[:, 1] / 5.0).tolist()}) == 6  # ceil(sqrt(30)) columns


def test_random_scan_has_raster_density() -> None:
    m, step = 400, 6.0
    pos = sim.make_scan("random", m, step, seed=2)
    assert pos.shape == (m, 2)
    area = np.prod(np.ptp(pos, axis=0))
    assert area / m == pytest.approx(step**2, rel=0.1)
    # Poisson points at density 1/step**2: mean nearest-neighbour distance ~ step / 2.
    assert sim.mean_nearest_neighbour_distance(pos) == pytest.approx(step / 2, rel=0.25)
    assert not np.array_equal(pos, sim.make_scan("random", m, step, seed=3))


# ---------------------------------------------------------------------------- errors, imports


def test_unknown_kinds_raise_config_error() -> None:
    with pytest.raises(ConfigError, match=r"'blobs'.*lines"):
        sim.make_object("blobs", (32, 32), seed=0)
    with pytest.raises(ConfigError, match=r"'airy'.*disk"):
        sim.make_probe("airy", 32)
    with pytest.raises(ConfigError, match=r"'zigzag'.*spiral"):
        sim.make_scan("zigzag", 10, 4.0, seed=0)
    with pytest.raises(ConfigError, match="'nope'"):
        sim.simulate_dataset(N=32, n_positions=5, object_kind="nope")
    with pytest.raises(ConfigError, match="step_px"):
        sim.make_scan("spiral", 10, 0.0, seed=0)


def test_simulate_imports_no_tensorflow() -> None:
    code = "import sys, ptycho_engine.simulate; assert 'tensorflow' not in sys.modules"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
