"""Random search, the baseline: uniform random points; in a finite space, never one that was already evaluated."""

from __future__ import annotations

from typing import Any

from aiida_nanoos.design.proposers.context import Proposal, ProposalContext, candidate_pool, unevaluated


def propose_random(ctx: ProposalContext) -> tuple[list[Proposal], dict[str, Any]]:
    """Uniform random points (the baseline); in a finite space, never one that was already evaluated."""
    rng = ctx.state.rng()
    pool = candidate_pool(ctx, rng)
    if pool is None:
        points = ctx.space.sample(ctx.n, rng)
    else:
        left = unevaluated(ctx.space, ctx.state, pool)
        chosen = rng.choice(left, size=min(ctx.n, len(left)), replace=False) if left else []
        points = [pool[int(i)] for i in chosen]
    return [Proposal(p, None, "random") for p in points], {"algorithm": "random"}
