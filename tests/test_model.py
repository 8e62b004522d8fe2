"""Property surrogates in AiiDA: ``nanoos.model`` nodes, the ``nanoos.model.train`` CalcJob (in-process, through the
daemon, on perov5), the prediction and selection calcfunctions, and bad input refused before any work."""

from __future__ import annotations

import csv
import sys

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node

from aiida_nanoos.benchmarks.crystal_graph_harness import generate_perovskite_candidates
from aiida_nanoos.data.model import ModelData
from aiida_nanoos.data.structure_batch import StructureBatchData
from aiida_nanoos.functions.property_model import predict_with_uncertainty, select_for_simulation

#: A network small enough to train in a second or two on a few dozen cells.
TINY_ARCHITECTURE = {"hidden": 16, "n_conv": 2, "head_hidden": 16, "dropout": 0.1, "bond_ratio_bins": 4}
TINY_CONFIG = {"epochs": 3, "n_models": 2, "batch_size": 16, "architecture": TINY_ARCHITECTURE, "seed": 1}


def toy_target(atoms) -> float:
    """A formation-energy-like rule (eV/cell): more ionic cells (larger electronegativity spread) are more stable."""
    from aiida_nanoos.models.graph import element_properties

    chi = np.array([element_properties(z)["electronegativity"] for z in atoms.numbers])
    return float(-0.8 * np.sum(np.abs(chi - chi.mean())) + 0.05 * atoms.get_volume() ** (1 / 3))


@pytest.fixture(scope="module")
def toy_structures():
    structures = generate_perovskite_candidates(32, seed=3)
    return structures, [toy_target(atoms) for atoms in structures]


@pytest.fixture(scope="module")
def toy_model(toy_structures):
    """An in-memory two-member model with dropout (both uncertainty methods run)."""
    from aiida_nanoos.models.cgcnn import Architecture, TrainingSettings, train_model

    structures, targets = toy_structures
    return train_model(
        structures,
        targets,
        "formation_energy",
        n_members=2,
        architecture=Architecture(**TINY_ARCHITECTURE),
        training=TrainingSettings(epochs=3, batch_size=16),
        seed=0,
    )


@pytest.fixture(scope="module")
def stored_model(toy_model):
    return ModelData.from_model(toy_model, name="toy_formation_energy", metrics={"mae": 0.1}).store()


def _count(node_class) -> int:
    return orm.QueryBuilder().append(node_class).count()


# ------------------------------------------------------------------------------------------------ ModelData
def test_model_data_round_trip_and_lookup(toy_model, toy_structures):
    from aiida_nanoos.data import model as model_module

    first = ModelData.from_model(toy_model, name="cgcnn_roundtrip").store()
    second = ModelData.from_model(toy_model, name="cgcnn_roundtrip", metrics={"mae": 0.2}).store()
    assert (first.version, second.version) == (1, 2)
    assert first.full_name == "cgcnn_roundtrip_v1"
    assert first.target == "formation_energy"
    assert first.method == "ensemble" and set(first.methods) == {"ensemble", "mc_dropout"}
    assert set(first.elements) <= {s for atoms in toy_structures[0] for s in atoms.get_chemical_symbols()}
    assert second.metrics == {"mae": 0.2}
    assert ModelData.find("cgcnn_roundtrip").pk == second.pk  # latest version
    assert ModelData.find("cgcnn_roundtrip_v1").pk == first.pk
    assert ModelData.find("cgcnn_roundtrip", version=1).pk == first.pk
    with pytest.raises(ValueError, match="no model 'missing_model'.*cgcnn_roundtrip_v1"):
        ModelData.find("missing_model")
    with pytest.raises(ValueError, match="ends in _v"):
        ModelData.from_model(toy_model, name="bad_v3")

    model_module._CACHE.clear()  # load from the repository, not from memory
    loaded = orm.load_node(first.pk).load_model()
    structures = toy_structures[0][:6]
    np.testing.assert_allclose(loaded.predict(structures), toy_model.predict(structures), rtol=1e-6, atol=1e-6)
    before = toy_model.predict_with_uncertainty(structures, method="ensemble")
    after = loaded.predict_with_uncertainty(structures, method="ensemble")
    np.testing.assert_allclose(after.uncertainty, before.uncertainty, rtol=1e-6, atol=1e-6)
    assert orm.load_node(first.pk).load_model() is loaded  # cached per node


def test_model_data_checks(stored_model):
    from ase import Atoms

    with pytest.raises(ValueError, match="predicts 'formation_energy', not 'band_gap'"):
        stored_model.check_target("band_gap")
    with pytest.raises(ValueError, match="no element features for Og"):
        stored_model.check_structures([Atoms("OgO", positions=[(0, 0, 0), (2, 0, 0)], cell=[4, 4, 4], pbc=True)])
    with pytest.raises(ValueError, match="empty batch"):
        stored_model.check_structures([])
    with pytest.raises(ValueError, match="not on He"):
        stored_model.check_structures([Atoms("He", cell=[3, 3, 3], pbc=True)], allow_unseen=False)
    with pytest.raises(ValueError, match="supports the uncertainty method"):
        stored_model.check_method("bayesian")


# ------------------------------------------------------------------------------------------------ prediction
def test_predict_one_node_per_batch(stored_model):
    candidates = generate_perovskite_candidates(300, seed=11)
    batch = StructureBatchData(candidates, labels=[f"cand{i:04d}" for i in range(300)])
    assert batch.n_structures == 300 and len(batch.get_atoms()) == 300
    n_before = _count(orm.Data)
    result, node = run_get_node(
        predict_with_uncertainty, model=stored_model, structures=batch, settings=orm.Dict({"method": "mc_dropout"})
    )
    assert node.is_finished_ok
    assert _count(orm.Data) - n_before == 3  # batch, settings, one output: not one node per candidate
    assert result.get_array("labels").tolist()[:2] == ["cand0000", "cand0001"]
    for key in ("prediction", "uncertainty", "epistemic_uncertainty", "model_agreement"):
        values = result.get_array(key)
        assert values.shape == (300,) and np.all(np.isfinite(values)), key
    assert np.all(result.get_array("uncertainty") > 0)
    assert result.get_array("predictions_raw").shape == (30, 300)
    assert result.base.attributes.get("model") == stored_model.full_name
    assert result.base.attributes.get("method") == "mc_dropout"
    direct = stored_model.load_model().predict_with_uncertainty(
        candidates, method="mc_dropout", n_samples=30, batch_size=512
    )
    np.testing.assert_allclose(result.get_array("prediction"), direct.prediction, rtol=1e-6)


def test_predict_candidate_nodes_are_linked(stored_model):
    nodes = {f"c{i}": orm.StructureData(ase=atoms) for i, atoms in enumerate(generate_perovskite_candidates(4, 5))}
    result, node = run_get_node(predict_with_uncertainty, model=stored_model, candidates=nodes)
    assert result.get_array("labels").tolist() == ["c0", "c1", "c2", "c3"]
    incoming = {link.link_label for link in node.base.links.get_incoming().all()}
    assert {"candidates__c0", "candidates__c3", "model"} <= incoming
    assert result.base.attributes.get("method") == "ensemble"


def _og_cell(symbol="Og"):
    from ase import Atoms

    return Atoms(f"{symbol}TiO3", scaled_positions=generate_perovskite_candidates(1)[0].get_scaled_positions(),
                 cell=[4, 4, 4], pbc=True)  # fmt: skip


@pytest.mark.parametrize(
    "make_inputs, message",
    [
        (lambda m: {"structures": StructureBatchData([_og_cell()])}, "no element features for Og"),
        (lambda m: {"candidates": {"bad": orm.StructureData(ase=_og_cell("Am"))}}, "no element features for Am"),
        (lambda m: {}, "empty batch"),
        (
            lambda m: {
                "structures": StructureBatchData(generate_perovskite_candidates(2)),
                "settings": orm.Dict({"target": "band_gap"}),
            },
            "predicts 'formation_energy', not 'band_gap'",
        ),  # fmt: skip
        (
            lambda m: {
                "structures": StructureBatchData(generate_perovskite_candidates(2)),
                "settings": orm.Dict({"temperature": 3}),
            },
            "unknown key",
        ),  # fmt: skip
    ],
)
def test_predict_refuses_bad_input_before_work(stored_model, make_inputs, message):
    inputs = make_inputs(stored_model)
    n_before = _count(orm.CalcFunctionNode)
    with pytest.raises(ValueError, match=message):
        predict_with_uncertainty(model=stored_model, **inputs)
    assert _count(orm.CalcFunctionNode) == n_before  # refused by the input validator: no process ran


def test_empty_structure_batch_refused():
    with pytest.raises(ValueError, match="empty batch"):
        StructureBatchData([])


# ------------------------------------------------------------------------------------------------ selection
def _hand_made_prediction() -> orm.ArrayData:
    prediction = orm.ArrayData()
    prediction.set_array("labels", np.array(["a", "b", "c", "d", "e"]))
    prediction.set_array("prediction", np.array([-1.0, -0.5, -2.0, 0.3, -1.5]))
    prediction.set_array("uncertainty", np.array([0.1, 0.5, 0.3, 0.05, 0.4]))
    return prediction


def test_select_for_simulation_picks_expected_labels():
    prediction = _hand_made_prediction()
    chosen = select_for_simulation(prediction, orm.Dict({"strategy": "uncertainty", "budget": 2}))
    assert chosen["selected_labels"] == ["b", "e"]
    assert [entry["confidence"] for entry in chosen["selected"]] == ["low", "low"]
    assert all(entry["reason"] for entry in chosen["selected"])
    excluded = select_for_simulation(prediction, orm.Dict({"budget": 2, "exclude": ["b"]}))
    assert excluded["selected_labels"] == ["e", "c"]
    capped = select_for_simulation(prediction, orm.Dict({"budget": 3, "simulation_budget": {"total": 4, "used": 3}}))
    assert capped["selected_labels"] == ["b"] and capped["budget"]["used"] == 4
    greedy = select_for_simulation(
        prediction, orm.Dict({"strategy": "greedy_uncertainty", "budget": 1, "exploration_weight": 0.0})
    )
    assert greedy["selected_labels"] == ["c"]  # lowest predicted value (direction min)
    with pytest.raises(ValueError, match="unknown strategy"):
        select_for_simulation(prediction, orm.Dict({"strategy": "psychic"}))
    with pytest.raises(ValueError, match="needs embeddings"):
        select_for_simulation(prediction, orm.Dict({"strategy": "diverse_uncertainty"}))


def test_predict_then_select_diverse(stored_model):
    batch = StructureBatchData(generate_perovskite_candidates(40, seed=8))
    prediction = predict_with_uncertainty(
        model=stored_model, structures=batch, settings=orm.Dict({"store_embeddings": True})
    )
    chosen = select_for_simulation(prediction, orm.Dict({"strategy": "diverse_uncertainty", "budget": 3}))
    assert len(chosen["selected_labels"]) == 3 and len(set(chosen["selected_labels"])) == 3


def _spread(points: np.ndarray) -> float:
    """Smallest distance between two of the points."""
    return float(min(np.linalg.norm(a - b) for i, a in enumerate(points) for b in points[i + 1 :]))


def test_diverse_uncertainty_spreads_a_batch_that_uncertainty_clusters():
    # the four most uncertain candidates sit in one tight cluster; slightly less uncertain ones lie far apart
    rng = np.random.default_rng(0)
    cluster = rng.normal(0.0, 0.01, (4, 3))
    spread_out = np.array([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0], [-5.0, 0, 0], [0, -5.0, 0], [0, 0, -5.0]])
    embeddings = np.vstack([cluster, spread_out])
    uncertainty = np.array([0.90, 0.89, 0.88, 0.87, 0.80, 0.79, 0.78, 0.77, 0.76, 0.75])
    prediction = orm.ArrayData()
    prediction.set_array("labels", np.array([f"c{i}" for i in range(10)]))
    prediction.set_array("prediction", np.zeros(10))
    prediction.set_array("uncertainty", uncertainty)
    prediction.set_array("embeddings", embeddings)
    picks = {}
    for strategy in ("uncertainty", "diverse_uncertainty"):
        result = select_for_simulation(prediction, orm.Dict({"strategy": strategy, "budget": 3}))
        picks[strategy] = [int(label[1:]) for label in result["selected_labels"]]
    assert picks["uncertainty"] == [0, 1, 2]  # the cluster
    assert picks["diverse_uncertainty"][0] == 0  # starts from the most uncertain candidate
    assert set(picks["diverse_uncertainty"]) <= set(range(9))  # within the 3 * budget most uncertain
    assert len(set(picks["diverse_uncertainty"]) & {0, 1, 2, 3}) == 1  # one pick from the cluster only
    assert _spread(embeddings[picks["diverse_uncertainty"]]) > 100 * _spread(embeddings[picks["uncertainty"]])


# ------------------------------------------------------------------------------------------------ training CalcJob
def _train_builder(code, config, **inputs):
    from aiida_nanoos.calculations.model_training import ModelTrainingCalculation

    builder = ModelTrainingCalculation.get_builder()
    builder.code = code
    builder.config = orm.Dict(config)
    for key, value in inputs.items():
        setattr(builder, key, value)
    builder.metadata.options.max_wallclock_seconds = 600
    return builder


@pytest.fixture(scope="module")
def train_code(nanoos_resources):
    return orm.load_code("nanoos-train-model@localhost")


def test_train_model_calcjob_on_structure_nodes(train_code, toy_structures):
    structures, targets = toy_structures
    nodes = {f"s{i:02d}": orm.StructureData(ase=atoms) for i, atoms in enumerate(structures[:24])}
    values = {label: targets[i] for i, label in enumerate(nodes)}
    config = {"target": "formation_energy", "name": "toy_calcjob", **TINY_CONFIG}
    results, node = run_get_node(_train_builder(train_code, config, structures=nodes, targets=orm.Dict(values)))
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    model = results["model"]
    assert model.full_name == "toy_calcjob_v1" and model.target == "formation_energy"
    assert results["metrics"]["n_train"] + results["metrics"]["n_validation"] == 24
    assert np.isfinite(model.metrics["mae"]) and model.metrics["calibration"]["n"] >= 1
    assert model.training_calculations() == [node]
    incoming = {link.link_label for link in node.base.links.get_incoming().all()}
    assert "structures__s00" in incoming
    assert ModelData.find("toy_calcjob").pk == model.pk
    prediction = predict_with_uncertainty(model=model, structures=StructureBatchData(structures[24:]))
    assert prediction.get_array("prediction").shape == (8,)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"target": "formation_energy", "method": "bayesian"}, "config.method must be one of"),
        ({"target": "formation_energy", "method": "ensemble", "n_models": 1}, "at least 2"),
        ({"target": "formation_energy", "epochs": "many"}, "config.epochs must be a int"),
        ({"target": "formation_energy", "learning_rat": 0.1}, "unknown key"),
        ({"target": "formation_energy", "architecture": {"width": 3}}, "unknown field"),
        ({"target": "formation_energy", "name": "x_v2"}, "ends in _v"),
    ],
)
def test_train_model_refuses_bad_config(train_code, toy_structures, config, message):
    structures, targets = toy_structures
    nodes = {f"s{i}": orm.StructureData(ase=atoms) for i, atoms in enumerate(structures[:4])}
    targets = orm.Dict({label: targets[i] for i, label in enumerate(nodes)})
    with pytest.raises(ValueError, match=message):
        run_get_node(_train_builder(train_code, config, structures=nodes, targets=targets))


def test_train_model_refuses_bad_data(train_code, toy_structures, tmp_path, stored_model):
    structures, targets = toy_structures
    nodes = {f"s{i}": orm.StructureData(ase=atoms) for i, atoms in enumerate(structures[:5])}
    values = {label: targets[i] for i, label in enumerate(nodes)}
    config = orm.Dict({"target": "formation_energy"})
    with pytest.raises(ValueError, match=r"targets lack a value for structure\(s\) \['s4'\]"):
        run_get_node(
            _train_builder(
                train_code, config.get_dict(), structures=nodes, targets=orm.Dict(dict(list(values.items())[:4]))
            )
        )
    with pytest.raises(ValueError, match="no training data"):
        run_get_node(_train_builder(train_code, config.get_dict()))
    table = tmp_path / "table.csv"
    table.write_text("id,cif,band_gap\n")
    with pytest.raises(ValueError, match="no column 'formation_energy'"):
        run_get_node(_train_builder(train_code, config.get_dict(), dataset=orm.SinglefileData(table)))
    with pytest.raises(ValueError, match="toy_formation_energy_v1 already exists"):
        run_get_node(
            _train_builder(
                train_code,
                {"target": "formation_energy", "name": "toy_formation_energy", "version": 1},
                structures=nodes,
                targets=orm.Dict(values),
            )
        )


def _perov5_slice(shared_benchmarks, path, rows: int) -> orm.SinglefileData:
    csv.field_size_limit(sys.maxsize)
    with open(shared_benchmarks / "perov5" / "val.csv", newline="") as handle:
        reader = csv.reader(handle)
        lines = [next(reader) for _ in range(rows + 1)]
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(lines)
    return orm.SinglefileData(path)


def test_train_model_on_perov5_through_the_daemon(train_code, shared_benchmarks, tmp_path, submit_and_await):
    """The real benchmark table, trained by the daemon (as on a remote computer); then screened by name."""
    dataset = _perov5_slice(shared_benchmarks, tmp_path / "perov5_slice.csv", 60)
    config = {"target": "heat_all", "name": "cgcnn_formation_energy", **TINY_CONFIG}
    node = submit_and_await(_train_builder(train_code, config, dataset=dataset), timeout=300)
    assert node.is_finished_ok, (node.exit_status, node.exit_message)
    model = ModelData.find("cgcnn_formation_energy_v1")
    assert model.pk == node.outputs.model.pk and model.target == "heat_all"
    assert model.metrics["n_rows"] == 60 and node.outputs.metrics["n_validation"] == 6
    prediction = predict_with_uncertainty(
        model=model, structures=StructureBatchData(generate_perovskite_candidates(50, seed=2))
    )
    assert np.all(np.isfinite(prediction.get_array("uncertainty")))


def test_train_model_reports_a_failing_script(train_code, tmp_path):
    """Bad CIF text passes submission (only the header is read) and fails in the script: exit 320, message kept."""
    table = tmp_path / "broken.csv"
    table.write_text("id,cif,formation_energy\n" + "".join(f"{i},not a cif,{i}.0\n" for i in range(5)))
    config = {"target": "formation_energy", **TINY_CONFIG}
    _, node = run_get_node(_train_builder(train_code, config, dataset=orm.SinglefileData(table)))
    assert node.exit_status == 320
    assert "unreadable CIF" in node.exit_message
