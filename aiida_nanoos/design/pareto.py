"""Pareto fronts for multi-objective campaigns (e.g. high band gap *and* low formation energy).

Objectives are columns of ``Y``; ``directions`` says for each whether larger (``"max"``) or smaller (``"min"``) is
better. Both functions use moocore's non-dominated filters (C code). Exact hypervolume and the expected hypervolume
improvement live with the acquisitions (:mod:`aiida_nanoos.acquisition.hypervolume`), below the design layer so that
acquisition can use them.
"""

from __future__ import annotations

import moocore
import numpy as np

from aiida_nanoos.acquisition.hypervolume import Directions, as_minimisation


def pareto_mask(Y: np.ndarray, directions: Directions = None) -> np.ndarray:
    """True for points no other point dominates (better or equal in all objectives, strictly better in one).

    Equal points do not dominate each other, so duplicates on the front are all kept. A point with a NaN objective
    neither dominates nor is dominated (it is compared with nothing), as with element-wise comparisons.
    """
    F = as_minimisation(Y, directions)
    mask = np.ones(len(F), dtype=bool)
    comparable = ~np.isnan(F).any(axis=1)
    if comparable.sum() > 1:
        mask[comparable] = moocore.is_nondominated(F[comparable], keep_weakly=True)
    return mask


def non_dominated_sort(Y: np.ndarray, directions: Directions = None) -> list[np.ndarray]:
    """Indices of successive Pareto fronts (front 0 = non-dominated, front 1 = non-dominated once 0 is removed...)."""
    F = as_minimisation(Y, directions)
    if len(F) == 0:
        return []
    rank = np.zeros(len(F), dtype=np.int64)
    comparable = ~np.isnan(F).any(axis=1)
    if comparable.sum() > 1:
        rank[comparable] = moocore.pareto_rank(F[comparable])
    return [np.flatnonzero(rank == r) for r in np.unique(rank)]


__all__ = ["non_dominated_sort", "pareto_mask"]
