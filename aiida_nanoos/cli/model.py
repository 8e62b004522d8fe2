"""``aiida-nanoos model``: train, list, show and use property models (also ``verdi data nanoos.model``)."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

import click
from aiida.cmdline.utils.decorators import with_dbenv

from .params import JSON, MODEL, echo_json, echo_table, group
from .utils import launch

DEFAULT_CODE = "nanoos-train-model@localhost"


def echo_summary(node) -> None:
    """What one checks first about a property model."""
    metrics = node.metrics or {}
    click.echo(f"ModelData<{node.pk}> {node.full_name}: predicts '{node.target}'")
    click.echo(
        f"  uncertainty: {node.method} (supports {', '.join(node.methods)}), {node.n_members} member(s), "
        f"{'extensive' if node.extensive else 'intensive'} target"
    )
    click.echo(f"  trained on elements: {', '.join(node.elements)}")
    if "mae" in metrics:
        calibration = metrics.get("calibration") or {}
        click.echo(
            f"  validation: MAE {metrics['mae']:.4g} on {metrics.get('n_validation', '?')} structures "
            f"(trained on {metrics.get('n_train', '?')}), 1-sigma coverage {calibration.get('coverage_1sigma', '-')}, "
            f"training {metrics.get('training_seconds', float('nan')):.0f} s"
        )
    calculations = node.training_calculations()
    if calculations:
        click.echo(f"  trained by {calculations[0].process_label}<{calculations[0].pk}>")


@group("model")
def model() -> None:
    """Property models (nanoos.model): crystal-graph networks with uncertainty."""


@model.command("train")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--target", required=True, help="Target column of the CSV (the property to learn).")
@click.option("--name", required=True, help="Model name, e.g. cgcnn_formation_energy (versions count up).")
@click.option("--version", type=int, default=None, help="Explicit version (default: the next free one).")
@click.option("--method", type=click.Choice(["ensemble", "mc_dropout"]), default="ensemble", show_default=True)
@click.option("--models", "n_models", type=int, default=None, help="Ensemble members (default 3; 1 for mc_dropout).")
@click.option("--epochs", type=int, default=80, show_default=True)
@click.option("--time-budget", type=float, default=None, help="Seconds of training for all members together.")
@click.option("--max-rows", type=int, default=None, help="Train on the first N rows only.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--code", "code_label", default=DEFAULT_CODE, show_default=True, help="Code running nanoos-train-model.")
@click.option("--submit", is_flag=True, help="Submit to the daemon and return (default: run here and wait).")
@with_dbenv()
def model_train(
    csv_file: Path,
    target: str,
    name: str,
    version: int | None,
    method: str,
    n_models: int | None,
    epochs: int,
    time_budget: float | None,
    max_rows: int | None,
    seed: int,
    code_label: str,
    submit: bool,
) -> None:
    """Train a property model on CSV_FILE (a `cif` column and the target column) with the nanoos.model.train job."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    from aiida_nanoos.calculations.model_training import ModelTrainingCalculation

    try:
        code = orm.load_code(code_label)
    except NotExistent as error:
        raise click.ClickException(f"no code {code_label}: run `aiida-nanoos setup`") from error
    config = {"target": target, "name": name, "method": method, "epochs": epochs, "seed": seed}
    for key, value in (("version", version), ("n_models", n_models), ("time_budget", time_budget)):
        if value is not None:
            config[key] = value
    if max_rows is not None:
        config["max_rows"] = max_rows
    builder = ModelTrainingCalculation.get_builder()
    builder.code = code
    builder.config = orm.Dict(config)
    builder.dataset = orm.SinglefileData(csv_file.resolve())
    builder.metadata.options.max_wallclock_seconds = 24 * 3600
    try:
        node = launch(builder, submit)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    if submit:
        return
    if not node.is_finished_ok:
        message = f"ModelTrainingCalculation<{node.pk}> failed [{node.exit_status}]: {node.exit_message}"
        raise click.ClickException(message)
    echo_summary(node.outputs.model)


@model.command("list")
@JSON
@with_dbenv()
def model_list(as_json: bool) -> None:
    """List the models in the profile with their validation error."""
    from aiida import orm

    from aiida_nanoos.data.model import ModelData

    query = orm.QueryBuilder().append(
        ModelData,
        tag="model",
        project=["id", "ctime", "attributes.name", "attributes.version", "attributes.target", "attributes.method",
                 "attributes.n_members", "attributes.metrics"],
    )  # fmt: skip
    query.order_by({"model": {"id": "asc"}})
    rows = []
    for pk, ctime, name, version, target, method, members, metrics in query.all():
        mae = (metrics or {}).get("mae")
        rows.append(
            {
                "PK": pk,
                "Created": f"{ctime:%Y-%m-%d %H:%M:%S}",
                "Method": method,
                "Members": members,
                "Validation MAE": mae if isinstance(mae, float | int) else None,
                "Name (target)": f"{name}_v{version} ({target})",
            }
        )
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo("No models yet: train one with `aiida-nanoos model train data.csv --target COLUMN --name NAME`.")
    else:
        echo_table(rows)


@model.command("show")
@click.argument("node", metavar="MODEL", type=MODEL)
@JSON
@with_dbenv()
def model_show(node, as_json: bool) -> None:
    """Summary of one MODEL (NAME, NAME_vN, PK, UUID or label)."""
    if as_json:
        calculations = node.training_calculations()
        echo_json(
            {
                "pk": node.pk,
                "uuid": node.uuid,
                "full_name": node.full_name,
                **node.base.attributes.all,
                "training_calculations": [c.pk for c in calculations],
            }
        )
        return
    echo_summary(node)


def read_candidates(paths: list[Path], cif_column: str = "cif") -> tuple[list, list[str]]:
    """Structures and labels from CSV files (a `cif` column; labels from material_id/id or the row) and from any
    structure file ASE reads (every frame; labels <stem>_<index>)."""
    from ase.io import read

    structures, labels = [], []
    csv.field_size_limit(sys.maxsize)
    for path in paths:
        if path.suffix.lower() == ".csv":
            with path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                columns = reader.fieldnames or []
                if cif_column not in columns:
                    raise click.BadParameter(f"{path}: no '{cif_column}' column", param_hint="FILES")
                id_column = next((c for c in ("material_id", "id") if c in columns), None)
                for row_number, row in enumerate(reader):
                    try:
                        structures.append(read(io.StringIO(row[cif_column]), format="cif"))
                    except Exception as error:  # noqa: BLE001 - ASE raises many kinds of errors on bad CIF text
                        raise click.BadParameter(f"{path}: row {row_number}: unreadable CIF ({error})") from error
                    labels.append(f"{path.stem}:{row[id_column] if id_column else row_number}")
        else:
            try:
                frames = read(path, index=":")
            except Exception as error:  # noqa: BLE001
                raise click.BadParameter(f"{path}: ASE cannot read it ({error})", param_hint="FILES") from error
            structures.extend(frames)
            labels.extend(f"{path.stem}_{i}" if len(frames) > 1 else path.stem for i in range(len(frames)))
    if len(set(labels)) != len(labels):  # the same file twice, or repeated ids
        labels = [f"{i}:{label}" for i, label in enumerate(labels)]
    return structures, labels


@model.command("predict")
@click.argument("node", metavar="MODEL", type=MODEL)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--method", type=click.Choice(["ensemble", "mc_dropout"]), default=None, help="Default: the model's.")
@click.option("--samples", type=int, default=30, show_default=True, help="MC-dropout passes.")
@click.option("--target", default=None, help="The property you want (refused if the model predicts another).")
@click.option("--select", "n_select", type=int, default=0, help="Also pick N candidates for simulation.")
@click.option(
    "--strategy",
    type=click.Choice(["uncertainty", "greedy_uncertainty", "expected_improvement", "diverse_uncertainty"]),
    default="uncertainty",
    show_default=True,
)
@click.option("--direction", type=click.Choice(["min", "max"]), default="min", show_default=True)
@click.option("--show", "n_show", type=int, default=20, show_default=True, help="Rows of predictions to print.")
@JSON
@with_dbenv()
def model_predict(
    node,
    files: tuple[Path, ...],
    method: str | None,
    samples: int,
    target: str | None,
    n_select: int,
    strategy: str,
    direction: str,
    n_show: int,
    as_json: bool,
) -> None:
    """Predict with MODEL (name, name_vN or PK) for the structures in FILES (CSV with a cif column, CIF, extxyz...).

    One calcfunction node for the whole batch; with --select, a second one choosing what to simulate.
    """
    from aiida import orm

    from aiida_nanoos.data.structure_batch import StructureBatchData
    from aiida_nanoos.functions.property_model import predict_with_uncertainty, select_for_simulation

    structures, labels = read_candidates(list(files))
    if not structures:
        raise click.ClickException("empty batch: no structures in the given files")
    settings = {"n_samples": samples, "store_embeddings": strategy == "diverse_uncertainty" and n_select > 0}
    if method:
        settings["method"] = method
    if target:
        settings["target"] = target
    try:
        batch = StructureBatchData(structures, labels)
        prediction, process = predict_with_uncertainty.run_get_node(
            model=node, structures=batch, settings=orm.Dict(settings)
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    values, sigma = prediction.get_array("prediction"), prediction.get_array("uncertainty")
    unseen = prediction.get_array("unseen_element")
    chosen = selection_process = None
    if n_select > 0:
        try:
            chosen, selection_process = select_for_simulation.run_get_node(
                prediction=prediction,
                settings=orm.Dict({"strategy": strategy, "budget": n_select, "direction": direction}),
            )
        except ValueError as error:
            raise click.ClickException(str(error)) from error
    if as_json:  # every structure (not only --show rows), and the nodes a script can load
        rows = zip(labels, values, sigma, unseen, strict=True)
        echo_json(
            {
                "model": node.full_name,
                "target": node.target,
                "method": prediction.base.attributes.get("method"),
                "predictions": [
                    {"identifier": name, "value": float(y), "uncertainty": float(error), "unseen_element": bool(new)}
                    for name, y, error, new in rows
                ],
                "batch_pk": batch.pk,
                "calcfunction_pk": process.pk,
                "prediction_pk": prediction.pk,
                "selected": chosen["selected"] if chosen is not None else [],
                "uncertainty_used": chosen["uncertainty_used"] if chosen is not None else None,
                "selection_pk": chosen.pk if chosen is not None else None,
            }
        )
        return
    click.echo(
        f"{node.full_name} ({prediction.base.attributes.get('method')}): {node.target} for {len(labels)} structures"
    )
    for label, value, error, flag in list(zip(labels, values, sigma, unseen, strict=True))[:n_show]:
        click.echo(f"  {label:30}  {value:10.4f} ± {error:.4f}{'  (element unseen in training)' if flag else ''}")
    if len(labels) > n_show:
        click.echo(f"  ... {len(labels) - n_show} more (all in ArrayData<{prediction.pk}>)")
    click.echo(
        f"batch StructureBatchData<{batch.pk}>, calcfunction<{process.pk}>, prediction ArrayData<{prediction.pk}>"
    )
    if chosen is not None:
        epistemic = chosen["uncertainty_used"] == "epistemic_uncertainty"
        used = "epistemic sigma (model disagreement)" if epistemic else "total sigma"
        click.echo(f"selected for simulation ({strategy}) on the {used}; ± above is the total, recalibrated sigma:")
        for entry in chosen["selected"]:
            click.echo(f"  {entry['identifier']:30}  {entry['reason']}")
        click.echo(f"selection calcfunction<{selection_process.pk}>, Dict<{chosen.pk}>")
