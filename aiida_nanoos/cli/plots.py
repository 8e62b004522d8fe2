"""``aiida-nanoos campaign|potential|md|model plot ID -o FILE``: figures drawn from stored nodes only.

The data come from :mod:`aiida_nanoos.query`, the drawing from :mod:`aiida_nanoos.plots` (no AiiDA there); the file
format (PNG or SVG) follows the suffix of ``-o``. IDs are PKs, UUIDs or labels, parsed with aiida's own
identifier types once the profile given with ``aiida-nanoos -p`` is loaded.
"""

from __future__ import annotations

from pathlib import Path

import click

from .utils import load_profile

OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Image file to write: .png or .svg.",
)


class ProfileIdentifier(click.ParamType):
    """One of aiida's identifier types (PK, UUID or label), converted after loading the ``aiida-nanoos -p`` profile
    (aiida's own types would otherwise load the default profile)."""

    def __init__(self, make_type, name: str):
        self.make_type = make_type
        self.name = name

    def convert(self, value, param, ctx):
        load_profile(ctx)
        return self.make_type().convert(value, param, ctx)


def _workflow_type():
    from aiida.cmdline.params.types import WorkflowParamType

    return WorkflowParamType()


def _potential_type():
    from aiida.cmdline.params.types import DataParamType

    return DataParamType(sub_classes=("aiida.data:nanoos.potential",))


def _process_type():
    from aiida.cmdline.params.types import ProcessParamType

    return ProcessParamType()


CAMPAIGN = ProfileIdentifier(_workflow_type, "CAMPAIGN")
POTENTIAL = ProfileIdentifier(_potential_type, "POTENTIAL")
PROCESS = ProfileIdentifier(_process_type, "PROCESS")


def _check_suffix(output: Path) -> None:
    from aiida_nanoos.plots import FORMATS

    if output.suffix.lower() not in FORMATS:
        raise click.BadParameter(f"{output.name}: give a file ending in {' or '.join(FORMATS)}", param_hint="-o")


def _save(figure, output: Path, what: str) -> None:
    from aiida_nanoos.plots import save_figure

    path = save_figure(figure, output)
    click.echo(f"Wrote {path} ({what}, {path.stat().st_size / 1024:.0f} kB)")


def _refuse(error: ValueError) -> click.ClickException:
    return click.ClickException(str(error))


@click.command("plot")
@click.argument("campaign", type=CAMPAIGN)
@OUTPUT
@click.option(
    "--kind",
    type=click.Choice(["convergence", "pareto"]),
    default="convergence",
    show_default=True,
    help="Best value against iterations and DFT evaluations, or the Pareto front (several objectives).",
)
@click.option(
    "--baseline",
    type=CAMPAIGN,
    default=None,
    help="A random-search campaign of the same space whose values give the random band (default: the campaign's "
    "own random candidates).",
)
def campaign_plot(campaign, output: Path, kind: str, baseline) -> None:
    """Plot the convergence or the Pareto front of CAMPAIGN (PK, UUID or label) into a PNG/SVG file."""
    from aiida_nanoos import plots, query

    _check_suffix(output)
    try:
        if kind == "pareto":
            data = query.pareto_data(campaign)
            figure = plots.pareto_figure(**data)
            what = f"{int(sum(data['on_front']))} on the front of {len(data['on_front'])} feasible candidates"
        else:
            data = query.convergence_data(campaign, baseline)
            n_max = max(data["evaluations"], default=0)
            band = plots.random_baseline(data.pop("samples"), n_max, data["maximize"], data.pop("sample_source"))
            figure = plots.convergence_figure(**data, baseline=band)
            last = data["best_so_far"][-1] if data["best_so_far"] else None
            what = f"best {data['metric']} {last} after {len(data['best_so_far'])} iteration(s)" + (
                "" if band else "; no random baseline known"
            )
    except ValueError as error:
        raise _refuse(error) from error
    _save(figure, output, what)


@click.command("plot")
@click.argument("potential", type=POTENTIAL)
@OUTPUT
def potential_plot(potential, output: Path) -> None:
    """Parity plots (energy, forces, stress vs DFT) of POTENTIAL into a PNG/SVG file: its stored held-out
    validation, or its training frames evaluated again when it was never validated."""
    from aiida_nanoos import plots, query

    _check_suffix(output)
    try:
        data = query.parity_data(potential)
    except ValueError as error:
        raise _refuse(error) from error
    _save(plots.parity_figure(**data), output, data["subset"])


@click.group("md")
def md() -> None:
    """MD runs with machine-learned potentials (nanoos.md, run_ase_md)."""


@md.command("plot")
@click.argument("run", type=PROCESS)
@OUTPUT
def md_plot(run, output: Path) -> None:
    """Temperature, total and potential energy, pressure against time of the MD RUN into a PNG/SVG file."""
    from aiida_nanoos import plots, query

    _check_suffix(output)
    try:
        data = query.thermo_data(run)
    except ValueError as error:
        raise _refuse(error) from error
    _save(plots.thermo_figure(**data), output, f"{len(data['time_ps'])} thermo rows, {data['n_atoms']} atoms")


@click.command("plot")
@click.argument("model")
@OUTPUT
def model_plot(model: str, output: Path) -> None:
    """Calibration curve and σ against |error| of MODEL (PK, UUID, name or name_vN) into a PNG/SVG file."""
    load_profile()
    from aiida_nanoos import plots, query

    _check_suffix(output)
    try:
        data = query.calibration_data(model)
    except ValueError as error:
        raise _refuse(error) from error
    _save(plots.calibration_figure(**data), output, data["subset"])
