"""``aiida-nanoos benchmark NAME``: each benchmark lives in ``aiida_nanoos.benchmarks.<module>`` as ``command``."""

from __future__ import annotations

import importlib

import click

from .params import NanoosGroup

#: command name -> module in ``aiida_nanoos.benchmarks`` that defines a click command called ``command``.
BENCHMARKS = {
    "snap": "snap",
    "potential": "potential_fit",
    "bo-pool": "bo_pool",
    "bo-pareto": "bo_pareto",
    "gp-latency": "gp_latency",
    "gnn": "gnn",
    "al-pool": "al_pool",
    "screening": "screening",
    "label-overhead": "label_overhead",
    "setup-time": "setup_time",
    "md-throughput": "md_throughput",
    "nve-drift": "nve_drift",
    "pipeline-cost": "pipeline_cost",
    "campaign-overhead": "campaign_overhead",
    "reliability": "reliability",
    "transfer": "transfer",
    "cost-aware": "cost_aware",
    "multi-fidelity": "multi_fidelity",
}


class _LazyGroup(NanoosGroup):
    """Imports a benchmark only when it is run, so ``--help`` stays fast and torch is loaded only when needed; each
    gets ``-p`` and ``-v`` as every other command."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(BENCHMARKS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in BENCHMARKS:
            return super().get_command(ctx, name)  # verdi's "most similar commands"
        return self.add_verbosity_option(importlib.import_module(f"aiida_nanoos.benchmarks.{BENCHMARKS[name]}").command)


@click.group(cls=_LazyGroup)
def benchmark() -> None:
    """Measure accuracy, speed and overheads; each prints its figures (``--json`` for machine-readable)."""
