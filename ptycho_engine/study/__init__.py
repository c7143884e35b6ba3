"""Reconstruction-quality studies: sweep N, gridsize, dose and loss over seeds (physics.md 3, 8-10).

A study trains and scores one model per *setting* (N, gridsize, photons per pattern, loss,
seed) on simulated data whose ground truth is known, and writes one folder:

* ``study.json``: the :class:`StudySpec`; a folder holds exactly one study;
* ``results.json`` and ``results.csv``: one row per finished setting (columns
  :data:`COLUMNS`), rewritten atomically after every setting, rows in the spec's order;
* ``runs/<setting-id>/``: ``reconstruction.npz``, a ptychodus product ``reconstruction.h5``,
  ``amplitude.png``, ``phase.png`` and ``run.json``;
* ``dose_response.png``, ``convergence.png`` (scores after 50 %, 75 % and 100 % of the
  epochs, :data:`CHECKPOINT_FRACTIONS`) and ``reconstructions_amplitude.png`` /
  ``reconstructions_phase.png`` once every setting is done.

Data of a setting. For each seed there is one ground-truth object, shared by every setting of
that seed. It is sized for the largest supported N (``SUPPORTED_N[-1]``) whatever the study
sweeps, so a setting's data (and its id) never depend on the other settings of the study. The
scan at N is ``make_scan(scan, positions, N / 8, ...)`` around the object's centre: the same
pattern scaled with N, so the overlap is the same at every N. The probe is made at each N. The
Poisson noise depends on (seed, N, photons) only, so the losses and gridsizes of one seed, N and
dose are compared on the very same patterns. Every random stream is derived from the seed with
:func:`derived_seed`.

Determinism. A setting is fully determined by its settings and seed: data as above, weight
initialisation from ``TrainingConfig.seed`` (explicitly seeded Keras initialisers), shuffling
from ``numpy.random.default_rng(TrainingConfig.seed)``, the group draw from
``DataConfig.seed``. No global random state (``keras.utils.set_random_seed``) is read or set.

Executors. ``"local"`` runs the settings one after another in the calling process; ``"dask"``
submits one task per setting to a ``distributed`` cluster (a ``LocalCluster`` of single-thread
worker processes, or an existing scheduler) and writes each result as it arrives. The tasks
return arrays; every file is written by the calling process, so the workers need no access to
the output folder and the files do not depend on the executor.

Resume. A setting id is a readable prefix plus a hash of everything that determines the
setting's result (:func:`setting_key`). Running a study into a folder that already holds the
same spec runs only the settings missing from ``results.json``; a different spec is refused.

Modules, by concern:

* :mod:`~ptycho_engine.study.spec`: :class:`StudySpec`, :class:`StudySetting`, :data:`LOSSES`,
  validation and :func:`dose_label`;
* :mod:`~ptycho_engine.study.columns`: the names of the results columns;
* :mod:`~ptycho_engine.study.data`: the ground truth, scan, probe and patterns of a setting;
* :mod:`~ptycho_engine.study.runner`: a setting's configs and id, and :func:`run_setting`;
* :mod:`~ptycho_engine.study.store`: the files of a study folder;
* :mod:`~ptycho_engine.study.aggregate`: reading a folder back and summarising it (the grid,
  series over seeds, labels), for the figures and the app;
* :mod:`~ptycho_engine.study.figures`: the figures;
* :mod:`~ptycho_engine.study.executors`: the executors, :func:`study` and :func:`run_study`.

This package never imports Qt, and it imports TensorFlow only inside the functions that train.
"""

from __future__ import annotations

from ptycho_engine.study.aggregate import (
    CONVERGENCE_FRACTIONS,
    DOSE_METRICS,
    LOG_AXIS_METRICS,
    Series,
    SsimProgress,
    StudyFolder,
    StudyGrid,
    chance_mean,
    column_label,
    convergence_series,
    dose_row_label,
    dose_series,
    setting_of_row,
    ssim_progress,
    study_grid,
)
from ptycho_engine.study.columns import (
    CHECKPOINT_COLUMNS,
    CHECKPOINT_FRACTIONS,
    COLUMNS,
    METRIC_COLUMNS,
    SETTING_COLUMNS,
    TIMING_COLUMNS,
    checkpoint_column,
)
from ptycho_engine.study.data import (
    OBJECT_MARGIN_PX,
    STEP_FRACTION,
    derived_seed,
    ground_truth,
    object_shape,
    simulate_setting,
)
from ptycho_engine.study.executors import (
    EXECUTORS,
    StudyProgress,
    StudyResult,
    pending_settings,
    run_study,
    study,
)
from ptycho_engine.study.figures import (
    write_convergence,
    write_dose_response,
    write_figures,
    write_grid,
)
from ptycho_engine.study.runner import (
    SettingOutcome,
    checkpoint_epochs,
    configs,
    limit_tensorflow_threads,
    run_setting,
    run_spec,
    setting_id,
    setting_key,
)
from ptycho_engine.study.spec import (
    LOSSES,
    STUDY_FORMAT,
    StudyError,
    StudySetting,
    StudySpec,
    dose_label,
)
from ptycho_engine.study.store import (
    CONVERGENCE_FIGURE,
    DOSE_FIGURE,
    GRID_FIGURES,
    RESULTS_CSV,
    RESULTS_JSON,
    RUNS_DIR,
    STUDY_JSON,
    read_results,
    read_spec,
    run_folder,
    write_results,
    write_setting_folder,
)

__all__ = [
    "CHECKPOINT_COLUMNS",
    "CHECKPOINT_FRACTIONS",
    "COLUMNS",
    "CONVERGENCE_FIGURE",
    "CONVERGENCE_FRACTIONS",
    "DOSE_FIGURE",
    "DOSE_METRICS",
    "EXECUTORS",
    "GRID_FIGURES",
    "LOG_AXIS_METRICS",
    "LOSSES",
    "METRIC_COLUMNS",
    "OBJECT_MARGIN_PX",
    "RESULTS_CSV",
    "RESULTS_JSON",
    "RUNS_DIR",
    "SETTING_COLUMNS",
    "STEP_FRACTION",
    "STUDY_FORMAT",
    "STUDY_JSON",
    "TIMING_COLUMNS",
    "Series",
    "SettingOutcome",
    "SsimProgress",
    "StudyError",
    "StudyFolder",
    "StudyGrid",
    "StudyProgress",
    "StudyResult",
    "StudySetting",
    "StudySpec",
    "chance_mean",
    "checkpoint_column",
    "checkpoint_epochs",
    "column_label",
    "configs",
    "convergence_series",
    "derived_seed",
    "dose_label",
    "dose_row_label",
    "dose_series",
    "ground_truth",
    "limit_tensorflow_threads",
    "object_shape",
    "pending_settings",
    "read_results",
    "read_spec",
    "run_folder",
    "run_setting",
    "run_spec",
    "run_study",
    "setting_id",
    "setting_key",
    "setting_of_row",
    "simulate_setting",
    "ssim_progress",
    "study",
    "study_grid",
    "write_convergence",
    "write_dose_response",
    "write_figures",
    "write_grid",
    "write_results",
    "write_setting_folder",
]
