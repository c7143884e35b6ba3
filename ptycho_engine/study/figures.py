"""The figures of a study folder: metrics against dose, convergence during training and the
grids of reconstructions.

The numbers come from :mod:`ptycho_engine.study.aggregate`, the same as the app shows; matplotlib
is imported inside the functions that draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.study.aggregate import (
    CONVERGENCE_FRACTIONS,
    DOSE_METRICS,
    LOG_AXIS_METRICS,
    Series,
    chance_mean,
    column_label,
    convergence_series,
    dose_row_label,
    dose_series,
    finite,
    study_grid,
)
from ptycho_engine.study.columns import CHECKPOINT_COLUMNS
from ptycho_engine.study.spec import StudyError, StudySpec, dose_label
from ptycho_engine.study.store import (
    CONVERGENCE_FIGURE,
    DOSE_FIGURE,
    GRID_FIGURES,
    read_results,
    read_spec,
    run_folder,
)

#: Results columns of the panels of the dose-response figure, in reading order.
DOSE_PANELS = ("amplitude_ssim", "phase_ssim", "amplitude_frc_1_7_px", "phase_frc_1_7_px")


def _save(fig: Any, path: Path) -> Path:
    from ptycho_engine.runs import atomic_write

    def save(tmp: Path) -> None:
        fig.savefig(tmp, format="png")

    return atomic_write(path, save, suffix=".png")


def _draw(ax: Any, series: Series) -> None:
    """A series as points joined by a line, with its standard deviation as error bars."""
    ax.errorbar(series.x, series.means, yerr=series.stds, marker="o", capsize=3, label=series.label)


def write_dose_response(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Write :func:`dose_response_figure` of ``rows`` to ``path`` (PNG)."""
    return _save(dose_response_figure(rows), path)


def dose_response_figure(rows: Sequence[dict[str, Any]]) -> Any:
    """Metrics against dose (log axis), a matplotlib ``Figure`` with a panel per
    :data:`DOSE_PANELS`: one line per (N, gridsize, loss), mean over seeds with their standard
    deviation as error bars; the chance level is drawn dashed. Resolutions
    (:data:`LOG_AXIS_METRICS`) get a logarithmic axis, so a few pixels and a chance level near
    the image size are both readable."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter

    fig = Figure(figsize=(11, 8), dpi=100, layout="constrained")
    axes = fig.subplots(2, 2)
    for ax, column in zip(axes.ravel(), DOSE_PANELS, strict=True):
        for series in dose_series(rows, column):
            if series.x:
                _draw(ax, series)
        chance = chance_mean(rows, column)
        if chance is not None:
            ax.axhline(chance, color="grey", ls="--", lw=1, label="chance level")
        ax.set_xscale("log")
        if column in LOG_AXIS_METRICS:
            ax.set_yscale("log")
            # plain numbers at 1, 2, 3 and 5 of each decade, no "4 x 10^0"
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0)))
            ax.yaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("photons per pattern")
        ax.set_ylabel(DOSE_METRICS[column])
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Reconstruction quality against dose (error bars: std over seeds)")
    return fig


def write_convergence(rows: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Amplitude and phase SSIM after 50 %, 75 % and 100 % of the epochs: one panel per dose,
    one line per (N, gridsize, loss), mean over seeds with their standard deviation as error
    bars. Flat lines mean the settings had converged. None (nothing written) when no row
    carries checkpoint scores (a folder of an engine from before they were recorded)."""
    from matplotlib.figure import Figure

    if not finite(r.get(c) for r in rows for c in CHECKPOINT_COLUMNS):
        return None
    doses = sorted({float(r["photons"]) for r in rows})
    fig = Figure(figsize=(2.6 * len(doses) + 1.0, 6.2), dpi=100, layout="constrained")
    axes = fig.subplots(2, len(doses), squeeze=False, sharey="row")
    xs = [100 * f for f in CONVERGENCE_FRACTIONS]
    for i, channel in enumerate(("amplitude", "phase")):
        for j, dose in enumerate(doses):
            ax = axes[i, j]
            for series in convergence_series(rows, channel, dose):
                _draw(ax, series)
            ax.set_xticks(xs)
            ax.grid(True, alpha=0.3)
            if i == 0:
                ax.set_title(f"{dose_label(dose)} photons", fontsize=9)
            else:
                ax.set_xlabel("% of the epochs")
            if j == 0:
                ax.set_ylabel(f"{channel} SSIM")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Convergence: scores during training (error bars: std over seeds)")
    return _save(fig, path)


def write_grid(
    out: Path, spec: StudySpec, rows: Sequence[dict[str, Any]], part: str, path: Path
) -> Path:
    """Reconstructions of the first seed: rows dose (ascending), columns (N, gridsize, loss).

    ``part`` is ``"amplitude"`` or ``"phase"``; cells without a finished run stay blank.
    """
    from matplotlib.figure import Figure

    from ptycho_engine.runs import RECONSTRUCTION, read_reconstruction

    done = {r["setting_id"] for r in rows}
    grid = study_grid(spec)
    n_rows, n_columns = grid.shape
    fig = Figure(figsize=(1.9 * n_columns + 0.8, 1.9 * n_rows + 0.6), dpi=100, layout="constrained")
    axes = np.atleast_2d(fig.subplots(n_rows, n_columns, squeeze=False))
    for i, dose in enumerate(grid.doses):
        for j, (n, g, loss) in enumerate(grid.columns):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(column_label(n, g, loss), fontsize=8)
            if j == 0:
                ax.set_ylabel(dose_row_label(dose), fontsize=8)
            sid = grid.ids[i][j]
            npz = run_folder(out, sid) / RECONSTRUCTION
            if sid not in done or not npz.exists():
                continue
            snap = read_reconstruction(npz)
            obj = snap.object
            image = np.abs(obj) if part == "amplitude" else np.angle(obj)
            image = np.where(snap.valid, image, np.nan)
            cmap = "gray" if part == "amplitude" else "twilight"
            ax.imshow(image, cmap=cmap, interpolation="nearest")
    fig.suptitle(f"{part} of the reconstructions (seed {grid.seed}; rows: dose)", fontsize=10)
    return _save(fig, path)


def write_figures(out: Path, spec: StudySpec | None = None) -> list[Path]:
    """Write the dose-response figure, the convergence figure (when the rows carry checkpoint
    scores) and the reconstruction grids from a study folder.

    Raises
    ------
    StudyError
        The folder holds no study, or no finished setting.
    """
    out = Path(out)
    if spec is None:
        spec = read_spec(out)
    rows = read_results(out)
    if not rows:
        raise StudyError(f"{out}: no finished settings to plot")
    written = [write_dose_response(rows, out / DOSE_FIGURE)]
    convergence = write_convergence(rows, out / CONVERGENCE_FIGURE)
    if convergence is not None:
        written.append(convergence)
    for part, name in GRID_FIGURES.items():
        written.append(write_grid(out, spec, rows, part, out / name))
    return written
