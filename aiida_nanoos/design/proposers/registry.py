"""Where a campaign's next candidates come from: random search, a genetic algorithm, Bayesian optimisation (one
objective, or several through expected hypervolume improvement) or an external proposer.

Every algorithm is a function ``(ProposalContext) -> (proposals, report)`` registered in :data:`PROPOSERS`; the
campaign calls :func:`propose` and never branches on the algorithm itself, so a new one (active learning with a
surrogate's uncertainty) is one more entry. All randomness comes from the campaign state's seeded stream
(``state.rng()``), and the GA and GP state live in the state, so a campaign resumed from any stored state proposes
exactly what it would have proposed without the interruption.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from ase import Atoms

from aiida_nanoos.acquisition.functions import FeasibilityModel, weight_by_feasibility
from aiida_nanoos.design import campaign as cp
from aiida_nanoos.design.bo import fit_surrogate, suggest
from aiida_nanoos.design.pareto import expected_hypervolume_improvement
from aiida_nanoos.design.proposers.genetic import MUTATION_TYPES, StructureGA, VectorGA
from aiida_nanoos.design.spaces import ParameterSpace, Substitution, atoms_to_dict
from aiida_nanoos.design.state import OptimizerState

#: Points in the random pool the multi-objective acquisition is maximised over (continuous spaces).
MULTIOBJECTIVE_POOL = 512


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
    objective: cp.CampaignObjective
    config: cp.CampaignConfig
    state: OptimizerState
    n: int
    hyperparameters: Mapping[str, Any] | None = None
    #: the surrogate's part (active learning): ``pool`` (label, parameters, site_seed per pool candidate) and the
    #: ``selection`` of ``select_for_simulation`` over it; None or without them before a model exists
    surrogate: Mapping[str, Any] | None = None


# ---------------------------------------------------------------------------------------------- data for models
def _observed_rows(state: OptimizerState) -> list[int]:
    """Indices of successful evaluations that have a point of the space (what a GP can learn from)."""
    records = state.extra.get("candidates") or []
    return [
        i
        for i, r in enumerate(records)
        if r["status"] == "ok" and r.get("parameters") is not None and np.all(np.isfinite(state.points[i]))
    ]


def _single_target(ctx: ProposalContext) -> tuple[bool, Any]:
    """(maximize, settings) of the one-objective GP: a target-range objective models the property itself."""
    objective = ctx.objective.primary
    settings = ctx.config.bo_settings(objective.target_range)
    return objective.maximize, settings


def training_data(ctx: ProposalContext) -> dict[str, Any]:
    """X (encoded points), Y (one column per objective as the GP models it) and constraint margins."""
    records = ctx.state.extra.get("candidates") or []
    rows = _observed_rows(ctx.state)
    X = np.asarray([ctx.state.points[i] for i in rows], dtype=float).reshape(len(rows), ctx.space.n_encoded)
    if ctx.objective.multi:
        m = len(ctx.objective.objectives)
        Y = np.asarray([records[i]["objectives"] for i in rows], dtype=float).reshape(len(rows), m)
    else:
        _, settings = _single_target(ctx)
        key = "raw" if settings.acquisition.upper() == "RANGE" else "objectives"
        Y = np.asarray([records[i][key][0] for i in rows], dtype=float).reshape(len(rows), 1)
    C = np.asarray([records[i]["margins"] for i in rows], dtype=float).reshape(
        len(rows), len(ctx.objective.constraints)
    )
    return {"rows": rows, "X": X, "Y": Y, "C": C}


def _fit_seed(state: OptimizerState) -> int:
    """A seed for model fits that does not advance the state's stream (fits are separate, recorded steps)."""
    return int(np.random.default_rng([int(state.seed), int(state.counter), 7919]).integers(2**31 - 1))


def fit_models(
    space: ParameterSpace, objective: cp.CampaignObjective, config: cp.CampaignConfig, state: OptimizerState
) -> dict[str, Any] | None:
    """Fit the campaign's GP (one per objective) to the history; ``None`` with fewer than two observations."""
    ctx = ProposalContext(space, objective, config, state, 0)
    data = training_data(ctx)
    if len(data["rows"]) < 2:
        return None
    settings = config.bo_settings(objective.primary.target_range)
    seed = _fit_seed(state)
    models = []
    warm = state.extra.get("gp_hyperparameters") or []
    for j, o in enumerate(objective.objectives):
        y = data["Y"][:, j]
        transform = settings.output_transform
        if not objective.multi and settings.acquisition.upper() == "RANGE" and transform != "log":
            transform = "none"
        previous = state.gp_hyperparameters if not objective.multi else (warm[j] if j < len(warm) else None)
        model = fit_surrogate(
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


# ---------------------------------------------------------------------------------------------- algorithms
def _pool(ctx: ProposalContext, rng: np.random.Generator) -> list[dict[str, Any]] | None:
    """The discrete candidates to choose from: the whole space when it is small and finite, else a random pool of
    ``config.candidate_pool`` points, else None (optimise over the continuous space)."""
    points = cp.enumerate_points(ctx.space)
    if points is not None:
        return points
    if ctx.config.candidate_pool:
        return ctx.space.sample(ctx.config.candidate_pool, rng)
    return None


def _unevaluated(space: ParameterSpace, state: OptimizerState, pool: Sequence[Mapping[str, Any]]) -> list[int]:
    U = space.encode(list(pool))
    done = np.zeros(len(U), dtype=bool)
    for row in state.points:
        row = np.asarray(row, dtype=float)
        if np.all(np.isfinite(row)):
            done |= np.all(np.abs(U - row) < 1e-9, axis=1)
    return np.flatnonzero(~done).tolist()


def propose_random(ctx: ProposalContext) -> tuple[list[Proposal], dict[str, Any]]:
    """Uniform random points (the baseline); in a finite space, never one that was already evaluated."""
    rng = ctx.state.rng()
    pool = _pool(ctx, rng)
    if pool is None:
        points = ctx.space.sample(ctx.n, rng)
    else:
        left = _unevaluated(ctx.space, ctx.state, pool)
        chosen = rng.choice(left, size=min(ctx.n, len(left)), replace=False) if left else []
        points = [pool[int(i)] for i in chosen]
    return [Proposal(p, None, "random") for p in points], {"algorithm": "random"}


def propose_bo(ctx: ProposalContext) -> tuple[list[Proposal], dict[str, Any]]:
    """Bayesian optimisation: GP + acquisition (one objective) or GPs + expected hypervolume improvement."""
    if ctx.objective.multi:
        return _propose_multiobjective(ctx)
    maximize, settings = _single_target(ctx)
    settings.batch_size = ctx.n
    data = training_data(ctx)
    # the GP sees only successful evaluations with a point; failures stay in the real state (never re-proposed)
    view = OptimizerState(seed=ctx.state.seed, counter=ctx.state.counter)
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
    pool = _pool(ctx, view.rng())
    if pool is not None and not _unevaluated(ctx.space, ctx.state, pool):
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
    pool = _pool(ctx, rng)
    if pool is None:
        pool = ctx.space.sample(MULTIOBJECTIVE_POOL, rng)
    left = _unevaluated(ctx.space, ctx.state, pool)
    if len(data["rows"]) < 2:
        chosen = rng.choice(left, size=min(ctx.n, len(left)), replace=False) if left else []
        return [Proposal(pool[int(i)], None, "random") for i in chosen], {
            "algorithm": "bayesian_optimization",
            "reason": "random start",
            "n_observed": len(data["rows"]),
        }
    hyper = ctx.hyperparameters or fit_models(ctx.space, ctx.objective, ctx.config, ctx.state)
    ctx.state.extra["gp_hyperparameters"] = hyper["models"]  # warm start of the next fits
    seed = int(rng.integers(2**31 - 1))
    settings = ctx.config.bo_settings()
    U = ctx.space.encode([pool[i] for i in left])
    models = []
    for j, o in enumerate(ctx.objective.objectives):
        model = fit_surrogate(
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
    records = ctx.state.extra["candidates"]
    feasible_rows = [k for k, i in enumerate(data["rows"]) if records[i].get("feasible")]
    front = data["Y"][feasible_rows] * sign
    stored = cp.reference_point(records, ctx.objective, ctx.config, ctx.state.extra.get("reference_point"))
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


def _genetic_kwargs(config: cp.CampaignConfig, *keys: str) -> dict[str, Any]:
    return {k: config.genetic[k] for k in keys if k in config.genetic}


def _fitness(ctx: ProposalContext, record: Mapping[str, Any]) -> float | None:
    """Higher is better; infeasible candidates rank below every feasible one (by how far they miss)."""
    if record["status"] != "ok":
        return None
    score = record["objectives"][0] * (1.0 if ctx.objective.primary.maximize else -1.0)
    if not record.get("feasible"):
        score = -1e6 + min(record.get("margins") or [0.0])
    return float(score)


def propose_genetic(ctx: ProposalContext) -> tuple[list[Proposal], dict[str, Any]]:
    """A genetic algorithm: on cells (cut-and-splice crossover; swap_element, shift_atom, change_lattice mutations)
    for structural spaces, on encoded points otherwise. The last batch's fitness is told before asking."""
    state, space, config = ctx.state, ctx.space, ctx.config
    records = state.extra.get("candidates") or []
    told = int(state.extra.get("ga_told", 0))
    new = [r for r in records[told:] if _fitness(ctx, r) is not None]
    population_size = int(config.genetic.get("population_size", max(2 * config.batch_size, 8)))
    common = _genetic_kwargs(config, "elite_fraction", "crossover_probability", "mutation_probability")
    if cp.representation(space, config) == "structure":
        is_valid = lambda atoms: not space.violations(atoms)  # noqa: E731
        if state.ga is None:
            pool = [s for d in space.dimensions if isinstance(d, Substitution) for s in (d.host, *d.dopants)]
            pool = pool or cp.space_elements(space)
            ga = StructureGA(
                population_size=population_size,
                mutation_types=tuple(config.genetic.get("mutation_types", MUTATION_TYPES)),
                element_pool=sorted(set(pool)),
                is_valid=is_valid,
                seed=int(state.rng().integers(2**31 - 1)),
                **common,
                **_genetic_kwargs(config, "max_displacement", "max_strain"),
            )
        else:
            ga = StructureGA.from_dict(state.ga, is_valid=is_valid)
        if new:
            ga.tell([cp.candidate_atoms(space, r) for r in new], [_fitness(ctx, r) for r in new])
        if not ga.population:  # first generation: random points of the space, a diverse start
            points = space.sample(ctx.n, state.rng())
            proposals = [Proposal(p, None, "random") for p in points]
        else:
            children = ga.ask(ctx.n)
            proposals = [
                Proposal(
                    None,
                    child,
                    f"genetic:{child.info.get('generation_method')}",
                    [p for p in child.info.get("parents", []) if p],
                )
                for child in children
            ]
    else:
        if state.ga is None:
            ga = VectorGA.for_space(
                space,
                population_size=population_size,
                seed=int(state.rng().integers(2**31 - 1)),
                **common,
                **_genetic_kwargs(config, "mutation_scale"),
            )
        else:
            ga = VectorGA.from_dict(state.ga, project=space.project)
        rows = [i for i in range(told, len(records)) if _fitness(ctx, records[i]) is not None]
        if rows:
            X = np.asarray([state.points[i] for i in rows], dtype=float)
            ga.tell(X, [_fitness(ctx, records[i]) for i in rows])
        method = "genetic:vector" if len(ga.fitness) else "random"
        proposals = [Proposal(p, None, method) for p in space.decode(ga.ask(ctx.n))]
    state.ga = ga.to_dict()
    state.extra["ga_told"] = len(records)
    return proposals, {
        "algorithm": "genetic",
        "representation": cp.representation(space, config),
        "population": len(ga.fitness),
        "best_fitness": float(ga.fitness.max()) if len(ga.fitness) else None,
    }


def propose_external(ctx: ProposalContext) -> tuple[list[Proposal], dict[str, Any]]:
    """Ask the external proposer (HTTP) for candidates and keep those that are valid in the space.

    Raises :class:`~aiida_nanoos.design.proposers.external.ExternalProposerError` when the endpoint fails.
    """
    from aiida_nanoos.design.proposers.external import ExternalSettings, parse_candidates, request_candidates

    settings = ExternalSettings.from_dict(ctx.config.external)
    payload = {
        "objective": ctx.objective.to_dict(),
        "search_space": ctx.space.to_dict(),
        "history": cp.history(ctx.state, ctx.space, settings.context_window),
        "batch_size": ctx.n,
        "iteration": ctx.state.iteration,
    }
    answer = request_candidates(settings, payload)
    accepted, rejected = parse_candidates(ctx.space, answer, ctx.n)
    proposals = [
        Proposal(a["parameters"], a["atoms"], a["generation_method"], rationale=a["rationale"]) for a in accepted
    ]
    message = answer.get("message")
    return proposals, {
        "algorithm": "external",
        "url": settings.url,
        "received": len(answer.get("candidates") or []),
        "accepted": len(accepted),
        "rejected": rejected,
        "message": message[:500] if isinstance(message, str) else None,
    }


def generate_pool(
    space: ParameterSpace, config: cp.CampaignConfig, state: OptimizerState
) -> tuple[list[dict[str, Any]], list[Atoms]]:
    """The candidates an active-learning iteration scores: ``surrogate.pool_size`` random points of the space never
    evaluated (drawn from the whole space when it is small and finite), each with the seed that places its
    substituted sites, and their cells. Advances the state's random stream."""
    settings = config.surrogate_settings()
    rng = state.rng()
    points = cp.enumerate_points(space)
    if points is not None:
        left = _unevaluated(space, state, points) if points else []
        chosen = rng.choice(left, size=min(settings.pool_size, len(left)), replace=False) if left else []
        points = [points[int(i)] for i in chosen]
    else:
        points = space.sample(settings.pool_size, rng)
    pool, cells, seen = [], [], set()
    for parameters in points:
        site_seed = int(rng.integers(2**31 - 1)) if space.is_structural else None
        atoms = space.to_atoms(parameters, site_seed) if space.is_structural else None
        if atoms is None:
            raise ValueError("active learning scores structures: the search space needs a base_structure")
        key = repr(atoms_to_dict(atoms))
        if space.violations(atoms) or key in seen:
            continue
        seen.add(key)
        label = f"p{len(pool):03d}"
        atoms.info = {"pool_label": label}
        pool.append({"label": label, "parameters": copy.deepcopy(parameters), "site_seed": site_seed})
        cells.append(atoms)
    return pool, cells


def propose_active_learning(ctx: ProposalContext) -> tuple[list[Proposal], dict[str, Any]]:
    """The pool candidates the surrogate's selection chose (best first), each with its acquisition score and the
    selection's reason; random points before a model exists."""
    surrogate = ctx.surrogate or {}
    if surrogate.get("selection") is None:
        proposals, report = propose_random(ctx)
        return proposals, {**report, "algorithm": "active_learning", "reason": "no surrogate model yet: random start"}
    selection = surrogate["selection"]
    pool = {entry["label"]: entry for entry in surrogate.get("pool") or []}
    strategy = selection.get("strategy")
    proposals = []
    for entry in selection.get("selected") or []:
        chosen = pool[entry["identifier"]]
        proposals.append(
            Proposal(
                chosen["parameters"],
                None,
                f"active_learning:{strategy}",
                acquisition=entry.get("acquisition_score"),
                rationale=entry.get("reason"),
                site_seed=chosen.get("site_seed"),
            )
        )
    return proposals[: ctx.n], {
        "algorithm": "active_learning",
        "strategy": strategy,
        "model": (selection.get("prediction_attributes") or {}).get("model"),
        "pool_size": len(pool),
        "selected": len(proposals),
        "mean_uncertainty": selection.get("mean_uncertainty"),
    }


#: algorithm name -> proposer. Active learning (GNN surrogate + uncertainty) plugs in here.
PROPOSERS: dict[str, Callable[[ProposalContext], tuple[list[Proposal], dict[str, Any]]]] = {
    "random": propose_random,
    "genetic": propose_genetic,
    "bayesian_optimization": propose_bo,
    "external": propose_external,
    "active_learning": propose_active_learning,
}


def propose(
    space: ParameterSpace,
    objective: cp.CampaignObjective,
    config: cp.CampaignConfig,
    state: OptimizerState,
    hyperparameters: Mapping[str, Any] | None = None,
    surrogate: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Propose the next batch and register it in ``state.extra['pending']``.

    Returns ``{"candidates": [(record, atoms), ...], "report": {...}}``. The batch is at most ``batch_size`` and
    at most what is left of the budget; invalid or duplicate proposals are dropped (listed in the report). Each
    record has the candidate's id, generation method, parent ids, parameters, the seed that placed its
    substituted sites, its formula, and a structure when it has no parameters.
    """
    if state.extra.get("pending"):
        raise ValueError("the previous batch was proposed but never recorded")
    n = config.batch_size
    # the budget counts DFT runs: with a surrogate model evaluating (ml_only, hybrid) the batch is not cut by it
    if config.budget is not None and (config.evaluation_method == "dft" or not surrogate):
        n = min(n, config.budget - cp.n_simulated(state.extra.get("candidates") or []))
    if n <= 0:
        state.extra["converged"] = state.extra.get("converged") or "budget_exhausted"
        return {"candidates": [], "report": {"algorithm": config.algorithm, "reason": "budget exhausted"}}
    ctx = ProposalContext(space, objective, config, state, n, hyperparameters, surrogate)
    proposals, report = PROPOSERS[config.algorithm](ctx)
    out = []
    dropped = []
    seen: set[str] = set()
    for proposal in proposals:
        if proposal.atoms is None:
            site_seed = proposal.site_seed
            if site_seed is None and space.is_structural:
                site_seed = int(state.rng().integers(2**31 - 1))
            atoms = space.to_atoms(proposal.parameters, site_seed) if space.is_structural else None
        else:
            site_seed, atoms = None, proposal.atoms.copy()
        problems = space.violations(atoms) if atoms is not None else space.violations(proposal.parameters)
        key = repr(atoms_to_dict(atoms)) if atoms is not None else repr(sorted(proposal.parameters.items()))
        if problems or key in seen:
            dropped.append({"generation_method": proposal.generation_method, "reason": "; ".join(problems) or "dup"})
            continue
        seen.add(key)
        record = {
            "id": cp.candidate_id(state.iteration, len(out)),
            "iteration": state.iteration,
            "generation_method": proposal.generation_method,
            "parents": list(proposal.parents),
            "parameters": copy.deepcopy(proposal.parameters),
            "site_seed": site_seed,
            "formula": cp.formula(atoms) if atoms is not None else None,
            "acquisition": proposal.acquisition,
        }
        if proposal.rationale:
            record["rationale"] = proposal.rationale
        if proposal.parameters is None and atoms is not None:
            record["structure"] = atoms_to_dict(atoms)
        if atoms is not None:
            atoms.info = {"candidate_id": record["id"]}
        out.append((record, atoms))
    state.extra["pending"] = [r for r, _ in out]
    if not out and state.extra.get("converged") is None:
        # nothing new to evaluate: an external agent without a valid proposal is an error of the campaign,
        # any other algorithm has run out of candidates
        state.extra["converged"] = "no_valid_candidates" if config.algorithm == "external" else "search_space_exhausted"
    if dropped:
        report["dropped"] = dropped
    report["proposed"] = len(out)
    return {"candidates": out, "report": report}


__all__ = [
    "PROPOSERS",
    "Proposal",
    "ProposalContext",
    "fit_models",
    "generate_pool",
    "n_trainable",
    "population_ids",
    "propose",
    "training_data",
]


def n_trainable(state: Mapping[str, Any]) -> int:
    """Successful evaluations with a point of the space (a GP needs two) in a state dict."""
    records = (state.get("extra") or {}).get("candidates") or []
    return sum(1 for r in records if r["status"] == "ok" and r.get("parameters") is not None)


def population_ids(state: Mapping[str, Any]) -> list[str]:
    """Candidates a structure GA may pick parents from at the next proposal: its population and the last batch."""
    ga = state.get("ga") or {}
    if ga.get("kind") != "structure_ga":
        return []
    ids = [(p.get("info") or {}).get("candidate_id") for p in ga.get("population") or []]
    records = (state.get("extra") or {}).get("candidates") or []
    told = int((state.get("extra") or {}).get("ga_told", 0))
    ids += [r["id"] for r in records[told:] if r["status"] == "ok"]
    return sorted({i for i in ids if i})
