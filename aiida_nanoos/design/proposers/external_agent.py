"""An external proposer (an agent behind HTTP) as a campaign proposer: it sees the objective, the space and the
history, and its candidates are kept when valid in the space (the HTTP client and parser are in :mod:`.external`)."""

from __future__ import annotations

from typing import Any

from aiida_nanoos.design.proposers.context import Proposal, ProposalContext
from aiida_nanoos.design.records import history


def propose_external(ctx: ProposalContext) -> tuple[list[Proposal], dict[str, Any]]:
    """Ask the external proposer (HTTP) for candidates and keep those that are valid in the space.

    Raises :class:`~aiida_nanoos.design.proposers.external.ExternalProposerError` when the endpoint fails.
    """
    from aiida_nanoos.design.proposers.external import ExternalSettings, parse_candidates, request_candidates

    settings = ExternalSettings.from_dict(ctx.config.external)
    payload = {
        "objective": ctx.objective.to_dict(),
        "search_space": ctx.space.to_dict(),
        "history": history(ctx.state.candidates, ctx.space, settings.context_window),
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
