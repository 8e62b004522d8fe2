"""``aiida-nanoos benchmark bo-pool``: the pool-based protocol of Liang et al. 2021 on any CSV of that shape.

The protocol itself lives in :mod:`aiida_nanoos.benchmarks.pool_protocol`; this command only reads options and prints.
"""

from __future__ import annotations

import json

import click

from aiida_nanoos.benchmarks import options


@click.command("bo-pool")
@click.option("--csv", "csv_path", required=True, type=click.Path(exists=True, dir_okay=False), help="Data set.")
@click.option("--objective", required=True, help="Column to optimise.")
@click.option("--direction", type=click.Choice(["max", "min"]), default="max", show_default=True)
@click.option("--inputs", multiple=True, help="Input column (repeat); default: every column except the objective.")
@click.option("--runs", default=10, show_default=True, help="Independent runs (different 2-point starts).")
@click.option("--seed", default=0, show_default=True, help="Seed of run 0; run r uses seed + r.")
@click.option(
    "--refit-growth",
    default=0.1,
    show_default=True,
    help="Re-optimise GP hyper-parameters when the data grew by this fraction since the last time.",
)
@click.option("--max-evaluations", type=int, default=None, help="Cap on evaluations per run (default: the pool).")
@options.json_output
@options.quiet
def command(
    csv_path: str,
    objective: str,
    direction: str,
    inputs: tuple[str, ...],
    runs: int,
    seed: int,
    refit_growth: float,
    max_evaluations: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Enhancement factor and evaluations to the top 5% for our BO, GP-ARD + LCB and random sampling."""
    from threadpoolctl import threadpool_limits

    from aiida_nanoos.benchmarks.pool_protocol import format_table, load_pool, run_benchmark

    try:
        pool = load_pool(csv_path, objective, inputs=list(inputs) or None, maximize=direction == "max")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    progress = None if quiet else (lambda msg: click.echo(msg, err=True))
    with threadpool_limits(limits=1):
        result = run_benchmark(
            pool, runs=runs, seed=seed, refit_growth=refit_growth, max_evaluations=max_evaluations, progress=progress
        )
    result["csv"] = csv_path
    click.echo(json.dumps(result, indent=2) if as_json else format_table(result))
