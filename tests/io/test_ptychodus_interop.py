"""Interoperability with ptychodus's own product reader and writer.

Skipped unless ``ptychodus`` imports (it is not a dependency of this project; it was checked in
a throwaway virtual environment with ``pip install ptychodus`` and ``PYTHONPATH`` set to the
project root).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ptycho_engine.io import read_product, write_product
from tests.io.conftest import simulated

ptychodus_io = pytest.importorskip("ptychodus.api.io", reason="ptychodus is not installed")


def test_ptychodus_reads_our_product_and_we_read_theirs(tmp_path: Path) -> None:
    data = simulated(32)
    assert data.object_gt is not None and data.probe is not None and data.pixel_size_m
    ours = write_product(
        tmp_path / "ours.h5",
        data.object_gt,
        data.probe,
        data.positions_px,
        data.pixel_size_m,
        name="sim",
        detector_object_distance_m=2.0,
        probe_energy_eV=8800.0,
        object_center_m=(3e-7, -5e-7),
        loss_epochs=[1, 2, 3],
        loss_values=[3.0, 2.0, 1.0],
    )
    product = ptychodus_io.load_product(ours)
    assert product.metadata.name == "sim"
    assert product.metadata.photon_energy_eV == pytest.approx(8800.0)
    assert product.metadata.detector_distance_m == pytest.approx(2.0)
    np.testing.assert_array_equal(product.object_.get_array()[0], data.object_gt)
    np.testing.assert_array_equal(product.probes.get_array().reshape(-1, 32, 32)[0], data.probe)
    geometry = product.object_.get_geometry()
    positions = product.probe_positions
    x_px = geometry.map_probe_positions_to_object_x_px(positions)
    y_px = geometry.map_probe_positions_to_object_y_px(positions)
    np.testing.assert_allclose(np.stack([y_px, x_px], axis=1), data.positions_px, atol=1e-9)
    assert [loss.value for loss in product.losses] == [3.0, 2.0, 1.0]

    theirs = tmp_path / "theirs.h5"
    ptychodus_io.save_product(theirs, product)
    back = read_product(theirs)
    np.testing.assert_array_equal(back.object[0], data.object_gt)
    np.testing.assert_array_equal(back.probe[0], data.probe)
    np.testing.assert_allclose(back.positions_px, data.positions_px, atol=1e-9)
    assert back.metadata["probe_energy_eV"] == pytest.approx(8800.0)
    assert back.object_center_m == pytest.approx((3e-7, -5e-7))
    np.testing.assert_array_equal(back.loss_values, [3.0, 2.0, 1.0])
