"""Pareto fronts for multi-objective campaigns (e.g. high band gap *and* low formation energy).

Objectives are columns of ``Y``; ``directions`` says for each whether larger (``"max"``) or smaller (``"min"``) is
better. Exact hypervolume and the expected hypervolume improvement live with the acquisitions
(:mod:`aiida_nanoos.acquisition.hypervolume`), below the design layer so that acquisition can use them.
"""

from __future__ import annotations

import numpy as np

from aiida_nanoos.acquisition.hypervolume import Directions, as_minimisation


def pareto_mask(Y: np.ndarray, directions: Directions = None) -> np.ndarray:
    """True for points no other point dominates (better or equal in all objectives, strictly better in one)."""
    F = as_minimisation(Y, directions)
    n = len(F)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        if not mask[i]:
            continue
        dominated_by = np.all(F <= F[i], axis=1) & np.any(F < F[i], axis=1)
        if dominated_by.any():
            mask[i] = False
    return mask


def non_dominated_sort(Y: np.ndarray, directions: Directions = None) -> list[np.ndarray]:
    """Indices of successive Pareto fronts (front 0 = non-dominated, front 1 = non-dominated once 0 is removed...)."""
    F = as_minimisation(Y, directions)
    remaining = np.arange(len(F))
    fronts = []
    while remaining.size:
        mask = pareto_mask(F[remaining])
        fronts.append(remaining[mask])
        remaining = remaining[~mask]
    return fronts


__all__ = ["non_dominated_sort", "pareto_mask"]
