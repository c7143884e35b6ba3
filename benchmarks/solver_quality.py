"""Quality of the iterative solvers, measured: the acceptance points of the solver issue.

Prints, in one run (every reconstruction through the pipeline, as the app and the CLI run it):

1. simulated lines object, N 64, 1,000 positions, 1e6 photons: rPIE and LSQML, the amplitude
   and phase SSIM against the truth after 5, 10, 20 and 50 iterations, the first iteration
   at which both reach 0.95, and the wall time to it;
2. probe refinement from a Gaussian of the wrong width: the probe correlation with the truth
   (after removing the shift and phase-ramp ambiguities) and the object SSIM, for a Gaussian
   truth (start 1.5x wider) and for the disk truth (a Gaussian start);
3. position correction: positions perturbed by 1 px RMS (2-D), the remaining RMS error (the
   global shift removed) and the object SSIM with and without correction;
4. the tike file (2 incoherent modes, noise-free, ground truth): amplitude and phase SSIM;
5. the PETRA III near-field file: a reconstruction (its PNG written to ``docs/``) and the FRC
   resolution of two half-data reconstructions (odd and even positions) at 1/7 and half-bit,
   in pixels and nanometres;
6. the conventions: a PINN reconstruction and an rPIE reconstruction of the same file
   registered to each other (shift, and the score of the flipped image).

Run: ``.venv/bin/python benchmarks/solver_quality.py [--quick]`` (``--quick`` skips 1's
50-iteration runs and 6).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parents[1]
THIRD = ROOT.parent / "shared" / "datasets" / "third_party"
TIKE = THIRD / "tike" / "ptycho_setup_converted.npz"
TIKE_PROFILE = ROOT / "tests" / "io" / "profiles" / "tike.json"
NEAR = THIRD / "cdtools" / "PETRAIII_P25_Near_Field_Ptycho.cxi"


def solve(data: object, name: str, **solver: object) -> tuple[object, list[object]]:
    """A solver run through the pipeline; ``(result, epoch events)``."""
    from ptycho_engine.pipeline import EpochFinished, recipe, run
    from ptycho_engine.streams import drain

    events: list[object] = []

    def keep(event: object) -> None:
        if isinstance(event, EpochFinished):
            events.append(event)

    spec = recipe(None, reconstructor=name, solver=solver)
    return drain(run(spec, data), keep), events  # type: ignore[arg-type]


def scores(image: object, truth: np.ndarray) -> object:
    from ptycho_engine.metrics import compare
    from ptycho_engine.stitching import reference_region

    ref = reference_region(truth, image.origin_px, image.object.shape)  # type: ignore[attr-defined]
    return compare(image.object, ref, image.valid)  # type: ignore[attr-defined]


def part1(quick: bool) -> None:
    from ptycho_engine.simulate import simulate_dataset

    data = simulate_dataset(N=64, n_positions=1000, photons=1e6, seed=0)
    print("1. lines, N 64, 1,000 positions, 1e6 photons (the file's probe, refined)")
    marks = (5, 10, 20) if quick else (5, 10, 20, 50)
    for name in ("rpie", "lsqml"):
        result, events = solve(data, name, iterations=marks[-1], preview_every=1)
        reached = None
        line = []
        for event in events:
            snap = event.snapshot  # type: ignore[attr-defined]
            rep = event.scores  # type: ignore[attr-defined]
            if rep is None:
                continue
            ok = rep.amplitude.ssim >= 0.95 and rep.phase.ssim >= 0.95
            if ok and reached is None:
                reached = (snap.epoch, snap.elapsed_s)
            if snap.epoch in marks:
                line.append(f"{snap.epoch} it {rep.amplitude.ssim:.3f}/{rep.phase.ssim:.3f}")
        per_it = result.timings_s["iterate"] / max(result.steps, 1)  # type: ignore[attr-defined]
        first = "never" if reached is None else f"iteration {reached[0]} ({reached[1]:.1f} s)"
        print(f"   {name}: {'; '.join(line)}; both >= 0.95 at {first}; {per_it * 1e3:.0f} ms/it")


def _gaussian(n: int, sigma: float) -> np.ndarray:
    y, x = np.mgrid[0:n, 0:n] - n // 2
    return np.exp(-(x * x + y * y) / (2 * sigma * sigma)).astype(np.complex64)


def part2() -> None:
    from ptycho_engine.metrics import probe_correlation
    from ptycho_engine.pipeline import recipe, run
    from ptycho_engine.simulate import simulate_dataset
    from ptycho_engine.streams import drain

    print("2. probe refinement from a Gaussian of the wrong width (N 64, 500 positions, 1e6)")
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "ptycho-probe-start"
    tmp.mkdir(parents=True, exist_ok=True)
    for truth_kind, start in (("gaussian", _gaussian(64, 6.4 * 1.5)), ("disk", _gaussian(64, 8))):
        data = simulate_dataset(N=64, n_positions=500, photons=1e6, seed=2, probe_kind=truth_kind)
        truth = data.probe
        path = tmp / f"start-{truth_kind}.npy"
        np.save(path, start)
        for name in ("rpie", "lsqml"):
            spec = recipe(None, reconstructor=name, probe_path=str(path), solver={"iterations": 60})
            result = drain(run(spec, data))
            before = probe_correlation(start, truth)
            after = probe_correlation(result.probe_modes[0], truth)
            rep = result.scores.report
            print(
                f"   truth {truth_kind}, {name}: probe correlation {before:.3f} -> {after:.3f}; "
                f"object SSIM {rep.amplitude.ssim:.3f}/{rep.phase.ssim:.3f}"
            )


def part3() -> None:
    from ptycho_engine.simulate import simulate_dataset

    print("3. position correction: 1 px RMS random error (N 64, 500 positions, 1e6)")
    data = simulate_dataset(N=64, n_positions=500, photons=1e6, seed=3)
    rng = np.random.default_rng(11)
    noise = rng.standard_normal(data.positions_px.shape) / math.sqrt(2.0)  # 1 px RMS in 2-D
    noise -= noise.mean(axis=0)
    noise *= 1.0 / math.sqrt(np.mean(np.sum(noise**2, axis=1)))
    wrong = data.replace(positions_px=data.positions_px + noise)
    truth = data.positions_px
    for name in ("rpie", "lsqml"):
        for refine in (False, True):
            result, _ = solve(wrong, name, iterations=60, refine_positions=refine, preview_every=0)
            err = result.positions_px - truth  # type: ignore[attr-defined]
            err -= err.mean(axis=0)
            rms = float(np.sqrt(np.mean(np.sum(err**2, axis=1))))
            rep = result.scores.report  # type: ignore[attr-defined]
            print(
                f"   {name}, correction {'on ' if refine else 'off'}: position RMS error "
                f"{rms:.3f} px; object SSIM {rep.amplitude.ssim:.3f}/{rep.phase.ssim:.3f}"
            )


def part4() -> None:
    from ptycho_engine.io import read_data

    if not TIKE.is_file():
        print(f"4. skipped: {TIKE} is absent")
        return
    data = read_data(TIKE, TIKE_PROFILE)
    print("4. tike (169 x 32^2, 2 probe modes, noise-free), 100 iterations")
    for name, extra in (
        ("rpie", {}),
        ("lsqml", {}),
        ("rpie", {"probe_modes": 1}),
    ):
        result, _ = solve(data, name, iterations=100, preview_every=0, **extra)
        rep = result.scores.report  # type: ignore[attr-defined]
        modes = result.probe_modes.shape[0]  # type: ignore[attr-defined]
        print(f"   {name}, {modes} mode(s): SSIM {rep.amplitude.ssim:.3f}/{rep.phase.ssim:.3f}")


def part5() -> None:
    from ptycho_engine.io import read_data
    from ptycho_engine.metrics import align_to_reference, frc_resolution
    from ptycho_engine.runs import write_run_folder

    if not NEAR.is_file():
        print(f"5. skipped: {NEAR} is absent")
        return
    data = read_data(NEAR, propagation="near-field", focus_distance_m=3.65e-3)
    print(
        f"5. PETRA III near field: {data.n_patterns} holograms of {data.N}^2, object pixel "
        f"{data.pixel_size_m * 1e9:.2f} nm"
    )
    t0 = time.perf_counter()
    result, _ = solve(data, "rpie", iterations=100, preview_every=0)
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / "ptycho-near-field"
    write_run_folder(folder, result, {"command": "benchmarks/solver_quality.py"})
    docs = ROOT / "docs"
    for part in ("amplitude", "phase"):
        shutil.copyfile(folder / f"{part}.png", docs / f"near_field_{part}.png")
    print(
        f"   rPIE, 100 iterations in {time.perf_counter() - t0:.1f} s, final error "
        f"{result.history[-1]['loss']:.4f}; images: docs/near_field_amplitude.png, "  # type: ignore[attr-defined]
        "docs/near_field_phase.png"
    )
    halves = []
    for parity in (0, 1):
        rows = np.arange(data.n_patterns) % 2 == parity
        half = data.replace(amplitudes=data.amplitudes[rows], positions_px=data.positions_px[rows])
        res, _ = solve(half, "rpie", iterations=100, preview_every=0)
        halves.append(res.reconstruction)  # type: ignore[attr-defined]
    a, b = halves
    # the two halves share the canvas frame only where their origins agree: cut both to the
    # common region of the scan positions
    oy = round(max(a.origin_px[0], b.origin_px[0]))
    ox = round(max(a.origin_px[1], b.origin_px[1]))
    h = min(a.object.shape[0] + int(a.origin_px[0]), b.object.shape[0] + int(b.origin_px[0])) - oy
    w = min(a.object.shape[1] + int(a.origin_px[1]), b.object.shape[1] + int(b.origin_px[1])) - ox

    def cut(img: object) -> tuple[np.ndarray, np.ndarray]:
        y0 = oy - round(img.origin_px[0])  # type: ignore[attr-defined]
        x0 = ox - round(img.origin_px[1])  # type: ignore[attr-defined]
        sl = (slice(y0, y0 + h), slice(x0, x0 + w))
        return img.object[sl], img.valid[sl]  # type: ignore[attr-defined]

    (oa, va), (ob, vb) = cut(a), cut(b)
    both = va & vb
    # two independent reconstructions differ by a global phase, a phase ramp, a sub-pixel
    # shift and a scale: align the second to the first as the metrics align an estimate
    ob = align_to_reference(ob, oa, both)
    pixel_nm = data.pixel_size_m * 1e9
    for threshold in ("1/7", "half-bit"):
        for channel, fa, fb in (
            (
                "phase",
                np.angle(oa * np.conj(oa[both].mean())),
                np.angle(ob * np.conj(ob[both].mean())),
            ),
            ("complex", oa, ob),
        ):
            res_px = frc_resolution(fa, fb, both, threshold)  # type: ignore[arg-type]
            print(
                f"   half-data FRC ({channel}, {threshold}): {res_px:.2f} px = "
                f"{res_px * pixel_nm:.0f} nm"
            )


def part6() -> None:
    from ptycho_engine.cli import main as engine_main
    from ptycho_engine.io import write_pinn_npz
    from ptycho_engine.metrics import register_shift, ssim
    from ptycho_engine.runs import read_reconstruction
    from ptycho_engine.simulate import simulate_dataset

    print("6. conventions: the PINN and rPIE on the same file (N 64, 500 positions, 1e6)")
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "ptycho-conventions"
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "data.npz"
    write_pinn_npz(path, simulate_dataset(N=64, n_positions=500, photons=1e6, seed=4))
    base = ["--N", "64", "--out"]
    engine_main(["train", str(path), "--gridsize", "2", "--epochs", "20", *base, str(tmp / "pinn")])
    engine_main(
        [
            "reconstruct",
            str(path),
            "--algorithm",
            "rpie",
            "--iterations",
            "30",
            *base[2:],
            str(tmp / "rpie"),
        ]
    )
    pinn = read_reconstruction(tmp / "pinn" / "reconstruction.npz")
    rpie = read_reconstruction(tmp / "rpie" / "reconstruction.npz")
    # both on the frame of the scan positions: cut to the common region
    oy = round(max(pinn.origin_px[0], rpie.origin_px[0]))
    ox = round(max(pinn.origin_px[1], rpie.origin_px[1]))
    ends = [
        (im.origin_px[0] + im.object.shape[0], im.origin_px[1] + im.object.shape[1])
        for im in (pinn, rpie)
    ]
    h = int(min(e[0] for e in ends)) - oy
    w = int(min(e[1] for e in ends)) - ox
    cuts = []
    for im in (pinn, rpie):
        y0, x0 = oy - round(im.origin_px[0]), ox - round(im.origin_px[1])
        cuts.append((im.object[y0 : y0 + h, x0 : x0 + w], im.valid[y0 : y0 + h, x0 : x0 + w]))
    (a, va), (b, vb) = cuts
    both = va & vb
    shift = register_shift(np.abs(b), np.abs(a), both)
    straight = ssim(np.abs(a), np.abs(b), both)
    flipped = ssim(np.abs(a)[::-1, ::-1], np.abs(b), both & both[::-1, ::-1])
    print(
        f"   PINN registered to rPIE: shift ({shift[0]:+.2f}, {shift[1]:+.2f}) px; amplitude "
        f"SSIM between them {straight:.3f}, with the PINN image flipped {flipped:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    part1(args.quick)
    part2()
    part3()
    part4()
    part5()
    if not args.quick:
        part6()


if __name__ == "__main__":
    main()
