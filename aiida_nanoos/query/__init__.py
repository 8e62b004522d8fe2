"""Provenance queries for the CLI, notebooks and scripts (read-only; each function shows the ``QueryBuilder`` it
runs): the DFT calculations behind a potential and the potentials behind a calculation, the MD runs of a potential,
a campaign as a ``pandas.DataFrame``, the best candidates of all campaigns for a property, and the data each plot of
:mod:`aiida_nanoos.plots` draws."""

from aiida_nanoos.query.campaigns import (
    best_candidates,
    campaign_dataframe,
    campaign_view,
    convergence_data,
    iteration_outputs,
    load_campaign_node,
    pareto_data,
)
from aiida_nanoos.query.md import load_md, md_segments, thermo_data
from aiida_nanoos.query.models import calibration_data, load_model
from aiida_nanoos.query.potentials import (
    fit_of,
    load_potential,
    md_runs,
    parity_data,
    potentials_trained_from,
    same_potential,
    stored_parity,
    training_calculations,
    training_parity,
)

__all__ = [
    "best_candidates",
    "calibration_data",
    "campaign_dataframe",
    "campaign_view",
    "convergence_data",
    "fit_of",
    "iteration_outputs",
    "load_campaign_node",
    "load_md",
    "load_model",
    "load_potential",
    "md_runs",
    "md_segments",
    "pareto_data",
    "parity_data",
    "potentials_trained_from",
    "same_potential",
    "stored_parity",
    "thermo_data",
    "training_calculations",
    "training_parity",
]
