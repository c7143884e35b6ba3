"""Run by the ptychodus virtual environment (not by pytest): load a product with ptychodus,
write what it read to an NPZ and a JSON file, and save the product again with ptychodus.

    python ptychodus_roundtrip.py PRODUCT.h5 OUT_FOLDER

Only ptychodus and its own dependencies are imported here; the test compares the files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from ptychodus.api.io import load_product, save_product


def main(product_path: str, out: str) -> None:
    folder = Path(out)
    product = load_product(Path(product_path))
    geometry = product.object_.get_geometry()
    positions = product.probe_positions
    x_px = geometry.map_probe_positions_to_object_x_px(positions)
    y_px = geometry.map_probe_positions_to_object_y_px(positions)
    np.savez(
        folder / "read_by_ptychodus.npz",
        object=product.object_.get_array(),
        probe=product.probes.get_array(),
        positions_px=np.stack([np.asarray(y_px), np.asarray(x_px)], axis=1),
    )
    meta = product.metadata
    summary = {
        "name": meta.name,
        "photon_energy_eV": float(meta.photon_energy_eV),
        "detector_distance_m": float(meta.detector_distance_m),
        "pixel_width_m": float(geometry.pixel_width_m),
        "pixel_height_m": float(geometry.pixel_height_m),
        "losses": [float(loss.value) for loss in product.losses],
    }
    (folder / "read_by_ptychodus.json").write_text(json.dumps(summary), encoding="utf-8")
    save_product(folder / "saved_by_ptychodus.h5", product)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
