"""``ptycho-engine``: simulate, train and reconstruct from the command line.

Errors in user input print one line naming the problem and exit with status 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ptycho_engine import pretrain as pretraining
from ptycho_engine import study_cli
from ptycho_engine.config import (
    EARLY_STOP_MIN_STEPS,
    PLATEAU_MIN_STEPS,
    VALIDATIONS,
    XLA_CHOICES,
    XLA_CHOICES_INVERSE,
    XLA_MIN_STEPS,
    ModelConfig,
    TrainingConfig,
)
from ptycho_engine.errors import ConfigError, DataError, PtychoError
from ptycho_engine.stitching import DEFAULT_WINDOW, WINDOWS

EXIT_USAGE = 2


def xla_option(parser: argparse.ArgumentParser) -> None:
    """``--xla`` of ``train`` and ``pretrain``: its default is ``TrainingConfig``'s."""
    default = XLA_CHOICES_INVERSE[TrainingConfig.jit_compile]
    parser.add_argument(
        "--xla",
        choices=tuple(XLA_CHOICES),
        default=default,
        help=f"compile the training step with XLA: on, off or auto (for runs of "
        f"{XLA_MIN_STEPS} steps or more); default {default} (TrainingConfig.jit_compile)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ptycho-engine",
        description="Physics-informed neural-network ptychography, headless.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write a simulated PINN-style NPZ with ground truth")
    sim.add_argument("--out", required=True, type=Path, help="output .npz file")
    sim.add_argument("--N", type=int, default=64, help="pattern size (default 64)")
    sim.add_argument("--positions", type=int, default=1000, help="scan positions (default 1000)")
    sim.add_argument(
        "--photons", type=study_cli.positive_float, default=1e6, help="counts per pattern"
    )
    sim.add_argument("--object", default="lines", help="lines, siemens or file:PATH")
    sim.add_argument("--scan", default="spiral", choices=["spiral", "raster", "random"])
    sim.add_argument("--probe", default="disk", choices=["disk", "gaussian"])
    sim.add_argument(
        "--step", type=study_cli.positive_float, default=None, help="scan step in px (N/8)"
    )
    sim.add_argument("--seed", type=int, default=0)

    def data_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("data", type=Path, help="diffraction data file (any readable format)")
        p.add_argument("--profile", type=Path, default=None, help="JSON mapping profile")
        p.add_argument("--energy-ev", type=study_cli.positive_float, default=None, help="override")
        p.add_argument("--distance-m", type=study_cli.positive_float, default=None, help="override")
        p.add_argument(
            "--detector-pixel-m", type=study_cli.positive_float, default=None, help="override"
        )
        p.add_argument(
            "--propagation",
            choices=["far-field", "near-field"],
            default=None,
            help="far-field patterns or near-field holograms (default: what the file says, "
            "else detected from the scan)",
        )
        p.add_argument(
            "--focus-distance-m",
            type=study_cli.positive_float,
            default=None,
            help="focus-to-sample distance of a near-field cone beam (Fresnel magnification)",
        )

    def model_options(p: argparse.ArgumentParser) -> None:
        data_options(p)
        p.add_argument("--out", required=True, type=Path, help="run folder to write")
        p.add_argument(
            "--probe", type=Path, default=None, help="probe file (.npy, .npz, product, CXI)"
        )
        p.add_argument("--batch-size", type=int, default=None)
        p.add_argument(
            "--stitch-window",
            choices=list(WINDOWS),
            default=DEFAULT_WINDOW,
            help=(
                "stitching weight: the probe amplitude on the object support, or the flat "
                f"support (default {DEFAULT_WINDOW})"
            ),
        )
        p.add_argument(
            "--keep-grid-pattern",
            action="store_true",
            help=(
                "leave the scan grid's pattern (the seams of a raster scan) in the network's "
                "images instead of dividing it out"
            ),
        )
        size = p.add_mutually_exclusive_group()
        size.add_argument(
            "--crop",
            type=int,
            default=None,
            metavar="N",
            help="crop the patterns to N (object pixel grows by N0/N; the default when the "
            "patterns are larger than the model's N)",
        )
        size.add_argument(
            "--bin",
            type=int,
            default=None,
            metavar="B",
            help="bin the patterns by B (object pixel unchanged, field of view / B)",
        )

    ins = sub.add_parser("inspect", help="summarise a data file")
    data_options(ins)

    pre = sub.add_parser(
        "pretrain",
        help="pretrain a network on simulated scans of the family (ptycho_engine.family)",
    )
    pre.add_argument("--N", type=int, default=ModelConfig.N)
    pre.add_argument("--gridsize", type=int, default=ModelConfig.gridsize)
    pre.add_argument(
        "--steps", type=int, default=pretraining.STEPS, help="optimiser steps (default %(default)s)"
    )
    pre.add_argument(
        "--pool",
        type=int,
        default=pretraining.POOL_SIZE,
        help="simulated scans held at once; each step takes its batch from one of them "
        "(default %(default)s)",
    )
    pre.add_argument(
        "--refresh-steps",
        type=int,
        default=pretraining.REFRESH_STEPS,
        help="steps between fresh draws, each replacing the oldest scan (default %(default)s)",
    )
    pre.add_argument("--positions", type=int, default=500, help="positions per scan")
    pre.add_argument("--seed", type=int, default=0)
    pre.add_argument("--n-filters-scale", type=int, default=ModelConfig.n_filters_scale)
    pre.add_argument("--batch-size", type=int, default=TrainingConfig.batch_size)
    pre.add_argument("--learning-rate", type=float, default=TrainingConfig.learning_rate)
    pre.add_argument("--out", required=True, type=Path, help="folder of the weights and recipe")
    xla_option(pre)
    pre.add_argument(
        "--mae-steps",
        type=int,
        default=pretraining.MAE_STEPS,
        help="first steps trained on the amplitude MAE alone (default %(default)s)",
    )
    pre.add_argument(
        "--reference-members",
        type=int,
        default=pretraining.REFERENCE_MEMBERS,
        help="fresh scans the far-field residual reference is measured on (default %(default)s)",
    )
    pre.add_argument(
        "--supervised-weight",
        type=float,
        default=pretraining.SUPERVISED_WEIGHT,
        help="weight of the supervised term added to the physics loss: the relative error of "
        "the object patches against the simulated truth (0: physics alone; default "
        "%(default)s)",
    )
    pre.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="end after the step that passes this wall time (what was trained is written, "
        "and the recipe's command names the steps done); SIGTERM or Ctrl-C does the same",
    )
    pre.add_argument(
        "--resume",
        action="store_true",
        help="go on from the run in --out (its checkpoint: weights, optimiser state, pool and "
        "random streams) up to --steps in all, with the run's settings",
    )

    train = sub.add_parser("train", help="train on a data file, stitch and write a run folder")
    model_options(train)
    train.add_argument("--N", type=int, default=ModelConfig.N)
    train.add_argument("--gridsize", type=int, default=ModelConfig.gridsize)
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--n-groups", type=int, default=None, help="groups per epoch (all)")
    train.add_argument("--learning-rate", type=float, default=None)
    train.add_argument("--nll-weight", type=float, default=None)
    train.add_argument("--mae-weight", type=float, default=None)
    train.add_argument("--mae-warmup-epochs", type=int, default=None)
    train.add_argument("--n-filters-scale", type=int, default=None)
    train.add_argument(
        "--two-decoders",
        action="store_true",
        help="one full-width decoder per head (the network before 2026-12-04) instead of one "
        "shared half-width decoder",
    )
    train.add_argument(
        "--preview-every",
        type=int,
        default=None,
        help=f"epochs between stitched previews (and the last epoch's; default "
        f"{TrainingConfig.preview_every}; 0: none)",
    )
    train.add_argument(
        "--reduce-lr-patience",
        type=int,
        default=None,
        help="epochs without improvement before the learning rate is multiplied by "
        f"{TrainingConfig.reduce_lr_factor:g} (default {TrainingConfig.reduce_lr_patience}, "
        f"raised to span at least {PLATEAU_MIN_STEPS} steps; 0: never)",
    )
    train.add_argument(
        "--early-stopping-patience",
        type=int,
        default=None,
        help="epochs without a new best validation loss before training stops early "
        f"(default {TrainingConfig.early_stopping_patience}, raised to span at least "
        f"{EARLY_STOP_MIN_STEPS} steps; 0: never)",
    )
    xla_option(train)
    train.add_argument(
        "--from-scratch",
        action="store_true",
        help="start from new weights, not from the shipped pretrained network of this N and "
        "gridsize (the default when there is one; its inference is the first image)",
    )
    train.add_argument(
        "--keep-last-weights",
        action="store_true",
        help="end on the last epoch's weights (default: the best validation epoch's)",
    )
    train.add_argument(
        "--probe-scale",
        type=study_cli.positive_float,
        default=None,
        help="probe normalisation (default 4, physics.md section 2)",
    )
    train.add_argument(
        "--auto-probe-scale",
        action="store_true",
        help="treat the probe scale as an upper bound, lowered when the brightest patterns "
        "would saturate the amplitude head (recommended for measured data)",
    )
    train.add_argument("--amp-activation", choices=["sigmoid", "softplus"], default=None)
    train.add_argument(
        "--validation-fraction",
        type=float,
        default=None,
        help="fraction held out for the validation loss: of the detector pixels, or of the "
        "groups with --validation groups (default 0.05)",
    )
    train.add_argument(
        "--validation",
        choices=list(VALIDATIONS),
        default=None,
        help="what the validation loss (early stopping, the best-weights restore) is "
        "measured on: pixels held out of the training loss at every scanned position "
        "(default), or groups of patterns held out of training",
    )
    train.add_argument("--seed", type=int, default=0)

    rec = sub.add_parser(
        "reconstruct",
        help="reconstruct a data file with an iterative solver, or with a trained run's weights",
    )
    model_options(rec)
    rec.add_argument(
        "--algorithm",
        choices=["pinn", "rpie", "lsqml"],
        default="pinn",
        help="pinn: a trained network (--model); rpie or lsqml: iterative solvers",
    )
    rec.add_argument("--model", type=Path, default=None, help="run folder written by train")
    rec.add_argument("--N", type=int, default=None, help="pattern size (default: the file's)")
    rec.add_argument("--iterations", type=int, default=None, help="solver iterations (100)")
    rec.add_argument(
        "--noise-model", choices=["gaussian", "poisson"], default=None, help="LSQML likelihood"
    )
    rec.add_argument("--fixed-probe", action="store_true", help="do not refine the probe (solvers)")
    rec.add_argument("--probe-modes", type=int, default=None, help="incoherent probe modes")
    rec.add_argument(
        "--refine-positions", action="store_true", help="correct the scan positions (solvers)"
    )
    rec.add_argument("--preview-every", type=int, default=None, help="iterations per image")
    rec.add_argument("--seed", type=int, default=0)
    study_cli.add_parser(sub)
    return parser


def _read_options(args: argparse.Namespace) -> dict[str, Any]:
    names = ("energy_ev", "distance_m", "detector_pixel_m")
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def _preparation(args: argparse.Namespace, n: int) -> tuple[str, int]:
    """``(mode, N)`` of the preparation the options ask for (``--bin`` or ``--crop``)."""
    if getattr(args, "bin", None) or getattr(args, "crop", None):
        from ptycho_engine.io import read_data

        if args.bin:
            detector = read_data(args.data, args.profile).N
            return "bin", detector // args.bin
        return "crop", args.crop
    return "crop", n


def _print_scores(metrics: Any) -> None:
    """One line of scores (a :class:`~ptycho_engine.pipeline.Scores`), with the chance level
    and the flags of what could not be computed."""
    if metrics is None:
        print("no ground truth in the file: no metrics")
        return
    rec, chance = metrics.report, metrics.chance
    print(
        f"amplitude SSIM {rec.amplitude.ssim:.3f} (chance {chance.amplitude.ssim:.3f}), "
        f"phase SSIM {rec.phase.ssim:.3f} (chance {chance.phase.ssim:.3f}), "
        f"FRC 1/7 amplitude {rec.amplitude.frc_1_7_px:.3g} px, "
        f"phase {rec.phase.frc_1_7_px:.3g} px; region: {rec.region}"
    )
    for flag in rec.flags:
        print(f"  note: {flag}")


def _printer(event: Any) -> None:
    """What the command line prints of a run's events."""
    from ptycho_engine.pipeline import EpochFinished, Notice, Scores

    if isinstance(event, Notice):
        stream = sys.stderr if event.level == "warning" else sys.stdout
        prefix = "warning: " if event.level == "warning" else ""
        print(f"{prefix}{event.text}", file=stream, flush=True)
    elif isinstance(event, EpochFinished):
        snap = event.snapshot
        h = snap.health
        note = " (stopped)" if snap.stopped else ""
        if h is None:  # an iterative solver: an iteration and its normalised error
            print(
                f"iteration {snap.epoch}/{snap.epochs} [{snap.stage}] error {snap.loss:.5g} "
                f"{snap.elapsed_s:.1f}s{note}",
                flush=True,
            )
        else:
            print(
                f"epoch {snap.epoch}/{snap.epochs} [{snap.stage}] steps {snap.steps} "
                f"loss {snap.loss:.5g} val {snap.val_loss:.5g} lr {snap.learning_rate:.2g} "
                f"{snap.elapsed_s:.1f}s | counts pred/meas {h.intensity_ratio:.3f} "
                f"saturated {h.saturated_fraction:.3f}{note}",
                flush=True,
            )
        if event.scores is not None and event.chance is not None:
            print(f"  after {snap.epoch} {'epochs' if h else 'iterations'}: ", end="")
            _print_scores(Scores(event.scores, event.chance))


def _cmd_simulate(args: argparse.Namespace) -> int:
    import numpy as np

    from ptycho_engine.io import write_pinn_npz
    from ptycho_engine.simulate import simulate_dataset

    data = simulate_dataset(
        N=args.N,
        n_positions=args.positions,
        photons=args.photons,
        object_kind=args.object,
        scan=args.scan,
        probe_kind=args.probe,
        seed=args.seed,
        step_px=args.step,
    )
    write_pinn_npz(args.out, data)
    gt_shape = np.shape(data.object_gt) if data.object_gt is not None else None
    print(
        f"wrote {args.out}: {data.n_patterns} patterns of {data.N}x{data.N}, "
        f"{data.photons_per_pattern:.4g} counts per pattern, object {gt_shape}"
    )
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from ptycho_engine import runs
    from ptycho_engine.pipeline import recipe, run
    from ptycho_engine.streams import drain

    mode, n_prep = _preparation(args, args.N)
    if n_prep != args.N:
        raise ConfigError(
            f"the patterns would be prepared to {n_prep}x{n_prep} but --N is {args.N}: "
            f"choose --N {n_prep} or another --crop/--bin"
        )
    spec = recipe(
        args.N,
        args.gridsize,
        args.epochs,
        seed=args.seed,
        preparation=mode,
        probe_path=str(args.probe) if args.probe else "",
        stitch_window=args.stitch_window,
        remove_grid_pattern=not args.keep_grid_pattern,
        learning_rate=args.learning_rate,
        nll_weight=args.nll_weight,
        mae_weight=args.mae_weight,
        mae_warmup_epochs=args.mae_warmup_epochs,
        preview_every=args.preview_every,
        batch_size=args.batch_size,
        reduce_lr_patience=args.reduce_lr_patience,
        early_stopping_patience=args.early_stopping_patience,
        restore_best_weights=False if args.keep_last_weights else None,
        jit_compile=XLA_CHOICES[args.xla],
        pretrained=False if args.from_scratch else None,
        n_filters_scale=args.n_filters_scale,
        **(ModelConfig.LEGACY_DECODER if args.two_decoders else {}),
        probe_scale=args.probe_scale,
        amp_activation=args.amp_activation,
        auto_probe_scale=True if args.auto_probe_scale else None,
        n_groups=args.n_groups,
        validation_fraction=args.validation_fraction,
        validation=args.validation,
        **_read_options(args),
    )
    result = drain(run(spec, _source(args)), _printer)
    info = result.data_info
    print(f"{args.data}: {info['patterns']} patterns of {info['N']}x{info['N']}")
    runs.write_run_folder(args.out, result, {"command": "train"})
    t = result.timings_s
    print(
        f"trained {result.steps} steps in {t.get('train', 0.0):.1f}s, "
        f"reconstructed in {t.get('reconstruct', 0.0):.2f}s"
    )
    _print_scores(result.scores)
    print(f"wrote {args.out}")
    return 0


def _source(args: argparse.Namespace) -> Any:
    from ptycho_engine.pipeline import DataSource

    return DataSource(
        str(args.data),
        str(args.profile) if args.profile else "",
        propagation=args.propagation or "",
        focus_distance_m=args.focus_distance_m,
    )


def _cmd_solve(args: argparse.Namespace) -> int:
    """Reconstruct with an iterative solver: the same pipeline and run folder as ``train``."""
    from ptycho_engine import runs
    from ptycho_engine.pipeline import recipe, run
    from ptycho_engine.streams import drain

    for option, given in (
        ("--keep-grid-pattern", args.keep_grid_pattern),
        ("--stitch-window", args.stitch_window != DEFAULT_WINDOW),
    ):
        if given:
            # a solver refines one object, not patches: there is nothing to stitch
            print(
                f"note: {option} applies to a network's stitched patches; {args.algorithm} "
                "refines the whole object at once, so it is ignored",
                file=sys.stderr,
            )
    mode, n_prep = ("crop", args.N) if not args.bin else ("bin", None)
    if args.bin:
        from ptycho_engine.io import read_data

        n_prep = read_data(args.data, args.profile).N // args.bin
    elif args.crop:
        n_prep = args.crop
    spec = recipe(
        n_prep,
        reconstructor=args.algorithm,
        preparation=mode,
        probe_path=str(args.probe) if args.probe else "",
        stitch_window=args.stitch_window,
        remove_grid_pattern=not args.keep_grid_pattern,
        solver={
            "iterations": args.iterations,
            "batch_size": args.batch_size,
            "noise_model": args.noise_model,
            "refine_probe": False if args.fixed_probe else None,
            "probe_modes": args.probe_modes,
            "refine_positions": True if args.refine_positions else None,
            "preview_every": args.preview_every,
            "seed": args.seed,
        },
        **_read_options(args),
    )
    result = drain(run(spec, _source(args)), _printer)
    runs.write_run_folder(args.out, result, {"command": "reconstruct"})
    info = result.data_info
    print(
        f"{args.algorithm}: {result.steps} iterations over {info['patterns']} patterns of "
        f"{info['N']}x{info['N']} in {result.timings_s.get('iterate', 0.0):.2f}s"
    )
    _print_scores(result.scores)
    print(f"wrote {args.out}")
    return 0


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    """Reconstruct a file with an iterative solver (:func:`_cmd_solve`) or with a trained
    run's weights: the same pipeline, with no training."""
    if args.algorithm != "pinn":
        return _cmd_solve(args)
    if args.model is None:
        raise ConfigError("reconstruct --algorithm pinn needs --model RUN_FOLDER (a train run)")
    import dataclasses

    from ptycho_engine import jsonio, runs
    from ptycho_engine.pipeline import (
        Job,
        RunSpec,
        get_reconstructor,
        load_source,
        prepare_data,
        resolve_probe,
        run,
    )
    from ptycho_engine.streams import drain

    info = jsonio.read_json(args.model / runs.RUN_JSON)
    try:
        trained = RunSpec.from_dict(info["spec"])
        used = ModelConfig.from_dict(info["details"]["model_config"])
    except (KeyError, TypeError) as exc:
        raise DataError(
            f"{args.model / runs.RUN_JSON}: missing field {exc}: not a run folder of this "
            "engine version (train it again)"
        ) from exc
    mode, n_prep = _preparation(args, used.N)
    spec = trained.replace(
        model=used,
        training=dataclasses.replace(trained.training, epochs=0),
        preparation=dataclasses.replace(
            trained.preparation, N=n_prep, mode=mode, **_read_options(args)
        ),
        probe_path=str(args.probe) if args.probe else "",
        stitch_window=args.stitch_window,
        remove_grid_pattern=not args.keep_grid_pattern,
    )
    raw = load_source(_source(args))
    prepared = prepare_data(raw, spec.preparation)
    if prepared.N != used.N:
        raise DataError(
            f"{args.data}: patterns are {prepared.N}x{prepared.N} but the model was trained at "
            f"N={used.N}"
        )
    reconstructor = get_reconstructor(spec.reconstructor)
    job = Job(prepared, resolve_probe(spec, prepared), spec, threading.Event())
    state = reconstructor.load_state(args.model, info, job)
    result = drain(run(spec, prepared, warm_start=state), _printer)
    context = {"command": "reconstruct", "model_run": str(args.model)}
    runs.write_run_folder(args.out, result, context)
    print(
        f"reconstructed {result.data_info['patterns']} patterns in "
        f"{result.timings_s.get('reconstruct', 0.0):.2f}s"
    )
    _print_scores(result.scores)
    print(f"wrote {args.out}")
    return 0


def _cmd_pretrain(args: argparse.Namespace) -> int:
    from ptycho_engine.pretrain import pretrain

    def said(record: dict[str, Any]) -> None:
        error = record.get("supervised_error")
        supervised = "" if error is None else f" (supervised error {error:.4g})"
        print(
            f"step {record['step']}/{args.steps} ({record['stage']}): loss "
            f"{record['loss']:.5g}{supervised}, {record['members']} scans drawn, "
            "heads at their limits "
            f"{record['amplitude_saturated']:.0%} (amplitude) / {record['phase_at_limit']:.0%} "
            f"(phase), {record['elapsed_s']:.0f} s",
            flush=True,
        )
        if record.get("diverged"):
            print(
                f"the network died again after {pretraining.MAX_SETBACKS} setbacks: the run "
                f"ends with its state at step {record['setback']}",
                flush=True,
            )
        elif record.get("setback") is not None:
            print(
                f"the network died (heads at their limits, or a loss that is not finite): "
                f"back to its state at step {record['setback']}, learning rate now "
                f"{record['learning_rate']:.3g}",
                flush=True,
            )

    import signal
    import threading

    stop = threading.Event()
    if args.max_minutes is not None:
        timer = threading.Timer(args.max_minutes * 60.0, stop.set)
        timer.daemon = True
        timer.start()

    def ask_stop(signum: int, frame: Any) -> None:
        print("stopping after the current step; writing what was trained", flush=True)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, ask_stop)
    weights = pretrain(
        args.out,
        N=args.N,
        gridsize=args.gridsize,
        steps=args.steps,
        n_positions=args.positions,
        seed=args.seed,
        n_filters_scale=args.n_filters_scale,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        on_progress=said,
        stop_event=stop,
        pool_size=args.pool,
        refresh_steps=args.refresh_steps,
        mae_steps=args.mae_steps,
        reference_members=args.reference_members,
        resume=args.resume,
        jit_compile=XLA_CHOICES[args.xla],
        supervised_weight=args.supervised_weight,
    )
    print(f"wrote {weights} and {weights.with_name(weights.name.replace('.weights.h5', '.json'))}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from ptycho_engine.io import inspect_file

    summary = inspect_file(args.data, args.profile, **_read_options(args))
    for key, value in summary.items():
        if isinstance(value, list) and value and isinstance(value[0], str):
            print(f"{key}:")
            for item in value:
                print(f"  - {item}")
        else:
            print(f"{key}: {value}")
    return 0


COMMANDS = {
    "inspect": _cmd_inspect,
    "pretrain": _cmd_pretrain,
    "simulate": _cmd_simulate,
    "train": _cmd_train,
    "reconstruct": _cmd_reconstruct,
    "study": study_cli.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``ptycho-engine``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (PtychoError, OSError) as exc:
        if args.debug:
            raise
        print(f"ptycho-engine {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"ptycho-engine {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
