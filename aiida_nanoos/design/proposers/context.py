"""What every proposer works with: the :class:`ProposalContext` (space, objective, configuration, state, how many),
the :class:`Proposal` it returns, and the shared pieces (the GP's training data and fit, the discrete pool)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from aiida_nanoos.design.bo import fit_gp_model
from aiida_nanoos.design.config import CampaignConfig
from aiida_nanoos.design.definition import enumerate_points
from aiida_nanoos.design.objectives import CampaignObjective
from aiida_nanoos.design.spaces import ParameterSpace
from aiida_nanoos.design.state import CampaignState
from aiida_nanoos.design.transfer import fit_transfer_model, pooled_evaluations, related_tasks


@dataclass
class Proposal:
    """One proposed candidate: a point of the space (``parameters``) and/or a cell (``atoms``)."""

    parameters: dict[str, Any] | None
    atoms: Atoms | None
    generation_method: str
    parents: list[str] = field(default_factory=list)
    acquisition: float | None = None
    rationale: str | None = None
    site_seed: int | None = None  #: the seed that placed substituted sites (fixed when the cell was already scored)


@dataclass
class ProposalContext:
    space: ParameterSpace
    objective: CampaignObjective
    config: CampaignConfig
    state: CampaignState
    n: int
    hyperparameters: Mapping[str, Any] | None = None
    #: the property model's part (active learning): ``pool`` (label, parameters, site_seed per pool candidate) and
    #: the ``selection`` of ``select_for_simulation`` over it; None or without them before a model exists
    property_model: Mapping[str, Any] | None = None


def observed_rows(state: CampaignState) -> list[int]:
    """Indices of successful evaluations that have a point of the space (what a GP can learn from)."""
    return [
        i
        for i, r in enumerate(state.candidates)
        if r.ok and r.parameters is not None and np.all(np.isfinite(state.points[i]))
    ]


def single_target(ctx: ProposalContext) -> tuple[bool, Any]:
    """(maximize, settings) of the one-objective GP: a target-range objective models the property itself."""
    objective = ctx.objective.primary
    return objective.maximize, ctx.config.bo_settings(objective.target_range)


def training_data(ctx: ProposalContext, key: str | None = None) -> dict[str, Any]:
    """X (encoded points), Y (one column per objective as the GP models it: ``key`` 'raw' for a target window,
    else 'objectives') and constraint margins; ``rows`` are the campaign's own candidates, and the evaluations of
    earlier campaigns of the same task (``config.warm_start``) follow them as ``n_pooled`` extra rows."""
    records = ctx.state.candidates
    rows = observed_rows(ctx.state)
    X = np.asarray([ctx.state.points[i] for i in rows], dtype=float).reshape(len(rows), ctx.space.n_encoded)
    n_constraints = len(ctx.objective.constraints)
    C = np.asarray([records[i].margins for i in rows], dtype=float).reshape(len(rows), n_constraints)
    if ctx.objective.multi:
        m = len(ctx.objective.objectives)
        Y = np.asarray([records[i].objectives for i in rows], dtype=float).reshape(len(rows), m)
        return {"rows": rows, "X": X, "Y": Y, "C": C, "n_pooled": 0}
    if key is None:
        _, settings = single_target(ctx)
        key = "raw" if settings.acquisition.upper() == "RANGE" else "objectives"
    Y = np.asarray([getattr(records[i], key)[0] for i in rows], dtype=float).reshape(len(rows), 1)
    pooled = pooled_evaluations(ctx.state.warm_start, "raw" if key == "raw" else "values")
    n_pooled = len(pooled["y"])
    if n_pooled:
        X = np.vstack([X, pooled["X"]])
        Y = np.vstack([Y, pooled["y"][:, None]])
        C = np.vstack([C, pooled["C"].reshape(n_pooled, n_constraints)])
    return {"rows": rows, "X": X, "Y": Y, "C": C, "n_pooled": n_pooled}


def _fit_seed(state: CampaignState) -> int:
    """A seed for model fits that does not advance the state's stream (fits are separate, recorded steps)."""
    return int(np.random.default_rng([int(state.seed), int(state.counter), 7919]).integers(2**31 - 1))


def fit_models(
    space: ParameterSpace, objective: CampaignObjective, config: CampaignConfig, state: CampaignState
) -> dict[str, Any] | None:
    """Fit the campaign's GP (one per objective) to the history; ``None`` with fewer than two observations (the
    multi-task GP of a related warm start needs none of this campaign's own)."""
    ctx = ProposalContext(space, objective, config, state, 0)
    related = [] if objective.multi else related_tasks(state.warm_start)
    data = training_data(ctx, "objectives" if related else None)
    if len(data["Y"]) + sum(len(task.y) for task in related) < 2:
        return None
    settings = config.bo_settings(objective.primary.target_range)
    seed = _fit_seed(state)
    if related:
        return {"models": [_transfer_fit(objective, data, related, seed)]}
    models = []
    warm = state.gp_models or []
    for j, o in enumerate(objective.objectives):
        y = data["Y"][:, j]
        transform = settings.output_transform
        if not objective.multi and settings.acquisition.upper() == "RANGE" and transform != "log":
            transform = "none"
        previous = state.gp_hyperparameters if not objective.multi else (warm[j] if j < len(warm) else None)
        model = fit_gp_model(
            data["X"],
            y,
            maximize=o.maximize,
            transform=transform if not objective.multi else "none",
            kernel=settings.kernel,
            priors=settings.gp_priors,
            hyperparameters=previous,
            seed=seed + j,
        )
        models.append(
            {
                "objective": o.name,
                "output_transform": model.transform,
                "power_lambda": model.power_lambda,
                "n_observed": len(y),
                **model.gp.get_hyperparameters(),
            }
        )
    return {"models": models}


def _transfer_fit(objective: CampaignObjective, data: Mapping[str, Any], related: list, seed: int) -> dict[str, Any]:
    """The multi-task GP over this campaign's evaluations (task 0) and the earlier related campaigns' (one task
    each): its hyper-parameters and the learned correlation of each earlier task with this one."""
    fitted = fit_transfer_model(data["X"], data["Y"][:, 0], related, maximize=objective.primary.maximize, seed=seed)
    return {
        "objective": objective.primary.name,
        "model": "multi-task GP (TransferGaussianProcess: shared + task-own Matern 5/2)",
        "tasks": ["this campaign", *(task.label for task in related)],
        "task_sizes": [len(data["Y"]), *(len(task.y) for task in related)],
        "task_correlations": fitted.task_correlations(),
        "n_observed": len(data["Y"]),
        **fitted.gp.get_hyperparameters(),
    }


def candidate_pool(ctx: ProposalContext, rng: np.random.Generator) -> list[dict[str, Any]] | None:
    """The discrete candidates to choose from: the whole space when it is small and finite, else a random pool of
    ``config.candidate_pool`` points, else None (optimise over the continuous space)."""
    points = enumerate_points(ctx.space)
    if points is not None:
        return points
    if ctx.config.candidate_pool:
        return ctx.space.sample(ctx.config.candidate_pool, rng)
    return None


def unevaluated(space: ParameterSpace, state: CampaignState, pool: Sequence[Mapping[str, Any]]) -> list[int]:
    """Indices of the pool points not evaluated yet (here, or by an earlier campaign of the same task)."""
    U = space.encode(list(pool))
    done = np.zeros(len(U), dtype=bool)
    for row in [*state.points, *pooled_evaluations(state.warm_start)["X"]]:
        row = np.asarray(row, dtype=float)
        if np.all(np.isfinite(row)):
            done |= np.all(np.abs(U - row) < 1e-9, axis=1)
    return np.flatnonzero(~done).tolist()
