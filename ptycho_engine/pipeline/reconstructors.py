"""The reconstructor contract, and the registry the pipeline picks reconstructors from.

A reconstructor turns prepared data into an object. It receives a :class:`Job` (prepared data,
the probe, the run's spec, a stop event and an optional warm start) and is a generator of the
pipeline's events (:mod:`ptycho_engine.pipeline.events`) that returns an :class:`Outcome`.
It stops within one step (or iteration) when the job's stop event is set. The pipeline does
everything around it the same way for every reconstructor: reading, preparing, scoring against
the ground truth, timing and the run folder. Adding a reconstructor is one class and one
:func:`register` call; no front end changes beyond a name in a menu or an argument.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ptycho_engine.data import DiffractionData, StitchSnapshot, TrainingSnapshot
from ptycho_engine.errors import ConfigError
from ptycho_engine.pipeline.events import Event
from ptycho_engine.pipeline.spec import RunSpec


@dataclass(frozen=True, eq=False)
class Job:
    """What a reconstructor gets.

    Attributes
    ----------
    data : DiffractionData
        Prepared patterns of size ``spec.model.N``.
    probe : ndarray, (K, N, N) complex64, or None
        The probe to start from, strongest mode first; None when neither the data nor a probe
        file has one (only for reconstructors that make their own guess).
    spec : RunSpec
    stop_event : threading.Event
    warm_start : object
        A state returned by an earlier run of the same reconstructor (e.g. trained models),
        or None to start from scratch.
    """

    data: DiffractionData
    probe: np.ndarray | None
    spec: RunSpec
    stop_event: threading.Event
    warm_start: Any = None


@dataclass(frozen=True, eq=False)
class Outcome:
    """What a reconstructor returns to the pipeline.

    Attributes
    ----------
    reconstruction : StitchSnapshot or None
        The final object (for a stopped run, the last one made; None if none).
    probe_modes : ndarray, (K, N, N) complex64
        The probe used, strongest mode first.
    history : tuple of TrainingSnapshot
        One snapshot per epoch or iteration (without previews).
    steps : int
    stopped : bool
    timings_s : dict of str to float
        The reconstructor's parts (e.g. ``train``, ``previews``, ``reconstruct``).
    details : dict
        Facts for ``run.json`` (JSON primitives).
    state : object
        Reusable state (a warm start for the next run), or None.
    positions_px : ndarray, (M, 2) float64, optional
        The scan positions the reconstruction is in, when the reconstructor refined them
        (None: the data's).
    """

    reconstruction: StitchSnapshot | None
    probe_modes: np.ndarray
    history: tuple[TrainingSnapshot, ...]
    steps: int
    stopped: bool
    timings_s: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    state: Any = None
    positions_px: np.ndarray | None = None


class Reconstructor(Protocol):
    """What the pipeline needs of a reconstructor."""

    name: str
    #: What menus and tables show, e.g. "PINN (physics-informed network)".
    title: str
    #: Whether it reconstructs near-field (Fresnel) holograms as well as far-field patterns.
    near_field: bool
    #: Whether it needs a probe to start (False: it makes a guess from the data).
    needs_probe: bool

    def run(self, job: Job) -> Generator[Event, None, Outcome]:
        """Reconstruct; yield events; stop within one step when ``job.stop_event`` is set."""
        ...

    def save_state(self, state: Any, folder: Path) -> list[Path]:
        """Write ``state`` into a run folder (e.g. weights); the files written."""
        ...

    def load_state(self, folder: Path, info: dict[str, Any], job: Job) -> Any:
        """The state saved in ``folder`` (whose ``run.json`` is ``info``), ready for ``job``."""
        ...

    def predict_pattern(
        self, state: Any, data: DiffractionData, spec: RunSpec, index: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Measured and predicted amplitudes ``(N, N)`` float32 of scan position ``index``."""
        ...


_REGISTRY: dict[str, Callable[[], Reconstructor]] = {}


def register(name: str, factory: Callable[[], Reconstructor]) -> None:
    """Make a reconstructor available under ``name`` (``factory`` builds it on first use)."""
    _REGISTRY[name] = factory


def reconstructor_names() -> tuple[str, ...]:
    """Names of the registered reconstructors, in registration order."""
    return tuple(_REGISTRY)


def get_reconstructor(name: str) -> Reconstructor:
    """The reconstructor registered as ``name``.

    Raises
    ------
    ConfigError
        No reconstructor has that name.
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"reconstructor {name!r} is unknown: choose one of {reconstructor_names()}"
        ) from None
    return factory()


def _pinn() -> Reconstructor:
    from ptycho_engine.pipeline.pinn import PinnReconstructor

    return PinnReconstructor()


def _rpie() -> Reconstructor:
    from ptycho_engine.solvers.reconstructor import rpie

    return rpie()


def _lsqml() -> Reconstructor:
    from ptycho_engine.solvers.reconstructor import lsqml

    return lsqml()


register("pinn", _pinn)
register("rpie", _rpie)
register("lsqml", _lsqml)
