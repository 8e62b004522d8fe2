"""``aiida-nanoos trainingset``: list, show, export and import training sets (``verdi data nanoos.training_set``)."""

from __future__ import annotations

from pathlib import Path

import click
from aiida.cmdline.utils.decorators import with_dbenv

from .params import JSON, TRAINING_SET, echo_json, echo_table, group


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


@group("trainingset")
def trainingset() -> None:
    """Training sets: labelled frames for fitting potentials."""


@trainingset.command("list")
@JSON
@with_dbenv()
def trainingset_list(as_json: bool) -> None:
    """List the training sets in the profile."""
    from aiida import orm

    from aiida_nanoos.data.training_set import TrainingSetData

    query = orm.QueryBuilder().append(
        TrainingSetData,
        project=["id", "ctime", "attributes.num_frames", "attributes.num_atoms", "attributes.elements", "label"],
        tag="training_set",
    )
    query.order_by({"training_set": {"id": "asc"}})
    rows = [
        {
            "PK": pk,
            "Created": f"{ctime:%Y-%m-%d %H:%M:%S}",
            "Frames": frames,
            "Atoms": atoms,
            "Elements": ",".join(elements),
            "Label": text,
        }
        for pk, ctime, frames, atoms, elements, text in query.all()
    ]
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo("No training sets yet: label some configurations with `aiida-nanoos label run CONFIG.yaml`.")
    else:
        echo_table(rows)


@trainingset.command("show")
@click.argument("node", metavar="TRAINING_SET", type=TRAINING_SET)
@JSON
@with_dbenv()
def trainingset_show(node, as_json: bool) -> None:
    """Summary of one TRAINING_SET (PK, UUID or label) and the DFT calculations that labelled it."""
    sources = {frame.info.get("source_uuid") for frame in node.get_frames()} - {None}
    if as_json:
        echo_json(
            {"pk": node.pk, "uuid": node.uuid, "label": node.label, **node.statistics, "sources": sorted(sources)}
        )
        return
    echo_summary(node)
    if sources:
        click.echo(f"  labelled by {len(sources)} DFT calculation(s) (frame info `source_uuid`)")


@trainingset.command("export")
@click.argument("node", metavar="TRAINING_SET", type=TRAINING_SET)
@click.option("--format", "fmt", type=click.Choice(["extxyz", "json", "lammps-data"]), default="extxyz")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="File (folder for json).")
@with_dbenv()
def trainingset_export(node, fmt: str, output: Path) -> None:
    """Write a TRAINING_SET as extxyz, a FitSNAP JSON folder or LAMMPS data file(s)."""
    paths = node.export(output, fmt)
    click.echo(f"Wrote {len(paths)} file(s): {paths[0]}" + (" ..." if len(paths) > 1 else ""))


@trainingset.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--label", "node_label", default="", help="Label of the new node.")
@click.option("--stress-unit", type=click.Choice(["auto", "bar", "eV/A3"]), default="auto", show_default=True)
@with_dbenv()
def trainingset_import(path: Path, node_label: str, stress_unit: str) -> None:
    """Import an extxyz file (or folder), a FitSNAP JSON folder or an mlearn JSON file as a training set."""
    from aiida_nanoos.data.training_set import TrainingSetData

    try:
        node = TrainingSetData.from_file(path, stress_unit=stress_unit)
    except (ValueError, FileNotFoundError) as error:
        raise click.BadParameter(str(error)) from error
    node.label = node_label or path.name
    node.store()
    echo_summary(node)
