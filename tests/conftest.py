"""Test-wide settings (quiet TensorFlow logs, its thread pools small on 2 cores) and the
fixtures that engine and app tests share."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with one small pretrained network (N 32, gridsize 1: 8 steps on a pool of two
    scans of the family) and its recipe, made once per session; tests point
    ``ptycho_engine.pretrain.PRETRAINED_DIR`` at it."""
    from ptycho_engine.pretrain import pretrain

    folder = tmp_path_factory.mktemp("pretrained")
    pretrain(
        folder, N=32, gridsize=1, steps=8, pool_size=2, refresh_steps=4, mae_steps=2,
        n_positions=60, seed=5, reference_members=2,
    )  # fmt: skip
    return folder
