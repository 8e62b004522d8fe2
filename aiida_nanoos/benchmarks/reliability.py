"""Crash recovery and load: SIGKILL every daemon worker at random moments while real pw.x campaigns run, then count.

The run uses a PostgreSQL + RabbitMQ profile of its own (``setup.profile.ensure_profile``) and the daemon with
``workers`` workers. It submits ``campaigns`` design campaigns whose evaluations are real pw.x SCFs of 2-atom Si-Ge
cells (``band_gap`` evaluator, 20 Ry, coarse k-mesh: about a second of pw.x each), plus ``evaluations`` small
standalone evaluations (the ``analytic`` evaluator) for the load scenario. While they run, every worker is killed
with SIGKILL ``kills`` times at random moments; circus (the daemon's process manager) starts new workers, and when
it does not within a while the client API adds them (``increase_workers``, what ``verdi daemon incr`` does).

The counting does not trust AiiDA's bookkeeping: the pw.x executions are read from the scheduler's own record. On
the SLURM test cluster (``setup.cluster``; preferred, reached over SSH) that is SLURM's job completion log, one line
per job with its id, state, account and working directory; without the cluster, ``core.direct`` on localhost, where
the record is the job directory with the ``_scheduler-stdout.txt`` the job wrote. Every job is traced back through
its working directory (``<work_dir>/ab/cd/<rest of the CalcJob UUID>``) to its CalcJob, its evaluator and the
campaign candidate it evaluated (the campaign's ``evaluate_<candidate>`` call link), so:

* duplicated = scheduler jobs for a candidate beyond the pw.x runs its recorded evaluation used (a CalcJob submitted
  twice, or a second evaluator started for the same candidate after a replayed step);
* lost = budgeted evaluations without a successful recorded evaluation backed by a finished scheduler job.

With caching on (``caching.enabled_for`` pw.x in the profile, read by the daemon workers) the same DFT evaluation is
submitted again afterwards: its pw.x CalcJob must come from the cache and the scheduler must have seen one job.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid as uuid_module
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import click

from aiida_nanoos.benchmarks import options

PROFILE_NAME = "nanoos-reliability"
PW_CACHE_IDENTIFIER = "aiida.calculations:quantumespresso.pw"
#: Tiny pw.x settings: low cutoffs and a coarse mesh (about a second per SCF of a 2-atom cell).
CHEAP_PW = {"scf": {"kpoints_distance": 0.6, "pw": {"parameters": {"SYSTEM": {"ecutwfc": 20.0, "ecutrho": 160.0}}}}}
WALLTIME_S = 600
ACTIVE_STATES = ("created", "waiting", "running")


class ReliabilityError(RuntimeError):
    """The run could not be carried out (services, cluster, daemon); the message says what failed."""


@dataclass
class Environment:
    """Where the run happens: the profile, the pw.x code and which scheduler keeps the record of the jobs."""

    profile: str
    code: str
    scheduler: str  # "slurm" or "direct"
    record: str  # what the jobs are counted from
    work_dir: str
    jobcomp_log: str | None = None
    queue: str | None = None
    lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SchedulerJob:
    """One pw.x job as the scheduler recorded it."""

    job_id: str
    state: str
    workdir: str

    @property
    def calc_uuid(self) -> str | None:
        return calcjob_uuid(self.workdir)


@dataclass
class KillEvent:
    """One round of SIGKILLs: which workers died and how new ones came."""

    at_seconds: float
    killed: list[int]
    replaced_by: list[int]
    how: str
    seconds_to_replace: float
    #: what the run's live processes were doing at the kill (``process_label: process_status``)
    interrupted: list[str] = field(default_factory=list)


def calcjob_uuid(workdir: str) -> str | None:
    """The CalcJob UUID of an AiiDA working directory ``<work_dir>/ab/cd/<rest>`` (``None`` for any other path)."""
    parts = PurePosixPath(workdir).parts
    if len(parts) < 3:
        return None
    candidate = "".join(parts[-3:])
    try:
        return str(uuid_module.UUID(candidate)) if len(parts[-3]) == len(parts[-2]) == 2 else None
    except ValueError:
        return None


# ------------------------------------------------------------------------------------------------ set-up
def unavailable_reason() -> str | None:
    """Why this machine cannot host the run (``None`` when it can): PostgreSQL and RabbitMQ must be running, or
    installed and startable, which needs root (the role and database are created as the postgres user)."""
    from aiida_nanoos.setup import services

    if services.port_open(services.POSTGRES_PORT) and services.port_open(services.RABBITMQ_PORT):
        return None
    missing = [tool for tool in ("pg_ctlcluster", "rabbitmq-server") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (Debian: apt-get install postgresql rabbitmq-server)"
    if not services.is_root():
        return "PostgreSQL / RabbitMQ are down and starting them needs root"
    return None


def use_config_folder(aiida_path: Path) -> None:
    """Point this process (and the daemon it starts) at the AiiDA configuration under ``aiida_path``."""
    from aiida.manage.configuration import reset_config
    from aiida.manage.configuration.settings import AiiDAConfigDir

    aiida_path.mkdir(parents=True, exist_ok=True)
    os.environ["AIIDA_PATH"] = str(aiida_path)
    AiiDAConfigDir.set(aiida_path / ".aiida")
    reset_config()


def profile_name_for(aiida_path: Path) -> str:
    """The profile name of a configuration folder: its database is named after it, so two folders never share one."""
    digest = hashlib.sha1(str(aiida_path.resolve()).encode()).hexdigest()[:8]
    return f"{PROFILE_NAME}-{digest}"


def prepare_environment(profile_name: str = PROFILE_NAME, use_cluster: bool = True) -> Environment:
    """Create or reuse the PostgreSQL + RabbitMQ profile, the pw.x code (SLURM test cluster when it can be set up,
    else localhost with core.direct) and the Si/Ge pseudopotential family; loads the profile."""
    from aiida_nanoos.pseudos import FAMILY_LABEL
    from aiida_nanoos.setup import cluster, services
    from aiida_nanoos.setup.computer import setup_computer, test_cluster_config
    from aiida_nanoos.setup.profile import (
        PW_CODE_LABEL,
        SetupError,
        ensure_code,
        ensure_computer,
        ensure_profile,
        ensure_pseudo_family,
        pw_executable,
    )

    # the daemon is started with `verdi` from this interpreter's environment
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    try:
        report = ensure_profile(postgres=True, name=profile_name)
    except (services.ServiceError, SetupError) as error:
        raise ReliabilityError(f"no PostgreSQL + RabbitMQ profile: {error}") from error
    lines = list(report.lines)
    info, reason = None, ""
    if use_cluster:
        try:
            info = cluster.ensure_test_cluster()
        except (cluster.ClusterUnavailable, cluster.ClusterError) as error:
            reason = str(error)
    if info is not None:
        setup_computer(test_cluster_config(info), report)
        environment = Environment(
            profile=profile_name,
            code="pw@slurm-test",
            scheduler="slurm",
            record=f"SLURM job completion log {info.jobcomp_log}",
            work_dir=info.work_dir,
            jobcomp_log=info.jobcomp_log,
            queue=info.partition,
        )
    else:
        computer = ensure_computer(report)
        ensure_code(report, computer, PW_CODE_LABEL, pw_executable(), "quantumespresso.pw")
        environment = Environment(
            profile=profile_name,
            code=f"{PW_CODE_LABEL}@{computer.label}",
            scheduler="direct",
            record=f"job directories with _scheduler-stdout.txt under {computer.get_workdir()}"
            + (f" (no SLURM test cluster: {reason})" if reason else ""),
            work_dir=computer.get_workdir(),
        )
    ensure_pseudo_family(report, FAMILY_LABEL, ["Ge", "Si"])
    environment.lines = lines + report.lines[len(lines) :]
    return environment


def set_pw_caching(profile_name: str, enabled: bool) -> None:
    """Caching of pw.x CalcJobs on or off in the profile's configuration (the daemon workers read it at start)."""
    from aiida.manage.configuration import get_config

    config = get_config()
    if enabled:
        config.set_option("caching.enabled_for", [PW_CACHE_IDENTIFIER], scope=profile_name)
    else:
        config.unset_option("caching.enabled_for", scope=profile_name)
    config.store()


# ------------------------------------------------------------------------------------------------ daemon
def worker_pids(client) -> list[int]:
    """PIDs of the daemon workers, from the daemon's own statistics (``get_worker_info``)."""
    return sorted(int(pid) for pid in client.get_worker_info(timeout=60).get("info", {}))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def restart_daemon(client, workers: int, timeout: int = 180) -> None:
    """A daemon with exactly ``workers`` fresh workers (stopped first when running: they re-read the config)."""
    if client.is_daemon_running:
        client.stop_daemon(wait=True, timeout=timeout)
    client.start_daemon(number_workers=workers, timeout=timeout)
    wait_until(lambda: len(worker_pids(client)) == workers, timeout, f"{workers} daemon workers")


def kill_workers(client, workers: int, start: float, grace: float = 20.0, timeout: float = 180.0) -> KillEvent:
    """SIGKILL every worker now; wait for ``workers`` new ones (circus respawns them; after ``grace`` seconds
    without, the client API adds the missing ones)."""
    killed = worker_pids(client)
    at = time.perf_counter() - start
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    how, incremented = "respawned by circus", False
    begin = time.perf_counter()
    while True:
        fresh = [pid for pid in worker_pids(client) if pid not in killed and _alive(pid)]
        if len(fresh) >= workers:
            return KillEvent(round(at, 2), killed, fresh, how, round(time.perf_counter() - begin, 2))
        waited = time.perf_counter() - begin
        if waited > grace and not incremented:
            client.increase_workers(workers - len(fresh), timeout=60)
            how, incremented = "added with increase_workers", True
        if waited > timeout:
            raise ReliabilityError(f"no new daemon workers {timeout:.0f} s after killing {killed}")
        time.sleep(0.3)


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ReliabilityError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------------------------------------ workload
def sige_space() -> dict:
    """2-atom diamond cells: Si with Ge on any of its sites and an isotropic strain of up to 2 %."""
    from ase.build import bulk

    from aiida_nanoos.design.spaces import atoms_to_dict

    return {
        "base_structure": atoms_to_dict(bulk("Si", "diamond", a=5.43)),
        "dimensions": [
            {"type": "substitution", "name": "dopant", "host": "Si", "dopants": ["Ge"], "fraction": [0, 1]},
            {"type": "strain", "name": "strain", "ranges": {"iso": [-0.02, 0.02]}, "isotropic": True},
        ],
    }


def dft_evaluator_inputs(environment: Environment, account: str):
    """Band-gap evaluator inputs for the space (one set of cutoffs for Si and Ge), scheduler options included."""
    from aiida import orm

    from aiida_nanoos.workflows.campaign import evaluator_builder

    scheduler_options = {"max_wallclock_seconds": WALLTIME_S}
    if environment.scheduler == "slurm":
        scheduler_options.update(account=account, queue_name=environment.queue)
    return evaluator_builder(
        "band_gap",
        sige_space(),
        code=orm.load_code(environment.code),
        protocol="fast",
        overrides=CHEAP_PW,
        options=scheduler_options,
    )


def dft_campaign_builder(environment: Environment, account: str, budget: int, batch_size: int, seed: int):
    """A random-search campaign with exactly ``budget`` real pw.x evaluations."""
    from aiida_nanoos.workflows.campaign import CampaignWorkChain

    config = {
        "algorithm": "random",
        "batch_size": batch_size,
        "max_iterations": math.ceil(budget / batch_size),
        "budget": budget,
        "seed": seed,
    }
    inputs = dft_evaluator_inputs(environment, account)
    return CampaignWorkChain.get_builder_from_evaluator(sige_space(), "maximize_bandgap", "band_gap", inputs, config)


def small_evaluation_structures(count: int, seed: int) -> list:
    """``count`` distinct 8-atom Si-Ge cells (random site occupations, lattice parameters 5.43-5.66 Å)."""
    from aiida import orm
    from ase.build import bulk

    rng = random.Random(seed)
    structures = []
    for _ in range(count):
        atoms = bulk("Si", "diamond", a=rng.uniform(5.43, 5.66), cubic=True)
        atoms.set_chemical_symbols([rng.choice(("Si", "Ge")) for _ in range(len(atoms))])
        structures.append(orm.StructureData(ase=atoms))
    return structures


def interrupted_work(since) -> list[str]:
    """What the live processes of the run are doing now, counted (``PwCalculation: Waiting for transport task:
    submit x1``)."""
    from collections import Counter

    from aiida import orm

    query = orm.QueryBuilder().append(
        orm.ProcessNode,
        filters={"ctime": {">=": since}, "attributes.process_state": {"in": list(ACTIVE_STATES)}},
        project=["attributes.process_label", "attributes.process_status", "attributes.process_state"],
    )
    counts = Counter(f"{label}: {status or state}" for label, status, state in query.all())
    return [f"{what} x{count}" for what, count in sorted(counts.items())]


def progressed_since(since, moment) -> bool:
    """Whether the run moved on after ``moment``: a process of it was launched or terminated since (a worker that
    merely picked a process up again does not count), so the next kill interrupts new work."""
    from aiida import orm

    launched = orm.QueryBuilder().append(orm.ProcessNode, filters={"ctime": {">": moment}})
    terminated = orm.QueryBuilder().append(
        orm.ProcessNode,
        filters={
            "ctime": {">=": since},
            "mtime": {">": moment},
            "attributes.process_state": {"in": ["finished", "excepted", "killed"]},
        },
    )
    return launched.count() > 0 or terminated.count() > 0


def active_processes(since) -> int:
    """Resumable processes (CalcJobs, WorkChains) created since ``since`` that have not terminated, orphans of replayed
    steps included. A calcfunction cut off by a kill is left ``created``/``running`` for good (it runs inside its
    caller's step, which is replayed): not waited for."""
    from aiida import orm

    count = 0
    for node_class in (orm.CalcJobNode, orm.WorkChainNode):
        query = orm.QueryBuilder().append(
            node_class,
            filters={"ctime": {">=": since}, "attributes.process_state": {"in": list(ACTIVE_STATES)}},
        )
        count += query.count()
    return count


# ------------------------------------------------------------------------------------------------ records
def scheduler_jobs(environment: Environment, account: str, since: float) -> list[SchedulerJob]:
    """The pw.x jobs of this run as the scheduler recorded them (SLURM: completion log lines with this run's
    account; direct: job directories written since ``since``, a POSIX time)."""
    if environment.scheduler == "slurm":
        from aiida_nanoos.setup.cluster import completed_jobs

        # SLURM writes local times without a zone, to the second
        submitted_after = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(math.floor(since)))

        return [
            SchedulerJob(job_id, record.get("JobState", ""), record.get("WorkDir", ""))
            for job_id, record in sorted(completed_jobs(environment.jobcomp_log).items(), key=lambda kv: int(kv[0]))
            if record.get("Account") == account and record.get("SubmitTime", "") >= submitted_after
        ]
    jobs = []
    for stdout in Path(environment.work_dir).glob("*/*/*/_scheduler-stdout.txt"):
        if stdout.stat().st_mtime < since:
            continue
        output = stdout.parent / "aiida.out"
        done = output.exists() and "JOB DONE" in output.read_text(errors="replace")
        jobs.append(SchedulerJob("-", "COMPLETED" if done else "FAILED", str(stdout.parent)))
    return jobs


def jobs_still_queued(environment: Environment, account: str) -> int:
    """Jobs of this run SLURM still holds (pending or running); 0 for the direct scheduler."""
    if environment.scheduler != "slurm":
        return 0
    result = subprocess.run(["squeue", "-h", "-A", account, "-o", "%i"], capture_output=True, text=True, timeout=30)
    return len(result.stdout.split())


def _call_label(node) -> str:
    from aiida import orm

    return node.base.links.get_incoming(node_class=orm.ProcessNode).one().link_label


def candidate_of(calc) -> tuple[int, str] | None:
    """(campaign pk, candidate id) of a CalcJob run for a campaign evaluation, via the ``evaluate_<id>`` call link."""
    child, caller = calc, calc.caller
    while caller is not None:
        if caller.process_label == "CampaignWorkChain":
            return caller.pk, _call_label(child).removeprefix("evaluate_")
        child, caller = caller, caller.caller
    return None


def recorded_evaluators(campaign) -> dict[str, object]:
    """Candidate id -> the evaluator whose ``properties`` the campaign recorded (input of ``record_iteration_k``)."""
    recorded = {}
    for step in campaign.called:
        if step.process_label != "record_iteration":
            continue
        for link in step.base.links.get_incoming().all():
            if link.link_label.startswith("properties_") and link.node.creator is not None:
                recorded[link.link_label.removeprefix("properties_")] = link.node.creator.caller
    return recorded


def used_calculations(evaluator) -> set[str]:
    """UUIDs of the pw.x CalcJobs an evaluation used: one per (caller, call link label). A restart handler's new run
    has a new label (``iteration_02``); a second CalcJob under the same label is a submission replayed after its
    caller's worker died (the caller went on with the later one), so its job is a duplicate."""
    launched: dict[tuple[int, str], list] = {}
    for node in evaluator.called_descendants:
        if node.process_label == "PwCalculation":
            launched.setdefault((node.caller.pk, _call_label(node)), []).append(node)
    return {max(nodes, key=lambda n: n.ctime).uuid for nodes in launched.values()}


def audit_campaign(campaign, budget: int, jobs: list[SchedulerJob]) -> dict:
    """Expected / done / duplicated / lost evaluations of one campaign, counted from the scheduler's jobs."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    jobs_of: dict[str, list[SchedulerJob]] = {}
    for job in jobs:
        if job.calc_uuid is None:
            continue
        try:
            calc = orm.load_node(job.calc_uuid)
        except NotExistent:  # a job of another profile on the same cluster account: not ours
            continue
        owner = candidate_of(calc)
        if owner is not None and owner[0] == campaign.pk:
            jobs_of.setdefault(owner[1], []).append(job)
    recorded = recorded_evaluators(campaign)
    records = campaign.outputs.state["candidates"] if "state" in campaign.outputs else []
    evaluator_processes: dict[str, int] = {}
    for link in campaign.base.links.get_outgoing(node_class=orm.WorkflowNode).all():
        if link.link_label.startswith("evaluate_"):
            cid = link.link_label.removeprefix("evaluate_")
            evaluator_processes[cid] = evaluator_processes.get(cid, 0) + 1
    done, duplicated, details = 0, 0, []
    for cid in sorted(set(jobs_of) | {r["id"] for r in records}):
        evaluator = recorded.get(cid)
        used = used_calculations(evaluator) if evaluator is not None else set()
        cid_jobs = jobs_of.get(cid, [])
        backed = {j.calc_uuid for j in cid_jobs if j.calc_uuid in used}
        finished = any(j.state == "COMPLETED" and j.calc_uuid in used for j in cid_jobs)
        status = next((r["status"] for r in records if r["id"] == cid), "missing")
        extra = len(cid_jobs) - len(backed)
        duplicated += extra
        if status == "ok" and finished:
            done += 1
        if extra or status != "ok" or not finished or evaluator_processes.get(cid, 0) > 1:
            details.append(
                {
                    "candidate": cid,
                    "status": status,
                    "scheduler_jobs": [j.job_id for j in cid_jobs],
                    "evaluator_processes": evaluator_processes.get(cid, 0),
                }
            )
    return {
        "pk": campaign.pk,
        "finished_ok": campaign.is_finished_ok,
        "exit_status": campaign.exit_status,
        "expected": budget,
        "done": done,
        "duplicated": duplicated,
        "lost": max(0, budget - done),
        "evaluators_started_twice": sum(1 for n in evaluator_processes.values() if n > 1),
        "scheduler_jobs": sorted((j.job_id for js in jobs_of.values() for j in js), key=_job_order),
        "problems": details,
    }


def _job_order(job_id: str) -> tuple[int, str]:
    return (int(job_id), job_id) if job_id.isdigit() else (0, job_id)


def audit_small_evaluations(nodes: list) -> dict:
    """Standalone analytic evaluations: each must finish ok with exactly one finished model calcfunction (a run cut
    off by a kill, left ``created`` for ever, is counted as interrupted, not as a second evaluation)."""
    done = duplicated = interrupted = 0
    for node in nodes:
        runs = [n for n in node.called if n.process_label == "analytic_alloy_properties"]
        finished = sum(1 for n in runs if n.is_finished_ok)
        duplicated += max(0, finished - 1)
        interrupted += sum(1 for n in runs if not n.is_terminated)
        done += int(node.is_finished_ok and finished >= 1)
    return {
        "expected": len(nodes),
        "done": done,
        "duplicated": duplicated,
        "lost": len(nodes) - done,
        "interrupted_calcfunctions": interrupted,
    }


def check_pw_caching(environment: Environment, account: str, campaign, jobs: list[SchedulerJob], timeout: float):
    """Submit the evaluation of a candidate the campaign already evaluated again: its pw.x must be a cache hit
    (``get_cache_source`` names the original) and the scheduler must have run one job for that structure."""
    from aiida.engine import submit

    original = next(e for e in recorded_evaluators(campaign).values() if e is not None and e.is_finished_ok)
    structure = original.inputs.structure
    builder = dft_evaluator_inputs(environment, account)
    builder.structure = structure
    again = submit(builder)
    wait_until(lambda: again.is_terminated, timeout, f"the repeated evaluation {again.pk}")
    calcs = [n for n in again.called_descendants if n.process_label == "PwCalculation"]
    sources = [c.base.caching.get_cache_source() for c in calcs]
    first_calcs = {n.uuid for n in original.called_descendants if n.process_label == "PwCalculation"}
    same_structure = [
        j
        for j in jobs
        if j.calc_uuid in first_calcs or j.calc_uuid in {c.uuid for c in calcs}  # a cache hit adds no job
    ]
    return {
        "repeated_evaluation_pk": again.pk,
        "finished_ok": again.is_finished_ok,
        "pw_calculations": len(calcs),
        "cache_sources": sources,
        "from_cache": bool(calcs) and all(source in first_calcs for source in sources),
        "scheduler_jobs_for_structure": len(same_structure),
        "same_properties": again.is_finished_ok
        and again.outputs.properties.get_dict() == original.outputs.properties.get_dict(),
    }


def repair_stuck_processes(client, profile_name: str, workers: int) -> str:
    """What ``verdi process repair`` does, with aiida-core's public API: with the daemon stopped (so no task is held
    by a worker), every active CalcJob or WorkChain without a task in the broker's queue (its task died with a worker
    between saving its checkpoint and sending it) gets a new one; then the daemon starts again."""
    from aiida import orm
    from aiida.engine.processes.control import get_active_processes, get_process_tasks, revive_processes
    from aiida.manage import get_manager

    client.stop_daemon(wait=True, timeout=180)
    tasks = set(get_process_tasks(get_manager().get_broker()))
    stuck = [
        node
        for node in get_active_processes()
        if node.pk not in tasks and isinstance(node, orm.CalcJobNode | orm.WorkChainNode)
    ]
    revive_processes(stuck)
    restart_daemon(client, workers)
    return f"revived {', '.join(f'{n.process_label}<{n.pk}>' for n in stuck) or 'nothing'}"


def repair_stalled_run(client, profile_name: str, workers: int, since, stall_seconds: float, log) -> dict:
    """Log what is stuck, repair (:func:`repair_stuck_processes`) and say what was done."""
    stuck = interrupted_work(since)
    log(f"nothing moved for {stall_seconds:.0f} s ({'; '.join(stuck)}): verdi process repair")
    said = repair_stuck_processes(client, profile_name, workers)
    log(f"    {said}")
    return {"stuck": stuck, "repair": said}


def wait_repairing(client, profile_name, workers, since, watched, timeout, stall_seconds, log) -> list[dict]:
    """Wait until the watched processes and every process of the run terminated; when nothing was launched or
    terminated for ``stall_seconds``, repair (:func:`repair_stuck_processes`) and go on. Returns the repairs."""
    from aiida.common import timezone

    repairs: list[dict] = []
    deadline = time.monotonic() + timeout
    last_check, last_progress = timezone.now(), time.monotonic()
    while not (all(n.is_terminated for n in watched) and active_processes(since) == 0):
        if time.monotonic() > deadline:
            raise ReliabilityError(f"timed out after {timeout:.0f} s waiting for the run to finish")
        time.sleep(2)
        if progressed_since(since, last_check):
            last_check, last_progress = timezone.now(), time.monotonic()
        elif time.monotonic() - last_progress > stall_seconds:
            repairs.append(repair_stalled_run(client, profile_name, workers, since, stall_seconds, log))
            last_check, last_progress = timezone.now(), time.monotonic()
    return repairs


# ------------------------------------------------------------------------------------------------ the run
def run_reliability(
    environment: Environment,
    kills: int = 10,
    workers: int = 2,
    campaigns: int = 1,
    budget: int = 20,
    batch_size: int = 2,
    evaluations: int = 0,
    caching: bool = False,
    seed: int | None = None,
    gap_seconds: tuple[float, float] = (2.0, 12.0),
    timeout: float = 3600.0,
    stall_seconds: float = 300.0,
    log: Callable[[str], None] = lambda line: None,
) -> dict:
    """Submit the workload, kill every worker ``kills`` times at random moments while it runs, wait for the end and
    count from the scheduler's record. Returns the figures (see the module docstring)."""
    from aiida.common import timezone
    from aiida.engine import submit
    from aiida.engine.daemon.client import get_daemon_client

    from aiida_nanoos.workflows.evaluators.analytic import AnalyticAlloyEvaluatorWorkChain

    seed = seed if seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    rng = random.Random(seed)
    account = f"nanoos-rel-{seed}-{uuid_module.uuid4().hex[:6]}"  # this run's jobs only, even with a fixed seed
    set_pw_caching(environment.profile, caching)
    client = get_daemon_client(environment.profile)
    log(f"starting the daemon with {workers} workers (pw.x caching {'on' if caching else 'off'})")
    restart_daemon(client, workers)

    since, since_posix, start = timezone.now(), time.time(), time.perf_counter()
    main = [submit(dft_campaign_builder(environment, account, budget, batch_size, seed + k)) for k in range(campaigns)]
    small = [
        submit(AnalyticAlloyEvaluatorWorkChain, structure=structure)
        for structure in small_evaluation_structures(evaluations, seed)
    ]
    log(
        f"submitted {campaigns} campaign(s) x {budget} pw.x evaluations on {environment.code} "
        f"({', '.join(str(n.pk) for n in main)}) and {evaluations} small evaluations; SLURM account {account}"
    )
    watched = main + small
    events: list[KillEvent] = []
    repairs: list[dict] = []
    last_kill = since
    while len(events) < kills and not all(n.is_terminated for n in watched):
        # a random moment once the (new) workers have done something, so every kill interrupts real work
        waiting_since = time.monotonic()
        while not progressed_since(since, last_kill) and not all(n.is_terminated for n in watched):
            if time.monotonic() - waiting_since > stall_seconds:
                repairs.append(repair_stalled_run(client, environment.profile, workers, since, stall_seconds, log))
                last_kill, waiting_since = timezone.now(), time.monotonic()
            time.sleep(0.5)
        deadline = time.monotonic() + rng.uniform(*gap_seconds)
        while time.monotonic() < deadline and not all(n.is_terminated for n in watched):
            time.sleep(0.2)
        if all(n.is_terminated for n in watched):
            break
        interrupted = interrupted_work(since)
        event = kill_workers(client, workers, start)
        event.interrupted = interrupted
        last_kill = timezone.now()
        events.append(event)
        log(f"kill {len(events)}/{kills} at {event.at_seconds:.1f} s: {event.killed} -> {event.replaced_by}")
        log(f"    interrupted: {'; '.join(interrupted) or 'nothing live'}")
    repairs += wait_repairing(client, environment.profile, workers, since, watched, timeout, stall_seconds, log)
    wait_until(lambda: jobs_still_queued(environment, account) == 0, 600, "the scheduler queue to empty", 2)
    wall = time.perf_counter() - start

    jobs = scheduler_jobs(environment, account, since_posix)
    audits = [audit_campaign(node, budget, jobs) for node in main]
    small_audit = audit_small_evaluations(small)
    figures = {
        "scheduler": environment.scheduler,
        "code": environment.code,
        "record": environment.record,
        "account": account,
        "seed": seed,
        "workers": workers,
        "kills_requested": kills,
        "kills": len(events),
        "kill_events": [asdict(e) for e in events],
        "campaigns": audits,
        "campaigns_finished_ok": sum(a["finished_ok"] for a in audits),
        "evaluations_expected": sum(a["expected"] for a in audits),
        "evaluations_done": sum(a["done"] for a in audits),
        "evaluations_duplicated": sum(a["duplicated"] for a in audits),
        "evaluations_lost": sum(a["lost"] for a in audits),
        "small_evaluations": small_audit,
        "scheduler_jobs_submitted": len(jobs),
        "scheduler_job_ids": [j.job_id for j in jobs],
        "scheduler_jobs_not_completed": [j.job_id for j in jobs if j.state != "COMPLETED"],
        "wall_seconds": round(wall, 1),
        "repairs": repairs,
    }
    if caching and main:
        log("repeating one DFT evaluation with caching on")
        figures["caching"] = check_pw_caching(environment, account, main[0], jobs, timeout=600)
        figures["scheduler_jobs_after_cache_check"] = len(scheduler_jobs(environment, account, since_posix))
    survived = (
        figures["campaigns_finished_ok"] == campaigns
        and figures["evaluations_lost"] == 0
        and figures["evaluations_duplicated"] == 0
        and small_audit["lost"] == small_audit["duplicated"] == 0
    )
    figures["kills_survived"] = len(events) if survived else 0
    return figures


def print_figures(figures: dict) -> None:
    campaigns = figures["campaigns"]
    click.echo(
        f"Reliability: {len(campaigns)} campaign(s) of real pw.x on {figures['code']} ({figures['scheduler']}), "
        f"{figures['workers']} daemon workers, seed {figures['seed']}"
    )
    click.echo(f"  record of the pw.x runs        {figures['record']}")
    click.echo(
        f"  kills survived                 {figures['kills_survived']}/{figures['kills']} "
        f"(asked {figures['kills_requested']})"
    )
    for event in figures["kill_events"]:
        click.echo(
            f"    at {event['at_seconds']:7.1f} s killed {event['killed']}, new {event['replaced_by']} "
            f"in {event['seconds_to_replace']:.1f} s ({event['how']})"
        )
        click.echo(f"      interrupting {'; '.join(event['interrupted']) or 'nothing live'}")
    click.echo(f"  campaigns finished ok          {figures['campaigns_finished_ok']}/{len(campaigns)}")
    click.echo(
        f"  evaluations expected / done / duplicated / lost   {figures['evaluations_expected']} / "
        f"{figures['evaluations_done']} / {figures['evaluations_duplicated']} / {figures['evaluations_lost']}"
    )
    small = figures["small_evaluations"]
    if small["expected"]:
        click.echo(
            f"  small evaluations expected / done / duplicated / lost   {small['expected']} / {small['done']} / "
            f"{small['duplicated']} / {small['lost']}"
        )
    click.echo(f"  scheduler jobs submitted       {figures['scheduler_jobs_submitted']} (account {figures['account']})")
    click.echo(f"    job ids                      {' '.join(figures['scheduler_job_ids'])}")
    for audit in campaigns:
        for problem in audit["problems"]:
            click.echo(f"  campaign {audit['pk']}: {problem}")
    if "caching" in figures:
        cache = figures["caching"]
        click.echo(
            f"  caching: repeated evaluation {cache['repeated_evaluation_pk']} from cache {cache['from_cache']}, "
            f"scheduler jobs for that structure {cache['scheduler_jobs_for_structure']}, "
            f"jobs before/after {figures['scheduler_jobs_submitted']}/{figures['scheduler_jobs_after_cache_check']}"
        )
    click.echo(f"  repairs (verdi process repair) {len(figures['repairs'])}")
    for repair in figures["repairs"]:
        click.echo(f"    stuck: {'; '.join(repair['stuck'])}")
    click.echo(f"  wall time                      {figures['wall_seconds']:.1f} s")


@click.command()
@click.option("--kills", default=10, show_default=True, help="Times every daemon worker is killed with SIGKILL.")
@click.option("--workers", default=2, show_default=True, help="Daemon workers.")
@click.option("--campaigns", default=1, show_default=True, help="Campaigns with real pw.x evaluations run at once.")
@click.option("--budget", default=20, show_default=True, help="pw.x evaluations per campaign.")
@click.option(
    "--evaluations", default=0, show_default=True, help="Small standalone evaluations (analytic model) on top."
)
@click.option(
    "--caching/--no-caching",
    default=None,
    help="Cache pw.x and check a repeated DFT evaluation is not run again [default: on with more than one campaign "
    "or small evaluations].",
)
@click.option("--seed", type=int, default=None, help="Seed of the kill moments and the campaigns (default: random).")
@click.option(
    "--aiida-path",
    type=click.Path(file_okay=False, path_type=Path),
    default=lambda: Path(os.environ.get("TMPDIR", "/tmp")) / "aiida-nanoos-reliability",
    show_default="$TMPDIR/aiida-nanoos-reliability",
    help="AIIDA_PATH of the benchmark's own PostgreSQL + RabbitMQ profile.",
)
@click.option("--local", is_flag=True, help="core.direct on localhost even when the SLURM test cluster can be used.")
@options.json_output
def command(
    kills: int,
    workers: int,
    campaigns: int,
    budget: int,
    evaluations: int,
    caching: bool | None,
    seed: int | None,
    aiida_path: Path,
    local: bool,
    as_json: bool,
) -> None:
    """Kill every daemon worker at random moments while campaigns of real pw.x run; count from the scheduler."""
    use_config_folder(aiida_path)
    try:
        environment = prepare_environment(profile_name=profile_name_for(aiida_path), use_cluster=not local)
        if caching is None:
            caching = campaigns > 1 or evaluations > 0
        log = lambda line: click.echo(line, err=True)  # noqa: E731 - progress on stderr, figures on stdout
        for line in environment.lines:
            log(f"  {line}")
        figures = run_reliability(
            environment,
            kills=kills,
            workers=workers,
            campaigns=campaigns,
            budget=budget,
            evaluations=evaluations,
            caching=caching,
            seed=seed,
            log=log,
        )
    except ReliabilityError as error:
        raise click.ClickException(str(error)) from error
    finally:
        from aiida.engine.daemon.client import get_daemon_client

        try:
            client = get_daemon_client()
            if client.is_daemon_running:
                client.stop_daemon(wait=True, timeout=180)
        except Exception:  # noqa: BLE001 - no profile was loaded: there is no daemon to stop
            pass
    if as_json:
        click.echo(json.dumps(figures))
        return
    print_figures(figures)
