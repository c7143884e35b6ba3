"""Files as bytes: readable-file checks, container sniffing, sha256 (also in a background
thread) and atomic writes.

Every writer of :mod:`ptycho_engine.io` goes through :func:`atomic_write`, so an interrupted
save leaves no half-written file and an input file is never overwritten (formats.md).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from ptycho_engine.errors import DataError

#: Signature of an HDF5 superblock; it sits at offset 0 or at 512, 1024, 2048, ... (userblock).
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
NPY_MAGIC = b"\x93NUMPY"

_HASH_BLOCK = 1 << 20


def check_readable_file(path: str | os.PathLike[str], what: str) -> Path:
    """Return ``path`` as a Path, or raise DataError when it is missing, a folder or empty.

    Parameters
    ----------
    path : str or path-like
    what : str
        What the file should be, for the message ("a CXI (HDF5) file").
    """
    file = Path(path)
    if not file.exists():
        raise DataError(f"{file}: file not found; expected {what}")
    if not file.is_file():
        raise DataError(f"{file}: is not a regular file; expected {what}")
    if file.stat().st_size == 0:
        raise DataError(f"{file}: the file is empty (0 bytes); expected {what}")
    return file


def sniff(path: Path) -> str:
    """Name the container of a file from its first bytes, whatever its extension.

    Returns
    -------
    str
        ``"hdf5"``, ``"npz"`` (a zip archive), ``"npy"``, ``"empty"``, ``"text"`` (decodes as
        UTF-8) or ``"unknown"``.
    """
    size = path.stat().st_size
    if size == 0:
        return "empty"
    with open(path, "rb") as handle:
        head = handle.read(8)
        if head.startswith(HDF5_MAGIC):
            return "hdf5"
        offset = 512
        while offset + 8 <= size:
            handle.seek(offset)
            if handle.read(8) == HDF5_MAGIC:
                return "hdf5"
            offset *= 2
        handle.seek(0)
        start = handle.read(4096)
    if start.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        return "npz"
    if start.startswith(NPY_MAGIC):
        return "npy"
    try:
        start.decode("utf-8")
    except UnicodeDecodeError:
        return "unknown"
    return "text"


def sha256_file(path: Path, stop: threading.Event | None = None) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks.

    Parameters
    ----------
    path : Path
        The file.
    stop : threading.Event, optional
        Checked between blocks: once set, hashing ends with ``CancelledError`` (used by
        :func:`sha256_in_background` when the read it accompanies fails).
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_HASH_BLOCK), b""):
            if stop is not None and stop.is_set():
                raise CancelledError(f"{path}: hashing stopped")
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def sha256_in_background(path: Path) -> Iterator[Callable[[], str]]:
    """Compute a file's sha256 in a worker thread while the caller reads the file.

    Reading and hashing overlap: ``hashlib`` and file reads release the GIL, so the hash costs
    (almost) no wall time next to a read that decompresses or converts data. The thread is
    joined when the block ends; when the block raises, hashing stops at the next 1 MiB block.

    Yields
    ------
    callable
        ``digest()`` waits for the hash (if it is still running) and returns the hex sha256, as
        :func:`sha256_file` would. A file that cannot be read raises ``DataError`` naming it.

    Notes
    -----
    Used next to a reader's own ``with``::

        with sha256_in_background(file) as digest, open_hdf5(file, "data") as handle:
            amplitudes, bad = read_pattern_stack(handle["data"], src, "data", intensities=True)
        provenance = {"sha256": digest()}
    """
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ptycho-sha256") as pool:
        job = pool.submit(sha256_file, path, stop)

        def digest() -> str:
            try:
                return job.result()
            except OSError as exc:
                raise DataError(f"{path}: could not be read to compute its sha256: {exc}") from exc

        try:
            yield digest
        except BaseException:
            stop.set()
            raise


def same_file(a: Path, b: Path) -> bool:
    """True when two paths name the same file (or would, once created)."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[Path], object],
    *,
    inputs: tuple[str | os.PathLike[str] | None, ...] = (),
    suffix: str = "",
) -> Path:
    """Call ``write(tmp)`` on a temporary file in the folder of ``path``, then rename it.

    Parameters
    ----------
    path : str or path-like
        Destination. Its folder must exist.
    write : callable
        Writes the whole file to the temporary path it receives.
    inputs : tuple of paths
        Files the data came from; writing over one of them is refused.
    suffix : str
        Suffix of the temporary name (some writers pick the format from it).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    DataError
        ``path`` is an input file, a folder, or its folder does not exist.

    Notes
    -----
    The temporary file is flushed to disk before the rename. An existing destination keeps its
    permission bits; a new file gets mode 0o644. When ``write`` raises, the temporary file is
    removed and the destination is left as it was.
    """
    target = Path(path)
    for source in inputs:
        if source is not None and same_file(target, Path(source)):
            raise DataError(
                f"{target}: refusing to overwrite the input file of this data set ({source}); "
                "write to another path"
            )
    if not target.parent.is_dir():
        raise DataError(f"{target}: the folder {str(target.parent)!r} does not exist")
    if target.is_dir():
        raise DataError(f"{target}: is a folder; expected a file path")
    mode = (target.stat().st_mode & 0o7777) if target.is_file() else 0o644
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix or target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
