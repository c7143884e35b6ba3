"""Run folders: what a finished training or reconstruction leaves on disk.

A run folder holds

* ``reconstruction.npz``: ``object`` (H, W) complex64, ``valid`` (H, W) bool, ``origin_px``
  (2,) float64 (``(y, x)`` of canvas pixel (0, 0) in the frame of the scan positions) and
  ``pixel_size_m`` (NaN when unknown). The interim result format until the ptychodus product
  writer lands; it is written with ``np.savez`` and read back with ``allow_pickle=False``.
* ``amplitude.png`` and ``phase.png``.
* ``model.weights.h5``: every weight of the model (Keras format).
* ``run.json``: configuration, timings, metrics, input sha256, versions, history.

Every file is written to a temporary name in the folder, then renamed.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.data import StitchSnapshot
from ptycho_engine.errors import DataError

RUN_JSON = "run.json"
WEIGHTS = "model.weights.h5"
RECONSTRUCTION = "reconstruction.npz"


def atomic_write(path: Path, write: Callable[[Path], object], suffix: str = "") -> Path:
    """Create ``path``'s folder if needed, then write atomically (temporary file, rename)."""
    from ptycho_engine.io._common import atomic_write as write_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, write, suffix=suffix)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        f = float(value)
        return f if math.isfinite(f) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write JSON atomically (non-finite floats become null)."""
    text = json.dumps(_json_safe(payload), indent=2, sort_keys=False)
    return atomic_write(path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))


def read_json(path: Path) -> dict[str, Any]:
    """Read a run's JSON file, with a clear error when it is missing or malformed."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{path}: not found (is this a run folder?)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise DataError(f"{path}: expected a JSON object at the top level")
    return payload


def versions() -> dict[str, str]:
    """Versions of Python and the packages that shape a result."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for name in (
        "ptycho-explorer",
        "tensorflow",
        "keras",
        "numpy",
        "scipy",
        "scikit-image",
        "h5py",
    ):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            continue
    return out


def write_reconstruction(folder: Path, snap: StitchSnapshot, pixel_size_m: float | None) -> Path:
    """Write ``reconstruction.npz`` (see the module docstring)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                object=snap.object.astype(np.complex64),
                valid=snap.valid.astype(bool),
                origin_px=np.asarray(snap.origin_px, np.float64),
                pixel_size_m=np.float64(np.nan if pixel_size_m is None else pixel_size_m),
            )

    return atomic_write(folder / RECONSTRUCTION, write)


def read_reconstruction(path: Path) -> StitchSnapshot:
    """Read a ``reconstruction.npz`` written by :func:`write_reconstruction`."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            obj = archive["object"]
            valid = archive["valid"]
            origin = archive["origin_px"]
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a reconstruction file: {exc}") from exc
    return StitchSnapshot(obj, valid, 1, 1, (float(origin[0]), float(origin[1])))


def write_images(folder: Path, snap: StitchSnapshot, title: str = "") -> list[Path]:
    """Amplitude and phase PNGs with colour bars (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    amplitude = np.where(snap.valid, np.abs(snap.object), np.nan)
    phase = np.where(snap.valid, np.angle(snap.object), np.nan)
    written = []
    for name, image, cmap, label in (
        ("amplitude", amplitude, "gray", "amplitude"),
        ("phase", phase, "twilight", "phase (rad)"),
    ):
        fig = Figure(figsize=(6, 5), dpi=100)
        ax = fig.add_subplot()
        shown = ax.imshow(image, cmap=cmap, interpolation="nearest")
        ax.set_title(f"{title} {name}".strip())
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")
        fig.colorbar(shown, ax=ax, label=label)
        target = folder / f"{name}.png"

        def save(tmp: Path, figure: Figure = fig) -> None:
            figure.savefig(tmp, format="png")

        atomic_write(target, save)
        written.append(target)
    return written
