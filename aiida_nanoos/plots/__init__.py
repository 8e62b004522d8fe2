"""Figures from plain arrays (no AiiDA): campaign convergence and Pareto front, potential parity, MD
thermodynamics, property-model calibration. Each function returns a :class:`matplotlib.figure.Figure`;
:func:`save_figure` writes it as PNG or SVG. :mod:`aiida_nanoos.query` reads the arrays from stored nodes."""

from aiida_nanoos.plots.campaign import RandomBaseline, convergence_figure, pareto_figure, random_baseline
from aiida_nanoos.plots.common import FORMATS, save_figure
from aiida_nanoos.plots.md import thermo_figure
from aiida_nanoos.plots.model import calibration_figure
from aiida_nanoos.plots.potential import parity_figure

__all__ = [
    "FORMATS",
    "RandomBaseline",
    "calibration_figure",
    "convergence_figure",
    "pareto_figure",
    "parity_figure",
    "random_baseline",
    "save_figure",
    "thermo_figure",
]
