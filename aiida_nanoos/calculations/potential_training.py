"""``nanoos.potential.train``: fit an interatomic potential to a training set, on any host, with aiida-nanoos.

The CalcJob copies the training set's extxyz file and a JSON config next to each other and runs the ``nanoos-train``
console script (:mod:`aiida_nanoos.scripts.train_potential`, no AiiDA needed there). The parser turns the potential
files and ``metrics.json`` it writes into a :class:`PotentialData` (and one per committee member), so the fit
(training set -> potential) is one CalcJob in the provenance graph, and training can run through the daemon on a
remote machine like any DFT calculation.
"""

from __future__ import annotations

import json

from aiida import orm
from aiida.common import datastructures
from aiida.engine import CalcJob
from aiida.parsers import Parser

from aiida_nanoos.calculations.script_output import define_training_exit_codes, training_output
from aiida_nanoos.data.potential import PotentialData
from aiida_nanoos.data.training_set import TrainingSetData
from aiida_nanoos.potentials.training_config import COMMITTEE_FOLDER, METRICS_FILENAME, parse_train_config
from aiida_nanoos.scripts.train_potential import SCRIPT

FRAMES_FILENAME = "frames.extxyz"
CONFIG_FILENAME = "config.json"
OUTPUT_FOLDER = "potential"


def validate_config(value: orm.Dict | None, _) -> str | None:
    """Refuse a bad training config at submission, naming the field (the same check the script makes)."""
    if value is None:
        return None
    try:
        parse_train_config(value.get_dict())
    except ValueError as error:
        return str(error)
    return None


def validate_inputs(inputs: dict, _) -> str | None:
    """The config's explicit element list must cover the training set."""
    if "config" not in inputs or "training_set" not in inputs:
        return None
    elements = inputs["config"].get_dict().get("elements")
    if elements:
        missing = sorted(set(inputs["training_set"].elements) - set(elements))
        if missing:
            return f"config.elements lacks {missing}, present in the training set"
    return None


class PotentialTrainingCalculation(CalcJob):
    """Fit SNAP / quadratic SNAP / MACE to a ``nanoos.training_set``; outputs a ``nanoos.potential`` with its errors."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("training_set", valid_type=TrainingSetData, help="Labelled frames to fit.")
        spec.input(
            "config",
            valid_type=orm.Dict,
            default=lambda: orm.Dict({"descriptor_type": "SNAP"}),
            validator=validate_config,
            help="descriptor_type (SNAP, qSNAP, MACE), name, version, snap hyper-parameters, weights, solver, "
            "reference potential, energy_shift, committee, mace settings (see potentials.training_config.TrainConfig).",
        )
        spec.inputs["metadata"]["options"]["resources"].default = {"num_machines": 1, "num_mpiprocs_per_machine": 1}
        spec.inputs["metadata"]["options"]["parser_name"].default = "nanoos.potential.train"
        spec.inputs["metadata"]["options"]["withmpi"].default = False
        spec.inputs.validator = validate_inputs
        spec.output("potential", valid_type=PotentialData, help="The fitted potential with its training errors.")
        spec.output_namespace(
            "committee", valid_type=PotentialData, dynamic=True, required=False, help="Committee members (member_00..)."
        )
        spec.output("metrics", valid_type=orm.Dict, help="Training errors, timings and settings (metrics.json).")
        define_training_exit_codes(
            spec,
            SCRIPT,
            "metrics.json or potential files",
            "the fitted potential has non-finite training errors: the fit is unusable.",
        )

    def prepare_for_submission(self, folder):
        with folder.open(CONFIG_FILENAME, "w") as handle:
            json.dump(self.inputs.config.get_dict(), handle, indent=1)
        codeinfo = datastructures.CodeInfo()
        codeinfo.code_uuid = self.inputs.code.uuid
        codeinfo.cmdline_params = [
            "--frames", FRAMES_FILENAME, "--config", CONFIG_FILENAME, "--output", OUTPUT_FOLDER,
        ]  # fmt: skip
        codeinfo.stdout_name = "train.out"
        codeinfo.withmpi = False
        calcinfo = datastructures.CalcInfo()
        calcinfo.codes_info = [codeinfo]
        calcinfo.local_copy_list = [(self.inputs.training_set.uuid, TrainingSetData.FILENAME, FRAMES_FILENAME)]
        calcinfo.retrieve_list = ["train.out", OUTPUT_FOLDER]
        return calcinfo


class PotentialTrainingParser(Parser):
    """Builds the potential node(s) from ``potential/metrics.json`` and the files it lists."""

    def parse(self, **kwargs):
        with training_output(self, SCRIPT, OUTPUT_FOLDER, METRICS_FILENAME, "nanoos-train-parse-") as output:
            if output.failure is not None:
                return output.failure
            description = output.description
            if any(value is None for value in description["metrics"]["train"].values()):
                return self.exit_codes.ERROR_NON_FINITE_ERRORS
            try:
                potential = PotentialData.from_training_output(output.folder, description)
                members = {
                    f"member_{index:02d}": PotentialData.from_training_output(output.folder, description, member=index)
                    for index in range(len(description.get("committee", [])))
                }
            except (OSError, KeyError, ValueError) as error:
                return self.exit_codes.ERROR_OUTPUT_MISSING.format(message=str(error))
        self.out("potential", potential)
        if members:
            self.out("committee", members)
        summary = {key: value for key, value in description.items() if key != "committee"}
        summary["committee_metrics"] = [member["metrics"] for member in description.get("committee", [])]
        self.out("metrics", orm.Dict(summary))
        return None


__all__ = ["COMMITTEE_FOLDER", "PotentialTrainingCalculation", "PotentialTrainingParser"]
