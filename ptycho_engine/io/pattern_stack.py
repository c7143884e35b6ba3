"""The threaded reader of pattern stacks: stored counts or amplitudes to float32 amplitudes.

Used by the CXI and mapping-profile readers for HDF5 datasets (read lazily, in slices, with
``read_direct`` into reused buffers) and for in-memory arrays. Values go through the NaN/infinity
policy of :mod:`ptycho_engine.io.validation`.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.errors import DataError
from ptycho_engine.io.validation import (
    check_pattern_values,
    merge_masks,
    pattern_stack_shape,
    require_non_negative,
    require_usable_detector,
)

#: Bytes of stored pattern data read per slice (lazy, sliced reads). 4 MiB keeps a slice that
#: HDF5 has just decompressed in the shared L3 cache while another thread converts it, and is
#: large enough that the cost of each call is negligible; two slice buffers are in use at a time.
SLICE_BYTES = 4 << 20

#: ``progress(done, total)``: patterns read so far, out of ``total``.
ProgressCallback = Callable[[int, int], None]


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
        Non-finite pixels are set to 0 (the NaN/infinity policy of
        :mod:`ptycho_engine.io.validation`).
    nonfinite : ndarray, (N, N) bool or None
        Pixels that were NaN or infinite in at least one pattern (None when there were none).

    Raises
    ------
    DataError
        Wrong rank or dtype, empty, negative values, a pattern that is entirely non-finite,
        every pixel non-finite in some pattern, or a slice that cannot be read.
    """
    shape = tuple(int(s) for s in source.shape)
    dtype = np.dtype(source.dtype)
    m, n, _ = pattern_stack_shape(shape, dtype, src, key)
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
    require_usable_detector(convert.bad, src, key)
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
        self.what = "counts" if intensities else "amplitudes"
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
            require_non_negative(block, self.src, self.key, what=self.what, first=start)
        if self.intensities:
            np.sqrt(block, out=dest, dtype=np.float32)
        else:
            np.copyto(dest, block, casting="unsafe")

    def _floats(self, block: np.ndarray, dest: np.ndarray, start: int) -> None:
        with np.errstate(over="ignore", invalid="ignore"):  # overflow -> inf -> bad pixel
            np.copyto(dest, block, casting="unsafe")
        nonfinite = check_pattern_values(dest, self.src, self.key, what=self.what, first=start)
        self.bad = merge_masks(self.bad, nonfinite)
        if self.intensities:
            np.sqrt(dest, out=dest)
