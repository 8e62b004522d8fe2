"""Engine overhead of a design campaign: wall time per iteration when the evaluation itself costs nothing.

The campaign runs in this process with the ``analytic`` evaluator (a real WorkChain + calcfunction per candidate,
microseconds of arithmetic), so everything measured is engine: the GP fit and proposal calcfunctions, submitting
and awaiting the evaluator processes, ranking, checkpoints and provenance. To make a figure from a busy machine
comparable, the cost of one trivial calcfunction and the load average are measured alongside.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import click

from aiida_nanoos.benchmarks import options

GOAL_SECONDS = 2.0


def _trivial_calcfunction_seconds(repeats: int = 5) -> float:
    from aiida import orm
    from aiida.engine import calcfunction

    @calcfunction
    def add_one(x):
        return orm.Int(x.value + 1)

    times = []
    for i in range(repeats):
        start = time.perf_counter()
        add_one(orm.Int(i))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@click.command()
@click.option("--iterations", default=5, show_default=True, help="Campaign iterations to time.")
@click.option("--batch-size", default=2, show_default=True, help="Candidates per iteration.")
@click.option(
    "--algorithm",
    type=click.Choice(["random", "genetic", "bayesian_optimization"]),
    default="bayesian_optimization",
    show_default=True,
)
@options.json_output
def command(iterations: int, batch_size: int, algorithm: str, as_json: bool) -> None:
    """Time a campaign with the analytic evaluator (run in this process); goal: <= 2 s per iteration."""
    from ase.build import bulk

    from aiida_nanoos.cli.utils import load_profile, run_in_foreground
    from aiida_nanoos.design.spaces import atoms_to_dict
    from aiida_nanoos.workflows.campaign import CampaignWorkChain

    load_profile()
    space = {
        "base_structure": atoms_to_dict(bulk("SiGe", "zincblende", a=5.54, cubic=True)),
        "dimensions": [
            {"type": "substitution", "name": "si_sites", "host": "Si", "dopants": ["C", "Ge"], "fraction": [0, 1]},
            {"type": "substitution", "name": "ge_sites", "host": "Ge", "dopants": ["Si", "C"], "fraction": [0, 1]},
            {"type": "strain", "name": "strain", "ranges": {"iso": [-0.04, 0.04]}, "isotropic": True},
        ],
    }
    config = {
        "algorithm": algorithm,
        "batch_size": batch_size,
        "max_iterations": iterations,
        "seed": int(time.time()) % 100000,  # new candidates every run: no caching
    }
    builder = CampaignWorkChain.get_builder_from_evaluator(space, "maximize_bandgap", "analytic", config=config)
    load_before = os.getloadavg()
    calcfunction_seconds = _trivial_calcfunction_seconds()
    start = time.perf_counter()
    node = run_in_foreground(builder)
    total = time.perf_counter() - start
    if not node.is_finished_ok:
        raise click.ClickException(f"campaign failed: {node.exit_message}")
    called = sorted(node.called, key=lambda n: n.ctime)
    evaluators = {
        link.link_label: link.node
        for link in node.base.links.get_outgoing().all()
        if link.link_label.startswith("evaluate_")
    }
    records = [n for n in called if n.process_label == "record_iteration"]
    proposals = [n for n in called if n.process_label == "suggest_candidates"]
    per_iteration, evaluation_spans, engine_only = [], [], []
    previous_end = next(n for n in called if n.process_label == "initialize_campaign").mtime
    for k, record in enumerate(records, start=1):
        wall = (record.mtime - previous_end).total_seconds()  # from the end of the last iteration to this one's
        runs = [e for label, e in evaluators.items() if label.startswith(f"evaluate_i{k:03d}")]
        span = (max(e.mtime for e in runs) - min(e.ctime for e in runs)).total_seconds()
        per_iteration.append(wall)
        evaluation_spans.append(span)
        engine_only.append(wall - span)
        previous_end = record.mtime
    fits = [n for n in called if n.process_label == "fit_gp"]
    step_seconds = {
        "fit_gp": statistics.mean((n.mtime - n.ctime).total_seconds() for n in fits) if fits else 0.0,
        "suggest_candidates": statistics.mean((n.mtime - n.ctime).total_seconds() for n in proposals),
        "record_iteration": statistics.mean((n.mtime - n.ctime).total_seconds() for n in records),
        "evaluator_process": statistics.mean((e.mtime - e.ctime).total_seconds() for e in evaluators.values()),
    }
    mean_iteration = statistics.mean(per_iteration)
    figures = {
        "campaign_pk": node.pk,
        "algorithm": algorithm,
        "iterations": len(records),
        "batch_size": batch_size,
        "seconds_per_iteration": round(mean_iteration, 3),
        "seconds_per_iteration_median": round(statistics.median(per_iteration), 3),
        "seconds_each_iteration": [round(t, 3) for t in per_iteration],
        "seconds_first_median_last": [
            round(per_iteration[0], 3),
            round(statistics.median(per_iteration), 3),
            round(per_iteration[-1], 3),
        ],
        "evaluation_span_per_iteration": round(statistics.mean(evaluation_spans), 3),
        "campaign_steps_per_iteration": round(statistics.mean(engine_only), 3),
        "step_seconds": {k: round(v, 3) for k, v in step_seconds.items()},
        "total_seconds": round(total, 2),
        "trivial_calcfunction_seconds": round(calcfunction_seconds, 3),
        "seconds_per_iteration_in_calcfunctions": round(mean_iteration / calcfunction_seconds, 1),
        "load_average": [round(x, 2) for x in load_before],
        "cpus": os.cpu_count(),
        "goal_seconds": GOAL_SECONDS,
        "meets_goal": mean_iteration <= GOAL_SECONDS,
    }
    if as_json:
        click.echo(json.dumps(figures))
        return
    click.echo(
        f"Campaign<{node.pk}>: {algorithm}, {len(records)} iterations x {batch_size} candidates, analytic evaluator"
    )
    click.echo(
        f"  wall time per iteration          {figures['seconds_per_iteration']:8.3f} s  (goal <= {GOAL_SECONDS} s)"
    )
    click.echo(
        f"    first / median / last          {per_iteration[0]:8.3f} / {statistics.median(per_iteration):.3f} / "
        f"{per_iteration[-1]:.3f} s (slowest {max(per_iteration):.3f} s)"
    )
    click.echo(f"    evaluator processes (span)     {figures['evaluation_span_per_iteration']:8.3f} s")
    click.echo(f"    campaign steps and gaps        {figures['campaign_steps_per_iteration']:8.3f} s")
    for name, seconds in figures["step_seconds"].items():
        click.echo(f"      {name:28s} {seconds:8.3f} s")
    click.echo(
        f"  one trivial calcfunction here    {figures['trivial_calcfunction_seconds']:8.3f} s "
        f"(an iteration = {figures['seconds_per_iteration_in_calcfunctions']} of them)"
    )
    click.echo(f"  load average {figures['load_average']} on {figures['cpus']} cores")
    click.echo(f"  goal met: {'yes' if figures['meets_goal'] else 'no'}")
