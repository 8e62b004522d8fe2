"""``nanoos.potential.on_the_fly``: grow a training set where a committee of potentials disagrees (FLARE/DP-GEN).

Each iteration: fit a committee of K potentials (bootstrap or different hyper-parameters,
``nanoos.potential.train.base``), explore with MD at the given temperatures using the committee's full-data potential
(``nanoos.md.base``), score every dumped frame by the committee's force disagreement and pick the most uncertain ones
above the threshold (``select_uncertain_frames``, so the choice is in the graph), label them with DFT
(``nanoos.dft.label``), merge them into the training set, and fit again
-- until no frame exceeds the threshold or the DFT budget is spent.

An MD run that blows up (exit 350 / 351 of ``nanoos.md``: NaN, absurd temperature, lost atoms) is retried by the
handlers of :class:`~aiida_nanoos.workflows.md_base.MdBaseWorkChain` with a new seed and a smaller timestep (at most
``max_md_retries`` times, by ``md_timestep_reduction``); a temperature that keeps failing is dropped for that
iteration, and the loop goes on.
"""

from __future__ import annotations

import pathlib

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain, if_, while_
from aiida_quantumespresso.common.types import ElectronicType
from aiida_quantumespresso.workflows.protocols.utils import ProtocolMixin

from aiida_nanoos.calculations.md import ENSEMBLES, MdCalculation, md_parameters
from aiida_nanoos.calculations.potential_training import PotentialTrainingCalculation
from aiida_nanoos.data.potential import PotentialData
from aiida_nanoos.data.training_set import TrainingSetData
from aiida_nanoos.functions.potential import merge_training_sets, select_uncertain_frames
from aiida_nanoos.workflows.common import ResumesWhenPlayed, as_code, check_pseudopotentials, elements_of
from aiida_nanoos.workflows.label import LabelWorkChain
from aiida_nanoos.workflows.md_base import MdBaseWorkChain
from aiida_nanoos.workflows.training_base import PotentialTrainingBaseWorkChain

_EXPLORATION_KEYS = {
    "temperatures",
    "steps",
    "timestep_fs",
    "dump_every",
    "thermo_every",
    "ensemble",
    "seed",
    "pressure_gpa",
}


def validate_exploration(value: orm.Dict | None, _) -> str | None:
    """Temperatures and MD settings of the exploration, checked field by field."""
    if value is None:
        return None
    data = value.get_dict()
    unknown = sorted(set(data) - _EXPLORATION_KEYS)
    if unknown:
        return f"exploration.{unknown[0]} is not an exploration setting; known: {sorted(_EXPLORATION_KEYS)}"
    temperatures = data.get("temperatures")
    if (
        not isinstance(temperatures, list)
        or not temperatures
        or any(isinstance(t, bool) or not isinstance(t, (int, float)) or t <= 0 for t in temperatures)
    ):
        return f"exploration.temperatures must be a non-empty list of positive temperatures (K), got {temperatures!r}"
    if data.get("ensemble", "nvt") not in ENSEMBLES:
        return f"exploration.ensemble must be one of {sorted(ENSEMBLES)}, got {data.get('ensemble')!r}"
    try:
        md_parameters(**{k: v for k, v in data.items() if k != "temperatures"}, temperature=float(temperatures[0]))
    except (ValueError, TypeError) as error:
        return f"exploration: {error}"
    return None


def validate_positive_float(value: orm.Float | None, port) -> str | None:
    if value is not None and not value.value > 0:
        return f"{port.name} must be positive, got {value.value}"
    return None


def validate_positive_int(value: orm.Int | None, port) -> str | None:
    if value is not None and value.value < 1:
        return f"{port.name} must be a positive integer, got {value.value}"
    return None


def validate_inputs(inputs: dict, _) -> str | None:
    """A committee to disagree, elements covered by the training set, pseudopotentials for the explored cell."""
    config = inputs.get("train", {}).get("config")
    if config is not None and not config.get_dict().get("committee"):
        return "train.config.committee is required: the loop scores frames by the disagreement of a committee"
    if "structure" in inputs and "training_set" in inputs:
        missing = sorted(set(elements_of([inputs["structure"]])) - set(inputs["training_set"].elements))
        if missing:
            return f"structure contains {missing}, absent from the training set: no potential would cover them"
    reduction = inputs.get("md_timestep_reduction")
    if reduction is not None and not 0.0 < reduction.value < 1.0:
        return f"md_timestep_reduction must lie strictly between 0 and 1, got {reduction.value}"
    label = inputs.get("label", {})
    if "structure" in inputs and "pseudo_family" in label:
        return check_pseudopotentials(label["pseudo_family"].value, elements_of([inputs["structure"]]))
    return None


class OnTheFlyTrainingWorkChain(ResumesWhenPlayed, ProtocolMixin, WorkChain):
    """On-the-fly training of an ML potential: DFT labels for the MD frames where its committee disagrees."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("training_set", valid_type=TrainingSetData, help="Initial labelled frames.")
        spec.input("structure", valid_type=orm.StructureData, help="The cell explored with MD (and labelled by DFT).")
        spec.expose_inputs(
            PotentialTrainingCalculation,
            namespace="train",
            exclude=("training_set",),
            namespace_options={"help": "Inputs of every fit; config.committee sets the committee (K, method)."},
        )
        spec.expose_inputs(
            MdCalculation,
            namespace="md",
            exclude=("potential", "structure", "parameters"),
            namespace_options={"help": "Code, settings (e.g. max_temperature) and options of the MD runs."},
        )
        spec.input(
            "exploration",
            valid_type=orm.Dict,
            validator=validate_exploration,
            help="temperatures (K, one MD each), steps, timestep_fs, dump_every, thermo_every, ensemble, seed.",
        )
        spec.expose_inputs(
            LabelWorkChain,
            namespace="label",
            exclude=("structure", "sampling", "configurations"),
            namespace_options={"validator": None, "help": "DFT settings for labelling the selected frames."},
        )
        spec.input(
            "threshold",
            valid_type=orm.Float,
            validator=validate_positive_float,
            help="Committee force disagreement (eV/Å) above which a frame is sent to DFT; below it everywhere: done.",
        )
        spec.input(
            "max_frames_per_iteration",
            valid_type=orm.Int,
            default=lambda: orm.Int(4),
            validator=validate_positive_int,
            help="At most this many frames labelled per iteration.",
        )
        spec.input(
            "max_dft_frames",
            valid_type=orm.Int,
            default=lambda: orm.Int(20),
            validator=validate_positive_int,
            help="DFT budget: frames labelled in total.",
        )
        spec.input("max_iterations", valid_type=orm.Int, default=lambda: orm.Int(5), validator=validate_positive_int)
        spec.input(
            "max_md_retries",
            valid_type=orm.Int,
            default=lambda: orm.Int(2),
            help="Retries of an MD run that blew up (each with a new seed and a smaller timestep).",
        )
        spec.input(
            "md_timestep_reduction",
            valid_type=orm.Float,
            default=lambda: orm.Float(0.5),
            help="Factor applied to the timestep of an MD run that blew up.",
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            while_(cls.should_iterate)(
                cls.run_committee,
                cls.inspect_committee,
                cls.run_md,
                cls.inspect_md,
                cls.select_frames,
                if_(cls.has_frames_to_label)(cls.run_label, cls.inspect_label),
            ),
            if_(cls.has_unfitted_frames)(cls.run_committee, cls.inspect_committee),
            cls.results,
        )
        spec.output("potential", valid_type=PotentialData, help="Full-data potential of the last committee.")
        spec.output_namespace("committee", valid_type=PotentialData, dynamic=True, help="The last committee.")
        spec.output("training_set", valid_type=TrainingSetData, help="The grown training set.")
        spec.output("summary", valid_type=orm.Dict, help="Per iteration: frames, disagreement, selection, MD retries.")
        spec.exit_code(401, "ERROR_TRAINING_FAILED", message="the committee fit failed: {message}")
        spec.exit_code(402, "ERROR_EXPLORATION_FAILED", message="every MD run failed in iteration {iteration}")
        spec.exit_code(403, "ERROR_LABELLING_FAILED", message="DFT labelling of the selected frames failed: {message}")

    @classmethod
    def get_protocol_filepath(cls) -> pathlib.Path:
        return pathlib.Path(__file__).parent / "protocols" / "on_the_fly.yaml"

    @classmethod
    def get_builder_from_protocol(
        cls,
        pw_code: orm.AbstractCode | str,
        lmp_code: orm.AbstractCode | str,
        structure: orm.StructureData,
        training_set: TrainingSetData,
        protocol: str | None = None,
        overrides: dict | None = None,
        train_code: orm.AbstractCode | str = "nanoos-train@localhost",
        electronic_type: ElectronicType = ElectronicType.INSULATOR,
    ):
        """Builder from ``protocols/on_the_fly.yaml`` (``fast``/``balanced``/``precise``) plus ``overrides``."""
        inputs = cls.get_protocol_inputs(protocol, overrides)
        label = LabelWorkChain.get_builder_from_protocol(
            pw_code,
            configurations=[structure],
            protocol=inputs["label"]["protocol"],
            overrides=inputs["label"].get("overrides") or {},
            electronic_type=electronic_type,
        )
        builder = cls.get_builder()
        builder.label.base = label.base
        for key in ("pseudo_family", "config_type", "max_concurrent", "max_failure_fraction"):
            builder.label[key] = label[key]
        builder.training_set = training_set
        builder.structure = structure
        builder.train.code = as_code(train_code)
        builder.train.config = orm.Dict(inputs["train"]["config"])
        builder.md.code = as_code(lmp_code)
        builder.md.settings = orm.Dict({"max_temperature": inputs["md"]["max_temperature"]})
        builder.exploration = orm.Dict(inputs["exploration"])
        builder.threshold = orm.Float(inputs["threshold"])
        for key in ("max_frames_per_iteration", "max_dft_frames", "max_iterations", "max_md_retries"):
            builder[key] = orm.Int(inputs[key])
        builder.md_timestep_reduction = orm.Float(inputs["md_timestep_reduction"])
        return builder

    # ------------------------------------------------------------------------------------------------------------------

    def setup(self) -> None:
        self.ctx.training_set = self.inputs.training_set
        self.ctx.iteration = 0
        self.ctx.converged = False
        self.ctx.labelled = 0
        self.ctx.fitted_on = None
        self.ctx.history = []
        self.ctx.stop_reason = None
        self.ctx.final_fit = False

    def should_iterate(self) -> bool:
        if self.ctx.converged:
            self.ctx.stop_reason = "converged: no frame above the disagreement threshold"
            return False
        if self.ctx.labelled >= self.inputs.max_dft_frames.value:
            self.ctx.stop_reason = f"DFT budget spent ({self.ctx.labelled} frames)"
            return False
        if self.ctx.iteration >= self.inputs.max_iterations.value:
            self.ctx.stop_reason = f"{self.ctx.iteration} iterations done (max_iterations)"
            return False
        self.ctx.iteration += 1
        self.ctx.record = {"iteration": self.ctx.iteration, "training_frames": self.ctx.training_set.num_frames}
        return True

    def run_committee(self):
        train = AttributeDict(self.exposed_inputs(PotentialTrainingCalculation, namespace="train"))
        config = train.config.get_dict()
        final = self.ctx.final_fit
        config["version"] = self.ctx.iteration + (1 if final else 0)
        train.config = orm.Dict(config)
        train.training_set = self.ctx.training_set
        label = "train_final" if final else f"train_iteration_{self.ctx.iteration:02d}"
        self.ctx.fitted_on = self.ctx.training_set.uuid
        return ToContext(
            train=self.submit(PotentialTrainingBaseWorkChain, train=train, metadata={"call_link_label": label})
        )

    def inspect_committee(self):
        node = self.ctx.train
        if not node.is_finished_ok:
            return self.exit_codes.ERROR_TRAINING_FAILED.format(
                message=f"{node.process_label}<{node.pk}> exited {node.exit_status}: {node.exit_message}"
            )
        self.ctx.potential = node.outputs.potential
        self.ctx.committee = dict(node.outputs.committee)
        train = self.ctx.potential.metrics["train"]
        self.report(
            f"iteration {self.ctx.iteration}: {len(self.ctx.committee)}-member committee on "
            f"{self.ctx.training_set.num_frames} frames; force RMSE {train['force_rmse']:.3f} eV/Å"
        )
        return None

    def run_md(self):
        """One ``nanoos.md.base`` per temperature: its handlers retry a run that blew up (new seed, smaller step)."""
        exploration = self.inputs.exploration.get_dict()
        settings = {k: v for k, v in exploration.items() if k not in ("temperatures", "seed", "timestep_fs")}
        seed = int(exploration.get("seed", 1)) + 100 * self.ctx.iteration
        running, self.ctx.md_runs = {}, {}
        for index, temperature in enumerate(exploration["temperatures"]):
            md = AttributeDict(self.exposed_inputs(MdCalculation, namespace="md"))
            md.potential = self.ctx.potential
            md.structure = self.inputs.structure
            md.parameters = orm.Dict(
                md_parameters(
                    temperature=float(temperature),
                    seed=seed + index,
                    timestep_fs=float(exploration.get("timestep_fs", 1.0)),
                    **settings,
                )
            )
            key = f"md_{int(temperature)}K"
            self.ctx.md_runs[key] = float(temperature)
            running[key] = self.submit(
                MdBaseWorkChain,
                md=md,
                max_iterations=orm.Int(self.inputs.max_md_retries.value + 1),
                timestep_reduction=self.inputs.md_timestep_reduction,
                metadata={"call_link_label": f"explore_iteration_{self.ctx.iteration:02d}_{key}"},
            )
        return ToContext(**running)

    def inspect_md(self) -> None:
        """Keep the trajectories of the temperatures that finished; record every attempt (timestep, seed, exit)."""
        self.ctx.trajectories = {}
        self.ctx.record["md"] = []
        for key, temperature in self.ctx.md_runs.items():
            node = self.ctx[key]
            for attempt, calculation in enumerate(sorted(node.called, key=lambda n: n.ctime)):
                parameters = calculation.inputs.parameters.get_dict()
                velocity = parameters["md"].get("velocity") or [{}]  # a continuation from a restart file has none
                self.ctx.record["md"].append(
                    {
                        "temperature": temperature,
                        "attempt": attempt,
                        "timestep_fs": round(1000.0 * parameters["control"]["timestep"], 12),
                        "seed": velocity[0].get("create", {}).get("seed"),
                        "pk": calculation.pk,
                        "exit_status": calculation.exit_status,
                    }
                )
            if node.is_finished_ok:
                self.ctx.trajectories[f"trajectory_{len(self.ctx.trajectories):02d}"] = node.outputs.trajectories
            else:
                self.report(f"MD {key} failed for good ({node.exit_status}: {node.exit_message}); skipped")

    def select_frames(self):
        if not self.ctx.trajectories:
            return self.exit_codes.ERROR_EXPLORATION_FAILED.format(iteration=self.ctx.iteration)
        budget = self.inputs.max_dft_frames.value - self.ctx.labelled
        members = {
            f"member_{index:02d}": self.ctx.committee[key] for index, key in enumerate(sorted(self.ctx.committee))
        }
        selection = select_uncertain_frames(
            threshold=self.inputs.threshold,
            max_frames=orm.Int(min(budget, self.inputs.max_frames_per_iteration.value)),
            **members,
            **self.ctx.trajectories,
        )
        summary = selection["summary"].get_dict()
        self.ctx.selected = {key: node for key, node in selection.items() if key.startswith("frame_")}
        self.ctx.record.update(
            {
                "max_disagreement": summary["max_disagreement"],
                "mean_disagreement": summary["mean_disagreement"],
                "n_frames_scored": summary["n_frames"],
                "n_above_threshold": summary["n_above_threshold"],
                "n_selected": len(self.ctx.selected),
                "selection_pk": selection["summary"].pk,
            }
        )
        self.report(
            f"iteration {self.ctx.iteration}: max disagreement {summary['max_disagreement']:.3f} eV/Å over "
            f"{summary['n_frames']} frames, {summary['n_above_threshold']} above {self.inputs.threshold.value} eV/Å; "
            f"labelling {len(self.ctx.selected)}"
        )
        if summary["n_above_threshold"] == 0:
            self.ctx.converged = True
        self.ctx.history.append(self.ctx.record)
        return None

    def has_frames_to_label(self) -> bool:
        return bool(self.ctx.selected)

    def run_label(self):
        inputs = AttributeDict(self.exposed_inputs(LabelWorkChain, namespace="label"))
        inputs.configurations = self.ctx.selected
        inputs.config_type = orm.Str(f"on_the_fly_{self.ctx.iteration:02d}")
        inputs.metadata.call_link_label = f"label_iteration_{self.ctx.iteration:02d}"
        return ToContext(label=self.submit(LabelWorkChain, **inputs))

    def inspect_label(self):
        node = self.ctx.label
        if "training_set" not in node.outputs:
            return self.exit_codes.ERROR_LABELLING_FAILED.format(
                message=f"{node.process_label}<{node.pk}> exited {node.exit_status}: {node.exit_message}"
            )
        new = node.outputs.training_set
        self.ctx.labelled += len(self.ctx.selected)  # the budget counts DFT runs, failed ones too
        self.ctx.training_set = merge_training_sets(current=self.ctx.training_set, new=new)
        self.ctx.history[-1]["n_labelled"] = new.num_frames
        return None

    def has_unfitted_frames(self) -> bool:
        """The last labels went into the set after the last fit: fit once more so the output has seen them all."""
        self.ctx.final_fit = self.ctx.fitted_on != self.ctx.training_set.uuid
        return self.ctx.final_fit

    def results(self) -> None:
        self.out("potential", self.ctx.potential)
        self.out("committee", self.ctx.committee)
        self.out("training_set", self.ctx.training_set)
        summary = {
            "iterations": self.ctx.history,
            "converged": self.ctx.converged,
            "stop_reason": self.ctx.stop_reason,
            "dft_frames_labelled": self.ctx.labelled,
            "final_training_frames": self.ctx.training_set.num_frames,
        }
        self.out("summary", orm.Dict(summary).store())
        self.report(f"stopped: {self.ctx.stop_reason}; final training set {self.ctx.training_set.num_frames} frames")
