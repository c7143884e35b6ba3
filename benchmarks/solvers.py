"""Iterative solvers against pty-chi and PtyLab: speed and quality, side by side in one run.

On one simulated data set (``simulate_dataset(N=64, n_positions=256, photons=1e6, seed=0)``:
lines object, Fermat spiral, disk probe, Poisson noise) and this CPU, every solver starts from
the TRUE probe and a flat object (1 everywhere) and runs the same number of iterations
(``--iterations``, default 50), refining the probe as each tool does by default (``--fixed-probe``
keeps it fixed in all of them instead):

- ours, rPIE (``reconstructor="rpie"``) and the batched LSQML-style solver (``"lsqml"``),
  through the pipeline as the app runs them (``recipe``/``run``, defaults, ``preview_every=0`` so
  that no intermediate image is stitched or scored): rPIE batches of ``min(32, M // 8)`` = 32,
  object alpha 0.25; LSQML batches of ``max(16, M // 10)`` = 25 for 10 iterations, then
  ``M // 4`` = 64, Gaussian noise; probe refined from iteration 5;
- PtyLab's ePIE (``PtyLab.Engines.ePIE``, defaults: sequential over randomly ordered positions,
  betaObject = betaProbe = 0.25, Fraunhofer propagator, ``fftshiftSwitch`` False, probe refined
  from the first position), and once more with ``params.fftshiftSwitch = True``, PtyLab's own
  switch for a faster far-field update (the data are shifted once instead of every FFT);
- pty-chi's LSQML (``ptychi.api.LSQMLOptions``, defaults: batches of 100 in random order,
  Gaussian noise model, probe refined from epoch 0, probe intensity rescaled in the first epoch,
  object-probe ambiguity removal every 10 epochs, Fourier-shift patch interpolation), on the CPU
  with ``torch.set_num_threads(--threads)`` (2; ``--threads 1,2`` runs it once per count: on a
  shared machine two OpenMP threads wait for each other whenever another process holds a core).

Timing. The solvers run in the same process, interleaved iteration by iteration (round
robin: one iteration of each, then the next), so that load drift on the shared machine hits all
alike. The time per iteration is one pass over all 256 patterns, as wall time around that pass:
the table shows the MEDIAN over iterations 2..n (the first one, with one-off work such as
pty-chi's probe rescaling or PtyLab's preparation, is shown apart), and setup (building the
solver's state from the data) is excluded. Our solvers' last iteration also stitches and scores
the final image in the pipeline, and PtyLab's end-of-iteration work (its error metric and
constraints) is timed with its next iteration: the median leaves both effects out. Compare the
ratios of one run, not numbers across runs.

Quality. Each final object is put into the truth's pixel frame (see the conversions) and scored
with the project's metrics (:func:`ptycho_engine.metrics.compare`: sub-pixel registration, phase
offset and ramp removed, amplitude scaled) against ``object_gt``, all on ONE valid region: the
pixels our solvers count as well illuminated (summed true-probe intensity over the scan at least
a quarter of its 95th percentile, ``SolverState.image().valid``). The registration shift must
be a fraction of a pixel: a large one (or a refused registration) means a convention is wrong.
The chance level (a constant object) is printed beside the scores.

Conversions (the engine: ``positions_px`` (y, x) patch centres in object pixels, a patch centred
at integer (y, x) covers ``obj[y - N//2 : y + N//2, x - N//2 : x + N//2]``; amplitudes
``sqrt(counts)``, centred, zero frequency at (N//2, N//2); orthonormal FFT; the probe at
physical scale, ``sum |P|**2`` = mean counts per pattern (``solvers.state.physical_probe``)):

- ours: none (the pipeline takes the simulation as it is). The object canvas's
  ``origin_px`` is the truth pixel of canvas pixel (0, 0) (an integer).
- PtyLab (``ExperimentalData`` filled in memory, CPM, no file):
  ``ptychogram = amplitudes**2`` (intensities), centred as they are (with ``fftshiftSwitch``
  False PtyLab's ``fft2c`` is the centred orthonormal FFT; with True PtyLab itself ifftshifts the
  data once); probe at physical scale (orthonormal FFT), shape ``(1, 1, 1, 1, N, N)``; object
  ones, ``(1, 1, 1, 1, No, No)`` (PtyLab's default "ones" adds 0.1 % noise: replaced by exact
  ones as in the other solvers). Positions: PtyLab takes ``encoder`` in metres, columns (row,
  col) = (y, x), and uses ``round(encoder / dxo) + No//2 - Np//2`` as each patch's integer
  top-left corner, with ``dxo = wavelength * zo / (Nd * dxd)``. With wavelength 1 nm, zo 1 m and
  ``dxd`` chosen so that ``dxo`` = 10 nm, ``encoder = (positions_px - c) * dxo`` where ``c`` is
  the scan's mean position rounded to integers; PtyLab's object pixel (0, 0) is then truth pixel
  ``c - No//2``. PtyLab rounds every position to whole pixels (ePIE has no sub-pixel shifts):
  up to half a pixel of position error on this scan, which costs it some quality.
- pty-chi (``PtychographyTask`` with the arrays passed in): ``diffraction_data =
  amplitudes**2`` (intensities), centred as they are with ``fft_shift`` True (its default: pty-chi
  moves the zero frequency to the corner once); its far-field FFT is unnormalised
  (``torch.fft.fft2``, norm "backward"), so the probe is the physical probe divided by N, shape
  ``(1, 1, N, N)`` (one OPR mode, one incoherent mode); object ones ``(1, H, W)``, the truth's
  shape. Positions: pty-chi takes patch centres (``probe_position_y_px``, ``_x_px``) to which it
  adds ``position_origin_coords`` and reads the patch from top-left ``p - (N - 1)/2``; with our
  positions as they are and origin coordinates (-0.5, -0.5) (``SPECIFIED``), the top-left is
  ``y - 0.5 - 31.5 = y - N//2`` as ours, and its object pixel (0, 0) is truth pixel (0, 0).

Run: ``make bench-solvers`` (builds ``.venv-bench`` from ``requirements/bench.txt``, then runs
``.venv-bench/bin/python benchmarks/solvers.py [--iterations 50] [--threads 2[,1]]
[--fixed-probe] [--tools rpie,lsqml,ptylab,ptylab-fftshift,ptychi]``; extra arguments through
``make bench-solvers ARGS="..."``). A tool that is not installed is skipped, with the reason
printed; in the project's own ``.venv`` only our two solvers run.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import math
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

N, M, PHOTONS, SEED = 64, 256, 1e6, 0
#: PtyLab geometry: any values giving this object pixel (its positions are in metres).
PTYLAB_WAVELENGTH_M, PTYLAB_DISTANCE_M, PTYLAB_PIXEL_M = 1e-9, 1.0, 1e-8
#: The solvers, in the order they run (``--tools``).
TOOLS = ("rpie", "lsqml", "ptylab", "ptylab-fftshift", "ptychi")


@dataclass
class Result:
    """One solver's run: times per iteration and its final object in the truth frame."""

    name: str
    detail: str
    setup_s: float = math.nan
    times_s: list[float] = field(default_factory=list)
    obj: np.ndarray | None = None
    error: str = ""


@dataclass
class Solver:
    """A solver being stepped: ``step()`` runs one iteration, ``finish()`` returns the object
    in the truth's pixel frame."""

    result: Result
    step: Callable[[], None]
    finish: Callable[[], np.ndarray]


def _in_truth_frame(obj: np.ndarray, origin_px: tuple[float, float], shape: tuple[int, int]):
    """``obj`` whose pixel (0, 0) is truth pixel ``origin_px`` (integers), cut to the truth's
    frame ``shape`` (zero where it has no pixel)."""
    from ptycho_engine.stitching import reference_region

    oy, ox = origin_px
    if oy != math.floor(oy) or ox != math.floor(ox):
        raise ValueError(f"origin {origin_px} is not on the truth's pixel grid")
    return reference_region(np.asarray(obj), (-oy, -ox), shape)


# --------------------------------------------------------------------------------------------
# The solvers
# --------------------------------------------------------------------------------------------


def ours(name: str, data: Any, iterations: int, fixed_probe: bool) -> Solver:
    """Our solver through the pipeline, stepped one ``EpochFinished`` at a time."""
    from ptycho_engine.pipeline import EpochFinished, StageChanged, recipe, run

    solver: dict[str, Any] = {"iterations": iterations, "preview_every": 0, "seed": SEED}
    if fixed_probe:
        solver["refine_probe"] = False
    spec = recipe(None, reconstructor=name, solver=solver)
    batch = {"rpie": "batch 32, alpha 0.25", "lsqml": "batch 25 then 64, Gaussian"}[name]
    result = Result(f"ours {name}", f"{batch}; pipeline")
    t0 = time.perf_counter()
    events = run(spec, data)
    # setup: up to the start of the iterations (data prepared, state built)
    for event in events:
        if isinstance(event, StageChanged) and event.stage.endswith("iterations"):
            break
    result.setup_s = time.perf_counter() - t0
    final: list[Any] = []

    def step() -> None:
        while True:
            try:
                event = next(events)
            except StopIteration as stop:
                final.append(stop.value)
                return
            if isinstance(event, EpochFinished):
                return

    def finish() -> np.ndarray:
        if not final:
            step()  # the generator's end: the final image (and its scores)
        image = final[0].reconstruction
        return _in_truth_frame(image.object, image.origin_px, data.object_gt.shape)

    return Solver(result, step, finish)


def ptylab(data: Any, iterations: int, fixed_probe: bool, fftshift: bool) -> Solver:
    """PtyLab's ePIE on the same data (conversions: module docstring)."""
    from PtyLab import Engines, ExperimentalData, Params, Reconstruction
    from PtyLab.Monitor.Monitor import DummyMonitor

    from ptycho_engine.solvers.state import physical_probe

    label = "ePIE, fftshiftSwitch" if fftshift else "ePIE"
    result = Result(f"PtyLab {label}", "sequential, beta 0.25")
    t0 = time.perf_counter()
    centre = np.round(data.positions_px.mean(axis=0))
    exp = ExperimentalData(operationMode="CPM")
    exp.ptychogram = np.square(data.amplitudes.astype(np.float32))
    exp.wavelength = PTYLAB_WAVELENGTH_M
    exp.zo = PTYLAB_DISTANCE_M
    exp.dxd = PTYLAB_WAVELENGTH_M * PTYLAB_DISTANCE_M / (N * PTYLAB_PIXEL_M)
    exp.encoder = (data.positions_px - centre) * PTYLAB_PIXEL_M
    exp.entrancePupilDiameter = None
    exp.spectralDensity = None
    exp.theta = None
    exp.emptyBeam = None
    exp._setData()
    params = Params()
    params.fftshiftSwitch = fftshift
    rec = Reconstruction(exp, params)
    rec.initializeObjectProbe()
    rec.object = np.ones(rec.object.shape, np.complex64)
    rec.probe = physical_probe(data.probe, data)[0].reshape(rec.probe.shape)
    engine = Engines.ePIE(rec, exp, params, DummyMonitor())
    engine.numIterations = iterations
    if fixed_probe:
        engine.betaProbe = 0.0
    expected = np.round(data.positions_px) - centre + rec.No // 2 - N // 2
    if not np.array_equal(np.asarray(rec.positions), expected):
        raise RuntimeError("PtyLab's pixel positions differ from the conversion's")
    np.random.seed(SEED)  # PtyLab shuffles the positions with numpy's global generator
    steps: Iterator[tuple[int, int]] = engine.reconstruct_stepwise()
    result.setup_s = time.perf_counter() - t0
    quiet = io.StringIO()  # its progress bar

    def step() -> None:
        # one iteration: up to its last position (its error metrics and constraints run at the
        # start of the next step, or in finish() for the last one, which is then timed with it)
        with contextlib.redirect_stdout(quiet):
            for _, position in steps:
                if position == M - 1:
                    break
            if len(result.times_s) == iterations - 1:
                for _ in steps:
                    pass

    def finish() -> np.ndarray:
        obj = np.asarray(rec.object).reshape(rec.No, rec.No)
        origin = (float(centre[0] - rec.No // 2), float(centre[1] - rec.No // 2))
        return _in_truth_frame(obj, origin, data.object_gt.shape)

    return Solver(result, step, finish)


def _threads(count: int) -> str:
    return f"{count} thread" if count == 1 else f"{count} threads"


def _ptychi_name(threads: int) -> str:
    """pty-chi's row: the issue's setting (2 threads) plain, other counts named."""
    return "pty-chi LSQML" if threads == 2 else f"pty-chi LSQML, {_threads(threads)}"


def ptychi(data: Any, iterations: int, fixed_probe: bool, threads: int) -> Solver:
    """pty-chi's LSQML on the same data (conversions: module docstring)."""
    import torch
    from ptychi import api
    from ptychi.api.task import PtychographyTask

    from ptycho_engine.solvers.state import physical_probe

    torch.set_num_threads(threads)
    result = Result(_ptychi_name(threads), f"batch 100, Gaussian; {_threads(threads)}")
    t0 = time.perf_counter()
    options = api.LSQMLOptions()
    options.data_options.fft_shift = True
    options.object_options.pixel_size_m = 1.0
    options.object_options.determine_position_origin_coords_by = (
        api.ObjectPosOriginCoordsMethods.SPECIFIED
    )
    options.object_options.position_origin_coords = (-0.5, -0.5)
    options.probe_options.optimizable = not fixed_probe
    options.reconstructor_options.default_device = api.Devices.CPU
    options.reconstructor_options.num_epochs = iterations
    options.reconstructor_options.random_seed = SEED
    probe = physical_probe(data.probe, data)[0] / np.float32(N)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = PtychographyTask(
            options,
            diffraction_data=np.square(data.amplitudes.astype(np.float32)),
            object_data=np.ones((1, *data.object_gt.shape), np.complex64),
            probe_data=probe.reshape(1, 1, N, N).astype(np.complex64),
            probe_position_y_px=data.positions_px[:, 0].astype(np.float32),
            probe_position_x_px=data.positions_px[:, 1].astype(np.float32),
        )
    result.setup_s = time.perf_counter() - t0
    batch = options.reconstructor_options.batch_size
    result.detail = f"batch {batch}, Gaussian; {_threads(threads)}"

    def step() -> None:
        torch.set_num_threads(threads)  # (global: another pty-chi run may use another count)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            task.run(1)

    def finish() -> np.ndarray:
        obj = task.get_data_to_cpu("object", as_numpy=True)[0]
        return _in_truth_frame(obj, (0.0, 0.0), data.object_gt.shape)

    return Solver(result, step, finish)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def build(args: argparse.Namespace, data: Any) -> tuple[list[Solver], list[Result]]:
    """The solvers that can run here, and a result holding the reason for each that cannot."""
    n, fixed = args.iterations, args.fixed_probe
    makers: dict[str, tuple[str, Callable[[], Solver]]] = {
        "rpie": ("ours rpie", lambda: ours("rpie", data, n, fixed)),
        "lsqml": ("ours lsqml", lambda: ours("lsqml", data, n, fixed)),
        "ptylab": ("PtyLab ePIE", lambda: ptylab(data, n, fixed, False)),
        "ptylab-fftshift": ("PtyLab ePIE, fftshiftSwitch", lambda: ptylab(data, n, fixed, True)),
    }
    entries = []
    for key in args.tools.split(","):
        if key == "ptychi":  # one run per thread count
            for threads in args.threads:
                entries.append((_ptychi_name(threads), partial(ptychi, data, n, fixed, threads)))
        else:
            entries.append(makers[key])
    solvers, skipped = [], []
    for name, make in entries:
        try:
            solvers.append(make())
        except ImportError as error:
            skipped.append(Result(name, "", error=f"not installed ({error})"))
            print(f"skipped {name}: {error}", flush=True)
        except Exception as error:  # a tool that fails here is reported, the rest still run
            skipped.append(Result(name, "", error=f"{type(error).__name__}: {error}"))
            print(f"skipped {name}: {type(error).__name__}: {error}", flush=True)
    return solvers, skipped


def interleaved(solvers: list[Solver], iterations: int) -> None:
    """Every solver one iteration in turn, ``iterations`` rounds; a solver that fails stops."""
    live = list(solvers)
    for k in range(iterations):
        for solver in list(live):
            t = time.perf_counter()
            try:
                solver.step()
            except Exception as error:
                solver.result.error = f"iteration {k + 1}: {type(error).__name__}: {error}"
                live.remove(solver)
                continue
            solver.result.times_s.append(time.perf_counter() - t)
        if k == 0 or (k + 1) % 10 == 0:
            print(f"  iteration {k + 1}/{iterations} done", flush=True)
    for solver in live:
        solver.result.obj = solver.finish()


def _fmt(value: float, spec: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)


def report(results: list[Result], data: Any, valid: np.ndarray, iterations: int) -> dict[str, Any]:
    """Print the table; return ``{name: (median s, amplitude SSIM, phase SSIM)}``."""
    from ptycho_engine.metrics import chance_level, compare

    truth = data.object_gt
    chance = chance_level(truth, valid)
    rows: dict[str, Any] = {}
    print()
    print(
        f"{M} patterns of {N}x{N}, {PHOTONS:.0e} photons, {iterations} iterations, true probe "
        f"start; scored on {int(valid.sum())} valid pixels of the truth frame"
    )
    header = (
        f"{'solver':<28} {'settings':<34} {'setup s':>7} {'1st ms':>7} {'ms/it':>7} "
        f"{'amp SSIM':>8} {'ph SSIM':>8} {'shift px':>13}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        if r.error and r.obj is None:
            print(f"{r.name:<28} {r.error}")
            continue
        later = r.times_s[1:] or r.times_s
        median = statistics.median(later)
        first = r.times_s[0] if r.times_s else math.nan
        assert r.obj is not None
        q = compare(r.obj, truth, valid)
        shift = f"{q.shift_px[0]:+.2f},{q.shift_px[1]:+.2f}"
        note = f"  [{'; '.join(q.flags)}]" if q.flags else ""
        print(
            f"{r.name:<28} {r.detail:<34} {_fmt(r.setup_s, '7.2f')} {_fmt(first * 1e3, '7.1f')} "
            f"{_fmt(median * 1e3, '7.1f')} {_fmt(q.amplitude.ssim, '8.3f')} "
            f"{_fmt(q.phase.ssim, '8.3f')} {shift:>13}{note}"
        )
        rows[r.name] = (median, q.amplitude.ssim, q.phase.ssim)
    print(
        f"{'(chance: constant object)':<28} {'':<34} {'':>7} {'':>7} {'':>7} "
        f"{_fmt(chance.amplitude.ssim, '8.3f')} {_fmt(chance.phase.ssim, '8.3f')}"
    )
    print("ms/it: median over iterations 2..n of one pass over all patterns (setup excluded)")
    return rows


def ratios(rows: dict[str, Any]) -> None:
    print()
    print("ours / theirs, time per iteration (target <= 1.0) and SSIM difference (target >= 0):")
    pairs = [("ours rpie", name) for name in rows if name.startswith("PtyLab")]
    pairs += [("ours lsqml", name) for name in rows if name.startswith("pty-chi")]
    if not pairs:
        print("  n/a: neither PtyLab nor pty-chi ran")
    for mine, theirs in pairs:
        if mine not in rows or theirs not in rows:
            print(f"  {mine} / {theirs}: n/a (one of them did not run)")
            continue
        (t_a, amp_a, ph_a), (t_b, amp_b, ph_b) = rows[mine], rows[theirs]
        verdict = "met" if t_a <= t_b and amp_a >= amp_b and ph_a >= ph_b else "NOT met"
        print(
            f"  {mine} / {theirs}: time {t_a / t_b:.2f}x  amplitude SSIM {amp_a - amp_b:+.3f}  "
            f"phase SSIM {ph_a - ph_b:+.3f}  -> {verdict}"
        )


def versions() -> str:
    from importlib import metadata

    names = ("numpy", "scipy", "ptychi", "ptylab", "torch")
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} -")
    return ", ".join(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument(
        "--threads",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[2],
        help="pty-chi's torch threads; a comma-separated list runs pty-chi once per count",
    )
    parser.add_argument(
        "--fixed-probe", action="store_true", help="keep the probe fixed in every solver"
    )
    parser.add_argument(
        "--tools",
        default=",".join(TOOLS),
        help=f"comma-separated subset of {','.join(TOOLS)}",
    )
    args = parser.parse_args(argv)
    unknown = set(args.tools.split(",")) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools {sorted(unknown)}: choose from {','.join(TOOLS)}")
    if args.iterations < 2:
        parser.error("--iterations must be at least 2 (the first one is reported apart)")
    logging.getLogger().setLevel(logging.WARNING)

    from ptycho_engine.simulate import simulate_dataset
    from ptycho_engine.solvers.config import SolverConfig
    from ptycho_engine.solvers.state import SolverState

    print(f"python {sys.version.split()[0]}; {versions()}; {os.cpu_count()} cores")
    print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    data = simulate_dataset(N=N, n_positions=M, photons=PHOTONS, seed=SEED)
    image = SolverState.start(data, data.probe, SolverConfig()).image()
    cover = _in_truth_frame(image.valid.astype(np.complex64), image.origin_px, data.object_gt.shape)
    valid = np.abs(cover) > 0.5
    solvers, skipped = build(args, data)
    probe = "fixed" if args.fixed_probe else "refined (each tool's default)"
    print(
        f"running {len(solvers)} solvers interleaved, {args.iterations} iterations, probe {probe}"
    )
    interleaved(solvers, args.iterations)
    rows = report([s.result for s in solvers] + skipped, data, valid, args.iterations)
    ratios(rows)
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if "tensorflow" in sys.modules:
        print("note: TensorFlow was imported during this run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
