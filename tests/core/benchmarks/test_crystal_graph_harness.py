"""The crystal-graph benchmarks end to end on tiny generated data: figures computed right, commands run."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from ase.io import write
from click.testing import CliRunner

from aiida_nanoos.benchmarks.crystal_graph_harness import (
    _pool_figures,
    generate_perovskite_candidates,
    gnn_benchmark,
    screening_benchmark,
)
from aiida_nanoos.models.cgcnn import Architecture, TrainingSettings
from aiida_nanoos.models.structure_table import StructureTable, read_structure_csv, split_indices
from tests.core.perovskites import perovskite_set


def test_pool_figures_by_hand():
    targets = np.arange(100, dtype=float)  # minimising: the top 5 % are 0..4
    perfect = _pool_figures(targets, list(range(100)), minimise=True)
    assert perfect["ef"]["10%"] == pytest.approx(1.0 / 0.10)  # all 5 found within 10 evaluations
    assert perfect["ef"]["25%"] == pytest.approx(1.0 / 0.25)
    assert perfect["evaluations_to_top"] == {"50%": 3, "100%": 5}
    worst = _pool_figures(targets, list(range(99, -1, -1)), minimise=True)
    assert worst["ef"]["10%"] == 0.0 and worst["evaluations_to_top"]["100%"] == 100
    maximising = _pool_figures(targets, list(range(99, -1, -1)), minimise=False)
    assert maximising["evaluations_to_top"]["100%"] == 5


def test_split_is_deterministic_and_disjoint():
    train, test = split_indices(100, 0.2, seed=3)
    again_train, again_test = split_indices(100, 0.2, seed=3)
    assert np.array_equal(train, again_train) and np.array_equal(test, again_test)
    assert len(test) == 20 and not set(train) & set(test) and len(train) + len(test) == 100


def _write_csv(path, n: int, seed: int) -> None:
    structures, targets = perovskite_set(n, seed=seed)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", "material_id", "cif", "tolerance"])
        for i, (atoms, value) in enumerate(zip(structures, targets, strict=True)):
            text = io.BytesIO()
            write(text, atoms, format="cif")
            writer.writerow([i, 1000 + i, text.getvalue().decode(), f"{value:.6f}"])
        writer.writerow([n, 1000 + n, "", "not-a-number"])  # a gap in the table is skipped


def test_read_structure_csv(tmp_path):
    path = tmp_path / "pool.csv"
    _write_csv(path, 6, seed=0)
    table = read_structure_csv(path, "tolerance")
    assert len(table) == 6 and table.identifiers[0] == "1000"
    assert table.structures[0].get_chemical_symbols()[2:] == [table.structures[0].get_chemical_symbols()[2]] * 3
    with pytest.raises(ValueError, match="no column 'heat_all'"):
        read_structure_csv(path, "heat_all")


def test_gnn_command_end_to_end(tmp_path):
    from aiida_nanoos.benchmarks.gnn import command

    path = tmp_path / "small.csv"
    _write_csv(path, 60, seed=4)
    arguments = ["--train", str(path), "--target", "tolerance", "--split", "0.25", "--time-budget", "4"]
    result = CliRunner().invoke(command, [*arguments, "--members", "2", "--threads", "1", "--json", "--quiet"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["n_test"] == 15 and figures["n_train"] + figures["n_validation"] == 45
    assert figures["recalibration"]["scale"] > 0 and 0 <= figures["coverage_1sigma"] <= 1
    assert set(figures["recalibration_methods"]) == {"auto", "area_floor", "area", "nll", "coverage", "identity"}
    identity = figures["recalibration_methods"]["identity"]  # sigma left alone: the uncalibrated figures
    assert identity["coverage_1sigma"] == figures["uncalibrated"]["coverage_1sigma"]
    assert figures["clock"] == "cpu" and figures["training_cpu_seconds"] < 4 + 4  # the budget ends training
    bad = CliRunner().invoke(command, ["--train", str(path), "--target", "band_gap", "--quiet"])
    assert bad.exit_code != 0 and "band_gap" in bad.output


def test_screening_benchmark_small():
    candidates = generate_perovskite_candidates(5, seed=1)
    assert all(len(atoms) == 5 and atoms.pbc.all() for atoms in candidates)
    result = screening_benchmark(40, n_members=2, n_samples=4, threads=1)
    assert set(result["methods"]) == {"ensemble", "mc_dropout"}
    assert result["methods"]["mc_dropout"]["passes"] == 4
    assert all(m["candidates_per_minute"] > 0 for m in result["methods"].values())
    json.dumps(result)


def test_gnn_benchmark_never_looks_at_the_test_targets():
    """Permuting the test file's targets changes the test metrics and nothing else: the baseline, the kept epochs,
    the recalibration of sigma and every sigma on the test structures come from the training file alone."""
    structures, targets = perovskite_set(100, seed=5)
    rng = np.random.default_rng(0)
    noisy = targets + rng.normal(0.0, 0.01, len(targets))  # some error for sigma to describe

    def table(rows, values) -> StructureTable:
        return StructureTable([structures[i] for i in rows], values, [str(i) for i in rows], "tolerance")

    train, test_rows = table(range(70), noisy[:70]), list(range(70, 100))
    honest, permuted = table(test_rows, noisy[70:]), table(test_rows, rng.permutation(noisy[70:]))
    settings = {
        "n_members": 2,
        "architecture": Architecture(hidden=16, n_conv=2, head_hidden=16, dropout=0.0, aleatoric=True),
        "training": TrainingSettings(epochs=8, batch_size=16, patience=100),  # epochs, not time: reproducible
        "seed": 3,
    }
    first, second = gnn_benchmark(train, honest, **settings), gnn_benchmark(train, permuted, **settings)
    decided_on_training = ("recalibration", "validation_mae", "best_epoch_per_member", "epochs_per_member",
                           "n_train", "n_validation", "mean_uncertainty", "architecture")  # fmt: skip
    for key in decided_on_training:
        assert first[key] == second[key], key
    assert first["recalibration"]["fitted_on"].startswith("validation split of the training table")
    assert first["mae"] < second["mae"]  # the same predictions scored against shuffled targets
    assert first["member_test_mae"] != second["member_test_mae"]
