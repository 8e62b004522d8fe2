"""``nanoos.campaign`` with the crystal-graph property model: active learning with ml_then_dft evaluation and retraining
(the analytic evaluator stands in for DFT, the ``nanoos.model.train`` CalcJob really trains), ML-only evaluation with
a stored model, and bad property-model settings refused before anything runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_nanoos.data.model import ModelData
from aiida_nanoos.design import campaign as cp
from tests.campaign_fixtures import campaign_builder, group_iv_space, iteration_results

#: A network small enough to train in a second or two on a few cells.
TINY_ARCHITECTURE = {"hidden": 16, "n_conv": 2, "head_hidden": 16, "dropout": 0.0, "bond_ratio_bins": 4}
TINY_TRAINING = {"epochs": 3, "n_models": 2, "batch_size": 16, "architecture": TINY_ARCHITECTURE}


def calls(node, label):
    """Processes named ``label`` anywhere below the campaign (training runs inside its restart work chain)."""
    return sorted((n for n in node.called_descendants if n.process_label == label), key=lambda n: n.ctime)


def test_active_learning_ml_then_dft_campaign_retrains_and_reports_statistics(nanoos_resources):
    config = {
        "algorithm": "active_learning",
        "evaluation_method": "ml_then_dft",
        "batch_size": 4,
        "max_iterations": 3,
        "budget": 10,
        "seed": 2,
        "property_model": {
            "name": "al_test_bandgap",
            "min_labels": 4,
            "pool_size": 12,
            "strategy": "greedy_uncertainty",
            "dft_trigger": "fraction",
            "dft_fraction": 0.5,
            "retrain_every": 1,
            "training": TINY_TRAINING,
        },
    }
    builder = campaign_builder(config)
    builder.model_training_code = orm.load_code("nanoos-train-model@localhost")
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message

    # retraining happened: two training CalcJobs, the model version went up, the last model is the output
    trainings = calls(node, "ModelTrainingCalculation")
    assert len(trainings) == 2 and all(t.is_finished_ok for t in trainings)
    versions = [t.outputs.model.version for t in trainings]
    assert versions[1] == versions[0] + 1
    assert results["property_model"].uuid == trainings[1].outputs.model.uuid
    assert len(trainings[0].inputs.structures) == 4 and len(trainings[1].inputs.structures) == 6

    summaries = [outputs["summary"].get_dict() for _, outputs in sorted(iteration_results(node).items())]
    assert len(summaries) == 3
    used = 0
    for k, s in enumerate(summaries):
        assert s["candidates_simulated"] + s["candidates_ml_predicted"] == s["candidates_evaluated"] == 4
        used += s["candidates_simulated"]
        assert s["budget_used"] == used and s["budget_remaining"] == 10 - used
        if k == 0:  # no model yet: random proposals, everything simulated
            assert s["model"] is None and s["candidates_simulated"] == 4 and s["mean_uncertainty"] is None
        else:
            assert s["retrained"] and s["model"] == f"al_test_bandgap_v{versions[k - 1]}"
            assert s["candidates_simulated"] == 2 and s["candidates_scored"] == 12
            assert math.isfinite(s["mean_uncertainty"]) and s["mean_uncertainty"] > 0
            assert math.isfinite(s["pool_mean_uncertainty"])
    assert summaries[1]["information_gain"] is None  # the first model has nothing to compare with
    gain = summaries[2]["information_gain"]
    assert gain["model_before"] == f"al_test_bandgap_v{versions[0]}" and math.isfinite(gain["absolute_reduction"])

    # the records say where each value came from; ML values carry their uncertainty
    records = results["state"]["candidates"]
    assert sum(r["source"] != "ml" for r in records) == 8
    for r in records:
        if r["iteration"] > 0:
            assert r["generation_method"] == "active_learning:greedy_uncertainty" and r["rationale"]
        if r["source"] == "ml":
            assert r["properties"]["source"] == "ml" and np.isfinite(r["properties"]["uncertainty"])
    stats = results["statistics"]
    assert stats["budget_used"] == 8
    assert stats["property_model"]["total_candidates_simulated"] == 8
    assert stats["property_model"]["total_candidates_ml_predicted"] == 4 and stats["property_model"]["trainings"] == 2

    # provenance of the decisions: pool -> prediction -> selection -> proposal
    proposals = calls(node, "suggest_candidates")
    assert "selection" not in proposals[0].inputs
    for proposal in proposals[1:]:
        selection = proposal.inputs.selection
        assert selection.creator.process_label == "select_for_simulation"
        prediction = selection.creator.inputs.prediction
        assert prediction.creator.inputs.model.uuid == proposal.inputs.model.uuid
    evaluated = {link.link_label for link in node.base.links.get_outgoing().all()}
    assert sum(label.startswith("evaluate_") for label in evaluated) == 8
    # every other decision is a node too: each training's labels and settings come from the record_iteration that
    # found it due, and the DFT share of each batch from the settings suggest_candidates chose
    for training in trainings:
        for port in ("targets", "config"):
            assert training.inputs[port].creator.process_label == "record_iteration"
        plan = training.inputs.targets.creator.outputs.training_plan
        assert sorted(plan["structures"]) == sorted(training.inputs.targets.get_dict())
        assert {n.uuid for n in training.inputs.structures.values()} == set(plan["structures"].values())
    called = node.base.links.get_outgoing().all()
    for_dft = [link.node for link in called if link.link_label == "select_for_dft"]
    from_pool = [link.node for link in called if link.link_label == "select_from_pool"]
    assert len(for_dft) == len(from_pool) == 2  # the two iterations with a model
    for choice in for_dft:
        assert choice.inputs.settings.creator.process_label == "suggest_candidates"
        assert choice.inputs.settings["budget"] == 2  # dft_fraction 0.5 of a batch of 4
    for choice in from_pool:
        assert choice.inputs.settings.creator.process_label == "generate_pool"
        assert choice.inputs.settings["strategy"] == "greedy_uncertainty" and choice.inputs.settings["budget"] == 4


@pytest.fixture(scope="module")
def sige_model():
    """A model of the analytic band gap on random cells of the group-IV space, stored as a nanoos.model."""
    from aiida_nanoos.design.analytic_model import alloy_properties
    from aiida_nanoos.models.cgcnn import Architecture, TrainingSettings, train_model

    space = cp.load_space(group_iv_space())
    rng = np.random.default_rng(0)
    cells = [space.to_atoms(p, int(rng.integers(1000))) for p in space.sample(24, rng)]
    gaps = [alloy_properties(a.get_chemical_symbols(), a.get_volume())["bandgap"] for a in cells]
    model = train_model(
        cells,
        gaps,
        "bandgap",
        n_members=2,
        architecture=Architecture(**TINY_ARCHITECTURE),
        training=TrainingSettings(epochs=3, batch_size=16),
    )
    return ModelData.from_model(model, name="sige_bandgap").store()


def test_ml_only_campaign_with_a_stored_model_runs_no_evaluator(aiida_profile, sige_model):
    config = {
        "algorithm": "active_learning",
        "evaluation_method": "ml_only",
        "batch_size": 3,
        "max_iterations": 2,
        "seed": 4,
        "property_model": {"model": "sige_bandgap", "pool_size": 8, "strategy": "uncertainty"},
    }
    results, node = run_get_node(campaign_builder(config))
    assert node.is_finished_ok, node.exit_message
    assert not [link for link in node.base.links.get_outgoing().all() if link.link_label.startswith("evaluate_")]
    records = results["state"]["candidates"]
    assert len(records) == 6 and all(r["source"] == "ml" and r["status"] == "ok" for r in records)
    for r in records:
        assert r["properties"]["model"] == sige_model.full_name and r["properties"]["uncertainty"] > 0
        assert r["value"] == pytest.approx(r["properties"]["bandgap"])
    for _, outputs in iteration_results(node).items():
        s = outputs["summary"]
        assert s["candidates_simulated"] == 0 and s["candidates_ml_predicted"] == 3 and s["budget_used"] == 0
        assert s["model"] == sige_model.full_name and math.isfinite(s["mean_uncertainty"])
    assert results["statistics"]["budget_used"] == 0
    assert results["property_model"].uuid == sige_model.uuid
    assert calls(node, "ModelTrainingCalculation") == []
    from click.testing import CliRunner

    from aiida_nanoos.cli.campaign import campaign

    shown = CliRunner().invoke(campaign, ["show", str(node.pk)])
    assert shown.exit_code == 0, shown.output
    best = shown.output.split("Best candidates")[1].split("State")[0]
    assert "source" in best and best.count(" ml ±") == len(results["best_candidates"]["candidates"])


def test_ml_then_dft_value_per_cost_sends_the_labels_worth_their_cost(aiida_profile, sige_model):
    """The fidelity is chosen per candidate: each selection for DFT is a node whose settings carry every candidate's
    predicted cost and the share of the batch's DFT cost to spend, and whose reasons name value and cost."""
    config = {
        "algorithm": "active_learning",
        "evaluation_method": "ml_then_dft",
        "batch_size": 4,
        "max_iterations": 2,
        "seed": 5,
        "top_n": 2,
        "property_model": {
            "model": "sige_bandgap",
            "pool_size": 8,
            "dft_trigger": "value_per_cost",
            "dft_fraction": 0.5,
        },
    }
    results, node = run_get_node(campaign_builder(config))
    assert node.is_finished_ok, node.exit_message
    called = node.base.links.get_outgoing().all()
    choices = sorted((link.node for link in called if link.link_label == "select_for_dft"), key=lambda n: n.ctime)
    assert len(choices) == 2
    records = {r["id"]: r for r in results["state"]["candidates"]}
    for choice in choices:
        settings = choice.inputs.settings
        assert settings.creator.process_label == "suggest_candidates"
        assert settings["strategy"] == "value_per_cost" and settings["cost_share"] == 0.5
        batch = set(choice.inputs.prediction.get_array("labels").tolist())
        assert set(settings["costs"]) == batch and all(c > 0 for c in settings["costs"].values())
        selection = choice.outputs.result
        chosen = selection["selected_labels"]
        # every cell of this space costs about the same, so half the batch's DFT cost buys about half the batch
        assert 1 <= len(chosen) <= 3 and all(records[c]["source"] == "dft" for c in chosen)
        assert all(e["reason"].startswith("value_per_cost: ") for e in selection["selected"])
        assert all(records[c]["source"] == "ml" for c in batch - set(chosen))
    # the second selection knows the DFT labels of the first: its value is the gain over the second best of them
    first_labels = [records[c]["properties"]["bandgap"] for c in choices[0].outputs.result["selected_labels"]]
    reference = sorted(first_labels)[-2] if len(first_labels) > 1 else first_labels[0]
    assert choices[1].inputs.settings["best_observed"] == pytest.approx(reference)
    assert "best_observed" not in choices[0].inputs.settings


@pytest.mark.parametrize(
    ("config", "code", "message"),
    [
        (
            {"algorithm": "active_learning", "property_model": {"model": "sige_bandgap", "strategy": "thompson"}},
            False,
            r"config.property_model.strategy: unknown strategy 'thompson'",
        ),
        (
            {"evaluation_method": "ml_then_dft", "property_model": {"model": "sige_bandgap", "dft_fraction": 1.5}},
            False,
            r"config.property_model.dft_fraction: must lie in \[0.0, 1.0\]",
        ),
        (
            {"evaluation_method": "ml_only", "property_model": {"pool_size": 8}},
            False,
            r"config.property_model: evaluation_method 'ml_only' needs a model \(property_model.model\) or training",
        ),
        ({"evaluation_method": "ml_only"}, False, r"config.property_model: 'ml_only' needs a property model"),
        (
            {"evaluation_method": "ml_only", "property_model": {"training": {"epochs": 2}}},
            False,
            r"model_training_code: required by config.property_model.training",
        ),
        (
            {"evaluation_method": "ml_only", "property_model": {"model": "no_such_model"}},
            False,
            r"config.property_model.model: no model 'no_such_model'",
        ),
        (
            {"evaluation_method": "ml_only", "property_model": {"training": {"epochs": 0}}},
            True,
            r"config.property_model.training: epochs must be at least 1",
        ),
        (
            {"evaluation_method": "ml_then_dft", "property_model": {"model": "sige_bandgap"}},
            False,
            r"config.property_model.uncertainty_threshold: required by dft_trigger 'uncertainty'",
        ),
    ],
)
def test_bad_property_model_settings_are_refused_before_anything_runs(
    nanoos_resources, sige_model, config, code, message
):
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=message):  # refused by the config port or by the whole-input validator
        builder = campaign_builder({"batch_size": 2, **config})
        if code:
            builder.model_training_code = orm.load_code("nanoos-train-model@localhost")
        run_get_node(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_ml_only_objective_needing_other_properties_is_refused(aiida_profile, sige_model):
    config = {"evaluation_method": "ml_only", "property_model": {"model": "sige_bandgap"}}
    objective = {"objective": "maximize_bandgap", "constraints": ["stability_score >= 0.1"]}
    with pytest.raises(ValueError, match=r"objective: needs \['stability_score'\], which evaluation_method 'ml_only'"):
        run_get_node(campaign_builder(config, objective=objective))


# ---------------------------------------------------------------------------------------------- evaluators
def test_property_model_and_ml_then_dft_evaluators_predict_one_structure(nanoos_resources, sige_model):
    from aiida_nanoos.workflows.campaign import merge_inputs, split_inputs
    from aiida_nanoos.workflows.evaluators import load_evaluator
    from aiida_nanoos.workflows.evaluators.dft import BandGapWorkChain
    from tests.campaign_fixtures import sige_cell

    structure = orm.StructureData(ase=sige_cell())
    results, node = run_get_node(load_evaluator("property_model"), structure=structure, model=sige_model)
    assert node.is_finished_ok
    properties = results["properties"].get_dict()
    assert properties["source"] == "ml" and properties["model"] == sige_model.full_name
    assert np.isfinite(properties["bandgap"]) and properties["uncertainty"] > 0
    assert results["properties"].creator.inputs.prediction.creator.inputs.model.uuid == sige_model.uuid

    dft = BandGapWorkChain.get_builder_from_protocol(
        nanoos_resources["pw"], elements=["C", "Ge", "Si"], template=structure, protocol="fast"
    )
    inputs = merge_inputs(*split_inputs(dft))
    hybrid = load_evaluator("ml_then_dft").get_builder()
    hybrid.structure, hybrid.model, hybrid.uncertainty_threshold = structure, sige_model, orm.Float(1e6)
    hybrid.dft = {key: value for key, value in inputs.items() if key != "structure"}
    results, node = run_get_node(hybrid)
    assert node.is_finished_ok, node.exit_message
    assert results["properties"]["source"] == "ml"  # confident enough: no DFT was run
    assert results["properties"]["bandgap"] == pytest.approx(properties["bandgap"])
    assert not [n for n in node.called if n.process_label == "BandGapWorkChain"]


def test_example_config_builds_a_valid_campaign(nanoos_resources):
    from pathlib import Path

    from aiida_nanoos.cli.campaign import builder_from_config
    from aiida_nanoos.cli.utils import read_config

    path = Path(__file__).resolve().parent.parent / "examples" / "campaign_active_learning.yaml"
    builder = builder_from_config(read_config(path), path.parent)
    assert builder.model_training_code.full_label == "nanoos-train-model@localhost"
    assert builder.config["property_model"]["training"]["n_models"] == 3
    from aiida_nanoos.workflows.campaign import CampaignWorkChain, merge_inputs

    inputs = {key: builder[key] for key in builder if key != "metadata"}
    assert CampaignWorkChain.spec().inputs.validate(merge_inputs(inputs, {})) is None


def test_a_continued_property_model_campaign_keeps_the_model_it_had(aiida_profile, sige_model):
    """restart_from: the state names the model in use, so a newer version stored meanwhile does not replace it."""
    config = {
        "algorithm": "active_learning",
        "evaluation_method": "ml_only",
        "batch_size": 2,
        "max_iterations": 1,
        "seed": 5,
        "property_model": {"model": "sige_bandgap", "pool_size": 6, "strategy": "uncertainty"},
    }
    first, node = run_get_node(campaign_builder(config))
    assert node.is_finished_ok, node.exit_message
    assert first["state"]["property_model"]["model_uuid"] == sige_model.uuid
    newer = ModelData.from_model(sige_model.load_model(), name="sige_bandgap").store()
    try:
        assert newer.version == sige_model.version + 1 and ModelData.find("sige_bandgap").uuid == newer.uuid
        builder = campaign_builder({**config, "max_iterations": 2})
        builder.restart_from = first["state"]
        results, node = run_get_node(builder)
        assert node.is_finished_ok, node.exit_message
        assert list(iteration_results(node)) == ["iteration_002"]
        assert iteration_results(node)["iteration_002"]["summary"]["model"] == sige_model.full_name
        assert results["property_model"].uuid == sige_model.uuid
        records = results["state"]["candidates"]
        assert [r["id"] for r in records] == ["i001c00", "i001c01", "i002c00", "i002c01"]
    finally:
        orm.Node.collection.delete(newer.pk)  # the other tests find "sige_bandgap" by name


def test_a_config_with_the_names_of_the_previous_version_is_refused_naming_the_new_one(nanoos_resources):
    import click

    from aiida_nanoos.cli.campaign import builder_from_config

    base = {"search_space": {"base_structure": {"bulk": "Si", "cubic": True}, "dimensions": []}}
    base["objective"] = "maximize_bandgap"
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    cases = [
        (
            {"config": {"algorithm": "active_learning", "surrogate": {"model": "m"}}, "evaluator": "analytic"},
            "config.surrogate: renamed; use config.property_model",
        ),
        (
            {"config": {"evaluation_method": "hybrid", "property_model": {"model": "m"}}, "evaluator": "analytic"},
            "'hybrid' was renamed; use 'ml_then_dft'",
        ),
        ({"evaluator": {"name": "hybrid"}}, "evaluator: 'hybrid' was renamed; use 'ml_then_dft'"),
        ({"evaluator": "ml"}, "evaluator: 'ml' was renamed; use 'property_model'"),
    ]
    for extra, message in cases:
        with pytest.raises(click.BadParameter, match=message):
            builder_from_config({**base, **extra}, Path("."))
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before
