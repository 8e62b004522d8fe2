"""``aiida-nanoos campaign|potential|md|model plot ID -o FILE``: figures drawn from stored nodes only.

The data come from :mod:`aiida_nanoos.query`, the drawing from :mod:`aiida_nanoos.plots` (no AiiDA there); the file
format (PNG or SVG) follows the suffix of ``-o``. IDs are PKs, UUIDs or labels (models also by name), parsed by the
identifier types of :mod:`.params`. Each command prints the path it wrote (``--json``: path, size and what is drawn).
"""

from __future__ import annotations

from pathlib import Path

import click
from aiida.cmdline.utils.decorators import with_dbenv

from .params import CAMPAIGN, JSON, MD_RUN, MODEL, POTENTIAL, NanoosCommand, echo_json, group

OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Image file to write: .png or .svg.",
)


def _check_suffix(output: Path) -> None:
    from aiida_nanoos.plots import FORMATS

    if output.suffix.lower() not in FORMATS:
        raise click.BadParameter(f"{output.name}: give a file ending in {' or '.join(FORMATS)}", param_hint="-o")


def _save(figure, output: Path, what: str, as_json: bool) -> None:
    from aiida_nanoos.plots import save_figure

    path = save_figure(figure, output)
    if as_json:
        echo_json({"path": str(path.resolve()), "bytes": path.stat().st_size, "content": what})
        return
    click.echo(f"Wrote {path} ({what}, {path.stat().st_size / 1024:.0f} kB)")


def _refuse(error: ValueError) -> click.ClickException:
    return click.ClickException(str(error))


@click.command("plot", cls=NanoosCommand)
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
@JSON
@with_dbenv()
def campaign_plot(campaign, output: Path, kind: str, baseline, as_json: bool) -> None:
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
    _save(figure, output, what, as_json)


@click.command("plot", cls=NanoosCommand)
@click.argument("potential", type=POTENTIAL)
@OUTPUT
@JSON
@with_dbenv()
def potential_plot(potential, output: Path, as_json: bool) -> None:
    """Parity plots (energy, forces, stress vs DFT) of POTENTIAL into a PNG/SVG file: its stored held-out
    validation, or its training frames evaluated again when it was never validated."""
    from aiida_nanoos import plots, query

    _check_suffix(output)
    try:
        data = query.parity_data(potential)
    except ValueError as error:
        raise _refuse(error) from error
    _save(plots.parity_figure(**data), output, data["subset"], as_json)


@group("md")
def md() -> None:
    """MD runs with machine-learned potentials (nanoos.md, run_ase_md)."""


@md.command("plot")
@click.argument("run", type=MD_RUN)
@OUTPUT
@JSON
@with_dbenv()
def md_plot(run, output: Path, as_json: bool) -> None:
    """Temperature, total and potential energy, pressure against time of the MD RUN into a PNG/SVG file."""
    from aiida_nanoos import plots, query

    _check_suffix(output)
    try:
        data = query.thermo_data(run)
    except ValueError as error:
        raise _refuse(error) from error
    what = f"{len(data['time_ps'])} thermo rows, {data['n_atoms']} atoms"
    _save(plots.thermo_figure(**data), output, what, as_json)


@click.command("plot", cls=NanoosCommand)
@click.argument("model", type=MODEL)
@OUTPUT
@JSON
@with_dbenv()
def model_plot(model, output: Path, as_json: bool) -> None:
    """Calibration curve and σ against |error| of MODEL (PK, UUID, name or name_vN) into a PNG/SVG file."""
    from aiida_nanoos import plots, query

    _check_suffix(output)
    try:
        data = query.calibration_data(model)
    except ValueError as error:
        raise _refuse(error) from error
    _save(plots.calibration_figure(**data), output, data["subset"], as_json)
