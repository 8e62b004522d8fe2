"""Fault injection: what breaks on a real computer, and that a campaign records it and goes on.

Each fault is injected once into a real campaign whose other candidates run real pw.x; the candidate that met the
fault is recorded as failed with a reason a user can act on, the others are evaluated, and the campaign finishes.
The only stand-in is ``tests/fault_codes/pw_fault.sh``, installed as a pw.x code: it runs the real pw.x except for
candidates containing an element named in its ``NANOOS_FAULTS`` (a crash, no convergence, a full scratch disk, a job
that outlives its walltime, a job cancelled from outside). Overlapping atoms and an objective that divides by zero
need no stand-in. The candidates come from an external proposer (a scripted HTTP server on localhost), so the test
decides exactly which candidate meets which fault.

On localhost (``core.direct``): crash, no convergence (PwBaseWorkChain's handler lowers the mixing and runs again,
then gives up), a full disk (a real 1 MB tmpfs, mounted as root), overlapping atoms, a metal under ``1 / bandgap``.
On the SLURM test cluster over SSH (``tests/test_cluster.py``): the walltime (SLURM kills the job at its time limit)
and ``scancel`` from outside, checked against SLURM's own job completion log.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from aiida import orm
from aiida.common import LinkType
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_nanoos.design.geometry import MIN_INTERATOMIC_DISTANCE, overlapping_atoms
from aiida_nanoos.design.spaces import atoms_to_dict
from aiida_nanoos.workflows.campaign import CampaignWorkChain, evaluator_builder
from aiida_nanoos.workflows.failure_reasons import diagnose_job_output
from tests.campaign_fixtures import iteration_results
from tests.test_campaign_external import Agent

pytest_plugins = ["tests.potential_fixtures"]

STAND_IN = Path(__file__).parent / "fault_codes" / "pw_fault.sh"
#: Tiny pw.x settings: about a second per SCF of a 2-atom cell.
CHEAP = {"scf": {"kpoints_distance": 0.6, "pw": {"parameters": {"SYSTEM": {"ecutwfc": 20.0, "ecutrho": 160.0}}}}}
#: Lower is better; a metal (band gap 0) makes it divide by zero.
INVERSE_GAP = {"objective": "custom", "formula": "1 / bandgap", "direction": "minimize"}


def space(dopants: list[str]) -> dict:
    """Si2 with one site substituted (fraction 0.5) or none, and a small isotropic strain."""
    return {
        "base_structure": atoms_to_dict(bulk("Si", "diamond", a=5.43)),
        "dimensions": [
            {"type": "substitution", "name": "dopant", "host": "Si", "dopants": dopants, "fraction": [0, 1]},
            {"type": "strain", "name": "strain", "ranges": {"iso": [-0.02, 0.02]}, "isotropic": True},
        ],
    }


def point(element: str, fraction: float, strain: float = 0.0, method: str = "test") -> dict:
    return {
        "parameters": {"dopant": {"element": element, "fraction": fraction}, "strain": {"iso": strain}},
        "generation_method": method,
    }


def overlapping_si2() -> dict:
    """Si2 with the second atom 0.31 Å from the first: no proposer should make it, an external agent might."""
    atoms = bulk("Si", "diamond", a=5.43)
    atoms.positions[1] = atoms.positions[0] + [0.31, 0.0, 0.0]
    return {"structure": atoms_to_dict(atoms), "generation_method": "typo"}


def stand_in_code(computer: orm.Computer, label: str, faults: dict[str, str], **environment: str) -> orm.InstalledCode:
    """The stand-in pw.x on ``computer``: ``faults`` maps an element to the fault its candidates meet."""
    exports = {"NANOOS_FAULTS": " ".join(f"{element}={fault}" for element, fault in faults.items()), **environment}
    code = orm.InstalledCode(
        label=label,
        computer=computer,
        filepath_executable=str(STAND_IN),
        default_calc_job_plugin="quantumespresso.pw",
        prepend_text="\n".join(f"export {key}='{value}'" for key, value in exports.items()),
    )
    return code.store()


def campaign(code, dopants, answers, config, objective="maximize_bandgap", max_iterations=None, options=None):
    """A band-gap campaign driven by the scripted proposer; returns (results, node, agent)."""
    inputs = evaluator_builder("band_gap", space(dopants), code=code, protocol="fast", overrides=CHEAP, options=options)
    if max_iterations is not None:
        inputs.scf.max_iterations = orm.Int(max_iterations)
    with Agent(answers) as agent:
        builder = CampaignWorkChain.get_builder_from_evaluator(
            space(dopants),
            objective,
            "band_gap",
            inputs,
            config={"algorithm": "external", "external": {"url": agent.url, "timeout": 10}, **config},
        )
        results, node = run_get_node(builder)
    return results, node, agent


def records_by_formula(results) -> dict[str, dict]:
    return {r["formula"]: r for r in results["state"]["candidates"]}


def evaluations_of(node, record) -> list[orm.WorkflowNode]:
    """The evaluator runs the campaign called for a candidate (linked ``evaluate_<id>``)."""
    label = f"evaluate_{record['id']}"
    return [link.node for link in node.base.links.get_outgoing(link_type=LinkType.CALL_WORK, link_label_filter=label)]


def evaluation_of(node, record) -> orm.WorkflowNode:
    (evaluation,) = evaluations_of(node, record)
    return evaluation


def pw_calculations(evaluation) -> list[orm.CalcJobNode]:
    return sorted(
        (n for n in evaluation.called_descendants if n.process_label == "PwCalculation"), key=lambda n: n.ctime
    )


# ------------------------------------------------------------------------------------------------------ pure parts
def test_overlapping_atoms_are_named_with_their_distance():
    atoms = bulk("Si", "diamond", a=5.43)
    assert overlapping_atoms(atoms) is None  # 2.35 Å bonds
    atoms.positions[1] = atoms.positions[0] + [0.31, 0.0, 0.0]
    assert overlapping_atoms(atoms) == "overlapping atoms: 0.31 Å between 0 (Si) and 1 (Si), minimum 0.5 Å"
    # an atom against its own periodic image in a cell 0.4 Å long
    atoms = bulk("Si", "sc", a=0.4)
    expected = f"overlapping atoms: 0.40 Å between 0 (Si) and its periodic image, minimum {MIN_INTERATOMIC_DISTANCE} Å"
    assert overlapping_atoms(atoms) == expected


def test_a_refused_candidate_is_recorded_failed_even_with_properties():
    """The core's guarantee: once refused, a candidate counts as failed whatever an evaluator (or the property model)
    returned for it, and the others of its batch are ranked."""
    from aiida_nanoos.design import campaign as cp
    from aiida_nanoos.design.proposers import registry as proposers

    space_, objective, config = cp.validate_campaign(space(["Ge"]), "maximize_bandgap", {"batch_size": 3, "seed": 1})
    state = cp.new_state(config)
    proposal = proposers.propose(space_, objective, config, state)
    (first, atoms), *others = proposal["candidates"]
    atoms.positions[1] = atoms.positions[0] + [0.2, 0.0, 0.0]  # as a bad mutation would
    refused = cp.refuse_unphysical(proposal["candidates"])
    a, b = atoms.get_chemical_symbols()
    assert refused == {first.id: f"overlapping atoms: 0.20 Å between 0 ({a}) and 1 ({b}), minimum 0.5 Å"}
    properties = {record.id: {"bandgap": 0.5 + k} for k, (record, _) in enumerate(proposal["candidates"])}
    summary = cp.record_results(state, space_, objective, config, properties, {})
    assert summary["failed"] == 1 and [r["id"] for r in summary["candidates"]][-1] == first.id
    record = next(r for r in state.candidates if r.id == first.id)
    assert record.status == "failed" and record.value is None and record.error == refused[first.id]
    assert sorted(r.value for r in state.candidates if r.ok) == [1.5, 2.5]


@pytest.mark.parametrize(
    ("stderr", "stdout", "expected"),
    [
        (
            "slurmstepd: error: *** JOB 41 ON vm CANCELLED AT 2026-12-06T02:40:00 DUE TO TIME LIMIT ***\n",
            "",
            "SLURM job 41 TIMEOUT (time limit 60 s)",
        ),
        ("slurmstepd: error: *** JOB 42 ON vm CANCELLED AT 2026-12-06T02:40:00 ***\n", "", "SLURM job 42 CANCELLED"),
        (
            "cp: error writing '/scratch/run-7/aiida.in': No space left on device\n",
            "",
            "no space left on device (cp: error writing '/scratch/run-7/aiida.in': No space left on device)",
        ),
        (
            "_aiidasubmit.sh: line 9: 1234 Segmentation fault      (core dumped) 'pw.x' '-in' 'aiida.in'\n",
            "",
            "pw crashed: Segmentation fault",
        ),
        (
            "",
            " %%%%\n     Error in routine electrons (1):\n     charge is wrong\n %%%%",
            "pw stopped with an error in routine electrons: charge is wrong",
        ),
        ("", "     JOB DONE.\n", None),
    ],
)
def test_job_output_diagnosis(stderr, stdout, expected):
    assert diagnose_job_output(stderr, stdout, walltime=60, executable="pw") == expected


# ------------------------------------------------------------------------------------------------------ localhost
@pytest.fixture(scope="module")
def full_disk():
    """A real 1 MB tmpfs, filled up: the scratch of the full-disk candidate (root only, else None; unmounted
    afterwards)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        yield None  # SiB then runs the real pw.x (and fails as a metal, see test_full_disk_...)
        return
    mountpoint = Path(tempfile.mkdtemp(prefix="nanoos-full-disk-"))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=1777", "tmpfs", str(mountpoint)], check=True)
    try:
        subprocess.run(["dd", "if=/dev/zero", f"of={mountpoint}/filler", "bs=4k"], capture_output=True, check=False)
        assert shutil.disk_usage(mountpoint).free == 0
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)
        mountpoint.rmdir()


LOCAL_FAULTS = {"Ge": "crash", "C": "no_convergence", "B": "full_disk"}


@pytest.fixture(scope="module")
def local_campaign(nanoos_resources, full_disk):
    """Two iterations on localhost. The first batch: two healthy Si2 cells, and one candidate per fault: SiGe
    (pw.x crashes), SiC (no convergence), SiB (the scratch disk is full), SiAl (a metal: ``1 / bandgap`` divides by
    zero) and a Si2 with overlapping atoms. The second: one healthy cell, to show the campaign went on."""
    computer = orm.load_computer("localhost")
    if full_disk is None:
        code = stand_in_code(computer, "pw-faults-local", {k: v for k, v in LOCAL_FAULTS.items() if k != "B"})
    else:
        code = stand_in_code(computer, "pw-faults-local", LOCAL_FAULTS, NANOOS_SCRATCH=str(full_disk))
    first = {
        "candidates": [
            point("Ge", 0.0, 0.0),
            point("Ge", 0.0, 0.01),
            point("Ge", 0.5),
            point("C", 0.5),
            point("B", 0.5),
            point("Al", 0.5),
            overlapping_si2(),
        ]
    }
    second = {"candidates": [point("Ge", 0.0, -0.01)]}
    start = time.perf_counter()
    results, node, agent = campaign(
        code,
        ["Ge", "C", "B", "Al"],
        [first, second],
        {"batch_size": 7, "max_iterations": 2},
        objective=INVERSE_GAP,
        max_iterations=2,
    )
    print(f"local fault campaign: {time.perf_counter() - start:.1f} s")
    return results, node, agent


@pytest.mark.slow
def test_local_campaign_finishes_with_the_healthy_candidates_evaluated(local_campaign):
    results, node, agent = local_campaign
    assert node.is_finished_ok, node.exit_message
    assert len(agent.requests) == 2  # it asked for a second batch after the failures
    records = results["state"]["candidates"]
    assert len(records) == 8
    healthy = [r for r in records if r["formula"] == "Si2"]
    assert len(healthy) == 4  # three healthy cells + the one with overlapping atoms
    ok = [r for r in healthy if r["status"] == "ok"]
    assert len(ok) == 3 and all(0.3 < r["properties"]["bandgap"] < 1.5 for r in ok)
    assert all(r["value"] == pytest.approx(1 / r["properties"]["bandgap"]) for r in ok)
    statistics = results["statistics"]
    assert statistics["total_candidates_evaluated"] == 8 and statistics["failed_evaluations"] == 5
    best = results["best_candidates"]["candidates"][0]
    assert best["objectives"][0] == min(r["value"] for r in ok)
    summary = iteration_results(node)["iteration_001"]["summary"]
    assert summary["failed"] == 5 and sorted(r["status"] for r in summary["candidates"]) == ["failed"] * 5 + ["ok"] * 2


@pytest.mark.slow
def test_crashing_pw_is_recorded_with_the_signal(local_campaign):
    results, node, _ = local_campaign
    record = records_by_formula(results)["GeSi"]
    assert record["status"] == "failed" and record["value"] is None
    # no handler knows a crash: the restart work chain gives up on it (an unhandled failure, exit 402)
    (calc,) = pw_calculations(evaluation_of(node, record))
    output = calc.outputs.retrieved.base.repository.get_object_content("aiida.out")
    assert "Program PWSCF" in output and "JOB DONE" not in output  # half an output
    assert calc.exit_status == 312  # ERROR_OUTPUT_STDOUT_INCOMPLETE: all aiida-quantumespresso can tell
    assert record["error"].startswith(f"pw-faults-local crashed: Segmentation fault: PwCalculation<{calc.pk}> (job ")
    assert f"PwBaseWorkChain<{calc.caller.pk}> exit 402" in record["error"] and "BandGapWorkChain<" in record["error"]


@pytest.mark.slow
def test_scf_that_never_converges_is_handled_then_recorded(local_campaign):
    results, node, _ = local_campaign
    record = records_by_formula(results)["CSi"]
    assert record["status"] == "failed"
    evaluation = evaluation_of(node, record)
    calcs = pw_calculations(evaluation)
    assert [c.exit_status for c in calcs] == [410, 410]  # ERROR_ELECTRONIC_CONVERGENCE_NOT_REACHED
    # PwBaseWorkChain's handler acted: the second run restarted from the first with a smaller mixing beta
    beta = [c.inputs.parameters["ELECTRONS"].get("mixing_beta", 0.7) for c in calcs]  # pw.x's default 0.7
    assert beta[1] == pytest.approx(0.8 * beta[0])
    assert calcs[1].inputs.parameters["CONTROL"]["restart_mode"] == "restart"
    base = calcs[0].caller
    reports = " ".join(log.message for log in orm.Log.collection.get_logs_for(base))
    assert "reduced beta mixing" in reports
    assert "exit 410: The electronic minimization cycle did not reach self-consistency." in record["error"]
    assert f"PwBaseWorkChain<{base.pk}> exit 401" in record["error"]  # maximum iterations (2) exceeded


@pytest.mark.slow
def test_full_disk_is_recorded_as_no_space_left(local_campaign, full_disk):
    if full_disk is None:
        pytest.skip("mounting a tmpfs for the full-disk fault needs root")
    results, node, _ = local_campaign
    record = records_by_formula(results)["BSi"]
    assert record["status"] == "failed"
    assert record["error"].startswith(f"no space left on device (cp: error writing '{full_disk}/run-")
    (calc,) = pw_calculations(evaluation_of(node, record))
    assert f"PwCalculation<{calc.pk}>" in record["error"]
    # nothing else broke: the disk is still full and only this candidate touched it
    assert shutil.disk_usage(full_disk).free == 0
    others = [r for r in results["state"]["candidates"] if r["status"] == "ok"]
    assert len(others) == 3


@pytest.mark.slow
def test_overlapping_atoms_are_refused_before_pw_runs(local_campaign):
    results, node, _ = local_campaign
    refused = [r for r in results["state"]["candidates"] if r["generation_method"] == "external:typo"]
    assert len(refused) == 1
    record = refused[0]
    assert record["status"] == "failed" and record["value"] is None
    assert record["error"] == "overlapping atoms: 0.31 Å between 0 (Si) and 1 (Si), minimum 0.5 Å"
    # never submitted: no evaluation of it, and no pw.x run anywhere had its structure
    assert not evaluations_of(node, record)
    structures = {n.inputs.structure.uuid for n in node.called_descendants if n.process_label == "PwCalculation"}
    assert record["uuid"] not in structures
    suggest = next(n for n in node.called if n.process_label == "suggest_candidates")
    assert suggest.outputs.proposals["report"]["refused"] == {record["id"]: record["error"]}


@pytest.mark.slow
def test_objective_dividing_by_zero_on_a_metal_fails_only_that_candidate(local_campaign):
    results, node, _ = local_campaign
    record = records_by_formula(results)["AlSi"]
    evaluation = evaluation_of(node, record)
    assert evaluation.is_finished_ok  # pw.x and the evaluation were fine: the formula failed, on this candidate
    assert record["properties"]["metallic"] is True and record["properties"]["bandgap"] == 0.0
    assert record["status"] == "failed" and record["value"] is None
    assert "1 / bandgap" in record["error"] and "ZeroDivisionError" in record["error"]


# ------------------------------------------------------------------------------------------------------ SLURM
@pytest.fixture(scope="module")
def slurm_faults(nanoos_resources):
    from aiida_nanoos.setup import cluster
    from aiida_nanoos.setup.computer import setup_computer, test_cluster_config

    try:
        info = cluster.ensure_test_cluster()
    except cluster.ClusterUnavailable as reason:
        pytest.skip(f"no SLURM test cluster (the walltime and scancel faults need one): {reason}")
    setup_computer(test_cluster_config(info))
    return info


class Canceller(threading.Thread):
    """Cancels (``scancel``, as root, from outside the job) every job the stand-in logs as it starts."""

    def __init__(self, log: Path):
        super().__init__(daemon=True)
        self.log, self.cancelled, self.stop = log, [], threading.Event()

    def run(self):
        while not self.stop.wait(0.5):
            ids = self.log.read_text().split() if self.log.exists() else []
            for job_id in ids[len(self.cancelled) :]:
                subprocess.run(["scancel", job_id], check=True, timeout=30)
                self.cancelled.append(job_id)


@pytest.fixture(scope="module")
def slurm_campaign(slurm_faults):
    """One iteration on SLURM over SSH with a 60 s walltime: healthy Si2, SiGe (sleeps past its walltime), SiC
    (cancelled with scancel as soon as it runs). One run per SCF, so each fault is recorded, not retried."""
    from aiida_nanoos.setup.cluster import PARTITION

    log_dir = Path(tempfile.mkdtemp(prefix="nanoos-fault-log-"))
    log_dir.chmod(0o777)  # the stand-in runs as the cluster account
    code = stand_in_code(
        orm.load_computer("slurm-test"),
        "pw-faults-slurm",
        {"Ge": "walltime", "C": "cancel"},
        NANOOS_FAULT_LOG=str(log_dir),
    )
    answers = [{"candidates": [point("Ge", 0.0), point("Ge", 0.5), point("C", 0.5)]}]
    options = {"account": "nanoos-ci", "queue_name": PARTITION, "max_wallclock_seconds": 60}
    canceller = Canceller(log_dir / "cancel")
    canceller.start()
    start = time.perf_counter()
    try:
        results, node, _ = campaign(
            code, ["Ge", "C"], answers, {"batch_size": 3, "max_iterations": 1}, max_iterations=1, options=options
        )
        print(f"SLURM fault campaign: {time.perf_counter() - start:.1f} s")
        yield results, node, canceller
    finally:
        canceller.stop.set()
        canceller.join()
        shutil.rmtree(log_dir, ignore_errors=True)


@pytest.mark.slow
def test_slurm_campaign_finishes_with_the_healthy_candidate(slurm_campaign, slurm_faults):
    from aiida_nanoos.setup.cluster import completed_jobs

    results, node, _ = slurm_campaign
    assert node.is_finished_ok, node.exit_message
    record = records_by_formula(results)["Si2"]
    assert record["status"] == "ok" and 0.3 < record["value"] < 1.5
    (calc,) = pw_calculations(evaluation_of(node, record))
    assert completed_jobs(slurm_faults.jobcomp_log)[calc.get_job_id()]["JobState"] == "COMPLETED"


@pytest.mark.slow
def test_job_past_its_walltime_is_killed_by_slurm_and_recorded(slurm_campaign, slurm_faults):
    from aiida_nanoos.setup.cluster import completed_jobs

    results, node, _ = slurm_campaign
    record = records_by_formula(results)["GeSi"]
    assert record["status"] == "failed"
    (calc,) = pw_calculations(evaluation_of(node, record))
    job_id = calc.get_job_id()
    assert completed_jobs(slurm_faults.jobcomp_log)[job_id]["JobState"] == "TIMEOUT"
    assert calc.exit_status == 120  # ERROR_SCHEDULER_OUT_OF_WALLTIME, from SLURM's message
    assert record["error"].startswith(f"SLURM job {job_id} TIMEOUT (time limit 60 s): PwCalculation<{calc.pk}>")


@pytest.mark.slow
def test_job_cancelled_from_outside_is_recorded(slurm_campaign, slurm_faults):
    from aiida_nanoos.setup.cluster import completed_jobs

    results, node, canceller = slurm_campaign
    record = records_by_formula(results)["CSi"]
    assert record["status"] == "failed"
    (calc,) = pw_calculations(evaluation_of(node, record))
    job_id = calc.get_job_id()
    assert canceller.cancelled == [job_id]  # the job AiiDA recorded is the one scancel hit
    assert completed_jobs(slurm_faults.jobcomp_log)[job_id]["JobState"] == "CANCELLED"
    assert record["error"].startswith(f"SLURM job {job_id} CANCELLED: PwCalculation<{calc.pk}> (job {job_id})")


# ------------------------------------------------------------------------------------------------- LAMMPS on SLURM
def si64() -> orm.StructureData:
    return orm.StructureData(ase=bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 2)))


def md_steps_per_second(node: orm.CalcJobNode) -> float:
    """LAMMPS' own timing of a finished run (``Loop time of T on P procs for N steps``)."""
    text = node.outputs.retrieved.base.repository.get_object_content(node.get_option("output_filename"))
    seconds, steps = re.search(r"Loop time of ([\d.eE+-]+) on \d+ procs for (\d+) steps", text).groups()
    return int(steps) / float(seconds)


@pytest.mark.slow
def test_md_past_its_walltime_continues_from_its_restart_file(slurm_faults, si_snap):
    """A real LAMMPS run on SLURM meant to take about 150 s, with a 60 s time limit: SLURM kills it, the
    walltime handler of ``nanoos.md.base`` continues from its last restart file for the remaining steps, and the
    MD reaches its last step."""
    from aiida_nanoos.calculations.md import md_parameters
    from aiida_nanoos.setup.cluster import PARTITION, completed_jobs
    from aiida_nanoos.workflows.md_base import MdBaseWorkChain

    md = {"code": orm.load_code("lmp@localhost"), "potential": si_snap, "structure": si64()}
    # long enough (a few seconds) for LAMMPS' loop time to measure the speed of a long run, set-up amortised
    probe = md_parameters("nvt", temperature=600, steps=4000, seed=2, thermo_every=400, dump_every=4000)
    _, calibration = run_get_node(MdBaseWorkChain, md={**md, "parameters": orm.Dict(probe)})
    assert calibration.is_finished_ok, calibration.exit_message
    speed = md_steps_per_second(calibration.called[0])
    # about 150 s of MD at the probe's speed (a job under SLURM ran up to 1.5x faster than the probe here): SLURM
    # stops the first job at 60 s, each continuation starts from the last restart file (written every tenth of the
    # run), as many as it takes
    steps = int(speed * 150) // 100 * 100
    print(f"LAMMPS SNAP Si64: {speed:.0f} steps/s here; the SLURM run asks for {steps} steps")
    parameters = md_parameters("nvt", temperature=600, steps=steps, seed=2, thermo_every=steps // 20, dump_every=steps)
    md.update(code=orm.load_code("lmp@slurm-test"), parameters=orm.Dict(parameters))
    md["metadata"] = {
        "options": {
            "account": "nanoos-ci",
            "queue_name": PARTITION,
            "max_wallclock_seconds": 60,
            "resources": {"num_machines": 1, "num_mpiprocs_per_machine": 1},
        }
    }
    results, node = run_get_node(MdBaseWorkChain, md=md, max_iterations=orm.Int(8))
    assert node.is_finished_ok, node.exit_message
    runs = sorted(node.called, key=lambda n: n.ctime)
    first, last = runs[0], runs[-1]
    assert len(runs) >= 2 and last.is_finished_ok
    jobs = completed_jobs(slurm_faults.jobcomp_log)
    assert jobs[first.get_job_id()]["JobState"] == "TIMEOUT"  # SLURM killed it at the time limit
    assert first.exit_status == 400  # ERROR_OUT_OF_WALLTIME (the scheduler's 120, read by the parser)
    restart = first.outputs.restartfile
    step = int(restart.filename.rsplit(".", 1)[1])
    assert 0 < step < steps
    second = runs[1]
    assert second.inputs.input_restartfile.uuid == restart.uuid
    assert second.inputs.parameters["md"]["reset_timestep"] == [step]
    assert second.inputs.parameters["md"]["max_number_steps"] == steps - step
    reports = " ".join(log.message for log in orm.Log.collection.get_logs_for(node))
    assert f"continuing from restart file {restart.filename} (step {step})" in reports
    # the continuations together reach the step the MD asked for, and the thermostat holds 600 K
    assert results["results"]["final_step"] == steps
    # SLURM stopped every job but the last; the last reached the final step (SLURM may still have stopped it while
    # it was writing its last files, when the remaining steps took almost exactly the time limit)
    assert all(jobs[run.get_job_id()]["JobState"] == "TIMEOUT" for run in runs[:-1])
    assert last.outputs.results["final_step"] == steps
    temperatures = last.outputs.time_dependent_computes.get_array("Temp")
    assert 300 < float(np.mean(temperatures)) < 900
    # md plot of the chain joins the jobs that recorded thermodynamics (a job SLURM killed records none: aiida-lammps
    # parses no thermo of a run cut short) up to the last step, no step twice
    from aiida_nanoos.query import md_segments, thermo_data

    segments = md_segments(node)
    assert segments[-1].pk == last.pk and first.pk not in [segment.pk for segment in segments]
    joined = thermo_data(node.pk)
    recorded = np.round(joined["time_ps"] / parameters["control"]["timestep"]).astype(int)
    assert recorded[-1] == steps and np.all(np.diff(recorded) > 0)
