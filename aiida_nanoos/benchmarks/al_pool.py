"""``aiida-nanoos benchmark al-pool``: active learning with the crystal-graph ensemble against random sampling.

Liang et al. 2021 figures (enhancement factor at 10 % and 25 % of the pool, evaluations to 50 % / 100 % of the
top 5 %) for finding the best structures of a CSV pool. Logic in :mod:`aiida_nanoos.benchmarks.crystal_graph_harness`.
"""

from __future__ import annotations

import json

import click

from aiida_nanoos.benchmarks import options


@click.command("al-pool")
@click.option("--csv", "csv_path", required=True, type=click.Path(exists=True, dir_okay=False), help="Pool CSV.")
@click.option("--target", default="heat_all", show_default=True, help="Target column.")
@click.option("--cif-column", default="cif", show_default=True, help="Column holding the CIF text.")
@click.option("--direction", type=click.Choice(["min", "max"]), default="min", show_default=True)
@click.option("--runs", default=3, show_default=True, help="Independent runs (different random starts).")
@click.option("--pool-size", type=int, default=1000, show_default=True,
              help="Random subset of the CSV used as the pool (0: all rows).")  # fmt: skip
@click.option("--initial", default=20, show_default=True, help="Random labels to start from.")
@click.option("--batch-size", default=10, show_default=True, help="Structures labelled per cycle.")
@click.option(
    "--strategy",
    type=click.Choice(["greedy_uncertainty", "expected_improvement", "uncertainty", "diverse_uncertainty"]),
    default="greedy_uncertainty",
    show_default=True,
)
@click.option("--exploration-weight", default=1.0, show_default=True, help="Weight of sigma (greedy_uncertainty).")
@click.option("--max-fraction", default=0.5, show_default=True, help="Stop a run after labelling this pool fraction.")
@click.option("--members", default=3, show_default=True, help="Ensemble members of the crystal-graph model.")
@click.option("--seed", default=0, show_default=True)
@options.torch_threads
@options.json_output
@options.quiet
def command(
    csv_path: str,
    target: str,
    cif_column: str,
    direction: str,
    runs: int,
    pool_size: int,
    initial: int,
    batch_size: int,
    strategy: str,
    exploration_weight: float,
    max_fraction: float,
    members: int,
    seed: int,
    threads: int,
    as_json: bool,
    quiet: bool,
) -> None:
    """Enhancement factor and evaluations to the top 5 % for ensemble-guided active learning vs random."""
    from aiida_nanoos.benchmarks.crystal_graph_harness import al_pool_benchmark, format_al_pool
    from aiida_nanoos.models.structure_table import read_structure_csv

    progress = None if quiet else (lambda message: click.echo(message, err=True))
    try:
        table, dropped = read_structure_csv(csv_path, target, cif_column=cif_column).supported_only()
        if dropped and progress:
            progress(f"dropped {len(dropped)} rows with elements beyond Pu")
        result = al_pool_benchmark(
            table,
            minimise=direction == "min",
            runs=runs,
            pool_size=pool_size or None,
            n_initial=initial,
            batch_size=batch_size,
            strategy=strategy,
            exploration_weight=exploration_weight,
            max_fraction=max_fraction,
            n_members=members,
            seed=seed,
            threads=threads,
            log=progress,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    result["csv"] = csv_path
    click.echo(json.dumps(result, indent=2) if as_json else format_al_pool(result))
