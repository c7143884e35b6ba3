"""Run folders: the one writer of what a finished run leaves on disk, and its reader.

A run folder holds

* ``reconstruction.npz``: ``object`` (H, W) complex64, ``valid`` (H, W) bool, ``origin_px``
  (2,) float64 (``(y, x)`` of canvas pixel (0, 0) in the frame of the scan positions) and
  ``pixel_size_m`` (NaN when unknown); written with ``np.savez``, read with
  ``allow_pickle=False``;
* ``reconstruction.h5``: the ptychodus product (object, probe, positions, geometry, loss);
* ``amplitude.png`` and ``phase.png``, with the app's colour maps and levels
  (:mod:`ptycho_engine.display`) and a scale bar when the pixel size is known;
* the reconstructor's state (the PINN's ``model.weights.h5``);
* ``run.json`` (written last, so a folder with one is complete): the spec, the input (path,
  sha256, geometry), the reconstructor's details, timings, the scores and their flags, the
  history, the front end's context and the package versions, in the JSON convention of
  :mod:`ptycho_engine.jsonio`.

Every file is written to a temporary name in the folder, then renamed. The command line, the
study runner and the app all write run folders through :func:`write_run_folder`.
"""

from __future__ import annotations

import math
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.data import StitchSnapshot
from ptycho_engine.errors import DataError

RUN_JSON = "run.json"
RECONSTRUCTION = "reconstruction.npz"
PRODUCT = "reconstruction.h5"
IMAGES = {"amplitude": "amplitude.png", "phase": "phase.png"}
#: Version of the run-folder layout and of ``run.json``.
RUN_FORMAT = 2
#: What a product says when the data carried no geometry.
UNKNOWN_PIXEL_COMMENT = "no pixel size known: 1 m stands for 1 object pixel"


def atomic_write(path: Path, write: Callable[[Path], object], suffix: str = "") -> Path:
    """Create ``path``'s folder if needed, then write atomically (temporary file, rename)."""
    from ptycho_engine.io.files import atomic_write as write_atomically

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, write, suffix=suffix)


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


def write_object_product(
    path: Path,
    image: StitchSnapshot,
    probe: np.ndarray,
    positions_px: np.ndarray,
    pixel_size_m: float | None,
    *,
    name: str,
    comments: str = "",
    photons_per_pattern: float = 0.0,
    distance_m: float | None = None,
    energy_ev: float | None = None,
    loss_epochs: Sequence[int] = (),
    loss_values: Sequence[float] = (),
    inputs: Sequence[str] = (),
) -> Path:
    """Write a stitched object as a ptychodus product (the run folder's and the app's export).

    Parameters
    ----------
    path : Path
    image : StitchSnapshot
        The object and its origin in the frame of ``positions_px``.
    probe : ndarray, (N, N) or (K, N, N) complex
        A single mode is written as one ``(N, N)`` probe.
    positions_px : ndarray, (M, 2)
        Scan positions in the frame of the data (the origin is subtracted here).
    pixel_size_m : float or None
        Object pixel size; None when unknown: 1 m then stands for one pixel, and the product's
        comments say so.
    """
    from ptycho_engine.io import write_product

    modes = np.asarray(probe)
    if modes.ndim == 3 and modes.shape[0] == 1:
        modes = modes[0]
    known = pixel_size_m is not None and math.isfinite(pixel_size_m) and pixel_size_m > 0
    pixel = float(pixel_size_m) if known and pixel_size_m is not None else 1.0
    note = "" if known else UNKNOWN_PIXEL_COMMENT
    origin = np.asarray(image.origin_px, np.float64)
    h, w = image.object.shape
    centre_px = (origin[0] + (h - 1) / 2, origin[1] + (w - 1) / 2)
    return write_product(
        path,
        image.object,
        modes,
        np.asarray(positions_px, np.float64) - origin,
        pixel,
        name=name,
        comments="; ".join(c for c in (comments, note) if c),
        detector_object_distance_m=distance_m or 0.0,
        probe_energy_eV=energy_ev or 0.0,
        probe_photon_count=photons_per_pattern,
        object_center_m=(centre_px[0] * pixel, centre_px[1] * pixel),
        loss_epochs=[int(e) for e in loss_epochs],
        loss_values=[float(v) for v in loss_values],
        inputs=[p for p in inputs if p],
    )


def run_record(result: Any, context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``run.json`` payload of a :class:`~ptycho_engine.pipeline.RunResult`.

    ``context`` is what the front end adds (its command, a study setting's id and row...);
    every front end writes the same keys.
    """
    return {
        "format": RUN_FORMAT,
        "reconstructor": result.reconstructor,
        "label": result.spec.label(),
        "state": result.state_name,
        "spec": result.spec.to_dict(),
        "input": dict(result.data_info),
        "details": dict(result.details),
        "steps": int(result.steps),
        "stopped": bool(result.stopped),
        "timings_s": dict(result.timings_s),
        "metrics": None if result.scores is None else result.scores.to_dict(),
        "history": list(result.history),
        "context": dict(context or {}),
        "versions": versions(),
    }


def write_run_folder(
    folder: str | Path,
    result: Any,
    context: dict[str, Any] | None = None,
    *,
    title: str = "",
) -> list[Path]:
    """Write a run's folder (see the module docstring); ``run.json`` last.

    Parameters
    ----------
    folder : path
        Created when missing.
    result : RunResult
        A result of :func:`ptycho_engine.pipeline.run` with a reconstruction.
    context : dict, optional
        The front end's additions to ``run.json`` (JSON primitives).
    title : str
        Title of the PNG images; default the spec's label.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    DataError
        The result holds no reconstruction (a run stopped before its first image).
    """
    from ptycho_engine import jsonio
    from ptycho_engine.io import write_png
    from ptycho_engine.pipeline import get_reconstructor

    out = Path(folder)
    image = result.reconstruction
    if image is None:
        raise DataError(f"{out}: the run made no image (it stopped first): nothing to write")
    out.mkdir(parents=True, exist_ok=True)
    info = result.data_info
    pixel = info.get("pixel_size_m")
    written = [write_reconstruction(out, image, pixel)]
    written.append(
        write_object_product(
            out / PRODUCT,
            image,
            result.probe_modes,
            result.positions_px,
            pixel,
            name=f"ptycho-engine {result.spec.label()}",
            photons_per_pattern=float(info.get("photons_per_pattern") or 0.0),
            distance_m=info.get("distance_m"),
            energy_ev=info.get("energy_ev"),
            loss_epochs=[int(h["epoch"]) for h in result.history],
            loss_values=[float(h["loss"]) for h in result.history],
            inputs=[info["path"]] if info.get("path") else [],
        )
    )
    heading = title or result.spec.label()
    for part, name in IMAGES.items():
        written.append(
            write_png(
                out / name, image.object, part, pixel_size_m=pixel, title=heading, valid=image.valid
            )
        )
    written.extend(get_reconstructor(result.reconstructor).save_state(result.state, out))
    record = run_record(result, context)
    record["files"] = sorted(p.name for p in [*written, out / RUN_JSON])
    written.append(jsonio.write_json(out / RUN_JSON, record))
    return written


def read_run(folder: str | Path) -> tuple[dict[str, Any], StitchSnapshot]:
    """``(run.json, reconstruction)`` of a run folder written by :func:`write_run_folder`.

    Raises
    ------
    DataError
        A missing or malformed ``run.json`` or ``reconstruction.npz``.
    """
    from ptycho_engine import jsonio

    out = Path(folder)
    info = jsonio.read_json(out / RUN_JSON)
    return info, read_reconstruction(out / RECONSTRUCTION)


#: Export formats: suffix -> what is written.
EXPORT_FORMATS = {
    ".h5": "ptychodus product",
    ".tif": "amplitude and phase as float32 TIFF",
    ".png": "amplitude and phase as PNG with the app's colour maps",
}


def export_object(
    path: str | Path,
    image: StitchSnapshot,
    probe: np.ndarray | None,
    positions_px: np.ndarray | None,
    pixel_size_m: float | None,
    *,
    name: str,
    fmt: str | None = None,
    loss_epochs: Sequence[int] = (),
    loss_values: Sequence[float] = (),
    energy_ev: float | None = None,
    distance_m: float | None = None,
) -> list[Path]:
    """Export a stitched object: a ptychodus product (``.h5``), or amplitude and phase files
    (``NAME_amplitude.tif`` / ``NAME_phase.tif``, or ``.png``).

    Parameters
    ----------
    path : path
        Target; its suffix picks the format.
    fmt : {".h5", ".tif", ".png"}, optional
        The format chosen in a dialog's type filter: used when ``path`` has no suffix.
    energy_ev, distance_m : float, optional
        Recorded in a product (0 there when unknown).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    DataError
        Unknown format, or a product without a probe and positions.
    """
    from ptycho_engine.io import write_png, write_tiff

    target = Path(path)
    suffix = target.suffix.lower()
    aliases = {".hdf5": ".h5", ".tiff": ".tif"}
    suffix = aliases.get(suffix, suffix)
    if not suffix and fmt is not None:
        # a name typed without a suffix takes the format chosen in the dialog
        suffix = aliases.get(fmt.lower(), fmt.lower())
        target = target.with_name(target.name + suffix)
    if suffix not in EXPORT_FORMATS:
        raise DataError(f"{target}: unknown export type: use one of {list(EXPORT_FORMATS)}")
    if suffix == ".h5":
        if probe is None or positions_px is None:
            raise DataError(f"{target}: a product needs the run's probe and scan positions")
        return [
            write_object_product(
                target,
                image,
                probe,
                positions_px,
                pixel_size_m,
                name=name,
                loss_epochs=loss_epochs,
                loss_values=loss_values,
                energy_ev=energy_ev,
                distance_m=distance_m,
            )
        ]
    written = []
    for part in ("amplitude", "phase"):
        file = target.with_name(f"{target.stem}_{part}{target.suffix}")
        if suffix == ".tif":
            written.append(write_tiff(file, image.object, part, pixel_size_m=pixel_size_m))
        else:
            written.append(
                write_png(
                    file,
                    image.object,
                    part,
                    pixel_size_m=pixel_size_m,
                    title=name,
                    valid=image.valid,
                )
            )
    return written
