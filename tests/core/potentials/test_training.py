"""Pure helpers of the ML-potential layer: training config checks, frame selection, cost, MD cell size, drift."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_nanoos.potentials.md_setup import supercell_repetitions
from aiida_nanoos.potentials.md_stability import energy_drift, thermo_tables
from aiida_nanoos.potentials.training_config import parse_train_config
from aiida_nanoos.potentials.validation import check_criteria, cost_per_atom_step, select_uncertain


def test_training_config_defaults_and_field_errors():
    config = parse_train_config({"descriptor_type": "qSNAP", "snap": {"twojmax": 4}, "reference": {"type": "zbl"}})
    assert config.descriptor_type == "qSNAP" and config.reference == {"type": "zbl", "inner": 4.0, "outer": 4.8}
    assert parse_train_config({"committee": {"size": 3}}).committee == {
        "method": "bootstrap",
        "seed": 0,
        "fraction": 0.8,
        "size": 3,
    }
    members = parse_train_config({"committee": {"method": "hyperparameters", "members": [{"twojmax": 4}, {}]}})
    assert members.committee["size"] == 2
    for bad, field in [
        ({"solver": "lasso"}, "config.solver"),
        ({"weights": {"energy": -1}}, "config.weights.energy"),
        ({"energy_shift": {"Xx": 1.0}}, "config.energy_shift"),
        ({"mace": {"max_num_epochs": 0}}, "config.mace.max_num_epochs"),
        ({"temperature_range": [900, 300]}, "config.temperature_range"),
        ({"committee": {"method": "hyperparameters", "members": [{}]}}, "config.committee.members"),
        ({"snap": {"rfac0": 1.5}}, "config.snap.rfac0"),
        ({"learning_rate": 0.1}, "config.learning_rate"),
    ]:
        with pytest.raises(ValueError, match=field.replace(".", r"\.")):
            parse_train_config(bad)


def test_select_the_most_uncertain_frames_above_the_threshold():
    disagreement = [0.05, 0.31, 0.12, 0.45, 0.09, 0.31]
    assert select_uncertain(disagreement, threshold=0.1, max_count=3) == [3, 1, 5]
    assert select_uncertain(disagreement, threshold=0.5, max_count=3) == []
    assert select_uncertain(disagreement, threshold=0.0, max_count=0) == []
    with pytest.raises(ValueError, match="threshold"):
        select_uncertain(disagreement, threshold=-1, max_count=1)


def test_cost_per_atom_step_and_criteria():
    cost = cost_per_atom_step([(16.0, 8), (8.0, 8)], md_seconds=10.0, md_atoms=1000, md_steps=1000)
    assert cost["dft_seconds_per_atom_step"] == pytest.approx(1.5)
    assert cost["potential_seconds_per_atom_step"] == pytest.approx(1e-5)
    assert cost["speedup"] == pytest.approx(1.5e5)
    assert check_criteria({"force_rmse": 0.2}) == {"force_rmse": 0.2}
    with pytest.raises(ValueError, match="criteria.force_rmse must be a positive number"):
        check_criteria({"force_rmse": 0})


def test_supercell_for_md_and_energy_drift():
    cubic = np.eye(3) * 5.43
    assert supercell_repetitions(cubic, 8, 1000) == [5, 5, 5]
    long_cell = np.diag([3.0, 3.0, 12.0])
    assert supercell_repetitions(long_cell, 4, 64) == [4, 4, 1]
    time_ps = np.linspace(0.0, 2.0, 21)
    total = -100.0 + 0.064 * time_ps  # 64 atoms, 1 meV/atom/ps
    assert energy_drift(time_ps, total, 64) == pytest.approx(1.0)
    tables = thermo_tables("Step Temp\n 0 300\n 10 310\nLoop time of 1\nStep Temp\n 10 310\n")
    assert [len(rows) for _, rows in tables] == [2, 1]
