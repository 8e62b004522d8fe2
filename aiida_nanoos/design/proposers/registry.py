"""Where a campaign's next candidates come from: random search, a genetic algorithm, Bayesian optimisation (one
objective, or several through expected hypervolume improvement), an external proposer or active learning.

Every algorithm is a function ``(ProposalContext) -> (proposals, report)`` in a module of its own, registered in
:data:`PROPOSERS`; the campaign calls :func:`propose` and never branches on the algorithm itself. All randomness
comes from the campaign state's seeded stream (``state.rng()``), and the GA and GP state live in the state, so a
campaign resumed from any stored state proposes exactly what it would have proposed without the interruption.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from aiida_nanoos.design.config import CampaignConfig
from aiida_nanoos.design.objectives import CampaignObjective
from aiida_nanoos.design.proposers.active_learning import generate_pool, propose_active_learning
from aiida_nanoos.design.proposers.bayesian import propose_bo
from aiida_nanoos.design.proposers.context import Proposal, ProposalContext, fit_models, training_data
from aiida_nanoos.design.proposers.evolutionary import propose_genetic
from aiida_nanoos.design.proposers.external_agent import propose_external
from aiida_nanoos.design.proposers.random_search import propose_random
from aiida_nanoos.design.records import CandidateRecord, candidate_id, formula, n_simulated
from aiida_nanoos.design.spaces import ParameterSpace, atoms_to_dict
from aiida_nanoos.design.state import CampaignState

#: algorithm name -> proposer.
PROPOSERS: dict[str, Callable[[ProposalContext], tuple[list[Proposal], dict[str, Any]]]] = {
    "random": propose_random,
    "genetic": propose_genetic,
    "bayesian_optimization": propose_bo,
    "external": propose_external,
    "active_learning": propose_active_learning,
}


def propose(
    space: ParameterSpace,
    objective: CampaignObjective,
    config: CampaignConfig,
    state: CampaignState,
    hyperparameters: Mapping[str, Any] | None = None,
    property_model: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Propose the next batch and register it in ``state.pending``.

    Returns ``{"candidates": [(record, atoms), ...], "report": {...}}``. The batch is at most ``batch_size`` and
    at most what is left of the budget; invalid or duplicate proposals are dropped (listed in the report). Each
    record has the candidate's id, generation method, parent ids, parameters, the seed that placed its
    substituted sites, its formula, and a structure when it has no parameters.
    """
    if state.pending:
        raise ValueError("the previous batch was proposed but never recorded")
    n = config.batch_size
    # the budget counts DFT runs: with a property model evaluating (ml_only, ml_then_dft) the batch is not cut by it
    if config.budget is not None and (config.evaluation_method == "dft" or not property_model):
        n = min(n, config.budget - n_simulated(state.candidates))
    if n <= 0:
        state.converged = state.converged or "budget_exhausted"
        return {"candidates": [], "report": {"algorithm": config.algorithm, "reason": "budget exhausted"}}
    ctx = ProposalContext(space, objective, config, state, n, hyperparameters, property_model)
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
        record = CandidateRecord(
            id=candidate_id(state.iteration, len(out)),
            iteration=state.iteration,
            generation_method=proposal.generation_method,
            parents=list(proposal.parents),
            parameters=copy.deepcopy(proposal.parameters),
            site_seed=site_seed,
            formula=formula(atoms) if atoms is not None else None,
            acquisition=proposal.acquisition,
            rationale=proposal.rationale or None,
            structure=atoms_to_dict(atoms) if proposal.parameters is None and atoms is not None else None,
        )
        if atoms is not None:
            atoms.info = {"candidate_id": record.id}
        out.append((record, atoms))
    state.pending = [r for r, _ in out]
    if not out and state.converged is None:
        # nothing new to evaluate: an external agent without a valid proposal is an error of the campaign,
        # any other algorithm has run out of candidates
        state.converged = "no_valid_candidates" if config.algorithm == "external" else "search_space_exhausted"
    if dropped:
        report["dropped"] = dropped
    report["proposed"] = len(out)
    return {"candidates": out, "report": report}


def n_trainable(state: CampaignState) -> int:
    """Successful evaluations with a point of the space (a GP needs two), those of earlier campaigns
    (``config.warm_start``) included: the same task's are pooled, a related task's train the multi-task GP, which
    then picks the first batch too."""
    earlier = sum(len(entry["values"]) for entry in state.warm_start or ())
    return earlier + sum(1 for r in state.candidates if r.ok and r.parameters is not None)


def population_ids(state: CampaignState) -> list[str]:
    """Candidates a structure GA may pick parents from at the next proposal: its population and the last batch."""
    ga = state.ga or {}
    if ga.get("kind") != "structure_ga":
        return []
    ids = [(p.get("info") or {}).get("candidate_id") for p in ga.get("population") or []]
    ids += [r.id for r in state.candidates[state.ga_told :] if r.ok]
    return sorted({i for i in ids if i})


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
