"""PINN-style NPZ files, the format of earlier PtychoPINN work (formats.md, input 1).

Layout (all positions in object pixels, x = column, y = row):

- ``diffraction`` (or ``diff3d`` when reading): amplitudes ``sqrt(counts)``, shape
  ``(M, N, N)``; the reader also accepts the legacy ``(N, N, M)`` layout (recognised when the
  first two axes are equal and the last one differs; a cube ``(N, N, N)`` is read as
  ``(M, N, N)``) and a trailing singleton axis ``(M, N, N, 1)``. When both keys exist,
  ``diffraction`` wins.
- ``xcoords``, ``ycoords``: ``(M,)`` patch centres.
- ``probeGuess``: optional ``(N, N)`` complex probe.
- ``objectGuess``: optional ``(H, W)`` complex object (ground truth of a simulation).
- ``scan_index``: optional ``(M,)`` integers; written as ``0..M-1``, ignored when reading, as
  are ``xcoords_start``/``ycoords_start`` and any other extra key.
- ``_metadata``: a pickled object in upstream files; it is skipped with a warning and never
  unpickled. Every member is loaded with ``allow_pickle=False``.

Files are written uncompressed (``np.savez``): saving and loading stay fast, and noisy
float32 amplitudes gain little from deflate. Writes are atomic (a temporary file in the target
folder, then ``os.replace``) and never overwrite the file a data set was read from.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.data import DiffractionData
from ptycho_engine.errors import DataError
from ptycho_engine.io._common import same_file

FORMAT_NAME = "pinn-npz"
DIFFRACTION_KEYS = ("diffraction", "diff3d")
SKIPPED_PICKLE_KEYS = ("_metadata",)

_ZIP_MAGIC = b"PK"
_NPY_MAGIC = b"\x93NUMPY"
_HASH_BLOCK = 1 << 20


def write_pinn_npz(path: str | os.PathLike[str], data: DiffractionData) -> Path:
    """Write a data set as a PINN-style NPZ file, atomically.

    Parameters
    ----------
    path : str or path-like
        Destination, used exactly as given (no ``.npz`` suffix is appended). Its folder must
        exist.
    data : DiffractionData
        The data set. Written keys: ``diffraction`` (M, N, N) float32 amplitudes,
        ``xcoords``/``ycoords`` (M,) float64 object pixels (x = ``positions_px[:, 1]``,
        y = ``positions_px[:, 0]``), ``scan_index`` (M,) int64 ``0..M-1``, and, when present,
        ``probeGuess`` (N, N) complex64 and ``objectGuess`` (H, W) complex64.

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    DataError
        ``path`` is the file ``data`` was read from (``data.provenance["path"]``), a folder,
        or in a folder that does not exist.
    OSError
        The file system refused the write; no partial file is left behind.

    Notes
    -----
    The archive is first written to a hidden temporary file in the destination folder, flushed
    to disk, then renamed over ``path``. An existing destination keeps its permission bits; a
    new file gets mode 0o644.
    """
    if not isinstance(data, DiffractionData):
        raise DataError(f"{path}: expected a DiffractionData to write, got {type(data).__name__}")
    target = Path(path)
    source = data.provenance.get("path")
    if source is not None and same_file(target, Path(str(source))):
        raise DataError(
            f"{target}: refusing to overwrite the input file of this data set ({source}); "
            "write to another path"
        )
    folder = target.parent
    if not folder.is_dir():
        raise DataError(f"{target}: the folder {str(folder)!r} does not exist")
    if target.is_dir():
        raise DataError(f"{target}: is a folder; expected a file path ending in .npz")

    positions = data.positions_px
    arrays: dict[str, np.ndarray] = {
        "diffraction": np.ascontiguousarray(data.amplitudes, dtype=np.float32),
        "xcoords": np.ascontiguousarray(positions[:, 1], dtype=np.float64),
        "ycoords": np.ascontiguousarray(positions[:, 0], dtype=np.float64),
        "scan_index": np.arange(data.n_patterns, dtype=np.int64),
    }
    if data.probe is not None:
        arrays["probeGuess"] = np.ascontiguousarray(data.probe, dtype=np.complex64)
    if data.object_gt is not None:
        arrays["objectGuess"] = np.ascontiguousarray(data.object_gt, dtype=np.complex64)

    mode = (target.stat().st_mode & 0o7777) if target.is_file() else 0o644
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed and renamed explicitly below
        dir=folder, prefix=f".{target.name}.", suffix=".npz", delete=False
    )
    temp_path = Path(handle.name)
    try:
        with handle:
            np.savez(handle, allow_pickle=False, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_path, mode)
        os.replace(temp_path, target)
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    return target


def read_pinn_npz(path: str | os.PathLike[str]) -> DiffractionData:
    """Read a PINN-style NPZ file (see the module docstring for the layout).

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file.

    Returns
    -------
    DiffractionData
        ``amplitudes`` (M, N, N) float32, ``positions_px`` (M, 2) float64 ``(y, x)`` =
        ``(ycoords, xcoords)``, ``probe`` (N, N) complex64 or None, ``object_gt`` (H, W)
        complex64 or None, ``provenance`` = ``{"path", "format": "pinn-npz", "sha256"}``
        (sha256 of the file bytes, hex).

    Raises
    ------
    DataError
        With the file path, the key, what was expected and what was found: a missing file, a
        file that is not an NPZ (zip) archive, a missing key, a pickled (object) member, a
        wrong rank, non-square patterns, mismatched counts, empty arrays, NaN or infinite
        values, negative or complex amplitudes, a probe of the wrong size.

    Warns
    -----
    UserWarning
        When a ``_metadata`` member is present (it is skipped, never unpickled).
    """
    file = Path(path)
    src = str(file)
    digest = _check_and_hash(file)
    # np.load is given an open handle that this function closes: on a corrupt archive numpy
    # would otherwise leave its own handle open.
    with open(file, "rb") as handle:
        try:
            archive = np.load(handle, allow_pickle=False)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise DataError(
                f"{src}: not a readable NPZ (zip) archive of PINN-style data: {exc}"
            ) from exc
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise DataError(
                f"{src}: expected an NPZ archive of named arrays, found a single "
                f"{type(archive).__name__}"
            )
        with archive:
            amplitudes, coords, probe, obj = _read_members(archive, src)

    positions = np.stack([coords["ycoords"], coords["xcoords"]], axis=1)
    provenance: dict[str, Any] = {"path": src, "format": FORMAT_NAME, "sha256": digest}
    return DiffractionData(amplitudes, positions, probe=probe, object_gt=obj, provenance=provenance)


def _read_members(
    archive: Any, src: str
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray | None, np.ndarray | None]:
    """Read and validate the members of an open archive."""
    keys = list(archive.files)
    for key in SKIPPED_PICKLE_KEYS:
        if key in keys:
            warnings.warn(
                f"{src}: skipped member {key!r} (a pickled object in PtychoPINN files; "
                "it is never unpickled)",
                UserWarning,
                stacklevel=3,
            )
    diff_key = next((k for k in DIFFRACTION_KEYS if k in keys), None)
    if diff_key is None:
        raise DataError(
            f"{src}: missing key 'diffraction' (or 'diff3d'): expected (M, N, N) "
            f"amplitudes; found keys {keys}"
        )
    amplitudes = _diffraction(_member(archive, diff_key, src), src, diff_key)
    m, n = amplitudes.shape[0], amplitudes.shape[1]
    coords: dict[str, np.ndarray] = {}
    for key in ("ycoords", "xcoords"):
        if key not in keys:
            raise DataError(
                f"{src}: missing key {key!r}: expected ({m},) scan positions in object "
                f"pixels; found keys {keys}"
            )
        coords[key] = _coordinates(_member(archive, key, src), src, key, m, diff_key)
    probe = None
    if "probeGuess" in keys:
        probe = _complex_image(_member(archive, "probeGuess", src), src, "probeGuess")
        if probe.shape != (n, n):
            raise DataError(
                f"{src}: key 'probeGuess' is {probe.shape[0]}x{probe.shape[1]} but the "
                f"patterns of {diff_key!r} are {n}x{n}; expected ({n}, {n})"
            )
    obj = None
    if "objectGuess" in keys:
        obj = _complex_image(_member(archive, "objectGuess", src), src, "objectGuess")
    return amplitudes, coords, probe, obj


def _check_and_hash(file: Path) -> str:
    """Refuse missing, empty and non-zip files; return the hex sha256 of the bytes."""
    src = str(file)
    if not file.exists():
        raise DataError(f"{src}: file not found; expected a PINN-style .npz archive")
    if not file.is_file():
        raise DataError(f"{src}: is not a regular file; expected a PINN-style .npz archive")
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        head = fh.read(_HASH_BLOCK)
        digest.update(head)
        for block in iter(lambda: fh.read(_HASH_BLOCK), b""):
            digest.update(block)
    if not head:
        raise DataError(f"{src}: the file is empty; expected a PINN-style .npz (zip) archive")
    if head.startswith(_NPY_MAGIC):
        raise DataError(
            f"{src}: is a single .npy array, not an .npz archive with the keys "
            "'diffraction', 'xcoords', 'ycoords'"
        )
    if not head.startswith(_ZIP_MAGIC):
        raise DataError(
            f"{src}: not an NPZ archive: expected a zip file (starting with b'PK'), "
            f"found first bytes {head[:8]!r}"
        )
    return digest.hexdigest()


def _member(archive: Any, key: str, src: str) -> np.ndarray:
    try:
        return np.asarray(archive[key])
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(
                f"{src}: key {key!r} holds a pickled object array (dtype=object); expected a "
                "numeric array; pickled members are never loaded"
            ) from exc
        raise DataError(f"{src}: key {key!r} could not be read: {exc}") from exc
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DataError(f"{src}: key {key!r} could not be read (corrupt member): {exc}") from exc


def _check_numeric(arr: np.ndarray, src: str, key: str, *, allow_complex: bool) -> None:
    if np.iscomplexobj(arr) and not allow_complex:
        raise DataError(
            f"{src}: key {key!r}: expected real values, found complex dtype {arr.dtype}"
        )
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{src}: key {key!r}: expected a numeric array, found dtype {arr.dtype}")


def _diffraction(raw: np.ndarray, src: str, key: str) -> np.ndarray:
    """Validate diffraction amplitudes and return them as (M, N, N) float32."""
    if np.iscomplexobj(raw):
        raise DataError(
            f"{src}: key {key!r}: expected real amplitudes (sqrt of counts), found complex "
            f"dtype {raw.dtype}"
        )
    _check_numeric(raw, src, key, allow_complex=False)
    if raw.size == 0:
        raise DataError(
            f"{src}: key {key!r} is empty (shape {raw.shape}); expected (M, N, N) amplitudes "
            "with M, N >= 1"
        )
    arr = raw
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise DataError(
            f"{src}: key {key!r}: expected rank 3, (M, N, N) (or (N, N, M), or (M, N, N, 1)), "
            f"found rank {raw.ndim} with shape {raw.shape}"
        )
    a, b, c = arr.shape
    if b != c:
        if a == b:
            arr = np.moveaxis(arr, -1, 0)  # legacy (N, N, M)
        else:
            raise DataError(
                f"{src}: key {key!r}: expected square patterns, (M, N, N) or legacy "
                f"(N, N, M), found shape {raw.shape}"
            )
    with np.errstate(over="ignore", invalid="ignore"):  # overflow -> inf -> refused below
        amplitudes = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(amplitudes)
    if not finite.all():
        first = int(np.argmin(finite.reshape(finite.shape[0], -1).all(axis=1)))
        raise DataError(
            f"{src}: key {key!r}: expected finite amplitudes, found "
            f"{int(finite.size - np.count_nonzero(finite))} NaN or infinite values "
            f"(first in pattern {first})"
        )
    low = float(amplitudes.min())
    if low < 0.0:
        raise DataError(
            f"{src}: key {key!r}: expected non-negative amplitudes (sqrt of counts), found "
            f"{int(np.count_nonzero(amplitudes < 0))} negative values (minimum {low:g})"
        )
    return amplitudes


def _coordinates(raw: np.ndarray, src: str, key: str, m: int, diff_key: str) -> np.ndarray:
    """Validate one coordinate column and return it as (M,) float64."""
    _check_numeric(raw, src, key, allow_complex=False)
    arr = raw
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise DataError(
            f"{src}: key {key!r}: expected rank 1, ({m},), found rank {raw.ndim} with shape "
            f"{raw.shape}"
        )
    if arr.shape[0] != m:
        raise DataError(
            f"{src}: key {key!r} has {arr.shape[0]} positions but {diff_key!r} has {m} "
            f"patterns; expected ({m},)"
        )
    coords = arr.astype(np.float64)
    if not np.all(np.isfinite(coords)):
        raise DataError(
            f"{src}: key {key!r}: expected finite positions, found "
            f"{int(np.count_nonzero(~np.isfinite(coords)))} NaN or infinite values"
        )
    return coords


def _complex_image(raw: np.ndarray, src: str, key: str) -> np.ndarray:
    """Validate a probe or object image and return it as 2-D complex64."""
    _check_numeric(raw, src, key, allow_complex=True)
    if raw.ndim != 2:
        raise DataError(
            f"{src}: key {key!r}: expected a 2-D complex image, found rank {raw.ndim} with "
            f"shape {raw.shape}"
        )
    if raw.size == 0:
        raise DataError(f"{src}: key {key!r} is empty (shape {raw.shape}); expected (H, W)")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow -> inf -> refused below
        image = raw.astype(np.complex64)
    if not np.all(np.isfinite(image)):
        raise DataError(
            f"{src}: key {key!r}: expected finite values, found "
            f"{int(np.count_nonzero(~np.isfinite(image)))} NaN or infinite values"
        )
    return image
