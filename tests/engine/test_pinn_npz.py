"""Tests of the PINN-style NPZ reader and writer (ptycho_engine.io.pinn_npz)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ptycho_engine.data import DiffractionData
from ptycho_engine.errors import DataError
from ptycho_engine.io import read_pinn_npz, write_pinn_npz
from ptycho_engine.simulate import simulate_dataset


@pytest.fixture(scope="module")
def dataset() -> DiffractionData:
    return simulate_dataset(N=32, n_positions=50, photons=1e5, seed=1)


def base_arrays(d: DiffractionData) -> dict[str, np.ndarray]:
    assert d.probe is not None and d.object_gt is not None
    return {
        "diffraction": d.amplitudes,
        "xcoords": d.positions_px[:, 1],
        "ycoords": d.positions_px[:, 0],
        "probeGuess": d.probe,
        "objectGuess": d.object_gt,
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------- round trip


def test_round_trip_is_exact(dataset: DiffractionData, tmp_path: Path) -> None:
    path = write_pinn_npz(tmp_path / "sim.npz", dataset)
    assert path == tmp_path / "sim.npz"
    back = read_pinn_npz(path)
    assert np.array_equal(back.amplitudes, dataset.amplitudes)
    assert back.amplitudes.dtype == np.float32
    assert np.array_equal(back.positions_px, dataset.positions_px)
    assert back.probe is not None and dataset.probe is not None
    assert np.array_equal(back.probe, dataset.probe)
    assert back.object_gt is not None and dataset.object_gt is not None
    assert np.array_equal(back.object_gt, dataset.object_gt)
    assert back.provenance == {
        "path": str(path),
        "format": "pinn-npz",
        "sha256": sha256(path),
    }
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == sorted(
            ["diffraction", "xcoords", "ycoords", "probeGuess", "objectGuess", "scan_index"]
        )
        assert npz["diffraction"].dtype == np.float32
        assert npz["xcoords"].dtype == np.float64
        assert npz["probeGuess"].dtype == np.complex64
        assert np.array_equal(npz["xcoords"], dataset.positions_px[:, 1])  # x = column
        assert np.array_equal(npz["ycoords"], dataset.positions_px[:, 0])
        assert np.array_equal(npz["scan_index"], np.arange(50))


def test_optional_members_are_optional(dataset: DiffractionData, tmp_path: Path) -> None:
    bare = DiffractionData(dataset.amplitudes, dataset.positions_px)
    path = write_pinn_npz(tmp_path / "bare.npz", bare)
    with np.load(path, allow_pickle=False) as npz:
        assert "probeGuess" not in npz.files and "objectGuess" not in npz.files
    back = read_pinn_npz(path)
    assert back.probe is None and back.object_gt is None
    assert np.array_equal(back.amplitudes, dataset.amplitudes)


def test_atomic_write_leaves_no_temporary_files(dataset: DiffractionData, tmp_path: Path) -> None:
    target = tmp_path / "out.npz"
    write_pinn_npz(target, dataset)
    write_pinn_npz(target, dataset)  # overwriting another (non-input) file is allowed
    assert [p.name for p in tmp_path.iterdir()] == ["out.npz"]


def test_failed_write_keeps_the_old_file(
    dataset: DiffractionData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.npz"
    write_pinn_npz(target, dataset)
    before = sha256(target)

    def broken_savez(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        write_pinn_npz(target, dataset)
    assert [p.name for p in tmp_path.iterdir()] == ["out.npz"]
    assert sha256(target) == before


def test_refuses_to_overwrite_the_input_file(dataset: DiffractionData, tmp_path: Path) -> None:
    source = write_pinn_npz(tmp_path / "input.npz", dataset)
    before = sha256(source)
    loaded = read_pinn_npz(source)
    with pytest.raises(DataError, match=r"input\.npz") as info:
        write_pinn_npz(source, loaded)
    assert "overwrite" in str(info.value)
    # Another spelling of the same path is refused too.
    with pytest.raises(DataError, match="overwrite"):
        write_pinn_npz(tmp_path / "." / "input.npz", loaded)
    assert sha256(source) == before
    copy = read_pinn_npz(write_pinn_npz(tmp_path / "copy.npz", loaded))
    assert np.array_equal(copy.amplitudes, dataset.amplitudes)
    assert copy.provenance["path"] == str(tmp_path / "copy.npz")


def test_write_into_missing_folder_is_refused(dataset: DiffractionData, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        write_pinn_npz(tmp_path / "nope" / "x.npz", dataset)


# ---------------------------------------------------------------------------- layouts


def test_legacy_layouts_are_read(dataset: DiffractionData, tmp_path: Path) -> None:
    arrays = base_arrays(dataset)
    amp = dataset.amplitudes

    legacy = dict(arrays)
    del legacy["diffraction"]
    legacy["diff3d"] = np.ascontiguousarray(amp.transpose(1, 2, 0))  # (N, N, M)
    np.savez(tmp_path / "legacy.npz", allow_pickle=False, **legacy)
    back = read_pinn_npz(tmp_path / "legacy.npz")
    assert back.amplitudes.shape == (50, 32, 32)
    assert np.array_equal(back.amplitudes, amp)
    assert back.amplitudes.flags.c_contiguous

    channel = dict(arrays, diffraction=amp[..., None].astype(np.float64))  # (M, N, N, 1)
    np.savez(tmp_path / "channel.npz", allow_pickle=False, **channel)
    back = read_pinn_npz(tmp_path / "channel.npz")
    assert back.amplitudes.dtype == np.float32
    assert np.array_equal(back.amplitudes, amp)
    assert np.array_equal(back.positions_px, dataset.positions_px)


def test_pickled_metadata_is_skipped_with_a_warning(
    dataset: DiffractionData, tmp_path: Path
) -> None:
    path = tmp_path / "meta.npz"
    np.savez(
        path,
        allow_pickle=True,
        _metadata=np.array([{"a": 1}], dtype=object),
        **base_arrays(dataset),
    )
    with pytest.warns(UserWarning, match="_metadata") as record:
        back = read_pinn_npz(path)
    assert str(path) in str(record[0].message)
    assert np.array_equal(back.amplitudes, dataset.amplitudes)


# ---------------------------------------------------------------------------- malformed files

Edit = Callable[[dict[str, np.ndarray]], None]


def _drop(key: str) -> Edit:
    def edit(a: dict[str, np.ndarray]) -> None:
        del a[key]

    return edit


def _set(key: str, value: Callable[[dict[str, np.ndarray]], np.ndarray]) -> Edit:
    def edit(a: dict[str, np.ndarray]) -> None:
        a[key] = value(a)

    return edit


def _poke(value: float) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    def make(a: dict[str, np.ndarray]) -> np.ndarray:
        out = a["diffraction"].copy()
        out[3, 4, 5] = value
        return out

    return make


def _fill(value: float) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """Pattern 3 holds nothing but ``value``."""

    def make(a: dict[str, np.ndarray]) -> np.ndarray:
        out = a["diffraction"].copy()
        out[3] = value
        return out

    return make


MALFORMED: list[tuple[str, Edit, str, str]] = [
    ("missing diffraction", _drop("diffraction"), "diffraction", "missing"),
    ("missing xcoords", _drop("xcoords"), "xcoords", "missing"),
    ("missing ycoords", _drop("ycoords"), "ycoords", "missing"),
    (
        "pickled diffraction",
        _set("diffraction", lambda a: np.array([a["diffraction"][0]], dtype=object)),
        "diffraction",
        "pickled",
    ),
    (
        "pickled xcoords",
        _set("xcoords", lambda a: np.array([None] * 50, dtype=object)),
        "xcoords",
        "pickled",
    ),
    ("wrong rank", _set("diffraction", lambda a: a["diffraction"][0]), "diffraction", "rank"),
    (
        "rank 4 not singleton",
        _set("diffraction", lambda a: np.stack([a["diffraction"]] * 2, axis=-1)),
        "diffraction",
        "rank",
    ),
    (
        "non-square",
        _set("diffraction", lambda a: a["diffraction"][:, :, :30]),
        "diffraction",
        "square",
    ),
    ("mismatched x", _set("xcoords", lambda a: a["xcoords"][:-1]), "xcoords", "49"),
    ("mismatched y", _set("ycoords", lambda a: a["ycoords"][:45]), "ycoords", "45"),
    (
        "empty",
        _set("diffraction", lambda a: np.zeros((0, 32, 32), np.float32)),
        "diffraction",
        "empty",
    ),
    # a NaN or infinite pixel is a bad pixel (test below); a pattern without one finite value
    # is an error, as in every reader (ptycho_engine.io.validation)
    ("nan pattern", _set("diffraction", _fill(np.nan)), "diffraction", "pattern 3 holds no"),
    ("inf pattern", _set("diffraction", _fill(np.inf)), "diffraction", "pattern 3 holds no"),
    ("negative", _set("diffraction", _poke(-1.0)), "diffraction", "negative"),
    (
        "complex",
        _set("diffraction", lambda a: a["diffraction"].astype(np.complex64)),
        "diffraction",
        "complex",
    ),
    (
        "nan position",
        _set("ycoords", lambda a: np.where(np.arange(50) == 7, np.nan, a["ycoords"])),
        "ycoords",
        "NaN",
    ),
    (
        "probe size",
        _set("probeGuess", lambda a: a["probeGuess"][:16, :16]),
        "probeGuess",
        "(32, 32)",
    ),
    (
        "object rank",
        _set("objectGuess", lambda a: a["objectGuess"][None]),
        "objectGuess",
        "2-D",
    ),
    (
        "string diffraction",
        _set("diffraction", lambda a: np.array(["a", "b"])),
        "diffraction",
        "numeric",
    ),
]


@pytest.mark.parametrize(
    ("edit", "key", "detail"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_members_raise_data_error(
    dataset: DiffractionData, tmp_path: Path, edit: Edit, key: str, detail: str
) -> None:
    arrays = base_arrays(dataset)
    edit(arrays)
    path = tmp_path / "bad_file.npz"
    np.savez(path, allow_pickle=True, **arrays)
    with pytest.raises(DataError) as info:
        read_pinn_npz(path)
    message = str(info.value)
    assert str(path) in message
    assert repr(key) in message
    assert detail in message


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
def test_non_finite_pixels_are_masked_as_bad_pixels(
    dataset: DiffractionData, tmp_path: Path, value: float
) -> None:
    arrays = base_arrays(dataset)
    arrays["diffraction"] = _poke(value)(arrays)
    path = tmp_path / "holes.npz"
    np.savez(path, allow_pickle=False, **arrays)
    back = read_pinn_npz(path)
    expected = np.zeros((32, 32), dtype=bool)
    expected[4, 5] = True
    assert back.bad_pixels is not None
    np.testing.assert_array_equal(back.bad_pixels, expected)
    assert back.amplitudes[3, 4, 5] == 0.0
    keep = np.ones(dataset.amplitudes.shape, dtype=bool)
    keep[3, 4, 5] = False
    np.testing.assert_array_equal(back.amplitudes[keep], dataset.amplitudes[keep])
    assert back.provenance["steps"] == ["1 NaN/infinite pixels set to 0 and marked bad"]


def test_files_that_are_not_npz(dataset: DiffractionData, tmp_path: Path) -> None:
    missing = tmp_path / "missing.npz"
    with pytest.raises(DataError, match="not found") as info:
        read_pinn_npz(missing)
    assert str(missing) in str(info.value)

    text = tmp_path / "notes.npz"
    text.write_text("hello, not a zip file")
    with pytest.raises(DataError, match="not an NPZ archive") as info:
        read_pinn_npz(text)
    assert str(text) in str(info.value)

    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty"):
        read_pinn_npz(empty)

    npy = tmp_path / "array.npy"
    np.save(npy, dataset.amplitudes)
    with pytest.raises(DataError, match=r"\.npy array"):
        read_pinn_npz(npy)

    good = write_pinn_npz(tmp_path / "good.npz", dataset)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(DataError) as info:
        read_pinn_npz(truncated)
    assert str(truncated) in str(info.value)

    with pytest.raises(DataError, match="not a regular file"):
        read_pinn_npz(tmp_path)
