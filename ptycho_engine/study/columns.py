"""Names of the columns of a study's results (``results.csv``, ``results.json``).

They are shared by the runner that fills a row, the files that store it, the figures and the
app's aggregation, so they live apart from all of them.
"""

from __future__ import annotations

from ptycho_engine.metrics import SCORE_NAMES

#: Scores of each channel (amplitude, phase) against the ground truth and the chance level:
#: the engine's one list of score names.
CHANNEL_SCORES = SCORE_NAMES
#: Fractions of a setting's epochs after which it is scored too, so that every row shows
#: whether its scores were still changing: a converged setting scores the same at 75 % of its
#: epochs as at the end.
CHECKPOINT_FRACTIONS = (0.5, 0.75)


def checkpoint_column(channel: str, fraction: float) -> str:
    """Results column of the SSIM of ``channel`` after ``fraction`` of the epochs, e.g.
    ``"phase_ssim_at_75pct"``; the final score's own column (``"phase_ssim"``) for 1."""
    if fraction == 1.0:
        return f"{channel}_ssim"
    return f"{channel}_ssim_at_{round(100 * fraction)}pct"


CHECKPOINT_COLUMNS = tuple(
    checkpoint_column(channel, f)
    for f in CHECKPOINT_FRACTIONS
    for channel in ("amplitude", "phase")
)
SETTING_COLUMNS = (
    "setting_id",
    "N",
    "gridsize",
    "photons",
    "loss",
    "seed",
    "epochs",
    "positions",
    "object",
    "scan",
    "probe",
    "n_filters_scale",
    "two_decoders",
    "validation",
    "batch_size",
    "learning_rate",
    "mae_warmup_epochs",
    "algorithm",
    "iterations",
)
#: Columns that must not depend on where or when a setting ran.
METRIC_COLUMNS = (
    *(f"amplitude_{s}" for s in CHANNEL_SCORES),
    *(f"phase_{s}" for s in CHANNEL_SCORES),
    *(f"chance_amplitude_{s}" for s in CHANNEL_SCORES),
    *(f"chance_phase_{s}" for s in CHANNEL_SCORES),
    "scored_pixels",
    "shift_y_px",
    "shift_x_px",
    "measured_photons",
    "epochs_run",
    "steps",
    "final_loss",
    "final_val_loss",
    "predicted_to_measured_counts",
    "saturated_fraction",
    *CHECKPOINT_COLUMNS,
)
TIMING_COLUMNS = ("train_time_s", "reconstruct_time_s", "checkpoint_time_s", "setting_time_s")
#: What the scoring could not compute, and why ("" when it computed everything).
FLAGS_COLUMN = "quality_flags"
COLUMNS = (*SETTING_COLUMNS, *METRIC_COLUMNS, "region", FLAGS_COLUMN, *TIMING_COLUMNS)
