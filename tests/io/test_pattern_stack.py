"""The sliced, two-thread pattern reader and the background sha256 of the file being read.

``read_pattern_stack`` reads slice ``k + 1`` in the calling thread while a worker converts
slice ``k``; these tests make the slices small so that every read goes through many slices,
and check that the result, the progress reports, the errors and the provenance hash are the
same as a plain serial read would give, and that no thread outlives a read.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from ptycho_engine.errors import DataError
from ptycho_engine.io import pattern_stack, read_data, write_cxi
from ptycho_engine.io.files import sha256_in_background
from ptycho_engine.io.pattern_stack import read_pattern_stack
from tests.io.conftest import simulated

M, N = 11, 16
#: Reads the files written by ``_h5``: patterns ``data`` (centred counts), positions in pixels.
PROFILE = {"patterns": {"path": "data", "origin": "centred"}, "positions": {"path": "positions"}}


@pytest.fixture(autouse=True)
def small_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three uint16 patterns per slice: 11 patterns make four slices, the last one short."""
    monkeypatch.setattr(pattern_stack, "SLICE_BYTES", 3 * N * N * 2)


@pytest.fixture(autouse=True)
def no_thread_survives() -> Any:
    """Every test ends with the reader's and the hasher's threads joined."""
    yield
    alive = [t.name for t in threading.enumerate() if t.name.startswith("ptycho-")]
    assert alive == []


def _reference(raw: np.ndarray, intensities: bool) -> np.ndarray:
    """A serial conversion: float32, non-finite pixels to 0, square root of counts."""
    with np.errstate(over="ignore", invalid="ignore"):
        values = raw.reshape(raw.shape[0], N, N).astype(np.float32)
    values[~np.isfinite(values)] = 0.0
    return np.sqrt(values) if intensities else values


def _h5(path: Path, data: np.ndarray, **options: Any) -> Path:
    with h5py.File(path, "w") as handle:
        handle.create_dataset("data", data=data, **options)
        handle["positions"] = np.c_[np.arange(data.shape[0]), np.arange(data.shape[0])] * 2.0
    return path


def _counts(dtype: str, shape: tuple[int, ...] = (M, N, N)) -> np.ndarray:
    return np.random.default_rng(4).poisson(30.0, shape).astype(dtype)


@pytest.mark.parametrize(
    ("dtype", "shape", "options"),
    [
        ("uint16", (M, N, N), {"chunks": (1, N, N), "compression": "gzip"}),
        ("uint16", (M, N, N), {"chunks": (4, N, N), "compression": "gzip", "shuffle": True}),
        (">u2", (M, N, N), {}),
        ("int32", (M, N, N, 1), {"chunks": (2, N, N, 1), "compression": "gzip"}),
        ("uint8", (M, N, N), {}),
        ("float64", (M, N, N), {"chunks": (3, N, N)}),
    ],
    ids=["gzip-1", "gzip-shuffle-4", "big-endian", "int32-4d", "uint8", "float64"],
)
@pytest.mark.parametrize("intensities", [True, False], ids=["counts", "amplitudes"])
def test_sliced_read_equals_a_serial_conversion(
    tmp_path: Path, dtype: str, shape: tuple[int, ...], options: dict[str, Any], intensities: bool
) -> None:
    raw = _counts(dtype, shape)
    path = _h5(tmp_path / "p.h5", raw, **options)
    expected = _reference(raw, intensities)
    with h5py.File(path, "r") as handle:
        from_file, bad = read_pattern_stack(handle["data"], path, "data", intensities=intensities)
    from_array, bad_array = read_pattern_stack(raw, path, "data", intensities=intensities)
    assert from_file.dtype == np.float32 and from_file.shape == (M, N, N)
    np.testing.assert_array_equal(from_file, expected)
    np.testing.assert_array_equal(from_array, expected)
    assert bad is None and bad_array is None


def test_non_finite_pixels_of_every_slice_are_zeroed_and_marked(tmp_path: Path) -> None:
    raw = _counts("float32")
    raw[0, 1, 2] = np.nan
    raw[7, 3, 4] = np.inf
    raw[10, 5, 6] = -np.inf
    expected_bad = np.zeros((N, N), dtype=bool)
    expected_bad[1, 2] = expected_bad[3, 4] = expected_bad[5, 6] = True
    path = _h5(tmp_path / "p.h5", raw, chunks=(1, N, N), compression="gzip")
    with h5py.File(path, "r") as handle:
        amplitudes, bad = read_pattern_stack(handle["data"], path, "data", intensities=True)
    np.testing.assert_array_equal(amplitudes, _reference(raw, True))
    assert bad is not None
    np.testing.assert_array_equal(bad, expected_bad)


def test_progress_reaches_the_total_from_the_calling_thread(tmp_path: Path) -> None:
    path = _h5(tmp_path / "p.h5", _counts("uint16"), chunks=(1, N, N), compression="gzip")
    calls: list[tuple[int, int, int]] = []
    with h5py.File(path, "r") as handle:
        read_pattern_stack(
            handle["data"],
            path,
            "data",
            intensities=True,
            progress=lambda done, total: calls.append((done, total, threading.get_ident())),
        )
    assert [(done, total) for done, total, _ in calls] == [(3, M), (6, M), (9, M), (M, M)]
    assert {ident for _, _, ident in calls} == {threading.get_ident()}


def test_negative_counts_found_by_the_worker_raise_in_the_caller(tmp_path: Path) -> None:
    raw = _counts("int16")
    raw[7, 2, 2] = -4
    path = _h5(tmp_path / "p.h5", raw, chunks=(1, N, N), compression="gzip")
    calls: list[tuple[int, int]] = []
    with h5py.File(path, "r") as handle, pytest.raises(DataError) as caught:
        read_pattern_stack(
            handle["data"],
            path,
            "data",
            intensities=True,
            progress=lambda done, total: calls.append((done, total)),
        )
    assert str(caught.value) == (
        f"{path}: 'data': expected non-negative counts, found 1 negative values in patterns "
        "6..8 (minimum -4)"
    )
    assert calls == [(3, M), (6, M)]  # the slices before the bad one were reported


def test_a_pattern_without_finite_values_in_a_middle_slice_is_refused(tmp_path: Path) -> None:
    raw = _counts("float32")
    raw[4] = np.nan
    path = _h5(tmp_path / "p.h5", raw)
    with h5py.File(path, "r") as handle, pytest.raises(DataError, match="pattern 4 holds no"):
        read_pattern_stack(handle["data"], path, "data", intensities=True)


def _corrupt_chunk(path: Path, index: int) -> None:
    """Overwrite the stored (compressed) bytes of chunk ``(index, 0, 0)``."""
    with h5py.File(path, "r") as handle:
        info = handle["data"].id.get_chunk_info_by_coord((index, 0, 0))
    with open(path, "r+b") as handle:
        handle.seek(info.byte_offset)
        handle.write(b"\xff" * info.size)


def test_a_corrupt_chunk_in_the_middle_raises_data_error_naming_file_and_patterns(
    tmp_path: Path,
) -> None:
    path = _h5(tmp_path / "p.h5", _counts("uint16"), chunks=(1, N, N), compression="gzip")
    _corrupt_chunk(path, 7)
    with h5py.File(path, "r") as handle, pytest.raises(DataError) as caught:
        read_pattern_stack(handle["data"], path, "data", intensities=True)
    message = str(caught.value)
    assert message.startswith(f"{path}: 'data': patterns 6..8 could not be read")


def test_a_corrupt_chunk_through_read_data_also_stops_the_hash(tmp_path: Path) -> None:
    path = _h5(tmp_path / "p.h5", _counts("uint16"), chunks=(1, N, N), compression="gzip")
    _corrupt_chunk(path, 9)
    with pytest.raises(DataError, match=r"p\.h5: 'data': patterns 9\.\.10 could not be read"):
        read_data(path, PROFILE)


def test_profile_read_records_the_files_sha256_and_reports_progress(tmp_path: Path) -> None:
    raw = _counts("uint16")
    path = _h5(tmp_path / "p.h5", raw, chunks=(1, N, N), compression="gzip")
    calls: list[tuple[int, int]] = []
    data = read_data(path, PROFILE, progress=lambda done, total: calls.append((done, total)))
    assert data.provenance["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert calls[-1] == (M, M)
    np.testing.assert_array_equal(data.amplitudes, _reference(raw, True))


def test_cxi_read_records_the_files_sha256(tmp_path: Path) -> None:
    path = write_cxi(tmp_path / "sim.cxi", simulated(32), compression="gzip")
    data = read_data(path)
    assert data.provenance["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_background_hash_equals_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(np.random.default_rng(0).bytes(3 * (1 << 20) + 17))
    with sha256_in_background(path) as digest:
        pass
    assert digest() == hashlib.sha256(path.read_bytes()).hexdigest()


def test_background_hash_stops_when_the_read_fails(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(8 << 20))
    with pytest.raises(DataError, match="the read failed"), sha256_in_background(path):
        raise DataError("the read failed")


def test_background_hash_of_an_unreadable_file_names_the_file(tmp_path: Path) -> None:
    with sha256_in_background(tmp_path) as digest:  # a folder cannot be opened for reading
        pass
    with pytest.raises(DataError, match="could not be read to compute its sha256"):
        digest()
