"""Campaigns on the daemon: ``verdi process pause|play|kill`` and a daemon restart in the middle of a campaign."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiida.engine import submit

from tests.campaign_fixtures import (  # noqa: F401
    campaign_builder,
    daemon,
    daemon_profile,
    iteration_results,
    replay_campaign,
    wait_for,
)


def verdi(profile, *args: str) -> str:
    """The real ``verdi`` command on the test profile (its configuration folder is the test's AIIDA_PATH)."""
    from aiida.manage.configuration import get_config

    env = {**os.environ, "AIIDA_PATH": str(Path(get_config().dirpath).parent)}
    exe = Path(sys.executable).parent / "verdi"
    result = subprocess.run([str(exe), "-p", profile.name, *args], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def recorded_iterations(node) -> int:
    return sum(1 for n in node.called if n.process_label == "record_iteration" and n.is_finished_ok)


def test_pause_play_and_kill_through_verdi(daemon, daemon_profile):  # noqa: F811
    node = submit(campaign_builder({"algorithm": "random", "batch_size": 2, "max_iterations": 4, "seed": 4}))
    wait_for(lambda: recorded_iterations(node) >= 1, 180, "the first iteration")
    verdi(daemon_profile, "process", "pause", str(node.pk))
    wait_for(lambda: node.paused, 60, "the campaign to pause")
    frozen = recorded_iterations(node)
    time.sleep(5)  # several iterations' worth of time: a paused campaign does not advance
    assert node.paused and not node.is_terminated
    assert recorded_iterations(node) == frozen < 4
    verdi(daemon_profile, "process", "play", str(node.pk))
    wait_for(lambda: node.is_terminated, 300, "the campaign to finish")
    assert node.is_finished_ok, node.exit_message
    assert node.outputs.statistics["iterations"] == 4
    assert node.outputs.statistics["total_candidates_evaluated"] == 8

    killed = submit(campaign_builder({"algorithm": "random", "batch_size": 2, "max_iterations": 20, "seed": 5}))
    wait_for(lambda: recorded_iterations(killed) >= 1, 180, "the first iteration")
    verdi(daemon_profile, "process", "kill", str(killed.pk))
    wait_for(lambda: killed.is_terminated, 120, "the campaign to be killed")
    assert killed.is_killed
    assert recorded_iterations(killed) < 20
    assert all(child.is_terminated for child in killed.called_descendants)


def test_campaign_survives_a_daemon_restart_with_the_same_decisions(daemon, daemon_profile):  # noqa: F811
    config = {"algorithm": "genetic", "batch_size": 2, "max_iterations": 4, "seed": 11}
    node = submit(campaign_builder(config))
    wait_for(lambda: recorded_iterations(node) >= 2, 240, "two iterations")
    daemon.stop_daemon(wait=True, timeout=120)
    wait_for(lambda: not daemon.is_daemon_running, 60, "the daemon to stop")
    assert not node.is_terminated  # the campaign waits in its checkpoint
    stopped_at = recorded_iterations(node)
    assert 2 <= stopped_at < 4
    daemon.start_daemon(number_workers=1, timeout=120)
    wait_for(lambda: node.is_terminated, 300, "the campaign to finish after the restart")
    assert node.is_finished_ok, node.exit_message

    records = node.outputs.state["candidates"]
    assert [r["id"] for r in records] == [f"i{k:03d}c{j:02d}" for k in range(1, 5) for j in range(2)]
    assert sorted(iteration_results(node)) == [f"iteration_{k:03d}" for k in range(1, 5)]
    # exactly the decisions of an uninterrupted campaign: same candidates, parents and values
    reference = replay_campaign(config)
    assert [(r["formula"], r["generation_method"], r["parents"]) for r in records] == [
        (r["formula"], r["generation_method"], r["parents"]) for r in reference
    ]
    assert [r["value"] for r in records] == pytest.approx([r["value"] for r in reference], rel=1e-9)
    # every candidate structure of the state is the one evaluated, once
    evaluated = [link.node for link in node.base.links.get_outgoing().all() if link.link_label.startswith("evaluate_")]
    assert sorted(e.inputs.structure.uuid for e in evaluated) == sorted(r["uuid"] for r in records)
