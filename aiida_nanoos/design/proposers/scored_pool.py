"""Bayesian optimisation over a pool scored candidate by candidate: the path of a warm start from related tasks (the
multi-task GP) and of cost-aware selection (the cheapest candidate whose acquisition value is close to the
largest).

Both need the acquisition value of every candidate at once, so the batch is picked from a pool (the whole space when
it is small and finite, else ``config.candidate_pool`` or :data:`POOL_SIZE` random points of the space), greedily,
with a constant liar between picks (the worst value seen, fantasised at the picked point, pushes the next pick away).

Cost-aware: the cost of each candidate comes from the cells' atoms and k-points through
:func:`~aiida_nanoos.design.cost.predicted_costs` (the DFT prior until two evaluations reported their CPU seconds,
then a cost model fitted to them); :func:`~aiida_nanoos.design.cost.cost_aware_scores` then takes the cheapest
candidate whose acquisition value is within a share of its spread over the pool below the largest, the share cooling
to 0 as ``config.budget_cpu_hours`` is spent, else ``config.budget`` (evaluations); constant without either. In
``benchmark cost-aware`` (five landscapes, two ways the cell size enters, seeds 0 and 100) this needs 0.19-0.91x the
cost of a cost-blind campaign, where improvement per cost, the rule before, needed 0.43-1.18x (seed 0).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from aiida_nanoos.design.bo import BOSettings, fit_gp_model
from aiida_nanoos.design.cost import cooling_exponent, cost_aware_scores, cost_features, predicted_costs
from aiida_nanoos.design.proposers.context import (
    Proposal,
    ProposalContext,
    candidate_pool,
    single_target,
    training_data,
    unevaluated,
)
from aiida_nanoos.design.records import cpu_hours_used, n_simulated, paid_evaluations
from aiida_nanoos.design.transfer import fit_transfer_model, related_tasks
from aiida_nanoos.models.transfer_gp import TransferGaussianProcess

#: Random points scored per iteration when the space is continuous and ``config.candidate_pool`` is not set.
POOL_SIZE = 512


def wants_scored_pool(ctx: ProposalContext) -> bool:
    """A fitted model and either related earlier tasks or cost-aware selection (one objective)."""
    if ctx.objective.multi or ctx.hyperparameters is None:
        return False
    return bool(ctx.config.cost_aware or related_tasks(ctx.state.warm_start))


def next_pick(acquisition: np.ndarray, cost: np.ndarray | None, exponent: float, exclude: list[int]) -> int:
    """The candidate to evaluate next, skipping ``exclude``: the largest acquisition value, or with costs the cheapest
    close to it (:func:`cost_aware_scores`)."""
    scores = np.array(acquisition, dtype=float)
    if cost is not None:
        left = np.ones(len(scores), dtype=bool)
        left[exclude] = False
        scores = cost_aware_scores(scores, cost, exponent, left)
    scores[exclude] = -np.inf
    return int(np.argmax(scores))


def _acquisition(ctx: ProposalContext, settings: BOSettings, related: bool) -> BOSettings:
    kind = settings.acquisition.upper()
    if related and kind == "RANGE":  # the earlier tasks are known by their objective values, not the raw property
        kind = "EI"
    return replace(settings, acquisition=kind)


def _cell_features(ctx: ProposalContext, pool: list[dict[str, Any]]) -> np.ndarray | None:
    """Atoms and k-points of each pool candidate's cell (None when the space builds no cell)."""
    if not ctx.space.is_structural:
        return None
    cells = [ctx.space.to_atoms(point, 0) for point in pool]
    return np.asarray([cost_features(len(atoms), atoms.cell.array) for atoms in cells], dtype=float)


def propose_scored_pool(ctx: ProposalContext) -> tuple[list[Proposal], dict[str, Any]]:
    """The batch of largest acquisition (the cheapest close to it when cost-aware) over a pool; see the module."""
    maximize, settings = single_target(ctx)
    related = related_tasks(ctx.state.warm_start)
    settings = _acquisition(ctx, settings, bool(related))
    rng = ctx.state.rng()
    pool = candidate_pool(ctx, rng) or ctx.space.sample(POOL_SIZE, rng)
    left = unevaluated(ctx.space, ctx.state, pool)
    report: dict[str, Any] = {"algorithm": "bayesian_optimization", "acquisition": settings.acquisition}
    if not left:
        return [], {**report, "reason": "every candidate of the pool was evaluated"}
    pool = [pool[i] for i in left]
    U = ctx.space.encode(pool)
    data = training_data(ctx, "objectives" if related or settings.acquisition != "RANGE" else "raw")
    X, y = data["X"], data["Y"][:, 0]
    hyper = dict(ctx.hyperparameters["models"][0])
    seed = int(rng.integers(2**31 - 1))
    cost, exponent = None, 1.0
    if ctx.config.cost_aware:
        features = _cell_features(ctx, pool)
        if features is not None:
            cost, report["cost_source"] = predicted_costs(*paid_evaluations(ctx.state.candidates), features)
            if ctx.config.budget_cpu_hours:
                exponent = cooling_exponent(cpu_hours_used(ctx.state.candidates), ctx.config.budget_cpu_hours)
            elif ctx.config.budget is not None:  # a budget of evaluations: cheap first, the best at any price last
                exponent = cooling_exponent(n_simulated(ctx.state.candidates), ctx.config.budget)
            report["cost_exponent"] = exponent

    def acquisition_values(X_fit: np.ndarray, y_fit: np.ndarray) -> np.ndarray:
        if related:
            gp = TransferGaussianProcess(seed=seed).set_hyperparameters(hyper)
            fitted = fit_transfer_model(X_fit, y_fit, related, maximize=maximize, model=gp, optimize=False, seed=seed)
            return fitted.scores(U, settings)
        model = fit_gp_model(
            X_fit,
            y_fit,
            maximize=maximize,
            transform=hyper.get("output_transform") or "none",
            kernel=settings.kernel,
            priors=settings.gp_priors,
            hyperparameters=hyper,
            optimize=False,
            seed=seed,
        )
        return model.scores(U, settings)

    # the worst value seen stands in for each pick of the batch; before any of its own, the related tasks' worst
    seen = y if len(y) else np.concatenate([task.y for task in related])
    liar = float(np.min(seen) if maximize else np.max(seen))
    chosen: list[int] = []
    values: list[float] = []
    for _ in range(min(ctx.n, len(pool))):
        acquisition = acquisition_values(X, y)
        pick = next_pick(acquisition, cost, exponent, chosen)
        chosen.append(pick)
        values.append(float(acquisition[pick]))
        X, y = np.vstack([X, U[pick]]), np.append(y, liar)
    method = "bo:" + ("transfer:" if related else "") + settings.acquisition + ("/cost" if cost is not None else "")
    proposals = [
        Proposal(
            pool[i],
            None,
            method,
            acquisition=v,
            rationale=None if cost is None else f"predicted relative CPU cost {cost[i]:.3g}",
        )
        for i, v in zip(chosen, values, strict=True)
    ]
    report.update(
        model="multi-task GP" if related else "GP",
        n_observed=len(data["Y"]),
        n_pooled=data["n_pooled"],
        pool_size=len(pool),
        acquisition_values=values,
    )
    if cost is not None:
        report["predicted_costs"] = [float(cost[i]) for i in chosen]
    return proposals, report
