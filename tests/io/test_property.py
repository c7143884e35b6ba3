"""Property tests: random NPZ and HDF5 structures never crash, hang or leak an exception other
than DataError out of ``read_data``, ``inspect_file`` or ``read_probe``."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ptycho_engine.errors import DataError
from ptycho_engine.io import inspect_file, read_data, read_probe

NPZ_KEYS = [
    "diffraction",
    "diff3d",
    "xcoords",
    "ycoords",
    "probeGuess",
    "objectGuess",
    "probe",
    "object",
    "probe_position_x_m",
    "probe_position_y_m",
    "data",
    "scan",
]
H5_KEYS = [
    "entry_1/data_1/data",
    "entry_1/instrument_1/detector_1/data",
    "entry_1/sample_1/geometry_1/translation",
    "entry_1/data_1/translation",
    "entry_1/instrument_1/detector_1/distance",
    "entry_1/instrument_1/detector_1/x_pixel_size",
    "entry_1/instrument_1/detector_1/y_pixel_size",
    "entry_1/instrument_1/detector_1/mask",
    "entry_1/instrument_1/source_1/energy",
    "entry_1/instrument_1/source_1/wavelength",
    "entry_1/instrument_1/source_1/illumination",
    "entry_1/image_1/data",
    "probe",
    "object",
    "probe_position_x_m",
    "probe_position_y_m",
    "probe_position_indexes",
]
DTYPES = st.sampled_from(
    [np.float32, np.float64, np.int32, np.uint16, np.int8, np.complex64, np.bool_]
)
SHAPES = st.one_of(
    st.just(()),
    hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5),
    st.tuples(st.integers(1, 4), st.just(4), st.just(4)),
    st.tuples(st.integers(1, 4), st.sampled_from([2, 3])),
)


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = np.dtype(draw(DTYPES))
    shape = draw(SHAPES)
    elements: st.SearchStrategy[Any] | None = None
    if dtype.kind == "f":
        width: Literal[32, 64] = 32 if dtype.itemsize == 4 else 64
        elements = st.one_of(st.floats(width=width), st.sampled_from([0.0, 1.0, 4.0, 1e30, -1.0]))
    elif dtype.kind == "c":
        elements = st.complex_numbers(allow_nan=True, width=64)
    return draw(hnp.arrays(dtype, shape, elements=elements))


def _call_all(path: Path) -> None:
    for call in (lambda: read_data(path), lambda: inspect_file(path), lambda: read_probe(path, 4)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                call()
        except DataError as exc:
            assert str(path) in str(exc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(NPZ_KEYS), arrays(), max_size=6))
def test_random_npz_structures(members: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.npz"
        np.savez(path, **members)
        _call_all(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(H5_KEYS), arrays(), max_size=8))
def test_random_hdf5_structures(members: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.h5"
        with h5py.File(path, "w") as handle:
            for key, value in members.items():
                handle.create_dataset(key, data=value)
        _call_all(path)


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=600), st.sampled_from([".h5", ".npz", ".cxi", ".npy"]))
def test_random_bytes(blob: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"random{suffix}"
        path.write_bytes(blob)
        _call_all(path)


def _valid_cxi_members() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    return {
        "entry_1/data_1/data": rng.poisson(3.0, (5, 8, 8)).astype(np.int32),
        "entry_1/data_1/translation": np.c_[rng.uniform(0, 5e-8, (5, 2)), np.zeros(5)],
        "entry_1/instrument_1/detector_1/distance": np.float64(2.0),
        "entry_1/instrument_1/detector_1/x_pixel_size": np.float64(75e-6),
        "entry_1/instrument_1/detector_1/y_pixel_size": np.float64(75e-6),
        "entry_1/instrument_1/source_1/energy": np.float64(1.4e-15),
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(H5_KEYS[:11]), st.one_of(st.none(), arrays()), max_size=3))
def test_mutated_valid_cxi(edits: dict[str, Any]) -> None:
    members = _valid_cxi_members()
    members.update(edits)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mutated.cxi"
        with h5py.File(path, "w") as handle:
            for key, value in members.items():
                if value is not None and not any(k.startswith(key + "/") for k in members):
                    handle.create_dataset(key, data=value)
        _call_all(path)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["diffraction", "xcoords", "ycoords", "probeGuess", "objectGuess"]),
        arrays(),
        max_size=3,
    )
)
def test_mutated_valid_npz(edits: dict[str, Any]) -> None:
    rng = np.random.default_rng(0)
    members: dict[str, Any] = {
        "diffraction": rng.random((5, 4, 4)).astype(np.float32),
        "xcoords": np.arange(5.0),
        "ycoords": np.arange(5.0),
    }
    members.update(edits)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "mutated.npz"
        np.savez(path, **members)
        _call_all(path)
