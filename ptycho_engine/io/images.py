"""Image outputs of a reconstruction: float32 TIFF (tifffile) and PNG with a scale bar.

Both write atomically (temporary file in the destination folder, then rename).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ptycho_engine.errors import DataError
from ptycho_engine.io.files import atomic_write

PARTS = ("amplitude", "phase")


def _part(obj: np.ndarray, part: str) -> np.ndarray:
    arr = np.asarray(obj)
    if arr.ndim != 2 or arr.size == 0:
        raise DataError(f"expected a 2-D (H, W) complex image, got shape {arr.shape}")
    if part == "amplitude":
        return np.abs(arr).astype(np.float32)
    if part == "phase":
        return np.angle(arr).astype(np.float32)
    raise DataError(f"part must be one of {PARTS}, got {part!r}")


def write_tiff(
    path: str | os.PathLike[str],
    obj: np.ndarray,
    part: str = "amplitude",
    *,
    pixel_size_m: float | None = None,
) -> Path:
    """Write the amplitude or phase (radians) of a complex image as a float32 TIFF.

    Parameters
    ----------
    path : str or path-like
    obj : ndarray, (H, W) complex
    part : {"amplitude", "phase"}
    pixel_size_m : float, optional
        Stored as the TIFF resolution (pixels per centimetre) and in the description.

    Returns
    -------
    Path
    """
    import tifffile

    image = _part(obj, part)
    description = f"ptycho-engine {part}" + (
        f"; pixel_size_m={pixel_size_m:.6g}" if pixel_size_m else ""
    )
    kwargs: dict[str, object] = {"description": description, "photometric": "minisblack"}
    if pixel_size_m:
        per_cm = 1e-2 / pixel_size_m
        kwargs["resolution"] = (per_cm, per_cm)
        kwargs["resolutionunit"] = "CENTIMETER"

    def write(tmp: Path) -> None:
        tifffile.imwrite(tmp, image, **kwargs)  # type: ignore[arg-type]

    return atomic_write(Path(path), write, suffix=".tif")


def nice_length(target_m: float) -> float:
    """The largest 1, 2 or 5 x 10^k metres not above ``target_m``."""
    exponent = math.floor(math.log10(target_m))
    for mantissa in (5.0, 2.0, 1.0):
        value = mantissa * 10.0**exponent
        if value <= target_m:
            return value
    return 10.0**exponent


def format_length(length_m: float) -> str:
    """``2e-7`` -> ``"200 nm"``."""
    for unit, scale in (("m", 1.0), ("mm", 1e-3), ("µm", 1e-6), ("nm", 1e-9), ("pm", 1e-12)):
        if length_m >= scale * (1 - 1e-9):
            return f"{length_m / scale:.3g} {unit}"
    return f"{length_m:.3g} m"


def write_png(
    path: str | os.PathLike[str],
    obj: np.ndarray,
    part: str = "amplitude",
    *,
    pixel_size_m: float | None = None,
    title: str = "",
    valid: np.ndarray | None = None,
) -> Path:
    """Write the amplitude or phase of a complex image as a PNG with a colour bar, in the
    app's colour maps and levels (:mod:`ptycho_engine.display`).

    Levels: the amplitude between the 0.5 and 99.5 percentiles of the valid pixels (grey
    map). The phase over the full circle, -pi to pi, with the cyclic map, unless the same
    robust range of the valid phase spans less than half of the circle
    (:data:`~ptycho_engine.display.PHASE_RANGE_FRACTION`,
    :func:`~ptycho_engine.display.phase_levels`): then over that range with a non-cyclic map
    (:data:`~ptycho_engine.display.PHASE_RANGE_MAP`), so that a phase of +-0.7 rad uses the
    whole map instead of a fifth of it (and its two ends do not share a colour).

    A scale bar (1, 2 or 5 x 10^k m, about a fifth of the width) is drawn when the pixel size
    is known; otherwise the axes are labelled in pixels.

    Parameters
    ----------
    path : str or path-like
    obj : ndarray, (H, W) complex
    part : {"amplitude", "phase"}
    pixel_size_m : float, optional
    title : str
    valid : ndarray, (H, W) bool, optional
        Pixels outside are shown blank.

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.colors import ListedColormap
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from ptycho_engine.display import (
        DisplayMode,
        amplitude_lut,
        colour_lut,
        default_colour_map,
        phase_levels,
        robust_range,
    )

    image = _part(obj, part)
    # the app's colour maps and levels (see the docstring for the rule of the phase)
    if part == "phase":
        vmin, vmax = phase_levels(image, valid)
        lut = colour_lut(default_colour_map(DisplayMode.PHASE, (vmin, vmax)))
    else:
        lut, (vmin, vmax) = amplitude_lut(), robust_range(image, valid)
    cmap = ListedColormap(lut.astype(np.float64) / 255.0, name=f"ptycho-{part}")
    if valid is not None:
        image = np.where(valid, image, np.nan)
    fig = Figure(figsize=(6, 5), dpi=100)
    ax = fig.add_subplot()
    shown = ax.imshow(image, cmap=cmap, interpolation="nearest", vmin=vmin, vmax=vmax)
    fig.colorbar(shown, ax=ax, label="amplitude" if part == "amplitude" else "phase (rad)")
    ax.set_title(f"{title} {part}".strip())
    h, w = image.shape
    if pixel_size_m:
        length_m = nice_length(0.2 * w * pixel_size_m)
        length_px = length_m / pixel_size_m
        x0, y0 = 0.05 * w, 0.92 * h
        bar_h = max(1.0, 0.015 * h)
        ax.add_patch(Rectangle((x0, y0), length_px, bar_h, color="white", ec="black", lw=0.5))
        ax.text(
            x0 + length_px / 2,
            y0 - 0.01 * h,
            format_length(length_m),
            color="white",
            ha="center",
            va="bottom",
            fontsize=9,
            bbox={"facecolor": "black", "alpha": 0.5, "pad": 1, "lw": 0},
        )
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")

    def write(tmp: Path) -> None:
        fig.savefig(tmp, format="png")

    return atomic_write(Path(path), write, suffix=".png")
