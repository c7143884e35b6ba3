"""The ``ptycho-engine study`` subcommand: parser and handler (see :mod:`ptycho_engine.study`).

Wired into :mod:`ptycho_engine.cli` with ``study_cli.add_parser(sub)`` and the entry
``"study": study_cli.run`` of its command table. Errors are raised as
:class:`~ptycho_engine.errors.PtychoError` subclasses, which the main command prints as one line
(exit status 2). This module imports neither TensorFlow nor Qt.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from ptycho_engine.config import ModelConfig
from ptycho_engine.study import EXECUTORS, LOSSES, StudyError, StudyProgress, StudySpec
from ptycho_engine.study.spec import ALGORITHMS

EXIT_INTERRUPTED = 130


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (shared by every ``ptycho-engine`` subcommand)."""
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``study`` subcommand to an ``argparse`` subparsers object and return it."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "study",
        help="sweep N, gridsize, dose and loss on simulated data; score against the truth",
        description=(
            "Train and score one model per combination of the listed values and seed on "
            "simulated data (one ground-truth object per seed, probe at each N, scan step N/8). "
            "Writes results.csv/results.json after every setting, a run folder per setting and "
            "the figures. Running the same command again resumes: only missing settings run."
        ),
    )
    p.add_argument("--N", type=int, nargs="+", required=True, help="pattern sizes, e.g. 32 64")
    p.add_argument("--gridsize", type=int, nargs="+", required=True, help="e.g. 1 2")
    p.add_argument(
        "--photons",
        type=positive_float,
        nargs="+",
        required=True,
        help="counts per pattern, e.g. 1e3 1e4 1e6 1e9",
    )
    p.add_argument("--loss", nargs="+", choices=sorted(LOSSES), default=["nll"])
    p.add_argument(
        "--algorithm",
        nargs="+",
        choices=list(ALGORITHMS),
        default=["pinn"],
        help="reconstructors to compare on the same data: pinn (swept over --gridsize and "
        "--loss) and/or the iterative solvers rpie, lsqml (default pinn)",
    )
    p.add_argument(
        "--iterations", type=int, default=100, help="iterations of the solvers (default 100)"
    )
    p.add_argument("--epochs", type=int, default=30, help="epochs per setting (default 30)")
    p.add_argument("--positions", type=int, default=1000, help="scan positions (default 1000)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default 0)")
    p.add_argument("--object", default="lines", help="lines, siemens or file:PATH")
    p.add_argument("--scan", default="spiral", choices=["spiral", "raster", "random"])
    p.add_argument("--probe", default="disk", choices=["disk", "gaussian"])
    p.add_argument(
        "--n-filters-scale",
        type=int,
        default=ModelConfig.n_filters_scale,
        help=f"network width (default {ModelConfig.n_filters_scale})",
    )
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=positive_float, default=1e-3)
    p.add_argument(
        "--mae-warmup-epochs",
        type=int,
        default=None,
        help="MAE-only epochs before the chosen loss (default: the engine's rule, 3 epochs "
        "and never more than a third of the run; 0: the loss is what it says from the start)",
    )
    p.add_argument("--out", type=Path, required=True, help="study folder (created or resumed)")
    p.add_argument("--executor", choices=EXECUTORS, default="local")
    p.add_argument(
        "--scheduler", default=None, help="address of a running dask scheduler (with dask)"
    )
    p.add_argument(
        "--workers",
        type=int,
        default=2,
        help="LocalCluster worker processes, one thread each (dask without --scheduler)",
    )
    return p


def spec_from_args(args: argparse.Namespace) -> StudySpec:
    """The :class:`StudySpec` an argument namespace of :func:`add_parser` asks for."""
    return StudySpec(
        N=tuple(args.N),
        gridsize=tuple(args.gridsize),
        photons=tuple(args.photons),
        loss=tuple(args.loss),
        seeds=tuple(args.seeds),
        epochs=args.epochs,
        positions=args.positions,
        object_kind=args.object,
        scan=args.scan,
        probe_kind=args.probe,
        n_filters_scale=args.n_filters_scale,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        mae_warmup_epochs=args.mae_warmup_epochs,
        algorithms=tuple(args.algorithm),
        iterations=args.iterations,
    )


def _print_progress(progress: StudyProgress) -> None:
    row = progress.row
    print(
        f"[{progress.done}/{progress.total}] {progress.setting_id}: "
        f"amplitude SSIM {row['amplitude_ssim']:.3f} (chance {row['chance_amplitude_ssim']:.3f}), "
        f"phase SSIM {row['phase_ssim']:.3f} (chance {row['chance_phase_ssim']:.3f}), "
        f"{row['steps']} steps in {row['train_time_s']:.1f}s",
        flush=True,
    )


def run(args: argparse.Namespace) -> int:
    """Handle ``ptycho-engine study``; returns the exit status (0, or 130 when interrupted)."""
    from ptycho_engine.study import run_study

    if args.scheduler is not None and args.executor != "dask":
        raise StudyError("--scheduler needs --executor dask")
    spec = spec_from_args(args)
    total = len(spec.settings())
    print(f"study of {total} settings into {args.out} ({args.executor} executor)", flush=True)
    try:
        result = run_study(
            spec,
            args.out,
            executor=args.executor,
            scheduler=args.scheduler,
            workers=args.workers,
            on_progress=_print_progress,
        )
    except KeyboardInterrupt:
        print(
            f"ptycho-engine study: interrupted; finished settings are kept in {args.out}: "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    figures = f" and {len(result.figures)} figures" if result.figures else ""
    print(
        f"ran {result.ran} settings, {result.skipped} already done; "
        f"wrote {args.out / 'results.csv'}{figures}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the subcommand alone (``python -m ptycho_engine.study_cli --N 32 ...``)."""
    from ptycho_engine.errors import PtychoError

    parser = argparse.ArgumentParser(prog="ptycho-engine")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    given = list(sys.argv[1:] if argv is None else argv)
    flags = ["--debug"] if "--debug" in given else []
    args = parser.parse_args([*flags, "study", *(a for a in given if a != "--debug")])
    try:
        return run(args)
    except (PtychoError, OSError) as exc:
        if args.debug:
            raise
        print(f"ptycho-engine study: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
