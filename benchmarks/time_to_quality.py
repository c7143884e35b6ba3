"""Time to a good image: the network's defaults measured by wall time to quality (issue 12).

Everything is measured in one run, on held-out simulations: the object family ("cells") and
the probe ("kb") of :mod:`ptycho_engine.family` that no default was tuned on and that
pretraining never draws, with seeds of this script only. Sections (``--sections``):

``step``
    Training step time and inference patterns/s of the network at the old defaults (width 2,
    two decoders, no XLA), with two width-1 decoders, and at the new defaults (width 1, one
    shared half-width decoder, no XLA), against the PtychoPINN-shaped
    network of ``../shared/benchmarks/pinn_proxy.py``, at N 64, gridsize 2, batch 16,
    measured in alternation (load drift hits all alike). Ratios < 1 mean faster than the proxy.
``scratch``
    From-scratch training, old and new defaults side by side, each for the same budget of
    training wall time (``--budget`` seconds, previews and scoring not counted): amplitude and
    phase SSIM of the stitched preview against training time, and the time at which both
    reach 0.7 and 0.8. The proxy's layer plan trains for the same budget inside the new
    defaults' physics, loss and training loop (``build_models(network=...)``): the step
    target asks for equal or better SSIM after equal wall time.
``few``
    500 positions on a raster with a measured-like probe (a zone plate with side lobes,
    2 incoherent modes), the default recipe: whether early stopping ended the run, where the
    validation loss ended against its best, and the seam measure of the stitched amplitude
    against the truth's (:func:`ptycho_engine.metrics.seams.seam_excess`; 1 = no seams).

``pretrained``
    The shipped pretrained networks (:mod:`ptycho_engine.pretrain`) on the held-out data:
    inference alone at gridsize 2 and 1, then ``--fine-tune`` seconds of fine-tuning against
    training from scratch for the same time; at 1e3 and 1e4 photons, fine-tuning with the
    Poisson likelihood against the amplitude MAE; the tike file (``tike``, also a section of
    its own): the pretrained N 32 network (none is shipped now), inference alone and after
    fine-tuning.
``tike-scratch`` (not in the default sections)
    The tike file from scratch at N 32, gridsize 1, for ``--budget`` seconds: the default
    network and the width-2 network with two decoders, each with early stopping and the
    restore of the best-validation weights on held-out pixels (the default), on held-out
    groups (the file's 5 % is 8 groups), and without early stopping.
``throughput`` (not in the default sections)
    Inference patterns/s and training steps/s of the default network at N 64 and 128,
    gridsize 2, on the first GPU when there is one (else the CPU, and it says so), against
    the published figures of 6.1k patterns/s at 64 and 2.6k at 128 on one GPU (target 5x).
    Inference runs in batches of ``--throughput-batch`` groups, training in batches of 16.

Run: ``.venv/bin/python benchmarks/time_to_quality.py [--budget 240] [--sections step,scratch]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PROXY_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "benchmarks"
N, GRIDSIZE, BATCH = 64, 2, 16
HELD_OUT_SEED = 20261202


def _old_and_new() -> dict[str, tuple[Any, dict[str, Any]]]:
    """``name: (ModelConfig, TrainingConfig fields)`` of the defaults before this issue, of
    the width-1 network with one full-width decoder per head (the defaults until 2026-12-04),
    and now (one shared decoder at half the encoder's width)."""
    from ptycho_engine.config import ModelConfig

    legacy = ModelConfig.LEGACY_DECODER
    return {
        "old (width 2, no XLA)": (
            ModelConfig(N=N, gridsize=GRIDSIZE, n_filters_scale=2, **legacy),
            {"jit_compile": False, "early_stopping_patience": 0, "restore_best_weights": False},
        ),
        # XLA for long runs, the default rule until 2026-12-07
        "two decoders (width 1, XLA)": (
            ModelConfig(N=N, gridsize=GRIDSIZE, **legacy),
            {"jit_compile": None},
        ),
        "new (defaults)": (ModelConfig(N=N, gridsize=GRIDSIZE), {}),
    }


def step_section() -> None:
    import numpy as np
    import tensorflow as tf

    from ptycho_engine.config import XLA_MIN_STEPS, TrainingConfig, uses_xla
    from ptycho_engine.models import build_models
    from ptycho_engine.simulate import make_probe
    from ptycho_engine.training import make_train_step

    if not (PROXY_DIR / "pinn_proxy.py").is_file():
        print(f"[step] skipped: {PROXY_DIR / 'pinn_proxy.py'} is absent")
        return
    sys.path.insert(0, str(PROXY_DIR))
    import keras
    import pinn_proxy

    c = GRIDSIZE * GRIDSIZE
    rng = np.random.default_rng(0)
    x = tf.constant((rng.random((BATCH, N, N, c)) * 3).astype(np.float32))
    o = tf.constant(rng.uniform(-8, 8, (BATCH, c, 2)).astype(np.float32))
    x_inf = tf.constant((rng.random((64, N, N, c)) * 3).astype(np.float32))
    o_inf = tf.constant(rng.uniform(-8, 8, (64, c, 2)).astype(np.float32))
    configs = _old_and_new()
    steps: dict[str, Any] = {}
    infers: dict[str, Any] = {}
    for name, (mcfg, tkw) in configs.items():
        bundle = build_models(mcfg, make_probe("disk", N), 10.0, 8.0)
        w1, w0 = tf.constant(1.0), tf.constant(0.0)
        # a long run: the automatic rule compiles
        xla = uses_xla(TrainingConfig(**tkw).jit_compile, XLA_MIN_STEPS)
        # the engine's own training step (training.make_train_step)
        fn = make_train_step(bundle, xla, bundle.intensity_scale)
        steps[name] = lambda fn=fn, w1=w1, w0=w0: float(fn(x, o, w1, w0))
        inf = tf.function(lambda a, b, m=bundle.inference: m([a, b], training=False))
        infers[name] = lambda inf=inf: [t.numpy() for t in inf(x_inf, o_inf)]
    proxy = pinn_proxy.build_model(N, c, 2)
    yy, xx = np.mgrid[-N // 2 : N // 2, -N // 2 : N // 2] / N
    probe = np.exp(-(xx**2 + yy**2) / (2 * 0.16**2)).astype(np.complex64)
    physics = pinn_proxy.make_physics(N, c, probe)
    popt = keras.optimizers.Adam(1e-3)
    meas = tf.constant(rng.poisson(50.0, size=(BATCH, N, N, c)).astype(np.float32))
    amp_in = tf.sqrt(meas) / 10.0
    poff = tf.constant(rng.uniform(-4, 4, (BATCH, c, 2)).astype(np.float32))

    @tf.function
    def proxy_step() -> Any:
        with tf.GradientTape() as tape:
            amp, ph = proxy(amp_in, training=True)
            pred = physics(amp, ph, poff) + 1e-3
            loss = tf.reduce_mean(pred - meas * tf.math.log(pred))
        grads = tape.gradient(loss, proxy.trainable_variables)
        popt.apply_gradients(zip(grads, proxy.trainable_variables, strict=True))
        return loss

    proxy_inf_in = tf.constant((rng.random((64, N, N, c))).astype(np.float32))
    proxy_infer = tf.function(lambda a: proxy(a, training=False))
    steps["proxy (PtychoPINN plan, width 2)"] = lambda: float(proxy_step())
    infers["proxy (PtychoPINN plan, width 2)"] = lambda: [
        t.numpy() for t in proxy_infer(proxy_inf_in)
    ]
    for table, reps, unit in ((steps, 15, "step"), (infers, 8, "inference")):
        for fn in table.values():
            fn()
            fn()
        times: dict[str, list[float]] = {k: [] for k in table}
        for _ in range(reps):
            for k, fn in table.items():
                t = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t)
        proxy_t = statistics.median(times["proxy (PtychoPINN plan, width 2)"])
        for k, ts in times.items():
            med = statistics.median(ts)
            if unit == "step":
                print(
                    f"[step] {k}: {med * 1e3:.0f} ms per training step (batch {BATCH}), "
                    f"{med / proxy_t:.2f}x the proxy's  target <= 1.0"
                )
            else:
                rate = 64 * c / med
                print(
                    f"[step] {k}: {rate:.0f} patterns/s inference, "
                    f"{(proxy_t / med):.2f}x the proxy's rate  target >= 1.0"
                )
    print(
        "[step] (the new default runs the step without XLA; the two-decoder network "
        f"compiles it, as the defaults did until 2026-12-07 for runs of >= {XLA_MIN_STEPS})"
    )


def held_out_data(n_positions: int = 1000, photons: float = 1e6) -> Any:
    import numpy as np

    from ptycho_engine.family import draw_member, simulate_member

    member = draw_member(
        np.random.default_rng(HELD_OUT_SEED),
        N=N,
        n_positions=n_positions,
        held_out=True,
        photons=photons,
    )
    return member, simulate_member(member)


def timed_training(
    data: Any,
    mcfg: Any,
    tkw: dict[str, Any],
    budget_s: float,
    bundle: Any = None,
    preview_every: int = 2,
    kept: list[tuple[float, float]] | None = None,
    data_kw: dict[str, Any] | None = None,
) -> list[tuple]:
    """Train until ``budget_s`` seconds of training (previews and scoring excluded), from
    ``bundle`` when given (a warm start); return ``(training_s, steps, amplitude SSIM, phase
    SSIM)`` at every preview and at the budget. ``kept``, when given, gets the final model's
    ``(amplitude SSIM, phase SSIM)`` stitched with the scan grid's pattern left in.
    ``data_kw``: fields of the training's ``DataConfig`` (default: its defaults)."""
    from ptycho_engine.config import DataConfig, TrainingConfig
    from ptycho_engine.data import StepProgress, TrainingSnapshot
    from ptycho_engine.inference import reconstruct_all
    from ptycho_engine.metrics import compare
    from ptycho_engine.stitching import reference_region
    from ptycho_engine.training import train

    tcfg = TrainingConfig(epochs=10_000, preview_every=preview_every, **tkw)
    stop = threading.Event()
    dcfg = DataConfig(**(data_kw or {}))
    gen = train(data, mcfg, tcfg, dcfg, stop_event=stop, step_events_s=0.5, bundle=bundle)
    start = time.perf_counter()
    excluded = 0.0
    preview_from = None
    points = []
    try:
        while True:
            item = next(gen)
            now = time.perf_counter()
            if isinstance(item, StepProgress):
                if item.stage == "stitching a preview" and preview_from is None:
                    preview_from = now
            elif isinstance(item, TrainingSnapshot):
                if preview_from is not None:
                    excluded += now - preview_from
                    preview_from = None
                if item.preview is not None:
                    t0 = time.perf_counter()
                    snap = item.preview
                    ref = reference_region(data.object_gt, snap.origin_px, snap.object.shape)
                    scores = compare(snap.object, ref, snap.valid)
                    excluded += time.perf_counter() - t0
                    points.append(
                        (
                            now - start - excluded,
                            item.steps,
                            scores.amplitude.ssim,
                            scores.phase.ssim,
                        )
                    )
            if time.perf_counter() - start - excluded >= budget_s:
                stop.set()
    except StopIteration as end:
        result = end.value
        trained = time.perf_counter() - start - excluded
        if result.stopped:
            # the stop came between previews: score the model as it is at the budget
            snap = reconstruct_all(result.bundle, data, DataConfig())
            ref = reference_region(data.object_gt, snap.origin_px, snap.object.shape)
            scores = compare(snap.object, ref, snap.valid)
            points.append((trained, result.steps, scores.amplitude.ssim, scores.phase.ssim))
        if kept is not None:
            snap = reconstruct_all(result.bundle, data, DataConfig(), remove_grid=False)
            ref = reference_region(data.object_gt, snap.origin_px, snap.object.shape)
            scores = compare(snap.object, ref, snap.valid)
            kept.append((scores.amplitude.ssim, scores.phase.ssim))
    return points


def _time_to(points: list[tuple], level: float) -> str:
    for t, steps, a, p in points:
        if a >= level and p >= level:
            return f"{t:.0f} s ({steps} steps)"
    return "not reached"


PROXY_NAME = "proxy (PtychoPINN plan, width 2)"


def _proxy_network(mcfg: Any) -> Any:
    """The proxy's encoder-decoder as a :data:`ptycho_engine.models.Network`: it sees the
    normalised amplitudes, and its tanh phase is scaled by pi as the proxy's physics does."""
    import math

    import keras

    sys.path.insert(0, str(PROXY_DIR))
    import pinn_proxy

    def network(normalised: Any) -> tuple[Any, Any]:
        amp, phase = pinn_proxy.build_model(mcfg.N, mcfg.channels, 2)(normalised)
        return amp, keras.layers.Rescaling(math.pi, name="proxy_phase_pi")(phase)

    return network


def _proxy_bundle(data: Any, mcfg: Any) -> Any:
    """The proxy's network inside the engine's physics, loss and training loop. ``train``
    gives it the run's overlap canvas (a rebuild keeps the network and its weights)."""
    from ptycho_engine.models import build_models, intensity_scale_for

    scale = intensity_scale_for(data.photons_per_pattern, mcfg.N)
    return build_models(mcfg, data.probe_all_modes, scale, network=_proxy_network(mcfg))


def scratch_section(budget_s: float) -> None:
    member, data = held_out_data()
    print(f"[scratch] held-out data: {member.to_dict()}")
    configs = _old_and_new()
    runs = [(name, mcfg, tkw, None) for name, (mcfg, tkw) in configs.items()]
    if (PROXY_DIR / "pinn_proxy.py").is_file():
        # the proxy's layer plan under the new defaults' physics, loss and training loop:
        # equal SSIM after equal wall time is part of the step target
        mcfg, tkw = configs["new (defaults)"]
        runs.append((PROXY_NAME, mcfg, tkw, _proxy_bundle(data, mcfg)))
    else:
        print(f"[scratch] the proxy is skipped: {PROXY_DIR / 'pinn_proxy.py'} is absent")
    finals = {}
    for name, mcfg, tkw, bundle in runs:
        kept: list[tuple[float, float]] = []
        points = timed_training(data, mcfg, tkw, budget_s, bundle=bundle, kept=kept)
        last = points[-1] if points else (float("nan"),) * 4
        finals[name] = last
        without = f" (grid pattern left in: {kept[0][0]:.3f} / {kept[0][1]:.3f})" if kept else ""
        print(
            f"[scratch] {name}: SSIM >= 0.7 at {_time_to(points, 0.7)}, >= 0.8 at "
            f"{_time_to(points, 0.8)}; after {last[0]:.0f} s ({last[1]} steps): amplitude "
            f"{last[2]:.3f}, phase {last[3]:.3f}{without}"
        )
        print("[scratch]   " + _curve(points))
    if PROXY_NAME in finals:
        ours, proxy = finals["new (defaults)"], finals[PROXY_NAME]
        better = ours[2] >= proxy[2] and ours[3] >= proxy[3]
        print(
            f"[scratch] after equal training time: new defaults {ours[2]:.3f} / {ours[3]:.3f}, "
            f"the proxy {proxy[2]:.3f} / {proxy[3]:.3f}: "
            f"{'equal or better' if better else 'worse'}  target: equal or better"
        )


#: Published inference rates of a network of this kind on one GPU (patterns/s) by N.
PUBLISHED_PATTERNS_S = {64: 6100.0, 128: 2600.0}


def _rate(fn: Any, min_s: float = 2.0) -> float:
    """Calls per second of ``fn`` (after two warm-up calls), over at least ``min_s``."""
    fn()
    fn()
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < min_s:
        fn()
        calls += 1
    return calls / (time.perf_counter() - start)


def _throughput(n: int, batch_groups: int) -> tuple[float, float]:
    """Inference patterns/s and training steps/s of the default network at ``n``."""
    import numpy as np
    import tensorflow as tf

    from ptycho_engine.config import ModelConfig
    from ptycho_engine.models import build_models
    from ptycho_engine.simulate import make_probe
    from ptycho_engine.training import make_train_step

    c = GRIDSIZE * GRIDSIZE
    rng = np.random.default_rng(0)
    bundle = build_models(ModelConfig(N=n, gridsize=GRIDSIZE), make_probe("disk", n), 10.0, n / 8)
    x_inf = tf.constant((rng.random((batch_groups, n, n, c)) * 3).astype(np.float32))
    o_inf = tf.constant(rng.uniform(-n / 8, n / 8, (batch_groups, c, 2)).astype(np.float32))
    infer = tf.function(lambda a, b: bundle.inference([a, b], training=False), jit_compile=True)
    per_s = _rate(lambda: [t.numpy() for t in infer(x_inf, o_inf)]) * batch_groups * c
    x, o = x_inf[:BATCH], o_inf[:BATCH]
    step = make_train_step(bundle, True, bundle.intensity_scale)  # the engine's own step
    w1, w0 = tf.constant(1.0), tf.constant(0.0)
    return per_s, _rate(lambda: float(step(x, o, w1, w0)))


def throughput_section(batch_groups: int) -> None:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    where = f"GPU {gpus[0].name}" if gpus else "CPU (no GPU here: the targets are for one GPU)"
    print(f"[throughput] on the {where}, gridsize {GRIDSIZE}, default network")
    c = GRIDSIZE * GRIDSIZE
    for n in (64, 128):
        per_s, steps_s = _throughput(n, batch_groups)
        published = PUBLISHED_PATTERNS_S[n]
        print(
            f"[throughput] N {n}: {per_s:,.0f} patterns/s inference (batches of {batch_groups} "
            f"groups), {per_s / published:.2f}x the published {published:,.0f}  target >= 5.0; "
            f"{steps_s:.1f} training steps/s (batch {BATCH}, {steps_s * BATCH * c:,.0f} "
            "patterns/s)"
        )


def few_section(budget_epochs: int) -> None:
    from ptycho_engine.family import Member, simulate_member
    from ptycho_engine.inference import reconstruct_all
    from ptycho_engine.metrics import align_to_reference, compare
    from ptycho_engine.metrics.seams import raster_step, seam_excess
    from ptycho_engine.pipeline import recipe, run
    from ptycho_engine.stitching import reference_region
    from ptycho_engine.streams import drain

    member = Member(
        N=N,
        n_positions=500,
        photons=1e6,
        object_kind="cells",
        contrast="mixed",
        probe_kind="zoneplate",
        probe_modes=2,
        probe_size=0.8,
        probe_curvature_rad=2.0,
        scan="raster",
        step_px=N / 8 * 1.25,
        seed=HELD_OUT_SEED + 1,
    )
    data = simulate_member(member)
    spec = recipe(N, GRIDSIZE, budget_epochs, preview_every=0)
    result = drain(run(spec, data))
    vals = [h["val_loss"] for h in result.history if h["stage"] == "main"]
    record = result.details.get("early_stopping", {})
    best, end = min(vals), vals[-1]
    print(
        f"[few] 500 positions, zone plate, 2 modes, {budget_epochs} epochs planned: stopped "
        f"after epoch {result.history[-1]['epoch']} (early stop at "
        f"{record.get('stopped_at_epoch', 0)}, restored epoch {record.get('restored_epoch', 0)})"
    )
    print(
        f"[few] validation loss at the end {end:.6g}, best {best:.6g}: "
        f"{(end - best) / abs(best) * 100:+.2f} % of |best|  target <= 1 %"
    )
    # the same network stitched again with the grid pattern left in: the old default
    kept = reconstruct_all(
        result.state, result.data, spec.grouping, window=spec.stitch_window, remove_grid=False
    )
    step = raster_step(data.positions_px)
    for label, snap in (("as stitched", kept), ("grid pattern removed", result.reconstruction)):
        ref = reference_region(data.object_gt, snap.origin_px, snap.object.shape)
        aligned = align_to_reference(snap.object, ref, snap.valid)
        report = seam_excess(aligned, ref, step, snap.valid)
        scores = compare(snap.object, ref, snap.valid)
        print(
            f"[few] {label}: seam measure (stitched amplitude vs truth, 1 = none) "
            f"{report.ratio:.3f}  target within 10 % of 1; local (blur taken out) "
            f"{report.local_ratio:.3f}; SSIM {scores.amplitude.ssim:.3f} / "
            f"{scores.phase.ssim:.3f}"
        )
    pattern = result.reconstruction.grid_pattern
    if pattern is not None:
        print(
            f"[few] removed pattern: amplitude {100 * pattern.amplitude_rms:.2f} % rms, phase "
            f"{pattern.phase_rms_rad:.4f} rad rms"
        )


def _score(bundle: Any, data: Any) -> tuple[float, float]:
    from ptycho_engine.config import DataConfig
    from ptycho_engine.inference import reconstruct_all
    from ptycho_engine.metrics import compare
    from ptycho_engine.stitching import reference_region

    snap = reconstruct_all(bundle, data, DataConfig())
    ref = reference_region(data.object_gt, snap.origin_px, snap.object.shape)
    scores = compare(snap.object, ref, snap.valid)
    return scores.amplitude.ssim, scores.phase.ssim


def _pretrained(mcfg: Any, data: Any) -> tuple[Any, str, float] | None:
    """The shipped network for ``mcfg`` with ``data``'s physics, its name and load time (None,
    said on the output, when none is shipped)."""
    from ptycho_engine.pretrain import find_pretrained, pretrained_start

    t0 = time.perf_counter()
    path = find_pretrained(mcfg)
    if path is None:
        print(f"[pretrained] skipped: no shipped network for N {mcfg.N}, gridsize {mcfg.gridsize}")
        return None
    bundle = pretrained_start(path, mcfg, data, data.probe_all_modes)
    return bundle, path.stem, time.perf_counter() - t0


def _curve(points: list[tuple]) -> str:
    """``points`` of :func:`timed_training` as one line: seconds, amplitude / phase SSIM."""
    return ", ".join(f"{t:.0f}s {a:.2f}/{p:.2f}" for t, _, a, p in points)


def _final(points: list[tuple]) -> str:
    t, steps, a, p = points[-1]
    return f"after {t:.0f} s ({steps} steps): amplitude {a:.3f}, phase {p:.3f}"


def pretrained_section(fine_tune_s: float) -> None:
    """The shipped networks on held-out data: inference alone, fine-tuning against training
    from scratch for the same time, low dose (NLL against MAE fine-tuning) and the tike file."""
    from ptycho_engine.config import ModelConfig
    from ptycho_engine.pretrain import far_field_residual, find_pretrained, ood_warning

    for g, target in ((2, 0.6), (1, 0.5)):
        member, data = held_out_data()
        mcfg = ModelConfig(N=N, gridsize=g, auto_probe_scale=True)
        found = _pretrained(mcfg, data)
        if found is None:
            continue
        bundle, name, load_s = found
        t0 = time.perf_counter()
        a, p = _score(bundle, data)
        infer_s = time.perf_counter() - t0
        residual = far_field_residual(bundle, data)
        ood = bool(ood_warning(find_pretrained(mcfg), residual))
        print(
            f"[pretrained] {name} inference alone on held-out {member.object_kind} + "
            f"{member.probe_kind} (1,000 positions, 1e6): amplitude {a:.3f}, phase {p:.3f} "
            f"(target >= {target}); load {load_s:.1f} s, inference {infer_s:.1f} s; "
            f"far-field residual {residual:.3g}, out of distribution: {ood}"
        )
    fine_tuning(fine_tune_s)
    tike_section(fine_tune_s)


def fine_tuning(fine_tune_s: float) -> None:
    """The shipped gridsize-2 network fine-tuned on the held-out data against training from
    scratch, then :func:`low_dose`."""
    from ptycho_engine.config import ModelConfig

    _, data = held_out_data()
    mcfg = ModelConfig(N=N, gridsize=GRIDSIZE, auto_probe_scale=True)
    fine = {"mae_warmup_epochs": 0}
    found = _pretrained(mcfg, data)
    if found is None:
        return
    bundle, name, _ = found
    points = timed_training(data, mcfg, fine, fine_tune_s, bundle=bundle)
    print(f"[pretrained] {name} + fine-tuning {_final(points)}  target 0.8 / 0.8")
    print("[pretrained]   " + _curve(points))
    points = timed_training(data, mcfg, {}, fine_tune_s)
    print(f"[pretrained] from scratch, same budget: {_final(points)}")
    low_dose(fine_tune_s)


def low_dose(fine_tune_s: float, doses: tuple[float, ...] = (1e3, 1e4)) -> None:
    """The shipped gridsize-2 network fine-tuned at low dose on the held-out data, with the
    Poisson likelihood against the amplitude MAE, for the same time at each dose."""
    from ptycho_engine.config import ModelConfig

    mcfg = ModelConfig(N=N, gridsize=GRIDSIZE, auto_probe_scale=True)
    fine = {"mae_warmup_epochs": 0}
    for photons in doses:
        _, low = held_out_data(photons=photons)
        for loss, tkw in (
            ("NLL", fine),
            ("MAE", {**fine, "nll_weight": 0.0, "mae_weight": 1.0}),
        ):
            found = _pretrained(mcfg, low)
            if found is None:
                return
            bundle, name, _ = found
            points = timed_training(low, mcfg, tkw, fine_tune_s, bundle=bundle)
            print(
                f"[pretrained] {photons:.0e} photons, {name} + {loss} fine-tuning {_final(points)}"
            )


def _tike_data() -> Any:
    """The tike file read through its profile, or None (said on the output) when absent."""
    from ptycho_engine.io import read_data

    root = Path(__file__).resolve().parents[1]
    path = root.parent / "shared/datasets/third_party/tike/ptycho_setup_converted.npz"
    if not path.is_file():
        print(f"[tike] skipped: {path} is absent")
        return None
    return read_data(path, root / "tests/io/profiles/tike.json")


def tike_scratch_section(budget_s: float) -> None:
    """The tike file from scratch (N 32, gridsize 1), ``budget_s`` seconds per network, each
    with early stopping (and the restore of the best-validation weights) on held-out pixels
    (the default), on held-out groups, and without: whether the validation loss tracks the
    image."""
    from ptycho_engine.config import ModelConfig

    data = _tike_data()
    if data is None:
        return
    legacy = ModelConfig.LEGACY_DECODER
    networks = {
        "new (defaults)": {},
        "width 2, two decoders": {"n_filters_scale": 2, **legacy},
    }
    no_stop = {"early_stopping_patience": 0, "restore_best_weights": False}
    variants = (
        ("early stopping on held-out pixels (default)", {}, {}),
        ("early stopping on held-out groups", {}, {"validation": "groups"}),
        ("no early stopping", no_stop, {}),
    )
    for name, fields in networks.items():
        mcfg = ModelConfig(N=32, gridsize=1, auto_probe_scale=True, **fields)
        for stopping, tkw, dkw in variants:
            points = timed_training(data, mcfg, tkw, budget_s, preview_every=5, data_kw=dkw)
            best = max(points, key=lambda pt: pt[2])
            print(
                f"[tike scratch] {name}, {stopping}: {_final(points)}; best preview "
                f"{best[2]:.3f}/{best[3]:.3f} at {best[0]:.0f} s"
            )
            print("[tike scratch]   " + _curve(points))


def tike_section(fine_tune_s: float) -> None:
    from ptycho_engine.config import ModelConfig

    data = _tike_data()
    if data is None:
        return
    mcfg = ModelConfig(N=32, gridsize=1, auto_probe_scale=True)
    found = _pretrained(mcfg, data)
    if found is None:
        return
    bundle, name, _ = found
    a, p = _score(bundle, data)
    print(f"[tike] {name} inference alone: amplitude {a:.3f}, phase {p:.3f}")
    points = timed_training(
        data, mcfg, {"mae_warmup_epochs": 0}, fine_tune_s, bundle=bundle, preview_every=5
    )
    print(f"[tike] {name} + fine-tuning {_final(points)}  target amplitude > 0.699")
    print("[tike]   " + _curve(points))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=240.0, help="training seconds per run")
    parser.add_argument("--few-epochs", type=int, default=150)
    parser.add_argument("--fine-tune", type=float, default=60.0, help="fine-tuning seconds")
    parser.add_argument("--sections", default="step,scratch,few,pretrained")
    parser.add_argument(
        "--throughput-batch", type=int, default=256, help="groups per inference batch"
    )
    args = parser.parse_args()
    sections = args.sections.split(",")
    if "step" in sections:
        step_section()
    if "scratch" in sections:
        scratch_section(args.budget)
    if "few" in sections:
        few_section(args.few_epochs)
    if "pretrained" in sections:
        pretrained_section(args.fine_tune)
    if "tike" in sections:
        tike_section(args.fine_tune)
    if "tike-scratch" in sections:
        tike_scratch_section(args.budget)
    if "throughput" in sections:
        throughput_section(args.throughput_batch)


if __name__ == "__main__":
    main()
