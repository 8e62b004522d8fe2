"""Crash recovery and load (``aiida-nanoos benchmark reliability``, the same code): every daemon worker SIGKILLed at
random moments while a campaign of real pw.x runs on a PostgreSQL + RabbitMQ profile; three campaigns plus small
evaluations at once with pw.x caching. Evaluations are counted from the scheduler's own record (SLURM's job
completion log on the test cluster, else the job directories of core.direct), never from AiiDA alone."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from aiida_nanoos.benchmarks import reliability
from aiida_nanoos.setup import services

pytestmark = pytest.mark.slow


def test_services_come_up_wherever_they_can():
    """Never skipped: as root with PostgreSQL and RabbitMQ installed (this machine) both must be running after
    ``ensure_*``, so a skip below can only mean a machine without them or without root, never a set-up bug."""
    installed = all(shutil.which(tool) for tool in ("pg_ctlcluster", "rabbitmq-server"))
    if not (installed and services.is_root()):
        reason = reliability.unavailable_reason()
        assert reason is None or "not installed" in reason or "root" in reason
        return
    assert reliability.unavailable_reason() is None
    services.ensure_postgres()
    services.ensure_rabbitmq(Path(os.environ["AIIDA_PATH"]) / "nanoos-rabbitmq")
    assert services.port_open(services.POSTGRES_PORT) and services.port_open(services.RABBITMQ_PORT)


@pytest.fixture(scope="module")
def environment(aiida_profile):
    """The PostgreSQL + RabbitMQ profile of the run (in the test's AIIDA_PATH), deleted with its database after."""
    from aiida.manage.configuration import get_config, load_profile

    reason = reliability.unavailable_reason()
    if reason:
        pytest.skip(f"no PostgreSQL + RabbitMQ profile: {reason}")
    name = f"nanoos-reliability-test-{os.getpid()}"
    try:
        yield reliability.prepare_environment(profile_name=name)
    finally:
        from aiida.engine.daemon.client import get_daemon_client

        client = get_daemon_client(name)
        if client.is_daemon_running:
            client.stop_daemon(wait=True, timeout=180)
        load_profile(aiida_profile.name, allow_switch=True)
        get_config().delete_profile(name, delete_storage=False)
        services.drop_postgres_database(f"aiida-{name}", f"aiida-{name}")  # as setup.profile named them


def test_campaign_survives_sigkilled_workers(environment):
    figures = reliability.run_reliability(
        environment,
        kills=3,
        workers=2,
        campaigns=1,
        budget=4,
        seed=101,
        gap_seconds=(1.0, 5.0),
        timeout=900,
        stall_seconds=120,
        log=print,
    )
    assert figures["kills"] == 3  # every kill landed while the campaign ran
    for event in figures["kill_events"]:
        assert len(event["killed"]) == len(event["replaced_by"]) == 2
        assert not set(event["killed"]) & set(event["replaced_by"])
    (campaign,) = figures["campaigns"]
    assert campaign["finished_ok"], campaign
    # nothing runs twice; an evaluation whose process was stored but never started before a kill can still be lost
    # (revived by the repair, then failed: issue 10, open), so a loss is only counted here, never hidden
    assert campaign["duplicated"] == 0 and campaign["done"] + campaign["lost"] == campaign["expected"] == 4
    assert figures["kills_survived"] == 3
    # at most one pw.x job per candidate in the scheduler's record, all completed
    assert figures["scheduler_jobs_submitted"] == campaign["done"] and not figures["scheduler_jobs_not_completed"]
    assert sorted(campaign["scheduler_jobs"]) == sorted(figures["scheduler_job_ids"])

    # the count can fail: a job the scheduler ran twice is a duplicate, a job missing from the record a loss
    from aiida import orm

    jobs = reliability.scheduler_jobs(environment, figures["account"], 0.0)
    node = orm.load_node(campaign["pk"])
    twice = reliability.audit_campaign(node, 4, [*jobs, dataclasses.replace(jobs[0], job_id="rerun")])
    done = campaign["done"]
    assert (twice["done"], twice["duplicated"], twice["lost"]) == (done, 1, 4 - done)
    missing = reliability.audit_campaign(node, 4, jobs[1:])
    assert (missing["done"], missing["duplicated"], missing["lost"]) == (done - 1, 0, 5 - done)


def test_three_campaigns_and_small_evaluations_at_once_with_caching(environment):
    figures = reliability.run_reliability(
        environment,
        kills=1,
        workers=2,
        campaigns=3,
        budget=2,
        evaluations=30,
        caching=True,
        seed=202,
        gap_seconds=(3.0, 6.0),
        timeout=900,
        stall_seconds=120,
        log=print,
    )
    assert [c["finished_ok"] for c in figures["campaigns"]] == [True, True, True]
    assert figures["evaluations_expected"] == figures["evaluations_done"] + figures["evaluations_lost"] == 6
    assert figures["evaluations_duplicated"] == 0  # a loss: see test_campaign_survives_sigkilled_workers
    small = figures["small_evaluations"]
    assert (small["expected"], small["done"], small["duplicated"], small["lost"]) == (30, 30, 0, 0)
    assert figures["scheduler_jobs_submitted"] == figures["evaluations_done"]
    cache = figures["caching"]
    assert cache["finished_ok"] and cache["same_properties"]
    assert cache["pw_calculations"] == 1 and cache["from_cache"], cache
    # the repeated evaluation reached no scheduler: one job for that structure, none added
    assert cache["scheduler_jobs_for_structure"] == 1
    assert figures["scheduler_jobs_after_cache_check"] == figures["scheduler_jobs_submitted"]
