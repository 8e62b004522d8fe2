"""Acquisition functions, their maximisation (continuous box or discrete pool), batches and feasibility weighting.

Every acquisition score here follows one convention: **higher is better**, whatever the objective's direction,
so a campaign always takes the arg-max. The closed forms take the posterior mean and standard deviation of the
property (not of a standardised copy), so the numbers they print mean something to a materials scientist.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import ndtr
from scipy.stats import norm, qmc

from aiida_nanoos.models.gp import GaussianProcess

ACQUISITIONS = ("EI", "PI", "UCB", "LCB", "RANGE")
_STD_FLOOR = 1e-12


def _prepare(mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.asarray(mean, dtype=float)
    std = np.maximum(np.asarray(std, dtype=float), _STD_FLOOR)
    return mean, std


def expected_improvement(
    mean: np.ndarray, std: np.ndarray, best: float, *, maximize: bool = True, xi: float = 0.0
) -> np.ndarray:
    """E[max(0, improvement over ``best`` - xi)] for a Gaussian posterior (Jones et al. 1998), >= 0."""
    mean, std = _prepare(mean, std)
    improvement = (mean - best - xi) if maximize else (best - mean - xi)
    z = improvement / std
    return np.maximum(improvement * ndtr(z) + std * norm.pdf(z), 0.0)


def probability_of_improvement(
    mean: np.ndarray, std: np.ndarray, best: float, *, maximize: bool = True, xi: float = 0.0
) -> np.ndarray:
    """P(property better than ``best`` by more than ``xi``) under a Gaussian posterior."""
    mean, std = _prepare(mean, std)
    improvement = (mean - best - xi) if maximize else (best - mean - xi)
    return ndtr(improvement / std)


def upper_confidence_bound(mean: np.ndarray, std: np.ndarray, beta: float = 2.0) -> np.ndarray:
    """mean + beta * std: optimistic value of a property to maximise."""
    mean, std = _prepare(mean, std)
    return mean + beta * std


def lower_confidence_bound(mean: np.ndarray, std: np.ndarray, beta: float = 2.0) -> np.ndarray:
    """mean - beta * std: optimistic value of a property to minimise (the campaign takes the arg-*min* of it)."""
    mean, std = _prepare(mean, std)
    return mean - beta * std


def probability_in_range(mean: np.ndarray, std: np.ndarray, low: float, high: float) -> np.ndarray:
    """P(low <= property <= high): the target-range objective (e.g. a band gap between 1.1 and 1.5 eV)."""
    if not low < high:
        raise ValueError(f"target range needs low < high, got [{low}, {high}]")
    mean, std = _prepare(mean, std)
    return np.clip(ndtr((high - mean) / std) - ndtr((low - mean) / std), 0.0, 1.0)


def acquisition_scores(
    kind: str,
    mean: np.ndarray,
    std: np.ndarray,
    *,
    best: float | None = None,
    maximize: bool = True,
    xi: float = 0.0,
    beta: float = 2.0,
    target: tuple[float, float] | None = None,
) -> np.ndarray:
    """Scores where higher is better. ``kind``: EI, PI, UCB, LCB (UCB and LCB are the same rule, named by the
    objective's direction: the score is the optimistic bound, negated for minimisation), RANGE (needs ``target``).
    """
    kind = kind.upper()
    if kind in ("EI", "PI") and best is None:
        raise ValueError(f"{kind} needs the best value observed so far ('best')")
    if kind == "EI":
        return expected_improvement(mean, std, best, maximize=maximize, xi=xi)
    if kind == "PI":
        return probability_of_improvement(mean, std, best, maximize=maximize, xi=xi)
    if kind in ("UCB", "LCB"):
        return upper_confidence_bound(mean, std, beta) if maximize else -lower_confidence_bound(mean, std, beta)
    if kind == "RANGE":
        if target is None:
            raise ValueError("RANGE acquisition needs target=(low, high)")
        return probability_in_range(mean, std, *target)
    raise ValueError(f"unknown acquisition {kind!r}; choose one of {ACQUISITIONS}")


def score_candidates(model: GaussianProcess, X: np.ndarray, kind: str = "EI", **kwargs: Any) -> np.ndarray:
    """Predict with ``model`` and score the candidates ``X`` (see :func:`acquisition_scores` for kwargs)."""
    mean, std = model.predict(X)
    return acquisition_scores(kind, mean, std, **kwargs)


def argmax_acquisition(
    model: GaussianProcess,
    X: np.ndarray,
    kind: str = "EI",
    *,
    exclude: Sequence[int] = (),
    block: int = 256,
    **kwargs: Any,
) -> tuple[int, float]:
    """Index and value of the best candidate of a large pool, exact, with the posterior std computed only where it
    can matter.

    EI and UCB/LCB grow with the std, so scoring every candidate with the cheap std upper bound of
    :meth:`GaussianProcess.predict_mean_and_std_bound` gives an upper bound of its score; candidates are then
    scored exactly in blocks, best bound first, until no remaining bound beats the best exact score. Other
    acquisitions (PI, RANGE) are not monotone in the std and are scored in full.
    """
    X = np.atleast_2d(np.asarray(X, dtype=float))
    kind_u = kind.upper()
    excluded = np.zeros(len(X), dtype=bool)
    excluded[list(exclude)] = True
    if excluded.all():
        raise ValueError("argmax_acquisition: every candidate is excluded")
    if kind_u not in ("EI", "UCB", "LCB"):
        scores = score_candidates(model, X, kind, **kwargs)
        scores[excluded] = -np.inf
        i = int(np.argmax(scores))
        return i, float(scores[i])
    mean, std_ub = model.predict_mean_and_std_bound(X)
    bound = acquisition_scores(kind, mean, std_ub, **kwargs)
    bound[excluded] = -np.inf
    order = np.argsort(-bound, kind="stable")
    best_i, best_v = -1, -np.inf
    for start in range(0, len(order), block):
        idx = order[start : start + block]
        idx = idx[bound[idx] > best_v]
        if len(idx) == 0:
            break
        _, std = model.predict(X[idx])
        exact = acquisition_scores(kind, mean[idx], std, **kwargs)
        j = int(np.argmax(exact))
        if exact[j] > best_v:
            best_i, best_v = int(idx[j]), float(exact[j])
    return best_i, best_v


# ---------------------------------------------------------------------------------------------- feasibility
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
        std = np.maximum(std, _STD_FLOOR)
        p_hi = ndtr((self.upper - mean) / std) if self.upper is not None else 1.0
        p_lo = ndtr((self.lower - mean) / std) if self.lower is not None else 0.0
        return np.clip(p_hi - p_lo, 0.0, 1.0)


class FeasibilityClassifier:
    """P(feasible) from pass/fail labels only (e.g. "the SCF converged"), via sklearn's GP classifier.

    With a single class observed so far there is nothing to learn; it returns the smoothed rate
    (n_feasible + 1) / (n + 2) everywhere instead of a hard 0 or 1.
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._constant: float | None = None
        self._clf = None

    def fit(self, X: np.ndarray, feasible: np.ndarray) -> FeasibilityClassifier:
        from sklearn.gaussian_process import GaussianProcessClassifier
        from sklearn.gaussian_process.kernels import ConstantKernel, Matern

        labels = np.asarray(feasible, dtype=bool)
        if labels.all() or not labels.any():
            self._constant = (labels.sum() + 1.0) / (labels.size + 2.0)
            return self
        X = np.atleast_2d(np.asarray(X, dtype=float))
        kernel = ConstantKernel(1.0, (1e-2, 1e2)) * Matern(length_scale=np.ones(X.shape[1]), nu=2.5)
        self._clf = GaussianProcessClassifier(kernel=kernel, random_state=self.seed).fit(X, labels)
        self._constant = None
        return self

    def probability(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if self._constant is not None:
            return np.full(len(X), self._constant)
        if self._clf is None:
            raise RuntimeError("fit() the classifier first")
        classes = list(self._clf.classes_)
        return self._clf.predict_proba(X)[:, classes.index(True)]


def weight_by_feasibility(scores: np.ndarray, *probabilities: np.ndarray) -> np.ndarray:
    """Acquisition times the product of P(feasible). Scores that can be negative (UCB/LCB) are first shifted to be
    >= 0 so that a lower feasibility can only lower the score."""
    scores = np.asarray(scores, dtype=float)
    if scores.size and scores.min() < 0:
        scores = scores - scores.min()
    for p in probabilities:
        scores = scores * np.asarray(p, dtype=float)
    return scores


# ---------------------------------------------------------------------------------------------- maximisation
def maximize_continuous(
    score: Callable[[np.ndarray], np.ndarray],
    n_dims: int,
    *,
    project: Callable[[np.ndarray], np.ndarray] | None = None,
    n_raw_samples: int = 1024,
    n_restarts: int = 5,
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    """Arg-max of a vectorised ``score`` over the unit box [0, 1]^d.

    A scrambled Sobol sample picks the ``n_restarts`` best starting points, each refined by L-BFGS-B (finite
    differences). ``project`` maps box points onto the feasible encoded set (rounding integers, one-hot for
    categories, the simplex for compositions); the raw samples and the refined optima are projected and re-scored,
    so the returned point is always a valid encoding.
    """
    project = project or (lambda x: x)
    sampler = qmc.Sobol(d=n_dims, scramble=True, seed=seed)
    m = 1 << max(1, int(np.ceil(np.log2(max(n_raw_samples, 2)))))
    raw = project(sampler.random(m))
    raw_scores = score(raw)
    order = np.argsort(-raw_scores)[:n_restarts]
    best_x, best_f = raw[order[0]].copy(), float(raw_scores[order[0]])
    bounds = [(0.0, 1.0)] * n_dims
    for i in order:
        res = minimize(lambda x: -float(score(x[None, :])[0]), raw[i], method="L-BFGS-B", bounds=bounds)
        x = project(np.clip(res.x, 0.0, 1.0)[None, :])
        f = float(score(x)[0])
        if f > best_f:
            best_x, best_f = x[0].copy(), f
    return best_x, best_f


def select_batch(
    model: GaussianProcess,
    X_candidates: np.ndarray,
    q: int,
    kind: str = "EI",
    *,
    strategy: str = "kriging_believer",
    best: float | None = None,
    maximize: bool = True,
    exclude: Sequence[int] = (),
    **kwargs: Any,
) -> list[int]:
    """Indices of ``q`` candidates from a discrete pool, chosen one at a time with fantasised observations.

    ``kriging_believer`` pretends each pick returns the posterior mean; ``constant_liar`` pretends it returns the
    worst value seen so far (a pessimistic lie that spreads the batch more). The model's hyper-parameters stay fixed.
    """
    if strategy not in ("kriging_believer", "constant_liar"):
        raise ValueError(f"strategy must be 'kriging_believer' or 'constant_liar', got {strategy!r}")
    X_candidates = np.atleast_2d(np.asarray(X_candidates, dtype=float))
    available = np.ones(len(X_candidates), dtype=bool)
    available[list(exclude)] = False
    q = min(q, int(available.sum()))
    y_seen = model.y_train_ * model.y_std + model.y_mean
    lie = float(y_seen.min() if maximize else y_seen.max())
    chosen: list[int] = []
    current = model
    for _ in range(q):
        mean, std = current.predict(X_candidates)
        scores = acquisition_scores(kind, mean, std, best=best, maximize=maximize, **kwargs)
        scores = np.where(available, scores, -np.inf)
        pick = int(np.argmax(scores))
        chosen.append(pick)
        available[pick] = False
        if len(chosen) < q:
            fantasy = mean[pick] if strategy == "kriging_believer" else lie
            current = current.condition_on(X_candidates[pick : pick + 1], [fantasy])
    return chosen
