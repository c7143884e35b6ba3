"""The bundled sample data: a deterministic simulation recipe, generated once into a cache.

The recipe (``resources/sample_data.json``) names the arguments of
:func:`ptycho_engine.simulate.simulate_dataset`. The file is written atomically with
:func:`ptycho_engine.io.write_pinn_npz` under a name that includes a hash of the recipe, so a
changed recipe never reuses a stale file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ptycho_engine.errors import DataError

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
RECIPE_PATH = RESOURCES / "sample_data.json"
CACHE_FOLDER_NAME = "ptycho-explorer"
ALLOWED_ARGUMENTS = {
    "N",
    "n_positions",
    "photons",
    "object_kind",
    "scan",
    "probe_kind",
    "seed",
    "step_px",
}


def read_recipe(path: Path = RECIPE_PATH) -> dict[str, Any]:
    """The simulation arguments of a recipe file, checked against the simulator's names."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: cannot read the sample recipe: {exc}") from exc
    arguments = raw.get("arguments") if isinstance(raw, dict) else None
    if not isinstance(arguments, dict):
        raise DataError(f"{path}: the recipe needs an 'arguments' object")
    unknown = sorted(set(arguments) - ALLOWED_ARGUMENTS)
    if unknown:
        raise DataError(f"{path}: unknown simulation arguments {unknown}")
    return dict(arguments)


def default_cache_dir() -> Path:
    """QStandardPaths' cache location when Qt gives one, else ``~/.cache/ptycho-explorer``."""
    from PySide6.QtCore import QStandardPaths

    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.CacheLocation)
    if location:
        return Path(location)
    return Path.home() / ".cache" / CACHE_FOLDER_NAME


def sample_file_name(arguments: dict[str, Any]) -> str:
    """``sample-<hash>.npz``, the hash over the recipe's canonical JSON."""
    digest = hashlib.sha256(json.dumps(arguments, sort_keys=True).encode()).hexdigest()[:12]
    return f"sample-{digest}.npz"


def ensure_sample_data(recipe_path: Path, cache_dir: Path) -> Path:
    """The cached sample file, simulated and written on first use.

    Parameters
    ----------
    recipe_path : Path
        JSON recipe.
    cache_dir : Path
        Folder of the cache (created when missing).

    Returns
    -------
    Path
        The PINN-style NPZ file.
    """
    from ptycho_engine.io import write_pinn_npz
    from ptycho_engine.simulate import simulate_dataset

    arguments = read_recipe(recipe_path)
    target = Path(cache_dir) / sample_file_name(arguments)
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    return write_pinn_npz(target, simulate_dataset(**arguments))
