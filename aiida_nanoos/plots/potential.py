"""Parity plots of an interatomic potential against DFT: energy per atom, force components, stress components, each
with its RMSE and MAE in the legend (computed from the very points drawn)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from aiida_nanoos.plots.common import COLORS, LEGEND_SIZE, TITLE_SIZE, label_axes, new_figure, note
from aiida_nanoos.potentials.metrics import QUANTITIES, UNITS, error_stats

#: Axis names of the quantities.
NAMES = {"energy": "energy per atom", "force": "force component", "stress": "stress component"}


def parity_figure(
    parity: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str = "Potential vs DFT",
    subset: str = "held-out frames",
) -> Figure:
    """One panel per quantity (``energy``, ``force``, ``stress``): predicted against DFT, the ideal diagonal, and
    RMSE / MAE in the legend. ``parity`` maps a quantity to (DFT reference, predicted); a quantity absent or empty
    gets a panel that says so. ``subset`` names which frames these are (held-out or training)."""
    figure, axes = new_figure(1, len(QUANTITIES), width=4.4, height=4.4)
    for ax, quantity in zip(axes, QUANTITIES, strict=True):
        unit = UNITS[quantity]
        label_axes(ax, f"DFT {NAMES[quantity]} ({unit})", f"potential {NAMES[quantity]} ({unit})", quantity)
        reference, predicted = (np.asarray(v, float).ravel() for v in parity.get(quantity, ((), ())))
        if len(reference) != len(predicted):
            raise ValueError(f"{quantity}: {len(reference)} DFT values but {len(predicted)} predictions")
        if not len(reference):
            note(ax, f"no {quantity} labels")
            continue
        stats = error_stats(reference, predicted)
        digits = ".2f" if quantity == "energy" else ".3g"
        scale, shown = (1000.0, "meV/atom") if quantity == "energy" else (1.0, unit)
        label = (
            f"RMSE {scale * stats.rmse:{digits}} {shown}\nMAE {scale * stats.mae:{digits}} {shown}\n"
            f"{stats.count} values"
        )
        ax.plot(reference, predicted, "o", ms=4, alpha=0.6, color=COLORS["main"], label=label)
        low = float(min(reference.min(), predicted.min()))
        high = float(max(reference.max(), predicted.max()))
        pad = 0.05 * (high - low or abs(high) or 1.0)
        ax.plot([low - pad, high + pad], [low - pad, high + pad], "--", color="black", lw=1, label="ideal")
        ax.set_xlim(low - pad, high + pad)
        ax.set_ylim(low - pad, high + pad)
        ax.set_aspect("equal", adjustable="box")
        for axis in (ax.xaxis, ax.yaxis):  # few ticks: long numbers (e.g. -138.65 eV/atom) must not overlap
            axis.set_major_locator(MaxNLocator(nbins=5))
        ax.legend(fontsize=LEGEND_SIZE, loc="upper left")
    figure.suptitle(f"{title} ({subset})", fontsize=TITLE_SIZE)
    return figure
