"""Warm start and cost-aware selection in real campaigns (the analytic evaluator, a real WorkChain + calcfunction,
stands in for DFT; one test runs pw.x): the earlier campaigns' evaluations are inputs of the first decision, pooled
for the same task and modelled by the multi-task GP for a related one, refused with a message naming the ID when
they cannot seed the campaign; the cost of every evaluation is read from its calculation nodes, and the CPU-hour
budget stops a campaign."""

from __future__ import annotations

import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_nanoos.design.spaces import atoms_to_dict
from tests.campaign_fixtures import campaign_builder, group_iv_space, sige_cell

TARGET = {"objective": "target_range", "property": "bandgap", "range": [1.0, 1.2]}
DENSITY = {"objective": "custom", "formula": "density", "direction": "maximize"}
BO = {"algorithm": "bayesian_optimization", "batch_size": 2}


def calls(node, label):
    return sorted((n for n in node.called if n.process_label == label), key=lambda n: n.ctime)


def evaluations_to_reach(records, value) -> int | None:
    """Evaluations, in the order they were made, until one reaches ``value`` (a maximised objective)."""
    for k, record in enumerate(records, start=1):
        if record["value"] is not None and record["value"] >= value - 1e-9:
            return k
    return None


def run_ok(builder):
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    return results, node


@pytest.fixture(scope="module")
def earlier_campaign(aiida_profile):
    """Ten evaluations of the band-gap window search on the group-IV space."""
    return run_ok(campaign_builder({**BO, "max_iterations": 5, "seed": 3}, TARGET))[1]


def test_a_warm_start_on_the_same_task_reaches_the_window_in_fewer_evaluations(earlier_campaign):
    config = {**BO, "max_iterations": 4, "seed": 7, "target": 0.0}  # stop once a gap is inside the window
    cold, _ = run_ok(campaign_builder(config, TARGET))
    warm, node = run_ok(campaign_builder({**config, "warm_start": {"campaigns": [earlier_campaign.pk]}}, TARGET))
    # the first decision has the earlier campaign's state and definition as inputs: the graph shows what was reused
    initial = calls(node, "initialize_campaign")[0]
    pk = earlier_campaign.pk
    assert initial.inputs[f"campaign_{pk}_state"].uuid == earlier_campaign.outputs.state.uuid
    earlier_initial = calls(earlier_campaign, "initialize_campaign")[0]
    assert initial.inputs[f"campaign_{pk}_definition"].uuid == earlier_initial.outputs.definition.uuid
    (entry,) = warm["state"]["warm_start"]
    assert entry["relation"] == "same" and entry["label"] == f"campaign {pk}" and len(entry["ids"]) == 10
    # the same task: the earlier ten evaluations are observations of this one, so the first batch is already BO
    fit = calls(node, "fit_gp")[0]
    assert fit.outputs.result["models"][0]["n_observed"] == 10
    assert calls(node, "suggest_candidates")[0].inputs.hyperparameters.uuid == fit.outputs.result.uuid
    records = warm["state"]["candidates"]
    assert {r["generation_method"] for r in records} == {"bo:RANGE"}
    earlier_points = [r["parameters"] for r in earlier_campaign.outputs.state["candidates"]]
    assert not [r for r in records if r["parameters"] in earlier_points]  # nothing evaluated twice
    # measured with these seeds: the warm start is inside the window at its first evaluation, the cold one at its 7th
    assert evaluations_to_reach(records, 0.0) == 1
    assert evaluations_to_reach(cold["state"]["candidates"], 0.0) == 7
    assert warm["statistics"]["convergence_reason"] == cold["statistics"]["convergence_reason"] == "target_reached"
    assert warm["statistics"]["total_candidates_evaluated"] == 2 < cold["statistics"]["total_candidates_evaluated"]


def test_a_related_task_enters_the_multi_task_gp_as_a_task_of_its_own(earlier_campaign):
    """Another base structure (a 3 % larger SiGe cell): not pooled, but modelled with a task kernel."""
    other = group_iv_space()
    other["base_structure"] = atoms_to_dict(sige_cell(a=5.70))
    _, related = run_ok(campaign_builder({**BO, "max_iterations": 2, "seed": 4}, TARGET, space=other))
    config = {**BO, "max_iterations": 2, "seed": 7, "warm_start": {"campaigns": [related.pk]}}
    warm, node = run_ok(campaign_builder(config, TARGET))
    (entry,) = warm["state"]["warm_start"]
    assert entry["relation"] == "related" and len(entry["ids"]) == 4
    # the first batch is already chosen by the multi-task GP, from the related campaign's evaluations alone
    first, second = calls(node, "fit_gp")
    model = first.outputs.result["models"][0]
    assert model["model"].startswith("multi-task GP (TransferGaussianProcess")
    assert model["tasks"] == ["this campaign", f"campaign {related.pk}"] and model["task_sizes"] == [0, 4]
    assert model["n_tasks"] == 2 and len(model["theta"]) == 7 * 3 + 3 * 2  # shared + 2 own lengthscales, 3 per task
    assert second.outputs.result["models"][0]["task_sizes"] == [2, 4]
    share, correlation = second.outputs.result["models"][0]["task_correlations"]
    assert 0.0 <= share <= 1.0 and -1.0 <= correlation <= 1.0
    for suggest, fit in zip(calls(node, "suggest_candidates"), (first, second), strict=True):
        assert suggest.outputs.proposals["report"]["model"] == "multi-task GP"
        assert suggest.inputs.hyperparameters.uuid == fit.outputs.result.uuid
    records = warm["state"]["candidates"]
    assert [r["generation_method"] for r in records] == ["bo:transfer:EI"] * 4


def test_earlier_campaigns_that_cannot_seed_a_campaign_are_refused_naming_them(earlier_campaign):
    lead = group_iv_space()
    lead["dimensions"] = [
        {"type": "substitution", "name": "lead", "host": "Si", "dopants": ["Pb"], "fraction": [0.25, 1]}
    ]
    _, failed = run_get_node(
        campaign_builder({"algorithm": "random", "batch_size": 2, "max_iterations": 1}, space=lead)
    )
    assert failed.exit_status == 404
    not_a_campaign = orm.Dict({"a": 1}).store()
    cases = [
        (99_999_999, TARGET, r"warm_start.campaigns: 99999999: no such node"),
        (not_a_campaign.pk, TARGET, rf"warm_start.campaigns: {not_a_campaign.pk}: Dict<{not_a_campaign.pk}> is not a"),
        (failed.pk, TARGET, rf"campaign {failed.pk} has not finished ok \(finished, exit status 404\)"),
        (
            earlier_campaign.pk,
            DENSITY,
            rf"campaign {earlier_campaign.pk}: its objective is a function of \['bandgap'\]",
        ),
    ]
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    for identifier, objective, message in cases:
        builder = campaign_builder({**BO, "warm_start": {"campaigns": [identifier]}}, objective)
        with pytest.raises(ValueError, match=message):
            run_get_node(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before  # refused before anything ran
    pareto = {"objectives": [TARGET, DENSITY]}
    with pytest.raises(ValueError, match="config.warm_start: a warm start needs one objective"):
        run_get_node(campaign_builder({**BO, "warm_start": {"campaigns": [earlier_campaign.pk]}}, pareto))


def test_same_objective_finds_the_finished_campaigns_of_that_property(earlier_campaign):
    _, density = run_ok(campaign_builder({**BO, "max_iterations": 1, "seed": 2}, DENSITY))
    warm, node = run_ok(
        campaign_builder({**BO, "max_iterations": 1, "seed": 8, "warm_start": {"same_objective": True}}, DENSITY)
    )
    inputs = calls(node, "initialize_campaign")[0].inputs
    assert f"campaign_{density.pk}_state" in inputs and f"campaign_{earlier_campaign.pk}_state" not in inputs
    assert all(entry["relation"] == "same" for entry in warm["state"]["warm_start"])
    assert f"campaign {density.pk}" in [entry["label"] for entry in warm["state"]["warm_start"]]


def test_the_cost_of_each_evaluation_is_read_and_the_cpu_budget_stops_the_campaign(aiida_profile):
    config = {**BO, "max_iterations": 5, "seed": 1, "cost_aware": True, "budget_cpu_hours": 1e-9}
    results, node = run_ok(campaign_builder(config, TARGET))
    assert results["statistics"]["convergence_reason"] == "cpu_budget_exhausted"
    assert results["statistics"]["iterations"] == 1  # any evaluation uses more than 3.6 microseconds of CPU
    for record in results["state"]["candidates"]:
        evaluation = node.base.links.get_outgoing(link_label_filter=f"evaluate_{record['id']}").one().node
        (function,) = [n for n in evaluation.called_descendants if n.process_label == "analytic_alloy_properties"]
        seconds = (function.mtime - function.ctime).total_seconds()
        assert record["cost"]["cpu_seconds"] == record["cost"]["wall_seconds"] == pytest.approx(seconds)
        assert seconds > 0
        assert record["cost"]["n_atoms"] == 8 and record["cost"]["n_kpoints"] == 64
    summary = calls(node, "record_iteration")[0].outputs.summary
    assert summary["cpu_hours_used"] == pytest.approx(
        sum(r["cost"]["cpu_seconds"] for r in results["state"]["candidates"]) / 3600
    )


def test_a_cost_aware_campaign_proposes_by_improvement_per_predicted_cost(aiida_profile):
    results, node = run_ok(campaign_builder({**BO, "max_iterations": 2, "seed": 1, "cost_aware": True}, TARGET))
    records = results["state"]["candidates"]
    assert [r["generation_method"] for r in records] == ["random", "random", "bo:RANGE/cost", "bo:RANGE/cost"]
    report = calls(node, "suggest_candidates")[1].outputs.proposals["report"]
    assert report["cost_source"] == "cost model fitted to the paid evaluations" and report["cost_exponent"] == 1.0
    assert len(report["predicted_costs"]) == 2 and all(c > 0 for c in report["predicted_costs"])


def test_the_cpu_seconds_of_a_dft_evaluation_come_from_its_pw_calculations(nanoos_resources):
    """pw.x's own wall time (output_parameters) x MPI processes x threads; serial here, so CPU = wall."""
    from ase.build import bulk

    from aiida_nanoos.workflows.campaign import CampaignWorkChain, evaluator_builder

    space = {
        "base_structure": atoms_to_dict(bulk("Si", "diamond", a=5.43)),
        "dimensions": [{"type": "strain", "name": "strain", "ranges": {"iso": [-0.02, 0.02]}, "isotropic": True}],
    }
    cheap = {"scf": {"kpoints_distance": 0.6, "pw": {"parameters": {"SYSTEM": {"ecutwfc": 20.0, "ecutrho": 160.0}}}}}
    inputs = evaluator_builder("band_gap", space, code=nanoos_resources["pw"], protocol="fast", overrides=cheap)
    config = {**BO, "max_iterations": 3, "seed": 2, "budget_cpu_hours": 1e-4}  # 0.36 s: pw.x takes more
    builder = CampaignWorkChain.get_builder_from_evaluator(space, "maximize_bandgap", "band_gap", inputs, config=config)
    results, node = run_ok(builder)
    assert results["statistics"]["convergence_reason"] == "cpu_budget_exhausted"
    records = results["state"]["candidates"]
    assert len(records) == 2
    for record in records:
        evaluation = node.base.links.get_outgoing(link_label_filter=f"evaluate_{record['id']}").one().node
        pw_runs = [n for n in evaluation.called_descendants if n.process_label == "PwCalculation"]
        wall = sum(n.outputs.output_parameters["wall_time_seconds"] for n in pw_runs)
        assert len(pw_runs) >= 1 and not any(n.get_option("withmpi") for n in pw_runs)
        assert record["cost"]["wall_seconds"] == pytest.approx(wall) and record["cost"]["cpu_seconds"] == pytest.approx(
            wall
        )
        assert wall > 0 and record["cost"]["calculations"] == len(pw_runs) and record["cost"]["n_atoms"] == 2
