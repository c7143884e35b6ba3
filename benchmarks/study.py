"""Study throughput: settings per hour of the local executor and of a 2-worker dask cluster.

Both run the same small study (N=32, n_filters_scale 1, 60 positions, 2 epochs, gridsize 1 and
2, two doses: 4 settings) into fresh folders, one after the other in this run, and the script
prints both rates and their ratio (dask / local). The dask time includes starting the cluster
and TensorFlow in its workers, as a user would see it; the local time includes nothing of the
kind once TensorFlow is imported (a warm-up setting runs first). The machines are shared and
noisy: compare the two numbers of one run, not numbers across runs.

Run: ``.venv/bin/python benchmarks/study.py [--settings-scale K]`` (K multiplies the doses).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _spec(scale: int) -> object:
    from ptycho_engine.study import StudySpec

    doses = tuple(10.0 ** (3 + k) for k in range(2 * scale))
    return StudySpec(
        N=(32,),
        gridsize=(1, 2),
        photons=doses,
        loss=("nll",),
        seeds=(0,),
        epochs=2,
        positions=60,
        n_filters_scale=1,
    )


def _rate(executor: str, folder: Path, scale: int) -> float:
    from ptycho_engine.study import StudySpec, run_study

    spec = _spec(scale)
    assert isinstance(spec, StudySpec)
    start = time.perf_counter()
    result = run_study(spec, folder, executor=executor, workers=2)
    elapsed = time.perf_counter() - start
    print(f"{executor:>5}: {result.ran} settings in {elapsed:.1f} s", flush=True)
    return 3600.0 * result.ran / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings-scale", type=int, default=1, help="doses = 2 x this")
    args = parser.parse_args()
    from ptycho_engine.study import StudySpec, run_study

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        warm = _spec(1)
        assert isinstance(warm, StudySpec)
        # Warm-up: import TensorFlow and trace once in this process, outside the timing.
        run_study(StudySpec(**{**warm.to_dict(), "gridsize": [1], "photons": [1e5]}), root / "warm")
        local = _rate("local", root / "local", args.settings_scale)
        dask = _rate("dask", root / "dask", args.settings_scale)
    print(f"local executor: {local:.0f} settings/hour")
    print(f"dask, 2 workers: {dask:.0f} settings/hour")
    print(f"ratio dask / local: {dask / local:.2f}")


if __name__ == "__main__":
    main()
