"""SNAP descriptors, potential files and LAMMPS self-consistency on small synthetic structures (no data needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_nanoos.potentials import lammps_engine, snap
from aiida_nanoos.potentials.snap import potential as snap_potential


def _alloy() -> Atoms:
    """A rattled Ni3Al-like fcc cell (32 atoms)."""
    atoms = bulk("Ni", "fcc", a=3.52, cubic=True).repeat((2, 2, 2))
    symbols = atoms.get_chemical_symbols()
    for i in range(0, len(atoms), 4):
        symbols[i] = "Al"
    atoms.set_chemical_symbols(symbols)
    atoms.rattle(0.08, seed=1)
    return atoms


def _sheared(atoms: Atoms) -> Atoms:
    sheared = atoms.copy()
    shear = np.array([[1.0, 0.12, 0.05], [0.0, 1.0, 0.08], [0.0, 0.0, 1.0]])
    sheared.set_cell(atoms.cell.array @ shear, scale_atoms=True)
    return sheared


def _frames() -> list[Atoms]:
    """Orthogonal, triclinic, triclinic in a general orientation, a cluster and a slab."""
    cubic = _alloy()
    triclinic = _sheared(cubic)
    rotated = triclinic.copy()
    rotated.rotate(37.0, (1.0, 2.0, 3.0), rotate_cell=True)
    cluster = cubic[:12].copy()
    cluster.pbc, cluster.cell = False, np.zeros((3, 3))
    slab = triclinic.copy()
    slab.pbc = (True, True, False)
    return [cubic, triclinic, rotated, cluster, slab]


def test_bispectrum_count_and_labels():
    assert [len(snap.bispectrum_indices(j)) for j in (2, 4, 6, 8)] == [5, 14, 30, 55]
    params = snap.SnapHyperparameters(("Ta",), twojmax=6)
    labels = snap_potential._coefficient_labels(params, 31)
    assert labels[0] == "B[0]" and labels[3] == "B[3, 1, 1, 2]" and labels[30] == "B[30, 6, 6, 6]"


def test_hyperparameter_defaults_for_any_elements():
    params = snap.SnapHyperparameters.for_elements(["Al", "Ni"], rcutfac=4.5)
    assert params.radelem == (0.5, 0.5)
    assert params.wj == pytest.approx((13 / 28, 1.0))
    assert params.cutoff == pytest.approx(4.5)
    command = params.compute_command()
    assert "bzeroflag 0" in command and "quadraticflag 0" in command and "True" not in command
    with pytest.raises(ValueError):
        snap.SnapHyperparameters(("Ni", "Al"), radelem=(0.5,))
    assert 4.7 <= snap.default_rcutfac([_alloy()]) <= 5.0  # 1.65 x 2.49 Å nearest-neighbour distance = 4.1 -> 4.7


def test_lammps_box_rotation_is_proper_and_consistent():
    for atoms in _frames():
        box = lammps_engine.lammps_box(atoms)
        assert np.allclose(box.rotation @ box.rotation.T, np.eye(3)) and np.linalg.det(box.rotation) > 0
        assert np.allclose(np.triu(box.cell, 1), 0.0) and np.all(np.diag(box.cell) > 0)
        if all(atoms.pbc):
            assert box.volume == pytest.approx(atoms.get_volume())
        # Rotated and wrapped, the atoms keep all their (minimum-image) distances.
        moved = Atoms(atoms.get_chemical_symbols(), positions=box.positions, cell=box.cell, pbc=atoms.pbc)
        np.testing.assert_allclose(moved.get_all_distances(mic=True), atoms.get_all_distances(mic=True), atol=1e-9)
        np.testing.assert_allclose(
            box.vectors_to_frame(box.positions[1] - box.positions[0]) @ box.rotation,
            box.positions[1] - box.positions[0],
            atol=1e-12,
        )
    left = _alloy()
    left.set_cell(-left.cell.array, scale_atoms=False)  # left-handed description of the same lattice
    assert np.linalg.det(lammps_engine.lammps_box(left).rotation) > 0


@pytest.mark.parametrize(
    "settings",
    [
        {"twojmax": 4},
        {"twojmax": 2, "quadraticflag": True},
        {"twojmax": 2, "bzeroflag": True, "switchflag": False},
        {"twojmax": 2, "chemflag": True, "bzeroflag": True},
    ],
    ids=["linear", "quadratic", "bzero-noswitch", "chem"],
)
@pytest.mark.parametrize("with_zbl", [False, True], ids=["plain", "zbl"])
def test_pair_style_snap_reproduces_linear_model(settings: dict, with_zbl: bool, tmp_path: Path):
    """Energies, forces and stresses of ``pair_style snap`` with written files equal ``A β + reference`` for
    orthogonal, triclinic, rotated, non-periodic and slab frames of a binary alloy."""
    frames = _frames()
    params = snap.SnapHyperparameters.for_elements(("Al", "Ni"), rcutfac=4.5, **settings)
    reference = snap.ReferencePotential.zbl(params.elements, 2.0, 3.0) if with_zbl else None
    design = snap.compute_descriptors(frames, params, reference=reference)
    beta = np.random.default_rng(0).normal(scale=0.01, size=design.A.shape[1])
    # With chemflag some bispectrum columns coincide, so only the minimum-norm representative of beta (what the
    # SVD and ridge solvers return) has forces consistent with pair_style snap; project onto it.
    beta = np.linalg.lstsq(design.A, design.A @ beta, rcond=None)[0]
    potential = snap.SnapPotential(params, beta, reference=reference)
    coeff, param = potential.write(tmp_path, "alloy")
    predictions = snap.SnapPotential.read(coeff, param, reference=reference).predict(frames)

    linear = design.predict(potential.coefficients)
    energies, forces = design.frame_energies(linear), design.frame_forces(linear)
    for energy, force, prediction in zip(energies, forces, predictions, strict=True):
        assert abs(energy - prediction.energy) < 1.0e-9
        assert np.max(np.abs(force - prediction.forces)) < 1.0e-9
    stress_rows = linear[design.kind == snap.STRESS].reshape(-1, 6)
    periodic = [p for p, a in zip(predictions, frames, strict=True) if all(a.pbc)]
    assert len(stress_rows) == len(periodic) == 3
    lammps_bar = np.array([-p.stress * 1.6021765e6 for p in periodic])
    np.testing.assert_allclose(stress_rows, lammps_bar, rtol=1.0e-8, atol=1.0e-6 * np.abs(lammps_bar).max())
    if with_zbl:
        assert np.abs(design.reference[design.kind == snap.ENERGY]).max() > 0.0
    # Rotating a frame rotates forces and stress and leaves the energy unchanged.
    triclinic, rotated = predictions[1], predictions[2]
    rotation = np.linalg.solve(frames[1].cell.array, frames[2].cell.array)  # row vectors: r_rot = r @ rotation
    assert rotated.energy == pytest.approx(triclinic.energy, abs=1e-9)
    np.testing.assert_allclose(rotated.forces, triclinic.forces @ rotation, atol=1e-9)
    sigma = lammps_engine.voigt_to_matrix(triclinic.stress)
    np.testing.assert_allclose(lammps_engine.voigt_to_matrix(rotated.stress), rotation.T @ sigma @ rotation, atol=1e-12)


def test_triclinic_cell_equals_its_orthogonal_equivalent():
    """A bcc cell described by triclinic (primitive-sheared) vectors has the same energy and forces as the cube."""
    cube = bulk("Ta", "bcc", a=3.31, cubic=True).repeat((2, 2, 2))
    cube.rattle(0.05, seed=3)
    skewed = cube.copy()
    cell = skewed.cell.array.copy()
    cell[1] += 2 * cell[0]  # same lattice, tilt factor twice the box length
    cell[2] += cell[1] - 3 * cell[0]
    skewed.set_cell(cell, scale_atoms=False)
    params = snap.SnapHyperparameters(("Ta",))
    potential = snap.SnapPotential(params, np.r_[-2.0, np.random.default_rng(2).normal(scale=0.01, size=30)])
    ortho, tri = potential.predict([cube, skewed])
    assert tri.energy == pytest.approx(ortho.energy, abs=1e-9)
    np.testing.assert_allclose(tri.forces, ortho.forces, atol=1e-9)
    np.testing.assert_allclose(tri.stress, ortho.stress, atol=1e-12)
    design = snap.compute_descriptors([cube, skewed], params)
    first, second = design.frame_slices()
    np.testing.assert_allclose(design.A[first], design.A[second], rtol=1e-9, atol=1e-9)


def test_snap_files_round_trip_and_fitsnap_files(tmp_path: Path):
    params = snap.SnapHyperparameters(
        ("Al", "Ni"), twojmax=4, rcutfac=4.1, radelem=(0.5, 0.52), wj=(0.46, 1.0), quadraticflag=True
    )
    n = len(snap.bispectrum_indices(4))
    rng = np.random.default_rng(5)
    potential = snap.SnapPotential(params, rng.normal(size=(2, 1 + n + n * (n + 1) // 2)))
    coeff, param = potential.write(tmp_path, "pot")
    again = snap.SnapPotential.read(coeff, param)
    assert again.params == params
    np.testing.assert_array_equal(again.coefficients, potential.coefficients)
    data = [line for line in coeff.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert data[:2] == ["2 120", "Al 0.5 0.46"] and data[2].split()[0] == f"{potential.coefficients[0, 0]:.17e}"
    assert "quadraticflag 1" in param.read_text() and "rcutfac 4.1\n" in param.read_text()
    style, lines = potential.pair_style_lines(coeff, param)
    assert style == "snap" and lines == [f"* * {coeff} {param} Al Ni"]
    zbl = snap.ReferencePotential.zbl(("Al", "Ni"))
    with_zbl = snap.SnapPotential(params, potential.coefficients, reference=zbl)
    style, lines = with_zbl.pair_style_lines("c", "p", type_elements=("Ni", "Al"))
    assert style == "hybrid/overlay zbl 4 4.8 snap"
    assert lines == ["1 1 zbl 28 28", "1 2 zbl 28 13", "2 2 zbl 13 13", "* * snap c p Ni Al"]
    restored = snap.SnapPotential.from_dict(with_zbl.to_dict())
    assert restored.params == params and restored.reference == zbl


def test_reads_lammps_shipped_potential_files():
    """The InP explicit multi-element SNAP (+ZBL, as its .snap file sets up) that ships with LAMMPS is read, runs,
    agrees with our descriptors and binds zincblende InP near the experimental 5.87 Å with ~3.5 eV/atom."""
    potentials = Path(lammps_engine.lammps_module().__file__).parent / "share" / "lammps" / "potentials"
    coeff, param = potentials / "InP_JCPA2020.snapcoeff", potentials / "InP_JCPA2020.snapparam"
    if not coeff.exists():
        pytest.skip("LAMMPS potentials folder not shipped")
    zbl = snap.ReferencePotential.zbl(("In", "P"), 4.0, 4.2)
    potential = snap.SnapPotential.read(coeff, param, reference=zbl)
    assert potential.params.elements == ("In", "P") and potential.params.chemflag and potential.params.bnormflag
    assert potential.coefficients.shape == (2, 241)
    crystals = [bulk("InP", "zincblende", a=a) for a in (5.5, 5.87, 6.3)]
    crystals[1].rattle(0.05, seed=0)
    design = snap.compute_descriptors(crystals, potential.params, reference=zbl)
    linear = design.frame_energies(design.predict(potential.coefficients)) / 2
    lammps = np.array([p.energy for p in potential.predict(crystals)]) / 2
    np.testing.assert_allclose(lammps, linear, atol=1e-9)
    assert lammps[1] < min(lammps[0], lammps[2])
    assert -3.7 < lammps[1] < -3.3


def test_reference_potential_from_fitsnap_lines():
    ref = snap.ReferencePotential.from_lammps(
        "hybrid/overlay zero 10.0 zbl 4.0 4.8", ["* * zero", "* * zbl 73 73"], ["Ta"]
    )
    assert ref.pair_style == "zbl 4.0 4.8" and ref.pair_coeff == ("* * zbl 73 73",) and ref.zbl_cutoffs == (4.0, 4.8)
    single = snap.ReferencePotential.from_lammps("lj/cut 5.0", ["* * 0.01 2.5"], ["Ar"])
    assert single.pair_style == "lj/cut 5.0" and single.pair_coeff == ("* * lj/cut 0.01 2.5",)
    with pytest.raises(ValueError):
        snap.ReferencePotential.from_lammps("zero 10.0", ["* *"], ["Ta"])


def test_fit_recovers_a_known_potential_and_weights_matter():
    """Labels made by a SNAP potential are fitted back exactly (it lies in the model space), through LAMMPS."""
    params = snap.SnapHyperparameters.for_elements(("Al", "Ni"), twojmax=2, rcutfac=4.5)
    truth = snap.SnapPotential(params, np.random.default_rng(3).normal(scale=0.05, size=(2, 6)))
    frames = []
    for seed in range(6):
        atoms = _alloy()
        symbols = atoms.get_chemical_symbols()
        symbols[1 : 1 + 2 * seed] = ["Al"] * (2 * seed)  # compositions differ, else element constants are degenerate
        atoms.set_chemical_symbols(symbols)
        atoms.rattle(0.1, seed=seed + 10)
        atoms.set_cell(atoms.cell.array * (0.97 + 0.01 * seed), scale_atoms=True)
        atoms.info["config_type"] = "bulk"
        frames.append(atoms)
    for atoms, label in zip(frames, truth.predict(frames), strict=True):
        atoms.calc = SinglePointCalculator(atoms, energy=label.energy, forces=label.forces, stress=label.stress)
    fitted = snap.fit_snap(frames, params, snap.FitWeights(energy=100.0, force=1.0, stress=1.0e-5))
    np.testing.assert_allclose(fitted.coefficients, truth.coefficients, atol=1e-8)
    assert fitted.metadata["n_rows"] == len(frames) * (1 + 3 * 32 + 6)

    # Zero-weight groups are left out: fitting on one frame's energy only is underdetermined, not exact.
    frames[0].info["config_type"] = "only_energy"
    weights = snap.FitWeights(energy=1.0, force=0.0, stress=0.0, groups={"only_energy": (1.0, 0.0, 0.0)})
    partial = snap.fit_snap(frames[:1], params, weights)
    assert partial.metadata["n_rows"] == 1
    assert not np.allclose(partial.coefficients, truth.coefficients, atol=1e-3)
