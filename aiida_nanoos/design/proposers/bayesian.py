"""Bayesian optimisation: a GP and an acquisition function (one objective), or one GP per objective and expected
hypervolume improvement over a pool (several), weighted by the probability of meeting the constraints."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from aiida_nanoos.acquisition.feasibility import FeasibilityModel, weight_by_feasibility
from aiida_nanoos.acquisition.hypervolume import expected_hypervolume_improvement
from aiida_nanoos.design.bo import fit_gp_model, suggest
from aiida_nanoos.design.proposers.context import (
    Proposal,
    ProposalContext,
    candidate_pool,
    fit_models,
    single_target,
    training_data,
    unevaluated,
)
from aiida_nanoos.design.proposers.scored_pool import propose_scored_pool, wants_scored_pool
from aiida_nanoos.design.state import OptimizerHistory
from aiida_nanoos.design.statistics import reference_point

#: Points in the random pool the multi-objective acquisition is maximised over (continuous spaces).
MULTIOBJECTIVE_POOL = 512


def propose_bo(ctx: ProposalContext) -> tuple[list[Proposal], dict[str, Any]]:
    """Bayesian optimisation: GP + acquisition (one objective) or GPs + expected hypervolume improvement."""
    if ctx.objective.multi:
        return _propose_multiobjective(ctx)
    if wants_scored_pool(ctx):  # a warm start from related tasks, or cost-aware selection
        return propose_scored_pool(ctx)
    maximize, settings = single_target(ctx)
    settings.batch_size = ctx.n
    data = training_data(ctx)
    # the GP sees only successful evaluations with a point; failures stay in the real state (never re-proposed)
    view = OptimizerHistory(seed=ctx.state.seed, counter=ctx.state.counter)
    used = set(data["rows"])
    others = [[float(x) for x in p] for i, p in enumerate(ctx.state.points) if i not in used and np.all(np.isfinite(p))]
    view.points = [[float(x) for x in p] for p in data["X"]] + others
    view.values = [float(v) for v in data["Y"][:, 0]] + [None] * len(others)
    view.gp_hyperparameters = ctx.state.gp_hyperparameters
    if ctx.hyperparameters is not None:
        view.gp_hyperparameters = dict(ctx.hyperparameters["models"][0])
        settings.optimize_hyperparameters = False
    constraint_values = None
    if ctx.objective.constraints and len(data["rows"]) >= 2:
        settings.constraint_bounds = [(0.0, None)] * len(ctx.objective.constraints)
        constraint_values = data["C"]
    pool = candidate_pool(ctx, view.rng())
    if pool is not None and not unevaluated(ctx.space, ctx.state, pool):
        ctx.state.counter = view.counter
        return [], {"algorithm": "bayesian_optimization", "reason": "every candidate of the pool was evaluated"}
    points, report = suggest(
        ctx.space,
        view,
        maximize=maximize,
        settings=settings,
        candidates=pool,
        constraint_values=constraint_values,
    )
    ctx.state.counter = view.counter
    if view.gp_hyperparameters is not None:
        ctx.state.gp_hyperparameters = view.gp_hyperparameters
    values = report.get("acquisition_values") or [None] * len(points)
    method = "random" if report.get("reason") == "random start" else f"bo:{settings.acquisition.upper()}"
    proposals = [Proposal(p, None, method, acquisition=v) for p, v in zip(points, values, strict=False)]
    report = {"algorithm": "bayesian_optimization", **{k: v for k, v in report.items() if k != "gp_hyperparameters"}}
    return proposals, report


def _propose_multiobjective(ctx: ProposalContext) -> tuple[list[Proposal], dict[str, Any]]:
    """Greedy batch of maximal expected hypervolume improvement over a pool (kriging believer between picks),
    weighted by the probability of meeting the constraints."""
    rng = ctx.state.rng()
    data = training_data(ctx)
    pool = candidate_pool(ctx, rng)
    if pool is None:
        pool = ctx.space.sample(MULTIOBJECTIVE_POOL, rng)
    left = unevaluated(ctx.space, ctx.state, pool)
    if len(data["rows"]) < 2:
        chosen = rng.choice(left, size=min(ctx.n, len(left)), replace=False) if left else []
        return [Proposal(pool[int(i)], None, "random") for i in chosen], {
            "algorithm": "bayesian_optimization",
            "reason": "random start",
            "n_observed": len(data["rows"]),
        }
    hyper = ctx.hyperparameters or fit_models(ctx.space, ctx.objective, ctx.config, ctx.state)
    ctx.state.gp_models = hyper["models"]  # warm start of the next fits
    seed = int(rng.integers(2**31 - 1))
    settings = ctx.config.bo_settings()
    U = ctx.space.encode([pool[i] for i in left])
    models = []
    for j, o in enumerate(ctx.objective.objectives):
        model = fit_gp_model(
            data["X"],
            data["Y"][:, j],
            maximize=o.maximize,
            transform="none",
            kernel=settings.kernel,
            priors=settings.gp_priors,
            hyperparameters=hyper["models"][j],
            optimize=False,
            seed=seed + j,
        )
        models.append(model)
    feasibility = np.ones(len(U))
    if ctx.objective.constraints:
        for k in range(data["C"].shape[1]):
            fm = FeasibilityModel(lower=0.0, upper=None, input_scaling="none", seed=seed).fit(
                data["X"], data["C"][:, k]
            )
            feasibility = weight_by_feasibility(feasibility, fm.probability(U))
    # oriented (larger is better) front of the feasible observations
    sign = np.array([1.0 if o.maximize else -1.0 for o in ctx.objective.objectives])
    records = ctx.state.candidates
    feasible_rows = [k for k, i in enumerate(data["rows"]) if records[i].feasible]
    front = data["Y"][feasible_rows] * sign
    stored = reference_point(records, ctx.objective, ctx.config, ctx.state.reference_point)
    if stored is not None:  # the campaign's hypervolume reference, oriented
        reference = np.asarray(stored, dtype=float) * sign
    else:
        everything = data["Y"] * sign
        span = np.ptp(everything, axis=0)
        reference = everything.min(axis=0) - 0.1 * np.where(span > 0, span, 1.0)
    directions = ["max"] * len(sign)
    chosen: list[int] = []
    values: list[float] = []
    current = models
    for _ in range(min(ctx.n, len(left))):
        means, stds = zip(*(m.gp.predict(U) for m in current), strict=True)
        M, S = np.column_stack(means), np.column_stack(stds)  # oriented model scale (transform 'none')
        ehvi = expected_hypervolume_improvement(M, S, front, reference, directions, seed=seed) * feasibility
        ehvi[chosen] = -np.inf
        pick = int(np.argmax(ehvi))
        chosen.append(pick)
        values.append(float(ehvi[pick]))
        front = np.vstack([front, M[pick]])  # kriging believer: pretend the mean was measured
        current = [
            replace(m, gp=m.gp.condition_on(U[pick][None, :], [float(M[pick, j])])) for j, m in enumerate(current)
        ]
    proposals = [Proposal(pool[left[i]], None, "bo:EHVI", acquisition=v) for i, v in zip(chosen, values, strict=True)]
    return proposals, {
        "algorithm": "bayesian_optimization",
        "acquisition": "EHVI",
        "n_observed": len(data["rows"]),
        "pool_size": len(left),
        "acquisition_values": values,
        "reference_point_oriented": reference.tolist(),
    }
