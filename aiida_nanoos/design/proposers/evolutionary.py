"""The genetic algorithm as a campaign proposer: on cells (cut-and-splice crossover; swap_element, shift_atom,
change_lattice mutations) for structural spaces, on encoded points otherwise (the GAs are in :mod:`.genetic`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from aiida_nanoos.design.config import CampaignConfig
from aiida_nanoos.design.definition import representation, space_elements
from aiida_nanoos.design.proposers.context import Proposal, ProposalContext
from aiida_nanoos.design.proposers.genetic import MUTATION_TYPES, StructureGA, VectorGA
from aiida_nanoos.design.records import CandidateRecord, candidate_atoms
from aiida_nanoos.design.spaces import Substitution


def _genetic_kwargs(config: CampaignConfig, *keys: str) -> dict[str, Any]:
    return {k: config.genetic[k] for k in keys if k in config.genetic}


def _fitness(ctx: ProposalContext, record: CandidateRecord) -> float | None:
    """Higher is better; infeasible candidates rank below every feasible one (by how far they miss)."""
    if not record.ok:
        return None
    score = record.objectives[0] * (1.0 if ctx.objective.primary.maximize else -1.0)
    if not record.feasible:
        score = -1e6 + min(record.margins or [0.0])
    return float(score)


def propose_genetic(ctx: ProposalContext) -> tuple[list[Proposal], dict[str, Any]]:
    """A genetic algorithm: on cells (cut-and-splice crossover; swap_element, shift_atom, change_lattice mutations)
    for structural spaces, on encoded points otherwise. The last batch's fitness is told before asking."""
    state, space, config = ctx.state, ctx.space, ctx.config
    records = state.candidates
    told = state.ga_told
    new = [r for r in records[told:] if _fitness(ctx, r) is not None]
    population_size = int(config.genetic.get("population_size", max(2 * config.batch_size, 8)))
    common = _genetic_kwargs(config, "elite_fraction", "crossover_probability", "mutation_probability")
    if representation(space, config) == "structure":
        is_valid = lambda atoms: not space.violations(atoms)  # noqa: E731
        if state.ga is None:
            pool = [s for d in space.dimensions if isinstance(d, Substitution) for s in (d.host, *d.dopants)]
            pool = pool or space_elements(space)
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
            ga.tell([candidate_atoms(space, r) for r in new], [_fitness(ctx, r) for r in new])
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
    state.ga_told = len(records)
    return proposals, {
        "algorithm": "genetic",
        "representation": representation(space, config),
        "population": len(ga.fitness),
        "best_fitness": float(ga.fitness.max()) if len(ga.fitness) else None,
    }
