"""``nanoos.model.train``: train a crystal-graph property surrogate on any computer that has the package installed.

The CalcJob writes (or copies) a CSV with a ``cif`` column and the target column next to a JSON config and runs the
``nanoos-train-model`` console script (:mod:`aiida_nanoos.scripts.train_model`, no AiiDA there). The parser turns
``model.pt`` + ``model.json`` + ``metrics.json`` into a :class:`ModelData` (``nanoos.model``), so the training
(data -> model) is one CalcJob in the provenance graph and runs through the daemon like any DFT calculation.

The data come either as one ``dataset`` (SinglefileData CSV, e.g. a public benchmark table) or as ``structures``
(StructureData nodes, e.g. what a campaign labelled by DFT) with ``targets`` (Dict label -> value): then the CSV is
written at submission and every structure is linked to the training in the graph.
"""

from __future__ import annotations

import csv
import io
import json

from aiida import orm
from aiida.common import datastructures
from aiida.engine import CalcJob
from aiida.parsers import Parser

from aiida_nanoos.calculations.script_output import define_training_exit_codes, training_output
from aiida_nanoos.data.model import ModelData
from aiida_nanoos.models.training import METRICS_FILENAME, parse_model_config
from aiida_nanoos.scripts.train_model import SCRIPT

DATA_FILENAME = "data.csv"
CONFIG_FILENAME = "config.json"
OUTPUT_FOLDER = "model"
STDOUT_FILENAME = "train.out"


def model_name(config: dict) -> str:
    """The output model's name: ``config.name`` or ``cgcnn_<target>``."""
    return config.get("name") or f"cgcnn_{config['target']}"


def validate_config(value: orm.Dict | None, _) -> str | None:
    """Refuse a bad training config at submission, naming the field (the same check the script makes)."""
    if value is None:
        return None
    try:
        config = parse_model_config(value.get_dict())
    except ValueError as error:
        return str(error)
    if config["name"]:
        from aiida_nanoos.data.model import split_full_name

        if split_full_name(config["name"])[1] is not None:
            return f"config.name '{config['name']}' ends in _v<N>: give the version as config.version"
    return None


def _csv_header(dataset: orm.SinglefileData) -> list[str]:
    with dataset.open(mode="r") as handle:
        line = handle.readline()
    return next(csv.reader([line]), [])


def validate_inputs(inputs: dict, _) -> str | None:
    """One data source; target column present; labels consistent; elements featurisable; version free."""
    from aiida_nanoos.data.model import stored_versions
    from aiida_nanoos.models.graph import check_structures

    if "config" not in inputs:
        return None
    try:
        config = parse_model_config(inputs["config"].get_dict())
    except ValueError:
        return None  # reported by the port validator
    target = config["target"]
    dataset, structures, targets = inputs.get("dataset"), inputs.get("structures") or {}, inputs.get("targets")
    if dataset is not None and structures:
        return "give either `dataset` or `structures` + `targets`, not both"
    if dataset is None and not structures:
        return "no training data: give `dataset` (CSV with a cif column) or `structures` + `targets`"
    if dataset is not None:
        header = _csv_header(dataset)
        for column in (config["cif_column"], target):
            if column not in header:
                return (
                    f"dataset {dataset.filename}: no column '{column}' (columns: {', '.join(c for c in header if c)})"
                )
    else:
        if targets is None:
            return "`structures` need `targets` (Dict label -> target value)"
        values = targets.get_dict()
        missing = sorted(set(structures) - set(values))
        if missing:
            return f"targets lack a value for structure(s) {missing[:10]}"
        bad = sorted(label for label in structures if not isinstance(values[label], int | float))
        if bad:
            return f"targets of {bad[:10]} are not numbers"
        if len(structures) < 4:
            return f"need at least 4 labelled structures to train, got {len(structures)}"
        try:
            check_structures([node.get_ase() for node in structures.values()])
        except ValueError as error:
            return str(error)
    if config["version"] is not None and config["version"] in stored_versions(model_name(config)):
        return f"model {model_name(config)}_v{config['version']} already exists: choose another version or none"
    return None


def structures_csv(structures: dict[str, orm.StructureData], targets: dict, target: str) -> str:
    """CSV text (``id``, ``cif``, target) of StructureData nodes and their target values."""
    from ase.io import write

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "cif", target])
    for label in sorted(structures):
        cif = io.BytesIO()
        write(cif, structures[label].get_ase(), format="cif")
        writer.writerow([label, cif.getvalue().decode(), repr(float(targets[label]))])
    return buffer.getvalue()


class ModelTrainingCalculation(CalcJob):
    """Train a crystal-graph surrogate (ensemble or MC dropout); outputs a ``nanoos.model`` and its metrics."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            "dataset", valid_type=orm.SinglefileData, required=False, help="CSV with a cif column and the target."
        )
        spec.input_namespace(
            "structures", valid_type=orm.StructureData, dynamic=True, required=False, help="Labelled structures."
        )
        spec.input("targets", valid_type=orm.Dict, required=False, help="Target value per `structures` label.")
        spec.input(
            "config",
            valid_type=orm.Dict,
            validator=validate_config,
            help="target (column), name, version, method (ensemble, mc_dropout), n_models, epochs, time_budget, "
            "seed, validation_fraction, ... (see surrogate_training.parse_model_config).",
        )
        spec.inputs["metadata"]["options"]["resources"].default = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
        spec.inputs["metadata"]["options"]["parser_name"].default = "nanoos.model.train"
        spec.inputs["metadata"]["options"]["withmpi"].default = False
        spec.inputs.validator = validate_inputs
        spec.output("model", valid_type=ModelData, help="The trained surrogate (found later by name/version).")
        spec.output("metrics", valid_type=orm.Dict, help="Validation MAE, calibration, timings (metrics.json).")
        define_training_exit_codes(
            spec,
            SCRIPT,
            "model or metrics.json",
            "the trained model has a non-finite validation error: unusable.",
        )

    def prepare_for_submission(self, folder):
        config = self.inputs.config.get_dict()
        with folder.open(CONFIG_FILENAME, "w") as handle:
            json.dump(config, handle, indent=1)
        calcinfo = datastructures.CalcInfo()
        if "dataset" in self.inputs:
            calcinfo.local_copy_list = [(self.inputs.dataset.uuid, self.inputs.dataset.filename, DATA_FILENAME)]
        else:
            calcinfo.local_copy_list = []
            with folder.open(DATA_FILENAME, "w") as handle:
                handle.write(
                    structures_csv(dict(self.inputs.structures), self.inputs.targets.get_dict(), config["target"])
                )
        codeinfo = datastructures.CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = ["--data", DATA_FILENAME, "--config", CONFIG_FILENAME, "--output", OUTPUT_FOLDER]
        codeinfo.stdout_name = STDOUT_FILENAME
        codeinfo.withmpi = False
        calcinfo.codes_info = [codeinfo]
        calcinfo.retrieve_list = [STDOUT_FILENAME, OUTPUT_FOLDER]
        return calcinfo


class ModelTrainingParser(Parser):
    """Builds the model node from ``model/`` (weights, config, metrics.json)."""

    def parse(self, **kwargs):
        import math

        with training_output(self, SCRIPT, OUTPUT_FOLDER, METRICS_FILENAME, "nanoos-train-model-parse-") as output:
            if output.failure is not None:
                return output.failure
            description = output.description
            mae = description.get("mae")
            if mae is None or not math.isfinite(mae):
                return self.exit_codes.ERROR_NON_FINITE_ERRORS
            config = description.get("config") or self.node.inputs.config.get_dict()
            try:
                model = ModelData.from_directory(
                    output.folder, name=model_name(config), version=config.get("version"), metrics=description
                )
            except (OSError, KeyError, ValueError) as error:
                return self.exit_codes.ERROR_OUTPUT_MISSING.format(message=str(error))
        self.out("model", model)
        self.out("metrics", orm.Dict(description))
        return None


__all__ = ["ModelTrainingCalculation", "ModelTrainingParser"]
