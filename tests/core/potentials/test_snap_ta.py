"""SNAP against FitSNAP's tantalum reference fit (public data in ``../shared/benchmarks/fitsnap_ta``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aiida_nanoos.potentials import metrics as pm
from aiida_nanoos.potentials import snap
from aiida_nanoos.potentials.fitsnap_input import read_fitsnap_input
from aiida_nanoos.potentials.frames import read_frames


@pytest.fixture(scope="module")
def ta(shared_benchmarks: Path) -> Path:
    path = shared_benchmarks / "fitsnap_ta"
    if not path.is_dir():
        pytest.skip("fitsnap_ta benchmark data not present")
    return path


@pytest.fixture(scope="module")
def ta_frames(ta: Path):
    return read_frames(ta / "JSON")


@pytest.fixture(scope="module")
def ta_input(ta: Path):
    return read_fitsnap_input(ta / "Ta-example.in")


@pytest.fixture(scope="module")
def ta_design(ta_frames, ta_input) -> snap.DesignMatrix:
    return snap.compute_descriptors(ta_frames, ta_input.params, ta_input.reference, ta_input.energy_shift)


def test_exact_regression_from_shipped_arrays(ta: Path):
    """Our weighted least-squares solver turns FitSNAP's own A, b, w into its published coefficients."""
    standard = ta / "20May21_Standard"
    A = np.load(standard / "Descriptors.npy")
    b = np.load(standard / "Truth-Ref.npy")
    w = np.load(standard / "Weights.npy")
    elements, radelem, wj, reference = snap.read_snapcoeff(standard / "Ta_pot.snapcoeff")
    assert (elements, radelem, wj, reference.shape) == (["Ta"], [0.5], [1.0], (1, 31))
    beta = snap.solve_weighted_least_squares(A, b, w, solver="svd")
    assert np.max(np.abs(beta - reference[0])) < 1.0e-6
    # Ridge with a vanishing penalty converges to the same solution; a large one shrinks it.
    ridge = snap.solve_weighted_least_squares(A, b, w, solver="ridge", ridge_alpha=1.0e-12, unpenalized=[0])
    assert np.max(np.abs(ridge - reference[0])) < 1.0e-4
    shrunk = snap.solve_weighted_least_squares(A, b, w, solver="ridge", ridge_alpha=1.0e6, unpenalized=[0])
    assert np.linalg.norm(shrunk[1:]) < 0.5 * np.linalg.norm(reference[0, 1:])


def test_fitsnap_input_is_read(ta_input):
    params = ta_input.params
    assert params.elements == ("Ta",) and params.twojmax == 6 and params.rcutfac == pytest.approx(4.67637)
    assert (params.bzeroflag, params.quadraticflag, params.radelem, params.wj) == (False, False, (0.5,), (1.0,))
    assert ta_input.reference.pair_style == "zbl 4.0 4.8"
    assert ta_input.reference.pair_coeff_for(["Ta"]) == ["1 1 zbl 73 73"]
    assert ta_input.weights.groups["Liquid"] == pytest.approx((467.0, 1.0, 1.0e-8))
    assert ta_input.weights.groups["Elastic_BCC"] == pytest.approx((1.0e-8, 1.0e-8, 1.0e-4))
    assert ta_input.energy_shift == {"Ta": 0.0} and ta_input.solver == "svd"


def test_descriptors_match_fitsnap_rows(ta: Path, ta_frames, ta_input):
    """Our energy, force and stress rows (and targets) for a few configurations equal FitSNAP's Descriptors.npy.

    FitSNAP stacks all energy rows, then all force rows, then all stress rows; configurations keep its (directory
    listing) order inside each group, so each of ours is located through its energy row.
    """
    standard = ta / "20May21_Standard"
    A = np.load(standard / "Descriptors.npy")
    b = np.load(standard / "Truth-Ref.npy")
    n_configs = len(ta_frames)
    groups = sorted({f.info["config_type"] for f in ta_frames})
    first_config, atoms_before = {}, {}
    configs = atoms = 0
    for group in groups:  # FitSNAP's group order is that of [GROUPS], alphabetical here
        members = [f for f in ta_frames if f.info["config_type"] == group]
        first_config[group], atoms_before[group] = configs, atoms
        configs += len(members)
        atoms += sum(len(f) for f in members)
    total_atoms = atoms

    picks = {}
    for group in ("Displaced_A15", "Elastic_FCC", "GSF_110", "Liquid", "Volume_BCC"):
        members = [f for f in ta_frames if f.info["config_type"] == group]
        assert len({len(f) for f in members}) == 1  # uniform size: block offsets follow from the position
        picks[group] = members[len(members) // 2]
    design = snap.compute_descriptors(list(picks.values()), ta_input.params, ta_input.reference)
    assert design.A.shape[1] == 31
    for index, (group, atoms) in enumerate(picks.items()):
        rows = design.frame == index
        ours_energy = design.A[rows & (design.kind == snap.ENERGY)][0]
        k = int(np.argmin(np.abs(A[:n_configs] - ours_energy).max(axis=1)))
        np.testing.assert_allclose(ours_energy, A[k], rtol=1.0e-10, atol=1.0e-12)
        np.testing.assert_allclose(design.b[rows & (design.kind == snap.ENERGY)], b[k : k + 1], rtol=1.0e-10)
        n = len(atoms)
        position = k - first_config[group]
        start = n_configs + 3 * (atoms_before[group] + position * n)
        force_rows = rows & (design.kind == snap.FORCE)
        np.testing.assert_allclose(design.A[force_rows], A[start : start + 3 * n], rtol=1.0e-6, atol=1.0e-6)
        np.testing.assert_allclose(design.b[force_rows], b[start : start + 3 * n], rtol=1.0e-6, atol=1.0e-6)
        start = n_configs + 3 * total_atoms + 6 * k
        stress_rows = rows & (design.kind == snap.STRESS)
        scale = np.abs(A[start : start + 6]).max()
        np.testing.assert_allclose(design.A[stress_rows], A[start : start + 6], rtol=1.0e-6, atol=1.0e-9 * scale)
        np.testing.assert_allclose(design.b[stress_rows], b[start : start + 6], rtol=1.0e-6, atol=1.0e-3)


def test_full_linear_fit_matches_fitsnap(ta: Path, ta_design, ta_input):
    """From our own descriptors of all 363 configurations: FitSNAP's coefficients and no worse training errors."""
    potential = snap.fit_design(ta_design, ta_input.weights, solver="svd", reference=ta_input.reference)
    _, _, _, reference = snap.read_snapcoeff(ta / "20May21_Standard" / "Ta_pot.snapcoeff")
    assert np.max(np.abs(potential.coefficients - reference)) < 1.0e-6

    predicted = ta_design.predict(potential.coefficients)
    table = pm.error_table(pm.parity_from_design(ta_design, predicted, ta_design.row_weights(ta_input.weights)))
    fitsnap = pm.read_fitsnap_metrics(ta / "20May21_Standard" / "Ta_metrics.md")
    for quantity in ("Energy", "Force"):
        ours, theirs = table[("*ALL", "Unweighted", quantity)], fitsnap[("*ALL", "Unweighted", quantity)]
        assert ours.count == theirs.count
        for measure in ("mae", "rmse"):  # FitSNAP prints 6 significant digits
            assert float(f"{getattr(ours, measure):.6g}") <= getattr(theirs, measure)
    for key in [("Liquid", "Unweighted", "Force"), ("GSF_110", "Unweighted", "Force"), ("*ALL", "Weighted", "Energy")]:
        assert table[key].rmse == pytest.approx(fitsnap[key].rmse, rel=1.0e-5)
    assert table[("*ALL", "Unweighted", "Stress")].rmse == pytest.approx(381744, rel=1.0e-5)  # bar


def test_written_potential_reproduces_linear_model_in_lammps(ta_design, ta_frames, ta_input, tmp_path: Path):
    """LAMMPS ``pair_style hybrid/overlay zbl ... snap`` with the written files gives A·β + reference exactly."""
    potential = snap.fit_design(ta_design, ta_input.weights, reference=ta_input.reference)
    coeff, param = potential.write(tmp_path, "Ta_test")
    again = snap.SnapPotential.read(coeff, param, reference=ta_input.reference)
    assert again.params == potential.params
    np.testing.assert_array_equal(again.coefficients, potential.coefficients)

    picks = list(range(0, len(ta_frames), 45))
    subset = ta_design.subset(picks)
    linear = subset.predict(potential.coefficients)
    lammps = again.predict([ta_frames[i] for i in picks])
    energies = subset.frame_energies(linear)
    for energy, forces, prediction in zip(energies, subset.frame_forces(linear), lammps, strict=True):
        assert abs(energy - prediction.energy) < 1.0e-9
        assert np.max(np.abs(forces - prediction.forces)) < 1.0e-9
    stress_rows = linear[subset.kind == snap.STRESS].reshape(-1, 6)  # bar, LAMMPS sign
    lammps_bar = np.array([-p.stress * 1.6021765e6 for p in lammps])
    np.testing.assert_allclose(stress_rows, lammps_bar, rtol=1.0e-9, atol=1.0e-6)
    # And the DFT labels are where the fit says they are (not just self-consistent).
    energy_rows = subset.kind == snap.ENERGY
    assert np.sqrt(np.mean((linear[energy_rows] - subset.truth[energy_rows]) ** 2)) < 1.0


def test_bootstrap_committee_disagrees_more_off_training_data(ta_design, ta_frames, ta_input):
    """Committee force spread is larger for liquid frames held out of training than for trained crystal frames, and
    the frames it flags are those the fit really gets wrong.

    Measured (seed 1, 4 bootstrap members on 127 crystal frames): spread 0.023-0.028 eV/Å on trained frames,
    0.12-0.25 eV/Å on the 3 liquid frames (4.4x the largest trained one); the full fit's largest force error is
    0.24-0.26 eV/Å on the trained frames and ~2.5 eV/Å on the liquid ones.
    """
    groups = np.array(ta_design.groups)
    crystal = np.flatnonzero(np.isin(groups, ["Displaced_BCC", "Displaced_FCC", "Displaced_A15", "Elastic_BCC"]))
    liquid = np.flatnonzero(groups == "Liquid")
    committee = snap.fit_committee(
        ta_design.subset(crystal), n_models=4, weights=ta_input.weights, reference=ta_input.reference, seed=1
    )
    assert len(committee.potentials) == 4
    assert len({tuple(p.coefficients.ravel()[:3]) for p in committee.potentials}) == 4  # resampled, not copies
    spread = committee.force_disagreement([ta_frames[i] for i in list(crystal[:3]) + list(liquid)])
    assert spread.shape == (3 + len(liquid),)
    assert spread[:3].max() < 0.05  # eV/Å: members agree where they were trained
    assert spread[3:].min() > spread[:3].max()
    assert spread[3:].min() > 3.0 * spread[:3].max()  # and clearly disagree off the training data
    # The spread is a proxy of the error: the flagged frames are those the fit on all crystal frames gets wrong.
    full = snap.fit_design(ta_design.subset(crystal), ta_input.weights, reference=ta_input.reference)
    picked = ta_design.subset(list(crystal[:3]) + list(liquid))
    predicted = picked.frame_forces(picked.predict(full.coefficients))
    errors = np.array([np.abs(p - t).max() for p, t in zip(predicted, picked.frame_forces(picked.truth), strict=True)])
    assert errors[3:].min() > 3.0 * errors[:3].max()
