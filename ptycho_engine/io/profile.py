"""Generic HDF5 / NPZ files read through a JSON mapping profile (formats.md input 4).

A profile is a JSON object (all keys but ``patterns`` and ``positions`` optional)::

    {
      "format": "ptycho-mapping-profile", "version": 1, "name": "tike simulation",
      "patterns": {"path": "data", "values": "intensity", "origin": "corner"},
      "positions": {"path": "scan", "unit": "px", "order": "yx",
                    "reference": "top-left", "window_px": 16},
      "probe": {"path": "probe"},
      "object": {"path": "psi"},
      "mask": {"path": "entry/mask", "bad": "nonzero"},
      "energy_ev": 8800,                      # or {"path": "...", "unit": "eV"|"keV"|"J"}
      "wavelength_m": {"path": "..."},        # used when energy_ev is absent
      "distance_m": 2.2,                      # or {"path": "...", "unit": "m"|"mm"}
      "detector_pixel_m": 7.5e-05,            # or {"path": "...", "unit": "m"|"um"}
      "propagation": "far-field",             # or "near-field"; detected when absent
      "focus_distance_m": 0.00365             # near-field cone beam only
    }

Meaning of the entries:

- ``patterns.values``: ``"intensity"`` (counts; the square root is taken) or ``"amplitude"``.
  ``patterns.origin``: ``"centred"`` (zero frequency at ``(N//2, N//2)``), ``"corner"``
  (at ``(0, 0)``) or ``"auto"`` (default: detected, see :mod:`ptycho_engine.io.prepare`).
  ``patterns.layout``: ``"MNN"`` (default) or ``"NNM"``.
- ``positions``: either ``path`` to an ``(M, 2)`` table, or ``y_path`` and ``x_path`` to two
  ``(M,)`` vectors. ``order`` names the columns of a table (``"yx"`` or ``"xy"``). ``unit``:
  ``"px"`` (object pixels), ``"m"``, ``"mm"``, ``"um"``, ``"nm"``; lengths are converted with
  the far-field pixel ``lambda z / (N dx)`` (or the near-field rules of
  :func:`ptycho_engine.io.geometry.positions_from_metres`). ``reference``: ``"centre"``
  (default; the engine's convention) or ``"top-left"`` (the first pixel of a
  ``window_px``-wide window; ``window_px/2`` is added to both coordinates, with ``window_px``
  defaulting to the probe's size). ``signs``: ``[sy, sx]`` multipliers (default ``[1, 1]``).
- ``probe``: an array with optional leading mode axes; the strongest mode becomes ``probe``
  and, when there are several, all modes (strongest first) become ``probe_modes`` (mutually
  incoherent modes of a partially coherent beam). A probe smaller than the patterns is
  zero-padded to ``N x N`` (the exit wave is then zero-padded before the FFT, which is how
  2x-oversampled simulations are made).
- ``object``: ground-truth object; leading singleton axes are dropped.
- ``mask.bad``: ``"nonzero"`` (default: non-zero marks a bad pixel) or ``"zero"``.

Keys of an NPZ file are member names; keys of an HDF5 file are dataset paths. Values follow
the NaN/infinity policy of :mod:`ptycho_engine.io.validation`: non-finite pattern pixels are
masked as bad pixels; non-finite positions, probe or object values are an error.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.data import DiffractionData
from ptycho_engine.errors import DataError
from ptycho_engine.io.files import atomic_write, check_readable_file, sha256_in_background, sniff
from ptycho_engine.io.geometry import (
    ELECTRON_VOLT_J,
    energy_ev_from_wavelength,
    farfield_pixel_m,
    positions_from_metres,
)
from ptycho_engine.io.hdf5 import h5_dataset, h5_read, open_hdf5
from ptycho_engine.io.npz import npz_member, open_npz
from ptycho_engine.io.pattern_stack import ProgressCallback, read_pattern_stack
from ptycho_engine.io.prepare import center_patterns, pad_center
from ptycho_engine.io.probe import mode_power, strongest_mode
from ptycho_engine.io.validation import (
    SCAN_POINT,
    bad_pixel_mask,
    complex_modes,
    finite_vector,
    merge_masks,
    nonfinite_step,
    positions_array,
    positive_scalar,
)

FORMAT_NAME = "profile"
PROFILE_FORMAT = "ptycho-mapping-profile"
LENGTH_UNITS = {"m": 1.0, "mm": 1e-3, "um": 1e-6, "µm": 1e-6, "nm": 1e-9}
ENERGY_UNITS = {"eV": 1.0, "keV": 1e3}


@dataclass(frozen=True)
class MappingProfile:
    """A validated mapping profile (see the module docstring for the JSON layout)."""

    patterns: dict[str, Any]
    positions: dict[str, Any]
    name: str = ""
    probe: dict[str, Any] | None = None
    object: dict[str, Any] | None = None
    mask: dict[str, Any] | None = None
    energy_ev: Any = None
    wavelength_m: Any = None
    distance_m: Any = None
    detector_pixel_m: Any = None
    propagation: str | None = None
    focus_distance_m: float | None = None
    source: str = "<dict>"
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, raw: Any, source: str = "<dict>") -> MappingProfile:
        """Validate a profile given as a dict; DataError names the bad entry."""
        if not isinstance(raw, dict):
            raise DataError(f"profile {source}: expected a JSON object, got {type(raw).__name__}")
        fmt = raw.get("format", PROFILE_FORMAT)
        if fmt != PROFILE_FORMAT:
            raise DataError(f"profile {source}: 'format' must be {PROFILE_FORMAT!r}, got {fmt!r}")
        patterns = _entry(raw, "patterns", source, required=True)
        positions = _entry(raw, "positions", source, required=True)
        assert patterns is not None and positions is not None
        if not isinstance(patterns.get("path"), str):
            raise DataError(f"profile {source}: 'patterns.path' must name a dataset")
        _choice(patterns, "values", ("intensity", "amplitude"), "intensity", source)
        _choice(patterns, "origin", ("auto", "centred", "corner"), "auto", source)
        _choice(patterns, "layout", ("MNN", "NNM"), "MNN", source)
        if not isinstance(positions.get("path"), str) and not (
            isinstance(positions.get("y_path"), str) and isinstance(positions.get("x_path"), str)
        ):
            raise DataError(
                f"profile {source}: 'positions' needs 'path' (an (M, 2) table) or both "
                "'y_path' and 'x_path'"
            )
        _choice(positions, "order", ("yx", "xy"), "yx", source)
        _choice(positions, "unit", ("px", *LENGTH_UNITS), "px", source)
        _choice(positions, "reference", ("centre", "top-left"), "centre", source)
        signs = positions.get("signs", [1, 1])
        if (
            not isinstance(signs, list)
            or len(signs) != 2
            or not all(isinstance(s, (int, float)) and s in (1, -1) for s in signs)
        ):
            raise DataError(f"profile {source}: 'positions.signs' must be [±1, ±1], got {signs!r}")
        window = positions.get("window_px")
        if window is not None and (not isinstance(window, (int, float)) or window <= 0):
            raise DataError(f"profile {source}: 'positions.window_px' must be > 0, got {window!r}")
        propagation = raw.get("propagation")
        if propagation not in (None, "far-field", "near-field"):
            raise DataError(
                f"profile {source}: 'propagation' must be 'far-field' or 'near-field', "
                f"got {propagation!r}"
            )
        focus = raw.get("focus_distance_m")
        if focus is not None and (not isinstance(focus, (int, float)) or not focus > 0):
            raise DataError(f"profile {source}: 'focus_distance_m' must be > 0, got {focus!r}")
        mask = _entry(raw, "mask", source)
        if mask is not None:
            _choice(mask, "bad", ("nonzero", "zero"), "nonzero", source)
        for key in ("energy_ev", "wavelength_m", "distance_m", "detector_pixel_m"):
            _quantity_spec(raw.get(key), key, source)
        return cls(
            patterns=patterns,
            positions=positions,
            name=str(raw.get("name", "")),
            probe=_entry(raw, "probe", source),
            object=_entry(raw, "object", source),
            mask=mask,
            energy_ev=raw.get("energy_ev"),
            wavelength_m=raw.get("wavelength_m"),
            distance_m=raw.get("distance_m"),
            detector_pixel_m=raw.get("detector_pixel_m"),
            propagation=propagation,
            focus_distance_m=None if focus is None else float(focus),
            source=source,
            raw=dict(raw),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this profile."""
        out: dict[str, Any] = {"format": PROFILE_FORMAT, "version": 1, "name": self.name}
        for key in (
            "patterns",
            "positions",
            "probe",
            "object",
            "mask",
            "energy_ev",
            "wavelength_m",
            "distance_m",
            "detector_pixel_m",
            "propagation",
            "focus_distance_m",
        ):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def load_profile(path: str | os.PathLike[str]) -> MappingProfile:
    """Read and validate a JSON mapping profile."""
    file = Path(path)
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"profile {file}: file not found") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"profile {file}: not a readable JSON file: {exc}") from exc
    return MappingProfile.from_dict(raw, str(file))


def save_profile(path: str | os.PathLike[str], profile: MappingProfile) -> Path:
    """Write a profile as JSON (the engine's one convention, :mod:`ptycho_engine.jsonio`),
    atomically."""
    from ptycho_engine.jsonio import dumps

    text = dumps(profile.to_dict(), indent=2) + "\n"
    return atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def as_profile(profile: MappingProfile | dict[str, Any] | str | os.PathLike[str]) -> MappingProfile:
    """Accept a profile object, a dict or the path of a JSON file."""
    if isinstance(profile, MappingProfile):
        return profile
    if isinstance(profile, dict):
        return MappingProfile.from_dict(profile)
    return load_profile(profile)


def _entry(raw: dict[str, Any], key: str, source: str, required: bool = False) -> Any:
    value = raw.get(key)
    if value is None:
        if required:
            raise DataError(f"profile {source}: missing entry {key!r}")
        return None
    if isinstance(value, str):
        value = {"path": value}
    if not isinstance(value, dict) or ("path" in value and not isinstance(value["path"], str)):
        raise DataError(f"profile {source}: {key!r} must be an object with a 'path', got {value!r}")
    return dict(value)


def _choice(
    entry: dict[str, Any], key: str, allowed: tuple[str, ...], default: str, src: str
) -> None:
    value = entry.setdefault(key, default)
    if value not in allowed:
        raise DataError(f"profile {src}: {key!r} must be one of {allowed}, got {value!r}")


def _quantity_spec(value: Any, key: str, source: str) -> None:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise DataError(f"profile {source}: {key!r} must be > 0, got {value!r}")
        return
    if isinstance(value, dict) and isinstance(value.get("path"), str):
        return
    raise DataError(
        f"profile {source}: {key!r} must be a number or {{'path': ..., 'unit': ...}}, got {value!r}"
    )


# ------------------------------------------------------------------------------------ sources


class _Source:
    """Uniform access to NPZ members and HDF5 datasets."""

    def __init__(self, kind: str, handle: Any, src: str) -> None:
        self.kind, self.handle, self.src = kind, handle, src

    def get(self, key: str) -> Any | None:
        if self.kind == "npz":
            return npz_member(self.handle, key, self.src) if key in self.handle.files else None
        return h5_dataset(self.handle, key, self.src)

    def require(self, key: str, what: str) -> Any:
        value = self.get(key)
        if value is None:
            raise DataError(
                f"{self.src}: missing {'key' if self.kind == 'npz' else 'dataset'} "
                f"{key!r}: expected {what}"
            )
        return value

    def array(self, key: str, what: str) -> np.ndarray:
        value = self.require(key, what)
        return value if isinstance(value, np.ndarray) else h5_read(value, self.src, key)


@contextmanager
def _open_source(file: Path) -> Iterator[_Source]:
    kind = sniff(file)
    if kind == "npz":
        with open_npz(file, "arrays named by the profile") as archive:
            yield _Source("npz", archive, str(file))
    elif kind == "hdf5":
        with open_hdf5(file, "datasets named by the profile") as handle:
            yield _Source("hdf5", handle, str(file))
    else:
        raise DataError(f"{file}: a mapping profile reads NPZ or HDF5 files, found a {kind} file")


def read_with_profile(
    path: str | os.PathLike[str],
    profile: MappingProfile | dict[str, Any] | str | os.PathLike[str],
    progress: ProgressCallback | None = None,
    *,
    energy_ev: float | None = None,
    distance_m: float | None = None,
    detector_pixel_m: float | None = None,
    propagation: str | None = None,
    focus_distance_m: float | None = None,
) -> DiffractionData:
    """Read an NPZ or HDF5 file through a mapping profile.

    Parameters
    ----------
    path : str or path-like
        The data file.
    profile : MappingProfile, dict or path of a JSON file
    progress : callable, optional
        ``progress(done, total)`` while patterns are read.
    energy_ev, distance_m, detector_pixel_m, propagation, focus_distance_m : optional
        Override the profile's geometry.

    Returns
    -------
    DiffractionData
        Centred float32 amplitudes, ``(y, x)`` patch-centre positions in object pixels,
        probe (strongest mode, padded to N; every mode in ``probe_modes`` when there are
        several), ground-truth object, mask, geometry, provenance
        ``{path, format: "profile", profile, sha256, steps, propagation?, warnings}``.
    """
    prof = as_profile(profile)
    file = check_readable_file(path, "an NPZ or HDF5 file")
    src = str(file)
    steps: list[str] = [f"read through profile {prof.name or prof.source!r}"]
    notes: list[str] = []
    with sha256_in_background(file) as file_digest, _open_source(file) as source:
        pkey = prof.patterns["path"]
        intensities = prof.patterns["values"] == "intensity"
        pat = source.require(pkey, "(M, N, N) diffraction patterns")
        if prof.patterns["layout"] == "NNM":
            pat = np.moveaxis(np.asarray(pat if isinstance(pat, np.ndarray) else pat[()]), -1, 0)
        amplitudes, nonfinite = read_pattern_stack(
            pat, src, pkey, intensities=intensities, progress=progress
        )
        steps.append(
            f"patterns {pkey!r} {amplitudes.shape} as {prof.patterns['values']}"
            + (" -> sqrt" if intensities else "")
        )
        m, n = amplitudes.shape[0], amplitudes.shape[1]
        raw_pos, pos_key = _positions(source, prof.positions, m)
        probe_modes = None
        if prof.probe is not None:
            key = prof.probe["path"]
            probe_modes = complex_modes(source.array(key, "a probe"), src, key)
        obj = None
        if prof.object is not None:
            key = prof.object["path"]
            layers = complex_modes(source.array(key, "an object"), src, key)
            if layers.shape[0] != 1:
                notes.append(f"{src}: {key!r} has {layers.shape[0]} layers; the first is used")
            obj = layers[0]
        bad = None
        if prof.mask is not None:
            key = prof.mask["path"]
            raw = source.array(key, "a bad-pixel mask")
            bad = bad_pixel_mask(raw, src, key, n, bad=prof.mask["bad"])
        geometry = {
            "energy_ev": _quantity(source, prof.energy_ev, "energy_ev", ENERGY_UNITS, "eV"),
            "distance_m": _quantity(source, prof.distance_m, "distance_m", LENGTH_UNITS, "m"),
            "detector_pixel_m": _quantity(
                source, prof.detector_pixel_m, "detector_pixel_m", LENGTH_UNITS, "m"
            ),
        }
        if geometry["energy_ev"] is None and prof.wavelength_m is not None:
            wl = _quantity(source, prof.wavelength_m, "wavelength_m", LENGTH_UNITS, "m")
            geometry["energy_ev"] = None if wl is None else energy_ev_from_wavelength(wl)

    for key, value in (
        ("energy_ev", energy_ev),
        ("distance_m", distance_m),
        ("detector_pixel_m", detector_pixel_m),
    ):
        if value is not None:
            geometry[key] = float(value)
            steps.append(f"geometry override {key}={value:g}")
    energy, distance, det_pixel = (
        geometry["energy_ev"],
        geometry["distance_m"],
        geometry["detector_pixel_m"],
    )
    pixel: float | None = None
    record: dict[str, Any] | None = None
    regime = propagation or prof.propagation
    if nonfinite is not None:
        bad = merge_masks(bad, nonfinite)
        steps.append(nonfinite_step(nonfinite))

    # Positions.
    spec = prof.positions
    yx = raw_pos * np.asarray(spec.get("signs", [1, 1]), dtype=np.float64)
    if spec["unit"] != "px":
        if energy is None or distance is None or det_pixel is None:
            missing = [k for k, v in geometry.items() if v is None]
            raise DataError(
                f"{src}: positions {pos_key!r} are in {spec['unit']} but the geometry is "
                f"incomplete (missing {', '.join(missing)}): add them to the profile or pass "
                "them as overrides"
            )
        yx = yx * LENGTH_UNITS[spec["unit"]]
        positions, pixel, record, more = positions_from_metres(
            yx,
            n,
            energy_ev=energy,
            distance_m=distance,
            detector_pixel_m=det_pixel,
            propagation=regime,
            focus_distance_m=focus_distance_m or prof.focus_distance_m,
            src=src,
        )
        notes.extend(more)
        steps.append(
            f"positions {pos_key!r} ({spec['order']}, {spec['unit']}) -> (y, x) px with object "
            f"pixel {pixel:.6g} m ({record['regime']}, {record['source']})"
        )
    else:
        positions = yx
        if energy is not None and distance is not None and det_pixel is not None:
            pixel = farfield_pixel_m(energy, distance, det_pixel, n)
        if regime is not None:
            record = {"regime": regime, "source": "declared"}
        steps.append(f"positions {pos_key!r} ({spec['order']}) in object pixels")
    if spec["reference"] == "top-left":
        window = spec.get("window_px")
        if window is None:
            if probe_modes is None:
                raise DataError(
                    f"profile {prof.source}: positions.reference is 'top-left' but neither "
                    "'window_px' nor a probe gives the window size"
                )
            window = probe_modes.shape[-1]
        positions = positions + float(window) / 2.0
        steps.append(
            f"positions were top-left corners of {window:g}-px windows: centre = corner + "
            f"{float(window) / 2:g}"
        )

    probe = None
    all_modes = None
    if probe_modes is not None:
        mode, index, share = strongest_mode(probe_modes)
        if probe_modes.shape[0] > 1:
            steps.append(
                f"probe: {probe_modes.shape[0]} incoherent modes, the strongest (mode {index}) "
                f"carries {share:.0%} of the power; all modes kept, strongest first"
            )
        if mode.shape[0] <= n and mode.shape[1] <= n:
            power = mode_power(probe_modes)
            order = [index] + [k for k in np.argsort(-power, kind="stable") if k != index]
            padded = [pad_center(probe_modes[k], n) for k in order]
            probe = padded[0]
            if len(padded) > 1:
                all_modes = np.stack(padded)
            if mode.shape != (n, n):
                steps.append(f"probe {mode.shape[0]}x{mode.shape[1]} zero-padded to {n}x{n}")
        else:
            notes.append(
                f"{src}: probe is {mode.shape[0]}x{mode.shape[1]}, larger than the {n}x{n} "
                "patterns; not used (load it with read_probe and resample)"
            )

    if record is None or record["regime"] == "far-field":
        amplitudes, bad, step = center_patterns(amplitudes, bad, prof.patterns["origin"])
        if step:
            steps.append(step)
    provenance: dict[str, Any] = {
        "path": src,
        "format": FORMAT_NAME,
        "profile": prof.name or prof.source,
        "sha256": file_digest(),
        "steps": steps,
        "positions_unit": "m" if spec["unit"] != "px" else "px",
        "warnings": notes,
    }
    if record is not None:
        provenance["propagation"] = record
    return DiffractionData(
        amplitudes,
        positions,
        probe=probe,
        probe_modes=all_modes,
        object_gt=obj,
        bad_pixels=bad,
        pixel_size_m=pixel,
        energy_ev=energy,
        distance_m=distance,
        detector_pixel_m=det_pixel,
        provenance=provenance,
    )


def _positions(source: _Source, spec: dict[str, Any], m: int) -> tuple[np.ndarray, str]:
    """Positions as (M, 2) ``(y, x)`` in the profile's unit."""
    src = source.src
    if isinstance(spec.get("path"), str):
        key = spec["path"]
        raw = source.array(key, f"({m}, 2) scan positions")
        table = positions_array(raw, src, key, m, columns=2)
        if spec["order"] == "xy":
            table = table[:, ::-1]
    else:
        key = f"{spec['y_path']}, {spec['x_path']}"
        columns = []
        for name in (spec["y_path"], spec["x_path"]):
            raw = source.array(name, f"({m},) scan positions")
            columns.append(finite_vector(raw, src, name, "positions", length=m, rows=SCAN_POINT))
        table = np.stack(columns, axis=1)
    return np.ascontiguousarray(table), key


def _quantity(
    source: _Source, spec: Any, key: str, units: dict[str, float], base: str
) -> float | None:
    if spec is None:
        return None
    if not isinstance(spec, dict):
        return float(spec)
    path = spec["path"]
    value = source.get(path)
    if value is None:
        raise DataError(f"{source.src}: missing {path!r} named by the profile for {key}")
    raw = value if isinstance(value, np.ndarray) else h5_read(value, source.src, path)
    unit = spec.get("unit", base)
    number = positive_scalar(raw, source.src, path, unit)
    if unit == "J" and key == "energy_ev":
        return number / ELECTRON_VOLT_J
    if unit not in units:
        raise DataError(
            f"{source.src}: profile unit {unit!r} for {key} is not one of {sorted(units)}"
        )
    return number * units[unit]
