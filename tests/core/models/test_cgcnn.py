"""Crystal-graph network: it learns a site-dependent target, its uncertainty grows out of distribution,
its predictions are invariant, it survives a save/load round trip, and it refuses bad requests."""

from __future__ import annotations

import copy
import time

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk

from aiida_nanoos.models.cgcnn import (
    Architecture,
    CrystalGraphModel,
    CrystalGraphNetwork,
    GraphDataset,
    TrainingSettings,
    train_model,
)
from aiida_nanoos.models.cgcnn_network import DENORMAL_GUARD
from aiida_nanoos.models.cgcnn_training import budget_clock
from aiida_nanoos.models.graph import GraphSettings, structures_to_graphs
from tests.core.perovskites import A_SITE, B_SITE, perovskite, perovskite_set, tolerance_factor

# the synthetic target is noise-free: no aleatoric head here (it is tested on noisy data below)
SMALL = Architecture(hidden=32, n_conv=2, head_hidden=32, dropout=0.1, aleatoric=False)
SETTINGS = GraphSettings(cutoff=6.0, max_neighbours=12)


@pytest.fixture(scope="module")
def data():
    structures, targets = perovskite_set(300, seed=1)
    return structures[:240], targets[:240], structures[240:], targets[240:]


@pytest.fixture(scope="module")
def model(data):
    torch.set_num_threads(1)
    structures, targets, _, _ = data
    training = TrainingSettings(epochs=30, batch_size=32, learning_rate=3e-3, patience=30)
    return train_model(
        structures,
        targets,
        "tolerance_factor",
        n_members=3,
        architecture=SMALL,
        graph_settings=SETTINGS,
        training=training,
        seed=0,
    )


def test_training_learns_site_dependent_target(data, model):
    _, train_targets, structures, targets = data
    spread = np.mean(np.abs(targets - train_targets.mean()))  # error of predicting the mean
    mae = np.mean(np.abs(model.predict(structures) - targets))
    assert mae < 0.1 * spread, (mae, spread)
    assert model.validation_mae < 0.15 * spread
    # the composition baseline inside the model cannot tell A from B sites: the graph part does the work
    baseline_only = model._baseline_values(model.featurise(structures))
    assert mae < 0.3 * np.mean(np.abs(baseline_only - targets))


def test_uncertainty_positive_and_larger_out_of_distribution(data, model):
    _, _, structures, _ = data
    # out of distribution: rock-salt oxides, fluorides and sulfides, a structure type absent from training
    rock_salts = [bulk(a + x, "rocksalt", a=5.0, cubic=True) for a in ("Na", "K", "Ca", "Sr") for x in ("O", "F", "S")]
    for method in ("ensemble", "mc_dropout"):
        inside = model.predict_with_uncertainty(structures, method=method, n_samples=20)
        outside = model.predict_with_uncertainty(rock_salts, method=method, n_samples=20)
        assert np.all(inside.uncertainty > 0)
        assert inside.predictions_raw.shape == ((3 if method == "ensemble" else 20), len(structures))
        assert np.mean(outside.uncertainty) > 1.5 * np.mean(inside.uncertainty), method
        assert np.mean(outside.model_agreement) < np.mean(inside.model_agreement)
        payload = inside.to_dict()
        assert len(payload["prediction"]) == len(structures) and payload["method"] == method


def test_model_agreement_is_high_where_members_agree_and_low_where_they_disagree(data, model):
    structures = data[2][:20]
    # identical members: every sample equals the consensus, agreement 1 everywhere
    clones = copy.deepcopy(model)
    clones.members = [copy.deepcopy(model.members[0]) for _ in range(3)]
    agreeing = clones.predict_with_uncertainty(structures, method="ensemble")
    np.testing.assert_allclose(agreeing.epistemic_uncertainty, 0.0, atol=1e-6)
    np.testing.assert_array_equal(agreeing.model_agreement, 1.0)
    # trained members scatter: a tolerance far below their spread leaves (almost) no sample agreeing
    strict = copy.deepcopy(model)
    result = strict.predict_with_uncertainty(structures, method="ensemble")
    strict.validation_mae = 1e-3 * float(np.min(result.epistemic_uncertainty))
    disagreeing = strict.predict_with_uncertainty(structures, method="ensemble")
    assert np.all(disagreeing.model_agreement <= 1 / 3)
    assert np.mean(disagreeing.model_agreement) < 0.1
    # and with the model's own tolerance (its validation MAE) agreement falls as the member spread grows
    order = np.argsort(result.epistemic_uncertainty)
    assert np.mean(result.model_agreement[order[:5]]) >= np.mean(result.model_agreement[order[-5:]])


def test_posterior_of_the_network_is_its_uncertain_prediction(data, model):
    structures = data[2][:10]
    result = model.predict_with_uncertainty(structures, method="mc_dropout", n_samples=8, seed=3)
    posterior = model.posterior(structures, method="mc_dropout", n_samples=8, seed=3, embeddings=True)
    np.testing.assert_array_equal(posterior.mean, result.prediction)
    np.testing.assert_array_equal(posterior.std, result.uncertainty)
    np.testing.assert_array_equal(posterior.samples, result.predictions_raw)
    assert posterior.samples.shape == (8, 10) and posterior.n_samples == 8
    np.testing.assert_allclose(posterior.samples.mean(axis=0), posterior.mean)
    np.testing.assert_array_equal(posterior.embeddings, model.embed(structures))
    epistemic = model.posterior(structures, method="ensemble", uncertainty="epistemic")
    np.testing.assert_allclose(epistemic.std, epistemic.samples.std(axis=0, ddof=1))
    with pytest.raises(ValueError, match="uncertainty"):
        model.posterior(structures, uncertainty="aleatoric")


def test_calibration_factor_fitted_on_validation(model):
    assert set(model.recalibration) == {"ensemble", "mc_dropout"}
    assert all(0.05 < r["scale"] < 50 and r["floor"] >= 0 for r in model.recalibration.values())


def test_predictions_invariant_to_atom_order_and_supercell(model):
    atoms = perovskite("Sr", "Ti", "O")
    atoms.positions[2] += [0.02, 0.0, 0.01]
    reference = model.predict([atoms])[0]
    shuffled = atoms[[4, 2, 0, 3, 1]]
    supercell = atoms.repeat((1, 2, 2))
    assert model.predict([shuffled])[0] == pytest.approx(reference, abs=1e-5)
    # extensive model: the supercell has 4x the cell value, i.e. the same value per atom
    assert model.extensive
    assert model.predict([supercell])[0] / len(supercell) == pytest.approx(reference / len(atoms), abs=1e-5)


def test_intensive_target_gives_same_value_for_supercell():
    torch.manual_seed(0)
    member = CrystalGraphNetwork(SMALL, SETTINGS.cutoff).eval()
    model = CrystalGraphModel("band_gap", [member], SMALL, SETTINGS, extensive=False, target_std=0.7)
    atoms = perovskite("Ba", "Zr", "S")
    assert model.predict([atoms.repeat((2, 2, 1))])[0] == pytest.approx(model.predict([atoms])[0], abs=1e-5)


def test_save_load_round_trip(tmp_path, data, model):
    _, _, structures, _ = data
    weights, config = model.save(tmp_path / "model")
    assert weights.exists() and config.exists()
    loaded = CrystalGraphModel.load(tmp_path / "model")
    for method in ("ensemble", "mc_dropout"):
        before = model.predict_with_uncertainty(structures[:10], method=method, n_samples=8, seed=3)
        after = loaded.predict_with_uncertainty(structures[:10], method=method, n_samples=8, seed=3)
        np.testing.assert_array_equal(before.predictions_raw, after.predictions_raw)
        np.testing.assert_array_equal(before.uncertainty, after.uncertainty)
    assert loaded.target == "tolerance_factor" and loaded.config() == model.config()
    # the same files loaded from explicit paths (as stored in a Data node)
    again = CrystalGraphModel.load(weights, config)
    np.testing.assert_array_equal(again.predict(structures[:5]), model.predict(structures[:5]))


def test_embeddings_shape(data, model):
    _, _, structures, _ = data
    embeddings = model.embed(structures[:7])
    assert embeddings.shape == (7, SMALL.hidden) and np.all(np.isfinite(embeddings))


def test_bad_requests_refused_before_work(model):
    with pytest.raises(ValueError, match="Cm"):
        model.predict_with_uncertainty([perovskite("Sr", "Ti", "O"), Atoms("Cm", cell=np.eye(3) * 3, pbc=True)])
    with pytest.raises(ValueError, match="empty"):
        model.predict_with_uncertainty([])
    with pytest.raises(ValueError, match="band_gap"):
        model.predict_with_uncertainty([perovskite("Sr", "Ti", "O")], target="band_gap")
    with pytest.raises(ValueError, match="method"):
        model.predict_with_uncertainty([perovskite("Sr", "Ti", "O")], method="bayesian")
    single = CrystalGraphModel(model.target, model.members[:1], model.architecture, model.graph_settings)
    with pytest.raises(ValueError, match="at least two members"):
        single.predict_with_uncertainty([perovskite("Sr", "Ti", "O")], method="ensemble")


def test_training_input_checks():
    structures, targets = perovskite_set(10, seed=2)
    with pytest.raises(ValueError, match="target values"):
        train_model(structures, targets[:5], "t")
    with pytest.raises(ValueError, match="NaN"):
        train_model(structures, np.full(10, np.nan), "t")
    with pytest.raises(ValueError, match="Og|no element features"):
        train_model([Atoms("Og", cell=np.eye(3) * 3, pbc=True)] * 4, np.zeros(4), "t")


def test_aleatoric_head_learns_where_labels_are_noisy():
    # labels of sulfides carry noise of 0.05, the others none: the predicted error scale must tell them apart
    structures, targets = perovskite_set(300, seed=3)
    sulfide = np.array([atoms.get_chemical_symbols()[2] == "S" for atoms in structures])
    noisy = targets + np.where(sulfide, np.random.default_rng(0).normal(0.0, 0.05, len(targets)), 0.0)
    architecture = Architecture(hidden=32, n_conv=2, head_hidden=32, dropout=0.0, aleatoric=True)
    model = train_model(
        structures[:240],
        noisy[:240],
        "tolerance_factor",
        n_members=2,
        architecture=architecture,
        graph_settings=SETTINGS,
        training=TrainingSettings(epochs=30, batch_size=32, learning_rate=3e-3),
        calibrate=False,
    )
    result = model.predict_with_uncertainty(structures[240:], method="ensemble")
    aleatoric = result.aleatoric_uncertainty
    assert np.all(aleatoric > 0) and np.all(result.raw_uncertainty >= result.epistemic_uncertainty)
    assert aleatoric[sulfide[240:]].mean() > 2.0 * aleatoric[~sulfide[240:]].mean()


def test_fine_tuning_keeps_target_and_improves_on_new_data(model):
    # new labels from a region the model has not seen (Se and Cl anions): fine-tuning must reduce its error there
    rng = np.random.default_rng(5)
    picks = [(rng.choice(A_SITE), rng.choice(B_SITE), rng.choice(["Se", "Cl"])) for _ in range(90)]
    structures = [perovskite(*p) for p in picks]
    targets = np.array([tolerance_factor(*p) for p in picks])
    before = np.mean(np.abs(model.predict(structures[60:]) - targets[60:]))
    tuned = train_model(
        structures[:60],
        targets[:60],
        "tolerance_factor",
        n_members=3,
        training=TrainingSettings(epochs=15, batch_size=16, learning_rate=1e-3),
        initial_model=model,
        graphs=structures_to_graphs(structures[:60], SETTINGS),
        seed=1,
    )
    after = np.mean(np.abs(tuned.predict(structures[60:]) - targets[60:]))
    assert tuned.info["fine_tuned"] and tuned.target_mean == model.target_mean
    assert after < 0.6 * before, (before, after)
    with pytest.raises(ValueError, match="predicts"):
        train_model(structures[:20], targets[:20], "band_gap", initial_model=model)


def test_edge_features_have_no_denormal_floats(data):
    """Gaussian tails below 1e-6 are zero: denormal floats made the CPU matrix products of training 5x slower."""
    structures, _, _, _ = data
    network = CrystalGraphNetwork(SMALL, SETTINGS.cutoff)
    dataset = GraphDataset(structures_to_graphs(structures[:20], SETTINGS))
    edges = network.edge_features(dataset.batch(np.arange(20)))
    positive = edges[edges > 0]
    assert positive.min() >= DENORMAL_GUARD and edges.max() <= 1.0
    assert (edges == 0).float().mean() > 0.3  # most of a Gaussian expansion is far tail


def test_time_budget_clocks():
    assert budget_clock(TrainingSettings(clock="cpu")) is time.process_time
    assert budget_clock(TrainingSettings(clock="wall")) is time.perf_counter
    with pytest.raises(ValueError, match="unknown clock 'gpu'"):
        budget_clock(TrainingSettings(clock="gpu"))


def test_model_saved_before_element_tables_loads_with_the_basic_table(tmp_path, data, model):
    """A config written before ``element_table`` existed keeps predicting as it did."""
    _, _, structures, _ = data
    weights, _ = model.save(tmp_path / "model")
    old_config = model.config()
    del old_config["architecture"]["element_table"]
    loaded = CrystalGraphModel.load(weights, old_config)
    assert loaded.architecture.element_table == "basic"
    np.testing.assert_array_equal(loaded.predict(structures[:5]), model.predict(structures[:5]))


def test_extended_element_table_trains():
    structures, targets = perovskite_set(80, seed=7)
    extended = Architecture(hidden=16, n_conv=1, head_hidden=16, dropout=0.0, aleatoric=False, element_table="extended")
    trained = train_model(
        structures, targets, "tolerance_factor", n_members=2, architecture=extended,
        training=TrainingSettings(epochs=3, batch_size=16), seed=0,
    )  # fmt: skip
    assert trained.members[0].element_features.shape == (95, 162)
    assert np.all(np.isfinite(trained.predict(structures[:4])))


def test_keep_best_or_last_weights():
    """The best-epoch weights are never worse on the validation split than the last ones they were chosen over."""
    structures, targets = perovskite_set(80, seed=9)
    tiny = Architecture(hidden=16, n_conv=1, head_hidden=16, dropout=0.0, aleatoric=False)
    kept = {}
    for keep_best in (True, False):
        training = TrainingSettings(epochs=12, batch_size=16, learning_rate=1e-2, keep_best=keep_best)
        kept[keep_best] = train_model(structures, targets, "t", n_members=2, architecture=tiny, training=training)
    best, last = kept[True], kept[False]
    assert [m["kept"] for m in best.info["members"]] == ["best", "best"]
    assert [m["kept"] for m in last.info["members"]] == ["last", "last"]

    def run(model) -> list[tuple]:
        return [(m["epochs"], m["best_epoch"], m["best_validation_mae"]) for m in model.info["members"]]

    assert run(best) == run(last)  # the same training, only the weights kept differ
    assert best.validation_mae <= last.validation_mae + 1e-9
