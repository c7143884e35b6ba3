"""Warm starts: the states of earlier runs, kept so the next run need not start from scratch.

A run whose model, preparation and probe are those of an earlier run starts from that run's
state (``"cached"``: weights trained before for exactly these settings). A run with a new probe
but the same network starts from the newest state of that network (``"transfer"``: the
network's weights, fine-tuned with the new probe's physics). Otherwise it starts from scratch.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np

from ptycho_engine.pipeline.spec import RunSpec

#: States kept at most (least recently used first out): a model of N 64 is a few MB.
MAX_STATES = 8
STARTS = ("scratch", "cached", "transfer")


def probe_digest(probe: np.ndarray | None) -> str:
    """A short hash of a probe's values (complex64), to key states by probe ("guess" for a
    run that starts from the reconstructor's own guess)."""
    if probe is None:
        return "guess"
    return hashlib.sha1(np.ascontiguousarray(probe, np.complex64).tobytes()).hexdigest()[:16]


class WarmStarts:
    """The states of earlier runs, by settings (not thread-safe: use it from one thread)."""

    def __init__(self, max_states: int = MAX_STATES) -> None:
        self.max_states = max_states
        self._states: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._latest: dict[tuple[Any, ...], Any] = {}

    @staticmethod
    def _keys(spec: RunSpec, probe: np.ndarray | None) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        if spec.reconstructor == "pinn":
            network: tuple[Any, ...] = (spec.reconstructor, spec.model, spec.preparation)
        else:
            # a solver continues only with the same settings (how many iterations and how
            # often it shows the object do not matter)
            solver = dataclasses.replace(spec.solver, iterations=0, preview_every=0)
            network = (spec.reconstructor, solver, spec.preparation)
        return (*network, probe_digest(probe)), network

    def lookup(self, spec: RunSpec, probe: np.ndarray | None) -> tuple[Any, str]:
        """``(state, start)``: the state to start ``spec`` with the probe ``probe`` from, and
        which start it is (one of :data:`STARTS`; the state is None for ``"scratch"``)."""
        key, network = self._keys(spec, probe)
        if key in self._states:
            self._states.move_to_end(key)
            return self._states[key], "cached"
        if network in self._latest:
            return self._latest[network], "transfer"
        return None, "scratch"

    def keep(self, spec: RunSpec, probe: np.ndarray | None, state: Any) -> None:
        """Remember the state a run of ``spec`` with the probe ``probe`` ended with."""
        if state is None:
            return
        key, network = self._keys(spec, probe)
        self._states[key] = state
        self._states.move_to_end(key)
        self._latest[network] = state
        while len(self._states) > self.max_states:
            old_key, old = self._states.popitem(last=False)
            if self._latest.get(old_key[:3]) is old:
                del self._latest[old_key[:3]]

    def clear(self) -> None:
        """Forget every state (new data: the old weights belong to another file)."""
        self._states.clear()
        self._latest.clear()
