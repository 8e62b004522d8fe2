"""``aiida-nanoos trainingset``: list, show, export and import training sets (``verdi data nanoos.training_set``)."""

from __future__ import annotations

from pathlib import Path

import click

from .utils import load_profile


def echo_summary(training_set) -> None:
    """Print what a materials scientist checks first about a training set."""
    stats = training_set.statistics
    click.echo(f"TrainingSetData<{training_set.pk}> {training_set.label or ''}".rstrip())
    click.echo(
        f"  frames: {stats['num_frames']}   atoms: {stats['num_atoms']}   elements: {', '.join(stats['elements'])}"
    )
    if stats.get("energy_per_atom_min") is not None:
        low, high = stats["energy_per_atom_min"], stats["energy_per_atom_max"]
        click.echo(f"  energy per atom: {low:.4f} .. {high:.4f} eV")
    click.echo(
        f"  largest force: {stats['max_force']:.4f} eV/Å   frames with stress: {stats['num_frames_with_stress']}"
    )
    click.echo(f"  groups: {', '.join(f'{g} ({n})' for g, n in sorted(stats['groups'].items()))}")


def _load(pk: str):
    from aiida import orm

    from aiida_nanoos.data.training_set import TrainingSetData

    node = orm.load_node(pk)
    if not isinstance(node, TrainingSetData):
        raise click.BadParameter(f"node {pk} is a {type(node).__name__}, not a training set")
    return node


@click.group("trainingset")
def trainingset() -> None:
    """Training sets: labelled frames for fitting potentials."""


@trainingset.command("list")
def trainingset_list() -> None:
    """List the training sets in the profile."""
    load_profile()
    from aiida import orm

    from aiida_nanoos.data.training_set import TrainingSetData

    query = orm.QueryBuilder().append(
        TrainingSetData,
        project=["id", "ctime", "attributes.num_frames", "attributes.num_atoms", "attributes.elements", "label"],
        tag="training_set",
    )
    query.order_by({"training_set": {"id": "asc"}})
    rows = query.all()
    if not rows:
        click.echo("No training sets yet: label some configurations with `aiida-nanoos label run CONFIG.yaml`.")
        return
    click.echo(f"{'PK':>6}  {'created':19}  {'frames':>6}  {'atoms':>7}  elements  label")
    for pk, ctime, frames, atoms, elements, text in rows:
        click.echo(f"{pk:>6}  {ctime:%Y-%m-%d %H:%M:%S}  {frames:>6}  {atoms:>7}  {','.join(elements):8}  {text}")


@trainingset.command("show")
@click.argument("pk")
def trainingset_show(pk: str) -> None:
    """Summary of one training set and the DFT calculations that labelled it."""
    load_profile()
    node = _load(pk)
    echo_summary(node)
    sources = {frame.info.get("source_uuid") for frame in node.get_frames()} - {None}
    if sources:
        click.echo(f"  labelled by {len(sources)} DFT calculation(s) (frame info `source_uuid`)")


@trainingset.command("export")
@click.argument("pk")
@click.option("--format", "fmt", type=click.Choice(["extxyz", "json", "lammps-data"]), default="extxyz")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="File (folder for json).")
def trainingset_export(pk: str, fmt: str, output: Path) -> None:
    """Write a training set as extxyz, a FitSNAP JSON folder or LAMMPS data file(s)."""
    load_profile()
    paths = _load(pk).export(output, fmt)
    click.echo(f"Wrote {len(paths)} file(s): {paths[0]}" + (" ..." if len(paths) > 1 else ""))


@trainingset.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--label", "node_label", default="", help="Label of the new node.")
@click.option("--stress-unit", type=click.Choice(["auto", "bar", "eV/A3"]), default="auto", show_default=True)
def trainingset_import(path: Path, node_label: str, stress_unit: str) -> None:
    """Import an extxyz file (or folder) or a FitSNAP JSON folder as a training set."""
    load_profile()
    from aiida_nanoos.data.training_set import TrainingSetData

    try:
        node = TrainingSetData.from_file(path, stress_unit=stress_unit)
    except (ValueError, FileNotFoundError) as error:
        raise click.BadParameter(str(error)) from error
    node.label = node_label or path.name
    node.store()
    echo_summary(node)
