"""The campaign's pure core: validation naming the field, candidate records, ranking, convergence, resuming from
JSON, multi-objective proposals, the GA's provenance, the external proposer's parser and the analytic model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aiida_nanoos.design import campaign as cp
from aiida_nanoos.design.analytic_model import alloy_properties
from aiida_nanoos.design.pareto import pareto_mask
from aiida_nanoos.design.proposers import registry as proposers
from aiida_nanoos.design.proposers.external import ExternalProposerError, ExternalSettings, parse_candidates
from tests.campaign_fixtures import group_iv_space, sige_cell

# one BLAS thread: millisecond tests stay milliseconds on a small shared machine
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _run(config, objective="maximize_bandgap", space=None, iterations=None, state=None, failing=lambda r: False):
    """Campaign loop with the analytic model; candidates for which ``failing(record)`` is true fail."""
    space_obj, obj, cfg = cp.validate_campaign(space or group_iv_space(), objective, config)
    state = state or cp.new_state(cfg)
    summaries = []
    while state.converged is None and (iterations is None or len(summaries) < iterations):
        hyper = None
        if cfg.algorithm == "bayesian_optimization" and proposers.n_trainable(state) >= 2:
            hyper = proposers.fit_models(space_obj, obj, cfg, state)
        proposal = proposers.propose(space_obj, obj, cfg, state, hyper)
        if not proposal["candidates"]:  # as the work chain: nothing to evaluate, the state says why
            break
        properties, failures = {}, {}
        for record, atoms in proposal["candidates"]:
            if failing(record):
                failures[record.id] = "injected failure"
            else:
                properties[record.id] = alloy_properties(atoms.get_chemical_symbols(), atoms.get_volume())
        summaries.append(cp.record_results(state, space_obj, obj, cfg, properties, failures))
    return state, summaries


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"batch_size": 0}, "config.batch_size"),
        ({"algorithm": "simulated_annealing"}, "config.algorithm: unknown algorithm"),
        ({"algorithm": "active_learning"}, "config.property_model: 'active_learning' needs a property model"),
        ({"evaluation_method": "ml_only"}, "config.property_model: 'ml_only' needs a property model"),
        (
            {"evaluation_method": "ml_then_dft", "property_model": {"model": "m", "dft_fraction": -0.1}},
            "config.property_model.dft_fraction",
        ),
        (
            {"algorithm": "active_learning", "property_model": {"model": "m", "strategy": "x"}},
            "config.property_model.strategy",
        ),
        ({"property_model": {"model": "m"}}, "config.property_model: only used by"),
        # names of the previous version are refused with the new one
        (
            {"algorithm": "active_learning", "surrogate": {"model": "m"}},
            "config.surrogate: renamed; use config.property_model",
        ),
        (
            {"evaluation_method": "hybrid", "property_model": {"model": "m", "dft_fraction": 0.5}},
            "config.evaluation_method: 'hybrid' was renamed; use 'ml_then_dft'",
        ),
        ({"bo": {"acquisition": "ZZ"}}, "config.bo: acquisition"),
        ({"budget": 2, "batch_size": 4}, "config.budget"),
        ({"colour": "blue"}, r"config: unknown keys \['colour'\]"),
        ({"algorithm": "external", "external": {"url": "file:///etc/passwd"}}, "config.external.url"),
        ({"algorithm": "external"}, "config.external.url: the proposer's URL is required"),
        ({"genetic": {"representation": "graph"}}, "config.genetic.representation"),
        ({"max_iterations": -1}, "config.max_iterations"),
        ({"min_improvement": -0.1}, "config.min_improvement"),
    ],
)
def test_bad_configs_are_rejected_naming_the_field(config, field):
    with pytest.raises(ValueError, match=field):
        cp.validate_campaign(group_iv_space(), "maximize_bandgap", config)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda s: s["dimensions"][2]["ranges"].update(iso=[0.03, -0.03]), r"strain 'strain'.*range"),
        (lambda s: s["dimensions"][0].update(fraction=[0.8, 0.2]), r"substitution 'si_sites' fraction"),
        (lambda s: s["dimensions"][0].update(dopants=["C", "Xx"]), r"substitution 'si_sites' dopants: unknown element"),
        (lambda s: s["dimensions"].append({"type": "continuous", "name": "T", "low": 300, "high": 300}), "empty"),
        (lambda s: s.pop("base_structure"), "base_structure: required"),
        (lambda s: s.update(element_constraints={"forbidden_elements": ["Unobtainium"]}), "forbidden_elements"),
    ],
)
def test_bad_spaces_are_rejected_naming_the_field(edit, field):
    space = group_iv_space()
    edit(space)
    with pytest.raises(ValueError, match=f"search_space: .*{field}"):
        cp.validate_campaign(space, "maximize_bandgap", {})


@pytest.mark.parametrize(
    ("objective", "message"),
    [
        ("maximize_happiness", "unknown objective 'maximize_happiness'"),
        ({"objective": "custom", "formula": "__import__('os').system('true')"}, "call to .*is not allowed"),
        ({"objective": "custom", "formula": "bandgap.real"}, "attribute access"),
        ({"objective": "custom", "formula": "0.5 * price"}, "unknown property 'price'"),
        ({"objective": "custom", "formula": "(lambda: 1)()"}, "not allowed"),
        ({"objective": "custom", "formula": "bandgap if bandgap else 0"}, "not allowed"),
        ({"objectives": ["maximize_bandgap", {"objective": "custom", "formula": "[1][0]"}]}, r"objectives\[1\]"),
        ({"objective": "maximize_bandgap", "constraints": ["bandgap >= open('x')"]}, "call to 'open'"),
    ],
)
def test_bad_objectives_are_rejected_naming_the_problem(objective, message):
    with pytest.raises(ValueError, match=f"objective.*{message}" if "objectives" not in str(objective) else message):
        cp.validate_campaign(group_iv_space(), objective, {})


def test_batch_larger_than_the_pool_is_rejected():
    finite = {
        "base_structure": group_iv_space()["base_structure"],
        "dimensions": [
            {"type": "substitution", "name": "si_sites", "host": "Si", "dopants": ["C"], "fraction": [0, 0.5]}
        ],
    }
    assert cp.count_points(cp.load_space(finite)) == 3  # 0, 1 or 2 of the 4 Si sites
    with pytest.raises(ValueError, match=r"config.batch_size: 4 is larger than the pool of 3 distinct candidates"):
        cp.validate_campaign(finite, "maximize_bandgap", {"batch_size": 4})
    with pytest.raises(ValueError, match=r"config.batch_size: 8 is larger than the candidate pool of 5"):
        cp.validate_campaign(group_iv_space(), "maximize_bandgap", {"batch_size": 8, "candidate_pool": 5})
    with pytest.raises(ValueError, match="config.algorithm: 'genetic' optimises one objective"):
        cp.validate_campaign(
            group_iv_space(), {"objectives": ["maximize_bandgap", "maximize_stability"]}, {"algorithm": "genetic"}
        )


# ---------------------------------------------------------------------------------------------- records and stopping
def test_random_search_in_a_finite_space_never_repeats_and_then_stops():
    finite = {
        "base_structure": group_iv_space()["base_structure"],
        "dimensions": [
            {"type": "substitution", "name": "si_sites", "host": "Si", "dopants": ["C", "Ge"], "fraction": [0, 1]},
        ],
    }
    # 2 dopants x 1-4 substituted sites, plus the unsubstituted cell once
    assert len(cp.enumerate_points(cp.load_space(finite))) == cp.count_points(cp.load_space(finite)) == 9
    state, summaries = _run({"algorithm": "random", "batch_size": 4, "max_iterations": 10, "seed": 3}, space=finite)
    points = [json.dumps(r.parameters, sort_keys=True) for r in state.candidates]
    assert len(points) == len(set(points)) == 9
    assert [s["candidates_evaluated"] for s in summaries] == [4, 4, 1]
    assert state.converged == "search_space_exhausted" and state.iteration == 3


def test_failures_are_recorded_and_ranked_last_and_patience_stops_the_campaign():
    config = {"algorithm": "random", "batch_size": 4, "max_iterations": 30, "seed": 1, "patience": 2}
    state, summaries = _run(config, failing=lambda r: "C" not in r.formula)  # every carbon-free cell fails
    records = state.candidates
    failed = [r for r in records if r.status == "failed"]
    assert failed and all("C" not in r.formula and r.value is None for r in failed)
    assert all("C" in r.formula for r in records if r.status == "ok")
    assert all(r.error == "injected failure" for r in failed)
    assert [v is None for v in state.values] == [r.status == "failed" for r in records]
    # failures never count as the best, and rank after every success
    for summary in summaries:
        statuses = [c["status"] for c in summary["candidates"]]
        assert statuses == sorted(statuses, key=lambda s: s == "failed")
    assert state.converged == "no_improvement"
    trend = cp.convergence_trend(state, *cp.validate_campaign(group_iv_space(), "maximize_bandgap", config)[1:])
    assert trend == sorted(trend)  # best so far never decreases
    assert trend[-1] == trend[-3] and len(summaries) < 30  # stopped two iterations after the last improvement
    best = max(r.objectives[0] for r in records if r.status == "ok")
    assert trend[-1] == pytest.approx(best)


def test_budget_limits_the_last_batch():
    state, summaries = _run({"algorithm": "random", "batch_size": 4, "budget": 10, "seed": 2})
    assert [s["candidates_evaluated"] for s in summaries] == [4, 4, 2]
    assert state.converged == "budget_exhausted" and len(state.values) == 10


def test_property_constraints_make_candidates_infeasible_not_best():
    objective = {"objective": "maximize_bandgap", "constraints": [{"property": "stability_score", "min": 0.3}]}
    state, _ = _run({"algorithm": "random", "batch_size": 4, "max_iterations": 3, "seed": 5}, objective)
    records = state.candidates
    infeasible = [r for r in records if not r.feasible]
    assert infeasible  # carbon-rich cells are unstable in the model
    best = cp.best_candidates(records, cp.CampaignObjective.from_spec(objective), 3)
    assert best[0]["feasible"] and best[0]["properties"]["stability_score"] >= 0.3
    assert best[0]["objectives"][0] == max(r.objectives[0] for r in records if r.feasible)


@pytest.mark.parametrize(
    "settings",
    [
        {"algorithm": "bayesian_optimization"},
        {"algorithm": "genetic"},
        {"algorithm": "genetic", "genetic": {"representation": "parameters"}},
        {"algorithm": "random"},
    ],
)
def test_a_campaign_resumed_from_json_makes_the_same_decisions(settings):
    config = {**settings, "batch_size": 2, "max_iterations": 4, "seed": 7}
    full, _ = _run(config)
    first, _ = _run(config, iterations=2)
    restored = cp.load_state(json.loads(json.dumps(cp.dump_state(first))))
    resumed, _ = _run(config, state=restored)
    key = [(r.id, r.formula, r.generation_method, r.parents, r.value) for r in full.candidates]
    assert key == [(r.id, r.formula, r.generation_method, r.parents, r.value) for r in resumed.candidates]
    if settings.get("genetic", {}).get("representation") == "parameters":  # GA on points: children keep parameters
        assert {r.generation_method for r in full.candidates[2:]} == {"genetic:vector"}
        assert all(r.parameters is not None for r in full.candidates)
        assert full.ga["kind"] == "vector_ga"


def test_bayesian_optimisation_finds_the_target_gap_window():
    objective = {"objective": "target_range", "property": "bandgap", "range": [1.0, 1.2]}
    state, summaries = _run(
        {"algorithm": "bayesian_optimization", "batch_size": 3, "max_iterations": 5, "seed": 1}, objective
    )
    assert summaries[0]["candidates"][0]["generation_method"] == "random"
    assert {c["generation_method"] for s in summaries[1:] for c in s["candidates"]} == {"bo:RANGE"}
    hits = [r for r in state.candidates if 1.0 <= r.properties["bandgap"] <= 1.2]
    assert hits and hits[0].iteration >= 1  # found by the model, not by the random start
    assert state.gp_hyperparameters["kernel"] == "matern52"


def test_genetic_children_name_parents_that_were_evaluated_before():
    state, _ = _run({"algorithm": "genetic", "batch_size": 3, "max_iterations": 4, "seed": 2})
    records = state.candidates
    order = {r.id: i for i, r in enumerate(records)}
    children = [r for r in records if r.generation_method.startswith("genetic:")]
    assert children and all(r.parents for r in children)
    for child in children:
        assert all(order[p] < order[child.id] and records[order[p]].iteration < child.iteration for p in child.parents)
        assert child.parameters is None and len(child.structure["symbols"]) == 8
    methods = {m for r in children for m in r.generation_method.removeprefix("genetic:").split("+")}
    assert methods <= {"crossover", "mutation:swap_element", "mutation:shift_atom", "mutation:change_lattice"}
    assert state.ga["kind"] == "structure_ga"


def test_multi_objective_campaign_grows_a_pareto_front():
    objective = {"objectives": ["maximize_bandgap", "maximize_stability"]}
    config = {"algorithm": "bayesian_optimization", "batch_size": 3, "max_iterations": 4, "seed": 3}
    state, summaries = _run(config, objective)
    assert {c["generation_method"] for s in summaries[1:] for c in s["candidates"]} == {"bo:EHVI"}
    _, obj, cfg = cp.validate_campaign(group_iv_space(), objective, config)
    front = cp.pareto_records(state.candidates, obj, cfg, state.reference_point)
    Y = np.array([r.objectives for r in state.candidates])
    on_front = {state.candidates[i].id for i in np.flatnonzero(pareto_mask(Y, ["max", "max"]))}
    assert {m["id"] for m in front["members"]} == on_front
    trend = [s["best_so_far"] for s in summaries]
    assert all(b >= a - 1e-12 for a, b in zip(trend, trend[1:], strict=False)) and trend[-1] > trend[0]
    assert front["hypervolume"] == pytest.approx(trend[-1])
    # the reference point is fixed after the first iteration: the per-iteration figures and the trend agree
    assert cp.convergence_trend(state, obj, cfg) == pytest.approx(trend)
    first = [r for r in state.candidates if r.iteration == 0]
    assert state.reference_point == cp.reference_point(first, obj, cfg)


# ---------------------------------------------------------------------------------------------- external answers
def test_external_answers_are_validated_against_the_space():
    space = cp.load_space(group_iv_space(), {"allowed_elements": ["C", "Si", "Ge"], "max_atoms_per_cell": 8})
    good = {
        "si_sites": {"element": "C", "fraction": 0.25},
        "ge_sites": {"element": "Si", "fraction": 0.5},
        "strain": {"iso": 0.0},
    }
    sixteen = sige_cell().repeat((2, 1, 1))
    answer = {
        "candidates": [
            {"parameters": good, "generation_method": "guess"},
            {"parameters": {**good, "strain": {"iso": 0.2}}},
            {"parameters": {"si_sites": {"element": "Sn", "fraction": 0.25}}},
            {
                "structure": {
                    "symbols": sixteen.get_chemical_symbols(),
                    "positions": sixteen.positions.tolist(),
                    "cell": sixteen.cell.tolist(),
                }
            },
            {"cif": "this is not a CIF"},
            "a string",
            {"parameters": good, "cif": "both"},
            {"poscar": "Si\n1.0\n5.4 0 0\n0 5.4 0\n0 0 5.4\nSi\n1\nDirect\n0 0 0\n"},
        ]
    }
    accepted, rejected = parse_candidates(space, answer, limit=5)
    assert [a["generation_method"] for a in accepted] == ["external:guess", "external"]
    assert accepted[1]["atoms"].get_chemical_formula() == "Si"
    reasons = {r["index"]: r["reason"] for r in rejected}
    assert set(reasons) == {1, 2, 3, 4, 5, 6}
    assert "outside" in reasons[1] and "16 atoms > max_atoms_per_cell 8" in reasons[3]
    assert "exactly one of" in reasons[6] and reasons[5] == "not an object"


def test_external_settings_and_unset_key():
    with pytest.raises(ValueError, match="config.external.timeout"):
        ExternalSettings(url="http://localhost:1/x", timeout=0)
    settings = ExternalSettings(url="http://127.0.0.1:9/x", api_key_env="NANOOS_SURELY_UNSET_VARIABLE")
    from aiida_nanoos.design.proposers.external import request_candidates

    with pytest.raises(ExternalProposerError, match="NANOOS_SURELY_UNSET_VARIABLE.*is not set"):
        request_candidates(settings, {})


# ---------------------------------------------------------------------------------------------- analytic model
def test_analytic_alloy_model_has_the_expected_trends():
    from ase.build import bulk

    def props(atoms):
        return alloy_properties(atoms.get_chemical_symbols(), atoms.get_volume())

    si = props(bulk("Si", "diamond", a=5.431, cubic=True))
    assert si["bandgap"] == pytest.approx(0.61, abs=1e-6) and si["formation_energy"] == pytest.approx(0, abs=1e-9)
    assert props(bulk("Si", "diamond", a=5.30, cubic=True))["bandgap"] < si["bandgap"]  # compression closes it
    sic = bulk("SiC", "zincblende", a=4.36, cubic=True)
    assert props(sic)["bandgap"] > si["bandgap"] and props(sic)["formation_energy"] > 0.05
    assert props(sige_cell())["stability_score"] < 0.5  # mixing costs a little
    with pytest.raises(ValueError, match=r"no parameters for \['Pb'\]"):
        alloy_properties(["Si", "Pb"], 40.0)


def test_property_model_bookkeeping_training_schedule_and_dft_budget():
    """When the property model is (re)trained, and that the budget of an ml_then_dft campaign counts DFT runs only."""
    config = {
        "algorithm": "active_learning",
        "evaluation_method": "ml_then_dft",
        "batch_size": 4,
        "budget": 6,
        "max_iterations": 10,
        "property_model": {
            "min_labels": 4,
            "pool_size": 8,
            "dft_trigger": "fraction",
            "dft_fraction": 0.5,
            "retrain_min_new_labels": 2,
            "training": {"epochs": 2},
        },
    }
    space, obj, cfg = cp.validate_campaign(group_iv_space(), "maximize_bandgap", config)
    state = cp.new_state(cfg)
    assert cp.training_due(state, obj, cfg) is None  # no label yet
    assert cp.ml_then_dft_settings(state, cfg, 4) == {
        "strategy": "uncertainty",
        "budget": 2,
        "uncertainty": "total",
        "simulation_budget": {"total": 6, "used": 0},
    }
    # iteration 1: everything simulated (no model yet)
    proposal = proposers.propose(space, obj, cfg, state)
    for record in state.pending:  # the work chain's candidate nodes (training needs the structures)
        record.uuid = record.id
    props = {r.id: alloy_properties(a.get_chemical_symbols(), a.get_volume()) for r, a in proposal["candidates"]}
    summary = cp.record_results(state, space, obj, cfg, props, {}, property_model={})
    assert summary["candidates_simulated"] == 4 and summary["budget_remaining"] == 2
    assert cp.training_due(state, obj, cfg).startswith("first model")
    # iteration 2: a model, half the batch from ML
    pool, cells = proposers.generate_pool(space, cfg, state)
    assert len(pool) == len(cells) == 8 and all(not space.violations(c) for c in cells)
    proposal = proposers.propose(space, obj, cfg, state, property_model={"model": "m"})
    for record in state.pending:
        record.uuid = record.id
    ids = [r.id for r, _ in proposal["candidates"]]
    props = {r.id: alloy_properties(a.get_chemical_symbols(), a.get_volume()) for r, a in proposal["candidates"]}
    about = {
        cid: {"source": "dft" if k < 2 else "ml", "prediction": 1.0, "uncertainty": 0.1} for k, cid in enumerate(ids)
    }
    summary = cp.record_results(
        state,
        space,
        obj,
        cfg,
        props,
        {},
        property_model={
            "candidates": about,
            "model": "m_v1",
            "model_uuid": "u",
            "retrained": True,
            "training_labels": 4,
        },
    )
    assert summary["candidates_simulated"] == 2 and summary["candidates_ml_predicted"] == 2
    assert summary["budget_used"] == 6 and summary["budget_remaining"] == 0
    assert summary["converged"] == "budget_exhausted" and summary["mean_uncertainty"] == pytest.approx(0.1)
    assert cp.training_due(state, obj, cfg) == "2 new DFT labels"
    stats = cp.statistics(state, obj, cfg)
    assert stats["budget_used"] == 6 and stats["property_model"]["total_candidates_ml_predicted"] == 2
    assert stats["property_model"]["trainings"] == 1 and stats["property_model"]["models"] == ["m_v1"]
    plan = cp.training_plan(state, obj, cfg, current_name="m")
    assert plan["reason"] == "2 new DFT labels" and plan["index"] == 2
    assert sorted(plan["targets"]) == sorted(plan["structures"]) and len(plan["targets"]) == 6
    assert plan["config"]["name"] == "m" and plan["config"]["epochs"] == 2 and plan["config"]["seed"] == 1


def test_value_per_cost_trigger_prices_each_candidate_against_the_campaign_top():
    """``dft_trigger: value_per_cost``: the settings of the DFT selection carry each candidate's predicted cost, the
    share of the batch's DFT cost to spend, and the reference a label must beat (the top_n-th best DFT label)."""
    from aiida_nanoos.design.cost import dft_cost_prior, kpoint_count

    config = {
        "algorithm": "active_learning",
        "evaluation_method": "ml_then_dft",
        "batch_size": 4,
        "top_n": 2,
        "property_model": {"min_labels": 4, "dft_trigger": "value_per_cost", "dft_fraction": 0.5, "training": {}},
    }
    space, obj, cfg = cp.validate_campaign(group_iv_space(), "maximize_bandgap", config)
    state = cp.new_state(cfg)
    proposal = proposers.propose(space, obj, cfg, state)
    cells = {r.id: a for r, a in proposal["candidates"]}
    settings = cp.ml_then_dft_settings(state, cfg, 4, objective=obj, cells=cells)
    assert settings["strategy"] == "value_per_cost" and settings["cost_share"] == 0.5
    assert settings["direction"] == "max" and settings["cost_exponent"] == 1.0
    assert "best_observed" not in settings  # no DFT label yet: a label is worth its sigma
    for cid, atoms in cells.items():  # no evaluation reported a cost yet: the DFT prior
        prior = dft_cost_prior(len(atoms), kpoint_count(atoms.cell.array))
        assert settings["costs"][cid] == pytest.approx(float(prior))
    for record in state.pending:
        record.uuid = record.id
    props = {r.id: alloy_properties(a.get_chemical_symbols(), a.get_volume()) for r, a in proposal["candidates"]}
    cp.record_results(state, space, obj, cfg, props, {})
    gaps = sorted(p["bandgap"] for p in props.values())
    settings = cp.ml_then_dft_settings(state, cfg, 4, objective=obj, cells=cells)
    assert settings["best_observed"] == pytest.approx(gaps[-2])  # the second best: top_n is 2
    window = {"objective": "target_range", "property": "bandgap", "range": [1.1, 1.5]}
    _, obj, cfg = cp.validate_campaign(group_iv_space(), window, config)
    settings = cp.ml_then_dft_settings(state, cfg, 4, objective=obj, cells=cells)
    assert settings["target_range"] == [1.1, 1.5] and "best_observed" not in settings
    with pytest.raises(ValueError, match="the objective and the batch's cells are needed"):
        cp.ml_then_dft_settings(state, cfg, 4)
    config["property_model"]["dft_fraction"] = None
    with pytest.raises(ValueError, match=r"dft_fraction: required by dft_trigger 'value_per_cost'"):
        cp.validate_campaign(group_iv_space(), "maximize_bandgap", config)


def test_a_formula_dividing_by_zero_fails_that_candidate_only():
    """A custom objective that divides by zero (or overflows) on one candidate marks it failed; the others count."""
    objective = {"objective": "custom", "formula": "1 / (formation_energy - formation_energy) + bandgap"}
    _, obj, _ = cp.validate_campaign(group_iv_space(), objective, {})
    with pytest.raises(ValueError, match="ZeroDivisionError"):
        obj.evaluate({"bandgap": 1.0, "formation_energy": 0.1})
    overflow = cp.CampaignObjective.from_spec({"objective": "custom", "formula": "bandgap ** 60"})
    with pytest.raises(ValueError, match="OverflowError"):
        overflow.evaluate({"bandgap": 1e10})
    # in a campaign: the candidate on which the formula divides by zero fails, the others are ranked, and it goes on
    objective = {"objective": "custom", "formula": "bandgap / (stability_score - 1)"}
    space, obj, cfg = cp.validate_campaign(group_iv_space(), objective, {"algorithm": "random", "batch_size": 3})
    state = cp.new_state(cfg)
    for _ in range(2):
        proposal = proposers.propose(space, obj, cfg, state)
        props = {r.id: alloy_properties(a.get_chemical_symbols(), a.get_volume()) for r, a in proposal["candidates"]}
        props[proposal["candidates"][0][0].id]["stability_score"] = 1.0
        summary = cp.record_results(state, space, obj, cfg, props, {})
        assert summary["failed"] == 1 and summary["candidates_evaluated"] == 3
        assert summary["candidates"][-1]["status"] == "failed"  # ranked last
        assert "ZeroDivisionError" in summary["candidates"][-1]["error"]
    failed = [r for r in state.candidates if r.status == "failed"]
    assert [r.id for r in failed] == ["i001c00", "i002c00"] and all(r.value is None for r in failed)
    assert state.values[0] is None and all(v is not None for v in state.values[1:3])
    assert state.converged is None and state.iteration == 2
