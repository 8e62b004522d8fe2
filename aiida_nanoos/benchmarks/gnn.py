"""``aiida-nanoos benchmark gnn``: accuracy and uncertainty calibration of the crystal-graph model.

Trains on one CSV (a ``cif`` column and a target column), recalibrates sigma on a validation split of the
training CSV only, and scores a test CSV. Given one CSV (or the same file twice), it is split
deterministically (``--split``, ``--seed``). The logic is in :mod:`aiida_nanoos.benchmarks.crystal_graph_harness`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from aiida_nanoos.benchmarks import options
from aiida_nanoos.models.calibration import RECALIBRATION_METHODS


@click.command("gnn")
@click.option("--train", "train_csv", required=True, type=click.Path(exists=True, dir_okay=False), help="Training CSV.")
@click.option(
    "--test", "test_csv", type=click.Path(exists=True, dir_okay=False), help="Test CSV (default: split --train)."
)
@click.option("--target", default="heat_all", show_default=True, help="Target column.")
@click.option("--cif-column", default="cif", show_default=True, help="Column holding the CIF text.")
@click.option("--method", type=click.Choice(["ensemble", "mc_dropout"]), default="ensemble", show_default=True)
@click.option("--members", type=int, default=None, help="Ensemble members (default 3 for ensemble, 1 for mc_dropout).")
@click.option("--split", default=0.2, show_default=True, help="Test fraction when train and test are one file.")
@click.option("--seed", default=0, show_default=True, help="Seed of the split, the validation split and training.")
@click.option("--time-budget", default=540.0, show_default=True, help="Seconds (on --clock) for training all members.")
@click.option(
    "--clock",
    type=click.Choice(["cpu", "wall"]),
    default="cpu",
    show_default=True,
    help="What the time budget counts: this process's CPU time (the same training however busy the machine is) "
    "or wall time.",
)
@click.option(
    "--recalibration",
    type=click.Choice(list(RECALIBRATION_METHODS)),
    default="auto",
    show_default=True,
    help="How sigma is recalibrated on the validation split (auto: identity, scale or scale + floor, whichever "
    "is best on held-out folds of the validation errors).",
)
@options.torch_threads
@options.json_output
@options.quiet
def command(
    train_csv: str,
    test_csv: str | None,
    target: str,
    cif_column: str,
    method: str,
    members: int | None,
    split: float,
    seed: int,
    time_budget: float,
    clock: str,
    recalibration: str,
    threads: int,
    as_json: bool,
    quiet: bool,
) -> None:
    """MAE, RMSE, 1/2-sigma coverage, miscalibration area, Spearman |error|~sigma and training time."""
    from aiida_nanoos.benchmarks.crystal_graph_harness import format_gnn, gnn_benchmark
    from aiida_nanoos.models.structure_table import read_structure_csv, split_indices

    progress = None if quiet else (lambda message: click.echo(message, err=True))
    dropped_train: list[str] = []
    dropped_test: list[str] = []
    try:
        train = read_structure_csv(train_csv, target, cif_column=cif_column)
        same = test_csv is None or Path(test_csv).resolve() == Path(train_csv).resolve()
        if same:
            train_index, test_index = split_indices(len(train), split, seed)
            train, test = train.subset(train_index), train.subset(test_index)
        else:
            test = read_structure_csv(test_csv, target, cif_column=cif_column)
        if progress:
            progress(
                f"{len(train)} training and {len(test)} test structures" + (" (split of one file)" if same else "")
            )
        result = gnn_benchmark(
            train,
            test,
            method=method,
            n_members=members,
            time_budget=time_budget,
            clock=clock,
            recalibration=recalibration,
            seed=seed,
            threads=threads,
            log=progress,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    result.update({"train_csv": train_csv, "test_csv": test_csv or train_csv, "split": split if same else None})
    result["dropped_unsupported"] = {"train": dropped_train, "test": dropped_test}
    click.echo(json.dumps(result, indent=2) if as_json else format_gnn(result))
