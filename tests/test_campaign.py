"""``nanoos.campaign`` as real processes (the analytic evaluator, a real WorkChain + calcfunction, stands in for
DFT): each algorithm, provenance of every decision, failed evaluations, convergence, several objectives, bad input
refused before anything runs, and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_nanoos.design.analytic_model import alloy_properties
from aiida_nanoos.design.pareto import pareto_mask
from tests.campaign_fixtures import campaign_builder, group_iv_space, iteration_results, replay_campaign

TARGET = {"objective": "target_range", "property": "bandgap", "range": [1.0, 1.2]}


def calls(node, label):
    return sorted((n for n in node.called if n.process_label == label), key=lambda n: n.ctime)


def evaluations(node):
    return {
        link.link_label.removeprefix("evaluate_"): link.node
        for link in node.base.links.get_outgoing().all()
        if link.link_label.startswith("evaluate_")
    }


def test_bayesian_optimisation_campaign_and_the_provenance_of_its_decisions(aiida_profile):
    results, node = run_get_node(
        campaign_builder(
            {"algorithm": "bayesian_optimization", "batch_size": 2, "max_iterations": 3, "seed": 1}, TARGET
        )
    )
    assert node.is_finished_ok, node.exit_message
    stats = results["statistics"]
    assert stats["iterations"] == 3 and stats["total_candidates_evaluated"] == 6 and stats["failed_evaluations"] == 0
    assert stats["convergence_reason"] == "max_iterations"
    assert stats["generation_methods"] == {"random": 2, "bo:RANGE": 4}
    assert len(stats["iteration_times"]) == 3 and all(t > 0 for t in stats["iteration_times"])
    records = results["state"]["candidates"]
    evaluated = evaluations(node)
    assert sorted(evaluated) == sorted(r["id"] for r in records)
    for record in records:
        structure = orm.load_node(record["uuid"])
        # the candidate was made by the proposal step and evaluated as it is
        assert structure.creator.process_label == "suggest_candidates"
        candidate = structure.base.attributes.get("candidate")
        assert candidate["id"] == record["id"] and candidate["iteration"] == record["iteration"] + 1
        assert candidate["parameters"] == record["parameters"]
        assert evaluated[record["id"]].inputs.structure.uuid == structure.uuid
        atoms = structure.get_ase()
        expected = alloy_properties(atoms.get_chemical_symbols(), atoms.get_volume())
        assert record["properties"]["bandgap"] == pytest.approx(expected["bandgap"], rel=1e-12)
        gap = expected["bandgap"]
        assert record["value"] == pytest.approx(-max(1.0 - gap, 0.0, gap - 1.2), abs=1e-12)
    # the GP was fitted (a node) before each model-based proposal, and that proposal used the fit
    fits, suggests = calls(node, "fit_gp"), calls(node, "suggest_candidates")
    assert len(fits) == 2 and len(suggests) == 3
    assert "hyperparameters" not in suggests[0].inputs
    for fit, suggest in zip(fits, suggests[1:], strict=True):
        assert suggest.inputs.hyperparameters.uuid == fit.outputs.result.uuid
        model = fit.outputs.result["models"][0]
        assert len(model["lengthscales"]) == 3 + 3 + 1  # one-hot dopants + fraction per substitution, strain
        assert model["n_observed"] == (2 if fit is fits[0] else 4)
    # per-iteration outputs and the best candidates
    assert sorted(iteration_results(node)) == ["iteration_001", "iteration_002", "iteration_003"]
    for k, (_, outputs) in enumerate(sorted(iteration_results(node).items())):
        assert outputs["state"]["iteration"] == k + 1
        assert outputs["summary"]["candidates_evaluated"] == len(outputs["summary"]["candidates"]) == 2
        for entry in outputs["summary"]["candidates"]:  # each a structure proposed by that iteration's decision
            structure = orm.load_node(entry["uuid"])
            assert (
                structure.creator.process_label == "suggest_candidates" and structure.get_formula() == entry["formula"]
            )
    best = results["best_candidates"]["candidates"]
    assert best[0]["objectives"][0] == max(r["value"] for r in records)
    assert [b["objectives"][0] for b in best] == sorted((r["value"] for r in records), reverse=True)[: len(best)]
    assert results["best_structures"]["rank_1"].uuid == best[0]["uuid"]
    assert stats["best_per_iteration"][-1] == max(r["value"] for r in records if r["iteration"] == 2)


def test_genetic_campaign_children_are_linked_to_their_parents(aiida_profile):
    results, node = run_get_node(
        campaign_builder({"algorithm": "genetic", "batch_size": 2, "max_iterations": 3, "seed": 6})
    )
    assert node.is_finished_ok, node.exit_message
    records = results["state"]["candidates"]
    by_uuid = {r["uuid"]: r for r in records}
    children = [orm.load_node(r["uuid"]) for r in records if r["generation_method"].startswith("genetic:")]
    assert len(children) == 4  # the first generation is random, the next two bred
    for child in children:
        candidate = child.base.attributes.get("candidate")
        assert candidate["parents"] and len(candidate["parent_uuids"]) == len(candidate["parents"])
        suggest_inputs = {n.uuid for n in child.creator.base.links.get_incoming().all_nodes()}
        for parent_id, parent_uuid in zip(candidate["parents"], candidate["parent_uuids"], strict=True):
            parent = by_uuid[parent_uuid]
            assert parent["id"] == parent_id and parent["iteration"] < candidate["iteration"] - 1  # an earlier one
            assert parent_uuid in suggest_inputs  # the parent structure is an input of the proposal that made it
    assert results["state"]["ga"]["kind"] == "structure_ga"
    assert len(results["state"]["ga"]["population"]) == len(results["state"]["ga"]["fitness"]) > 0


def test_failed_evaluations_are_recorded_and_patience_stops_the_campaign(aiida_profile):
    space = group_iv_space(ge_dopants=("Si", "Pb"))  # the analytic evaluator knows no Pb: those evaluations fail
    config = {"algorithm": "random", "batch_size": 3, "max_iterations": 6, "patience": 2, "seed": 8}
    results, node = run_get_node(campaign_builder(config, space=space))
    assert node.is_finished_ok, node.exit_message
    records = results["state"]["candidates"]
    failed = [r for r in records if r["status"] == "failed"]
    assert len(failed) == 3 and all("Pb" in r["formula"] and r["value"] is None for r in failed)
    for r in failed:
        assert "410" in r["error"] and "no parameters for ['Pb']" in r["error"]
        assert evaluations(node)[r["id"]].exit_status == 410
    stats = results["statistics"]
    assert stats["failed_evaluations"] == 3 and stats["convergence_reason"] == "no_improvement"
    assert stats["iterations"] == 3 < config["max_iterations"]
    # the same decisions, failures and stopping point as the pure core makes on its own
    reference = replay_campaign(config, space=space)
    assert [(r["formula"], r["status"]) for r in records] == [(r["formula"], r["status"]) for r in reference]
    assert stats["best_objective_value"] == pytest.approx(max(r["value"] for r in reference if r["value"] is not None))


def test_all_evaluations_failing_gives_exit_code_404(aiida_profile):
    space = group_iv_space()
    space["dimensions"] = [
        {"type": "substitution", "name": "lead", "host": "Si", "dopants": ["Pb"], "fraction": [0.25, 1]}
    ]
    results, node = run_get_node(
        campaign_builder({"algorithm": "random", "batch_size": 2, "max_iterations": 1}, space=space)
    )
    assert node.exit_status == 404 and "All 2 evaluations failed" in node.exit_message
    assert results["statistics"]["failed_evaluations"] == 2 and results["best_candidates"]["candidates"] == []


def test_a_failing_campaign_step_ends_with_an_exit_code_and_keeps_the_state(aiida_profile, monkeypatch):
    """A decision that raises (here the proposer, inside suggest_candidates) ends the campaign with exit code 411,
    a message naming the step and the error, and the last state as output for restart_from."""
    from aiida_nanoos.design.proposers import registry

    config = {"algorithm": "random", "batch_size": 2, "max_iterations": 3, "seed": 1}
    calls_made = []

    def failing_second_time(ctx):
        calls_made.append(ctx.state.iteration)
        if len(calls_made) == 2:
            raise RuntimeError("proposer exploded")
        return registry.propose_random(ctx)

    monkeypatch.setitem(registry.PROPOSERS, "random", failing_second_time)
    results, node = run_get_node(campaign_builder(config))
    assert node.exit_status == 411
    assert "propose_candidates" in node.exit_message and "RuntimeError: proposer exploded" in node.exit_message
    assert [r["id"] for r in results["state"]["candidates"]] == ["i001c00", "i001c01"]  # the first iteration is kept
    suggest = calls(node, "suggest_candidates")
    assert len(suggest) == 2 and suggest[1].is_excepted and "proposer exploded" in suggest[1].exception


def test_a_decision_calcfunction_that_fails_ends_the_campaign_with_exit_code_410(aiida_profile, monkeypatch):
    """fit_gp finishing with its own non-zero exit status (no model could be fitted) ends the campaign with 410."""
    from aiida_nanoos.design.proposers import registry

    monkeypatch.setattr(registry, "fit_models", lambda *args: None)
    config = {"algorithm": "bayesian_optimization", "batch_size": 2, "max_iterations": 3, "seed": 1}
    results, node = run_get_node(campaign_builder(config))
    assert node.exit_status == 410
    assert "fit_gp" in node.exit_message and "needs at least two successful evaluations" in node.exit_message
    fit = calls(node, "fit_gp")
    assert len(fit) == 1 and fit[0].exit_status == 410
    assert len(results["state"]["candidates"]) == 2  # the first (random) iteration is kept


def test_a_finished_campaign_continues_from_its_state_with_more_iterations(aiida_profile):
    config = {"algorithm": "bayesian_optimization", "batch_size": 2, "max_iterations": 1, "seed": 9}
    first, node = run_get_node(campaign_builder(config, TARGET))
    assert node.is_finished_ok and first["statistics"]["convergence_reason"] == "max_iterations"
    builder = campaign_builder({**config, "max_iterations": 2}, TARGET)
    builder.restart_from = first["state"]
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    records = results["state"]["candidates"]
    assert [r["id"] for r in records] == ["i001c00", "i001c01", "i002c00", "i002c01"]
    assert records[:2] == first["state"]["candidates"]
    assert {r["generation_method"] for r in records[2:]} == {"bo:RANGE"}  # the GP learnt from the first campaign
    assert list(iteration_results(node)) == ["iteration_002"]
    assert calls(node, "fit_gp")[0].outputs.result["models"][0]["n_observed"] == 2
    assert calls(node, "initialize_campaign")[0].inputs.restart_from.uuid == first["state"].uuid


def test_a_state_stored_by_the_previous_version_continues(aiida_profile):
    """``restart_from`` a version-1 state (OptimizerState + extra, stored by the previous code): the history is
    kept, its unrecorded batch dropped, and the campaign goes on in the new layout."""
    from pathlib import Path

    old = json.loads((Path(__file__).parent / "core" / "design" / "state_v1.json").read_text())["bayesian_optimization"]
    from aiida_nanoos.design import campaign as cp

    space = cp.load_space(group_iv_space())
    for record in old["extra"]["candidates"]:  # the fixture's structures, stored (it was made by the core alone)
        atoms = space.to_atoms(record["parameters"], record["site_seed"])
        record["uuid"] = orm.StructureData(ase=atoms).store().uuid
    config = {"algorithm": "bayesian_optimization", "batch_size": 3, "seed": 11, "max_iterations": 4}
    builder = campaign_builder(config)
    builder.restart_from = orm.Dict(old)
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    state = results["state"].get_dict()
    assert state["schema_version"] == 2 and "extra" not in state and state["iteration"] == 4
    ids = [r["id"] for r in state["candidates"]]
    assert ids[:9] == [r["id"] for r in old["extra"]["candidates"]] and len(ids) == 12
    assert {r["generation_method"] for r in state["candidates"][9:]} == {"bo:UCB"}
    assert results["statistics"]["failed_evaluations"] == 1  # the injected failure of the old history


def test_multi_objective_campaign_returns_the_pareto_front(aiida_profile):
    objective = {"objectives": ["maximize_bandgap", "maximize_stability"]}
    results, node = run_get_node(
        campaign_builder(
            {"algorithm": "bayesian_optimization", "batch_size": 2, "max_iterations": 3, "seed": 2}, objective
        )
    )
    assert node.is_finished_ok, node.exit_message
    records = results["state"]["candidates"]
    Y = np.array([r["objectives"] for r in records])
    on_front = {records[i]["id"] for i in np.flatnonzero(pareto_mask(Y, ["max", "max"]))}
    front = results["pareto_front"]
    assert {m["id"] for m in front["members"]} == on_front and front["names"] == [
        "maximize_bandgap",
        "maximize_stability",
    ]
    assert front["hypervolume"] > 0
    assert results["statistics"]["metric"] == "hypervolume"
    assert results["statistics"]["best_objective_value"] == pytest.approx(front["hypervolume"])
    assert {r["generation_method"] for r in records if r["iteration"] > 0} == {"bo:EHVI"}
    assert calls(node, "pareto_front")[0].outputs.result.uuid == front.uuid


# ---------------------------------------------------------------------------------------------- bad input
def _bad(edit_space=None, objective="maximize_bandgap", config=None, evaluator="analytic", **kwargs):
    space = group_iv_space()
    if edit_space:
        edit_space(space)
    return campaign_builder(config or {}, objective, space=space, evaluator=evaluator, **kwargs)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: _bad(lambda s: s["dimensions"][2]["ranges"].update(iso=[0.02, 0.02])),
            r"search_space.*strain 'strain'.*range",
        ),
        (lambda: _bad(lambda s: s["dimensions"][0].update(fraction=[1.0, 0.5])), r"search_space.*'si_sites' fraction"),
        (lambda: _bad(lambda s: s["dimensions"][0].update(dopants=["C", "Qq"])), r"search_space.*unknown element 'Qq'"),
        (lambda: _bad(objective="maximize_entropy"), r"objective: .*unknown objective 'maximize_entropy'"),
        (
            lambda: _bad(objective={"objective": "custom", "formula": "bandgap.__class__"}),
            r"objective: .*attribute access",
        ),
        (lambda: _bad(objective={"objective": "custom", "formula": "exec('1')"}), r"objective: .*call to 'exec'"),
        (lambda: _bad(objective={"objective": "custom", "formula": "cost"}), r"objective: needs \['cost'\]"),
        (lambda: _bad(config={"batch_size": 99, "candidate_pool": 10}), r"config.batch_size: 99 is larger"),
        (
            lambda: _bad(config={"algorithm": "active_learning"}),
            r"config.property_model: 'active_learning' needs a property model",
        ),
        (
            lambda: _bad(config={"algorithm": "active_learning", "surrogate": {"model": "m"}}),
            r"config.surrogate: renamed; use config.property_model",
        ),
        (lambda: _bad(evaluator="band_structure"), r"evaluator: unknown evaluator 'band_structure'"),
        (lambda: _bad(constraints={"allowed_elements": ["Si", "Kryptonite"]}), r"allowed_elements: unknown element"),
    ],
)
def test_bad_input_is_refused_before_any_process_runs(aiida_profile, make, message):
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=message):
        run_get_node(make())
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_objective_needing_what_the_dft_evaluator_does_not_compute_is_refused(aiida_profile):
    with pytest.raises(ValueError, match=r"needs \['formation_energy'\], which evaluator 'band_gap' does not"):
        run_get_node(_bad(objective="minimize_formation_energy", evaluator="band_gap"))


def test_evaluator_inputs_are_checked_against_the_evaluator_spec(aiida_profile):
    builder = _bad(evaluator="band_gap")  # a DFT evaluator without its pw.x inputs
    with pytest.raises(ValueError, match=r"evaluator_inputs: not valid for evaluator 'band_gap'.*scf"):
        run_get_node(builder)
    builder = _bad()
    builder.evaluator_inputs = {"temperature": orm.Float(300)}  # the analytic evaluator has no such input
    with pytest.raises(ValueError, match=r"evaluator_inputs: not valid for evaluator 'analytic'.*temperature"):
        run_get_node(builder)


# ---------------------------------------------------------------------------------------------- command line
def test_campaign_command_line_run_show_and_stats(aiida_profile, tmp_path):
    from click.testing import CliRunner

    from aiida_nanoos.cli import cli

    config = tmp_path / "campaign.yaml"
    config.write_text(
        """
name: analytic group-IV test
search_space:
  base_structure: {bulk: SiGe, crystalstructure: zincblende, a: 5.54, cubic: true}
  dimensions:
    - {type: substitution, name: si_sites, host: Si, dopants: [C, Ge], fraction: [0, 1]}
    - {type: strain, name: strain, ranges: {iso: [-0.03, 0.03]}, isotropic: true}
objective: {objective: target_range, property: bandgap, range: [0.9, 1.1]}
constraints: {allowed_elements: [C, Si, Ge], properties: [{property: stability_score, min: 0.01}]}
config: {algorithm: bayesian_optimization, batch_size: 2, max_iterations: 2, seed: 3, top_n: 3}
evaluator: {name: analytic}
"""
    )
    runner = CliRunner()
    result = runner.invoke(cli, ["-p", aiida_profile.name, "campaign", "run", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "finished with exit status 0" in result.output and "Best candidates" in result.output
    pk = int(result.output.split("CampaignWorkChain<")[1].split(">")[0])
    node = orm.load_node(pk)
    assert node.label == "analytic group-IV test"
    symbols = node.inputs.search_space["base_structure"]["symbols"]
    assert symbols.count("Si") == symbols.count("Ge") == 4  # the 8-atom cell built from the YAML's bulk spec
    show = runner.invoke(cli, ["-p", aiida_profile.name, "campaign", "show", str(pk)], catch_exceptions=False)
    assert show.exit_code == 0 and "GP (target_range_bandgap): matern52" in show.output
    assert "output none" in show.output  # a target window is modelled on the property's own scale
    best = node.outputs.best_candidates["candidates"][0]
    assert best["id"] in show.output and best["formula"] in show.output
    # the per-iteration summaries are found through the record_iteration links (not outputs of the campaign)
    from aiida_nanoos.query import iteration_outputs

    summaries = iteration_outputs(node, "summary")
    assert [s["iteration"] for s in summaries] == [1, 2] and "iterations" not in node.outputs
    table = show.output.split("Iterations")[1].split("Best candidates")[0].strip().splitlines()[1:]
    assert [line.split()[:3] for line in table] == [[str(s["iteration"]), "2", "0"] for s in summaries]
    stats = runner.invoke(
        cli, ["-p", aiida_profile.name, "campaign", "stats", str(pk), "--json"], catch_exceptions=False
    )
    data = json.loads(stats.output)
    assert data["budget_used"] == data["total_candidates_evaluated"] == 4
    assert data["convergence_trend"] == node.outputs.statistics["convergence_trend"]
    assert 0 < data["evaluation_wall_time_total"] < data["campaign_wall_time"]
    bad = runner.invoke(cli, ["-p", aiida_profile.name, "campaign", "run", str(tmp_path / "missing.yaml")])
    assert bad.exit_code != 0
    config.write_text(config.read_text().replace("batch_size: 2", "batch_size: 0"))
    bad = runner.invoke(cli, ["-p", aiida_profile.name, "campaign", "run", str(config)])
    assert bad.exit_code != 0 and "config.batch_size" in bad.output


def test_campaign_overhead_benchmark_reports_each_iteration(aiida_profile):
    """The benchmark runs a real campaign the way ``campaign run`` does and splits each iteration's wall time."""
    from click.testing import CliRunner

    from aiida_nanoos.cli import cli

    result = CliRunner().invoke(
        cli,
        ["-p", aiida_profile.name, "benchmark", "campaign-overhead", "--iterations", "2", "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    node = orm.load_node(figures["campaign_pk"])
    assert node.is_finished_ok and len(iteration_results(node)) == figures["iterations"] == 2
    assert 0 < figures["evaluation_span_per_iteration"] < figures["seconds_per_iteration"]
    assert figures["seconds_per_iteration"] == pytest.approx(sum(figures["seconds_each_iteration"]) / 2, abs=2e-3)
    assert figures["campaign_steps_per_iteration"] == pytest.approx(
        figures["seconds_per_iteration"] - figures["evaluation_span_per_iteration"], abs=2e-3
    )
    assert set(figures["step_seconds"]) == {"fit_gp", "suggest_candidates", "record_iteration", "evaluator_process"}
