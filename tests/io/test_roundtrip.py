"""Round trips of simulated data through the NPZ, CXI and product writers and readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ptycho_engine.data import DiffractionData
from ptycho_engine.errors import DataError
from ptycho_engine.io import (
    detect_format,
    inspect_file,
    read_cxi_image,
    read_data,
    read_probe,
    read_product,
    write_cxi,
    write_pinn_npz,
    write_png,
    write_product,
    write_tiff,
)
from ptycho_engine.io.files import sha256_file
from tests.io.conftest import simulated


def test_npz_round_trip(sim: DiffractionData, tmp_path: Path) -> None:
    path = write_pinn_npz(tmp_path / "sim.npz", sim)
    back = read_data(path)
    assert back.provenance["format"] == "pinn-npz"
    assert back.provenance["sha256"] == sha256_file(path)
    assert back.provenance["steps"] == []
    np.testing.assert_array_equal(back.amplitudes, sim.amplitudes)
    np.testing.assert_array_equal(back.positions_px, sim.positions_px)
    assert back.probe is not None and sim.probe is not None
    np.testing.assert_array_equal(back.probe, sim.probe)


def test_cxi_round_trip(sim: DiffractionData, tmp_path: Path) -> None:
    path = write_cxi(tmp_path / "sim.cxi", sim, compression="gzip")
    assert detect_format(path) == "cxi"
    calls: list[tuple[int, int]] = []
    back = read_data(path, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (30, 30)
    assert back.provenance["format"] == "cxi"
    assert back.provenance["propagation"]["regime"] == "far-field"
    # float32 counts then sqrt: within one or two float32 ulps of the amplitudes
    np.testing.assert_allclose(back.amplitudes, sim.amplitudes, rtol=3e-7, atol=1e-6)
    np.testing.assert_allclose(back.positions_px, sim.positions_px, rtol=1e-12, atol=1e-9)
    assert back.pixel_size_m == pytest.approx(sim.pixel_size_m, rel=1e-12)
    assert back.energy_ev == pytest.approx(8800.0, rel=1e-12)
    assert back.distance_m == 2.0 and back.detector_pixel_m == 75e-6
    assert back.probe is not None and sim.probe is not None
    np.testing.assert_array_equal(back.probe, sim.probe)
    assert back.object_gt is not None and sim.object_gt is not None
    np.testing.assert_array_equal(back.object_gt, sim.object_gt)
    image, pixel = read_cxi_image(path)
    assert image.shape == sim.object_gt.shape and pixel == pytest.approx(sim.pixel_size_m)


def test_product_round_trip(sim: DiffractionData, tmp_path: Path) -> None:
    assert sim.object_gt is not None and sim.probe is not None and sim.pixel_size_m
    path = write_product(
        tmp_path / "product.h5",
        sim.object_gt,
        sim.probe,
        sim.positions_px,
        sim.pixel_size_m,
        name="sim",
        detector_object_distance_m=2.0,
        probe_energy_eV=8800.0,
        object_center_m=(1e-6, -2e-6),
        loss_epochs=[1, 2],
        loss_values=[0.5, 0.25],
    )
    assert detect_format(path) == "ptychodus-product"
    product = read_product(path)
    np.testing.assert_array_equal(product.object[0], sim.object_gt)
    np.testing.assert_array_equal(product.probe[0], sim.probe)
    np.testing.assert_allclose(product.positions_px, sim.positions_px, atol=1e-9)
    assert product.object_pixel_m == (sim.pixel_size_m, sim.pixel_size_m)
    assert product.metadata["probe_energy_eV"] == 8800.0 and product.metadata["name"] == "sim"
    np.testing.assert_array_equal(product.loss_values, [0.5, 0.25])
    # A product is no training data, but it is a probe source.
    with pytest.raises(DataError, match="no diffraction patterns") as info:
        read_data(path)
    assert str(path) in str(info.value)
    probe = read_probe(path, sim.N, pixel_size_m=sim.pixel_size_m)
    np.testing.assert_array_equal(probe.probe, sim.probe)
    summary = inspect_file(path)
    assert summary["patterns"] == 0 and summary["object"] == [1, *sim.object_gt.shape]


def test_product_positions_follow_the_ptychodus_centre_convention(tmp_path: Path) -> None:
    obj = np.ones((5, 7), np.complex64)
    path = write_product(tmp_path / "p.h5", obj, np.ones((4, 4)), np.array([[2.0, 3.0]]), 1e-8)
    import h5py

    with h5py.File(path, "r") as handle:
        # centre pixel ((W-1)/2, (H-1)/2) = (3, 2) sits at the object centre (0, 0)
        assert handle["probe_position_x_m"][0] == pytest.approx(0.0)
        assert handle["probe_position_y_m"][0] == pytest.approx(0.0)
        assert handle.attrs["probe_energy_eV"] == 0.0
        assert "mass_attenuation_m2_kg" in handle.attrs
        assert handle["object"].shape == (1, 5, 7) and handle["probe"].shape == (1, 4, 4)


def test_writers_never_overwrite_their_input(tmp_path: Path) -> None:
    data = simulated(32)
    source = write_cxi(tmp_path / "in.cxi", data)
    loaded = read_data(source)
    before = sha256_file(source)
    with pytest.raises(DataError, match="overwrite"):
        write_cxi(source, loaded)
    with pytest.raises(DataError, match="overwrite"):
        write_pinn_npz(source, loaded)
    assert sha256_file(source) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.cxi"]


def test_images(tmp_path: Path) -> None:
    import tifffile

    data = simulated(32)
    assert data.object_gt is not None
    amp = write_tiff(tmp_path / "amp.tif", data.object_gt, "amplitude", pixel_size_m=1e-8)
    phase = write_tiff(tmp_path / "phase.tif", data.object_gt, "phase")
    np.testing.assert_array_equal(tifffile.imread(amp), np.abs(data.object_gt))
    back = tifffile.imread(phase)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, np.angle(data.object_gt), atol=1e-6)
    png = write_png(tmp_path / "amp.png", data.object_gt, pixel_size_m=1e-8, title="sim")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["amp.png", "amp.tif", "phase.tif"]


def test_scale_bar_length() -> None:
    from ptycho_engine.io.images import format_length, nice_length

    assert nice_length(3.7e-7) == pytest.approx(2e-7)
    assert nice_length(6e-6) == pytest.approx(5e-6)
    assert format_length(2e-7) == "200 nm"


def test_cxi_with_an_hdf5plugin_filter_opens(tmp_path: Path) -> None:
    hdf5plugin = pytest.importorskip("hdf5plugin", reason="hdf5plugin is not installed")
    import h5py

    data = simulated(32)
    path = write_cxi(tmp_path / "plain.cxi", data)
    packed = tmp_path / "lz4.cxi"
    with h5py.File(path, "r") as src, h5py.File(packed, "w") as dst:
        for key in src:
            if key != "entry_1":
                src.copy(key, dst)
        src.copy("entry_1", dst)
        counts = dst["entry_1/instrument_1/detector_1/data"][()]
        del dst["entry_1/instrument_1/detector_1/data"]
        dst.create_dataset("entry_1/instrument_1/detector_1/data", data=counts, **hdf5plugin.LZ4())
    back = read_data(packed)
    np.testing.assert_allclose(back.amplitudes, data.amplitudes, rtol=3e-7, atol=1e-6)
