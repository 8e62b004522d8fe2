"""Frame I/O: extxyz and FitSNAP JSON readers/writers keep energies, forces and stress in one convention."""

import numpy as np
import pytest
from ase.build import bulk

from aiida_nanoos.potentials import frames as frame_io


def labelled_frames(count=3, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(count):
        atoms = bulk("Si", "diamond", a=5.43, cubic=True)
        atoms.rattle(0.05, seed=index)
        frames.append(
            frame_io.make_frame(
                atoms.get_chemical_symbols(),
                atoms.positions,
                atoms.cell.array,
                energy=-43.1 * len(atoms) + rng.normal(),
                forces=rng.normal(size=(len(atoms), 3)),
                stress=rng.normal(scale=0.01, size=6),
                config_type="rattled" if index % 2 else "strained",
                source_uuid=f"uuid-{index}",
            )
        )
    return frames


def assert_same_labels(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        la, lb = frame_io.frame_labels(a), frame_io.frame_labels(b)
        assert a.get_chemical_symbols() == b.get_chemical_symbols()
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-8)
        np.testing.assert_allclose(la["energy"], lb["energy"], rtol=0, atol=1e-8)
        np.testing.assert_allclose(la["forces"], lb["forces"], atol=1e-8)
        np.testing.assert_allclose(la["stress"], lb["stress"], atol=1e-10)
        assert a.info["config_type"] == b.info["config_type"]


def test_extxyz_round_trip_keeps_labels_and_metadata(tmp_path):
    frames = labelled_frames()
    frame_io.write_extxyz(frames, tmp_path / "set.extxyz")
    again = frame_io.read_frames(tmp_path / "set.extxyz")
    assert_same_labels(frames, again)
    assert [a.info["source_uuid"] for a in again] == ["uuid-0", "uuid-1", "uuid-2"]


def test_fitsnap_json_round_trip_converts_stress_units_and_sign(tmp_path):
    frames = labelled_frames()
    paths = frame_io.write_fitsnap_json(frames, tmp_path / "json")
    assert {p.parent.name for p in paths} == {"rattled", "strained"}
    again = frame_io.read_frames(tmp_path / "json")
    by_energy = sorted(again, key=lambda a: frame_io.frame_labels(a)["energy"])
    assert_same_labels(sorted(frames, key=lambda a: frame_io.frame_labels(a)["energy"]), by_energy)


def test_fitsnap_ta_json_and_xyz_agree_after_unit_conversion(shared_benchmarks):
    """FitSNAP's Ta set ships as JSON (stress in bar) and extxyz (also bar): both read to the same eV/Å³ stress."""
    ta = shared_benchmarks / "fitsnap_ta"
    from_json = frame_io.read_frames(ta / "JSON" / "Displaced_BCC")
    from_xyz = frame_io.read_frames(ta / "XYZ_same_data" / "Displaced_BCC.xyz")
    assert len(from_json) == len(from_xyz) == 9
    energies_json = sorted(frame_io.frame_labels(a)["energy"] for a in from_json)
    energies_xyz = sorted(frame_io.frame_labels(a)["energy"] for a in from_xyz)
    np.testing.assert_allclose(energies_json, energies_xyz)
    stress = {round(frame_io.frame_labels(a)["energy"], 4): frame_io.frame_labels(a)["stress"] for a in from_json}
    for atoms in from_xyz:
        np.testing.assert_allclose(
            frame_io.frame_labels(atoms)["stress"], stress[round(atoms.calc.results["energy"], 4)]
        )
    # 48457 bar of compression in the file is -0.3024 eV/Å³ in ASE's sign convention
    assert frame_io.frame_labels(from_xyz[0])["stress"][0] == pytest.approx(-48457.11 * 1e-4 / 160.21766, rel=1e-5)


def test_lammps_data_export_is_readable(tmp_path):
    from ase.io.lammpsdata import read_lammps_data

    frames = labelled_frames(2)
    paths = frame_io.write_lammps_data(frames, tmp_path / "conf.data")
    assert [p.name for p in paths] == ["conf_00000.data", "conf_00001.data"]
    atoms = read_lammps_data(paths[1], atom_style="atomic", units="metal")
    np.testing.assert_allclose(atoms.positions, frames[1].positions, atol=1e-6)


def test_statistics_filter_and_split():
    frames = labelled_frames(10)
    stats = frame_io.frame_statistics(frames)
    assert stats["num_frames"] == 10 and stats["num_atoms"] == 80 and stats["elements"] == ["Si"]
    largest = max(np.linalg.norm(frame_io.frame_labels(a)["forces"], axis=1).max() for a in frames)
    assert stats["max_force"] == pytest.approx(largest)
    kept = frame_io.filter_by_max_force(frames, 3.0)
    assert all(np.linalg.norm(frame_io.frame_labels(a)["forces"], axis=1).max() <= 3.0 for a in kept)
    assert len(kept) < len(frames)
    train, validation = frame_io.split_indices(10, 0.3, seed=5)
    assert (train, validation) == frame_io.split_indices(10, 0.3, seed=5)
    assert len(validation) == 3 and sorted(train + validation) == list(range(10))
    assert frame_io.split_indices(10, 0.3, seed=6) != (train, validation)
    with pytest.raises(ValueError, match="validation_fraction"):
        frame_io.split_indices(10, 1.0, seed=0)


def test_mlearn_json_reads_pymatgen_structures_with_vasp_stress(tmp_path):
    """An mlearn data file (Zuo et al. 2020): stress in kbar, VASP order xx yy zz xy yz zx, positive when compressed."""
    import json

    document = {
        "structure": {
            "lattice": {"matrix": [[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]]},
            "sites": [
                {"species": [{"element": "Si", "occu": 1}], "xyz": [0.0, 0.0, 0.0]},
                {"species": [{"element": "Si", "occu": 1}], "xyz": [1.3, 1.4, 1.5]},
            ],
        },
        "outputs": {
            "energy": -10.5,
            "forces": [[0.1, 0.0, -0.1], [-0.1, 0.0, 0.1]],
            "virial_stress": [10.0, 20.0, 30.0, 1.0, 2.0, 3.0],
        },
        "group": "Elastic",
    }
    (tmp_path / "training.json").write_text(json.dumps([document, document]))
    frames = frame_io.read_frames(tmp_path / "training.json")
    assert len(frames) == 2
    labels = frame_io.frame_labels(frames[0])
    assert frames[0].get_chemical_symbols() == ["Si", "Si"]
    assert labels["energy"] == -10.5
    np.testing.assert_allclose(frames[0].positions[1], [1.3, 1.4, 1.5])
    kbar = 0.1 * frame_io.GPA
    # Voigt xx yy zz yz xz xy, ASE sign (negative under compression)
    np.testing.assert_allclose(labels["stress"], -kbar * np.array([10.0, 20.0, 30.0, 2.0, 3.0, 1.0]))
    assert frames[0].info["config_type"] == "Elastic"
