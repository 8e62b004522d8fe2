"""Exact hypervolume (moocore) and the exact expected hypervolume improvement (EHVI), the multi-objective acquisition.

Objectives are columns of ``Y``; ``directions`` says for each whether larger (``"max"``) or smaller (``"min"``) is
better. Internally everything is turned into minimisation. The hypervolume is moocore's (Fonseca, Paquete &
López-Ibáñez; C code, about 0.1 ms for 200 points in 4-D).

EHVI. The region the current front does not dominate (inside the reference box) is cut into disjoint boxes
``[lower, upper]`` (:func:`nondominated_boxes`, slices along the last objective, recursively). A new point ``y``
then improves the hypervolume by ``sum_b prod_j (upper_bj - max(y_j, lower_bj))^+``, a sum of products of one-
dimensional terms. With independent Gaussian objectives (one GP each) the expectation of each product is the product
of expectations, and ``E[(a - max(Y, l))^+] = psi(a) - psi(l)`` with ``psi(a) = E[(a - Y)^+]`` in closed form, so
EHVI is exact and vectorised over candidates and boxes (Yang, Emmerich, Deutz & Bäck 2019 compute it the same way).
The same boxes give the exact improvement of many points at once (:func:`hypervolume_improvements`), which makes a
Monte-Carlo EHVI from posterior draws (ensembles, dropout) cheap too. The pure-Python WFG code this replaced stays
in :mod:`aiida_nanoos.acquisition.hypervolume_wfg` as the oracle of the tests. Pareto fronts and sorting are in
:mod:`aiida_nanoos.design.pareto`.
"""

from __future__ import annotations

from collections.abc import Sequence

import moocore
import numpy as np
from scipy.special import ndtr

from aiida_nanoos.models.posterior import Posterior

Directions = Sequence[str] | None
#: Candidates x boxes per block when EHVI is evaluated: keeps temporaries at a few tens of MB.
_BLOCK_ELEMENTS = 2_000_000
_INV_SQRT_2PI = 1.0 / np.sqrt(2.0 * np.pi)


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


def _oriented(
    Y: np.ndarray, reference: Sequence[float], directions: Directions, n_objectives: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Points and reference in minimisation form; points that do not strictly beat the reference are dropped."""
    ref = as_minimisation(np.asarray(reference, dtype=float).reshape(1, -1), directions)[0]
    Y = np.asarray(Y, dtype=float)
    F = as_minimisation(Y.reshape(-1, ref.size) if Y.size == 0 else Y, directions)
    if F.shape[1] != ref.size:
        raise ValueError(f"reference has {ref.size} values for {F.shape[1]} objectives")
    if n_objectives is not None and ref.size != n_objectives:
        raise ValueError(f"reference has {ref.size} values for {n_objectives} objectives")
    return F[np.all(F < ref, axis=1)], ref


def hypervolume(Y: np.ndarray, reference: Sequence[float], directions: Directions = None) -> float:
    """Volume of objective space dominated by the points of ``Y`` and bounded by ``reference``.

    Points that do not strictly beat the reference in every objective contribute nothing.
    """
    F, ref = _oriented(Y, reference, directions)
    if len(F) == 0:
        return 0.0
    if ref.size == 1:
        return float(ref[0] - F[:, 0].min())
    return float(moocore.hypervolume(F, ref=ref))


def _front_min(F: np.ndarray) -> np.ndarray:
    """The distinct non-dominated rows of minimisation points."""
    if len(F) <= 1:
        return F
    return np.unique(F[moocore.is_nondominated(F)], axis=0)


def nondominated_boxes(front: np.ndarray, reference: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint boxes ``(lower, upper)``, each (n_boxes, m), whose union is the part of the reference box that the
    minimisation points ``front`` do not dominate (lower bounds may be -inf: the region is open towards better values).

    Sliced along the last objective: between two consecutive values of it, the non-dominated cross-section is that
    of the points already below, one dimension less. In 2-D the staircase gives n + 1 boxes, in 3-D at most about
    n^2 / 2.
    """
    ref = np.asarray(reference, dtype=float)
    F, _ = _oriented(front, ref, None)
    return _boxes(_front_min(F), ref)


def _boxes(F: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = ref.size
    if len(F) == 0:
        return np.full((1, m), -np.inf), ref[None, :].copy()
    if m == 1:
        return np.array([[-np.inf]]), np.array([[F[:, 0].min()]])
    if m == 2:  # the staircase, sorted by the first objective (so the second decreases)
        F = F[np.argsort(F[:, 0], kind="stable")]
        lower = np.column_stack([np.concatenate([[-np.inf], F[:, 0]]), np.full(len(F) + 1, -np.inf)])
        upper = np.column_stack([np.concatenate([F[:, 0], [ref[0]]]), np.concatenate([[ref[1]], F[:, 1]])])
        return lower, upper
    F = F[np.argsort(F[:, -1], kind="stable")]
    cuts = np.concatenate([[-np.inf], F[:, -1], [ref[-1]]])
    lowers, uppers = [], []
    for k in range(len(F) + 1):  # slice k: the first k points lie below it
        if cuts[k + 1] <= cuts[k]:
            continue
        L, U = _boxes(_front_min(F[:k, :-1]), ref[:-1])
        lowers.append(np.column_stack([L, np.full(len(L), cuts[k])]))
        uppers.append(np.column_stack([U, np.full(len(U), cuts[k + 1])]))
    return np.vstack(lowers), np.vstack(uppers)


class _BoxGrid:
    """The boxes as indices into each objective's sorted distinct bounds, so the one-dimensional terms are computed
    once per (candidate, distinct bound) instead of once per (candidate, box)."""

    def __init__(self, lower: np.ndarray, upper: np.ndarray) -> None:
        self.values, self.lower_index, self.upper_index = [], [], []
        for j in range(lower.shape[1]):
            values = np.unique(np.concatenate([lower[:, j], upper[:, j]]))
            self.values.append(values)
            self.lower_index.append(np.searchsorted(values, lower[:, j]))
            self.upper_index.append(np.searchsorted(values, upper[:, j]))
        self.n_boxes = len(lower)

    def improvement(self, psi: Sequence[np.ndarray]) -> np.ndarray:
        """sum over boxes of prod over objectives of psi_j(upper) - psi_j(lower); psi[j] is (n, n_values_j)."""
        n = psi[0].shape[0]
        out = np.empty(n)
        block = max(1, _BLOCK_ELEMENTS // self.n_boxes)
        for start in range(0, n, block):
            stop = min(n, start + block)
            product = None
            for j, p in enumerate(psi):
                p = p[start:stop]
                term = p[:, self.upper_index[j]] - p[:, self.lower_index[j]]
                product = term if product is None else product * term
            out[start:stop] = product.sum(axis=1)
        return out


def _prepared(
    front: np.ndarray, reference: Sequence[float], directions: Directions, n_objectives: int
) -> tuple[np.ndarray, _BoxGrid]:
    F, ref = _oriented(np.asarray(front, dtype=float).reshape(-1, n_objectives), reference, directions, n_objectives)
    return ref, _BoxGrid(*_boxes(_front_min(F), ref))


def hypervolume_improvements(
    Y_new: np.ndarray, front: np.ndarray, reference: Sequence[float], directions: Directions = None
) -> np.ndarray:
    """How much the hypervolume of ``front`` grows when each row of ``Y_new`` is added to it alone (exact)."""
    P = as_minimisation(Y_new, directions)
    ref, grid = _prepared(front, reference, directions, P.shape[1])
    psi = [np.maximum(grid.values[j][None, :] - P[:, j : j + 1], 0.0) for j in range(P.shape[1])]
    return np.maximum(grid.improvement(psi), 0.0)


def hypervolume_improvement(
    y: Sequence[float], front: np.ndarray, reference: Sequence[float], directions: Directions = None
) -> float:
    """How much the hypervolume grows when ``y`` is added to ``front``."""
    y = np.asarray(y, dtype=float).reshape(1, -1)
    return float(hypervolume_improvements(y, front, reference, directions)[0])


def _gaussian_psi(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """E[(a - Y)^+] for Y ~ N(mean, std^2), rows = candidates, columns = the bounds a (-inf gives 0)."""
    d = values[None, :] - mean[:, None]
    s = std[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = d / s
        out = d * ndtr(z) + s * _INV_SQRT_2PI * np.exp(-0.5 * z * z)
    certain = np.broadcast_to(s <= 0.0, out.shape)
    out = np.where(certain, np.maximum(d, 0.0), out)
    out[:, np.isneginf(values)] = 0.0
    return out


def expected_hypervolume_improvement(
    means: np.ndarray,
    stds: np.ndarray,
    front: np.ndarray,
    reference: Sequence[float],
    directions: Directions = None,
    *,
    method: str = "exact",
    n_samples: int = 128,
    seed: int = 0,
) -> np.ndarray:
    """EHVI of each candidate (rows of ``means``/``stds``, one column per objective), independent Gaussian objectives.

    ``method="exact"`` (default) integrates in closed form over the non-dominated boxes; ``"monte_carlo"`` averages
    the exact improvement of ``n_samples`` draws per candidate (the same standard-normal draws for every candidate,
    so the ranking is not blurred by sampling noise), a check of the closed form and the route for non-Gaussian
    posteriors. ``n_samples`` and ``seed`` are used only by ``"monte_carlo"``.
    """
    means = np.atleast_2d(np.asarray(means, dtype=float))
    stds = np.atleast_2d(np.asarray(stds, dtype=float))
    if means.shape != stds.shape:
        raise ValueError(f"means {means.shape} and stds {stds.shape} differ in shape")
    if np.any(stds < 0):
        raise ValueError("standard deviations must be non-negative")
    if method == "monte_carlo":
        z = np.random.default_rng(seed).standard_normal((n_samples, 1, means.shape[1]))
        draws = (means[None, :, :] + z * stds[None, :, :]).reshape(-1, means.shape[1])
        return hypervolume_improvements(draws, front, reference, directions).reshape(n_samples, -1).mean(axis=0)
    if method != "exact":
        raise ValueError(f"method must be 'exact' or 'monte_carlo', got {method!r}")
    M = as_minimisation(means, directions)
    ref, grid = _prepared(front, reference, directions, M.shape[1])
    psi = [_gaussian_psi(grid.values[j], M[:, j], stds[:, j]) for j in range(M.shape[1])]
    return np.maximum(grid.improvement(psi), 0.0)


def posterior_hypervolume_improvement(
    posteriors: Sequence[Posterior],
    front: np.ndarray,
    reference: Sequence[float],
    directions: Directions = None,
    *,
    method: str = "exact",
    n_samples: int = 128,
    seed: int = 0,
) -> np.ndarray:
    """:func:`expected_hypervolume_improvement` from one :class:`Posterior` per objective (same candidates)."""
    if len({len(p) for p in posteriors}) > 1:
        raise ValueError("posteriors of the objectives cover different numbers of candidates")
    means = np.column_stack([p.mean for p in posteriors])
    stds = np.column_stack([p.std for p in posteriors])
    return expected_hypervolume_improvement(
        means, stds, front, reference, directions, method=method, n_samples=n_samples, seed=seed
    )
