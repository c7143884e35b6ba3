"""Reading benchmark: our reader against a bare h5py read of the same dataset, in one run.

Writes 10,000 patterns of 128x128 uint16 counts to a chunked (one pattern per chunk),
gzip-compressed HDF5 file with positions, then measures, each in a fresh subprocess:

* bare: ``h5py.File(path)["data"][...]`` (uint16 in memory);
* ours: ``ptycho_engine.io.read_data(path, profile)`` (float32 amplitudes, positions in
  pixels, sha256 of the file, validation).

Each subprocess first reads a 10-pattern file of the same layout, so one-off imports are not
counted (the app has them loaded). The two modes alternate (bare, ours, bare, ours, ...,
``--repeats`` times each) and each side's best time is kept, so both sides get the same
treatment from a noisy machine.

Prints every run (wall seconds and the CPU seconds of the process during the read, which
shows how much the read uses a second core), the load average, the time ratio of the best
times (target <= 1.5) and our peak memory above the process's baseline divided by the size
of the array we return (float32, target <= 1.3; the largest of our runs).

Run: ``.venv/bin/python benchmarks/io.py [--patterns 10000] [--repeats 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

N = 128


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return float(line.split()[1]) / 1024
    return float("nan")


def _child(mode: str, path: str, profile: str) -> None:
    import h5py
    import numpy as np

    from ptycho_engine.io import read_data

    # warm up on a 10-pattern file of the same layout: one-off imports (scipy.spatial for
    # the scan-step check, compression filters) are not part of the cost of a read
    warm = str(Path(path).with_name("warmup.h5"))
    if mode == "bare":
        with h5py.File(warm, "r") as f:
            f["data"][...]
    else:
        read_data(warm, profile)
    baseline = _rss_mb()
    cpu = time.process_time()
    t = time.perf_counter()
    if mode == "bare":
        with h5py.File(path, "r") as f:
            array = f["data"][...]
        nbytes = array.nbytes
    else:
        data = read_data(path, profile)
        nbytes = data.amplitudes.nbytes
        array = data.amplitudes
    elapsed = time.perf_counter() - t
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "cpu_seconds": cpu,
                "peak_mb": peak,
                "baseline_mb": baseline,
                "nbytes": nbytes,
                "checksum": float(np.sum(array[::997], dtype=np.float64)),
            }
        )
    )


def _run(mode: str, path: Path, profile: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path), str(profile)],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patterns", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2, help="runs of each mode (best kept)")
    args = parser.parse_args()
    import h5py
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "patterns.h5"
        profile = Path(tmp) / "profile.json"
        rng = np.random.default_rng(0)
        yy, xx = np.mgrid[:N, :N]
        mean = 200.0 * np.exp(-((yy - N // 2) ** 2 + (xx - N // 2) ** 2) / (2 * 12.0**2)) + 0.5
        t = time.perf_counter()
        with h5py.File(Path(tmp) / "warmup.h5", "w") as f:
            f.create_dataset(
                "data",
                data=rng.poisson(mean, size=(10, N, N)).astype(np.uint16),
                chunks=(1, N, N),
                compression="gzip",
            )
            f["positions"] = rng.uniform(0, 1e-6, size=(10, 2))
        with h5py.File(path, "w") as f:
            dset = f.create_dataset(
                "data",
                (args.patterns, N, N),
                dtype=np.uint16,
                chunks=(1, N, N),
                compression="gzip",
                compression_opts=4,
            )
            for start in range(0, args.patterns, 500):
                stop = min(args.patterns, start + 500)
                dset[start:stop] = rng.poisson(mean, size=(stop - start, N, N)).astype(np.uint16)
            f["positions"] = rng.uniform(0, 1e-6, size=(args.patterns, 2))
        profile.write_text(
            json.dumps(
                {
                    "format": "ptycho-mapping-profile",
                    "version": 1,
                    "name": "benchmark",
                    "patterns": {"path": "data", "values": "intensity", "origin": "centred"},
                    "positions": {"path": "positions", "unit": "m", "order": "yx"},
                    "energy_ev": 8800.0,
                    "distance_m": 2.2,
                    "detector_pixel_m": 7.5e-05,
                }
            )
        )
        size_mb = path.stat().st_size / 1e6
        print(
            f"wrote {args.patterns} patterns of {N}x{N} uint16, gzip, one chunk per pattern: "
            f"{size_mb:.0f} MB in {time.perf_counter() - t:.1f} s"
        )
        runs: dict[str, list[dict[str, float]]] = {"bare": [], "ours": []}
        for repeat in range(max(1, args.repeats)):
            for mode in ("bare", "ours"):
                load = os.getloadavg()[0]
                result = _run(mode, path, profile)
                runs[mode].append(result)
                print(
                    f"  run {repeat + 1} {mode}: {result['seconds']:.2f} s wall, "
                    f"{result['cpu_seconds']:.2f} s CPU (load average {load:.2f})"
                )
        t_bare = min(run["seconds"] for run in runs["bare"])
        t_ours = min(run["seconds"] for run in runs["ours"])
        ours = max(runs["ours"], key=lambda run: run["peak_mb"] - run["baseline_mb"])
        extra = ours["peak_mb"] - ours["baseline_mb"]
        print(
            f"bare h5py read: {t_bare:.2f} s; read_data: {t_ours:.2f} s (best of "
            f"{len(runs['ours'])} each); time ratio {t_ours / t_bare:.2f} (target <= 1.5)"
        )
        cpu_bare = min(run["cpu_seconds"] for run in runs["bare"])
        cpu_ours = min(run["cpu_seconds"] for run in runs["ours"])
        print(
            f"CPU seconds (best): bare {cpu_bare:.2f}, read_data {cpu_ours:.2f}, ratio "
            f"{cpu_ours / cpu_bare:.2f} (what the time ratio tends to when no core is free)"
        )
        print(
            f"read_data peak memory above baseline {extra:.0f} MB for a returned float32 "
            f"array of {ours['nbytes'] / 2**20:.0f} MB: ratio {extra * 2**20 / ours['nbytes']:.2f}"
            " (target <= 1.3)"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        main()
