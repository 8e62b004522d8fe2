"""Batches of candidates: fantasised observations for a GP (kriging believer, constant liar), the greedy top of a
score, a diverse batch (farthest points in an embedding space among the best-scored candidates), and a batch of
maximal expected hypervolume improvement (several objectives, one GP each).

The greedy and diverse batches work on any scores and any :class:`~aiida_nanoos.models.posterior.Posterior` with
embeddings; active learning on the crystal-graph network (:mod:`aiida_nanoos.acquisition.selection`) uses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from aiida_nanoos.acquisition.analytic import acquisition_scores
from aiida_nanoos.acquisition.hypervolume import Directions, expected_hypervolume_improvement
from aiida_nanoos.models.gp import GaussianProcess


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
    _check_strategy(strategy)
    X_candidates = np.atleast_2d(np.asarray(X_candidates, dtype=float))
    available = np.ones(len(X_candidates), dtype=bool)
    available[list(exclude)] = False
    q = min(q, int(available.sum()))
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
            current = fantasise(current, X_candidates[pick], strategy, maximize=maximize)
    return chosen


def select_hypervolume_batch(
    models: Sequence[GaussianProcess],
    X_candidates: np.ndarray,
    q: int,
    observed: np.ndarray,
    reference: Sequence[float],
    directions: Directions = None,
    *,
    strategy: str = "kriging_believer",
    exclude: Sequence[int] = (),
    weights: np.ndarray | None = None,
) -> tuple[list[int], list[float]]:
    """Indices of ``q`` pool candidates of maximal exact EHVI, chosen one at a time with fantasised outcomes.

    ``models`` predict one objective each (columns of ``observed``, the values measured so far, in the same units and
    ``directions``). After each pick every model is conditioned on a fantasy (:func:`fantasise`): with
    ``kriging_believer`` the front also gains the predicted means, so the next pick goes where the batch does not
    already promise improvement; with ``constant_liar`` it gains the worst value seen (no improvement) and only the
    shrunken uncertainty steers the next pick. ``weights`` (e.g. probabilities of meeting constraints) multiply the
    EHVI. Returns the picks and their (weighted) EHVI when picked.
    """
    _check_strategy(strategy)
    X_candidates = np.atleast_2d(np.asarray(X_candidates, dtype=float))
    front = np.atleast_2d(np.asarray(observed, dtype=float)).reshape(-1, len(models))
    maximize = [d == "max" for d in directions] if directions is not None else [False] * len(models)
    available = np.ones(len(X_candidates), dtype=bool)
    available[list(exclude)] = False
    chosen: list[int] = []
    values: list[float] = []
    current = list(models)
    n_picks = min(int(q), int(available.sum()))
    for _ in range(n_picks):
        means, stds = zip(*(m.predict(X_candidates) for m in current), strict=True)
        M, S = np.column_stack(means), np.column_stack(stds)
        ehvi = expected_hypervolume_improvement(M, S, front, reference, directions)
        if weights is not None:
            ehvi = ehvi * weights
        ehvi = np.where(available, ehvi, -np.inf)
        pick = int(np.argmax(ehvi))
        chosen.append(pick)
        values.append(float(ehvi[pick]))
        available[pick] = False
        if len(chosen) == n_picks:
            break
        x = X_candidates[pick]
        current = [fantasise(m, x, strategy, maximize=up) for m, up in zip(current, maximize, strict=True)]
        if strategy == "kriging_believer":
            front = np.vstack([front, M[pick]])
    return chosen, values


def _check_strategy(strategy: str) -> None:
    if strategy not in ("kriging_believer", "constant_liar"):
        raise ValueError(f"batch_strategy: must be 'kriging_believer' or 'constant_liar', got {strategy!r}")


def fantasise(model: GaussianProcess, x: np.ndarray, strategy: str, *, maximize: bool = True) -> GaussianProcess:
    """The GP after pretending ``x`` was measured, hyper-parameters fixed: ``kriging_believer`` pretends the
    measurement returns the posterior mean, ``constant_liar`` the worst value seen so far (a pessimistic lie that
    spreads a batch more)."""
    _check_strategy(strategy)
    x = np.asarray(x, dtype=float).reshape(1, -1)
    if strategy == "kriging_believer":
        value = float(model.predict(x, return_std=False)[0])
    else:
        seen = model.y_train_ * model.y_std + model.y_mean
        value = float(seen.min() if maximize else seen.max())
    return model.condition_on(x, [value])


def greedy_batch(scores: np.ndarray, q: int, eligible: np.ndarray | None = None) -> list[int]:
    """The ``q`` best-scored eligible candidates, best first (ties by index)."""
    scores = np.asarray(scores, dtype=float)
    eligible = np.ones(len(scores), dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    candidates = np.flatnonzero(eligible)
    order = candidates[np.lexsort((candidates, -scores[candidates]))]
    return [int(i) for i in order[: max(int(q), 0)]]


def diverse_batch(
    scores: np.ndarray,
    embeddings: np.ndarray,
    q: int,
    *,
    eligible: np.ndarray | None = None,
    pool_factor: int = 3,
    labelled_embeddings: np.ndarray | None = None,
) -> tuple[list[int], list[float], int]:
    """A farthest-point (max-min distance) batch among the ``pool_factor * q`` best-scored eligible candidates.

    Embeddings are standardised over all candidates. The sequence starts from the best-scored candidate (or, with
    ``labelled_embeddings``, from the one farthest from what is already labelled) and then keeps adding the pool
    member farthest from everything selected or labelled, ties going to the better score. Returns the indices, the
    distance of each pick to its nearest selected/labelled point when it was picked (inf for an unconstrained first
    pick) and the pool size.
    """
    scores = np.asarray(scores, dtype=float)
    embeddings = np.asarray(embeddings, dtype=float)
    if q <= 0:
        return [], [], 0
    pool = np.asarray(greedy_batch(scores, pool_factor * q, eligible), dtype=np.int64)
    centre, spread = embeddings.mean(axis=0), embeddings.std(axis=0) + 1e-12
    points = (embeddings[pool] - centre) / spread
    min_distance = np.full(len(pool), np.inf)
    if labelled_embeddings is not None and len(labelled_embeddings):
        labelled = (np.asarray(labelled_embeddings, float) - centre) / spread
        min_distance = np.min(np.linalg.norm(points[:, None, :] - labelled[None, :, :], axis=-1), axis=1)
    chosen_local: list[int] = []
    distances: list[float] = []
    for step in range(min(q, len(pool))):
        if step == 0 and not np.isfinite(min_distance).any():
            local = 0  # nothing to keep away from yet: the best-scored candidate
        else:
            masked = np.where(np.isin(np.arange(len(pool)), chosen_local), -np.inf, min_distance)
            local = int(np.argmax(masked))  # ties resolved towards the better score (pool is sorted)
        distances.append(float(min_distance[local]))
        chosen_local.append(local)
        min_distance = np.minimum(min_distance, np.linalg.norm(points - points[local], axis=1))
    return [int(pool[i]) for i in chosen_local], distances, len(pool)
