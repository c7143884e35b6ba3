"""Interoperability with ptychodus's own product reader and writer.

ptychodus lives in its own virtual environment (``.venv-interop``, from
``requirements/interop.txt``), which ``make test`` builds and names in ``PTYCHODUS_PYTHON``; the
script ``interop/ptychodus_roundtrip.py`` runs there. The product is the one ``ptycho-engine
train`` writes for a file without geometry: the case where the pixel size is unknown.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ptycho_engine.cli import main as engine_main
from ptycho_engine.io import read_product, write_pinn_npz
from ptycho_engine.simulate import simulate_dataset

SCRIPT = Path(__file__).resolve().parent / "interop" / "ptychodus_roundtrip.py"


def _ptychodus_python() -> str:
    python = os.environ.get("PTYCHODUS_PYTHON", "")
    if not python:
        pytest.skip(
            "PTYCHODUS_PYTHON is not set: run the suite with `make test`, which builds "
            ".venv-interop from requirements/interop.txt"
        )
    if not Path(python).is_file():
        pytest.fail(f"PTYCHODUS_PYTHON={python} does not exist: run `make test` again")
    return python


def test_ptychodus_reads_the_product_of_train_and_we_read_its_save(tmp_path: Path) -> None:
    python = _ptychodus_python()
    data = simulate_dataset(N=32, n_positions=40, photons=1e5, seed=5)
    assert data.pixel_size_m is None and data.energy_ev is None  # a file without geometry
    source = tmp_path / "no_geometry.npz"
    write_pinn_npz(source, data)
    run = tmp_path / "run"
    status = engine_main(
        [
            "train",
            str(source),
            "--N",
            "32",
            "--gridsize",
            "1",
            "--epochs",
            "2",
            "--n-filters-scale",
            "1",
            "--out",
            str(run),
        ]
    )
    assert status == 0
    ours = read_product(run / "reconstruction.h5")

    done = subprocess.run(
        [python, str(SCRIPT), str(run / "reconstruction.h5"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((tmp_path / "read_by_ptychodus.json").read_text(encoding="utf-8"))
    with np.load(tmp_path / "read_by_ptychodus.npz", allow_pickle=False) as seen:
        np.testing.assert_array_equal(seen["object"], ours.object)
        np.testing.assert_array_equal(seen["probe"].reshape(ours.probe.shape), ours.probe)
        np.testing.assert_allclose(seen["positions_px"], ours.positions_px, atol=1e-9)
    assert summary["pixel_width_m"] == pytest.approx(ours.object_pixel_m[1])
    assert summary["pixel_height_m"] == pytest.approx(ours.object_pixel_m[0])
    history = json.loads((run / "run.json").read_text(encoding="utf-8"))["history"]
    assert summary["losses"] == pytest.approx([h["loss"] for h in history])

    theirs = read_product(tmp_path / "saved_by_ptychodus.h5")
    np.testing.assert_array_equal(theirs.object, ours.object)
    np.testing.assert_array_equal(theirs.probe, ours.probe)
    np.testing.assert_allclose(theirs.positions_px, ours.positions_px, atol=1e-9)
    assert theirs.object_pixel_m == pytest.approx(ours.object_pixel_m)
    np.testing.assert_allclose(theirs.loss_values, ours.loss_values)
