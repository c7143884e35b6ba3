"""rPIE and the LSQML-style solver as reconstructors of the pipeline.

Each iteration yields an :class:`~ptycho_engine.pipeline.EpochFinished` (the iteration, its
normalised error, the refined probe and positions) and, every ``preview_every`` iterations, a
:class:`~ptycho_engine.pipeline.PartialImage` of the object; the result holds the final object,
probe and positions, and the solver state as a warm start. A stop takes effect between two
batches of positions (well within one iteration). Far-field and near-field data both work.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import numpy as np

from ptycho_engine.data import DiffractionData, TrainingSnapshot
from ptycho_engine.errors import PtychoError
from ptycho_engine.pipeline.events import EpochFinished, Event, PartialImage, StageChanged
from ptycho_engine.pipeline.reconstructors import Job, Outcome
from ptycho_engine.pipeline.spec import RunSpec
from ptycho_engine.solvers.state import SolverState
from ptycho_engine.solvers.updates import (
    lsqml_batch_size,
    lsqml_iteration,
    rpie_batch_size,
    rpie_iteration,
)

Iteration = Callable[
    [SolverState, Any, int, np.random.Generator, threading.Event], tuple[float, bool]
]


class IterativeReconstructor:
    """A solver of :mod:`ptycho_engine.solvers.updates` on the pipeline's contract."""

    near_field = True
    needs_probe = False

    def __init__(self, name: str, title: str, iteration: Iteration) -> None:
        self.name = name
        self.title = title
        self._iteration = iteration

    def batch_size(self, m: int, spec: RunSpec) -> int:
        """Patterns per batch this solver uses on a scan of ``m`` positions."""
        if self.name == "lsqml":
            return lsqml_batch_size(m, spec.solver)
        return rpie_batch_size(m, spec.solver)

    def run(self, job: Job) -> Generator[Event, None, Outcome]:
        config = job.spec.solver
        start = time.perf_counter()
        warm = job.warm_start
        if isinstance(warm, SolverState) and warm.fits(job.data, config):
            state = warm
            start_kind = "warm"
        else:
            state = SolverState.start(job.data, job.probe, config)
            start_kind = "scratch"
        yield StageChanged(f"{self.name} iterations", time.perf_counter() - start)
        rng = np.random.default_rng(config.seed + state.iterations_done)
        history: list[TrainingSnapshot] = []
        stopped = False
        first = state.iterations_done
        t_image = 0.0
        last_image = None
        for k in range(1, config.iterations + 1):
            iteration = first + k
            if job.stop_event.is_set():
                stopped = True
                break
            error, stopped = self._iteration(state, config, iteration, rng, job.stop_event)
            if stopped:
                break
            state.iterations_done = iteration
            last = k == config.iterations
            image = None
            if last or (config.preview_every and k % config.preview_every == 0):
                t0 = time.perf_counter()
                image = state.image()
                t_image += time.perf_counter() - t0
            snap = TrainingSnapshot(
                epoch=k,
                epochs=config.iterations,
                steps=k,
                stage=self.name,
                loss=float(error),
                val_loss=float("nan"),
                learning_rate=float("nan"),
                elapsed_s=time.perf_counter() - start,
                health=None,
                preview=image,
                probe=state.probe.copy(),
                positions_px=state.positions_px.copy(),
            )
            history.append(TrainingSnapshot(**{**snap.__dict__, "preview": None}))
            last_image = image if last else None
            yield EpochFinished(snap)
            if image is not None:
                yield PartialImage(image, k)
        if stopped:
            done = len(history)
            last_epoch = history[-1] if history else None
            snap = TrainingSnapshot(
                epoch=done,
                epochs=config.iterations,
                steps=done,
                stage=self.name,
                loss=last_epoch.loss if last_epoch else float("nan"),
                val_loss=float("nan"),
                learning_rate=float("nan"),
                elapsed_s=time.perf_counter() - start,
                health=None,
                stopped=True,
            )
            history.append(snap)
            yield EpochFinished(snap)
        # the last iteration's image is the final one (not stitched and scored twice)
        final = last_image if last_image is not None and not stopped else state.image()
        elapsed = time.perf_counter() - start
        return Outcome(
            reconstruction=final,
            probe_modes=state.probe.copy(),
            history=tuple(history),
            steps=len([h for h in history if not h.stopped]),
            stopped=stopped,
            timings_s={"iterate": elapsed - t_image, "previews": t_image},
            details={
                "solver_config": config.to_dict(),
                "batch_size": self.batch_size(state.positions_px.shape[0], job.spec),
                "propagation": state.propagator.name,
                "probe_modes": int(state.probe.shape[0]),
                "iterations_done": int(state.iterations_done),
                "start": start_kind,
                "position_change_rms_px": float(
                    np.sqrt(
                        np.mean(np.sum((state.positions_px - state.start_positions_px) ** 2, 1))
                    )
                ),
            },
            state=state,
            positions_px=state.positions_px.copy(),
        )

    def save_state(self, state: Any, folder: Path) -> list[Path]:
        """Iterative runs keep no state file: the product holds object, probe, positions."""
        return []

    def load_state(self, folder: Path, info: dict[str, Any], job: Job) -> Any:
        raise PtychoError(
            f"{folder}: an iterative run continues from its product; start a new run instead"
        )

    def predict_pattern(
        self, state: Any, data: DiffractionData, spec: RunSpec, index: int
    ) -> tuple[np.ndarray, np.ndarray]:
        if not 0 <= index < data.n_patterns:
            raise PtychoError(f"scan position {index} does not exist (0..{data.n_patterns - 1})")
        rows = np.array([index])
        _, _, patches = state.patches(rows)
        waves = state.propagator.forward(state.probe[np.newaxis] * patches[:, np.newaxis])
        model = np.sqrt(np.sum(np.abs(waves) ** 2, axis=1))[0]
        measured = state.measured[index]
        if state.propagator.name == "far-field":  # back to the centred layout of the views
            model = np.fft.fftshift(model)
            measured = np.fft.fftshift(measured)
        return measured.astype(np.float32), model.astype(np.float32)


def rpie() -> IterativeReconstructor:
    """rPIE (mini-batch; a batch of one is the sequential algorithm)."""
    return IterativeReconstructor("rpie", "rPIE (iterative)", rpie_iteration)


def lsqml() -> IterativeReconstructor:
    """The LSQML-style batched solver (Gaussian or Poisson noise)."""
    return IterativeReconstructor("lsqml", "LSQML (iterative, batched)", lsqml_iteration)
