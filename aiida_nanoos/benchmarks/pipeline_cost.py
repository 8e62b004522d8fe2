"""Cost per atom-step, DFT vs the fitted potential, as ``nanoos.potential.pipeline`` reports it (``cost`` output)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from aiida_nanoos.benchmarks import options


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Run the potential pipeline from this config (e.g. examples/pipeline_si.yaml) and report its cost.",
)
@click.option("--pk", type=int, default=None, help="Report the cost of this finished pipeline work chain instead.")
@options.json_output
def command(config_file: Path | None, pk: int | None, as_json: bool) -> None:
    """Seconds per atom-step of pw.x labelling vs LAMMPS MD with the potential (default: newest pipeline run)."""
    from aiida import load_profile, orm

    from aiida_nanoos.cli.utils import run_in_foreground
    from aiida_nanoos.workflows.pipeline import PotentialPipelineWorkChain

    load_profile()
    if config_file is not None and pk is not None:
        raise click.BadParameter("give --config or --pk, not both")
    if config_file is not None:
        from aiida_nanoos.cli.pipeline import builder_from_config
        from aiida_nanoos.cli.utils import read_config

        node = run_in_foreground(builder_from_config(read_config(config_file), config_file.parent))
    elif pk is not None:
        node = orm.load_node(pk)
    else:
        query = orm.QueryBuilder().append(PotentialPipelineWorkChain, tag="w", filters={"attributes.exit_status": 0})
        query.order_by({"w": {"id": "desc"}})
        found = query.first()
        if not found:
            raise click.ClickException("no finished pipeline run: pass --config examples/pipeline_si.yaml")
        node = found[0]
    if "cost" not in node.outputs:
        raise click.ClickException(f"{node.process_label}<{node.pk}> has no cost output ({node.exit_message})")
    cost = dict(node.outputs.cost.get_dict(), workchain_pk=node.pk)
    if as_json:
        click.echo(json.dumps(cost))
        return
    click.echo(f"Cost per atom-step reported by {node.process_label}<{node.pk}>")
    click.echo(
        f"  DFT (pw.x, {cost['dft_runs']} SCFs of {cost['dft_mean_atoms']:.0f}-atom cells)   "
        f"{cost['dft_seconds_per_atom_step']:.4g} s/atom-step"
    )
    click.echo(
        f"  potential (LAMMPS, {cost['md_atoms']} atoms, {cost['md_steps']} steps)   "
        f"{cost['potential_seconds_per_atom_step']:.4g} s/atom-step"
    )
    click.echo(f"  the potential is {cost['speedup']:.4g}x cheaper per atom-step")
