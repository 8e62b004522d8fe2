"""Thermodynamics of an MD run against time: temperature, total and potential energy per atom, pressure."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from aiida_nanoos.plots.common import COLORS, LEGEND_SIZE, TITLE_SIZE, label_axes, new_figure, note


def _series(values: Sequence[float] | None, n: int, name: str) -> np.ndarray | None:
    if values is None:
        return None
    values = np.asarray(values, float)
    if len(values) != n:
        raise ValueError(f"{name}: {len(values)} values for {n} times")
    return values


def thermo_figure(
    time_ps: Sequence[float],
    temperature: Sequence[float],
    *,
    total_energy: Sequence[float] | None = None,
    potential_energy: Sequence[float] | None = None,
    pressure: Sequence[float] | None = None,
    n_atoms: int = 1,
    target_temperature: float | None = None,
    pressure_unit: str = "bar",
    title: str = "MD thermodynamics",
) -> Figure:
    """Four panels against time (ps): temperature (K, with the thermostat's target), total and potential energy in
    eV/atom (relative to their first value, so drifts and fluctuations read in meV), pressure. A quantity the run
    did not record gets a panel that says so."""
    time = np.asarray(time_ps, float)
    n = len(time)
    series = {
        "temperature": _series(temperature, n, "temperature"),
        "total": _series(total_energy, n, "total_energy"),
        "potential": _series(potential_energy, n, "potential_energy"),
        "pressure": _series(pressure, n, "pressure"),
    }
    if n_atoms < 1:
        raise ValueError(f"n_atoms must be positive, got {n_atoms}")
    figure, (ax_t, ax_e, ax_u, ax_p) = new_figure(2, 2, width=5.2, height=3.4)
    ax_t.plot(time, series["temperature"], color=COLORS["second"], lw=1.5, label=f"mean {np.mean(temperature):.0f} K")
    if target_temperature is not None:
        ax_t.axhline(target_temperature, ls="--", color="black", lw=1, label=f"target {target_temperature:g} K")
    label_axes(ax_t, "time (ps)", "temperature (K)", "temperature")
    ax_t.legend(fontsize=LEGEND_SIZE)
    for ax, key, name, color in (
        (ax_e, "total", "total energy", COLORS["main"]),
        (ax_u, "potential", "potential energy", COLORS["third"]),
    ):
        values = series[key]
        label_axes(ax, "time (ps)", f"{name} − first (meV/atom)", name)
        if values is None:
            note(ax, f"no {name} recorded")
            continue
        per_atom = 1000.0 * (values - values[0]) / n_atoms
        label = f"first {values[0] / n_atoms:.4f} eV/atom; std {np.std(per_atom):.3g} meV/atom"
        ax.plot(time, per_atom, color=color, lw=1.5, label=label)
        ax.legend(fontsize=LEGEND_SIZE)
    label_axes(ax_p, "time (ps)", f"pressure ({pressure_unit})", "pressure")
    if series["pressure"] is None:
        note(ax_p, "no pressure recorded")
    else:
        label = f"mean {np.mean(series['pressure']):.4g} {pressure_unit}"
        ax_p.plot(time, series["pressure"], color=COLORS["fourth"], lw=1.5, label=label)
        ax_p.legend(fontsize=LEGEND_SIZE)
    figure.suptitle(f"{title} ({n_atoms} atoms, {time[-1] - time[0] if n else 0:.3g} ps)", fontsize=TITLE_SIZE)
    return figure
