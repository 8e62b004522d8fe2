"""``nanoos.dft.label``: label atomic configurations with pw.x energies, forces and stress into a training set."""

from __future__ import annotations

import pathlib

from aiida import orm
from aiida.engine import ToContext, WorkChain, while_
from aiida_quantumespresso.common.types import ElectronicType, SpinType
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin, recursive_merge

from aiida_nanoos.data.training_set import TrainingSetData
from aiida_nanoos.functions.training_set import build_training_set, sample_structures
from aiida_nanoos.potentials.sampling import SamplingSpec
from aiida_nanoos.pseudos import FAMILY_LABEL
from aiida_nanoos.workflows.common import (
    PwBaseWorkChain,
    ResumesWhenPlayed,
    check_pseudopotentials,
    elements_of,
    fraction_validator,
    pw_base_builder,
    pw_inputs_for,
)


def validate_sampling(value: orm.Dict | None, _) -> str | None:
    """Reject a bad sampling spec at submission, naming the field (e.g. a negative rattle amplitude)."""
    if value is None:
        return None
    try:
        SamplingSpec.from_dict(value.get_dict())
    except ValueError as error:
        return str(error)
    return None


def validate_positive(value: orm.Int | None, port) -> str | None:
    if value is not None and value.value < 1:
        return f"{port.name} must be a positive integer, got {value.value}"
    return None


def structures_to_label(inputs: dict) -> list[orm.StructureData]:
    """The parent structure or the explicit configurations (what decides the elements needed)."""
    if "structure" in inputs:
        return [inputs["structure"]]
    return list(inputs.get("configurations", {}).values())


def validate_inputs(inputs: dict, _) -> str | None:
    """One source of configurations, and a pseudopotential for every element, before anything is submitted."""
    has_structure = "structure" in inputs
    has_configurations = bool(inputs.get("configurations"))
    if has_structure == has_configurations:
        return "give either `structure` (with an optional `sampling` spec) or `configurations`, not both or neither"
    if "sampling" in inputs and not has_structure:
        return "`sampling` needs a parent `structure` to sample from"
    return check_pseudopotentials(inputs["pseudo_family"].value, elements_of(structures_to_label(inputs)))


class LabelWorkChain(ResumesWhenPlayed, ProtocolMixin, WorkChain):
    """Run one ``PwBaseWorkChain`` per configuration (at most ``max_concurrent`` at once) and collect the labels.

    Failed configurations are reported and left out of the training set; when more than ``max_failure_fraction``
    fail, the work chain still returns the training set of what succeeded, then exits with
    ``ERROR_TOO_MANY_FAILED_CONFIGURATIONS``.
    """

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structure", valid_type=orm.StructureData, required=False, help="Parent structure to sample.")
        spec.input(
            "sampling",
            valid_type=orm.Dict,
            required=False,
            validator=validate_sampling,
            help="Sampling spec: count, supercell, strain_max, rattle_std (Å), seed, include_parent.",
        )
        spec.input_namespace(
            "configurations",
            valid_type=orm.StructureData,
            dynamic=True,
            required=False,
            help="Explicit configurations to label (instead of a structure and a sampling spec).",
        )
        spec.input(
            "pseudo_family",
            valid_type=orm.Str,
            default=lambda: orm.Str(FAMILY_LABEL),
            help="Label of the pseudopotential family; it must cover every element of the configurations.",
        )
        spec.input("config_type", valid_type=orm.Str, default=lambda: orm.Str("dft"), help="Group of the frames.")
        spec.input(
            "max_concurrent",
            valid_type=orm.Int,
            default=lambda: orm.Int(4),
            validator=validate_positive,
            help="At most this many DFT calculations in flight at once.",
        )
        spec.input(
            "max_failure_fraction",
            valid_type=orm.Float,
            default=lambda: orm.Float(0.2),
            validator=fraction_validator(),
            help="Above this fraction of failed configurations the work chain exits with an error code.",
        )
        spec.expose_inputs(
            PwBaseWorkChain,
            namespace="base",
            exclude=("pw.structure", "pw.pseudos", "pw.parent_folder"),
            namespace_options={"help": "Inputs of the PwBaseWorkChain run for every configuration."},
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            while_(cls.has_configurations_left)(cls.run_batch, cls.inspect_batch),
            cls.results,
        )
        spec.output("training_set", valid_type=TrainingSetData, required=False, help="The labelled frames.")
        spec.output(
            "failed_configurations",
            valid_type=orm.Dict,
            required=False,
            help="Configurations that could not be labelled: index -> {pk, exit_status, message}.",
        )
        spec.exit_code(
            401,
            "ERROR_TOO_MANY_FAILED_CONFIGURATIONS",
            message="{failed} of {total} configurations failed, more than the allowed fraction {allowed}.",
        )
        spec.exit_code(402, "ERROR_ALL_CONFIGURATIONS_FAILED", message="None of the {total} configurations succeeded.")

    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        return pathlib.Path(__file__).parent / "protocols" / "label.yaml"

    @classmethod
    def get_builder_from_protocol(
        cls,
        code: orm.AbstractCode | str,
        structure: orm.StructureData | None = None,
        sampling: dict | None = None,
        configurations: list[orm.StructureData] | None = None,
        protocol: str | None = None,
        overrides: dict | None = None,
        electronic_type: ElectronicType = ElectronicType.METAL,
        spin_type: SpinType = SpinType.NONE,
        options: dict | None = None,
    ):
        """Builder for labelling ``structure`` (sampled by ``sampling``) or explicit ``configurations``.

        The PwBaseWorkChain inputs come from aiida-quantumespresso's protocol (``fast`` / ``balanced`` /
        ``stringent`` behind our ``fast`` / ``balanced`` / ``precise``) with forces and stress switched on and the
        cutoffs recommended by our pseudo family for all elements present.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        if (structure is None) == (not configurations):
            raise ValueError("give either `structure` (with optional `sampling`) or `configurations`")
        templates = [structure] if structure is not None else list(configurations)
        family_label = inputs["pseudo_family"]
        base = pw_base_builder(
            code,
            templates[0],
            elements_of(templates),
            family_label,
            protocol=inputs["base_protocol"],
            overrides=inputs.get("base"),
            electronic_type=electronic_type,
            spin_type=spin_type,
            # the protocol's scheduler options (resources, walltime, account, queue_name), the argument winning
            options=recursive_merge(inputs.get("options", {}), options or {}),
        )

        builder = cls.get_builder()
        builder.base = base
        if structure is not None:
            builder.structure = structure
            if sampling is not None:
                builder.sampling = orm.Dict(sampling)
        else:
            builder.configurations = {f"configuration_{i:04d}": s for i, s in enumerate(configurations)}
        builder.pseudo_family = orm.Str(family_label)
        builder.config_type = orm.Str(inputs["config_type"])
        builder.max_concurrent = orm.Int(inputs["max_concurrent"])
        builder.max_failure_fraction = orm.Float(inputs["max_failure_fraction"])
        return builder

    def setup(self) -> None:
        """Sample the configurations (a calcfunction, so they are in the graph) and queue them."""
        if "sampling" in self.inputs:
            configurations = sample_structures(self.inputs.structure, self.inputs.sampling)
        elif "structure" in self.inputs:
            configurations = {"configuration_0000": self.inputs.structure}
        else:
            configurations = dict(self.inputs.configurations)
        self.ctx.pending = sorted(configurations)
        self.ctx.configurations = {key: node.uuid for key, node in configurations.items()}
        self.ctx.succeeded = []
        self.ctx.failed = {}
        self.report(
            f"labelling {len(self.ctx.pending)} configurations, at most {self.inputs.max_concurrent.value} at once"
        )

    def has_configurations_left(self) -> bool:
        return bool(self.ctx.pending)

    def run_batch(self):
        """Submit the next ``max_concurrent`` configurations."""
        batch, self.ctx.pending = (
            self.ctx.pending[: self.inputs.max_concurrent.value],
            self.ctx.pending[self.inputs.max_concurrent.value :],
        )
        self.ctx.batch = batch
        running = {}
        exposed = self.exposed_inputs(PwBaseWorkChain, namespace="base")
        for key in batch:
            structure = orm.load_node(self.ctx.configurations[key])
            inputs = pw_inputs_for(exposed, structure, self.inputs.pseudo_family.value, f"label_{key}")
            running[key] = self.submit(PwBaseWorkChain, **inputs)
        return ToContext(**running)

    def inspect_batch(self) -> None:
        """Keep the configurations whose DFT finished; report and leave out the others."""
        for key in self.ctx.batch:
            node = self.ctx[key]
            if node.is_finished_ok:
                self.ctx.succeeded.append(key)
                continue
            self.ctx.failed[key] = {"pk": node.pk, "exit_status": node.exit_status, "message": node.exit_message}
            self.report(f"{key}: {node.process_label}<{node.pk}> failed ({node.exit_status}); left out")

    def results(self):
        total = len(self.ctx.succeeded) + len(self.ctx.failed)
        if self.ctx.failed:
            self.out("failed_configurations", orm.Dict(self.ctx.failed).store())
        if not self.ctx.succeeded:
            return self.exit_codes.ERROR_ALL_CONFIGURATIONS_FAILED.format(total=total)
        labelled = {}
        for key in self.ctx.succeeded:
            node = self.ctx[key]
            labelled[f"{key}__structure"] = node.inputs.pw.structure
            labelled[f"{key}__parameters"] = node.outputs.output_parameters
            labelled[f"{key}__trajectory"] = node.outputs.output_trajectory
        training_set = build_training_set(config_type=self.inputs.config_type, **labelled)
        self.out("training_set", training_set)
        failed = len(self.ctx.failed)
        self.report(f"TrainingSetData<{training_set.pk}>: {training_set.num_frames} frames, {failed} failed")
        allowed = self.inputs.max_failure_fraction.value
        if failed > allowed * total:
            return self.exit_codes.ERROR_TOO_MANY_FAILED_CONFIGURATIONS.format(
                failed=failed, total=total, allowed=allowed
            )
        return None
