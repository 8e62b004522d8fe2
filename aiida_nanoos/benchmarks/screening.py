"""``aiida-nanoos benchmark screening``: throughput of the pure-ML part of screening (no provenance).

Featurisation of generated perovskite candidates plus prediction with uncertainty by the crystal-graph
ensemble (all members) and by MC dropout. Logic in :mod:`aiida_nanoos.ml.surrogate_benchmarks`.
"""

from __future__ import annotations

import json

import click


@click.command("screening")
@click.option("--n", "n_candidates", default=10000, show_default=True, help="Candidates to screen.")
@click.option("--model", "model_dir", type=click.Path(exists=True, file_okay=False),
              help="Folder of a saved model (model.pt + model.json); default: a random-weight ensemble.")  # fmt: skip
@click.option(
    "--members",
    default=3,
    show_default=True,
    help="Members of the random-weight ensemble (3, as trained by the gnn benchmark).",
)
@click.option("--samples", default=50, show_default=True, help="MC-dropout passes.")
@click.option(
    "--threads",
    type=int,
    default=1,
    show_default=True,
    help="Torch threads (more than 1 was 6-10x slower per step on a shared 2-core machine).",
)
@click.option("--seed", default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of a table.")
def command(
    n_candidates: int, model_dir: str | None, members: int, samples: int, threads: int, seed: int, as_json: bool
) -> None:
    """Candidates per minute for featurisation + prediction with uncertainty."""
    from aiida_nanoos.ml.cgcnn import CrystalGraphModel
    from aiida_nanoos.ml.surrogate_benchmarks import format_screening, screening_benchmark

    if n_candidates < 1:
        raise click.BadParameter("need at least one candidate", param_hint="--n")
    model = CrystalGraphModel.load(model_dir) if model_dir else None
    result = screening_benchmark(
        n_candidates, model=model, n_members=members, n_samples=samples, seed=seed, threads=threads
    )
    click.echo(json.dumps(result, indent=2) if as_json else format_screening(result))
