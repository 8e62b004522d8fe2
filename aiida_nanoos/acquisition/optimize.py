"""Maximising an acquisition: exactly over a large discrete pool, or over the continuous unit box."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.stats import qmc

from aiida_nanoos.acquisition.analytic import acquisition_scores
from aiida_nanoos.models.gp import GaussianProcess


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

    EI (and log EI) and UCB/LCB grow with the std, so scoring every candidate with the cheap std upper bound of
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
    if kind_u not in ("EI", "LOGEI", "UCB", "LCB"):
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
