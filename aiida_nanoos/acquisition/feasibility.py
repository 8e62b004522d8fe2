"""Feasibility: P(a candidate satisfies a constraint), and acquisition weighted by it (constrained EI)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import ndtr

from aiida_nanoos.acquisition.analytic import STD_FLOOR
from aiida_nanoos.models.gp import GaussianProcess


class FeasibilityModel:
    """P(feasible) from a GP on a constraint value, e.g. P(stability_score >= 0.7) or P(1 <= gap <= 3).

    Multiplying a non-negative acquisition (EI, PI, RANGE) by it is the constrained EI of Gardner et al. 2014.
    """

    def __init__(self, lower: float | None = None, upper: float | None = None, **gp_kwargs: Any) -> None:
        if lower is None and upper is None:
            raise ValueError("a feasibility constraint needs a lower and/or an upper bound")
        if lower is not None and upper is not None and not lower < upper:
            raise ValueError(f"constraint bounds must satisfy lower < upper, got [{lower}, {upper}]")
        self.lower, self.upper = lower, upper
        self.gp = GaussianProcess(**gp_kwargs)

    def fit(self, X: np.ndarray, values: np.ndarray) -> FeasibilityModel:
        self.gp.fit(X, values)
        return self

    def probability(self, X: np.ndarray) -> np.ndarray:
        mean, std = self.gp.predict(X)
        std = np.maximum(std, STD_FLOOR)
        p_hi = ndtr((self.upper - mean) / std) if self.upper is not None else 1.0
        p_lo = ndtr((self.lower - mean) / std) if self.lower is not None else 0.0
        return np.clip(p_hi - p_lo, 0.0, 1.0)


def weight_by_feasibility(scores: np.ndarray, *probabilities: np.ndarray) -> np.ndarray:
    """Acquisition times the product of P(feasible). Scores that can be negative (UCB/LCB) are first shifted to be
    >= 0 so that a lower feasibility can only lower the score."""
    scores = np.asarray(scores, dtype=float)
    if scores.size and scores.min() < 0:
        scores = scores - scores.min()
    for p in probabilities:
        scores = scores * np.asarray(p, dtype=float)
    return scores
