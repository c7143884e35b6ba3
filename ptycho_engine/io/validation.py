"""Checks of the arrays and numbers read from files, and the one NaN/infinity policy.

Every message names the file, the key or dataset path, what was expected and what was found
(formats.md), so a scientist can fix the file without reading code.

NaN and infinity policy
-----------------------
Every reader (PINN-style NPZ, CXI, mapping profile, ptychodus product, probe files) and
:func:`ptycho_engine.io.prepare` applies the same rules, implemented here once:

- **Diffraction patterns**: a NaN or infinite pixel (including a float that overflows float32)
  is a bad detector pixel, as a detector gap or a dead pixel is. It is set to 0 and marked in
  ``bad_pixels`` (an ``(N, N)`` mask: a pixel that is non-finite in any pattern is bad in all
  of them), and the reader records ``"<k> NaN/infinite pixels set to 0 and marked bad"`` in
  ``provenance["steps"]``. Two cases are errors instead, because nothing could be
  reconstructed from them: a pattern that holds no finite value at all, and a detector on
  which every pixel is non-finite in some pattern. See :func:`check_pattern_values` and
  :func:`require_usable_detector`.
- **Scan positions, probes, objects, pixel sizes, geometry and every other number**: a NaN or
  infinite value is an error (``DataError``) naming the file and the key, with the number of
  non-finite values and the index of the first one. See :func:`require_finite`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.errors import DataError

#: How the messages count positions (``rows`` of :func:`require_finite`).
SCAN_POINT = "scan point"

# ------------------------------------------------------------------------------- numbers


def require_numeric(arr: np.ndarray, src: Path | str, key: str, *, complex_ok: bool) -> None:
    """Refuse non-numeric (object, string, bool, void) and, unless allowed, complex dtypes."""
    kinds = "iufc" if complex_ok else "iuf"
    if arr.dtype.kind not in kinds:
        expected = "a numeric" if complex_ok else "a real numeric"
        raise DataError(f"{src}: {key!r}: expected {expected} array, found dtype {arr.dtype}")


def require_finite(
    values: np.ndarray, src: Path | str, key: str, what: str, *, rows: str = ""
) -> None:
    """Raise DataError when any of ``values`` is NaN or infinite (positions, probes, objects).

    Parameters
    ----------
    values : ndarray, any shape, real or complex
    src, key : str
        File and key (or dataset path) for the message.
    what : str
        What the values are ("positions", "values").
    rows : str
        What the first axis counts ("pattern"): the message then names the row of the first
        non-finite value; otherwise its full index.
    """
    bad = ~np.isfinite(values)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        if rows:
            where = f"in {rows} {first[0]}"
        else:
            where = f"at index {first[0] if len(first) == 1 else first}"
        raise DataError(
            f"{src}: {key!r}: expected finite {what}, found {int(np.count_nonzero(bad))} NaN "
            f"or infinite values (first {where})"
        )


def finite_scalar(raw: Any, src: Path | str, key: str, unit: str) -> float:
    """Validate a single finite number (a 0-d or single-element real array)."""
    arr = np.asarray(raw)
    if arr.dtype.kind not in "iuf" or arr.size != 1:
        raise DataError(
            f"{src}: {key!r}: expected one number in {unit}, found dtype {arr.dtype} with "
            f"shape {arr.shape}"
        )
    value = float(arr.reshape(-1)[0])
    if not math.isfinite(value):
        raise DataError(f"{src}: {key!r}: expected a finite number in {unit}, found {value!r}")
    return value


def positive_scalar(raw: Any, src: Path | str, key: str, unit: str) -> float:
    """Validate a single positive, finite number."""
    value = finite_scalar(raw, src, key, unit)
    if value <= 0.0:
        raise DataError(f"{src}: {key!r}: expected a positive number in {unit}, found {value!r}")
    return value


def finite_vector(
    raw: np.ndarray,
    src: Path | str,
    key: str,
    what: str,
    *,
    length: int | None = None,
    rows: str = "",
) -> np.ndarray:
    """Validate a real vector and return it as ``(K,)`` float64.

    A ``(K, 1)`` or ``(1, K)`` column or row is accepted. With ``length``, ``K`` must equal it
    (the number of patterns). ``rows`` is passed to :func:`require_finite`.
    """
    require_numeric(raw, src, key, complex_ok=False)
    arr = raw.reshape(-1) if raw.ndim == 2 and 1 in raw.shape else raw
    want = f"({length},)" if length is not None else "(K,)"
    if arr.ndim != 1:
        raise DataError(
            f"{src}: {key!r}: expected rank 1, {want} {what}, found rank {raw.ndim} with shape "
            f"{raw.shape}"
        )
    if length is not None and arr.shape[0] != length:
        raise DataError(
            f"{src}: {key!r} has {arr.shape[0]} {what} but there are {length} patterns; "
            f"expected {want}"
        )
    vector = arr.astype(np.float64)
    require_finite(vector, src, key, what, rows=rows)
    return vector


def positions_array(
    raw: np.ndarray, src: Path | str, key: str, m: int, *, columns: int | None = None
) -> np.ndarray:
    """Validate a positions table of shape ``(M, k >= 2)`` and return it as float64.

    Parameters
    ----------
    raw : ndarray, (M, k)
    src, key : str
    m : int
        Number of patterns.
    columns : int, optional
        Keep (and check) only the first ``columns`` columns; all of them when None.
    """
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
    arr = (raw if columns is None else raw[:, :columns]).astype(np.float64)
    require_finite(arr, src, key, "positions", rows=SCAN_POINT)
    return arr


# ------------------------------------------------------------------------------- images


def complex_modes(raw: np.ndarray, src: Path | str, key: str) -> np.ndarray:
    """A probe or object with optional leading axes, as ``(K, H, W)`` complex64, all finite."""
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
    require_finite(stack, src, key, "values")
    return stack


def complex_image(raw: np.ndarray, src: Path | str, key: str) -> np.ndarray:
    """A single 2-D probe or object, as ``(H, W)`` complex64, all finite."""
    require_numeric(raw, src, key, complex_ok=True)
    if raw.ndim != 2:
        raise DataError(
            f"{src}: {key!r}: expected a 2-D complex image, found rank {raw.ndim} with "
            f"shape {raw.shape}"
        )
    return complex_modes(raw, src, key)[0]


def bad_pixel_mask(
    raw: np.ndarray, src: Path | str, key: str, n: int, *, bad: str = "nonzero"
) -> np.ndarray:
    """Validate a detector mask and return it as ``(N, N)`` bool, True on bad pixels.

    ``bad`` says which values mark a bad pixel: ``"nonzero"`` (CXI) or ``"zero"``.
    """
    if raw.dtype.kind not in "biuf" or raw.shape != (n, n):
        raise DataError(
            f"{src}: {key!r}: expected a ({n}, {n}) numeric bad-pixel mask like the patterns, "
            f"found dtype {raw.dtype} with shape {raw.shape}"
        )
    return np.asarray(raw != 0) if bad == "nonzero" else np.asarray(raw == 0)


# ------------------------------------------------------------------------------- patterns


def pattern_stack_shape(
    shape: tuple[int, ...],
    dtype: np.dtype,
    src: Path | str,
    key: str,
    *,
    layouts: str = "(M, N, N)",
) -> tuple[int, int, int]:
    """Validate the dtype and shape of a pattern stack: real numbers, ``(M, N, N)``, M, N >= 1.

    A trailing singleton axis ``(M, N, N, 1)`` is accepted. ``layouts`` names the layouts the
    reader accepts, for the messages. Returns ``(M, N, N)``.
    """
    if dtype.kind not in "iuf":
        raise DataError(
            f"{src}: {key!r}: expected real numeric patterns, found dtype {dtype}"
            + (" (complex)" if dtype.kind == "c" else "")
        )
    if len(shape) == 4 and shape[-1] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise DataError(
            f"{src}: {key!r}: expected a rank-3 stack of patterns {layouts}, found rank "
            f"{len(shape)} with shape {shape}"
        )
    m, h, w = shape
    if m == 0 or h == 0 or w == 0:
        raise DataError(f"{src}: {key!r} is empty (shape {shape}); expected (M, N, N), M, N >= 1")
    if h != w:
        raise DataError(
            f"{src}: {key!r}: expected square patterns {layouts}, found {h}x{w} (shape {shape})"
        )
    return int(m), int(h), int(w)


def check_pattern_values(
    patterns: np.ndarray,
    src: Path | str,
    key: str,
    *,
    what: str,
    first: int = 0,
    negative_ok: bool = False,
) -> np.ndarray | None:
    """Apply the NaN/infinity policy to float patterns, in place, and refuse negative values.

    Parameters
    ----------
    patterns : ndarray, (K, N, N) float
        Patterns ``first .. first + K - 1`` of a stack (the whole stack or one slice of it).
        NaN and infinite pixels are set to 0.
    src, key : str
        File and key (or dataset path) for the messages.
    what : {"counts", "amplitudes"}
        What the values are, for the messages.
    first : int
        Index of ``patterns[0]`` in the stack.
    negative_ok : bool
        Skip the check for negative values.

    Returns
    -------
    ndarray, (N, N) bool or None
        Pixels that are NaN or infinite in at least one of the patterns; None when every pixel
        is finite.

    Raises
    ------
    DataError
        A pattern that holds no finite value, or a negative value.
    """
    finite = np.isfinite(patterns)
    mask = None
    if not finite.all():
        dead = ~finite.reshape(patterns.shape[0], -1).any(axis=1)
        if dead.any():
            raise DataError(
                f"{src}: {key!r}: pattern {first + int(np.argmax(dead))} holds no finite value; "
                f"expected {what}"
            )
        mask = ~finite.all(axis=0)
        patterns[~finite] = 0
    if not negative_ok:
        require_non_negative(patterns, src, key, what=what, first=first)
    return mask


def require_non_negative(
    patterns: np.ndarray, src: Path | str, key: str, *, what: str, first: int = 0
) -> None:
    """Refuse negative values in patterns ``first .. first + K - 1`` (any real dtype)."""
    low = patterns.min()
    if low < 0:
        shown = f"{low}" if patterns.dtype.kind in "iu" else f"{float(low):g}"
        raise DataError(
            f"{src}: {key!r}: expected non-negative {what}, found "
            f"{int(np.count_nonzero(patterns < 0))} negative values in patterns "
            f"{first}..{first + patterns.shape[0] - 1} (minimum {shown})"
        )


def require_usable_detector(nonfinite: np.ndarray | None, src: Path | str, key: str) -> None:
    """Refuse a stack in which every detector pixel is NaN or infinite in some pattern.

    ``nonfinite`` is the union of the masks :func:`check_pattern_values` returned for the
    whole stack (None when there were no non-finite pixels).
    """
    if nonfinite is not None and nonfinite.all():
        raise DataError(
            f"{src}: {key!r}: every detector pixel is NaN or infinite in at least one pattern; "
            "no pixel is left to reconstruct from"
        )


def merge_masks(mask: np.ndarray | None, more: np.ndarray | None) -> np.ndarray | None:
    """The union of two optional ``(N, N)`` bad-pixel masks."""
    if more is None:
        return mask
    return more if mask is None else (mask | more)


def nonfinite_step(nonfinite: np.ndarray) -> str:
    """The ``provenance["steps"]`` entry of the NaN/infinity policy."""
    return f"{int(nonfinite.sum())} NaN/infinite pixels set to 0 and marked bad"
