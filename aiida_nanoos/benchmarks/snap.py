"""``aiida-nanoos benchmark snap``: fit a SNAP potential to DFT frames and report its errors (see ml/snap_benchmark)."""

from __future__ import annotations

import json

import click

from aiida_nanoos.benchmarks import options


@click.command("snap")
@click.option(
    "--train",
    "train",
    required=True,
    type=click.Path(exists=True),
    help="extxyz file/folder, FitSNAP JSON folder or mlearn JSON file.",
)
@click.option("--test", "test", required=True, type=click.Path(exists=True), help="Same formats; may equal --train.")
@click.option("--twojmax", type=int, default=None, help="Bispectrum band limit 2J (default: FitSNAP input, else 6).")
@click.option("--rcutfac", type=float, default=None, help="Cutoff scale (Å for radelem 0.5); default from the data.")
@click.option(
    "--quadratic/--linear", "quadratic", default=None, help="Quadratic SNAP (default: FitSNAP input, else linear)."
)
@click.option(
    "--fitsnap-input",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="FitSNAP .in file: hyper-parameters, reference potential, energy shifts and group weights.",
)
@click.option(
    "--reference-metrics",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="FitSNAP *_metrics.md to compare the training errors with (ratio, goal <= 1.00).",
)
@click.option(
    "--zbl/--no-zbl", "zbl", default=None, help="Subtract a ZBL reference (default: as the FitSNAP input, else no)."
)
@click.option("--zbl-inner", type=float, default=4.0, show_default=True, help="ZBL switching start (Å).")
@click.option("--zbl-outer", type=float, default=4.8, show_default=True, help="ZBL cutoff (Å).")
@click.option("--solver", type=click.Choice(["svd", "ridge"]), default=None, help="Least-squares solver (default svd).")
@click.option("--ridge-alpha", type=float, default=1.0e-6, show_default=True)
@click.option("--energy-weight", type=float, default=None, help="Weight of energy-per-atom rows (default 100).")
@click.option("--force-weight", type=float, default=None, help="Weight of force rows (default 1).")
@click.option("--stress-weight", type=float, default=None, help="Weight of stress rows in bar (default 1e-5).")
@click.option(
    "--stress-unit",
    type=click.Choice(["auto", "bar", "eV/A3"]),
    default="auto",
    show_default=True,
    help="Unit of stress in extxyz files.",
)
@click.option(
    "--goal-force-rmse", type=float, default=None, help="Also report whether the force RMSE meets this (eV/Å)."
)
@click.option(
    "--write-potential", type=click.Path(file_okay=False), default=None, help="Folder for snap.snapcoeff/.snapparam."
)
@options.json_output
def command(as_json: bool, goal_force_rmse: float | None, **options) -> None:
    """Fit SNAP on TRAIN, report train and test energy/force/stress errors, timings and reference ratios."""
    from aiida_nanoos.benchmarks.snap_fit import SnapBenchmarkSettings, format_report, run_snap_benchmark

    results = run_snap_benchmark(SnapBenchmarkSettings(**options))
    results["goal_force_rmse"] = goal_force_rmse
    click.echo(json.dumps(results, indent=2) if as_json else format_report(results))
