"""Nearest-neighbour groups of scan positions and per-batch gathering (physics.md section 4).

A group is ``C = gridsize**2`` scan positions: a seed position and ``C - 1`` positions chosen
among its ``K`` nearest neighbours. The patterns are never copied per group: a
:class:`GroupedPatterns` keeps one ``(M, N, N)`` store and gathers ``(B, N, N, C)`` batches on
demand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ptycho_engine.errors import ConfigError, DataError


@dataclass(frozen=True, eq=False)
class Groups:
    """Indices and relative offsets of groups of scan positions.

    Attributes
    ----------
    indices : ndarray, (G, C) int64
        Pattern indices of each group; column 0 is the seed position.
    offsets_px : ndarray, (G, C, 2) float32
        ``r_c = pos_c - centroid(group)``, ``(y, x)`` in object pixels.
    centroids_px : ndarray, (G, 2) float64
        Group centroids ``(y, x)`` in object pixels.
    """

    indices: np.ndarray
    offsets_px: np.ndarray
    centroids_px: np.ndarray

    @property
    def n_groups(self) -> int:
        return int(self.indices.shape[0])

    @property
    def channels(self) -> int:
        return int(self.indices.shape[1])

    @property
    def max_offset_px(self) -> float:
        """Largest ``|r_c|`` component over all groups (sizes the overlap canvas)."""
        return float(np.max(np.abs(self.offsets_px))) if self.offsets_px.size else 0.0

    def subset(self, rows: np.ndarray) -> Groups:
        """Groups at the given rows."""
        return Groups(self.indices[rows], self.offsets_px[rows], self.centroids_px[rows])


def make_groups(
    positions_px: np.ndarray,
    gridsize: int,
    neighbor_count: int = 7,
    n_groups: int | None = None,
    seed: int = 0,
) -> Groups:
    """Draw nearest-neighbour groups, deterministically from ``seed``.

    Parameters
    ----------
    positions_px : ndarray, (M, 2) float, ``(y, x)``
    gridsize : int
        ``C = gridsize**2`` positions per group.
    neighbor_count : int
        ``K``. When ``C - 1 > K`` (gridsize 3 with the default K = 7) the ``C - 1`` nearest
        neighbours are used, since fewer candidates than members cannot form a group.
    n_groups : int, optional
        Number of groups. Default: one per position, every position once as a seed. More
        groups than positions reuse seeds (drawn without replacement until all are used).
    seed : int

    Returns
    -------
    Groups
    """
    pos = np.asarray(positions_px, dtype=np.float64)
    m = pos.shape[0]
    c = gridsize * gridsize
    if m < c:
        raise DataError(f"{m} scan positions cannot form groups of {c} (gridsize {gridsize})")
    if n_groups is not None and n_groups < 1:
        raise ConfigError(f"n_groups = {n_groups!r} is invalid: expected an integer >= 1")
    rng = np.random.default_rng(seed)
    count = m if n_groups is None else n_groups
    repeats = -(-count // m)
    seeds = np.concatenate([rng.permutation(m) for _ in range(repeats)])[:count]
    if n_groups is None:
        seeds = np.sort(seeds)
    if c == 1:
        indices = seeds[:, np.newaxis]
    else:
        k = max(neighbor_count, c - 1)
        _, neighbours = cKDTree(pos).query(pos[seeds], k=k + 1)
        indices = np.empty((count, c), dtype=np.int64)
        for row, (s, cand) in enumerate(zip(seeds, neighbours, strict=True)):
            cand = cand[cand != s][:k]
            chosen = np.sort(rng.choice(cand.size, size=c - 1, replace=False))
            indices[row, 0] = s
            indices[row, 1:] = cand[chosen]
    indices = indices.astype(np.int64)
    members = pos[indices]
    centroids = members.mean(axis=1)
    offsets = (members - centroids[:, np.newaxis, :]).astype(np.float32)
    return Groups(indices, offsets, centroids)


class GroupedPatterns:
    """Batches of grouped patterns gathered from one ``(M, N, N)`` store.

    Parameters
    ----------
    amplitudes : ndarray, (M, N, N) float32
        The store (not copied).
    groups : Groups
    """

    def __init__(self, amplitudes: np.ndarray, groups: Groups) -> None:
        self.amplitudes = amplitudes
        self.groups = groups

    def __len__(self) -> int:
        return self.groups.n_groups

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Amplitudes ``(B, N, N, C)`` float32 and offsets ``(B, C, 2)`` float32 of some groups."""
        idx = self.groups.indices[rows]
        amps = self.amplitudes[idx.reshape(-1)]
        b, c = idx.shape
        n = amps.shape[-1]
        amps = amps.reshape(b, c, n, n).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(amps, dtype=np.float32), self.groups.offsets_px[rows]

    def padded_batches(self, batch_size: int) -> list[tuple[np.ndarray, int]]:
        """Row indices in order, in batches of exactly ``batch_size`` (the last one padded by
        repeating its final row), with the number of real rows in each."""
        out = []
        total = len(self)
        for start in range(0, total, batch_size):
            rows = np.arange(start, min(start + batch_size, total))
            real = rows.size
            if real < batch_size:
                rows = np.concatenate([rows, np.full(batch_size - real, rows[-1])])
            out.append((rows, real))
        return out
