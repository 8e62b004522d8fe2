"""What the reliability benchmark counts, read from the scheduler's own record and traced back to the campaigns
(``benchmark reliability``): scheduler jobs, the candidate each pw.x run evaluated, duplicated and lost evaluations,
and the caching check."""

from __future__ import annotations

import math
import subprocess
import time
import uuid as uuid_module
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

PROFILE_NAME = "nanoos-reliability"
PW_CACHE_IDENTIFIER = "aiida.calculations:quantumespresso.pw"
CHEAP_PW = {"scf": {"kpoints_distance": 0.6, "pw": {"parameters": {"SYSTEM": {"ecutwfc": 20.0, "ecutrho": 160.0}}}}}
WALLTIME_S = 600
ACTIVE_STATES = ("created", "waiting", "running")


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


def replayed_by_pw_base(calc) -> bool:
    """Whether this pw.x CalcJob is a second submission of the same iteration by aiida-quantumespresso's
    ``PwBaseWorkChain`` (another CalcJob under the same call link label of the same caller)."""
    caller = calc.caller
    if caller is None or caller.process_label != "PwBaseWorkChain":
        return False
    label = _call_label(calc)
    return sum(1 for node in caller.called if node.process_label == "PwCalculation" and _call_label(node) == label) > 1


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
    launched: dict[str, list] = {}  # candidate id -> its evaluator processes
    for link in campaign.base.links.get_outgoing(node_class=orm.WorkflowNode).all():
        if link.link_label.startswith("evaluate_"):
            launched.setdefault(link.link_label.removeprefix("evaluate_"), []).append(link.node)
    evaluator_processes = {cid: len(nodes) for cid, nodes in launched.items()}
    done, duplicated, replayed_upstream, details = 0, 0, 0, []
    for cid in sorted(set(jobs_of) | {r["id"] for r in records}):
        # a failed evaluation has no recorded properties: its jobs are still its own (lost, not duplicated)
        evaluator = recorded.get(cid) or max(launched.get(cid, []), key=lambda node: node.pk, default=None)
        used = used_calculations(evaluator) if evaluator is not None else set()
        cid_jobs = jobs_of.get(cid, [])
        backed = {j.calc_uuid for j in cid_jobs if j.calc_uuid in used}
        finished = any(j.state == "COMPLETED" and j.calc_uuid in used for j in cid_jobs)
        status = next((r["status"] for r in records if r["id"] == cid), "missing")
        extra = len(cid_jobs) - len(backed)
        unused = {j.calc_uuid for j in cid_jobs} - backed
        upstream = sum(1 for uuid in unused if replayed_by_pw_base(orm.load_node(uuid)))
        duplicated += extra
        replayed_upstream += upstream
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
        #: of the duplicated: pw.x runs submitted twice by a PwBaseWorkChain (its ``run_process`` step replayed after
        #: the worker died, before its checkpoint; workflows.common.ReplaySafeRestart prevents it)
        "duplicated_inside_pw_base": replayed_upstream,
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
