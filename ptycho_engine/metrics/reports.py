"""Score reports: :class:`ChannelScores`, :class:`QualityReport`, and the one naming of scores.

Plain frozen dataclasses with their JSON form, the flag text of a report, the NaN scores of an
empty region, and :data:`SCORE_NAMES`, :data:`CHANNELS` and :func:`flat_scores`, the names
every table and results file uses. No numerics here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ptycho_engine.jsonio import json_float

#: The scores of each channel, in the order tables and results files list them; a score's
#: name everywhere (results columns, run table, comparison) is ``<channel>_<score>``, e.g.
#: ``amplitude_ssim`` or ``phase_frc_1_7_px`` (:func:`flat_scores`).
SCORE_NAMES = ("ssim", "psnr", "mae", "rmse", "frc_1_7_px", "frc_halfbit_px")
CHANNELS = ("amplitude", "phase")


@dataclass(frozen=True)
class ChannelScores:
    """Scores of one real channel (amplitude or phase) against the reference.

    Attributes
    ----------
    ssim : float
        Mean structural similarity over the scored pixels, in [-1, 1]; NaN when the reference
        is constant over the region (SSIM is then undefined), or when the scored region is
        smaller than 8 x 8 px or empty (see :attr:`QualityReport.flags`).
    psnr : float
        Peak signal-to-noise ratio in dB, peak = range of the reference over the region;
        ``inf`` for identical images, NaN for a constant reference or when nothing is scored.
    mae : float
        Mean absolute error (amplitude units, or radians for the phase); NaN when nothing is
        scored.
    rmse : float
        Root-mean-square error (same units as ``mae``).
    frc_1_7_px, frc_halfbit_px : float
        FRC resolution in pixels at the 1/7 and half-bit thresholds: 2.0 when the FRC never
        drops below the threshold (Nyquist), ``inf`` when it is below from the start; NaN
        when the scored region is smaller than 8 x 8 px or empty.
    frc_1_7_m, frc_halfbit_m : float or None
        The same in metres (``px * pixel_size_m``); None when the pixel size is unknown.
    """

    ssim: float
    psnr: float
    mae: float
    rmse: float
    frc_1_7_px: float
    frc_halfbit_px: float
    frc_1_7_m: float | None = None
    frc_halfbit_m: float | None = None

    def to_dict(self) -> dict[str, float | str | None]:
        """Return the scores as JSON primitives.

        Finite numbers become Python floats; non-finite numbers become the strings ``"inf"``,
        ``"-inf"`` or ``"nan"`` (strict JSON has no infinity), and missing values (the ``_m``
        fields without a pixel size) stay ``None``.
        """
        return {
            "ssim": json_float(self.ssim),
            "psnr": json_float(self.psnr),
            "mae": json_float(self.mae),
            "rmse": json_float(self.rmse),
            "frc_1_7_px": json_float(self.frc_1_7_px),
            "frc_halfbit_px": json_float(self.frc_halfbit_px),
            "frc_1_7_m": json_float(self.frc_1_7_m),
            "frc_halfbit_m": json_float(self.frc_halfbit_m),
        }


@dataclass(frozen=True)
class QualityReport:
    """Amplitude and phase scores of an estimate against a reference, with the region used.

    Attributes
    ----------
    amplitude : ChannelScores
        Scores of ``|estimate|`` (aligned) against ``|reference|``.
    phase : ChannelScores
        Scores of the aligned estimate's phase against the reference phase (radians).
    region : str
        Human-readable description of the scored region, e.g.
        ``"valid stitched area: 12345 px, bbox y 10:300, x 12:298"``, or
        ``"valid stitched area: 0 px, nothing scored"``.
    n_pixels : int
        Number of scored pixels; 0 when nothing is scored.
    shift_px : tuple of float
        ``(dy, dx)`` registration shift applied to the estimate, in pixels (see
        :func:`register_shift` for the sign); ``(0.0, 0.0)`` without registration.
    flags : tuple of str
        One sentence per step or score that could not be computed, and why, e.g.
        ``"registration skipped: estimate is constant"`` or ``"SSIM and FRC not computed:
        scored region 3 x 1 px is smaller than 8 x 8 px"``; empty when everything was computed.
        The scores concerned are NaN. See :func:`flag_text`.
    """

    amplitude: ChannelScores
    phase: ChannelScores
    region: str
    n_pixels: int
    shift_px: tuple[float, float]
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """Return the report as JSON primitives (see :meth:`ChannelScores.to_dict`).

        ``shift_px`` becomes a list of two floats and ``flags`` a list of strings;
        ``json.dumps(report.to_dict(), allow_nan=False)`` always succeeds.
        """
        return {
            "amplitude": self.amplitude.to_dict(),
            "phase": self.phase.to_dict(),
            "region": self.region,
            "n_pixels": int(self.n_pixels),
            "shift_px": [float(self.shift_px[0]), float(self.shift_px[1])],
            "flags": [str(flag) for flag in self.flags],
        }


def flag_text(report: QualityReport) -> str:
    """Return the report's flags as one line, for a CSV column or a tooltip.

    Parameters
    ----------
    report : QualityReport
        A report from :func:`compare` or :func:`chance_level`.

    Returns
    -------
    str
        The flags joined by ``"; "``, in the order the steps ran; ``""`` when there are none.
    """
    return "; ".join(report.flags)


def _nan_scores(pixel_size_m: float | None) -> ChannelScores:
    """Scores of a channel with nothing scored: NaN, and the metre fields NaN or None."""
    metres = None if pixel_size_m is None else math.nan
    return ChannelScores(
        ssim=math.nan,
        psnr=math.nan,
        mae=math.nan,
        rmse=math.nan,
        frc_1_7_px=math.nan,
        frc_halfbit_px=math.nan,
        frc_1_7_m=metres,
        frc_halfbit_m=metres,
    )


def _empty_report(label: str, pixel_size_m: float | None, flags: list[str]) -> QualityReport:
    """Report with nothing scored: NaN scores, 0 pixels, no shift."""
    return QualityReport(
        amplitude=_nan_scores(pixel_size_m),
        phase=_nan_scores(pixel_size_m),
        region=f"{label}: 0 px, nothing scored",
        n_pixels=0,
        shift_px=(0.0, 0.0),
        flags=tuple(flags),
    )


def flat_scores(report: QualityReport, prefix: str = "") -> dict[str, float]:
    """The report's scores as ``{prefix + channel + "_" + score: value}`` floats (NaN kept),
    the one naming of scores in the engine and the app."""
    return {
        f"{prefix}{channel}_{name}": float(getattr(getattr(report, channel), name))
        for channel in CHANNELS
        for name in SCORE_NAMES
    }
