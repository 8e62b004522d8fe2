"""``nanoos.potential.pipeline``: DFT labels -> ML potential -> held-out validation -> large-scale MD, one graph.

The chain: label configurations with pw.x (``nanoos.dft.label``), split the frames into training and held-out sets
(``split_training_set``), fit the potential (``nanoos.potential.train.base``), check it on the held-out frames
(``validate_potential``), run LAMMPS MD with it on a cell far larger than DFT could afford (``nanoos.md.base``), and
account what one atom-step cost with each method (``cost_per_atom_step``). Every number comes from a node. The fit
and the MD run inside their restart work chains, whose handlers retry a run out of walltime or memory, or an MD that
blew up (new seed, smaller timestep); the ``train`` and ``md`` inputs are those of the CalcJobs.
"""

from __future__ import annotations

import inspect
import pathlib

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_
from aiida_quantumespresso.common.types import ElectronicType
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin, recursive_merge

from aiida_nanoos.calculations.md import DEFAULT_MAX_TEMPERATURE, MdCalculation, md_parameters
from aiida_nanoos.calculations.potential_training import PotentialTrainingCalculation
from aiida_nanoos.data.potential import PotentialData
from aiida_nanoos.data.training_set import TrainingSetData
from aiida_nanoos.functions.potential import (
    check_validation_criteria,
    cost_per_atom_step,
    repeat_structure,
    validate_potential,
)
from aiida_nanoos.functions.training_set import split_training_set
from aiida_nanoos.potentials.md_settings import MAX_TEMPERATURE, MD_ATOMS
from aiida_nanoos.potentials.md_setup import supercell_repetitions
from aiida_nanoos.potentials.training_config import SPLIT_BOUNDS
from aiida_nanoos.workflows.common import ResumesWhenPlayed, as_code, elements_of, fraction_validator
from aiida_nanoos.workflows.label import LabelWorkChain
from aiida_nanoos.workflows.md_base import MdBaseWorkChain
from aiida_nanoos.workflows.training_base import PotentialTrainingBaseWorkChain


def validate_repetitions(value: orm.List | None, _) -> str | None:
    if value is None:
        return None
    values = value.get_list()
    if len(values) != 3 or any(not isinstance(v, int) or v < 1 for v in values):
        return f"md_supercell must be three positive integers [na, nb, nc], got {values}"
    return None


def check_protocol_numbers(inputs: dict) -> None:
    """Refuse a protocol number of the wrong type or out of range, naming it (``md.atoms must be ...``)."""
    for key, bound in SPLIT_BOUNDS.items():
        problem = bound.problem(inputs.get(key))
        if problem:
            raise ValueError(f"{key} {problem}"[:400])
    md = inputs.get("md")
    if not isinstance(md, dict):
        raise ValueError(f"md must be a mapping of MD settings, got {md!r}"[:400])
    known = {*inspect.signature(md_parameters).parameters, "atoms", "max_temperature"}
    unknown = sorted(set(md) - known)
    if unknown:
        raise ValueError(f"md.{unknown[0]} is not an MD setting; known: {sorted(known)}"[:400])
    for key, bound in (("atoms", MD_ATOMS), ("max_temperature", MAX_TEMPERATURE)):
        problem = bound.problem(md[key]) if key in md else None
        if problem:
            raise ValueError(f"md.{key} {problem}"[:400])


def validate_inputs(inputs: dict, _) -> str | None:
    """One MD cell source, and no element in the MD cell that the labelled configurations lack."""
    label = inputs.get("label", {})
    has_structure, has_supercell = "md_structure" in inputs, "md_supercell" in inputs
    if has_structure == has_supercell:
        return "give either `md_structure` or `md_supercell` (repetitions of `label.structure`), not both or neither"
    if has_supercell and "structure" not in label:
        return "`md_supercell` repeats `label.structure`: give it, or an explicit `md_structure`"
    labelled = [label["structure"]] if "structure" in label else list(label.get("configurations", {}).values())
    if has_structure and labelled:
        missing = sorted(set(elements_of([inputs["md_structure"]])) - set(elements_of(labelled)))
        if missing:
            return (
                f"md_structure contains {missing}, absent from the labelled configurations: "
                "the potential would not cover them"
            )
    return None


class PotentialPipelineWorkChain(ResumesWhenPlayed, ProtocolMixin, WorkChain):
    """DFT -> ML potential -> validation -> MD, reporting the cost per atom-step of DFT vs the potential."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(
            LabelWorkChain,
            namespace="label",
            namespace_options={"help": "Inputs of the DFT labelling (nanoos.dft.label)."},
        )
        spec.input(
            "validation_fraction",
            valid_type=orm.Float,
            default=lambda: orm.Float(0.25),
            validator=fraction_validator(low_inclusive=False, high_inclusive=False),
            help="Fraction of the labelled frames held out for validation.",
        )
        spec.input(
            "split_seed", valid_type=orm.Int, default=lambda: orm.Int(0), help="Seed of the train/held-out split."
        )
        spec.expose_inputs(
            PotentialTrainingCalculation,
            namespace="train",
            exclude=("training_set",),
            namespace_options={"help": "Inputs of the fit (nanoos.potential.train): code, config, options."},
        )
        spec.input(
            "validation_criteria",
            valid_type=orm.Dict,
            required=False,
            validator=check_validation_criteria,
            help="Largest acceptable held-out energy_rmse (eV/atom), force_rmse (eV/Å), stress_rmse (bar).",
        )
        spec.expose_inputs(
            MdCalculation,
            namespace="md",
            exclude=("potential", "structure"),
            namespace_options={"help": "Inputs of the MD run (nanoos.md): code, parameters, settings, options."},
        )
        spec.input("md_structure", valid_type=orm.StructureData, required=False, help="The cell to run MD on.")
        spec.input(
            "md_supercell",
            valid_type=orm.List,
            required=False,
            validator=validate_repetitions,
            help="Repetitions [na, nb, nc] of `label.structure` making the MD cell.",
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.run_label,
            cls.inspect_label,
            cls.split,
            cls.run_train,
            cls.inspect_train,
            cls.validate,
            if_(cls.should_run_md)(cls.run_md, cls.inspect_md, cls.account_cost),
            cls.results,
        )
        spec.output("training_set", valid_type=TrainingSetData, help="All labelled frames.")
        spec.output("train_set", valid_type=TrainingSetData, help="Frames the potential was fitted to.")
        spec.output("validation_set", valid_type=TrainingSetData, help="Held-out frames.")
        spec.output("potential", valid_type=PotentialData, help="The fitted potential with its validation verdict.")
        spec.output("validation_metrics", valid_type=orm.Dict, help="Held-out errors and the criteria verdict.")
        spec.output("parity", valid_type=orm.ArrayData, help="Held-out DFT vs potential values (parity plot data).")
        spec.expose_outputs(MdCalculation, namespace="md", namespace_options={"required": False})
        spec.output("cost", valid_type=orm.Dict, required=False, help="Seconds per atom-step of DFT vs the potential.")
        spec.exit_code(401, "ERROR_LABELLING_FAILED", message="DFT labelling failed: {message}")
        spec.exit_code(402, "ERROR_TOO_FEW_FRAMES", message="{count} labelled frames: at least 2 are needed to split.")
        spec.exit_code(403, "ERROR_TRAINING_FAILED", message="the fit failed: {message}")
        spec.exit_code(404, "ERROR_VALIDATION_FAILED", message="the potential failed validation: {message}")
        spec.exit_code(405, "ERROR_MD_FAILED", message="the MD run failed: {message}")
        spec.exit_code(406, "ERROR_MD_UNSTABLE", message="the MD blew up with the potential: {message}")

    # ------------------------------------------------------------------------------------------------------------------
    # Protocols
    # ------------------------------------------------------------------------------------------------------------------

    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        return pathlib.Path(__file__).parent / "protocols" / "pipeline.yaml"

    @classmethod
    def get_builder_from_protocol(
        cls,
        pw_code: orm.AbstractCode | str,
        lmp_code: orm.AbstractCode | str,
        structure: orm.StructureData,
        protocol: str | None = None,
        overrides: dict | None = None,
        train_code: orm.AbstractCode | str = "nanoos-train@localhost",
        electronic_type: ElectronicType = ElectronicType.INSULATOR,
        md_structure: orm.StructureData | None = None,
    ):
        """Builder from ``fast`` / ``balanced`` / ``precise`` (see ``protocols/pipeline.yaml``) plus ``overrides``.

        ``structure`` is the DFT parent cell, sampled (strain + rattle) for labelling; the MD cell is ``md_structure``
        or ``structure`` repeated to about ``md.atoms`` atoms. A value of the wrong type or out of range in the
        protocol's numbers (``md.steps: true``, ``validation_fraction: half``) raises ``ValueError`` naming it.
        """
        inputs = cls.get_protocol_inputs(protocol, overrides)
        check_protocol_numbers(inputs)
        label_inputs = inputs["label"]
        builder = cls.get_builder()
        builder.label = LabelWorkChain.get_builder_from_protocol(
            pw_code,
            structure=structure,
            sampling=label_inputs["sampling"],
            protocol=label_inputs["protocol"],
            overrides=label_inputs.get("overrides") or {},
            electronic_type=electronic_type,
        )
        builder.validation_fraction = orm.Float(inputs["validation_fraction"])
        builder.split_seed = orm.Int(inputs["split_seed"])
        builder.train.code = as_code(train_code)
        builder.train.config = orm.Dict(inputs["train"]["config"])
        if inputs.get("validation_criteria"):
            builder.validation_criteria = orm.Dict(inputs["validation_criteria"])
        md = dict(inputs["md"])
        builder.md.code = as_code(lmp_code)
        target_atoms = int(md.pop("atoms"))
        max_temperature = float(md.pop("max_temperature", DEFAULT_MAX_TEMPERATURE))
        try:
            builder.md.parameters = orm.Dict(md_parameters(**md))
        except ValueError as error:
            raise ValueError(f"md.{error}") from error
        builder.md.settings = orm.Dict({"max_temperature": max_temperature})
        if md_structure is not None:
            builder.md_structure = md_structure
        else:
            atoms = structure.get_ase()
            builder.md_supercell = orm.List(supercell_repetitions(atoms.cell.array, len(atoms), target_atoms))
        return builder

    # ------------------------------------------------------------------------------------------------------------------
    # Steps
    # ------------------------------------------------------------------------------------------------------------------

    def run_label(self):
        inputs = AttributeDict(self.exposed_inputs(LabelWorkChain, namespace="label"))
        inputs.metadata.call_link_label = "label"
        return ToContext(label=self.submit(LabelWorkChain, **inputs))

    def inspect_label(self):
        node = self.ctx.label
        if "training_set" not in node.outputs:
            return self.exit_codes.ERROR_LABELLING_FAILED.format(
                message=f"{node.process_label}<{node.pk}> returned no frames ({node.exit_message})"
            )
        if not node.is_finished_ok:
            self.report(f"labelling exited {node.exit_status} ({node.exit_message}); going on with what succeeded")
        training_set = node.outputs.training_set
        if training_set.num_frames < 2:
            return self.exit_codes.ERROR_TOO_FEW_FRAMES.format(count=training_set.num_frames)
        self.ctx.training_set = training_set
        self.out("training_set", training_set)
        return None

    def split(self):
        split = split_training_set(self.ctx.training_set, self.inputs.validation_fraction, self.inputs.split_seed)
        self.ctx.train_set, self.ctx.validation_set = split["train"], split["validation"]
        self.out("train_set", split["train"])
        self.out("validation_set", split["validation"])
        self.report(f"{split['train'].num_frames} frames to fit, {split['validation'].num_frames} held out")

    def run_train(self):
        train = AttributeDict(self.exposed_inputs(PotentialTrainingCalculation, namespace="train"))
        train.training_set = self.ctx.train_set
        return ToContext(
            train=self.submit(PotentialTrainingBaseWorkChain, train=train, metadata={"call_link_label": "train"})
        )

    def inspect_train(self):
        node = self.ctx.train
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_TRAINING_FAILED.format(
                message=f"{node.process_label}<{node.pk}> exited {node.exit_status}: {node.exit_message}"
            )
        train = node.outputs.potential.metrics.get("train", {})
        self.report(
            f"fitted {node.outputs.potential.descriptor_type}: train energy RMSE "
            f"{1000 * train.get('energy_rmse', float('nan')):.2f} meV/atom, force RMSE "
            f"{train.get('force_rmse', float('nan')):.3f} eV/Å"
        )
        return None

    def validate(self):
        arguments = {"potential": self.ctx.train.outputs.potential, "validation_set": self.ctx.validation_set}
        if "validation_criteria" in self.inputs:
            arguments["criteria"] = self.inputs.validation_criteria
        result = validate_potential(**arguments)
        self.ctx.potential = result["potential"]
        self.out("potential", result["potential"])
        self.out("validation_metrics", result["metrics"])
        self.out("parity", result["parity"])
        errors = result["metrics"]["errors"]
        self.report(
            f"held-out errors: energy RMSE {1000 * errors['energy_rmse']:.2f} meV/atom, force RMSE "
            f"{errors['force_rmse']:.3f} eV/Å; validated: {result['metrics']['passed']}"
        )

    def should_run_md(self) -> bool:
        return bool(self.ctx.potential.validated)

    def run_md(self):
        if "md_structure" in self.inputs:
            structure = self.inputs.md_structure
        else:
            structure = repeat_structure(self.inputs.label.structure, self.inputs.md_supercell)
        self.ctx.md_structure = structure
        md = AttributeDict(self.exposed_inputs(MdCalculation, namespace="md"))
        md.potential = self.ctx.potential
        md.structure = structure
        self.report(f"MD on {len(structure.sites)} atoms with {self.ctx.potential.name}")
        return ToContext(md=self.submit(MdBaseWorkChain, md=md, metadata={"call_link_label": "md"}))

    def inspect_md(self):
        node = self.ctx.md
        if not node.is_finished_ok and node.called:
            last = max(node.called, key=lambda n: n.ctime)
            blew_up = (
                MdCalculation.exit_codes.ERROR_MD_UNSTABLE.status,
                MdCalculation.exit_codes.ERROR_MD_LOST_ATOMS.status,
            )
            if last.exit_status in blew_up:
                return self.exit_codes.ERROR_MD_UNSTABLE.format(
                    message=f"{len(node.called)} attempt(s), the last {last.exit_message}"
                )
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_MD_FAILED.format(
                message=f"{node.process_label}<{node.pk}> exited {node.exit_status}: {node.exit_message}"
            )
        self.out_many(self.exposed_outputs(node, MdCalculation, namespace="md"))
        return None

    def account_cost(self):
        dft = {
            f"dft_{index:04d}": calculation.outputs.output_parameters
            for index, calculation in enumerate(
                sorted(
                    (
                        n
                        for n in self.ctx.label.called_descendants
                        if isinstance(n, orm.CalcJobNode) and n.is_finished_ok and "output_parameters" in n.outputs
                    ),
                    key=lambda n: n.pk,
                )
            )
        }
        cost = cost_per_atom_step(self.ctx.md.outputs.results, self.ctx.md_structure, **dft)
        self.out("cost", cost)
        self.report(
            f"cost per atom-step: DFT {cost['dft_seconds_per_atom_step']:.3g} s "
            f"({cost['dft_mean_atoms']:.0f}-atom cells), potential {cost['potential_seconds_per_atom_step']:.3g} s "
            f"({cost['md_atoms']} atoms): {cost['speedup']:.3g}x"
        )

    def results(self):
        if not self.ctx.potential.validated:
            failed = "; ".join(self.outputs["validation_metrics"]["failed_criteria"])
            return self.exit_codes.ERROR_VALIDATION_FAILED.format(message=failed)
        return None


def merge_protocol_overrides(*overrides: dict | None) -> dict:
    """Merge several override mappings (later wins), e.g. test settings on top of a config file's."""
    merged: dict = {}
    for override in overrides:
        if override:
            merged = recursive_merge(merged, override)
    return merged
