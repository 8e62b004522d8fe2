"""Error tables, parity data and committee disagreement of interatomic potentials."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from aiida_nanoos.potentials import metrics as pm
from aiida_nanoos.potentials.frames import BAR, make_frame
from aiida_nanoos.potentials.lammps_engine import Prediction
from aiida_nanoos.potentials.snap import FitWeights


def test_error_stats_by_hand():
    reference = np.array([1.0, 2.0, 3.0, 4.0])
    predicted = np.array([1.0, 3.0, 2.0, 6.0])  # residuals 0, 1, -1, 2
    stats = pm.error_stats(reference, predicted)
    assert (stats.count, stats.mae, stats.max_abs) == (4, 1.0, 2.0)
    assert stats.rmse == pytest.approx(math.sqrt(6 / 4))
    assert stats.rsq == pytest.approx(1 - 6 / 5)
    weighted = pm.error_stats(reference, predicted, weight=np.array([1.0, 3.0, 1.0, 1.0]))  # residuals 0, 3, -1, 2
    assert weighted.mae == pytest.approx(1.5) and weighted.rmse == pytest.approx(math.sqrt(14 / 4))
    assert math.isnan(pm.error_stats(np.array([]), np.array([])).rmse)


def test_error_table_groups_and_all():
    parity = {
        "force": pm.ParityData(
            "force",
            reference=np.zeros(6),
            predicted=np.array([0.1, -0.1, 0.1, 0.4, 0.4, -0.4]),
            group=np.array(["a", "a", "a", "b", "b", "b"]),
            frame=np.array([0, 0, 0, 1, 1, 1]),
            weight=np.array([1.0, 1.0, 1.0, 0.5, 0.5, 0.5]),
        )
    }
    table = pm.error_table(parity)
    assert list(table)[0] == ("*ALL", "Unweighted", "Force")
    assert table[("a", "Unweighted", "Force")].rmse == pytest.approx(0.1)
    assert table[("b", "Unweighted", "Force")].mae == pytest.approx(0.4)
    assert table[("b", "Weighted", "Force")].mae == pytest.approx(0.2)
    assert table[("*ALL", "Unweighted", "Force")].rmse == pytest.approx(math.sqrt((3 * 0.01 + 3 * 0.16) / 6))
    assert table[("*ALL", "Weighted", "Force")].mae == pytest.approx(0.15)
    text = pm.format_error_table(table)
    assert "| *ALL | Unweighted | Force | 6 |" in text and text.count("\n") == 1 + len(table)


def test_parity_from_frames_units_and_weights():
    """Energy per atom, force components and stress in bar, with group weights times frame weights."""
    frames, predictions = [], []
    for index, n in enumerate((2, 4)):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)[:n]
        stress = np.array([0.01, 0.02, 0.03, 0.0, 0.0, 0.001])  # eV/Å³
        frames.append(
            make_frame(
                atoms.get_chemical_symbols(),
                atoms.positions,
                atoms.cell.array,
                energy=-3.0 * n,
                forces=np.zeros((n, 3)),
                stress=stress,
                config_type="bulk" if index == 0 else "defect",
                config_weight=2.0 if index == 1 else None,
            )
        )
        # predictions off by 0.01 eV/atom, 0.05 eV/Å per component and 1e-4 eV/Å³ per component
        predictions.append(Prediction(-3.0 * n + 0.01 * n, np.full((n, 3), 0.05), stress + 1.0e-4))
    parity = pm.parity_from_frames(frames, predictions, weights=FitWeights(groups={"defect": (10.0, 2.0, 0.0)}))
    assert set(parity) == {"energy", "force", "stress"}
    assert parity["energy"].reference == pytest.approx([-3.0, -3.0])
    assert parity["force"].reference.size == 3 * 6 and parity["stress"].reference.size == 12
    table = pm.error_table(parity)
    assert table[("*ALL", "Unweighted", "Energy")].mae == pytest.approx(0.01)
    assert table[("*ALL", "Unweighted", "Force")].rmse == pytest.approx(0.05)
    assert table[("*ALL", "Unweighted", "Stress")].mae == pytest.approx(1.0e-4 / BAR)  # 160.2 bar
    assert parity["stress"].reference[0] == pytest.approx(-0.01 / BAR)  # tension: negative pressure
    # defect frame: group force weight 2 x frame weight 2; bulk frame: default weights (100, 1, 1e-5)
    assert table[("defect", "Weighted", "Force")].mae == pytest.approx(0.05 * 4.0)
    assert table[("bulk", "Weighted", "Energy")].mae == pytest.approx(0.01 * 100.0)
    assert parity["force"].to_dict()["group"][:6] == ["bulk"] * 6
    # A prediction without stress (e.g. a cluster) just drops that quantity for the frame.
    predictions[1] = Prediction(predictions[1].energy, predictions[1].forces, None)
    assert pm.parity_from_frames(frames, predictions)["stress"].reference.size == 6


def test_read_fitsnap_metrics(shared_benchmarks: Path):
    path = shared_benchmarks / "fitsnap_ta" / "20May21_Standard" / "Ta_metrics.md"
    if not path.exists():
        pytest.skip("fitsnap_ta data not present")
    table = pm.read_fitsnap_metrics(path)
    assert len(table) == 13 * 2 * 3
    force = table[("*ALL", "Unweighted", "Force")]
    assert (force.count, force.mae, force.rmse) == (12672, 0.0757576, 0.160973)
    assert table[("Volume_FCC", "Unweighted", "Energy")].rmse == pytest.approx(1.1812)


def test_committee_force_disagreement():
    forces = np.zeros((2, 3, 3))
    forces[0, 1] = [0.3, 0.0, 0.0]
    forces[1, 1] = [-0.3, 0.0, 0.0]  # atom 1: vectors +-0.3 around 0 -> std 0.3
    forces[:, 2] = [[0.1, 0.1, 0.0], [0.1, -0.1, 0.0]]  # atom 2: std 0.1
    assert pm.committee_force_disagreement(forces) == pytest.approx(0.3)
    three = np.stack([np.zeros((4, 3)), np.zeros((4, 3)), np.tile([0.0, 0.0, 0.9], (4, 1))])
    assert pm.committee_force_disagreement(three) == pytest.approx(math.sqrt((2 * 0.3**2 + 0.6**2) / 3))
    with pytest.raises(ValueError):
        pm.committee_force_disagreement(np.zeros((2, 3)))
    spread = pm.committee_energy_spread(np.array([[-10.0, -20.0], [-10.2, -20.0]]), [2, 4])
    assert spread == pytest.approx([0.05, 0.0])
