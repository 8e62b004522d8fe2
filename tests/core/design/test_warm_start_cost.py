"""Specification of warm start and cost-aware selection in the campaign core: the configuration and its messages,
earlier campaigns' evaluations seen by a new campaign (same task pooled, related task for the multi-task GP), the
k-point count of a cell, the CPU-hour budget, and cost-aware picks on a constructed state."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_nanoos.design import campaign as cp
from aiida_nanoos.design.convergence import ConvergenceCriteria
from aiida_nanoos.design.cost import kpoint_count, predicted_costs
from aiida_nanoos.design.proposers import registry as proposers
from aiida_nanoos.design.proposers.scored_pool import next_pick
from aiida_nanoos.design.records import CandidateRecord
from aiida_nanoos.design.spaces import atoms_to_dict
from aiida_nanoos.design.transfer import earlier_evaluations, pooled_evaluations, related_tasks
from aiida_nanoos.models.transfer_gp import TransferGaussianProcess
from tests.campaign_fixtures import group_iv_space, sige_cell

#: Isotropic strain of the 8-atom SiGe cell: below -5.5 % the cell is small enough to need a 5x5x5 k-mesh (125
#: k-points at 0.3 1/Å), above it 4x4x4 (64): the compressed cells cost about twice as much.
STRAIN_SPACE = {
    "base_structure": atoms_to_dict(sige_cell()),
    "dimensions": [{"type": "strain", "name": "strain", "ranges": {"iso": [-0.1, 0.1]}, "isotropic": True}],
}
CHEAP_STRAIN = -0.055


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"warm_start": {}}, r"config.warm_start: give either campaigns"),
        ({"warm_start": {"campaigns": [3], "same_objective": True}}, r"give either campaigns"),
        ({"warm_start": {"campaigns": "12"}}, r"warm_start.campaigns: must be a list"),
        ({"warm_start": {"campaigns": [0]}}, r"warm_start.campaigns: 0 is not a campaign PK or UUID"),
        ({"warm_start": {"campaign": [3]}}, r"warm_start: unknown keys \['campaign'\]"),
        ({"warm_start": [3]}, r"config.warm_start: must be a mapping"),
        ({"algorithm": "random", "warm_start": {"same_objective": True}}, r"warm_start: only used by algorithm 'bay"),
        ({"algorithm": "genetic", "cost_aware": True}, r"config.cost_aware: only used by algorithm 'bayesian"),
        ({"cost_aware": "yes"}, r"config.cost_aware: must be true or false"),
        ({"budget_cpu_hours": 0}, r"config.budget_cpu_hours: "),
    ],
)
def test_bad_warm_start_cost_and_cpu_budget_settings_are_refused_naming_the_field(config, message):
    with pytest.raises(ValueError, match=message):
        cp.CampaignConfig.from_dict(config)


def test_the_cpu_budget_stops_after_the_evaluation_budget_and_before_the_iteration_limit():
    criteria = ConvergenceCriteria(budget=10, max_iterations=2, budget_cpu_hours=1.5)
    values = [[1.0, 2.0], [2.0, 2.5]]
    assert criteria.check(values, cpu_hours=1.4) == "max_iterations"
    assert criteria.check(values, cpu_hours=1.5) == "cpu_budget_exhausted"
    assert criteria.check(values) == "max_iterations"  # no CPU figure given: the CPU budget is not checked
    assert ConvergenceCriteria(budget=4, budget_cpu_hours=1.0).check(values, cpu_hours=3.0) == "budget_exhausted"


def test_a_campaign_stops_when_its_evaluations_used_the_cpu_hours_and_records_what_each_cost():
    space, objective, config = cp.validate_campaign(STRAIN_SPACE, "maximize_bandgap", {"budget_cpu_hours": 0.5})
    state = cp.new_state(config)
    costs = {}
    for k, strain in enumerate((-0.08, 0.0, 0.08)):
        state.pending.append(CandidateRecord(id=f"c{k}", iteration=0, parameters={"strain": {"iso": strain}}))
        costs[f"c{k}"] = {"wall_seconds": 300.0, "cpu_seconds": 600.0}
    summary = cp.record_results(
        state, space, objective, config, {f"c{k}": {"bandgap": 1.0} for k in range(3)}, {}, costs=costs
    )
    assert summary["cpu_hours_used"] == pytest.approx(0.5) and summary["iteration_cpu_seconds"] == 1800.0
    assert summary["converged"] == state.converged == "cpu_budget_exhausted"
    assert [r.cost["n_kpoints"] for r in state.candidates] == [125, 64, 64]
    assert state.candidates[0].cost == {"wall_seconds": 300.0, "cpu_seconds": 600.0, "n_atoms": 8, "n_kpoints": 125}


def test_kpoint_count_follows_the_reciprocal_cell():
    assert kpoint_count(np.eye(3) * 5.54) == 64  # |b| = 2 pi / 5.54 = 1.13 1/Å -> 4 per direction at 0.3
    assert kpoint_count(np.eye(3) * 11.08) == 8  # a doubled cell needs half the k-points per direction
    assert kpoint_count(np.diag([5.54, 5.54, 30.0])) == 16  # a slab: one k-point along the vacuum


def test_costs_come_from_the_prior_until_two_evaluations_reported_theirs():
    candidates = np.array([[8.0, 64.0], [64.0, 8.0]])
    prior, source = predicted_costs(np.zeros((0, 2)), np.zeros(0), candidates)
    assert source.startswith("DFT cost prior") and prior[1] / prior[0] == pytest.approx(8.0**1.9 / 8.0)
    paid = np.array([[8.0, 64.0], [8.0, 125.0], [16.0, 27.0]])
    fitted, source = predicted_costs(paid, 0.01 * paid[:, 0] ** 2 * paid[:, 1], candidates)
    assert source.startswith("cost model") and fitted[0] == pytest.approx(0.01 * 64 * 64, rel=0.2)


def test_the_cheapest_candidate_close_to_the_largest_acquisition_is_picked():
    acquisition = np.array([0.1, 0.5, 0.45, 0.3, -0.5])  # spread 1.0: within 0.3 of 0.5 means above 0.2
    cost = np.array([0.1, 4.0, 2.0, 1.0, 0.1])
    assert next_pick(acquisition, cost, 1.0, []) == 3  # 0.3 is close enough and the cheapest of those
    assert next_pick(acquisition, cost, 1.0, [3]) == 2
    assert next_pick(acquisition, None, 1.0, []) == 1  # cost-blind
    assert next_pick(acquisition, cost, 0.0, []) == 1  # all the CPU budget spent: the largest value
    assert next_pick(acquisition, cost, 0.2, []) == 2  # mostly spent: within 0.06 of 0.5 is only 0.45
    # 0.1 is 0.4 below the largest: however cheap, too far
    assert next_pick(acquisition, np.array([0.001, 4.0, 2.0, 1.0, 0.1]), 1.0, []) == 3


def test_between_equal_costs_the_larger_acquisition_wins():
    """Cells of one size cost the same: the rule must then be the acquisition's, not the first in the pool."""
    assert next_pick(np.array([0.4, 0.5, 0.45, 0.0]), np.ones(4), 1.0, []) == 1


def test_only_differences_of_the_acquisition_count():
    """A UCB below the best value everywhere, or shifted by any constant, picks the same candidate."""
    acquisition, cost = np.array([-0.3, -0.1, -0.2, -1.0]), np.array([1.0, 50.0, 1.0, 0.1])
    assert next_pick(acquisition, cost, 1.0, []) == 2
    assert next_pick(acquisition + 7.0, cost, 1.0, []) == 2
    assert next_pick(acquisition, cost, 1.0, [2]) == 0  # -0.3 is still within 0.27 of -0.1


def test_cost_aware_with_the_default_acquisition_weighs_the_bound_against_the_cost():
    space, objective, cfg, state = _flat_state({"cost_aware": True})
    hyper = proposers.fit_models(space, objective, cfg, state)
    proposal = proposers.propose(space, objective, cfg, state, hyper)
    kind = cfg.bo_settings().acquisition.upper()
    assert kind in ("UCB", "LCB")
    assert {r.generation_method for r, _ in proposal["candidates"]} == {f"bo:{kind}/cost"}
    values = proposal["report"]["acquisition_values"]
    assert len(values) == 2 and all(np.isfinite(values)) and len(proposal["report"]["predicted_costs"]) == 2


def test_the_cost_tolerance_cools_over_a_budget_of_evaluations_without_a_cpu_budget():
    """Two of four budgeted evaluations done: half the tolerance is left; a CPU budget takes precedence (189 of its
    3600 CPU seconds spent)."""
    cpu_budget = {"budget": 4, "budget_cpu_hours": 1.0}
    for config, expected in (({"budget": 4}, 0.5), (cpu_budget, 1 - 189 / 3600), ({}, 1.0)):
        space, objective, cfg, state = _flat_state({"cost_aware": True, **config})
        hyper = proposers.fit_models(space, objective, cfg, state)
        report = proposers.propose(space, objective, cfg, state, hyper)["report"]
        assert report["cost_exponent"] == pytest.approx(expected, abs=1e-6), config


def _flat_state(config: dict):
    """Two evaluations with the same gap at strains symmetric about zero: the expected improvement is the same at
    both ends of the strain range, and only the cost (k-points) tells them apart."""
    space, objective, cfg = cp.validate_campaign(STRAIN_SPACE, "maximize_bandgap", {"batch_size": 2, **config})
    state = cp.new_state(cfg)
    state.pending = [
        CandidateRecord(id=f"c{k}", iteration=0, parameters={"strain": {"iso": s}}) for k, s in enumerate((-0.08, 0.08))
    ]
    costs = {"c0": {"cpu_seconds": 125.0}, "c1": {"cpu_seconds": 64.0}}
    cp.record_results(state, space, objective, cfg, {"c0": {"bandgap": 1.0}, "c1": {"bandgap": 1.0}}, {}, costs=costs)
    return space, objective, cfg, state


@pytest.mark.parametrize("cost_aware", [False, True])
def test_cost_aware_selection_picks_the_cheaper_cells_when_the_improvements_tie(cost_aware):
    space, objective, cfg, state = _flat_state({"cost_aware": cost_aware, "bo": {"acquisition": "EI"}})
    hyper = proposers.fit_models(space, objective, cfg, state)
    proposal = proposers.propose(space, objective, cfg, state, hyper)
    strains = sorted(record.parameters["strain"]["iso"] for record, _ in proposal["candidates"])
    report = proposal["report"]
    if cost_aware:
        assert all(s > CHEAP_STRAIN for s in strains), strains  # both picks in the 64-k-point cells
        assert report["cost_source"] == "cost model fitted to the paid evaluations" and report["cost_exponent"] == 1.0
        assert {r.generation_method for r, _ in proposal["candidates"]} == {"bo:EI/cost"}
        assert report["predicted_costs"][0] == pytest.approx(64.0, rel=0.1)
    else:  # the two ends of the range, one of them in the expensive compressed cells
        assert strains[0] < CHEAP_STRAIN < strains[1], strains
        assert "predicted_costs" not in report


def _earlier_state(values: dict[float, float]) -> cp.CampaignState:
    space, objective, config = cp.validate_campaign(group_iv_space(), "maximize_bandgap", {})
    state = cp.new_state(config)
    for k, strain in enumerate(values):
        parameters = space.sample(1, np.random.default_rng(k))[0]
        parameters["strain"] = {"iso": strain}
        state.pending.append(CandidateRecord(id=f"e{k}", iteration=0, parameters=parameters))
    cp.record_results(
        state, space, objective, config, {f"e{k}": {"bandgap": v} for k, v in enumerate(values.values())}, {}
    )
    return state


def test_earlier_evaluations_are_seen_through_the_new_objective_and_pooled_only_for_the_same_task():
    spec = group_iv_space()
    target = {"objective": "target_range", "property": "bandgap", "range": [1.0, 1.2]}
    space, objective, _ = cp.validate_campaign(spec, target, {})
    earlier = _earlier_state({0.0: 0.7, 0.01: 1.1, 0.02: 1.5})
    task = {"evaluator": "analytic", "inputs": "x"}
    definition = {"search_space": spec, "objective": "maximize_bandgap", "task": task}
    same = earlier_evaluations(space, objective, spec, task, "campaign 7", definition, earlier)
    assert same["relation"] == "same" and same["ids"] == ["e0", "e1", "e2"]
    assert same["values"] == pytest.approx([-0.3, 0.0, -0.3])  # minus the distance to [1.0, 1.2], not the gap
    assert same["raw"] == pytest.approx([0.7, 1.1, 1.5])
    assert len(pooled_evaluations([same])["y"]) == 3 and related_tasks([same]) == []
    other = earlier_evaluations(space, objective, spec, {**task, "inputs": "y"}, "campaign 8", definition, earlier)
    assert other["relation"] == "related" and len(pooled_evaluations([other])["y"]) == 0
    assert related_tasks([other])[0].y.tolist() == pytest.approx([-0.3, 0.0, -0.3])
    with pytest.raises(ValueError, match=r"campaign 9: its objective is a function of \['bandgap'\], this .*density"):
        _, density, _ = cp.validate_campaign(spec, {"objective": "custom", "formula": "density"}, {})
        earlier_evaluations(space, density, spec, task, "campaign 9", definition, earlier)


def test_the_multi_task_gp_recorded_hyperparameters_give_the_same_posterior():
    rng = np.random.default_rng(0)
    X = rng.random((14, 2))
    task = np.array([0] * 4 + [1] * 10)
    y = np.sin(3 * X[:, 0]) + X[:, 1] + 0.3 * task
    fitted = TransferGaussianProcess(seed=1).fit(X, y, task)
    again = TransferGaussianProcess(seed=99).set_hyperparameters(fitted.get_hyperparameters())
    again.fit(X, y, task, optimize=False)
    grid = rng.random((5, 2))
    np.testing.assert_allclose(again.posterior(grid).mean, fitted.posterior(grid).mean, rtol=1e-10)
    with pytest.raises(ValueError, match="the layout needs"):
        TransferGaussianProcess().set_hyperparameters({**fitted.get_hyperparameters(), "n_tasks": 3})
