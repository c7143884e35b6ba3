"""Engine benchmark: ratios measured side by side in one run (the machines are noisy).

Prints, at N=64, gridsize 2, batch 16 unless stated:

1. physics-layer time per batch (overlap constraint + probe + far field, forward, and forward
   with gradient) divided by the time of the FFTs alone on the same batch (target <= 3);
2. inference patterns per second divided by the same network without the physics layer
   (target >= 0.9);
3. factory build + compile time (target < 0.3 s) and the first prediction after a rebuild
   (target < 1 s);
4. peak resident memory while training on 10,000 patterns (target < 2 GB), in a subprocess.

Run: ``.venv/bin/python benchmarks/engine.py``
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

N, GRIDSIZE, BATCH = 64, 2, 16


def _median_time(fn: Callable[[], object], repeats: int = 30) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _paired_medians(
    a: Callable[[], object], b: Callable[[], object], repeats: int = 100
) -> tuple[float, float]:
    """Median times of two functions measured in alternation (load drift hits both alike)."""
    for _ in range(3):
        a()
        b()
    times_a, times_b = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        a()
        times_a.append(time.perf_counter() - t)
        t = time.perf_counter()
        b()
        times_b.append(time.perf_counter() - t)
    return statistics.median(times_a), statistics.median(times_b)


def physics_ratio() -> None:
    import numpy as np
    import tensorflow as tf

    from ptycho_engine.config import ModelConfig
    from ptycho_engine.models import build_models
    from ptycho_engine.simulate import make_probe

    c = GRIDSIZE * GRIDSIZE
    rng = np.random.default_rng(0)
    re = tf.constant(rng.normal(size=(BATCH, N, N, c)).astype(np.float32))
    im = tf.constant(rng.normal(size=(BATCH, N, N, c)).astype(np.float32))
    offsets = tf.constant(rng.uniform(-8, 8, size=(BATCH, c, 2)).astype(np.float32))
    # the physics layers exactly as the factory builds them for N=64, gridsize 2
    bundle = build_models(ModelConfig(N=N, gridsize=GRIDSIZE), make_probe("disk", N), 10.0, 8.0)
    overlap = bundle.training.get_layer("overlap")
    farfield = bundle.training.get_layer("farfield")

    @tf.function
    def physics(re: tf.Tensor, im: tf.Tensor) -> tf.Tensor:
        r, i = overlap([re, im, offsets])
        return farfield([r, i])

    @tf.function
    def physics_grad(re: tf.Tensor, im: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch([re, im])
            loss = tf.reduce_sum(physics(re, im))
        return tape.gradient(loss, [re, im])

    psi = tf.complex(tf.transpose(re, [0, 3, 1, 2]), tf.transpose(im, [0, 3, 1, 2]))

    @tf.function
    def fft_only(psi: tf.Tensor) -> tf.Tensor:
        return tf.abs(tf.signal.fft2d(psi))

    @tf.function
    def fft_grad(psi: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            tape.watch(psi)
            loss = tf.reduce_sum(tf.abs(tf.signal.fft2d(psi)))
        return tape.gradient(loss, psi)

    t_phys, t_fft = _paired_medians(lambda: physics(re, im).numpy(), lambda: fft_only(psi).numpy())
    t_phys_g, t_fft_g = _paired_medians(
        lambda: [g.numpy() for g in physics_grad(re, im)], lambda: fft_grad(psi).numpy()
    )
    print(
        f"[1] physics layer / FFT alone, forward: {t_phys / t_fft:.2f}  "
        f"({t_phys * 1e3:.2f} ms vs {t_fft * 1e3:.2f} ms per batch of {BATCH} groups)  target <= 3"
    )
    print(
        f"[1] physics layer / FFT alone, forward+gradient: {t_phys_g / t_fft_g:.2f}  "
        f"({t_phys_g * 1e3:.2f} ms vs {t_fft_g * 1e3:.2f} ms)"
    )


def inference_ratio() -> None:
    import keras
    import numpy as np
    import tensorflow as tf

    from ptycho_engine.config import ModelConfig
    from ptycho_engine.models import build_models
    from ptycho_engine.simulate import make_probe

    c = GRIDSIZE * GRIDSIZE
    batch = 64
    bundle = build_models(ModelConfig(N=N, gridsize=GRIDSIZE), make_probe("disk", N), 10.0, 8.0)
    net_only = keras.Model(
        bundle.inference.inputs,
        [
            bundle.inference.get_layer("amp_activation").output,
            bundle.inference.get_layer("phase_activation").output,
        ],
    )
    full = tf.function(lambda x, o: bundle.inference([x, o], training=False))
    bare = tf.function(lambda x, o: net_only([x, o], training=False))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((batch, N, N, c)).astype(np.float32))
    o = tf.constant(rng.uniform(-8, 8, (batch, c, 2)).astype(np.float32))
    t_full = _median_time(lambda: [t.numpy() for t in full(x, o)], 10)
    t_bare = _median_time(lambda: [t.numpy() for t in bare(x, o)], 10)
    rate_full, rate_bare = batch * c / t_full, batch * c / t_bare
    print(
        f"[2] inference with physics / network alone: {rate_full / rate_bare:.3f}  "
        f"({rate_full:.0f} vs {rate_bare:.0f} patterns/s)  target >= 0.9"
    )


def build_times() -> None:
    import numpy as np

    from ptycho_engine.config import ModelConfig
    from ptycho_engine.models import build_models
    from ptycho_engine.simulate import make_probe

    c = GRIDSIZE * GRIDSIZE
    probe = make_probe("disk", N)
    build_models(ModelConfig(N=32, gridsize=1), make_probe("disk", 32), 10.0)  # warm Keras
    rng = np.random.default_rng(0)
    x = rng.random((64, N, N, c)).astype(np.float32)
    o = rng.uniform(-8, 8, (64, c, 2)).astype(np.float32)
    builds, firsts = [], []
    for _ in range(3):
        t = time.perf_counter()
        bundle = build_models(ModelConfig(N=N, gridsize=GRIDSIZE), probe, 10.0, 8.0)
        builds.append(time.perf_counter() - t)
        t = time.perf_counter()
        bundle.predict(x, o)
        firsts.append(time.perf_counter() - t)
    print(
        f"[3] factory build + compile: {min(builds):.3f} s (median {statistics.median(builds):.3f})"
        "  target < 0.3 s"
    )
    print(
        f"[3] first prediction (batch 64) after a rebuild: {min(firsts):.3f} s "
        f"(median {statistics.median(firsts):.3f})  target < 1 s"
    )


def memory_child() -> None:
    from ptycho_engine.config import DataConfig, ModelConfig, TrainingConfig
    from ptycho_engine.simulate import simulate_dataset
    from ptycho_engine.training import train

    data = simulate_dataset(N=N, n_positions=10_000, photons=1e6, seed=0)
    event = threading.Event()
    gen = train(
        data,
        ModelConfig(N=N, gridsize=GRIDSIZE),
        TrainingConfig(epochs=1, preview_every=1),
        DataConfig(n_groups=10_000),
        stop_event=event,
    )
    timer = threading.Timer(60.0, event.set)
    timer.start()
    for _ in gen:
        pass
    timer.cancel()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"{peak:.3f}")


def memory() -> None:
    done = subprocess.run(
        [sys.executable, __file__, "--memory-child"], capture_output=True, text=True, check=True
    )
    peak_gb = float(done.stdout.strip().splitlines()[-1])
    print(
        f"[4] peak resident memory training on 10,000 patterns (N=64, gridsize 2, 60 s of "
        f"steps + a full stitched preview): {peak_gb:.2f} GB  target < 2 GB"
    )


if __name__ == "__main__":
    if "--memory-child" in sys.argv:
        memory_child()
    else:
        physics_ratio()
        inference_ratio()
        build_times()
        memory()
