"""One NaN/infinity policy for every reader (ptycho_engine.io.validation).

The same non-finite value is put into the same field of a file of every format (and into the
arrays handed to ``prepare``); every reader must then do the same thing:

- a NaN or infinite diffraction pixel becomes a bad pixel (set to 0, marked in ``bad_pixels``,
  counted in ``provenance["steps"]``);
- a pattern without a finite value, a detector without a pixel that is finite in every
  pattern, and NaN or infinite positions, probe or object values raise ``DataError`` with the
  same message, naming the file and the key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from ptycho_engine.data import DiffractionData
from ptycho_engine.errors import DataError
from ptycho_engine.io import (
    prepare,
    read_data,
    read_probe,
    read_product,
    write_cxi,
    write_pinn_npz,
    write_product,
)
from tests.io.conftest import simulated

N = 32
DET = "entry_1/instrument_1/detector_1"
SRC = "entry_1/instrument_1/source_1"
PROFILE = {
    "patterns": {"path": "frames", "values": "amplitude", "origin": "centred"},
    "positions": {"path": "pos"},
    "probe": {"path": "probe"},
    "object": {"path": "obj"},
}
PROFILE_ARRAYS = {"patterns": "frames", "positions": "pos", "probe": "probe", "object": "obj"}
NON_FINITE = pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])

Edit = Callable[[np.ndarray], None]


def _data() -> DiffractionData:
    return simulated(N)


def _profile_arrays(data: DiffractionData) -> dict[str, np.ndarray]:
    assert data.probe is not None and data.object_gt is not None
    return {
        "frames": data.amplitudes,
        "pos": data.positions_px,
        "probe": data.probe,
        "obj": data.object_gt,
    }


def _write_profile_npz(path: Path, data: DiffractionData) -> Path:
    np.savez(path, **_profile_arrays(data))
    return path


def _write_profile_h5(path: Path, data: DiffractionData) -> Path:
    with h5py.File(path, "w") as handle:
        for key, value in _profile_arrays(data).items():
            handle.create_dataset(key, data=value)
    return path


def _write_product(path: Path, data: DiffractionData) -> Path:
    assert data.probe is not None and data.object_gt is not None and data.pixel_size_m
    return write_product(path, data.object_gt, data.probe, data.positions_px, data.pixel_size_m)


def _write_probe_npy(path: Path, data: DiffractionData) -> Path:
    np.save(path, data.probe)
    return path


def _write_probe_npz(path: Path, data: DiffractionData) -> Path:
    np.savez(path, probeGuess=data.probe)
    return path


@dataclass(frozen=True)
class Format:
    """A file format: how to write a clean file, its key of each field, and its reader."""

    name: str
    suffix: str
    write: Callable[[Path, DiffractionData], Path]
    keys: dict[str, str]
    read: Callable[[Path], Any]

    def file(
        self, tmp: Path, field: str = "", edit: Edit | None = None, stem: str = "edited"
    ) -> tuple[Path, str]:
        """A file of this format with ``edit`` applied to ``field``; the path and the key."""
        path = self.write(tmp / f"{stem}-{self.name}{self.suffix}", _data())
        key = self.keys.get(field, "")
        if edit is not None:
            _poke(path, key, edit)
        return path, key


def _poke(path: Path, key: str, edit: Edit) -> None:
    """Apply ``edit`` in place to the array ``key`` of an NPZ, NPY or HDF5 file."""
    if path.suffix == ".npy":
        array = np.load(path)
        edit(array)
        np.save(path, array)
    elif path.suffix == ".npz":
        with np.load(path) as archive:
            arrays = {name: archive[name] for name in archive.files}
        edit(arrays[key])
        np.savez(path, **arrays)
    else:
        with h5py.File(path, "a") as handle:
            array = handle[key][()]
            edit(array)
            handle[key][...] = array


PINN = Format(
    "pinn",
    ".npz",
    write_pinn_npz,
    {
        "patterns": "diffraction",
        "positions": "ycoords",
        "probe": "probeGuess",
        "object": "objectGuess",
    },
    read_data,
)
CXI = Format(
    "cxi",
    ".cxi",
    write_cxi,
    {
        "patterns": "entry_1/data_1/data",  # the path the reader names (a soft link)
        "positions": "entry_1/sample_1/geometry_1/translation",
        "probe": f"{SRC}/illumination",
        "object": "entry_1/image_1/data",
    },
    read_data,
)
PROFILE_NPZ = Format(
    "profile", ".npz", _write_profile_npz, PROFILE_ARRAYS, lambda p: read_data(p, PROFILE)
)
PROFILE_H5 = Format(
    "profile", ".h5", _write_profile_h5, PROFILE_ARRAYS, lambda p: read_data(p, PROFILE)
)
PRODUCT = Format(
    "product",
    ".h5",
    _write_product,
    {"positions": "probe_position_y_m", "probe": "probe", "object": "object"},
    read_product,
)
PROBE_FILES = [
    Format("read_probe", ".npy", _write_probe_npy, {"probe": "<array>"}, read_probe),
    Format("read_probe", ".npz", _write_probe_npz, {"probe": "probeGuess"}, read_probe),
    Format("read_probe-product", ".h5", _write_product, {"probe": "probe"}, read_probe),
    Format("read_probe-cxi", ".cxi", write_cxi, {"probe": f"{SRC}/illumination"}, read_probe),
]
PATTERN_READERS = [PINN, CXI, PROFILE_NPZ, PROFILE_H5]
FIELD_READERS = [PINN, CXI, PROFILE_NPZ, PROFILE_H5, PRODUCT]
#: The refusal of a non-finite probe or object value, the same from every reader.
IMAGE_MESSAGE = (
    "<file>: <key>: expected finite values, found 1 NaN or infinite values (first at index "
    "(0, 1, 1))"
)
DETECTOR_MESSAGE = (
    "<file>: <key>: every detector pixel is NaN or infinite in at least one pattern; no pixel "
    "is left to reconstruct from"
)


def _ids(formats: list[Format]) -> list[str]:
    return [f"{f.name}{f.suffix}" for f in formats]


def _refusal(call: Callable[[], Any], path: Path, key: str) -> str:
    """The DataError message of ``call`` with the file and the key replaced by placeholders."""
    with pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{path}: {key!r}: "), message
    return message.replace(f"{path}: {key!r}: ", "<file>: <key>: ")


# ------------------------------------------------------------------------------- patterns


def _set_pixel(value: float) -> Edit:
    def edit(array: np.ndarray) -> None:
        array[3, 4, 5] = value

    return edit


def _fill_pattern(array: np.ndarray) -> None:
    array[3] = np.nan


def _cover_detector(array: np.ndarray) -> None:
    """Every pixel is NaN in some pattern, yet every pattern keeps a finite pixel."""
    array[0] = np.nan
    array[0, 0, 0] = 1.0
    array[1, 0, 0] = np.nan


def _in_memory(tmp: Path, edit: Edit | None = None) -> tuple[DiffractionData, Path]:
    """Arrays handed to ``prepare`` (their provenance names the file they came from)."""
    data = _data()
    amplitudes = data.amplitudes.copy()
    if edit is not None:
        edit(amplitudes)
    path = tmp / "arrays.npz"
    return data.replace(amplitudes=amplitudes, provenance={"path": str(path)}), path


@NON_FINITE
@pytest.mark.parametrize("fmt", PATTERN_READERS, ids=_ids(PATTERN_READERS))
def test_a_non_finite_pixel_is_a_bad_pixel_in_every_reader(
    tmp_path: Path, fmt: Format, value: float
) -> None:
    clean_path, _ = fmt.file(tmp_path, stem="clean")
    clean = fmt.read(clean_path)
    path, _ = fmt.file(tmp_path, "patterns", _set_pixel(value))
    _check_masked(fmt.read(path), clean)


@NON_FINITE
def test_prepare_masks_a_non_finite_pixel_as_the_readers_do(tmp_path: Path, value: float) -> None:
    clean, _ = _in_memory(tmp_path)
    holed, _ = _in_memory(tmp_path, _set_pixel(value))
    _check_masked(prepare(holed), prepare(clean))


def _check_masked(data: DiffractionData, clean: DiffractionData) -> None:
    expected = np.zeros((N, N), dtype=bool)
    expected[4, 5] = True
    assert clean.bad_pixels is None
    assert data.bad_pixels is not None
    np.testing.assert_array_equal(data.bad_pixels, expected)
    assert data.amplitudes[3, 4, 5] == 0.0
    assert np.all(np.isfinite(data.amplitudes))
    np.testing.assert_array_equal(data.amplitudes[:, ~expected], clean.amplitudes[:, ~expected])
    assert "1 NaN/infinite pixels set to 0 and marked bad" in data.provenance["steps"]


@pytest.mark.parametrize("fmt", PATTERN_READERS, ids=_ids(PATTERN_READERS))
def test_a_pattern_without_a_finite_value_is_refused_by_every_reader(
    tmp_path: Path, fmt: Format
) -> None:
    path, key = fmt.file(tmp_path, "patterns", _fill_pattern)
    message = _refusal(lambda: fmt.read(path), path, key)
    assert message.startswith("<file>: <key>: pattern 3 holds no finite value; expected ")


def test_prepare_refuses_a_pattern_without_a_finite_value(tmp_path: Path) -> None:
    data, path = _in_memory(tmp_path, _fill_pattern)
    message = _refusal(lambda: prepare(data), path, "amplitudes")
    assert message == "<file>: <key>: pattern 3 holds no finite value; expected amplitudes"


@pytest.mark.parametrize("fmt", PATTERN_READERS, ids=_ids(PATTERN_READERS))
def test_a_detector_without_a_finite_pixel_is_refused_by_every_reader(
    tmp_path: Path, fmt: Format
) -> None:
    path, key = fmt.file(tmp_path, "patterns", _cover_detector)
    assert _refusal(lambda: fmt.read(path), path, key) == DETECTOR_MESSAGE


def test_prepare_refuses_a_detector_without_a_finite_pixel(tmp_path: Path) -> None:
    data, path = _in_memory(tmp_path, _cover_detector)
    assert _refusal(lambda: prepare(data), path, "amplitudes") == DETECTOR_MESSAGE


# ------------------------------------------------------------------------------- other fields


def _set_first_column(row: int, value: float) -> Edit:
    def edit(array: np.ndarray) -> None:
        array.reshape(array.shape[0], -1)[row, 0] = value

    return edit


def _set_image(value: float) -> Edit:
    def edit(array: np.ndarray) -> None:
        array[..., 1, 1] = value

    return edit


@NON_FINITE
@pytest.mark.parametrize("fmt", FIELD_READERS, ids=_ids(FIELD_READERS))
def test_non_finite_positions_are_refused_alike(tmp_path: Path, fmt: Format, value: float) -> None:
    path, key = fmt.file(tmp_path, "positions", _set_first_column(2, value))
    message = _refusal(lambda: fmt.read(path), path, key)
    assert message == (
        "<file>: <key>: expected finite positions, found 1 NaN or infinite values (first in "
        "scan point 2)"
    )


@pytest.mark.parametrize("fmt", FIELD_READERS + PROBE_FILES, ids=_ids(FIELD_READERS + PROBE_FILES))
def test_non_finite_probe_values_are_refused_alike(tmp_path: Path, fmt: Format) -> None:
    path, key = fmt.file(tmp_path, "probe", _set_image(np.nan))
    assert _refusal(lambda: fmt.read(path), path, key) == IMAGE_MESSAGE


@pytest.mark.parametrize("fmt", FIELD_READERS, ids=_ids(FIELD_READERS))
def test_non_finite_object_values_are_refused_alike(tmp_path: Path, fmt: Format) -> None:
    path, key = fmt.file(tmp_path, "object", _set_image(np.inf))
    assert _refusal(lambda: fmt.read(path), path, key) == IMAGE_MESSAGE
