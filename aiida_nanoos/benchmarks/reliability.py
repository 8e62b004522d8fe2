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
import sys
import time
import uuid as uuid_module
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import click

from aiida_nanoos.benchmarks import options
from aiida_nanoos.benchmarks.reliability_daemon import (  # noqa: F401 (used by the tests)
    KillEvent,
    ReliabilityError,
    _alive,
    kill_workers,
    restart_daemon,
    wait_until,
    worker_pids,
)
from aiida_nanoos.benchmarks.reliability_records import (  # noqa: F401 (used by the tests)
    Environment,
    SchedulerJob,
    _call_label,
    _job_order,
    audit_campaign,
    audit_small_evaluations,
    calcjob_uuid,
    candidate_of,
    jobs_still_queued,
    recorded_evaluators,
    scheduler_jobs,
    used_calculations,
)

PROFILE_NAME, PW_BASE_DUPLICATES = "nanoos-reliability", "evaluations_duplicated_inside_pw_base"
PW_CACHE_IDENTIFIER = "aiida.calculations:quantumespresso.pw"
#: Tiny pw.x settings: low cutoffs and a coarse mesh (about a second per SCF of a 2-atom cell).
CHEAP_PW = {"scf": {"kpoints_distance": 0.6, "pw": {"parameters": {"SYSTEM": {"ecutwfc": 20.0, "ecutrho": 160.0}}}}}
WALLTIME_S = 600
ACTIVE_STATES = ("created", "waiting", "running")


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
    from aiida.engine.processes.control import get_active_processes, get_process_tasks
    from aiida.manage import get_manager

    client.stop_daemon(wait=True, timeout=180)
    tasks = set(get_process_tasks(get_manager().get_broker()))
    stuck = [
        node
        for node in get_active_processes()
        if node.pk not in tasks and isinstance(node, orm.CalcJobNode | orm.WorkChainNode)
    ]
    for node in stuck:  # a new task in the broker's queue, taken by the restarted workers (as verdi process repair)
        get_manager().get_process_controller().continue_process(node.pk)
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
        PW_BASE_DUPLICATES: sum(a["duplicated_inside_pw_base"] for a in audits),
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
    click.echo(f"    of them a pw.x iteration submitted twice by PwBaseWorkChain  {figures[PW_BASE_DUPLICATES]}")
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
