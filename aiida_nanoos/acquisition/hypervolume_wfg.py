"""The pure-Python hypervolume and EHVI this project used before moocore: kept as the oracle.

Exact hypervolume by a sweep in 2-D and the WFG algorithm (While, Bradstreet & Barone 2012) in three or more
objectives; EHVI by Monte Carlo with one WFG evaluation per posterior draw. Slow (6 s for 64 candidates with three
objectives) but simple enough to trust: the tests compare :mod:`aiida_nanoos.acquisition.hypervolume` with it on
random fronts, and ``benchmark bo-pareto --timing`` measures the speed-up against it. Not used by campaigns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aiida_nanoos.acquisition.hypervolume import Directions, as_minimisation


def _hv2d(F: np.ndarray, ref: np.ndarray) -> float:
    """Area dominated by minimisation points F (all strictly better than ref) in 2-D, by a sweep over x."""
    order = np.argsort(F[:, 0], kind="stable")
    volume, best_y = 0.0, ref[1]
    for x, y in F[order]:
        if y < best_y:
            volume += (ref[0] - x) * (best_y - y)
            best_y = y
    return float(volume)


def _hvi_2d(S: np.ndarray, F: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume improvement of each row of S over the non-dominated 2-D front F, vectorised.

    HVI(s) = integral over x in [s_x, ref_x] of max(0, h(x) - s_y), h being the front's staircase (ref_y left of it).
    """
    if len(F):
        F = F[np.argsort(F[:, 0], kind="stable")]
        starts = np.concatenate([[-np.inf], F[:, 0]])
        heights = np.concatenate([[ref[1]], np.minimum.accumulate(F[:, 1])])
    else:
        starts, heights = np.array([-np.inf]), np.array([ref[1]])
    ends = np.concatenate([starts[1:], [ref[0]]])
    ends = np.minimum(ends, ref[0])
    width = np.clip(ends[None, :] - np.maximum(starts[None, :], S[:, :1]), 0.0, None)
    height = np.clip(heights[None, :] - S[:, 1:2], 0.0, None)
    return (width * height).sum(axis=1)


def _nondominated_min(F: np.ndarray) -> np.ndarray:
    if len(F) <= 1:
        return F
    keep = np.ones(len(F), dtype=bool)
    for i in range(len(F)):
        if keep[i]:
            dom = np.all(F <= F[i], axis=1) & np.any(F < F[i], axis=1)
            if dom.any():
                keep[i] = False
    F = F[keep]
    return np.unique(F, axis=0)


def _wfg(F: np.ndarray, ref: np.ndarray) -> float:
    """WFG: HV = sum_k exclusive HV of point k w.r.t. the points after it (points sorted, non-dominated)."""
    if len(F) == 0:
        return 0.0
    if F.shape[1] == 2:
        return _hv2d(F, ref)
    if len(F) == 1:
        return float(np.prod(ref - F[0]))
    F = F[np.argsort(F[:, 0], kind="stable")[::-1]]  # worst first: limit sets then stay small
    total = 0.0
    for k in range(len(F)):
        inclusive = float(np.prod(ref - F[k]))
        rest = F[k + 1 :]
        if len(rest):
            limited = _nondominated_min(np.maximum(rest, F[k]))
            inclusive -= _wfg(limited, ref)
        total += inclusive
    return total


def hypervolume(Y: np.ndarray, reference: Sequence[float], directions: Directions = None) -> float:
    """Volume of objective space dominated by the points of ``Y`` and bounded by ``reference`` (WFG)."""
    F = as_minimisation(Y, directions)
    ref = as_minimisation(np.asarray(reference, dtype=float)[None, :], directions)[0]
    if F.shape[1] != ref.size:
        raise ValueError(f"reference has {ref.size} values for {F.shape[1]} objectives")
    F = F[np.all(F < ref, axis=1)]
    if len(F) == 0:
        return 0.0
    if F.shape[1] == 1:
        return float(ref[0] - F[:, 0].min())
    return _wfg(_nondominated_min(F), ref)


def expected_hypervolume_improvement(
    means: np.ndarray,
    stds: np.ndarray,
    front: np.ndarray,
    reference: Sequence[float],
    directions: Directions = None,
    *,
    n_samples: int = 128,
    seed: int = 0,
) -> np.ndarray:
    """Monte-Carlo EHVI of each candidate over independent Gaussian objectives, common random numbers; three or
    more objectives cost ``n_samples`` WFG evaluations per candidate."""
    means = np.atleast_2d(np.asarray(means, dtype=float))
    stds = np.maximum(np.atleast_2d(np.asarray(stds, dtype=float)), 0.0)
    if means.shape != stds.shape:
        raise ValueError(f"means {means.shape} and stds {stds.shape} differ in shape")
    ref_min = as_minimisation(np.asarray(reference, dtype=float)[None, :], directions)[0]
    F = as_minimisation(np.atleast_2d(np.asarray(front, dtype=float)).reshape(-1, means.shape[1]), directions)
    F = F[np.all(F < ref_min, axis=1)]
    F = _nondominated_min(F) if len(F) else F
    base = _wfg(F, ref_min) if len(F) else 0.0
    z = np.random.default_rng(seed).standard_normal((n_samples, means.shape[1]))
    M = as_minimisation(means, directions)
    S = stds
    out = np.empty(len(M))
    for i in range(len(M)):
        samples = M[i] + z * S[i]
        if means.shape[1] == 2:
            out[i] = _hvi_2d(samples, F, ref_min).mean()
            continue
        total = 0.0
        for s in samples:
            if np.all(s < ref_min):
                if len(F) and np.any(np.all(F <= s, axis=1)):
                    continue  # dominated by the current front: no improvement
                pts = np.vstack([F, s[None, :]]) if len(F) else s[None, :]
                total += _wfg(_nondominated_min(pts), ref_min) - base
        out[i] = total / n_samples
    return out
