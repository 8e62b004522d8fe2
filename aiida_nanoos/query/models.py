"""Property models read back for the calibration plot: the validation predictions of a trained model, recomputed
from the stored model and the stored training data (the per-prediction errors are not stored at training time)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from aiida import orm

from aiida_nanoos.data.model import ModelData
from aiida_nanoos.design.objectives import KNOWN_PROPERTIES
from aiida_nanoos.query.identifiers import load_identified


def load_model(identifier: int | str | orm.Node) -> ModelData:
    """The model with this PK, UUID, name (latest version) or ``name_vN``."""
    node = load_identified(identifier, ModelData.find)
    if not isinstance(node, ModelData):
        raise ValueError(f"node {node.pk} is a {type(node).__name__}, not a property model (nanoos.model)")
    return node


def _training_table(training: orm.CalcJobNode, config: dict):
    """The table the training script read: the ``dataset`` CSV, or the CSV the CalcJob wrote from its structures."""
    from aiida_nanoos.calculations.model_training import structures_csv
    from aiida_nanoos.models.structure_table import read_structure_csv

    with tempfile.TemporaryDirectory(prefix="nanoos-calibration-") as folder:
        path = Path(folder) / "data.csv"
        if "dataset" in training.inputs:
            path.write_bytes(training.inputs.dataset.get_content(mode="rb"))
        else:
            path.write_text(
                structures_csv(dict(training.inputs.structures), training.inputs.targets.get_dict(), config["target"])
            )
        table = read_structure_csv(path, config["target"], config["cif_column"], config["id_column"])
    if config["max_rows"] is not None:
        table = table.subset(range(min(config["max_rows"], len(table))))
    return table


def calibration_data(model: int | str | orm.Node) -> dict[str, Any]:
    """The arguments of :func:`aiida_nanoos.plots.calibration_figure`.

    For a model made by the ``nanoos.model.train`` CalcJob (its creator), the validation structures are read from
    the CalcJob's stored input data and the model's recorded ``validation_indices`` and predicted again with the
    stored model and the uncertainty method of the training, giving the errors (true − predicted) and recalibrated σ
    of each validation prediction: the data the stored ``metrics.calibration`` summarises. For a model stored from
    memory (no training data in the graph), only that summary.
    """
    from aiida_nanoos.models.training import parse_model_config

    node = load_model(model)
    summary = dict(node.metrics.get("calibration") or {})
    # a model does not store the unit of its target: the campaign property's, else said to be the data's own
    units = KNOWN_PROPERTIES.get(node.target) or f"units of {node.target}"
    title = f"Property model {node.full_name} (ModelData<{node.pk}>)"
    base = {"target": node.target, "units": units, "summary": summary, "title": title}
    training = node.creator
    validation = (node.config.get("info") or {}).get("validation_indices")
    if not isinstance(training, orm.CalcJobNode) or not validation:
        return {**base, "errors": None, "sigma": None, "subset": "stored summary only: no training data in the graph"}
    config = parse_model_config(training.inputs.config.get_dict())
    table = _training_table(training, config)
    rows = np.asarray(validation, int)
    result = node.load_model().predict_with_uncertainty(
        [table.structures[i] for i in rows], method=config["method"], n_samples=config["n_samples"]
    )
    return {
        **base,
        "errors": table.targets[rows] - result.prediction,
        "sigma": result.uncertainty,
        "subset": f"{len(rows)} validation structures, recomputed",
    }
