"""The acquisition names of the former ``ml/acquisition.py``, gathered from where they now live.

:mod:`~aiida_nanoos.acquisition.analytic` (EI, PI, UCB/LCB, target range, on a posterior),
:mod:`~aiida_nanoos.acquisition.optimize` (arg-max over a pool, continuous maximisation),
:mod:`~aiida_nanoos.acquisition.batch` (kriging believer, constant liar, greedy and diverse batches),
:mod:`~aiida_nanoos.acquisition.feasibility` (P(feasible) and constrained acquisition). New code imports from those.
"""

from __future__ import annotations

from aiida_nanoos.acquisition.analytic import (
    ACQUISITIONS,
    acquisition_scores,
    expected_improvement,
    lower_confidence_bound,
    posterior_scores,
    probability_in_range,
    probability_of_improvement,
    upper_confidence_bound,
)
from aiida_nanoos.acquisition.batch import diverse_batch, greedy_batch, select_batch
from aiida_nanoos.acquisition.feasibility import FeasibilityClassifier, FeasibilityModel, weight_by_feasibility
from aiida_nanoos.acquisition.optimize import argmax_acquisition, maximize_continuous, score_candidates

__all__ = [
    "ACQUISITIONS",
    "FeasibilityClassifier",
    "FeasibilityModel",
    "acquisition_scores",
    "argmax_acquisition",
    "diverse_batch",
    "expected_improvement",
    "greedy_batch",
    "lower_confidence_bound",
    "maximize_continuous",
    "posterior_scores",
    "probability_in_range",
    "probability_of_improvement",
    "score_candidates",
    "select_batch",
    "upper_confidence_bound",
    "weight_by_feasibility",
]
