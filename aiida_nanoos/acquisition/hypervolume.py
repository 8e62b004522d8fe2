"""Exact hypervolume and the expected hypervolume improvement (EHVI), the multi-objective acquisition.

Objectives are columns of ``Y``; ``directions`` says for each whether larger (``"max"``) or smaller (``"min"``) is
better. Internally everything is turned into minimisation. Hypervolume is exact: a sweep in 2-D and the WFG algorithm
(While, Bradstreet & Barone 2012) for three or more objectives. EHVI is estimated by Monte Carlo over independent
Gaussian posteriors, one per objective (:func:`posterior_hypervolume_improvement` takes one
:class:`~aiida_nanoos.models.posterior.Posterior` per objective). Pareto fronts and sorting are in
:mod:`aiida_nanoos.design.pareto`, which re-exports the names defined here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aiida_nanoos.models.posterior import Posterior

Directions = Sequence[str] | None


def as_minimisation(Y: np.ndarray, directions: Directions) -> np.ndarray:
    Y = np.atleast_2d(np.asarray(Y, dtype=float))
    if directions is None:
        return Y.copy()
    directions = list(directions)
    if len(directions) != Y.shape[1]:
        raise ValueError(f"{len(directions)} directions for {Y.shape[1]} objectives")
    sign = np.empty(len(directions))
    for i, d in enumerate(directions):
        if d not in ("min", "max"):
            raise ValueError(f"directions[{i}]: must be 'min' or 'max', got {d!r}")
        sign[i] = -1.0 if d == "max" else 1.0
    return Y * sign


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
    """Volume of objective space dominated by the points of ``Y`` and bounded by ``reference``.

    Points that do not strictly beat the reference in every objective contribute nothing.
    """
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


def hypervolume_improvement(
    y: Sequence[float], front: np.ndarray, reference: Sequence[float], directions: Directions = None
) -> float:
    """How much the hypervolume grows when ``y`` is added to ``front``."""
    front = np.atleast_2d(np.asarray(front, dtype=float)).reshape(-1, len(reference))
    return hypervolume(np.vstack([front, np.asarray(y, dtype=float)[None, :]]), reference, directions) - hypervolume(
        front, reference, directions
    )


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
    """Monte-Carlo EHVI of each candidate (rows of ``means``/``stds``, one column per objective).

    Objectives are taken as independent Gaussians (one GP each); the same standard-normal draws are used for every
    candidate (common random numbers), so the ranking is not blurred by sampling noise. Two objectives use a
    vectorised exact improvement; three or more cost ``n_samples`` WFG evaluations per candidate, fine for the
    hundreds of candidates of a DFT campaign.
    """
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


def posterior_hypervolume_improvement(
    posteriors: Sequence[Posterior],
    front: np.ndarray,
    reference: Sequence[float],
    directions: Directions = None,
    *,
    n_samples: int = 128,
    seed: int = 0,
) -> np.ndarray:
    """:func:`expected_hypervolume_improvement` from one :class:`Posterior` per objective (same candidates)."""
    if len({len(p) for p in posteriors}) > 1:
        raise ValueError("posteriors of the objectives cover different numbers of candidates")
    means = np.column_stack([p.mean for p in posteriors])
    stds = np.column_stack([p.std for p in posteriors])
    return expected_hypervolume_improvement(means, stds, front, reference, directions, n_samples=n_samples, seed=seed)
