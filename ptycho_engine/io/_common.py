"""Helpers shared by the readers and writers: hashing, sniffing, safe HDF5 access, atomic writes,
geometry and pattern conversions.

Nothing here unpickles anything: NPZ members are loaded with ``allow_pickle=False`` and HDF5
external links are refused (a crafted file could otherwise make us read any file the user can
read).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from ptycho_engine.errors import DataError

#: ``h * c`` in eV * m: ``lambda_m = HC_EV_M / energy_ev`` (physics.md section 6).
HC_EV_M = 12.398419843320026e-7
#: One electronvolt in joules (exact, SI 2019).
ELECTRON_VOLT_J = 1.602176634e-19
#: Signature of an HDF5 superblock; it sits at offset 0 or at 512, 1024, 2048, ... (userblock).
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
NPY_MAGIC = b"\x93NUMPY"
#: Bytes of stored pattern data read per slice (lazy, sliced reads). 4 MiB keeps a slice that
#: HDF5 has just decompressed in the shared L3 cache while another thread converts it, and is
#: large enough that the cost of each call is negligible; two slice buffers are in use at a time.
SLICE_BYTES = 4 << 20

ProgressCallback = Callable[[int, int], None]

_HASH_BLOCK = 1 << 20


# ------------------------------------------------------------------------------------ files


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


def check_readable_file(path: str | os.PathLike[str], what: str) -> Path:
    """Return ``path`` as a Path, or raise DataError when it is missing, a folder or empty."""
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


# ------------------------------------------------------------------------------------ NPZ


@contextmanager
def open_npz(path: Path, what: str) -> Iterator[Any]:
    """Open an NPZ archive without pickle; every failure becomes a DataError naming the file."""
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
        if "pickle" in str(exc):
            raise DataError(
                f"{src}: key {key!r} holds a pickled object array (dtype=object); expected a "
                "numeric array; pickled members are never loaded"
            ) from exc
        raise DataError(f"{src}: key {key!r} could not be read: {exc}") from exc
    except (zipfile.BadZipFile, OSError, EOFError, KeyError, RuntimeError) as exc:
        raise DataError(f"{src}: key {key!r} could not be read (corrupt member): {exc}") from exc


# ------------------------------------------------------------------------------------ HDF5


@contextmanager
def open_hdf5(path: Path, what: str) -> Iterator[Any]:
    """Open an HDF5 file read-only; a corrupt or truncated file raises DataError.

    The ``hdf5plugin`` filters (Blosc, LZ4, bitshuffle, Zstd, ...) are registered when that
    package is installed, so compressed detector data opens.
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
    """Read a whole (small) dataset; numeric dtypes only."""
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


def positive_scalar(raw: Any, src: Path | str, key: str, unit: str) -> float:
    """Validate a single positive, finite number."""
    arr = np.asarray(raw)
    if arr.dtype.kind not in "iuf" or arr.size != 1:
        raise DataError(
            f"{src}: {key!r}: expected one number in {unit}, found dtype {arr.dtype} with "
            f"shape {arr.shape}"
        )
    value = float(arr.reshape(-1)[0])
    if not math.isfinite(value) or value <= 0.0:
        raise DataError(f"{src}: {key!r}: expected a positive number in {unit}, found {value!r}")
    return value


# ------------------------------------------------------------------------------------ arrays


def require_numeric(arr: np.ndarray, src: Path | str, key: str, *, complex_ok: bool) -> None:
    """Refuse non-numeric (object, string, bool, void) and, unless allowed, complex dtypes."""
    kinds = "iufc" if complex_ok else "iuf"
    if arr.dtype.kind not in kinds:
        expected = "a numeric" if complex_ok else "a real numeric"
        raise DataError(f"{src}: {key!r}: expected {expected} array, found dtype {arr.dtype}")


def pattern_stack_shape(shape: tuple[int, ...], src: Path | str, key: str) -> tuple[int, int, int]:
    """Validate the shape of a pattern stack: (M, H, W) with M, H, W >= 1 and H == W."""
    if len(shape) == 4 and shape[-1] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise DataError(
            f"{src}: {key!r}: expected a rank-3 stack of patterns (M, N, N), found rank "
            f"{len(shape)} with shape {shape}"
        )
    m, h, w = shape
    if m == 0 or h == 0 or w == 0:
        raise DataError(f"{src}: {key!r} is empty (shape {shape}); expected (M, N, N), M, N >= 1")
    if h != w:
        raise DataError(
            f"{src}: {key!r}: expected square patterns (M, N, N), found {h}x{w} (shape {shape})"
        )
    return int(m), int(h), int(w)


def read_pattern_stack(
    source: Any,
    src: Path | str,
    key: str,
    *,
    intensities: bool,
    progress: ProgressCallback | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a pattern stack in slices and convert it to float32 amplitudes.

    Two threads share the work. The calling thread reads slice ``k + 1`` (h5py releases the
    GIL while HDF5 decompresses) while a worker thread validates slice ``k`` and writes its
    amplitudes into the output in one pass (numpy releases the GIL in its loops). An HDF5
    dataset is read with ``read_direct`` into two reused slice buffers, so peak memory is the
    returned array plus two slices of :data:`SLICE_BYTES`. Only the calling thread calls h5py
    (HDF5 is not safe to call from several threads at once); the worker only touches arrays.
    An error found by the worker is raised here, in the caller, and the worker is joined
    whatever happens.

    Parameters
    ----------
    source : h5py.Dataset or ndarray
        ``(M, N, N)`` (or ``(M, N, N, 1)``) counts or amplitudes, any real dtype.
    src, key : str
        File and dataset names for messages.
    intensities : bool
        True when the values are counts (the square root is taken).
    progress : callable, optional
        ``progress(done, total)`` after every slice, ``total = M``, called from the calling
        thread.

    Returns
    -------
    amplitudes : ndarray, (M, N, N) float32
        Non-finite pixels are set to 0.
    nonfinite : ndarray, (N, N) bool or None
        Pixels that were NaN or infinite in at least one pattern (None when there were none).

    Raises
    ------
    DataError
        Wrong rank or dtype, empty, negative values, a pattern that is entirely non-finite, or
        a slice that cannot be read.
    """
    shape = tuple(int(s) for s in source.shape)
    m, n, _ = pattern_stack_shape(shape, src, key)
    dtype = np.dtype(source.dtype)
    if dtype.kind not in "iuf":
        raise DataError(
            f"{src}: {key!r}: expected real numeric patterns, found dtype {dtype}"
            + (" (complex)" if dtype.kind == "c" else "")
        )
    step = max(1, SLICE_BYTES // (n * n * dtype.itemsize))
    out = np.empty((m, n, n), dtype=np.float32)
    read = _slice_reader(source, shape, dtype, step, src, key)
    convert = _SliceConverter(out, dtype, src, key, intensities)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ptycho-patterns") as worker:
        pending: Future[None] | None = None
        for index, start in enumerate(range(0, m, step)):
            block = read(index, start, min(m, start + step))
            if pending is not None:
                pending.result()  # the previous slice is converted: its buffer is free again
                if progress is not None:
                    progress(start, m)
            pending = worker.submit(convert, block, start)
        assert pending is not None  # m >= 1
        pending.result()
    if progress is not None:
        progress(m, m)
    return out, convert.bad


def _slice_reader(
    source: Any, shape: tuple[int, ...], dtype: np.dtype, step: int, src: Path | str, key: str
) -> Callable[[int, int, int], np.ndarray]:
    """Return ``read(index, start, stop)``: patterns ``start:stop`` of ``source`` as an array.

    A dataset with ``read_direct`` (h5py) is read into one of two buffers of ``step``
    patterns, alternating with ``index``: the array returned for slice ``index`` is overwritten
    by the read of slice ``index + 2``. Other sources (ndarrays) are sliced. A failed read
    raises DataError naming the file, the dataset and the patterns.
    """
    read_direct = getattr(source, "read_direct", None)
    buffers: list[np.ndarray] = []
    if read_direct is not None:
        slices = 2 if shape[0] > step else 1
        buffers = [np.empty((min(step, shape[0]), *shape[1:]), dtype=dtype) for _ in range(slices)]

    def read(index: int, start: int, stop: int) -> np.ndarray:
        try:
            if read_direct is None:
                return np.asarray(source[start:stop])
            buffer = buffers[index % len(buffers)][: stop - start]
            read_direct(buffer, np.s_[start:stop])
            return buffer
        except (OSError, ValueError, RuntimeError, TypeError) as exc:
            raise DataError(
                f"{src}: {key!r}: patterns {start}..{stop - 1} could not be read (truncated or "
                f"corrupt data, or a missing compression filter): {exc}"
            ) from exc

    return read


class _SliceConverter:
    """Validate one slice of stored patterns and write its float32 amplitudes into ``out``.

    Called from the worker thread of :func:`read_pattern_stack`, one slice at a time, so
    ``bad`` (pixels non-finite in some pattern, or None) needs no lock; the caller reads it
    once every slice is done.
    """

    def __init__(
        self, out: np.ndarray, dtype: np.dtype, src: Path | str, key: str, intensities: bool
    ) -> None:
        self.out, self.dtype, self.src, self.key = out, dtype, src, key
        self.intensities = intensities
        self.values = "counts" if intensities else "amplitudes"
        self.bad: np.ndarray | None = None

    def __call__(self, block: np.ndarray, start: int) -> None:
        count = block.shape[0]
        n = self.out.shape[1]
        block = block.reshape(count, n, n)
        dest = self.out[start : start + count]
        if self.dtype.kind in "iu":
            self._integers(block, dest, start)
        else:
            self._floats(block, dest, start)

    def _integers(self, block: np.ndarray, dest: np.ndarray, start: int) -> None:
        # integers are always finite: one pass converts them (and takes the square root)
        if self.dtype.kind == "i":
            low = int(block.min())
            if low < 0:
                self._negative(block, start, f"{low}")
        if self.intensities:
            np.sqrt(block, out=dest, dtype=np.float32)
        else:
            np.copyto(dest, block, casting="unsafe")

    def _floats(self, block: np.ndarray, dest: np.ndarray, start: int) -> None:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow -> inf -> bad pixel
            np.copyto(dest, block, casting="unsafe")
        finite = np.isfinite(dest)
        if not finite.all():
            dead = ~finite.reshape(dest.shape[0], -1).any(axis=1)
            if dead.any():
                raise DataError(
                    f"{self.src}: {self.key!r}: pattern {start + int(np.argmax(dead))} holds no "
                    "finite value; expected counts"
                )
            now = ~finite.all(axis=0)
            self.bad = now if self.bad is None else (self.bad | now)
            dest[~finite] = np.float32(0.0)
        low = float(dest.min())
        if low < 0.0:
            self._negative(dest, start, f"{low:g}")
        if self.intensities:
            np.sqrt(dest, out=dest)

    def _negative(self, values: np.ndarray, start: int, low: str) -> NoReturn:
        raise DataError(
            f"{self.src}: {self.key!r}: expected non-negative {self.values}, found "
            f"{int(np.count_nonzero(values < 0))} negative values in patterns "
            f"{start}..{start + values.shape[0] - 1} (minimum {low})"
        )


def positions_array(raw: np.ndarray, src: Path | str, key: str, m: int) -> np.ndarray:
    """Validate a positions table of shape (M, k >= 2) and return it as float64."""
    require_numeric(raw, src, key, complex_ok=False)
    if raw.ndim != 2 or raw.shape[1] < 2:
        raise DataError(
            f"{src}: {key!r}: expected positions of shape ({m}, 2) or ({m}, 3), found shape "
            f"{raw.shape}"
        )
    if raw.shape[0] != m:
        raise DataError(
            f"{src}: {key!r} has {raw.shape[0]} positions but there are {m} patterns; "
            f"expected ({m}, {raw.shape[1]})"
        )
    arr = raw.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise DataError(
            f"{src}: {key!r}: expected finite positions, found "
            f"{int(np.count_nonzero(~np.isfinite(arr)))} NaN or infinite values"
        )
    return arr


def complex_modes(raw: np.ndarray, src: Path | str, key: str) -> np.ndarray:
    """A probe or object with optional leading axes, as ``(K, H, W)`` complex64."""
    require_numeric(raw, src, key, complex_ok=True)
    if raw.ndim < 2:
        raise DataError(
            f"{src}: {key!r}: expected a 2-D image (or leading mode/layer axes, then H, W), "
            f"found rank {raw.ndim} with shape {raw.shape}"
        )
    if raw.size == 0:
        raise DataError(f"{src}: {key!r} is empty (shape {raw.shape}); expected (..., H, W)")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow -> inf -> refused below
        stack = raw.reshape(-1, raw.shape[-2], raw.shape[-1]).astype(np.complex64)
    if not np.all(np.isfinite(stack)):
        raise DataError(
            f"{src}: {key!r}: expected finite values, found "
            f"{int(np.count_nonzero(~np.isfinite(stack)))} NaN or infinite values"
        )
    return stack


def strongest_mode(modes: np.ndarray) -> tuple[np.ndarray, int, float]:
    """The mode of ``(K, H, W)`` with most power, its index and its share of the total power."""
    power = np.sum(np.abs(modes.astype(np.complex128)) ** 2, axis=(1, 2))
    index = int(np.argmax(power))
    total = float(power.sum())
    share = float(power[index] / total) if total > 0 else 1.0
    return modes[index], index, share


def pad_center(image: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad (or centre-crop) a 2-D image to ``n x n`` keeping pixel ``(H//2, W//2)`` at
    ``(n//2, n//2)``."""
    h, w = image.shape
    out = np.zeros((n, n), dtype=image.dtype)
    oy, ox = n // 2 - h // 2, n // 2 - w // 2
    ys, xs = max(0, oy), max(0, ox)
    ye, xe = min(n, oy + h), min(n, ox + w)
    out[ys:ye, xs:xe] = image[ys - oy : ye - oy, xs - ox : xe - ox]
    return out


# ------------------------------------------------------------------------------------ geometry


def wavelength_m(energy_ev: float) -> float:
    """Photon wavelength in metres for an energy in eV (physics.md section 6)."""
    return HC_EV_M / energy_ev


def farfield_pixel_m(energy_ev: float, distance_m: float, detector_pixel_m: float, n: int) -> float:
    """Object pixel size ``lambda * z / (N * detector_pixel)`` for the N x N region used."""
    return wavelength_m(energy_ev) * distance_m / (n * detector_pixel_m)


def nearest_step(points: np.ndarray) -> float:
    """Median distance from each scan point to its nearest neighbour (0 for one point)."""
    if points.shape[0] < 2:
        return 0.0
    import scipy.spatial

    distance, _ = scipy.spatial.cKDTree(points).query(points, k=2)
    return float(np.median(distance[:, 1]))


def propagation_record(regime: str, source: str, **details: Any) -> dict[str, Any]:
    """The ``provenance["propagation"]`` entry: regime, how it was decided, numbers used."""
    record: dict[str, Any] = {"regime": regime, "source": source}
    record.update(details)
    return record


def detect_propagation(positions_m: np.ndarray, n: int, farfield_pixel: float) -> tuple[str, str]:
    """Decide far-field or near-field from the scan overlap that a far-field reading implies.

    In far field the illuminated area is at most ``N`` object pixels wide (``N/2`` with the
    usual 2x oversampling), so neighbouring scan points must lie closer than ``N/2`` pixels
    for the patches to overlap. A scan whose median nearest-neighbour step, converted with the
    far-field pixel ``lambda z / (N dx)``, is ``N/2`` pixels or more cannot be a far-field
    ptychography scan; such files are taken as near-field (Fresnel) holograms.

    Returns
    -------
    regime : str
        ``"far-field"`` or ``"near-field"``.
    reason : str
        The numbers behind the decision.
    """
    step = nearest_step(positions_m[:, :2])
    step_px = step / farfield_pixel
    reason = (
        f"median scan step {step:.3g} m = {step_px:.1f} far-field pixels of "
        f"{farfield_pixel:.4g} m, limit N/2 = {n / 2:g}"
    )
    if step > 0 and step_px >= n / 2:
        return "near-field", reason
    return "far-field", reason


def positions_from_metres(
    positions_yx_m: np.ndarray,
    n: int,
    *,
    energy_ev: float,
    distance_m: float,
    detector_pixel_m: float,
    propagation: str | None,
    focus_distance_m: float | None,
    src: Path | str,
) -> tuple[np.ndarray, float, dict[str, Any], list[str]]:
    """Convert scan positions from metres to object pixels with the file's own geometry.

    Parameters
    ----------
    positions_yx_m : ndarray, (M, 2) float64
        Positions ``(y, x)`` in metres.
    n : int
        Detector size ``N`` actually read.
    energy_ev, distance_m, detector_pixel_m : float
        Geometry.
    propagation : {"far-field", "near-field", None}
        Declared regime; None detects it with :func:`detect_propagation`.
    focus_distance_m : float, optional
        Focus-to-sample distance of a near-field (cone-beam) set-up. The Fresnel scaling gives
        the magnification ``Mg = (f + z) / f``, the object pixel ``dx / Mg`` and the effective
        distance ``z / Mg``. Without it a near-field file is read as parallel-beam
        (``Mg = 1``, object pixel = detector pixel) and a warning says so.
    src : str
        File name for messages.

    Returns
    -------
    positions_px : ndarray, (M, 2) float64
        ``(y, x)`` patch centres. When a patch would start at a negative pixel, the scan is
        shifted (per axis) so that its lowest centre sits at ``N // 2``; otherwise positions are
        kept as stored, so files written here read back unchanged.
    pixel_size_m : float
        Object pixel size.
    record : dict
        ``provenance["propagation"]`` (regime, how it was decided, magnification, ...), plus the
        shift under ``"positions_offset_px"``.
    warnings : list of str
    """
    notes: list[str] = []
    pixel_ff = farfield_pixel_m(energy_ev, distance_m, detector_pixel_m, n)
    if propagation is None:
        regime, reason = detect_propagation(positions_yx_m, n, pixel_ff)
        source = f"detected: {reason}"
    elif propagation in ("far-field", "near-field"):
        regime, source = propagation, "declared"
    else:
        raise DataError(
            f"{src}: propagation must be 'far-field' or 'near-field', got {propagation!r}"
        )
    details: dict[str, Any] = {}
    if regime == "far-field":
        pixel = pixel_ff
    else:
        if focus_distance_m is not None:
            if not (math.isfinite(focus_distance_m) and focus_distance_m > 0):
                raise DataError(
                    f"{src}: focus_distance_m must be a positive number, got {focus_distance_m!r}"
                )
            magnification = (focus_distance_m + distance_m) / focus_distance_m
        else:
            magnification = 1.0
            notes.append(
                f"{src}: near-field data without a focus-to-sample distance: read as a "
                "parallel beam (magnification 1, object pixel = detector pixel); pass "
                "focus_distance_m for a cone-beam (Fresnel-scaled) geometry"
            )
        pixel = detector_pixel_m / magnification
        details = {
            "magnification": magnification,
            "focus_distance_m": focus_distance_m,
            "effective_distance_m": distance_m / magnification,
        }
    pos = positions_yx_m[:, :2] / pixel
    low = pos.min(axis=0)
    offset = np.where(low < n // 2 - 1e-6, n // 2 - low, 0.0)
    pos = pos + offset
    record = propagation_record(regime, source, **details)
    record["positions_offset_px"] = [float(offset[0]), float(offset[1])]
    return pos, pixel, record, notes
