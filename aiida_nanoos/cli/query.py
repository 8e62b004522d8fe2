"""``aiida-nanoos query ...``: presets of the provenance query API (:mod:`aiida_nanoos.query`), printed as tables
the way ``verdi`` prints them, or as JSON (``--json``) for scripts."""

from __future__ import annotations

from pathlib import Path

import click
from aiida.cmdline.utils.decorators import with_dbenv

from .params import CAMPAIGN, JSON, POTENTIAL, PROCESS, echo_json, echo_table, group, process_state


def _echo_rows(rows: list[dict], as_json: bool, empty: str) -> None:
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo(empty)
    else:
        echo_table(rows)


def _processes(nodes) -> list[dict]:
    return [
        {
            "PK": n.pk,
            "created": f"{n.ctime:%Y-%m-%d %H:%M:%S}",
            "process": n.process_label,
            "state": process_state(n),
            "label": n.label,
        }
        for n in nodes
    ]


@group("query")
def query() -> None:
    """Provenance questions: which DFT trained a potential, which MD used it, the best candidates, a campaign table."""


@query.command("training-dft")
@click.argument("potential", type=POTENTIAL)
@JSON
@with_dbenv()
def training_dft(potential, as_json: bool) -> None:
    """The DFT calculations whose labels POTENTIAL was fitted on."""
    from aiida_nanoos import query as q

    _echo_rows(_processes(q.training_calculations(potential)), as_json, "No DFT calculation found in the graph.")


@query.command("potentials-from")
@click.argument("calculation", type=PROCESS)
@JSON
@with_dbenv()
def potentials_from(calculation, as_json: bool) -> None:
    """The potentials fitted on the labels of the DFT CALCULATION (and their validated copies)."""
    from aiida_nanoos import query as q

    rows = [
        {"PK": p.pk, "name": p.name, "version": p.version, "type": p.descriptor_type, "validated": p.validated}
        for p in q.potentials_trained_from(calculation)
    ]
    _echo_rows(rows, as_json, "No potential was trained on this calculation.")


@query.command("md-runs")
@click.argument("potential", type=POTENTIAL)
@click.option("--exact", is_flag=True, help="Only runs with this very node (not its validated copies/original).")
@JSON
@with_dbenv()
def md_runs(potential, exact: bool, as_json: bool) -> None:
    """The MD runs that used POTENTIAL."""
    from aiida_nanoos import query as q

    _echo_rows(_processes(q.md_runs(potential, include_copies=not exact)), as_json, "No MD run used this potential.")


@query.command("best")
@click.argument("prop", metavar="PROPERTY")
@click.option("--min", "low", type=float, default=None, help="Smallest value kept.")
@click.option("--max", "high", type=float, default=None, help="Largest value kept.")
@click.option("--limit", type=int, default=20, show_default=True)
@click.option("--smallest", is_flag=True, help="Smallest values first (default: largest first).")
@JSON
@with_dbenv()
def best(prop: str, low, high, limit: int, smallest: bool, as_json: bool) -> None:
    """The evaluated candidates of all campaigns with PROPERTY (e.g. bandgap) in [--min, --max]."""
    from aiida_nanoos import query as q

    frame = q.best_candidates(prop, low, high, limit=limit, largest=not smallest)
    _echo_rows(frame.to_dict("records"), as_json, f"No evaluated candidate has {prop} in that range.")


@query.command("campaign-table")
@click.argument("campaign", type=CAMPAIGN)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the table as CSV.")
@JSON
@with_dbenv()
def campaign_table(campaign, csv_path: Path | None, as_json: bool) -> None:
    """One row per candidate of CAMPAIGN: iteration, parameters, properties, value, status, source, error."""
    from aiida_nanoos import query as q

    try:
        frame = q.campaign_dataframe(campaign)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    if csv_path is not None:
        frame.to_csv(csv_path, index=False)
        click.echo(f"Wrote {len(frame)} candidates to {csv_path}")
        return
    columns = [
        c for c in ("id", "iteration", "generation_method", "formula", "status", "source", "value") if c in frame
    ]
    rows = frame.to_dict("records") if as_json else frame[columns].to_dict("records")
    _echo_rows(rows, as_json, "No candidate yet.")
