"""``nanoos.md.base``: the ``nanoos.md`` CalcJob in aiida-core's restart loop, with a handler for each way it fails.

As aiida-quantumespresso's ``PwBaseWorkChain`` does for pw.x: the work chain runs :class:`MdCalculation`, looks at
how it ended and, for a failure it knows, changes the inputs and runs again (at most ``max_iterations`` runs):

- blew up (350: NaN, absurd temperature): new velocity seed, timestep x ``timestep_reduction``;
- lost atoms (351): the same, plus a larger neighbour skin and a neighbour check at every step;
- out of walltime (scheduler 120, or aiida-lammps' 400 when LAMMPS stopped before its end): continue from the last
  restart file (velocities and thermostat state kept, the remaining steps only), else start again with 1.5x the
  walltime. So that a restart file exists, an MD run without a ``restart`` block writes one every tenth of its steps.

aiida-lammps' own ``LammpsBaseWorkChain`` is not the base: it aborts on every exit status below 400 (so on 350 and
351 too), does not know the scheduler's walltime code, and reads a ``trajectory`` output ``nanoos.md`` does not have.
"""

from __future__ import annotations

import re

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import BaseRestartWorkChain, ProcessHandlerReport, process_handler, while_

from aiida_nanoos.calculations.md import MdCalculation
from aiida_nanoos.workflows.common import ReplaySafeRestart, ResumesWhenPlayed, allow_lost_remote_folder

#: Added to the velocity seed of a run that blew up, so that the retry draws other velocities.
SEED_STRIDE = 7919
#: Neighbour skin (Å) LAMMPS uses in metal units when none is given; the lost-atoms handler grows it.
DEFAULT_NEIGHBOR_SKIN = 2.0
NEIGHBOR_SKIN_GROWTH = 1.5
#: Walltime factor of a run that ran out of time without a restart file to continue from.
WALLTIME_GROWTH = 1.5

_UNSTABLE = MdCalculation.exit_codes.ERROR_MD_UNSTABLE
_LOST_ATOMS = MdCalculation.exit_codes.ERROR_MD_LOST_ATOMS
_WALLTIME = (
    MdCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME,
    MdCalculation.exit_codes.ERROR_OUT_OF_WALLTIME,
)


def validate_reduction(value: orm.Float | None, _) -> str | None:
    if value is not None and not 0.0 < value.value < 1.0:
        return f"timestep_reduction must lie strictly between 0 and 1, got {value.value}"
    return None


def restart_step(filename: str) -> int:
    """The step of a LAMMPS restart file written as ``<name>.<step>`` (0 for a file without one)."""
    match = re.search(r"\.(\d+)$", filename)
    return int(match.group(1)) if match else 0


class JobRestartWorkChain(ResumesWhenPlayed, ReplaySafeRestart, BaseRestartWorkChain):
    """What every restart work chain of the plugin's own jobs shares (MD here, training in ``training_base``): the
    report of a handled failure and a larger walltime."""

    def report_handled(self, node: orm.CalcJobNode, action: str) -> None:
        self.report(f"{node.process_label}<{node.pk}> failed with exit status {node.exit_status}: {node.exit_message}")
        self.report(f"action taken: {action}")

    def raise_walltime(self, node: orm.CalcJobNode, factor: float) -> str:
        """``max_wallclock_seconds`` of the next run times ``factor``; what was done, in words."""
        options = self.ctx.inputs.setdefault("metadata", {}).setdefault("options", {})
        walltime = options.get("max_wallclock_seconds") or node.get_option("max_wallclock_seconds")
        if not walltime:
            return "no max_wallclock_seconds was set: running again unchanged"
        options["max_wallclock_seconds"] = int(walltime * factor)
        return f"max_wallclock_seconds {walltime} -> {options['max_wallclock_seconds']}"


class MdBaseWorkChain(JobRestartWorkChain):
    """LAMMPS MD with a machine-learned potential, restarted after a blow-up, lost atoms or the walltime."""

    _process_class = MdCalculation

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(MdCalculation, namespace="md")
        spec.input(
            "timestep_reduction",
            valid_type=orm.Float,
            default=lambda: orm.Float(0.5),
            validator=validate_reduction,
            help="Factor applied to the timestep of a run that blew up or lost atoms.",
        )
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(cls.run_process, cls.inspect_process),
            cls.results,
        )
        spec.expose_outputs(MdCalculation)
        allow_lost_remote_folder(spec)

    def setup(self) -> None:
        """The inputs of the first run (``parameters`` and ``settings`` as plain dicts, as the handlers edit them);
        an MD without a ``restart`` block gets intermediate restart files."""
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(MdCalculation, namespace="md"))
        parameters = self.ctx.inputs.parameters.get_dict()
        settings = self.ctx.inputs.settings.get_dict() if "settings" in self.ctx.inputs else {}
        if "md" in parameters and "restart" not in parameters:
            steps = int(parameters["md"].get("max_number_steps", 100))
            parameters["restart"] = {"print_intermediate": True, "num_steps": max(1, steps // 10)}
            settings["store_restart"] = True
        self.ctx.inputs.parameters = parameters
        if settings:
            self.ctx.inputs.settings = settings

    def _smaller_step_new_seed(self, parameters: dict) -> list[str]:
        """Timestep x ``timestep_reduction`` and a new seed for every velocity draw; what was changed, in words."""
        control = parameters.setdefault("control", {})
        old = float(control.get("timestep", 1.0e-3))
        control["timestep"] = old * self.inputs.timestep_reduction.value
        changes = [f"timestep {1000 * old:.4g} -> {1000 * control['timestep']:.4g} fs"]
        for velocity in parameters.get("md", {}).get("velocity", []):
            create = velocity.get("create")
            if create is not None and "seed" in create:
                changes.append(f"seed {create['seed']} -> {create['seed'] + SEED_STRIDE}")
                create["seed"] = int(create["seed"]) + SEED_STRIDE
        return changes

    @process_handler(priority=500, exit_codes=[_UNSTABLE])
    def handle_unstable(self, node: orm.CalcJobNode) -> ProcessHandlerReport:
        """The dynamics blew up: draw other velocities and take smaller steps."""
        parameters = self.ctx.inputs.parameters
        changes = self._smaller_step_new_seed(parameters)
        self.report_handled(node, "; ".join(changes))
        return ProcessHandlerReport(do_break=True)

    @process_handler(priority=510, exit_codes=[_LOST_ATOMS])
    def handle_lost_atoms(self, node: orm.CalcJobNode) -> ProcessHandlerReport:
        """Atoms moved further than the neighbour skin between rebuilds: smaller steps, larger skin, check often."""
        parameters = self.ctx.inputs.parameters
        changes = self._smaller_step_new_seed(parameters)
        potential = parameters.setdefault("potential", {})
        skin = float(potential.get("neighbor", [DEFAULT_NEIGHBOR_SKIN])[0]) * NEIGHBOR_SKIN_GROWTH
        potential["neighbor"] = [skin, "bin"]
        potential["neighbor_modify"] = ["every", 1, "delay", 0, "check", "yes"]
        changes.append(f"neighbor skin {skin:.3g} Å, rebuilt every step when needed")
        self.report_handled(node, "; ".join(changes))
        return ProcessHandlerReport(do_break=True)

    @process_handler(priority=520, exit_codes=list(_WALLTIME))
    def handle_out_of_walltime(self, node: orm.CalcJobNode) -> ProcessHandlerReport:
        """Continue from the last restart file for the remaining steps; without one, start again with more time."""
        parameters = self.ctx.inputs.parameters
        if "restartfile" in node.outputs and "md" in parameters:
            restartfile = node.outputs.restartfile
            step = restart_step(restartfile.filename)
            done = step - int(parameters["md"].get("reset_timestep", [0])[0])
            remaining = max(1, int(parameters["md"]["max_number_steps"]) - done)
            parameters["md"].pop("velocity", None)  # the restart file holds the velocities
            parameters["md"]["reset_timestep"] = [step]
            parameters["md"]["max_number_steps"] = remaining
            self.ctx.inputs.input_restartfile = restartfile
            self.report_handled(
                node, f"continuing from restart file {restartfile.filename} (step {step}) for {remaining} more steps"
            )
            return ProcessHandlerReport(do_break=True)
        self.report_handled(node, f"no restart file: starting again; {self.raise_walltime(node, WALLTIME_GROWTH)}")
        return ProcessHandlerReport(do_break=True)
