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
    screening_benchmark,
)
from aiida_nanoos.models.structure_table import read_structure_csv, split_indices
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
    assert figures["training_seconds"] < 30
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
