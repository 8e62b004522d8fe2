"""Specification of random search and the genetic algorithms (mutation types, determinism, resuming)."""

import json

import numpy as np
import pytest
from ase.build import bulk

from aiida_nanoos.design.proposers.genetic import (
    StructureGA,
    VectorGA,
    change_lattice,
    cut_and_splice,
    random_search,
    shift_atom,
    swap_element,
)
from aiida_nanoos.design.spaces import Continuous, Integer, ParameterSpace

# one BLAS thread: millisecond tests stay milliseconds on a small shared machine
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _alloy():
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 1, 1))  # 8 sites
    atoms.set_chemical_symbols(["Cu", "Au"] * 4)
    return atoms


def test_swap_element_exchanges_two_different_sites_and_keeps_composition():
    atoms = _alloy()
    new = swap_element(atoms, np.random.default_rng(0))
    changed = [i for i, (a, b) in enumerate(zip(atoms.symbols, new.symbols, strict=True)) if a != b]
    assert len(changed) == 2
    assert sorted(new.get_chemical_symbols()) == sorted(atoms.get_chemical_symbols())
    np.testing.assert_allclose(new.positions, atoms.positions)


def test_swap_element_with_a_pool_substitutes_one_site():
    atoms = _alloy()
    new = swap_element(atoms, np.random.default_rng(1), element_pool=["Ag"])
    changed = [i for i, (a, b) in enumerate(zip(atoms.symbols, new.symbols, strict=True)) if a != b]
    assert len(changed) == 1 and new[changed[0]].symbol == "Ag"


def test_shift_atom_moves_exactly_one_atom_within_the_limit():
    atoms = _alloy()
    new = shift_atom(atoms, np.random.default_rng(2), max_displacement=0.25)
    d = np.linalg.norm(new.positions - atoms.positions, axis=1)
    assert np.count_nonzero(d > 1e-12) == 1 and 0 < d.max() <= 0.25
    np.testing.assert_allclose(new.cell, atoms.cell)


def test_change_lattice_strains_the_cell_and_keeps_fractional_positions():
    atoms = _alloy()
    new = change_lattice(atoms, np.random.default_rng(3), max_strain=0.04)
    assert not np.allclose(new.cell, atoms.cell)
    strain = np.linalg.solve(atoms.cell.array, new.cell.array) - np.eye(3)
    assert np.abs(strain).max() <= 0.04 + 1e-12
    np.testing.assert_allclose(new.get_scaled_positions(), atoms.get_scaled_positions(), atol=1e-12)
    assert new.get_chemical_symbols() == atoms.get_chemical_symbols()


def test_cut_and_splice_takes_sites_from_both_parents():
    a = _alloy()
    b = a.copy()
    b.set_chemical_symbols(["Ag"] * len(b))
    child = cut_and_splice(a, b, np.random.default_rng(4))
    assert len(child) == len(a)
    assert set(child.get_chemical_symbols()) <= {"Cu", "Au", "Ag"}
    with pytest.raises(ValueError, match="equal numbers"):
        cut_and_splice(a, b[:3], np.random.default_rng(0))


def test_random_search_is_seeded():
    space = ParameterSpace([Continuous("x", 0, 1), Integer("n", 1, 3)])
    assert random_search(space, 4, seed=1) == random_search(space, 4, seed=1)


def _sphere_fitness(X):
    return -np.sum((X - 0.7) ** 2, axis=1)


def test_vector_ga_improves_and_resumes_identically_from_json():
    ga = VectorGA(4, population_size=20, seed=5)
    first = ga.ask(20)
    ga.tell(first, _sphere_fitness(first))
    start_best = ga.fitness.max()
    for _ in range(3):
        X = ga.ask(20)
        ga.tell(X, _sphere_fitness(X))
    clone = VectorGA.from_dict(json.loads(json.dumps(ga.to_dict())))
    for _ in range(15):
        X, Xc = ga.ask(20), clone.ask(20)
        np.testing.assert_array_equal(X, Xc)
        ga.tell(X, _sphere_fitness(X))
        clone.tell(Xc, _sphere_fitness(Xc))
    assert ga.fitness.max() > start_best
    assert ga.fitness.max() > -0.01
    # the elite (20% of 20 = 4 best ever) always survives
    assert len(ga.population) == 20


def test_vector_ga_projects_children_onto_the_space():
    space = ParameterSpace([Integer("n", 0, 4), Continuous("x", 0, 1)])
    ga = VectorGA.for_space(space, population_size=6, seed=0)
    X = ga.ask(6)
    ga.tell(X, X[:, 1])
    children = ga.ask(10)
    np.testing.assert_allclose(children[:, 0] * 4, np.round(children[:, 0] * 4))


def test_structure_ga_records_provenance_and_is_deterministic():
    seed_cell = _alloy()

    def fitness(structures):  # favour Au-rich cells
        return [s.get_chemical_symbols().count("Au") for s in structures]

    def run(ga_seed):
        ga = StructureGA(population_size=8, mutation_types=["swap_element"], element_pool=["Au", "Cu"], seed=ga_seed)
        batch = ga.ask(8, seeds=[seed_cell])
        ga.tell(batch, fitness(batch))
        for _ in range(6):
            batch = ga.ask(8)
            ga.tell(batch, fitness(batch))
        return ga, batch

    ga, batch = run(11)
    ga2, batch2 = run(11)
    assert [b.get_chemical_symbols() for b in batch] == [b.get_chemical_symbols() for b in batch2]
    assert ga.fitness.max() > 4  # started at 4 Au of 8
    assert all(b.info["candidate_id"].startswith("g7-") for b in batch)
    assert all(b.info["parents"] for b in batch)
    assert all(
        "mutation:swap_element" in b.info["generation_method"] or "crossover" in b.info["generation_method"]
        for b in batch
    )
    restored = StructureGA.from_dict(json.loads(json.dumps(ga.to_dict())))
    assert [a.get_chemical_symbols() for a in restored.population] == [a.get_chemical_symbols() for a in ga.population]
    assert [c.get_chemical_symbols() for c in restored.ask(3)] == [c.get_chemical_symbols() for c in ga.ask(3)]


def test_structure_ga_respects_validity_and_rejects_unknown_mutations():
    with pytest.raises(ValueError, match="mutation_types"):
        StructureGA(mutation_types=["explode"])
    ga = StructureGA(
        population_size=4,
        mutation_types=["swap_element"],
        element_pool=["Pb", "Cu"],
        is_valid=lambda a: "Pb" not in a.get_chemical_symbols(),
        seed=0,
    )
    batch = ga.ask(6, seeds=[_alloy()])
    assert all("Pb" not in b.get_chemical_symbols() for b in batch)
