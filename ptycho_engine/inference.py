"""Inference: predict object patches for all groups in batches and stitch them (section 7).

:func:`reconstruct` is a generator: it yields a :class:`StitchSnapshot` of the partial canvas
after every batch and returns the final one, so a viewer can show the object growing.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Generator, Iterator

import numpy as np

from ptycho_engine.config import DataConfig
from ptycho_engine.data import DiffractionData, StitchSnapshot
from ptycho_engine.grid_pattern import remove_grid_pattern
from ptycho_engine.grouping import GroupedPatterns, Groups, make_groups
from ptycho_engine.models import ModelBundle, ensure_canvas
from ptycho_engine.physics.probe import probe_amplitude, support_mask
from ptycho_engine.stitching import DEFAULT_REMOVE_GRID, DEFAULT_WINDOW, WINDOWS, Stitcher
from ptycho_engine.streams import drain

DEFAULT_BATCH = 64


def stitch_window(bundle: ModelBundle, window: str = DEFAULT_WINDOW) -> np.ndarray:
    """Stitching weights ``(N, N)`` float32: the support, or the probe amplitude on it.

    The probe amplitude of a multi-mode probe is that of the total illumination,
    ``sqrt(sum_k |P_k|**2)``.
    """
    support = support_mask(bundle.config.N, bundle.config.pad_object)
    if window == "support":
        return support
    if window == "probe":
        amplitude = probe_amplitude(bundle.probe_modes).astype(np.float32)
        return support * amplitude / max(float(amplitude.max()), 1e-30)
    raise ValueError(f"window = {window!r} is invalid: expected one of {WINDOWS}")


def inference_groups(data: DiffractionData, gridsize: int, data_config: DataConfig) -> Groups:
    """One group per scan position (every position is a seed once), from the config's seed."""
    return make_groups(
        data.positions_px, gridsize, data_config.neighbor_count, None, data_config.seed
    )


def predict_batches(
    bundle: ModelBundle,
    grouped: GroupedPatterns,
    batch_size: int = DEFAULT_BATCH,
    stop_event: threading.Event | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yield ``(rows, amplitude, phase)`` per batch; arrays ``(b, N, N, C)`` float32.

    Batches have a fixed shape (the last one padded) so the compiled function is traced once.
    """
    for rows, real in grouped.padded_batches(batch_size):
        if stop_event is not None and stop_event.is_set():
            return
        x, o = grouped.batch(rows)
        amp, phase = bundle.predict(x, o)
        yield rows[:real], amp[:real], phase[:real]


def reconstruct(
    bundle: ModelBundle,
    data: DiffractionData,
    data_config: DataConfig | None = None,
    batch_size: int = DEFAULT_BATCH,
    stop_event: threading.Event | None = None,
    groups: Groups | None = None,
    window: str = DEFAULT_WINDOW,
    remove_grid: bool = DEFAULT_REMOVE_GRID,
) -> Generator[StitchSnapshot, None, StitchSnapshot]:
    """Predict every group and stitch the object, yielding the canvas after each batch.

    Parameters
    ----------
    bundle : ModelBundle
    data : DiffractionData
        Patterns of size ``bundle.config.N``.
    data_config : DataConfig, optional
        Grouping settings (neighbour count and seed).
    batch_size : int
    stop_event : threading.Event, optional
        Set it to stop after the current batch; the returned snapshot is then partial.
    groups : Groups, optional
        Groups to predict; default one per scan position.
    window : {"support", "probe"}
        Stitching weight of each patch pixel: the object support, or the probe amplitude on
        the support (weights each pixel by how well it was illuminated, which hides seams
        where a tapered probe leaves the patch edges poorly determined); default
        :data:`DEFAULT_WINDOW`.
    remove_grid : bool
        Divide the scan grid's pattern out of the finished object of a raster scan
        (:func:`ptycho_engine.grid_pattern.remove_grid_pattern`; the partial canvases are
        left as they are).

    Returns
    -------
    StitchSnapshot
        The final (or, when stopped, partial) stitched object.
    """
    dcfg = data_config or DataConfig()
    groups = groups or inference_groups(data, bundle.config.gridsize, dcfg)
    bundle = ensure_canvas(bundle, groups.max_offset_px)
    grouped = GroupedPatterns(data.amplitudes, groups)
    weights = stitch_window(bundle, window)
    positions = data.positions_px[groups.indices]  # (G, C, 2)
    stitcher = Stitcher(data.positions_px, bundle.config.N, weights)
    n = bundle.config.N
    done = 0
    snapshot = stitcher.snapshot(0, groups.n_groups)
    for rows, amp, phase in predict_batches(bundle, grouped, batch_size, stop_event):
        patches = (amp * np.exp(1j * phase)).astype(np.complex64)
        patches = patches.transpose(0, 3, 1, 2).reshape(-1, n, n)
        stitcher.add(patches, positions[rows].reshape(-1, 2))
        done += len(rows)
        snapshot = stitcher.snapshot(done, groups.n_groups)
        if remove_grid and snapshot.done:
            corrected, pattern = remove_grid_pattern(
                snapshot.object, snapshot.valid, snapshot.origin_px, data.positions_px
            )
            snapshot = dataclasses.replace(snapshot, object=corrected, grid_pattern=pattern)
        yield snapshot
    return snapshot


def reconstruct_all(
    bundle: ModelBundle,
    data: DiffractionData,
    data_config: DataConfig | None = None,
    batch_size: int = DEFAULT_BATCH,
    window: str = DEFAULT_WINDOW,
    remove_grid: bool = DEFAULT_REMOVE_GRID,
) -> StitchSnapshot:
    """Run :func:`reconstruct` to the end and return the final snapshot."""
    return drain(
        reconstruct(bundle, data, data_config, batch_size, window=window, remove_grid=remove_grid)
    )
