"""Restart work chains of the plugin's own jobs: each handler on a fake failed CalcJobNode (no LAMMPS, no training),
as aiida-quantumespresso tests ``PwBaseWorkChain``; then real LAMMPS runs rescued by the handlers."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
from aiida import orm
from aiida.calculations.arithmetic.add import ArithmeticAddCalculation
from aiida.common import AttributeDict, LinkType
from aiida.engine import BaseRestartWorkChain, ProcessState, run_get_node, while_
from aiida.manage import get_manager
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_nanoos.calculations.md import MdCalculation, md_parameters
from aiida_nanoos.data.potential import PotentialData
from aiida_nanoos.data.training_set import TrainingSetData
from aiida_nanoos.workflows.common import PwBaseWorkChain, ReplaySafeRestart, allow_lost_remote_folder
from aiida_nanoos.workflows.md_base import SEED_STRIDE, MdBaseWorkChain
from aiida_nanoos.workflows.training_base import ModelTrainingBaseWorkChain, PotentialTrainingBaseWorkChain

pytest_plugins = ["tests.potential_fixtures"]

UNSTABLE, LOST_ATOMS = 350, 351
SCHEDULER_OUT_OF_MEMORY, SCHEDULER_OUT_OF_WALLTIME, LAMMPS_OUT_OF_WALLTIME = 110, 120, 400


@pytest.fixture
def code(aiida_code_installed):
    return aiida_code_installed(label="fake-exe")


@pytest.fixture
def fake_snap(tmp_path) -> PotentialData:
    """A SNAP potential node whose files are never read (no LAMMPS runs in the handler tests)."""
    (tmp_path / "p.snapcoeff").write_text("not used\n")
    (tmp_path / "p.snapparam").write_text("not used\n")
    files = {"coefficients": tmp_path / "p.snapcoeff", "parameters": tmp_path / "p.snapparam"}
    return PotentialData(files=files, descriptor_type="SNAP", elements=["Si"], name="fake").store()


def instantiate(process_class, inputs: dict):
    """The work chain as the engine would create it, set up, without running anything."""
    process = process_class(inputs=inputs, runner=get_manager().get_runner())
    process.setup()
    return process


def failed(process, exit_status: int, outputs: dict | None = None, options: dict | None = None):
    """A finished CalcJobNode of the work chain's CalcJob with ``exit_status``, as the next child to inspect."""
    process_type = process.process_class.build_process_type()
    node = orm.CalcJobNode(computer=process.ctx.inputs.code.computer, process_type=process_type)
    for key, value in (options or {}).items():
        node.set_option(key, value)
    node.set_process_state(ProcessState.FINISHED)
    node.set_exit_status(exit_status)
    node.store()
    for label, output in (outputs or {}).items():
        output.base.links.add_incoming(node, link_type=LinkType.CREATE, link_label=label)
        output.store()
    process.ctx.iteration += 1
    process.ctx.setdefault("children", []).append(node)
    return node


def md_chain(code, potential, parameters: dict, **inputs) -> MdBaseWorkChain:
    md = {
        "code": code,
        "potential": potential,
        "structure": orm.StructureData(ase=bulk("Si", "diamond", a=5.43, cubic=True)),
        "parameters": orm.Dict(parameters),
        "settings": orm.Dict({"max_temperature": 5000.0}),
    }
    return instantiate(MdBaseWorkChain, {"md": md, **inputs})


def test_blown_up_md_gets_a_new_seed_and_a_smaller_timestep_only(code, fake_snap):
    chain = md_chain(
        code,
        fake_snap,
        md_parameters("nvt", temperature=900, steps=100, timestep_fs=2.0, seed=5),
        timestep_reduction=orm.Float(0.25),
    )
    before = copy.deepcopy(chain.ctx.inputs.parameters)
    failed(chain, UNSTABLE)
    assert chain.inspect_process().status == 0  # handled: run again
    after = chain.ctx.inputs.parameters
    assert after["control"]["timestep"] == pytest.approx(0.0005)  # 2 fs x 0.25
    assert after["md"]["velocity"][0]["create"]["seed"] == 5 + SEED_STRIDE
    # nothing else changed: same steps, thermostat, dumps, and no neighbour settings
    after_rest = copy.deepcopy(after)
    after_rest["control"]["timestep"] = before["control"]["timestep"]
    after_rest["md"]["velocity"][0]["create"]["seed"] = 5
    assert after_rest == before
    assert chain.ctx.inputs.settings["max_temperature"] == 5000.0
    # the first run writes restart files every tenth of its steps, kept by the parser (for a walltime restart)
    assert before["restart"] == {"print_intermediate": True, "num_steps": 10}
    assert chain.ctx.inputs.settings["store_restart"] is True


def test_lost_atoms_also_get_a_larger_neighbour_skin_checked_every_step(code, fake_snap):
    chain = md_chain(code, fake_snap, md_parameters("nve", steps=50, timestep_fs=1.0, seed=3))
    failed(chain, LOST_ATOMS)
    assert chain.inspect_process().status == 0
    parameters = chain.ctx.inputs.parameters
    assert parameters["control"]["timestep"] == pytest.approx(0.0005)  # default reduction 0.5
    assert parameters["md"]["velocity"][0]["create"]["seed"] == 3 + SEED_STRIDE
    assert parameters["potential"] == {
        "neighbor": [3.0, "bin"],
        "neighbor_modify": ["every", 1, "delay", 0, "check", "yes"],
    }
    failed(chain, LOST_ATOMS)  # again: the skin keeps growing, the timestep keeps shrinking
    assert chain.inspect_process().status == 0
    assert parameters["potential"]["neighbor"] == [4.5, "bin"]
    assert parameters["control"]["timestep"] == pytest.approx(0.00025)


def test_out_of_walltime_continues_from_the_restart_file_for_the_remaining_steps(code, fake_snap):
    chain = md_chain(code, fake_snap, md_parameters("nvt", steps=1000, seed=8))
    restart = orm.SinglefileData(io.BytesIO(b"restart"), filename="lammps.restart.400")
    failed(chain, SCHEDULER_OUT_OF_WALLTIME, outputs={"restartfile": restart})
    assert chain.inspect_process().status == 0
    assert chain.ctx.inputs.input_restartfile.uuid == restart.uuid
    md = chain.ctx.inputs.parameters["md"]
    assert md["reset_timestep"] == [400] and md["max_number_steps"] == 600 and "velocity" not in md
    # a second cut, now from aiida-lammps' own exit code: steps count from the original start
    second = orm.SinglefileData(io.BytesIO(b"restart"), filename="lammps.restart.700")
    failed(chain, LAMMPS_OUT_OF_WALLTIME, outputs={"restartfile": second})
    assert chain.inspect_process().status == 0
    assert chain.ctx.inputs.input_restartfile.uuid == second.uuid
    assert md["reset_timestep"] == [700] and md["max_number_steps"] == 300


def test_out_of_walltime_without_restart_file_gets_more_walltime(code, fake_snap):
    chain = md_chain(code, fake_snap, md_parameters("nvt", steps=100))
    failed(chain, SCHEDULER_OUT_OF_WALLTIME, options={"max_wallclock_seconds": 600})
    assert chain.inspect_process().status == 0
    assert chain.ctx.inputs.metadata["options"]["max_wallclock_seconds"] == 900
    assert "input_restartfile" not in chain.ctx.inputs


def test_md_gives_up_after_max_iterations_and_on_unknown_failures(code, fake_snap):
    chain = md_chain(code, fake_snap, md_parameters("nvt", steps=100, seed=1), max_iterations=orm.Int(2))
    failed(chain, UNSTABLE)
    assert chain.inspect_process().status == 0
    failed(chain, UNSTABLE)
    assert chain.inspect_process() == MdBaseWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED
    assert MdBaseWorkChain.exit_codes.ERROR_MAXIMUM_ITERATIONS_EXCEEDED.status == 401
    assert chain.ctx.inputs.parameters["md"]["velocity"][0]["create"]["seed"] == 1 + 2 * SEED_STRIDE

    chain = md_chain(code, fake_snap, md_parameters("nvt", steps=100))
    failed(chain, MdCalculation.exit_codes.ERROR_OUTPUT_FILE_MISSING.status)  # no handler knows this one
    assert chain.inspect_process() == MdBaseWorkChain.exit_codes.ERROR_UNHANDLED_FAILURE


# ----------------------------------------------------------------------------------------------------------- training


def training_set() -> TrainingSetData:
    frames = []
    for shift in (0.0, 0.05):
        atoms = bulk("Si", "diamond", a=5.43 + shift)
        atoms.calc = SinglePointCalculator(atoms, energy=-10.0 - shift, forces=np.zeros((2, 3)))
        frames.append(atoms)
    return TrainingSetData(frames)


def potential_chain(code, config: dict, **inputs) -> PotentialTrainingBaseWorkChain:
    train = {"code": code, "training_set": training_set(), "config": orm.Dict(config)}
    return instantiate(PotentialTrainingBaseWorkChain, {"train": train, **inputs})


def model_chain(code, config: dict, options: dict | None = None, **inputs) -> ModelTrainingBaseWorkChain:
    dataset = orm.SinglefileData(io.BytesIO(b"id,cif,bandgap\n"), filename="data.csv")
    train = {"code": code, "dataset": dataset, "config": orm.Dict(config)}
    if options:
        train["metadata"] = {"options": options}
    return instantiate(ModelTrainingBaseWorkChain, {"train": train, **inputs})


@pytest.mark.parametrize("exit_status", [SCHEDULER_OUT_OF_MEMORY, 350])
def test_mace_out_of_memory_halves_the_batch(code, exit_status):
    config = {"descriptor_type": "MACE", "mace": {"batch_size": 8, "max_num_epochs": 5}}
    chain = potential_chain(code, config)
    failed(chain, exit_status)
    assert chain.inspect_process().status == 0
    assert chain.ctx.inputs.config == {"descriptor_type": "MACE", "mace": {"batch_size": 4, "max_num_epochs": 5}}
    chain = potential_chain(code, {"descriptor_type": "MACE"})  # the default batch (2) halves to 1, then stops
    failed(chain, exit_status)
    assert chain.inspect_process().status == 0 and chain.ctx.inputs.config["mace"] == {"batch_size": 1}
    failed(chain, exit_status)
    exit_code = chain.inspect_process()
    assert exit_code.status == PotentialTrainingBaseWorkChain.exit_codes.ERROR_NO_SMALLER_BATCH.status == 310
    assert "already 1" in exit_code.message


def test_snap_out_of_memory_stops_saying_there_is_no_batch(code):
    chain = potential_chain(code, {"descriptor_type": "SNAP", "snap": {"twojmax": 4}})
    failed(chain, SCHEDULER_OUT_OF_MEMORY)
    exit_code = chain.inspect_process()
    assert exit_code.status == 310 and "SNAP fit has no batch size" in exit_code.message
    assert chain.ctx.inputs.config == {"descriptor_type": "SNAP", "snap": {"twojmax": 4}}  # unchanged


def test_training_out_of_walltime_raises_the_walltime(code):
    chain = potential_chain(code, {"descriptor_type": "SNAP"}, walltime_factor=orm.Float(3.0))
    failed(chain, SCHEDULER_OUT_OF_WALLTIME, options={"max_wallclock_seconds": 1200})
    assert chain.inspect_process().status == 0
    assert chain.ctx.inputs.metadata["options"]["max_wallclock_seconds"] == 3600
    assert chain.ctx.inputs.config == {"descriptor_type": "SNAP"}


def test_model_training_handlers(code):
    # out of memory: batch_size (default 64) halved
    chain = model_chain(code, {"target": "bandgap", "epochs": 3})
    failed(chain, 350)
    assert chain.inspect_process().status == 0
    assert chain.ctx.inputs.config == {"target": "bandgap", "epochs": 3, "batch_size": 32}
    # out of walltime with a time budget: a shorter budget, the walltime unchanged
    chain = model_chain(code, {"target": "bandgap", "time_budget": 600}, options={"max_wallclock_seconds": 900})
    failed(chain, SCHEDULER_OUT_OF_WALLTIME, options={"max_wallclock_seconds": 900})
    assert chain.inspect_process().status == 0
    assert chain.ctx.inputs.config["time_budget"] == 300
    assert chain.ctx.inputs.metadata["options"]["max_wallclock_seconds"] == 900
    # without one: twice the walltime; after max_iterations it gives up with 401
    chain = model_chain(code, {"target": "bandgap"}, options={"max_wallclock_seconds": 900}, max_iterations=orm.Int(2))
    failed(chain, SCHEDULER_OUT_OF_WALLTIME, options={"max_wallclock_seconds": 900})
    assert chain.inspect_process().status == 0
    assert chain.ctx.inputs.metadata["options"]["max_wallclock_seconds"] == 1800
    failed(chain, SCHEDULER_OUT_OF_WALLTIME, options={"max_wallclock_seconds": 1800})
    assert chain.inspect_process().status == 401


# ------------------------------------------------------------------------------------------------------- real LAMMPS


def si64() -> orm.StructureData:
    return orm.StructureData(ase=bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 2)))


def test_real_md_that_blows_up_is_rescued_by_the_handler(si_snap):
    """Fault injection by input: a 50 fs timestep blows the crystal apart; the handler's 2 fs run finishes."""
    builder = MdBaseWorkChain.get_builder()
    builder.md.code = orm.load_code("lmp@localhost")
    builder.md.potential = si_snap
    builder.md.structure = si64()
    builder.md.parameters = orm.Dict(md_parameters("nvt", temperature=1000, steps=100, timestep_fs=50.0, seed=4))
    builder.timestep_reduction = orm.Float(0.04)
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    first, second = sorted(node.called, key=lambda n: n.ctime)
    assert first.exit_status in (UNSTABLE, LOST_ATOMS)
    assert second.is_finished_ok
    parameters = second.inputs.parameters.get_dict()
    assert parameters["control"]["timestep"] == pytest.approx(0.002)
    assert parameters["md"]["velocity"][0]["create"]["seed"] == 4 + SEED_STRIDE
    assert results["results"]["final_step"] == 100 and 300 < results["results"]["final_temp"] < 2000
    assert "restartfile" in results  # written every 10 steps for a walltime restart
    reports = " ".join(log.message for log in orm.Log.collection.get_logs_for(node))
    assert "timestep 50 -> 2 fs" in reports and f"seed 4 -> {4 + SEED_STRIDE}" in reports


def test_real_lammps_continues_from_the_restart_file_the_walltime_handler_attaches(si_snap):
    """The continuation inputs the walltime handler builds run in LAMMPS: it reads the restart file (velocities
    included, no new draw) and runs the remaining steps from the step it was written at."""
    md = {
        "code": orm.load_code("lmp@localhost"),
        "potential": si_snap,
        "structure": si64(),
        "parameters": orm.Dict(md_parameters("nvt", temperature=600, steps=60, seed=2, thermo_every=10)),
    }
    _, first = run_get_node(MdBaseWorkChain, md=md)
    assert first.is_finished_ok, first.exit_message
    calculation = first.called[0]
    restartfile = calculation.outputs.restartfile
    assert restartfile.filename == "lammps.restart.60"  # intermediate files every 6 steps, the step in the name
    # the handler, as if that run had been meant to reach step 100 and the scheduler had stopped it at step 60
    chain = instantiate(MdBaseWorkChain, {"md": md})
    chain.ctx.inputs.parameters["md"]["max_number_steps"] = 100
    failed(chain, SCHEDULER_OUT_OF_WALLTIME, outputs={"restartfile": restartfile.clone()})
    assert chain.inspect_process().status == 0
    inputs = chain.ctx.inputs
    continuation = {**inputs, "parameters": orm.Dict(inputs.parameters), "settings": orm.Dict(inputs.settings)}
    _, second = run_get_node(MdCalculation, **continuation)
    assert second.is_finished_ok, second.exit_message
    script = second.base.repository.get_object_content("input.in")
    assert "read_restart lammps.restart" in script and "velocity" not in script and "reset_timestep 60" in script
    steps = second.outputs.time_dependent_computes.get_array("Step")
    assert steps[0] == 60 and steps[-1] == 100
    # the continuation starts where the first run ended: the same temperature at step 60
    before = calculation.outputs.time_dependent_computes.get_array("Temp")[-1]
    after = second.outputs.time_dependent_computes.get_array("Temp")[0]
    assert after == pytest.approx(before, rel=1e-5)


# ------------------------------------------------------------------------------------------------ replayed steps
def _child(parent: orm.WorkflowNode, label: str, state: ProcessState | None, checkpoint: str | None = None,
           exception: str | None = None) -> orm.WorkChainNode:  # fmt: skip
    child = orm.WorkChainNode()
    child.base.links.add_incoming(parent, LinkType.CALL_WORK, label)
    if state is not None:
        child.set_process_state(state)
    if checkpoint is not None:
        child.set_checkpoint(checkpoint)
    if exception is not None:
        child.set_exception(exception)
    return child.store()


def test_a_replayed_step_relaunches_only_children_that_never_started():
    """A worker killed inside ``submit`` (node stored, checkpoint not yet saved) leaves a child no daemon can run: the
    replayed step must launch it again (seen as a lost evaluation by ``benchmark reliability``), and closes it."""
    from aiida_nanoos.workflows.common import NO_CHECKPOINT, launched_child

    parent = orm.WorkflowNode().store()
    orphan = _child(parent, "scf", ProcessState.CREATED)
    assert launched_child(parent, "scf") is None
    assert orphan.is_excepted and orphan.is_sealed and "never started" in orphan.exception
    # ``verdi process repair`` sent the orphan a task first: the daemon excepted it; that does not count either
    repaired = _child(parent, "references", ProcessState.EXCEPTED, exception=f"Calculation<7> {NO_CHECKPOINT}")
    assert launched_child(parent, "references") is None and repaired.is_excepted
    # a child with its checkpoint waits for a task (repair gives it one); one that failed for real is the answer
    queued = _child(parent, "evaluate_3", ProcessState.CREATED, checkpoint="saved")
    assert launched_child(parent, "evaluate_3").pk == queued.pk
    failed = _child(parent, "evaluate_4", ProcessState.EXCEPTED, exception="ZeroDivisionError: division by zero")
    assert launched_child(parent, "evaluate_4").pk == failed.pk
    # the relaunched child is found next to the closed orphan
    again = _child(parent, "scf", ProcessState.WAITING)
    assert launched_child(parent, "scf").pk == again.pk


class ReplayedAddition(ReplaySafeRestart, BaseRestartWorkChain):
    """The smallest restart work chain with the plugin's replay safety (``PwBaseWorkChain`` and the job restart work
    chains use the same class) around aiida-core's arithmetic CalcJob."""

    _process_class = ArithmeticAddCalculation

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(ArithmeticAddCalculation, namespace="add")
        spec.expose_outputs(ArithmeticAddCalculation)
        allow_lost_remote_folder(spec)
        spec.outline(cls.setup, while_(cls.should_run_process)(cls.run_process, cls.inspect_process), cls.results)

    def setup(self):
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(ArithmeticAddCalculation, "add"))


def test_a_replayed_results_step_registers_the_outputs_attached_before_the_kill(aiida_code_installed):
    """A worker killed inside ``results`` left two outputs linked but not checkpointed; aiida-core's replayed
    ``results`` skipped them and the work chain failed with 11 (an SCF lost in ``benchmark reliability``, seed 101)."""
    code = aiida_code_installed(default_calc_job_plugin="core.arithmetic.add", label="add")
    chain = instantiate(ReplayedAddition, {"add": {"code": code, "x": orm.Int(1), "y": orm.Int(2)}})
    outputs = {"sum": orm.Int(3), "remote_folder": orm.RemoteData(computer=code.computer, remote_path="/tmp"),
               "retrieved": orm.FolderData()}  # fmt: skip
    failed(chain, 0, outputs=outputs)  # the finished iteration
    for label in ("sum", "remote_folder"):  # what the killed first pass attached
        outputs[label].base.links.add_incoming(chain.node, LinkType.RETURN, label)
    assert chain.results() is None
    assert chain.spec().outputs.validate(chain.outputs) is None  # 'sum' and 'remote_folder' were missing here
    chain.update_outputs()  # what the engine does at the next state change: link what is not linked yet
    returned = chain.node.base.links.get_outgoing(link_type=LinkType.RETURN).all()
    assert sorted(link.link_label for link in returned) == ["remote_folder", "retrieved", "sum"]  # one link each
    assert {label: node.uuid for label, node in chain.outputs.items()} == {k: v.uuid for k, v in outputs.items()}


def test_a_job_that_lost_its_remote_folder_to_a_kill_still_counts():
    """aiida-core marks the upload done before it links ``remote_folder``; a worker killed in between leaves a job that
    finishes ok without one (``benchmark reliability``, seed 7). The work chain reports it and finishes ok."""
    for work_chain in (PwBaseWorkChain, MdBaseWorkChain, PotentialTrainingBaseWorkChain, ReplayedAddition):
        assert not work_chain.spec().outputs["remote_folder"].required, work_chain
        assert work_chain.spec().outputs["retrieved"].required, work_chain


def test_the_results_of_a_job_without_remote_folder(aiida_code_installed):
    code = aiida_code_installed(default_calc_job_plugin="core.arithmetic.add", label="add")
    chain = instantiate(ReplayedAddition, {"add": {"code": code, "x": orm.Int(1), "y": orm.Int(2)}})
    child = failed(chain, 0, outputs={"sum": orm.Int(3), "retrieved": orm.FolderData()})
    assert chain.results() is None
    assert chain.spec().outputs.validate(chain.outputs) is None and set(chain.outputs) == {"sum", "retrieved"}
    assert any(
        f"<{child.pk}> finished ok without remote_folder" in log.message
        for log in orm.Log.collection.get_logs_for(chain.node)
    )
