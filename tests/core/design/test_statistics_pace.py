"""The pace of a campaign and its time to finish (:func:`aiida_nanoos.design.statistics.time_to_finish`): plain
numbers in, the limit that comes first out."""

from __future__ import annotations

import math

import pytest

from aiida_nanoos.design.config import CampaignConfig
from aiida_nanoos.design.records import CandidateRecord
from aiida_nanoos.design.state import CampaignState
from aiida_nanoos.design.statistics import time_to_finish


def state_after(iterations: int, batch: int, ml_per_batch: int = 0, converged: str | None = None) -> CampaignState:
    """A state with ``iterations`` recorded batches of ``batch`` candidates, ``ml_per_batch`` of each predicted."""
    candidates = [
        CandidateRecord(id=f"i{k}c{j}", iteration=k, status="ok", source="ml" if j < ml_per_batch else "dft")
        for k in range(iterations)
        for j in range(batch)
    ]
    return CampaignState(iteration=iterations, candidates=candidates, converged=converged)


def test_max_iterations_comes_first_without_a_budget():
    config = CampaignConfig(batch_size=3, max_iterations=10)
    pace = time_to_finish(state_after(4, 3), config, [50.0, 10.0, 12.0, 11.0])
    assert pace["seconds_per_iteration_median"] == pytest.approx(11.5)  # the slow first iteration does not set it
    assert pace["seconds_per_iteration_last"] == 11.0
    assert pace["evaluations_per_hour"] == pytest.approx(12 / 83.0 * 3600)
    assert pace["iterations_left"] == {"max_iterations": 6}
    assert pace["limit"] == "max_iterations" and pace["iterations_to_finish"] == 6
    assert pace["seconds_left"] == pytest.approx(6 * 11.5)


def test_the_evaluation_budget_stops_first_when_it_is_smaller():
    config = CampaignConfig(batch_size=3, max_iterations=10, budget=16)
    pace = time_to_finish(state_after(2, 3), config, [20.0, 20.0])
    # 10 of 16 evaluations left: 4 more batches of 3 (the last one cut to 1) before max_iterations' 8
    assert pace["iterations_left"] == {"max_iterations": 8, "budget": 4}
    assert pace["limit"] == "budget" and pace["seconds_left"] == pytest.approx(80.0)


def test_a_tie_is_given_to_the_budget_as_the_convergence_check_reports_it():
    config = CampaignConfig(batch_size=2, max_iterations=4, budget=8)
    pace = time_to_finish(state_after(2, 2), config, [5.0, 7.0])
    assert pace["iterations_left"] == {"max_iterations": 2, "budget": 2} and pace["limit"] == "budget"


def test_a_property_model_campaign_spends_its_dft_budget_at_the_pace_seen_so_far():
    config = CampaignConfig(
        algorithm="active_learning",
        evaluation_method="ml_only",
        batch_size=4,
        max_iterations=50,
        budget=12,
        property_model={"model": "m"},
    )
    pace = time_to_finish(state_after(3, 4, ml_per_batch=3), config, [2.0, 2.0, 2.0])
    assert pace["iterations_left"]["budget"] == 9  # one DFT run per iteration, 9 left
    assert pace["evaluations_per_hour"] == pytest.approx(12 / 6.0 * 3600)  # every evaluated candidate counts
    no_dft = time_to_finish(state_after(3, 4, ml_per_batch=4), config, [2.0, 2.0, 2.0])
    assert no_dft["iterations_left"]["budget"] is None and no_dft["limit"] == "max_iterations"


def test_the_cpu_hour_budget_at_the_cpu_hours_per_iteration_so_far():
    config = CampaignConfig(batch_size=2, max_iterations=100)
    pace = time_to_finish(state_after(4, 2), config, [60.0] * 4, cpu_hours_used=2.0, budget_cpu_hours=5.0)
    assert pace["iterations_left"]["budget_cpu_hours"] == 6  # 0.5 CPU h per iteration, 3 h left
    assert pace["limit"] == "budget_cpu_hours" and pace["seconds_left"] == pytest.approx(360.0)


def test_a_converged_campaign_has_nothing_left_and_a_continued_one_is_timed_on_its_own_iterations():
    config = CampaignConfig(batch_size=2, max_iterations=6)
    done = time_to_finish(state_after(3, 2, converged="no_improvement"), config, [4.0, 4.0, 4.0])
    assert done["limit"] == "no_improvement" and done["iterations_to_finish"] == 0 and done["seconds_left"] == 0.0
    continued = time_to_finish(state_after(4, 2), config, [9.0])  # restarted after 3 iterations run elsewhere
    assert continued["iterations_timed"] == 1 and continued["evaluations_per_hour"] == pytest.approx(2 / 9 * 3600)
    assert continued["seconds_left"] == pytest.approx(2 * 9.0)
    untimed = time_to_finish(state_after(0, 2), config, [])
    assert untimed["seconds_left"] is None and untimed["evaluations_per_hour"] is None
    assert untimed["iterations_to_finish"] == 6 and not math.isnan(untimed["iterations_left"]["max_iterations"])
