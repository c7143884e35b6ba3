"""One reconstruction pipeline for the app, the command line and the studies.

A run is one :class:`RunSpec` (made by :func:`recipe`, the one set of defaults) and one
generator of events (:func:`run`) that returns a :class:`RunResult`; the run folder is written
by :func:`ptycho_engine.runs.write_run_folder`. A reconstructor plugs in through
:func:`register` (:mod:`ptycho_engine.pipeline.reconstructors`). Importing this package
imports no TensorFlow.
"""

from __future__ import annotations

from ptycho_engine.pipeline.events import (
    STAGES,
    EpochFinished,
    Event,
    Notice,
    PartialImage,
    RunResult,
    Scores,
    StageChanged,
)
from ptycho_engine.pipeline.reconstructors import (
    Job,
    Outcome,
    Reconstructor,
    get_reconstructor,
    reconstructor_names,
    register,
)
from ptycho_engine.pipeline.run import (
    data_info,
    load_source,
    prepare_data,
    resolve_probe,
    run,
    score,
)
from ptycho_engine.pipeline.spec import (
    LOSSES,
    DataSource,
    Preparation,
    RunSpec,
    recipe,
)
from ptycho_engine.pipeline.warm import WarmStarts

__all__ = [
    "LOSSES",
    "STAGES",
    "DataSource",
    "EpochFinished",
    "Event",
    "Job",
    "Notice",
    "Outcome",
    "PartialImage",
    "Preparation",
    "Reconstructor",
    "RunResult",
    "RunSpec",
    "Scores",
    "StageChanged",
    "WarmStarts",
    "data_info",
    "get_reconstructor",
    "load_source",
    "prepare_data",
    "recipe",
    "reconstructor_names",
    "register",
    "resolve_probe",
    "run",
    "score",
]
