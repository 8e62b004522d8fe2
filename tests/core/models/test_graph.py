"""Periodic crystal graphs: neighbour shells checked by hand, agreement with ASE, invariances, refusals."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list

from aiida_nanoos.models.graph import (
    GraphSettings,
    block_of,
    check_structures,
    element_feature_table,
    element_properties,
    group_of,
    period_of,
    periodic_neighbours,
    structure_to_graph,
    structures_to_graphs,
    valence_electrons,
)
from tests.core.perovskites import perovskite


def simple_cubic(a: float = 3.0) -> Atoms:
    return Atoms("Po", positions=[[0, 0, 0]], cell=np.eye(3) * a, pbc=True)


def test_simple_cubic_shells_counted_by_hand():
    # one atom per cell: 6 neighbours at a, 12 at a*sqrt(2), 8 at a*sqrt(3)
    centre, neighbour, distance = periodic_neighbours(simple_cubic(3.0), cutoff=5.3)
    assert np.all(centre == 0) and np.all(neighbour == 0)  # every neighbour is an image of the atom itself
    values, counts = np.unique(np.round(distance, 6), return_counts=True)
    np.testing.assert_allclose(values, [3.0, 3.0 * np.sqrt(2), 3.0 * np.sqrt(3)], atol=1e-6)
    assert counts.tolist() == [6, 12, 8]


def test_cap_keeps_whole_tied_shell():
    # 8 nearest requested: the 6 first-shell neighbours plus the whole tied shell of 12, never an arbitrary 2
    _, _, distance = periodic_neighbours(simple_cubic(3.0), cutoff=5.3, max_neighbours=8)
    assert len(distance) == 18
    _, _, distance = periodic_neighbours(simple_cubic(3.0), cutoff=5.3, max_neighbours=6)
    assert len(distance) == 6


def test_rock_salt_neighbours_by_hand():
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)  # 8 atoms
    centre, neighbour, distance = periodic_neighbours(atoms, cutoff=4.2)
    numbers = atoms.numbers
    for i in range(len(atoms)):
        mine = centre == i
        d = distance[mine]
        first, second = np.isclose(d, 2.82, atol=1e-6), np.isclose(d, 2.82 * np.sqrt(2), atol=1e-6)
        assert first.sum() == 6 and second.sum() == 12 and (first | second).all()
        # nearest shell is the other species, second shell the same species
        assert np.all(numbers[neighbour[mine][first]] != numbers[i])
        assert np.all(numbers[neighbour[mine][second]] == numbers[i])


def test_matches_ase_on_a_rattled_triclinic_cell():
    atoms = bulk("Si", "diamond", a=5.43).repeat((2, 1, 1))
    atoms.set_cell(atoms.cell.array + np.array([[0, 0.3, 0], [0.2, 0, 0], [0, 0.1, 0.2]]), scale_atoms=True)
    atoms.rattle(0.05, seed=3)
    centre, neighbour, distance = periodic_neighbours(atoms, cutoff=5.0)
    i, j, d = neighbor_list("ijd", atoms, 5.0)
    ours, theirs = np.lexsort((distance, neighbour, centre)), np.lexsort((d, j, i))
    assert np.array_equal(centre[ours], i[theirs]) and np.array_equal(neighbour[ours], j[theirs])
    np.testing.assert_allclose(distance[ours], d[theirs], atol=1e-10)


def _edge_multiset(atoms: Atoms, settings: GraphSettings) -> list[tuple]:
    graph = structure_to_graph(atoms, settings)
    z = graph.atomic_numbers
    return sorted(zip(z[graph.centre], z[graph.neighbour], np.round(graph.distance, 4), strict=True))


def test_graph_invariant_to_atom_order_and_supercell():
    settings = GraphSettings(cutoff=6.0, max_neighbours=12)
    atoms = perovskite("Sr", "Ti", "O")
    atoms.positions[2] += [0.01, 0.0, 0.0]  # break the symmetry a little
    shuffled = atoms[[3, 0, 4, 2, 1]]
    assert _edge_multiset(atoms, settings) == _edge_multiset(shuffled, settings)
    # each atom of a supercell sees the same neighbours as in the primitive cell
    supercell = _edge_multiset(atoms.repeat((2, 1, 1)), settings)
    assert supercell == sorted(_edge_multiset(atoms, settings) * 2)
    # wrapping an atom into another image changes nothing
    moved = atoms.copy()
    moved.positions[1] += atoms.cell[0]
    assert _edge_multiset(moved, settings) == _edge_multiset(atoms, settings)


def test_perovskite_anion_keeps_its_tied_shell():
    # around an anion of a cubic perovskite, 4 A cations and 8 anions are tied at a/sqrt(2): keep all 14
    graph = structure_to_graph(perovskite("Sr", "Ti", "O"), GraphSettings(cutoff=6.0, max_neighbours=12))
    counts = np.bincount(graph.centre)
    assert counts.tolist() == [12, 14, 14, 14, 14]  # A: 12 anions; B: 6 anions + 8 A; X: 2 B + 12


def test_element_table_physics():
    assert (group_of(26), period_of(26), block_of(26), valence_electrons(26)) == (8, 4, "d", 8)
    assert (group_of(57), group_of(72), group_of(83), period_of(55)) == (3, 4, 15, 6)
    assert block_of(64) == "f" and valence_electrons(64) == 3
    assert (group_of(8), valence_electrons(8), block_of(8)) == (16, 6, "p")
    assert element_properties(8)["electronegativity"] == pytest.approx(3.44)
    assert element_properties(1)["first_ionisation_energy"] == pytest.approx(13.598)
    table = element_feature_table()
    assert (group_of(84), group_of(87), group_of(92), block_of(92), period_of(94)) == (16, 1, 3, "f", 7)
    assert table.shape[0] == 95 and np.all(np.isfinite(table))
    assert not np.allclose(table[26], table[27])  # Fe and Co are told apart
    assert len({tuple(row) for row in np.round(table[1:], 5)}) == 94  # every element has its own vector


def test_unknown_element_and_empty_batch_refused():
    with pytest.raises(ValueError, match="Am"):
        structures_to_graphs([perovskite("Sr", "Ti", "O"), Atoms("Am", cell=np.eye(3) * 3, pbc=True)])
    with pytest.raises(ValueError, match="empty"):
        structures_to_graphs([])
    with pytest.raises(ValueError, match="Fe"):
        check_structures([perovskite("Fe", "Ti", "O")], allowed=[38, 22, 8])


def test_isolated_atom_has_no_edges():
    lonely = Atoms("Na", positions=[[0, 0, 0]], cell=np.eye(3) * 20.0, pbc=True)
    graph = structure_to_graph(lonely, GraphSettings(cutoff=6.0))
    assert graph.n_atoms == 1 and len(graph.centre) == 0


def test_batched_featurisation_equals_one_by_one():
    # equal-size small cells go through the batched search: same graphs, in the same canonical order
    structures = [perovskite(a, b, x, strain=s) for a, b, x, s in [("Sr", "Ti", "O", 1.0), ("K", "Nb", "F", 1.1),
                                                                  ("Ba", "Zr", "S", 0.95)]]  # fmt: skip
    structures[1].positions[2] += [0.03, -0.02, 0.0]
    structures.append(bulk("Si", "diamond", a=5.43).repeat((1, 1, 1)))
    structures.append(bulk("NaCl", "rocksalt", a=5.64, cubic=True))
    batched = structures_to_graphs(structures)
    for atoms, graph in zip(structures, batched, strict=True):
        single = structure_to_graph(atoms)
        assert np.array_equal(single.centre, graph.centre) and np.array_equal(single.neighbour, graph.neighbour)
        np.testing.assert_allclose(single.distance, graph.distance, atol=1e-6)


def test_extended_element_table_adds_ionic_chemistry_to_the_basic_one():
    basic, extended = element_feature_table("basic"), element_feature_table("extended")
    assert basic.shape == (95, 82) and extended.shape == (95, 162)
    np.testing.assert_array_equal(extended[:, :82], basic)  # the basic features first, unchanged
    assert np.all(np.isfinite(extended)) and np.all(extended[0] == 0)
    extra = extended[:, 82:]
    # elements the basic table puts close together differ in how they behave as ions
    sr, ba, o, s = (extra[z] for z in (38, 56, 8, 16))  # Sr/Ba cations, O/S anions
    assert np.abs(sr - ba).max() > 0.3 and np.abs(o - s).max() > 0.3
    # every extra column tells some elements apart
    assert np.all(extra[1:].max(axis=0) - extra[1:].min(axis=0) > 0.3)
    with pytest.raises(ValueError, match="unknown element table"):
        element_feature_table("magpie")
