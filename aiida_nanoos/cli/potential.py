"""``aiida-nanoos potential``: list, show and export ML potentials (also ``verdi data nanoos.potential``)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from aiida.cmdline.utils.decorators import with_dbenv

from .params import JSON, POTENTIAL, echo_json, echo_table, group


def _errors(metrics: dict, which: str) -> str:
    values = (metrics or {}).get(which)
    if not values:
        return "-"
    return (
        f"E {1000 * values.get('energy_rmse', float('nan')):.2f} meV/atom, "
        f"F {values.get('force_rmse', float('nan')):.3f} eV/Å (RMSE)"
    )


def echo_summary(node) -> None:
    """What a materials scientist checks first about a potential."""
    hyper = node.hyperparameters or {}
    click.echo(f"PotentialData<{node.pk}> {node.name} v{node.version} ({node.descriptor_type})")
    click.echo(f"  elements: {', '.join(node.elements)}   validated: {'yes' if node.validated else 'no'}")
    if "twojmax" in hyper:
        click.echo(
            f"  2J={hyper['twojmax']} rcutfac={hyper.get('rcutfac')} quadratic={bool(hyper.get('quadraticflag'))} "
            f"coefficients={hyper.get('n_coefficients', '?')}"
        )
    click.echo(f"  train:      {_errors(node.metrics, 'train')}")
    click.echo(f"  validation: {_errors(node.metrics, 'validation')}")
    for key, unit in (("temperature_range", "K"), ("pressure_range", "GPa")):
        value = node.base.attributes.get(key)
        if value:
            click.echo(f"  {key.replace('_', ' ')}: {value[0]} .. {value[1]} {unit}")
    reference = node.reference_potential
    click.echo(f"  reference potential: {reference['pair_style'] if reference else 'none'}")
    click.echo(f"  files: {', '.join(f'{role}={name}' for role, name in node.files.items())}")


@group("potential")
def potential() -> None:
    """Machine-learned interatomic potentials (nanoos.potential)."""


@potential.command("list")
@click.option("--validated", is_flag=True, help="Only potentials that passed validation.")
@JSON
@with_dbenv()
def potential_list(validated: bool, as_json: bool) -> None:
    """List the potentials in the profile with their held-out errors."""
    from aiida import orm

    from aiida_nanoos.data.potential import PotentialData

    query = orm.QueryBuilder().append(
        PotentialData,
        tag="potential",
        project=[
            "id",
            "ctime",
            "attributes.name",
            "attributes.version",
            "attributes.descriptor_type",
            "attributes.elements",
            "attributes.validated",
            "attributes.metrics",
        ],
        filters={"attributes.validated": True} if validated else {},
    )
    query.order_by({"potential": {"id": "asc"}})
    rows = [
        {
            "PK": pk,
            "Created": f"{ctime:%Y-%m-%d %H:%M:%S}",
            "Type": kind,
            "Elements": ",".join(elements),
            "Validated": "yes" if ok else "no",
            "Name": f"{name} v{version}",
            "Held-out errors": _errors(metrics, "validation"),
        }
        for pk, ctime, name, version, kind, elements, ok, metrics in query.all()
    ]
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo("No potentials yet: fit one with `aiida-nanoos pipeline run examples/pipeline_si.yaml`.")
    else:
        echo_table(rows)


@potential.command("show")
@click.argument("node", metavar="POTENTIAL", type=POTENTIAL)
@JSON
@with_dbenv()
def potential_show(node, as_json: bool) -> None:
    """Summary of one POTENTIAL (PK, UUID or label), its LAMMPS lines and the DFT calculations that trained it."""
    try:
        lines = node.lammps_commands(node.elements)
    except (KeyError, ValueError) as error:
        lines = [f"(no LAMMPS lines: {error})"]
    calculations = node.training_calculations()
    training_sets = node.training_sets()
    if as_json:
        echo_json(
            {
                "pk": node.pk,
                "uuid": node.uuid,
                **node.base.attributes.all,
                "lammps": lines,
                "training_sets": [t.pk for t in training_sets],
                "training_calculations": [c.pk for c in calculations],
            }
        )
        return
    echo_summary(node)
    click.echo("  LAMMPS:")
    for line in lines:
        click.echo(f"    {line}")
    if training_sets:
        sets = ", ".join(f"TrainingSetData<{t.pk}> ({t.num_frames} frames)" for t in training_sets)
        click.echo(f"  trained on {sets}")
    click.echo(f"  labelled by {len(calculations)} DFT calculation(s) (provenance query)")
    if calculations:
        click.echo(
            f"    PKs: {', '.join(str(c.pk) for c in calculations[:20])}{' ...' if len(calculations) > 20 else ''}"
        )


@potential.command("export")
@click.argument("node", metavar="POTENTIAL", type=POTENTIAL)
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder.")
@with_dbenv()
def potential_export(node, output: Path) -> None:
    """Write the POTENTIAL's files, a LAMMPS snippet (pair.lmp) and its metadata (potential.json) into a folder."""
    paths = node.write_files(output)
    pair = output / "pair.lmp"
    try:
        pair.write_text("\n".join(node.lammps_commands(node.elements)) + "\n")
        written = [*paths.values(), pair]
    except (KeyError, ValueError):
        written = list(paths.values())
    meta = output / "potential.json"
    meta.write_text(json.dumps({"pk": node.pk, "uuid": node.uuid, **node.base.attributes.all}, indent=1, default=str))
    written.append(meta)
    click.echo(f"Wrote {len(written)} file(s) to {output}: {', '.join(p.name for p in written)}")
