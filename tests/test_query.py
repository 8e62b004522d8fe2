"""The provenance query API (:mod:`aiida_nanoos.query`) on real stored nodes: analytic campaigns (real processes, no
DFT), a SNAP fitted to real pw.x labels, a LAMMPS MD run with it, and a property model trained by its CalcJob."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import run_get_node

from aiida_nanoos import query
from aiida_nanoos.calculations.md import MdCalculation, md_parameters
from aiida_nanoos.design.pareto import pareto_mask
from tests.campaign_fixtures import campaign_builder

pytest_plugins = ["tests.potential_fixtures"]


def _run(builder, label: str):
    builder.metadata.label = f"{label}-{uuid.uuid4().hex[:8]}"  # unique: the campaign is found by its label
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    return node


@pytest.fixture(scope="session")
def bo_campaign(aiida_profile):
    """Bayesian optimisation of the band gap: one random iteration (2 candidates), then two BO iterations."""
    config = {"algorithm": "bayesian_optimization", "batch_size": 2, "max_iterations": 3, "seed": 1}
    return _run(campaign_builder(config), "query-bo")


@pytest.fixture(scope="session")
def random_campaign(aiida_profile):
    """Random search of the same space: the stored baseline of the BO campaign."""
    return _run(campaign_builder({"algorithm": "random", "batch_size": 3, "max_iterations": 2, "seed": 5}), "query-rs")


@pytest.fixture(scope="session")
def pareto_campaign(aiida_profile):
    objective = {"objectives": ["maximize_bandgap", "maximize_stability"]}
    config = {"algorithm": "bayesian_optimization", "batch_size": 3, "max_iterations": 3, "seed": 2}
    return _run(campaign_builder(config, objective), "query-pareto")


def _records(node) -> list[dict]:
    return node.outputs.state.get_dict()["candidates"]


# ---------------------------------------------------------------------------------------------- campaigns
def test_campaign_dataframe_has_one_row_per_candidate(bo_campaign):
    frame = query.campaign_dataframe(bo_campaign.label)  # by label
    records = _records(bo_campaign)
    assert len(frame) == len(records) == 6
    assert list(frame["id"]) == [r["id"] for r in records]
    assert list(frame["iteration"]) == [1, 1, 2, 2, 3, 3]
    assert list(frame["generation_method"]) == ["random", "random", "bo:UCB", "bo:UCB", "bo:UCB", "bo:UCB"]
    assert set(frame["status"]) == {"ok"} and set(frame["source"]) == {"dft"}
    assert frame["value"].tolist() == pytest.approx([r["value"] for r in records])
    assert frame["properties.bandgap"].tolist() == pytest.approx([r["properties"]["bandgap"] for r in records])
    assert frame["parameters.strain.iso"].tolist() == pytest.approx([r["parameters"]["strain"]["iso"] for r in records])
    assert frame["value"].max() == pytest.approx(bo_campaign.outputs.statistics["best_objective_value"])
    assert frame["structure"].tolist() == [r["uuid"] for r in records]
    states = query.iteration_outputs(bo_campaign, "state")  # one per iteration, the last one the final state
    assert len(states) == 3 and states[-1].get_dict()["candidates"] == records
    assert [s["iteration"] for s in query.iteration_outputs(bo_campaign, "summary")] == [1, 2, 3]


def test_best_candidates_across_campaigns_within_a_range(bo_campaign, random_campaign):
    records = [(c.pk, r) for c in (bo_campaign, random_campaign) for r in _records(c)]
    gaps = sorted(r["properties"]["bandgap"] for _, r in records)
    low, high = gaps[2], gaps[-3]  # cut the two smallest and the two largest
    mine = [bo_campaign.pk, random_campaign.pk]
    found = query.best_candidates("bandgap", low, high, limit=100, campaigns=mine)
    expected = sorted(
        (
            (pk, r["id"], r["properties"]["bandgap"], r["uuid"])
            for pk, r in records
            if low <= r["properties"]["bandgap"] <= high
        ),
        key=lambda row: -row[2],
    )
    assert len(found) == len(expected) == len(records) - 4
    assert list(zip(found["campaign"], found["candidate"], found["bandgap"], found["structure"], strict=True)) == [
        (pk, cid, pytest.approx(gap), uuid) for pk, cid, gap, uuid in expected
    ]
    assert set(found["campaign_label"]) == {bo_campaign.label, random_campaign.label}
    assert query.best_candidates("bandgap", limit=2, largest=False, campaigns=mine)["bandgap"].tolist() == (
        pytest.approx(gaps[:2])
    )
    everywhere = query.best_candidates("bandgap", low, high, limit=1000)  # all campaigns of the profile
    assert set(zip(found["campaign"], found["candidate"], strict=True)) <= set(
        zip(everywhere["campaign"], everywhere["candidate"], strict=True)
    )
    assert everywhere["bandgap"].between(low, high).all() and everywhere["bandgap"].is_monotonic_decreasing
    assert query.best_candidates("bandgap", 1e6).empty


def test_convergence_data_ends_at_the_best_value(bo_campaign, random_campaign):
    data = query.convergence_data(bo_campaign)
    stats = bo_campaign.outputs.statistics.get_dict()
    assert data["best_so_far"] == pytest.approx(stats["convergence_trend"])
    assert data["best_so_far"][-1] == pytest.approx(stats["best_objective_value"])
    assert data["evaluations"] == [2, 4, 6] and data["metric"] == "maximize_bandgap" and data["units"] == "eV"
    records = _records(bo_campaign)
    assert [v for _, v in data["evaluated"]] == pytest.approx([r["objectives"][0] for r in records])
    assert data["samples"] == pytest.approx([r["objectives"][0] for r in records[:2]])  # the random start
    with_baseline = query.convergence_data(bo_campaign, baseline=random_campaign.uuid)
    assert with_baseline["samples"] == pytest.approx([r["objectives"][0] for r in _records(random_campaign)])
    assert f"campaign {random_campaign.pk}" in with_baseline["sample_source"]


def test_pareto_data_marks_the_stored_front(pareto_campaign, bo_campaign):
    data = query.pareto_data(pareto_campaign.pk)
    front = pareto_campaign.outputs.pareto_front.get_dict()
    assert int(np.sum(data["on_front"])) == len(front["members"]) >= 1
    assert list(data["on_front"]) == list(pareto_mask(data["objectives"], ["max", "max"]))
    assert data["hypervolume"] == pytest.approx(front["hypervolume"])
    assert data["names"] == ["maximize_bandgap", "maximize_stability"] and data["units"][0] == "eV"
    with pytest.raises(ValueError, match="one objective"):
        query.pareto_data(bo_campaign)
    with pytest.raises(ValueError, match="not a campaign"):
        query.campaign_view(bo_campaign.outputs.statistics.pk)


# ---------------------------------------------------------------------------------------------- potentials, MD
def _labelling_calculations(training_set) -> list[orm.CalcJobNode]:
    """The pw.x runs whose outputs build_training_set gathered: one hop back from the set's creator."""
    inputs = training_set.creator.base.links.get_incoming(link_type=LinkType.INPUT_CALC).all_nodes()
    return sorted(
        {n.creator.pk: n.creator for n in inputs if isinstance(n.creator, orm.CalcJobNode)}.values(), key=lambda n: n.pk
    )


def test_dft_calculations_and_potentials_linked_both_ways(si_snap, si8_training_set):
    from aiida_nanoos.functions.potential import validate_potential

    calculations = query.training_calculations(si_snap)
    expected = _labelling_calculations(si8_training_set)
    assert [c.pk for c in calculations] == [c.pk for c in expected] and len(calculations) == 6
    assert {c.uuid for c in calculations} == {f.info["source_uuid"] for f in si8_training_set.get_frames()}
    assert [c.pk for c in calculations] == [c.pk for c in si_snap.training_calculations()]
    assert all(c.process_type == "aiida.calculations:quantumespresso.pw" for c in calculations)
    assert query.fit_of(si_snap).pk == si_snap.creator.pk

    # a validated copy is the same potential: same DFT, and found from each calculation
    copy = validate_potential(potential=si_snap, validation_set=si8_training_set)["potential"]
    assert [c.pk for c in query.training_calculations(copy)] == [c.pk for c in calculations]
    trained = query.potentials_trained_from(calculations[0])
    assert {si_snap.pk, copy.pk} <= {p.pk for p in trained}
    assert all(calculations[0].pk in {c.pk for c in query.training_calculations(p)} for p in trained)
    assert {p.pk for p in query.same_potential(copy)} >= {si_snap.pk, copy.pk}


def test_parity_from_the_stored_validation_and_from_the_training_frames(si_snap, si8_training_set):
    from aiida_nanoos.functions.potential import validate_potential

    recomputed = query.training_parity(si_snap)
    energy_reference, energy_predicted = recomputed["parity"]["energy"]
    assert len(energy_reference) == 6 and "in-sample" in recomputed["subset"]
    result = validate_potential(potential=si_snap, validation_set=si8_training_set)
    stored = query.parity_data(result["potential"])
    assert f"ArrayData<{result['parity'].pk}>" in stored["subset"] and "6 held-out frames" in stored["subset"]
    for quantity in ("energy", "force", "stress"):
        reference, predicted = stored["parity"][quantity]
        assert np.array_equal(reference, result["parity"].get_array(f"{quantity}_reference"))
        # the same potential on the same frames: re-evaluation reproduces the stored validation
        assert np.allclose(recomputed["parity"][quantity][1], predicted, rtol=1e-8, atol=1e-8)
    rmse = np.sqrt(np.mean((energy_predicted - energy_reference) ** 2))
    assert rmse == pytest.approx(result["metrics"]["errors"]["energy_rmse"], rel=1e-6)


@pytest.fixture
def si_md(si_snap):
    """A short NVT run of 64 Si atoms with the fitted SNAP (real LAMMPS)."""
    from ase.build import bulk

    builder = MdCalculation.get_builder()
    builder.code = orm.load_code("lmp@localhost")
    builder.potential = si_snap
    builder.structure = orm.StructureData(ase=bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 2)))
    builder.parameters = orm.Dict(md_parameters("nvt", temperature=400, steps=100, thermo_every=10, seed=2))
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    return node


def test_md_runs_of_a_potential_and_their_thermodynamics(si_snap, si_md, si8_training_set):
    from aiida_nanoos.functions.potential import validate_potential

    runs = query.md_runs(si_snap)
    assert si_md.pk in [r.pk for r in runs]
    assert all(r.inputs.potential.pk in {p.pk for p in query.same_potential(si_snap)} for r in runs)
    copy = validate_potential(potential=si_snap, validation_set=si8_training_set)["potential"]
    assert si_md.pk in [r.pk for r in query.md_runs(copy)]
    assert si_md.pk not in [r.pk for r in query.md_runs(copy, include_copies=False)]

    data = query.thermo_data(si_md.pk)
    thermo = si_md.outputs.time_dependent_computes
    assert data["time_ps"].tolist() == pytest.approx((thermo.get_array("Step") * 0.001).tolist())
    assert data["time_ps"][-1] == pytest.approx(0.1) and len(data["time_ps"]) == 11
    assert np.array_equal(data["potential_energy"], thermo.get_array("PotEng"))
    assert data["temperature"][-1] == pytest.approx(si_md.outputs.results["final_temp"], rel=1e-3)
    assert data["pressure"] is not None and data["n_atoms"] == 64 and data["target_temperature"] == 400
    with pytest.raises(ValueError, match="not an MD run"):
        query.load_md(si_snap.creator.pk)


def test_an_md_work_chain_is_plotted_from_the_runs_it_launched(si_snap):
    """``md plot`` takes the PK a user sees in ``verdi process list`` for an MD of the pipeline: the restart chain
    (``nanoos.md.base``), whose inputs are namespaced; its thermodynamics are those of the job it ran."""
    from ase.build import bulk

    from aiida_nanoos.workflows.md_base import MdBaseWorkChain

    parameters = md_parameters("nvt", temperature=300, steps=50, thermo_every=10, seed=3)
    structure = orm.StructureData(ase=bulk("Si", "diamond", a=5.43, cubic=True))
    md = {"code": orm.load_code("lmp@localhost"), "potential": si_snap, "structure": structure}
    _, chain = run_get_node(MdBaseWorkChain, md={**md, "parameters": orm.Dict(parameters)})
    assert chain.is_finished_ok, chain.exit_message
    (job,) = query.md_segments(chain)
    from_chain, from_job = query.thermo_data(chain.pk), query.thermo_data(job.pk)
    assert from_chain["title"].startswith(f"MdBaseWorkChain<{chain.pk}>") and from_chain["n_atoms"] == 8
    for key in ("time_ps", "temperature", "potential_energy", "pressure"):
        assert np.array_equal(from_chain[key], from_job[key])
    assert from_chain["time_ps"][-1] == pytest.approx(0.05) and from_chain["target_temperature"] == 300


# ---------------------------------------------------------------------------------------------- property model
TINY_CONFIG = {
    "epochs": 3,
    "n_models": 2,
    "batch_size": 16,
    "seed": 1,
    "validation_fraction": 0.25,
    "architecture": {"hidden": 16, "n_conv": 2, "head_hidden": 16, "dropout": 0.1, "bond_ratio_bins": 4},
}


@pytest.fixture(scope="session")
def trained_model(nanoos_resources):
    """A tiny crystal-graph ensemble trained by the nanoos.model.train CalcJob on 24 structure nodes."""
    from aiida_nanoos.benchmarks.crystal_graph_harness import generate_perovskite_candidates
    from aiida_nanoos.calculations.model_training import ModelTrainingCalculation
    from tests.test_model import toy_target

    structures = generate_perovskite_candidates(24, seed=3)
    builder = ModelTrainingCalculation.get_builder()
    builder.code = orm.load_code("nanoos-train-model@localhost")
    builder.config = orm.Dict({"target": "formation_energy", "name": "query_toy", **TINY_CONFIG})
    builder.structures = {f"s{i:02d}": orm.StructureData(ase=atoms) for i, atoms in enumerate(structures)}
    builder.targets = orm.Dict({f"s{i:02d}": toy_target(atoms) for i, atoms in enumerate(structures)})
    builder.metadata.options.max_wallclock_seconds = 600
    results, node = run_get_node(builder)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    return results["model"]


def test_calibration_data_recomputes_the_stored_validation(trained_model):
    from aiida_nanoos.models.calibration import calibration_report

    data = query.calibration_data(trained_model.full_name)
    stored = trained_model.metrics["calibration"]
    assert len(data["errors"]) == stored["n"] == 6  # 25 % of 24
    report = calibration_report(data["errors"], data["sigma"])
    for key in ("mae", "rmse", "coverage_1sigma", "coverage_2sigma", "miscalibration_area"):
        assert report[key] == pytest.approx(stored[key], rel=1e-4, abs=1e-6), key
    assert data["target"] == "formation_energy" and data["units"] == "eV/atom" and data["summary"] == stored


def test_calibration_of_a_model_stored_from_memory_is_its_summary(trained_model):
    from aiida_nanoos.data.model import ModelData

    copy = ModelData.from_model(trained_model.load_model(), name="query_toy_memory", metrics=trained_model.metrics)
    data = query.calibration_data(copy.store().pk)
    assert (
        data["errors"] is None
        and data["summary"]["coverage_1sigma"] == trained_model.metrics["calibration"]["coverage_1sigma"]
    )
    assert "stored summary only" in data["subset"]


# ---------------------------------------------------------------------------------------------- CLI presets
def _cli(aiida_profile, *args):
    from click.testing import CliRunner

    from aiida_nanoos.cli import cli

    result = CliRunner().invoke(cli, ["-p", aiida_profile.name, "query", *map(str, args)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_query_cli_campaign_table_and_best(aiida_profile, bo_campaign, tmp_path):
    import json

    import pandas as pd

    table = _cli(aiida_profile, "campaign-table", bo_campaign.label)
    assert table.count("bo:UCB") == 4 and "generation_method" in table
    _cli(aiida_profile, "campaign-table", bo_campaign.pk, "--csv", tmp_path / "c.csv")
    assert pd.read_csv(tmp_path / "c.csv")["value"].tolist() == pytest.approx(
        query.campaign_dataframe(bo_campaign)["value"].tolist()
    )
    rows = json.loads(_cli(aiida_profile, "best", "bandgap", "--min", 0.5, "--limit", 3, "--json"))
    assert [r["bandgap"] for r in rows] == pytest.approx(query.best_candidates("bandgap", 0.5, limit=3)["bandgap"])


def test_query_cli_potential_presets(aiida_profile, si_snap, si_md):
    import json

    dft = json.loads(_cli(aiida_profile, "training-dft", si_snap.uuid, "--json"))
    assert [r["PK"] for r in dft] == [c.pk for c in query.training_calculations(si_snap)] and len(dft) == 6
    assert {r["process"] for r in dft} == {"PwCalculation"}
    potentials = json.loads(_cli(aiida_profile, "potentials-from", dft[0]["PK"], "--json"))
    assert si_snap.pk in [r["PK"] for r in potentials]
    runs = json.loads(_cli(aiida_profile, "md-runs", si_snap.pk, "--json"))
    assert si_md.pk in [r["PK"] for r in runs]
