"""Malformed files: every one raises DataError naming the file and the problem."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from ptycho_engine.errors import DataError
from ptycho_engine.io import read_data, read_probe, read_product, write_cxi, write_product
from tests.io.conftest import simulated

Case = Callable[[Path], tuple[Path, Callable[[], Any]]]

M, N = 6, 16
DET = "entry_1/instrument_1/detector_1"
SRC = "entry_1/instrument_1/source_1"


def _cxi(tmp: Path, edit: dict[str, Any] | None = None, name: str = "bad.cxi") -> Path:
    """A small valid CXI file with some members replaced (None removes one)."""
    rng = np.random.default_rng(0)
    members: dict[str, Any] = {
        f"{DET}/data": rng.poisson(5.0, (M, N, N)).astype(np.uint16),
        "entry_1/sample_1/geometry_1/translation": np.c_[rng.uniform(0, 1e-7, (M, 2)), np.zeros(M)],
        f"{DET}/distance": 2.0,
        f"{DET}/x_pixel_size": 75e-6,
        f"{DET}/y_pixel_size": 75e-6,
        f"{SRC}/energy": 8800 * 1.602176634e-19,
    }
    members.update(edit or {})
    path = tmp / name
    with h5py.File(path, "w") as handle:
        for key, value in members.items():
            if value is not None:
                handle.create_dataset(key, data=value)
    return path


def _pinn(tmp: Path, **edit: Any) -> Path:
    rng = np.random.default_rng(1)
    arrays: dict[str, Any] = {
        "diffraction": rng.random((M, N, N)).astype(np.float32),
        "xcoords": np.arange(M, dtype=np.float64),
        "ycoords": np.arange(M, dtype=np.float64),
    }
    arrays.update(edit)
    path = tmp / "bad.npz"
    np.savez(path, allow_pickle=True, **{k: v for k, v in arrays.items() if v is not None})
    return path


def reading(path: Path, **kwargs: Any) -> tuple[Path, Callable[[], Any]]:
    return path, lambda: read_data(path, **kwargs)


def _truncated_cxi(tmp: Path) -> Path:
    good = write_cxi(tmp / "good.cxi", simulated(32))
    blob = good.read_bytes()
    bad = tmp / "truncated.cxi"
    bad.write_bytes(blob[: len(blob) // 2])
    return bad


def _truncated_npz(tmp: Path) -> Path:
    good = _pinn(tmp)
    bad = tmp / "truncated.npz"
    bad.write_bytes(good.read_bytes()[:700])
    return bad


def _text(tmp: Path, name: str) -> Path:
    path = tmp / name
    path.write_text("# not an HDF5 file\n1 2 3\n")
    return path


def _empty(tmp: Path, name: str) -> Path:
    path = tmp / name
    path.write_bytes(b"")
    return path


def _product(tmp: Path, drop_attr: str = "", mismatch: bool = False) -> Path:
    path = write_product(tmp / "prod.h5", np.ones((8, 8)), np.ones((4, 4)), np.ones((3, 2)), 1e-8)
    with h5py.File(path, "a") as handle:
        if drop_attr:
            for key in ("pixel_width_m", "pixel_height_m"):
                del handle["object"].attrs[key]
        if mismatch:
            del handle["probe_position_y_m"]
            handle["probe_position_y_m"] = np.zeros(2)
    return path


def _profile_file(tmp: Path, profile: dict[str, Any], arrays: dict[str, Any]) -> tuple[Path, Path]:
    data = tmp / "generic.npz"
    np.savez(data, **arrays)
    prof = tmp / "profile.json"
    prof.write_text(json.dumps(profile))
    return data, prof


def _profile_case(tmp: Path, profile: dict[str, Any], arrays: dict[str, Any]) -> tuple[Path, Any]:
    data, prof = _profile_file(tmp, profile, arrays)
    return data, lambda: read_data(data, profile=prof)


def _profile_named(tmp: Path, profile: dict[str, Any], arrays: dict[str, Any]) -> tuple[Path, Any]:
    """Like _profile_case, but the error is about the profile file itself."""
    data, prof = _profile_file(tmp, profile, arrays)
    return prof, lambda: read_data(data, profile=prof)


GOOD_ARRAYS = {"frames": np.ones((M, N, N)), "pos": np.zeros((M, 2))}
GOOD_PROFILE = {"patterns": "frames", "positions": {"path": "pos"}}


CASES: list[tuple[str, Case, str]] = [
    ("missing file", lambda t: reading(t / "nowhere.cxi"), "not found"),
    ("folder", lambda t: reading(t), "not a regular file"),
    ("zero-byte npz", lambda t: reading(_empty(t, "z.npz")), "empty"),
    ("zero-byte h5", lambda t: reading(_empty(t, "z.h5")), "empty"),
    ("text as .h5", lambda t: reading(_text(t, "notes.h5")), "text file"),
    ("text as .cxi", lambda t: reading(_text(t, "notes.cxi")), "text file"),
    (
        "random bytes as .h5",
        lambda t: reading(_bytes(t / "noise.h5", bytes(range(256)) * 4)),
        "unknown file content",
    ),
    ("npy as data", lambda t: reading(_npy(t / "arr.npy")), ".npy"),
    ("truncated HDF5", lambda t: reading(_truncated_cxi(t)), "HDF5"),
    ("truncated npz", lambda t: reading(_truncated_npz(t)), "NPZ"),
    ("npz of unknown keys", lambda t: reading(_pinn(t, diffraction=None, other=1)), "profile"),
    (
        "pickled member",
        lambda t: reading(_pinn(t, diffraction=np.array([{"a": 1}] * 3, dtype=object))),
        "pickled",
    ),
    ("pinn wrong rank", lambda t: reading(_pinn(t, diffraction=np.ones((M, N)))), "rank"),
    ("pinn mismatched counts", lambda t: reading(_pinn(t, xcoords=np.arange(M + 2.0))), "patterns"),
    ("pinn empty", lambda t: reading(_pinn(t, diffraction=np.ones((0, N, N)))), "empty"),
    (
        "pinn complex",
        lambda t: reading(_pinn(t, diffraction=np.ones((M, N, N), complex))),
        "complex",
    ),
    ("pinn strings", lambda t: reading(_pinn(t, diffraction=np.array(["a", "b"]))), "numeric"),
    (
        "cxi no translation",
        lambda t: reading(_cxi(t, {"entry_1/sample_1/geometry_1/translation": None})),
        "translation",
    ),
    (
        "cxi translation count",
        lambda t: reading(
            _cxi(t, {"entry_1/sample_1/geometry_1/translation": np.zeros((M + 1, 3))})
        ),
        "positions but there are",
    ),
    (
        "cxi translation rank",
        lambda t: reading(_cxi(t, {"entry_1/sample_1/geometry_1/translation": np.zeros(M)})),
        "shape",
    ),
    ("cxi data rank 2", lambda t: reading(_cxi(t, {f"{DET}/data": np.ones((N, N))})), "rank"),
    (
        "cxi non-square",
        lambda t: reading(_cxi(t, {f"{DET}/data": np.ones((M, N, N + 2))})),
        "square",
    ),
    (
        "cxi empty patterns",
        lambda t: reading(_cxi(t, {f"{DET}/data": np.ones((0, N, N))})),
        "empty",
    ),
    (
        "cxi negative counts",
        lambda t: reading(_cxi(t, {f"{DET}/data": -np.ones((M, N, N))})),
        "negative",
    ),
    (
        "cxi string data",
        lambda t: reading(_cxi(t, {f"{DET}/data": np.full((M, N, N), b"ab")})),
        "dtype",
    ),
    (
        "cxi complex data",
        lambda t: reading(_cxi(t, {f"{DET}/data": np.ones((M, N, N), complex)})),
        "complex",
    ),
    (
        "cxi all-NaN pattern",
        lambda t: reading(_cxi(t, {f"{DET}/data": np.full((M, N, N), np.nan)})),
        "no finite",
    ),
    ("cxi no energy", lambda t: reading(_cxi(t, {f"{SRC}/energy": None})), "energy"),
    ("cxi negative distance", lambda t: reading(_cxi(t, {f"{DET}/distance": -1.0})), "distance"),
    ("cxi energy as text", lambda t: reading(_cxi(t, {f"{SRC}/energy": b"8 keV"})), "energy"),
    ("cxi mask shape", lambda t: reading(_cxi(t, {f"{DET}/mask": np.zeros((3, 3))})), "mask"),
    (
        "cxi NaN translation",
        lambda t: reading(
            _cxi(t, {"entry_1/sample_1/geometry_1/translation": np.full((M, 3), np.nan)})
        ),
        "finite",
    ),
    (
        "cxi illumination rank 1",
        lambda t: reading(_cxi(t, {f"{SRC}/illumination": np.ones(4, complex)})),
        "illumination",
    ),
    (
        "hdf5 unknown layout",
        lambda t: reading(_h5(t / "other.h5", {"foo/bar": np.ones(3)})),
        "profile",
    ),
    ("product for training", lambda t: reading(_product(t)), "no diffraction patterns"),
    (
        "product no pixel size",
        lambda t: (p := _product(t, drop_attr="x"), lambda: read_product(p)),
        "pixel_width_m",
    ),
    (
        "product count mismatch",
        lambda t: (p := _product(t, mismatch=True), lambda: read_product(p)),
        "positions",
    ),
    (
        "profile missing dataset",
        lambda t: _profile_case(t, {**GOOD_PROFILE, "patterns": "nope"}, GOOD_ARRAYS),
        "nope",
    ),
    (
        "profile metres without geometry",
        lambda t: _profile_case(
            t, {**GOOD_PROFILE, "positions": {"path": "pos", "unit": "m"}}, GOOD_ARRAYS
        ),
        "geometry",
    ),
    (
        "profile position count",
        lambda t: _profile_case(t, GOOD_PROFILE, {**GOOD_ARRAYS, "pos": np.zeros((M + 1, 2))}),
        "positions but there are",
    ),
    (
        "profile bad unit",
        lambda t: _profile_named(
            t, {**GOOD_PROFILE, "positions": {"path": "pos", "unit": "furlong"}}, GOOD_ARRAYS
        ),
        "unit",
    ),
    (
        "probe npy pickled",
        lambda t: (p := _npy(t / "probe.npy", np.array([{}], dtype=object)), lambda: read_probe(p)),
        "pickled",
    ),
    ("probe npz without key", lambda t: (p := _pinn(t), lambda: read_probe(p)), "probeGuess"),
    (
        "probe size mismatch",
        lambda t: (p := _npy(t / "probe.npy", np.ones((8, 8), complex)), lambda: read_probe(p, 16)),
        "resample",
    ),
]


def _bytes(path: Path, blob: bytes) -> Path:
    path.write_bytes(blob)
    return path


def _npy(path: Path, value: Any = None) -> Path:
    with open(path, "wb") as handle:
        np.save(handle, np.ones((4, 4)) if value is None else value, allow_pickle=True)
    return path


def _h5(path: Path, members: dict[str, Any]) -> Path:
    with h5py.File(path, "w") as handle:
        for key, value in members.items():
            handle.create_dataset(key, data=value)
    return path


@pytest.mark.parametrize(("build", "detail"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_file_raises_data_error(tmp_path: Path, build: Case, detail: str) -> None:
    path, call = build(tmp_path)
    with pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    assert str(path) in message, message
    assert detail.lower() in message.lower(), message


def test_invalid_profile_json_names_the_profile(tmp_path: Path) -> None:
    data, prof = _profile_file(tmp_path, GOOD_PROFILE, GOOD_ARRAYS)
    prof.write_text("{not json")
    with pytest.raises(DataError, match="not a readable JSON") as info:
        read_data(data, profile=prof)
    assert str(prof) in str(info.value)


def test_external_links_are_not_followed(tmp_path: Path) -> None:
    other = _cxi(tmp_path, name="other.cxi")
    path = _cxi(tmp_path, {f"{DET}/data": None}, name="linked.cxi")
    with h5py.File(path, "a") as handle:
        handle[f"{DET}/data"] = h5py.ExternalLink(str(other), f"/{DET}/data")
    with pytest.raises(DataError, match="external link") as info:
        read_data(path)
    assert str(path) in str(info.value)
