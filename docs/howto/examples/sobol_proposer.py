"""A proposer for design campaigns: quasi-random points of a scrambled Sobol sequence, which fill the space more
evenly than random ones. To use it, add it to ``PROPOSERS`` in ``aiida_nanoos/design/proposers/registry.py`` and its
name to ``ALGORITHMS`` in ``aiida_nanoos/design/config.py``; tested as written by tests/test_docs.py."""

from __future__ import annotations

from typing import Any

from scipy.stats import qmc

from aiida_nanoos.design.proposers.context import Proposal, ProposalContext


def propose_sobol(ctx: ProposalContext) -> tuple[list[Proposal], dict[str, Any]]:
    """The next ``ctx.n`` points of one Sobol sequence per campaign (scrambled with the campaign's seed).

    The sequence is rebuilt from the seed and fast-forwarded past the candidates already proposed, so a campaign
    resumed from any stored state proposes exactly what it would have proposed without the interruption.
    """
    sampler = qmc.Sobol(d=ctx.space.n_encoded, scramble=True, seed=int(ctx.state.seed))
    already = len(ctx.state.candidates)
    if already:
        sampler.fast_forward(already)
    points = ctx.space.decode(sampler.random(ctx.n))  # unit-cube rows -> points of the space (projected)
    return [Proposal(point, None, "sobol") for point in points], {"algorithm": "sobol", "sequence_start": already}
