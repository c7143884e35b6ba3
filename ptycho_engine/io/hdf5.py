"""HDF5 access with clear errors: opening read-only, looking up datasets, reading them.

A corrupt or truncated file, a dataset that cannot be read and an external link all become a
``DataError`` naming the file and the dataset path. External links are refused: a crafted file
could otherwise make us read any file the user can read.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.errors import DataError
from ptycho_engine.io.validation import positive_scalar


@contextmanager
def open_hdf5(path: Path, what: str) -> Iterator[Any]:
    """Open an HDF5 file read-only; a corrupt or truncated file raises DataError.

    The ``hdf5plugin`` filters (Blosc, LZ4, bitshuffle, Zstd, ...) are registered when that
    package is installed, so compressed detector data opens.

    Parameters
    ----------
    path : Path
    what : str
        What the file should be, for the message ("a CXI file").

    Yields
    ------
    h5py.File
    """
    import h5py

    with contextlib.suppress(ImportError):  # optional: registers compression filters
        import hdf5plugin  # noqa: F401
    try:
        handle = h5py.File(path, "r")
    except (OSError, ValueError, RuntimeError) as exc:
        raise DataError(
            f"{path}: not a readable HDF5 file ({what}); it may be truncated or corrupt: {exc}"
        ) from exc
    try:
        yield handle
    finally:
        handle.close()


def h5_get(handle: Any, key: str, src: Path | str) -> Any | None:
    """Return the object at ``key`` or None when absent; external links are refused."""
    import h5py

    try:
        node = handle
        parts = [part for part in key.split("/") if part]
        for depth, name in enumerate(parts):
            if not isinstance(node, h5py.Group) or name not in node:
                return None
            link = node.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise DataError(
                    f"{src}: {'/'.join(parts[: depth + 1])!r} is an external link to "
                    f"{link.filename!r}; external links are not followed (copy the data in)"
                )
            node = node[name]
        return node
    except DataError:
        raise
    except (KeyError, OSError, ValueError, RuntimeError, TypeError) as exc:
        raise DataError(f"{src}: {key!r} could not be opened (corrupt file?): {exc}") from exc


def h5_dataset(handle: Any, key: str, src: Path | str) -> Any | None:
    """Return the dataset at ``key``, None when absent, DataError when it is a group."""
    import h5py

    obj = h5_get(handle, key, src)
    if obj is None:
        return None
    if not isinstance(obj, h5py.Dataset):
        raise DataError(f"{src}: {key!r} is a {type(obj).__name__}; expected a dataset")
    return obj


def h5_read(dataset: Any, src: Path | str, key: str) -> np.ndarray:
    """Read a whole (small) dataset into memory; a read failure raises DataError."""
    try:
        value = np.asarray(dataset[()])
    except (OSError, ValueError, RuntimeError, TypeError) as exc:
        raise DataError(f"{src}: {key!r} could not be read (corrupt data?): {exc}") from exc
    return value


def h5_scalar(handle: Any, key: str, src: Path | str, unit: str) -> float | None:
    """A positive finite scalar (a 0-d or single-element dataset) or None when absent."""
    dataset = h5_dataset(handle, key, src)
    if dataset is None:
        return None
    return positive_scalar(h5_read(dataset, src, key), src, key, unit)
