"""Data of a setting: the ground-truth object of a seed, the scan, the probe and the noisy
diffraction patterns, every random stream derived from the seed (:func:`derived_seed`).

The object is sized for the largest supported N whatever the study sweeps, so a setting's data
never depend on the other settings of its study (see :mod:`ptycho_engine.study`).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np

from ptycho_engine.config import SUPPORTED_N
from ptycho_engine.data import DiffractionData
from ptycho_engine.study.spec import STUDY_FORMAT, StudySetting, StudySpec

#: Scan step as a fraction of N: the same overlap at every N (as ``simulate_dataset``).
STEP_FRACTION = 1.0 / 8.0
#: Margin, in pixels, around the largest scan when sizing the ground-truth object.
OBJECT_MARGIN_PX = 8


def digest(payload: Any) -> str:
    """sha256 (hex) of the canonical JSON of ``payload`` (sorted keys, no spaces)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def derived_seed(stream: str, *values: Any) -> int:
    """A 63-bit integer seed from a stream name and JSON-serialisable values (stable across
    processes, platforms and Python versions, unlike ``hash``)."""
    return int(digest([stream, *values])[:16], 16) >> 1


def _centred_scan(spec: StudySpec, seed: int, N: int) -> np.ndarray:
    from ptycho_engine.simulate import make_scan

    return make_scan(spec.scan, spec.positions, N * STEP_FRACTION, derived_seed("scan", seed))


def object_shape(spec: StudySpec, seed: int) -> tuple[int, int]:
    """Shape ``(H, W)`` of the ground-truth object of ``seed``: the scan at the largest
    supported N plus that N plus ``2 * OBJECT_MARGIN_PX`` on each axis."""
    n_max = SUPPORTED_N[-1]
    scan = _centred_scan(spec, seed, n_max)
    extent = scan.max(axis=0) - scan.min(axis=0)
    return (
        math.ceil(extent[0]) + n_max + 2 * OBJECT_MARGIN_PX,
        math.ceil(extent[1]) + n_max + 2 * OBJECT_MARGIN_PX,
    )


def ground_truth(spec: StudySpec, seed: int) -> np.ndarray:
    """The ground-truth object of ``seed``, shared by every setting of that seed.

    Returns
    -------
    ndarray, (H, W) complex64
        See :func:`object_shape` for the size.
    """
    from ptycho_engine.simulate import make_object

    return make_object(spec.object_kind, object_shape(spec, seed), derived_seed("object", seed))


def simulate_setting(
    spec: StudySpec, setting: StudySetting, obj: np.ndarray | None = None
) -> DiffractionData:
    """Simulate the data of one setting.

    Parameters
    ----------
    spec : StudySpec
    setting : StudySetting
    obj : ndarray, (H, W) complex, optional
        ``ground_truth(spec, setting.seed)`` when already at hand.

    Returns
    -------
    DiffractionData
        ``amplitudes`` (M, N, N) float32, ``positions_px`` (M, 2) in object pixels, the probe
        at N and ``object_gt``.
    """
    from ptycho_engine.simulate import make_probe, simulate

    gt = ground_truth(spec, setting.seed) if obj is None else obj
    n_max = SUPPORTED_N[-1]
    big = _centred_scan(spec, setting.seed, n_max)
    centre = -big.min(axis=0) + n_max // 2 + OBJECT_MARGIN_PX
    positions = _centred_scan(spec, setting.seed, setting.N) + centre
    probe = make_probe(spec.probe_kind, setting.N, derived_seed("probe", setting.seed))
    noise_seed = derived_seed("noise", setting.seed, setting.N, setting.photons)
    amplitudes = simulate(gt, probe, positions, setting.photons, noise_seed)
    recipe = {
        "N": setting.N,
        "n_positions": spec.positions,
        "photons": setting.photons,
        "object_kind": spec.object_kind,
        "scan": spec.scan,
        "probe_kind": spec.probe_kind,
        "seed": setting.seed,
        "step_px": setting.N * STEP_FRACTION,
    }
    return DiffractionData(
        amplitudes,
        positions,
        probe=probe,
        object_gt=gt,
        provenance={"format": "simulation", "recipe": recipe, "study_format": STUDY_FORMAT},
    )
