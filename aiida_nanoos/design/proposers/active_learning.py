"""Active learning as a campaign proposer: a pool of random candidates is scored by the property model (outside, as
nodes) and the batch is the pool candidates its selection chose; random points before a model exists."""

from __future__ import annotations

import copy
from typing import Any

from ase import Atoms

from aiida_nanoos.design.config import CampaignConfig
from aiida_nanoos.design.definition import enumerate_points
from aiida_nanoos.design.proposers.context import Proposal, ProposalContext, unevaluated
from aiida_nanoos.design.proposers.random_search import propose_random
from aiida_nanoos.design.spaces import ParameterSpace, atoms_to_dict
from aiida_nanoos.design.state import CampaignState


def generate_pool(
    space: ParameterSpace, config: CampaignConfig, state: CampaignState
) -> tuple[list[dict[str, Any]], list[Atoms]]:
    """The candidates an active-learning iteration scores: ``property_model.pool_size`` random points of the space never
    evaluated (drawn from the whole space when it is small and finite), each with the seed that places its
    substituted sites, and their cells. Advances the state's random stream."""
    settings = config.property_model_settings()
    rng = state.rng()
    points = enumerate_points(space)
    if points is not None:
        left = unevaluated(space, state, points) if points else []
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
    """The pool candidates the property model's selection chose (best first), each with its acquisition score and the
    selection's reason; random points before a model exists."""
    scored = ctx.property_model or {}
    if scored.get("selection") is None:
        proposals, report = propose_random(ctx)
        return proposals, {**report, "algorithm": "active_learning", "reason": "no property model yet: random start"}
    selection = scored["selection"]
    pool = {entry["label"]: entry for entry in scored.get("pool") or []}
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
