"""Nearest-neighbour groups and per-batch gathering."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from ptycho_engine.grouping import GroupedPatterns, make_groups
from ptycho_engine.simulate import make_scan


@pytest.fixture
def positions() -> np.ndarray:
    return make_scan("spiral", 300, 6.0, 0) + 100.0


@pytest.mark.parametrize("gridsize", [1, 2, 3])
def test_groups_are_deterministic_and_local(positions: np.ndarray, gridsize: int) -> None:
    a = make_groups(positions, gridsize, neighbor_count=7, seed=4)
    b = make_groups(positions, gridsize, neighbor_count=7, seed=4)
    c = make_groups(positions, gridsize, neighbor_count=7, seed=5)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert a.indices.shape == (300, gridsize * gridsize)
    if gridsize == 2:  # at gridsize 3 all 8 nearest neighbours are taken: no choice is left
        assert not np.array_equal(a.indices, c.indices)
    if gridsize > 1:
        k = max(7, gridsize * gridsize - 1)
        _, nearest = cKDTree(positions).query(positions[a.indices[:, 0]], k=k + 1)
        for row, members in enumerate(a.indices):
            assert set(members[1:]) <= set(nearest[row])
            assert len(set(members)) == members.size
    # every position is a seed exactly once by default
    np.testing.assert_array_equal(np.sort(a.indices[:, 0]), np.arange(300))


def test_offsets_are_relative_to_the_centroid(positions: np.ndarray) -> None:
    g = make_groups(positions, 2, seed=0)
    members = positions[g.indices]
    np.testing.assert_allclose(
        g.offsets_px, members - members.mean(axis=1, keepdims=True), atol=1e-4
    )
    np.testing.assert_allclose(g.offsets_px.sum(axis=1), 0, atol=1e-4)
    assert g.max_offset_px == pytest.approx(np.abs(g.offsets_px).max())


def test_n_groups_more_than_positions_reuses_seeds(positions: np.ndarray) -> None:
    g = make_groups(positions, 2, n_groups=700, seed=1)
    assert g.n_groups == 700
    counts = np.bincount(g.indices[:, 0], minlength=300)
    assert counts.min() >= 2 and counts.max() <= 3


def test_batches_gather_from_one_store_without_group_copy(positions: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    store = rng.random((300, 8, 8)).astype(np.float32)
    g = make_groups(positions, 2, seed=0)
    grouped = GroupedPatterns(store, g)
    assert grouped.amplitudes is store
    x, o = grouped.batch(np.array([5, 9]))
    assert x.shape == (2, 8, 8, 4) and o.shape == (2, 4, 2)
    for b, row in enumerate((5, 9)):
        for c in range(4):
            np.testing.assert_array_equal(x[b, :, :, c], store[g.indices[row, c]])
    batches = grouped.padded_batches(64)
    assert all(rows.size == 64 for rows, _ in batches)
    assert sum(real for _, real in batches) == 300
