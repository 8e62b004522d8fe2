"""Is a property model's σ honest? Calibration curve (expected vs observed coverage of its intervals) and σ against
the absolute error of each validation prediction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from aiida_nanoos.models.calibration import calibration_curve, coverage, miscalibration_area
from aiida_nanoos.plots.common import COLORS, LEGEND_SIZE, TITLE_SIZE, label_axes, new_figure, note, with_unit

#: Coverage of central Gaussian intervals of 1 and 2 σ: where a stored calibration summary puts its points.
SIGMA_LEVELS = {"coverage_1sigma": 0.6827, "coverage_2sigma": 0.9545}


def calibration_figure(
    errors: Sequence[float] | None = None,
    sigma: Sequence[float] | None = None,
    *,
    summary: Mapping[str, float] | None = None,
    target: str = "property",
    units: str = "",
    title: str = "Property model calibration",
    subset: str = "validation split",
) -> Figure:
    """Left: fraction of errors inside the central interval of each probability, against that probability (the
    diagonal is perfect calibration; below it σ is too small). Right: σ against |error| with the 1σ and 2σ lines.

    ``errors`` (true − predicted) and ``sigma`` per prediction give both panels; with only a stored ``summary``
    (``coverage_1sigma``, ``coverage_2sigma``, ``miscalibration_area``) the left panel shows those two points and
    the right one says the per-prediction errors were not stored.
    """
    figure, (ax_cal, ax_sig) = new_figure(1, 2, width=5.0, height=4.6)
    ax_cal.plot([0, 1], [0, 1], "--", color="black", lw=1, label="perfect calibration")
    label_axes(ax_cal, "expected coverage (interval probability)", "observed coverage", "calibration curve")
    label_axes(ax_sig, with_unit(f"|error| of {target}", units), with_unit("predicted σ", units), "σ vs |error|")
    if errors is not None and sigma is not None:
        errors, sigma = np.asarray(errors, float), np.asarray(sigma, float)
        if errors.shape != sigma.shape:
            raise ValueError(f"{errors.size} errors but {sigma.size} uncertainties")
        expected, observed = calibration_curve(errors, sigma)
        area = miscalibration_area(errors, sigma)
        ax_cal.fill_between(expected, expected, observed, color=COLORS["band"], alpha=0.3)
        ax_cal.plot(
            expected,
            observed,
            color=COLORS["main"],
            lw=2,
            label=f"model ({len(errors)} predictions)\nmiscalibration area {area:.3f}",
        )
        magnitude = np.abs(errors)
        c1, c2 = coverage(errors, sigma, 1.0), coverage(errors, sigma, 2.0)
        ax_sig.plot(
            magnitude,
            sigma,
            "o",
            ms=5,
            alpha=0.7,
            color=COLORS["main"],
            label=f"{100 * c1:.0f} % within 1σ, {100 * c2:.0f} % within 2σ",
        )
        top = float(max(magnitude.max(), sigma.max()) * 1.05 or 1.0)
        ax_sig.plot([0, top], [0, top], "--", color="black", lw=1, label="|error| = σ")
        ax_sig.plot([0, top], [0, top / 2], ":", color="black", lw=1, label="|error| = 2σ")
        ax_sig.set_xlim(0, top)
        ax_sig.set_ylim(0, top)
        ax_sig.legend(fontsize=LEGEND_SIZE, loc="upper left")
    elif summary:
        levels = [p for key, p in SIGMA_LEVELS.items() if summary.get(key) is not None]
        observed = [summary[key] for key in SIGMA_LEVELS if summary.get(key) is not None]
        area = summary.get("miscalibration_area")
        label = "stored coverage (1σ, 2σ)" + (f"\nmiscalibration area {area:.3f}" if area is not None else "")
        ax_cal.plot([0, *levels, 1], [0, *observed, 1], "o-", color=COLORS["main"], lw=2, label=label)
        note(ax_sig, "per-prediction errors and σ not stored:\nonly the calibration summary is known")
    else:
        note(ax_cal, "no calibration data stored")
        note(ax_sig, "no calibration data stored")
    ax_cal.set_xlim(0, 1)
    ax_cal.set_ylim(0, 1)
    ax_cal.set_aspect("equal", adjustable="box")
    ax_cal.legend(fontsize=LEGEND_SIZE, loc="upper left")
    figure.suptitle(f"{title} ({subset})", fontsize=TITLE_SIZE)
    return figure
