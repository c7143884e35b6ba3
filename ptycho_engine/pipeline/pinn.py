"""The physics-informed network as a reconstructor of the pipeline.

It trains (:func:`ptycho_engine.training.train`) and stitches the final object
(:func:`ptycho_engine.inference.reconstruct`). With a warm start (models trained before for the
same network), the first image is that model's inference, streamed batch by batch before the
training starts. With zero epochs it only infers: that is how a trained run's weights
reconstruct other data. This module imports TensorFlow when a run starts, not at import.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.data import DiffractionData, StepProgress, StitchSnapshot, TrainingSnapshot
from ptycho_engine.errors import ConfigError, PtychoError
from ptycho_engine.pipeline.events import EpochFinished, Event, Notice, PartialImage, StageChanged
from ptycho_engine.pipeline.reconstructors import Job, Outcome
from ptycho_engine.pipeline.spec import RunSpec
from ptycho_engine.streams import relay

#: Object amplitude needed by the brightest patterns above which a run warns of saturation.
SATURATION_WARNING_LEVEL = 0.9
#: File of the trained weights in a run folder.
WEIGHTS = "model.weights.h5"
#: Step progress at most this often (seconds), so a front end can update its ETA.
STEP_EVENTS_S = 1.0


def saturation_warning(job: Job) -> str:
    """A warning when the brightest patterns need more object amplitude than the sigmoid head
    can give at a fixed probe scale ("" when they do not), naming the options that fix it."""
    model = job.spec.model
    if model.auto_probe_scale or model.amp_activation != "sigmoid" or job.probe is None:
        return ""
    from ptycho_engine.physics.probe import auto_probe_scale, brightest_level, normalize_probe

    try:
        level = brightest_level(
            job.data.amplitudes,
            normalize_probe(job.probe, model.probe_scale),
            model.pad_object,
            model.probe_mask,
        )
        better = auto_probe_scale(
            job.data.amplitudes, job.probe, model.probe_scale, model.pad_object, model.probe_mask
        )
    except PtychoError:
        return ""
    if level <= SATURATION_WARNING_LEVEL:
        return ""
    return (
        f"at probe scale {model.probe_scale:g} the brightest patterns need an object amplitude "
        f"of {level:.2f}, near or above the sigmoid head's limit of 1: the amplitude will "
        f"saturate; use the automatic probe scale (--auto-probe-scale; it would use "
        f"{better:.3g}) or a probe scale of {better:.3g}"
    )


def early_stopping_notice(result: Any) -> str:
    """What early stopping and the best-weights restore did in a finished training run
    (a :class:`~ptycho_engine.training.TrainingResult`), "" when neither acted."""
    parts = []
    if result.early_stopped_epoch:
        parts.append(
            f"early stopping after epoch {result.early_stopped_epoch}: the validation loss "
            "had stopped improving"
        )
    if result.restored_epoch:
        parts.append(
            f"restored the weights of epoch {result.restored_epoch}, the best validation loss "
            f"({result.best_val_loss:.6g}; the last epoch had {result.last_val_loss:.6g})"
        )
    return "; ".join(parts)


class PinnReconstructor:
    """The physics-informed network (:mod:`ptycho_engine.models`)."""

    name = "pinn"
    title = "PINN (physics-informed network)"
    #: The network's physics layer is far-field only (a near-field file is refused when it
    #: is prepared, with a message that names the iterative solvers).
    near_field = False
    needs_probe = True

    def run(self, job: Job) -> Generator[Event, None, Outcome]:
        from ptycho_engine.inference import inference_groups, reconstruct
        from ptycho_engine.pretrain import (
            far_field_residual,
            find_pretrained,
            ood_warning,
            pretrained_start,
        )
        from ptycho_engine.training import train

        spec = job.spec
        if job.probe is None:  # resolve_probe refuses this for a reconstructor that needs one
            raise PtychoError("the network needs a probe: choose a probe file")
        warning = saturation_warning(job)
        if warning:
            yield Notice(warning, "warning")
        if job.data.probe_modes is not None and not spec.probe_path:
            yield Notice(f"probe: {job.probe.shape[0]} incoherent modes (intensities add)")
        start = time.perf_counter()
        warm = job.warm_start
        start_kind = "scratch" if warm is None else "warm"
        first: StitchSnapshot | None = None
        tcfg = spec.training
        pretrained: dict[str, Any] = {}
        recipe_path = find_pretrained(spec.model) if warm is None and tcfg.pretrained else None
        groups = None  # the inference groups, made once for the start and its first image
        if recipe_path is not None:
            yield StageChanged("loading the pretrained network", time.perf_counter() - start)
            groups = inference_groups(job.data, spec.model.gridsize, spec.grouping)
            warm = pretrained_start(
                recipe_path,
                spec.model,
                job.data,
                job.probe,
                spec.grouping,
                tcfg.learning_rate,
                groups,
            )
            start_kind = "pretrained"
            pretrained = {"network": recipe_path.stem}
            if tcfg.mae_warmup_epochs is None:
                # the network is past the fog: the likelihood from the first step
                tcfg = dataclasses.replace(tcfg, mae_warmup_epochs=0)
        if warm is not None and (tcfg.epochs > 0 or start_kind == "pretrained"):
            # The first image at once: the warm model's inference, batch by batch.
            stream = reconstruct(
                warm,
                job.data,
                spec.grouping,
                stop_event=job.stop_event,
                groups=groups,
                window=spec.stitch_window,
                remove_grid=spec.remove_grid_pattern,
            )
            for partial in stream:
                first = partial
                yield PartialImage(partial, 0)
        if recipe_path is not None:
            residual = far_field_residual(warm, job.data, spec.grouping, groups=groups)
            pretrained["far_field_residual"] = residual
            warning = ood_warning(recipe_path, residual)
            pretrained["out_of_distribution"] = bool(warning)
            yield Notice(
                warning
                or (
                    f"started from the pretrained network {recipe_path.stem} (far-field "
                    f"residual {residual:.3g}, within what it met in training)"
                ),
                "warning" if warning else "info",
            )
        training = train(
            job.data,
            spec.model,
            tcfg,
            spec.grouping,
            stop_event=job.stop_event,
            probe=job.probe,
            bundle=warm,
            preview_epochs=spec.score_epochs,
            step_events_s=STEP_EVENTS_S,
            window=spec.stitch_window,
            remove_grid=spec.remove_grid_pattern,
        )
        latest: StitchSnapshot | None = first
        last: TrainingSnapshot | None = None
        stage = ""

        def events(item: TrainingSnapshot | StepProgress) -> list[Event]:
            nonlocal latest, last, stage
            out: list[Event] = []
            if isinstance(item, StepProgress):
                if item.stage != stage:
                    stage = item.stage
                    out.append(StageChanged(item.stage, item.elapsed_s))
                out.append(item)
                return out
            if stage != "training":
                stage = "training"
                out.append(StageChanged("training", item.elapsed_s))
            last = item
            out.append(EpochFinished(item))
            if item.preview is not None:
                latest = item.preview
                out.append(PartialImage(item.preview, item.epoch))
            return out

        result = yield from relay(training, events)
        bundle = result.bundle
        t_train = result.elapsed_s - result.preview_s
        reuse = (
            last is not None
            and last.preview is not None
            and (last.epoch == spec.training.epochs or result.early_stopped_epoch > 0)
            and not last.stopped
        )
        notice = early_stopping_notice(result)
        if notice:
            yield Notice(notice)
        t_reconstruct = 0.0
        final = latest
        if result.stopped:
            pass  # a stop never waits for a whole reconstruction: keep the last image
        elif reuse:
            final = latest  # the last epoch's preview is this very reconstruction
        elif tcfg.epochs == 0 and first is not None and first.done:
            final = first  # inference alone: the first image is the reconstruction
        else:
            yield StageChanged("reconstructing", time.perf_counter() - start)
            t0 = time.perf_counter()
            stream = reconstruct(
                bundle,
                job.data,
                spec.grouping,
                stop_event=job.stop_event,
                window=spec.stitch_window,
                remove_grid=spec.remove_grid_pattern,
            )
            snap: StitchSnapshot | None = None
            for snap in stream:
                yield PartialImage(snap, result.history[-1].epoch if result.history else 0)
            t_reconstruct = time.perf_counter() - t0
            if snap is not None and snap.done:
                final = snap
        used = bundle.config
        if used.probe_scale != spec.model.probe_scale:
            yield Notice(
                f"probe scale {used.probe_scale:.4g} (lowered from {spec.model.probe_scale:g} "
                "so that the brightest patterns do not saturate the amplitude head)"
            )
        stopped = result.stopped or (final is not None and not final.done)
        grid = None if final is None else final.grid_pattern
        if grid is not None:
            yield Notice(
                f"divided the scan grid's pattern out of the image (raster pitch "
                f"{grid.lattice.step_px[0]:.2f} x {grid.lattice.step_px[1]:.2f} px; amplitude "
                f"ripple {100 * grid.amplitude_rms:.2f} % rms, phase {grid.phase_rms_rad:.4f} "
                "rad rms)"
            )
        return Outcome(
            reconstruction=final,
            probe_modes=np.asarray(bundle.probe_modes, np.complex64),
            history=result.history,
            steps=result.steps,
            stopped=stopped,
            timings_s={
                "train": t_train,
                "previews": result.preview_s,
                "reconstruct": t_reconstruct,
            },
            details={
                "model_config": used.to_dict(),
                "intensity_scale": float(bundle.intensity_scale),
                "max_offset_px": float(bundle.max_offset_px),
                "probe_modes": int(bundle.probe_modes.shape[0]),
                "start": start_kind,
                "pretrained": pretrained,
                "jit_compiled": result.jit_compiled,
                "grid_pattern": None if grid is None else grid.to_dict(),
                "early_stopping": {
                    "stopped_at_epoch": result.early_stopped_epoch,
                    "restored_epoch": result.restored_epoch,
                    "best_val_loss": result.best_val_loss,
                    "last_val_loss": result.last_val_loss,
                },
            },
            state=bundle,
        )

    def save_state(self, state: Any, folder: Path) -> list[Path]:
        if state is None:
            return []
        return [state.save_weights(folder / WEIGHTS)]

    def load_state(self, folder: Path, info: dict[str, Any], job: Job) -> Any:
        from ptycho_engine.models import build_models, intensity_scale_for

        if job.probe is None:
            raise PtychoError("the network needs a probe: choose a probe file")
        weights = folder / WEIGHTS
        if not weights.is_file():
            raise ConfigError(f"{folder}: no {WEIGHTS}: not a run folder of a trained PINN")
        details = info.get("details", {})
        bundle = build_models(
            job.spec.model,
            job.probe,
            intensity_scale_for(job.data.photons_per_pattern, job.spec.model.N),
            max_offset_px=float(details.get("max_offset_px", 0.0)),
        )
        bundle.load_weights(weights)
        return bundle

    def predict_pattern(
        self, state: Any, data: DiffractionData, spec: RunSpec, index: int
    ) -> tuple[np.ndarray, np.ndarray]:
        from ptycho_engine.grouping import GroupedPatterns
        from ptycho_engine.inference import inference_groups
        from ptycho_engine.models import ensure_canvas

        if not 0 <= index < data.n_patterns:
            raise PtychoError(f"scan position {index} does not exist (0..{data.n_patterns - 1})")
        groups = inference_groups(data, state.config.gridsize, spec.grouping)
        rows = np.flatnonzero(groups.indices[:, 0] == index)
        if rows.size == 0:
            raise PtychoError(f"scan position {index} seeds no group")
        bundle = ensure_canvas(state, groups.max_offset_px)
        x, o = GroupedPatterns(data.amplitudes, groups).batch(rows[:1])
        predicted = np.asarray(bundle.training([x, o], training=False))
        return x[0, :, :, 0].astype(np.float32), predicted[0, :, :, 0].astype(np.float32)
