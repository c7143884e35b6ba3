"""``ptycho-engine``: simulate, train and reconstruct from the command line.

Errors in user input print one line naming the problem and exit with status 2; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ptycho_engine import study_cli
from ptycho_engine.config import DataConfig, ModelConfig, TrainingConfig
from ptycho_engine.errors import PtychoError

#: Object amplitude needed by the brightest patterns above which ``train`` warns of saturation.
SATURATION_WARNING_LEVEL = 0.9

EXIT_USAGE = 2


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

    def model_options(p: argparse.ArgumentParser) -> None:
        data_options(p)
        p.add_argument("--out", required=True, type=Path, help="run folder to write")
        p.add_argument(
            "--probe", type=Path, default=None, help="probe file (.npy, .npz, product, CXI)"
        )
        p.add_argument("--batch-size", type=int, default=None)
        p.add_argument(
            "--stitch-window",
            choices=["support", "probe"],
            default="support",
            help="stitching weight: the object support (default) or the probe amplitude on it",
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

    train = sub.add_parser("train", help="train on a data file, stitch and write a run folder")
    model_options(train)
    train.add_argument("--N", type=int, default=64)
    train.add_argument("--gridsize", type=int, default=2)
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--n-groups", type=int, default=None, help="groups per epoch (all)")
    train.add_argument("--learning-rate", type=float, default=None)
    train.add_argument("--nll-weight", type=float, default=None)
    train.add_argument("--mae-weight", type=float, default=None)
    train.add_argument("--mae-warmup-epochs", type=int, default=None)
    train.add_argument("--n-filters-scale", type=int, default=None)
    train.add_argument("--preview-every", type=int, default=None)
    train.add_argument("--reduce-lr-patience", type=int, default=None)
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
        help="fraction of groups held out for the validation loss (default 0.05)",
    )
    train.add_argument("--seed", type=int, default=0)

    rec = sub.add_parser("reconstruct", help="reconstruct a data file with a trained run's weights")
    model_options(rec)
    rec.add_argument("--model", required=True, type=Path, help="run folder written by train")
    study_cli.add_parser(sub)
    return parser


def _read_options(args: argparse.Namespace) -> dict[str, Any]:
    names = ("energy_ev", "distance_m", "detector_pixel_m")
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def _load(args: argparse.Namespace, n: int | None) -> Any:
    """Read any supported file and prepare it for pattern size ``n`` (crop, bin, centre)."""
    from ptycho_engine.io import prepare, read_data

    data = read_data(args.data, args.profile)
    mode, target = "crop", n
    if getattr(args, "bin", None):
        mode, target = "bin", data.N // args.bin
    elif getattr(args, "crop", None):
        target = args.crop
    overrides = _read_options(args)
    if target != data.N or overrides or data.provenance.get("format") != "pinn-npz":
        data = prepare(data, target, mode, **overrides)
    return data


def _load_probe(path: Path | None, n: int) -> Any:
    if path is None:
        return None
    from ptycho_engine.io import read_probe

    return read_probe(path, n).probe


def _metrics(data: Any, snap: Any) -> dict[str, Any] | None:
    if data.object_gt is None:
        return None
    from ptycho_engine.metrics import chance_level, compare
    from ptycho_engine.stitching import reference_region

    ref = reference_region(data.object_gt, snap.origin_px, snap.object.shape)
    return {
        "reconstruction": compare(snap.object, ref, snap.valid, data.pixel_size_m).to_dict(),
        "chance_level": chance_level(ref, snap.valid).to_dict(),
    }


def _preview_metrics(data: Any, snap: Any) -> dict[str, Any] | None:
    import numpy as np

    from ptycho_engine.data import StitchSnapshot

    preview = snap.preview
    obj = (preview.amplitude * np.exp(1j * preview.phase)).astype(np.complex64)
    return _metrics(data, StitchSnapshot(obj, preview.valid, 1, 1, preview.origin_px))


def _print_scores(metrics: dict[str, Any] | None) -> None:
    if metrics is None:
        print("no ground truth in the file: no metrics")
        return
    rec, chance = metrics["reconstruction"], metrics["chance_level"]
    print(
        f"amplitude SSIM {rec['amplitude']['ssim']:.3f} "
        f"(chance {chance['amplitude']['ssim']:.3f}), "
        f"phase SSIM {rec['phase']['ssim']:.3f} (chance {chance['phase']['ssim']:.3f}), "
        f"FRC 1/7 amplitude {rec['amplitude']['frc_1_7_px']} px, "
        f"phase {rec['phase']['frc_1_7_px']} px; region: {rec['region']}"
    )


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


def _warn_saturation(data: Any, mcfg: ModelConfig, probe: Any) -> None:
    """Warn (stderr) when the brightest patterns need more object amplitude than the sigmoid
    amplitude head can give at a fixed probe scale, and say which flag fixes it."""
    if mcfg.auto_probe_scale or mcfg.amp_activation != "sigmoid":
        return
    from ptycho_engine.physics.probe import auto_probe_scale, brightest_level, normalize_probe

    used = probe if probe is not None else data.probe_all_modes
    if used is None:
        return
    try:
        level = brightest_level(
            data.amplitudes,
            normalize_probe(used, mcfg.probe_scale),
            mcfg.pad_object,
            mcfg.probe_mask,
        )
        better = auto_probe_scale(
            data.amplitudes, used, mcfg.probe_scale, mcfg.pad_object, mcfg.probe_mask
        )
    except PtychoError:
        return
    if level > SATURATION_WARNING_LEVEL:
        print(
            f"warning: at probe scale {mcfg.probe_scale:g} the brightest patterns need an "
            f"object amplitude of {level:.2f}, near or above the sigmoid head's limit of 1: "
            f"the amplitude will saturate; add --auto-probe-scale (it would use "
            f"{better:.3g}) or pass --probe-scale {better:.3g}",
            file=sys.stderr,
        )


def _cmd_train(args: argparse.Namespace) -> int:
    from ptycho_engine import runs
    from ptycho_engine.inference import reconstruct_all
    from ptycho_engine.training import train

    overrides = {
        "learning_rate": args.learning_rate,
        "nll_weight": args.nll_weight,
        "mae_weight": args.mae_weight,
        "mae_warmup_epochs": args.mae_warmup_epochs,
        "preview_every": args.preview_every,
        "batch_size": args.batch_size,
        "reduce_lr_patience": args.reduce_lr_patience,
    }
    tcfg = TrainingConfig(
        epochs=args.epochs, seed=args.seed, **{k: v for k, v in overrides.items() if v is not None}
    )
    mopts = {
        "n_filters_scale": args.n_filters_scale,
        "probe_scale": args.probe_scale,
        "amp_activation": args.amp_activation,
    }
    mkw = {k: v for k, v in mopts.items() if v is not None}
    if args.auto_probe_scale:
        mkw["auto_probe_scale"] = True
    mcfg = ModelConfig(N=args.N, gridsize=args.gridsize, **mkw)
    dkw = {"validation_fraction": args.validation_fraction}
    dcfg = DataConfig(
        n_groups=args.n_groups, seed=args.seed, **{k: v for k, v in dkw.items() if v is not None}
    )
    t0 = time.perf_counter()
    data = _load(args, args.N)
    probe = _load_probe(args.probe, data.N)
    t_load = time.perf_counter() - t0
    print(f"{args.data}: {data.n_patterns} patterns of {data.N}x{data.N}")
    gen = train(data, mcfg, tcfg, dcfg, stop_event=threading.Event(), probe=probe)
    if data.probe_modes is not None and probe is None:
        print(f"probe: {data.probe_modes.shape[0]} incoherent modes (intensities add)")
    _warn_saturation(data, mcfg, probe)
    history = []
    while True:
        try:
            snap = next(gen)
        except StopIteration as stop:
            result = stop.value
            break
        h = snap.health
        scores = None
        if snap.preview is not None and data.object_gt is not None:
            scores = _preview_metrics(data, snap)
        history.append((snap, scores))
        print(
            f"epoch {snap.epoch}/{snap.epochs} [{snap.stage}] steps {snap.steps} "
            f"loss {snap.loss:.5g} val {snap.val_loss:.5g} lr {snap.learning_rate:.2g} "
            f"{snap.elapsed_s:.1f}s | counts pred/meas {h.intensity_ratio:.3f} "
            f"saturated {h.saturated_fraction:.3f}",
            flush=True,
        )
        if scores is not None:
            print(f"  after {snap.steps} steps: ", end="")
            _print_scores(scores)
    t_train = result.elapsed_s
    used_scale = result.bundle.config.probe_scale
    if used_scale != mcfg.probe_scale:
        print(
            f"probe scale {used_scale:.4g} (lowered from {mcfg.probe_scale:g} so that the "
            "brightest patterns do not saturate the amplitude head)"
        )
    t1 = time.perf_counter()
    final = reconstruct_all(result.bundle, data, dcfg, window=args.stitch_window)
    t_infer = time.perf_counter() - t1
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    result.bundle.save_weights(out / runs.WEIGHTS)
    runs.write_reconstruction(out, final, data.pixel_size_m)
    runs.write_images(out, final, title=f"N={mcfg.N} gridsize={mcfg.gridsize}")
    _write_product(
        out, data, final, result.bundle.probe_modes, [(s.epoch, s.loss) for s, _ in history]
    )
    metrics = _metrics(data, final)
    runs.write_json(
        out / runs.RUN_JSON,
        {
            "kind": "train",
            "input": {
                "path": str(args.data),
                "sha256": data.provenance.get("sha256"),
            },
            "probe_file": str(args.probe) if args.probe else None,
            "probe_modes": int(result.bundle.probe_modes.shape[0]),
            "model_config": result.bundle.config.to_dict(),
            "training_config": tcfg.to_dict(),
            "data_config": dcfg.to_dict(),
            "stitch_window": args.stitch_window,
            "intensity_scale": result.bundle.intensity_scale,
            "max_offset_px": result.bundle.max_offset_px,
            "timings_s": {"load": t_load, "train": t_train, "reconstruct": t_infer},
            "steps": result.steps,
            "stopped": result.stopped,
            "metrics": metrics,
            "history": [{**s.record(), "metrics": scores} for s, scores in history],
            "versions": runs.versions(),
        },
    )
    print(f"trained {result.steps} steps in {t_train:.1f}s, reconstructed in {t_infer:.2f}s")
    _print_scores(metrics)
    print(f"wrote {out}")
    return 0


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    from ptycho_engine import runs
    from ptycho_engine.errors import DataError
    from ptycho_engine.inference import reconstruct_all
    from ptycho_engine.models import build_models, intensity_scale_for

    info = runs.read_json(args.model / runs.RUN_JSON)
    try:
        mcfg = ModelConfig.from_dict(info["model_config"])
        dcfg = DataConfig.from_dict(info["data_config"])
    except KeyError as exc:
        raise DataError(f"{args.model / runs.RUN_JSON}: missing field {exc}") from exc
    data = _load(args, mcfg.N)
    if data.N != mcfg.N:
        raise DataError(
            f"{args.data}: patterns are {data.N}x{data.N} but the model was trained at N={mcfg.N}"
        )
    probe = _load_probe(args.probe, data.N)
    if probe is None:
        probe = data.probe_all_modes
    if probe is None:
        raise DataError(f"{args.data}: no probe in the file: give --probe")
    t0 = time.perf_counter()
    bundle = build_models(
        mcfg,
        probe,
        intensity_scale_for(data.photons_per_pattern, mcfg.N),
        max_offset_px=float(info.get("max_offset_px", 0.0)),
    )
    bundle.load_weights(args.model / runs.WEIGHTS)
    final = reconstruct_all(
        bundle, data, dcfg, batch_size=args.batch_size or 64, window=args.stitch_window
    )
    elapsed = time.perf_counter() - t0
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    runs.write_reconstruction(out, final, data.pixel_size_m)
    runs.write_images(out, final, title=f"N={mcfg.N} gridsize={mcfg.gridsize}")
    _write_product(out, data, final, bundle.probe_modes, [])
    metrics = _metrics(data, final)
    runs.write_json(
        out / runs.RUN_JSON,
        {
            "kind": "reconstruct",
            "input": {"path": str(args.data), "sha256": data.provenance.get("sha256")},
            "model_run": str(args.model),
            "model_config": mcfg.to_dict(),
            "data_config": dcfg.to_dict(),
            "timings_s": {"reconstruct": elapsed},
            "metrics": metrics,
            "versions": runs.versions(),
        },
    )
    print(f"reconstructed {data.n_patterns} patterns in {elapsed:.2f}s")
    _print_scores(metrics)
    print(f"wrote {out}")
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


def _write_product(out: Path, data: Any, snap: Any, probe: Any, history: list[Any]) -> Path:
    """The run's ptychodus product (``reconstruction.h5``); ``probe`` (H, W) or (K, H, W)."""
    import numpy as np

    from ptycho_engine.io import write_product

    pixel = data.pixel_size_m or 1.0
    if np.ndim(probe) == 3 and np.shape(probe)[0] == 1:
        probe = probe[0]  # a coherent probe is written as one (H, W) mode, as before
    centre_px = (
        snap.origin_px[0] + (snap.object.shape[0] - 1) / 2,
        snap.origin_px[1] + (snap.object.shape[1] - 1) / 2,
    )
    comments = "" if data.pixel_size_m else "no pixel size known: 1 m stands for 1 object pixel"
    return write_product(
        out / "reconstruction.h5",
        snap.object,
        probe,
        data.positions_px - np.asarray(snap.origin_px),  # in pixels of the stitched object
        pixel,
        comments=comments,
        detector_object_distance_m=data.distance_m or 0.0,
        probe_energy_eV=data.energy_ev or 0.0,
        probe_photon_count=data.photons_per_pattern,
        object_center_m=(centre_px[0] * pixel, centre_px[1] * pixel),  # (y, x)
        loss_epochs=[int(e) for e, _ in history],
        loss_values=[float(v) for _, v in history],
        inputs=[data.provenance.get("path")] if data.provenance.get("path") else (),
    )


COMMANDS = {
    "inspect": _cmd_inspect,
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
