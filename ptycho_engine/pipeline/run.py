"""The one reconstruction pipeline: read, prepare, reconstruct, score; a generator of events.

:func:`run` is what the command line, the study runner and the app's worker all call:

1. read the data (when given a :class:`~ptycho_engine.pipeline.spec.DataSource`);
2. prepare them for the spec's ``N`` (:func:`prepare_data`: crop or bin, centring, geometry);
3. choose the probe (:func:`resolve_probe`: a probe file, else every mode of the data's probe);
4. run the reconstructor (:mod:`ptycho_engine.pipeline.reconstructors`), scoring every
   stitched epoch against the ground truth when the data have one;
5. score the final reconstruction (:func:`score`) and return a
   :class:`~ptycho_engine.pipeline.events.RunResult` with timings.

:func:`ptycho_engine.runs.write_run_folder` then writes the result. Nothing here imports
TensorFlow; the reconstructor does, when it runs.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

import numpy as np

from ptycho_engine.data import DiffractionData, StepProgress, StitchSnapshot
from ptycho_engine.errors import DataError
from ptycho_engine.pipeline.events import (
    EpochFinished,
    Event,
    RunResult,
    Scores,
    StageChanged,
)
from ptycho_engine.pipeline.reconstructors import Job, get_reconstructor
from ptycho_engine.pipeline.spec import DataSource, Preparation, RunSpec
from ptycho_engine.streams import relay

#: Formats whose patterns are already centred amplitudes in the engine's conventions: they are
#: prepared only when their size or geometry must change.
NATIVE_FORMATS = ("pinn-npz", "simulation")
PREPARED_KEY = "prepared"


def load_source(source: DataSource) -> DiffractionData:
    """Read a data file (format from its content; a profile for generic files)."""
    from ptycho_engine.io import read_data

    return read_data(source.path, source.profile or None, **source.options)


def prepare_data(
    data: DiffractionData, preparation: Preparation, allow_near_field: bool = False
) -> DiffractionData:
    """The patterns of ``data`` ready for ``preparation.N`` (physics.md section 6).

    Native files (:data:`NATIVE_FORMATS`) of the right size and without geometry overrides
    are used as they are; everything else goes through :func:`ptycho_engine.io.prepare`
    (crop or bin, centring of corner-origin patterns, geometry). Data this function prepared
    already for the same preparation are returned unchanged, so a front end may cache them.
    Near-field holograms are refused unless ``allow_near_field`` (a reconstructor with a
    near-field propagator asks for them).
    """
    from ptycho_engine.io import prepare

    wanted = _preparation_record(preparation)
    if data.provenance.get(PREPARED_KEY) == wanted:
        return data
    n = data.N if preparation.N is None else preparation.N
    native = data.provenance.get("format") in NATIVE_FORMATS
    if native and n == data.N and not preparation.overrides:
        prepared = data
    else:
        geometry = preparation.overrides
        prepared = prepare(
            data,
            n,
            preparation.mode,
            energy_ev=geometry.get("energy_ev"),
            distance_m=geometry.get("distance_m"),
            detector_pixel_m=geometry.get("detector_pixel_m"),
            allow_near_field=allow_near_field,
        )
    provenance = {**prepared.provenance, PREPARED_KEY: wanted}
    return prepared.replace(provenance=provenance)


def _preparation_record(preparation: Preparation) -> dict[str, Any]:
    return {"N": preparation.N, "mode": preparation.mode, **preparation.overrides}


def resolve_probe(spec: RunSpec, data: DiffractionData, required: bool = True) -> np.ndarray | None:
    """The probe a run starts from, ``(K, N, N)`` complex64, strongest mode first.

    A probe file (``spec.probe_path``) replaces the data's probe; otherwise every incoherent
    mode of the data's probe is used. Without either: None when not ``required`` (the
    reconstructor makes its own guess). A probe file of another size is refused unless
    ``spec.probe_resample``: it is then Fourier-resampled to ``N`` (same field of view), or,
    when the probe file and the data both give an object pixel size, to the data's pixel and
    fitted to ``N x N`` (:func:`ptycho_engine.io.read_probe` with ``resample=True``; the
    probe's steps say which).

    Raises
    ------
    DataError
        No probe file and no probe in the data (when required), or a probe that does not
        fit ``N`` (without ``spec.probe_resample``).
    """
    if spec.probe_path:
        from ptycho_engine.io import read_probe

        n = data.N
        if spec.probe_resample:
            read = read_probe(spec.probe_path, n, pixel_size_m=data.pixel_size_m, resample=True)
        else:
            read = read_probe(spec.probe_path)
            h, w = read.modes.shape[-2:]
            if (h, w) != (n, n):
                other = f"choose N={h}" if h == w else "choose a square probe"
                raise DataError(
                    f"{spec.probe_path}: the probe is {h}x{w} but the patterns are prepared to "
                    f"N={n}: resample the probe to N ('Resample to N' in the app) or {other}"
                )
        return np.asarray(read.modes, np.complex64).reshape(-1, n, n)
    probe = data.probe_all_modes
    if probe is None and not required:
        return None
    if probe is None:
        source = data.provenance.get("path", "the data")
        raise DataError(f"{source}: no probe in the file: choose a probe file")
    return np.asarray(probe, np.complex64)


def score(image: StitchSnapshot, data: DiffractionData) -> Scores | None:
    """Scores of a stitched object against the data's ground truth (None without one)."""
    if data.object_gt is None:
        return None
    from ptycho_engine.metrics import chance_level, compare
    from ptycho_engine.stitching import reference_region

    reference = reference_region(data.object_gt, image.origin_px, image.object.shape)
    return Scores(
        compare(image.object, reference, image.valid, data.pixel_size_m),
        chance_level(reference, image.valid, data.pixel_size_m),
    )


def data_info(data: DiffractionData, raw: DiffractionData) -> dict[str, Any]:
    """What a run read, for ``run.json``: the file and the prepared patterns."""
    provenance = data.provenance
    return {
        "path": provenance.get("path"),
        "format": provenance.get("format"),
        "sha256": provenance.get("sha256"),
        "patterns": data.n_patterns,
        "N": data.N,
        "detector_N": raw.N,
        "photons_per_pattern": data.photons_per_pattern,
        "pixel_size_m": data.pixel_size_m,
        "energy_ev": data.energy_ev,
        "distance_m": data.distance_m,
        "detector_pixel_m": data.detector_pixel_m,
        "has_ground_truth": data.object_gt is not None,
        "steps": list(provenance.get("steps", [])),
    }


def run(
    spec: RunSpec,
    data: DiffractionData | DataSource,
    *,
    stop_event: threading.Event | None = None,
    warm_start: Any = None,
) -> Generator[Event, None, RunResult]:
    """Run ``spec`` on ``data``: a generator of events that returns the result.

    Parameters
    ----------
    spec : RunSpec
    data : DiffractionData or DataSource
        Data as read (they are prepared here), or a file to read.
    stop_event : threading.Event, optional
        When set, the reconstructor stops within one step; the result is then marked
        ``stopped`` and holds the last image made (no final reconstruction is waited for).
    warm_start : object, optional
        A state of an earlier run of the same reconstructor (the PINN's trained models).

    Yields
    ------
    Event
        :class:`StageChanged`, :class:`Notice`, step progress, :class:`EpochFinished` (with
        scores for stitched epochs when the data have a ground truth) and
        :class:`PartialImage`.

    Returns
    -------
    RunResult
    """
    start = time.perf_counter()
    stop = stop_event if stop_event is not None else threading.Event()
    timings: dict[str, float] = {}
    if isinstance(data, DataSource):
        yield StageChanged("reading data", 0.0, data.path)
        raw = load_source(data)
        timings["load"] = time.perf_counter() - start
    else:
        raw = data
    t0 = time.perf_counter()
    yield StageChanged("preparing data", t0 - start)
    reconstructor = get_reconstructor(spec.reconstructor)
    prepared = prepare_data(raw, spec.preparation, reconstructor.near_field)
    probe = resolve_probe(spec, prepared, reconstructor.needs_probe)
    timings["prepare"] = time.perf_counter() - t0
    job = Job(prepared, probe, spec, stop, warm_start)
    history: list[dict[str, Any]] = []
    last_scored: list[Any] = []  # [image, its scores] of the newest scored epoch
    preview_scoring_s = 0.0
    scoring_s = 0.0

    progress: list[StepProgress] = []  # the newest step progress (a network's)

    def scored(event: Event) -> Iterator[Event]:
        # a generator: what it yields before the scoring reaches the front end before it
        nonlocal preview_scoring_s
        if isinstance(event, StepProgress):
            progress[:] = [event]
        if not isinstance(event, EpochFinished):
            yield event
            return
        snap = event.snapshot
        scores = None
        if snap.preview is not None and prepared.object_gt is not None:
            if progress:
                # scoring an image takes seconds: say so, as progress of the epoch
                yield dataclasses.replace(
                    progress[0], stage="scoring the preview", elapsed_s=snap.elapsed_s
                )
            t_score = time.perf_counter()
            scores = score(snap.preview, prepared)
            last_scored[:] = [snap.preview, scores]
            preview_scoring_s += time.perf_counter() - t_score
        history.append({**snap.record(), "metrics": None if scores is None else scores.to_dict()})
        if scores is None:
            yield event
            return
        yield EpochFinished(snap, scores.report, scores.chance)

    outcome = yield from relay(reconstructor.run(job), scored)
    final = outcome.reconstruction
    final_scores = last_scored[1] if last_scored and last_scored[0] is final else None
    if final is not None and final_scores is None and prepared.object_gt is not None:
        # (an image scored as an epoch's preview already is not scored twice)
        yield StageChanged("scoring", time.perf_counter() - start)
        t_score = time.perf_counter()
        final_scores = score(final, prepared)
        scoring_s += time.perf_counter() - t_score
    timings.update(outcome.timings_s)
    timings["preview_scoring"] = preview_scoring_s
    timings["scoring"] = scoring_s
    timings["total"] = time.perf_counter() - start
    return RunResult(
        spec=spec,
        reconstructor=reconstructor.name,
        reconstruction=outcome.reconstruction,
        probe_modes=outcome.probe_modes,
        positions_px=prepared.positions_px
        if outcome.positions_px is None
        else outcome.positions_px,
        scores=final_scores,
        history=tuple(history),
        steps=outcome.steps,
        stopped=outcome.stopped,
        timings_s=timings,
        data_info=data_info(prepared, raw),
        details=outcome.details,
        state=outcome.state,
        data=prepared,
    )
