"""NPZ archives and NPY arrays, loaded without pickle.

Every member is loaded with ``allow_pickle=False``: a pickled (object) member is refused with a
message naming the file and the key, never unpickled (formats.md, "Loading must be safe").
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.errors import DataError


@contextmanager
def open_npz(path: Path, what: str) -> Iterator[Any]:
    """Open an NPZ archive without pickle; every failure becomes a DataError naming the file.

    ``np.load`` is given a handle that this function closes: on a corrupt archive numpy would
    otherwise leave its own handle open.

    Parameters
    ----------
    path : Path
    what : str
        What the archive should hold, for the messages ("PINN-style data").

    Yields
    ------
    numpy.lib.npyio.NpzFile
    """
    with open(path, "rb") as handle:
        try:
            archive = np.load(handle, allow_pickle=False)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
            raise DataError(f"{path}: not a readable NPZ (zip) archive of {what}: {exc}") from exc
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(
                f"{path}: expected an NPZ archive of named arrays ({what}), found a single "
                f"{type(archive).__name__}"
            )
        with archive:
            yield archive


def npz_member(archive: Any, key: str, src: Path | str) -> np.ndarray:
    """Load one NPZ member; pickled (object) members and corrupt members raise DataError."""
    try:
        return np.asarray(archive[key])
    except ValueError as exc:
        raise _load_error(
            exc, f"{src}: key {key!r}", "a numeric array", "could not be read"
        ) from exc
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, RuntimeError) as exc:
        raise DataError(f"{src}: key {key!r} could not be read (corrupt member): {exc}") from exc


def load_npy(path: Path, what: str) -> np.ndarray:
    """Load a ``.npy`` array without pickle; failures raise DataError naming the file.

    Parameters
    ----------
    path : Path
    what : str
        What the array should be, for the messages ("a complex probe").
    """
    with open(path, "rb") as handle:
        try:
            return np.asarray(np.load(handle, allow_pickle=False))
        except ValueError as exc:
            raise _load_error(exc, f"{path}:", what, "not a readable .npy array") from exc
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable .npy array: {exc}") from exc


def _load_error(exc: ValueError, where: str, expected: str, failed: str) -> DataError:
    """The DataError of a refused load: a pickled (object) array, or another ``ValueError``."""
    if "pickle" in str(exc):
        return DataError(
            f"{where} holds a pickled object array (dtype=object); expected {expected}; "
            "pickled data is never loaded"
        )
    return DataError(f"{where} {failed}: {exc}")
