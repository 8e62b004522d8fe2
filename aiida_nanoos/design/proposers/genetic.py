"""Random search and genetic algorithms for design campaigns, seeded and deterministic.

Two genetic algorithms share the ask/tell pattern of the campaign (``ask`` proposes a batch, the campaign evaluates
it with DFT or a surrogate, ``tell`` returns the fitness, higher is better):

* :class:`VectorGA` works on encoded points of a :class:`~aiida_nanoos.design.spaces.ParameterSpace` (the unit box),
  with uniform crossover and Gaussian mutation, projected back onto valid encodings;
* :class:`StructureGA` works on :class:`ase.Atoms` candidates with cut-and-splice crossover and the mutations
  ``swap_element``, ``shift_atom`` and ``change_lattice``.

Randomness comes from ``numpy.random.default_rng([seed, counter])`` with a counter that ``ask`` increments, so a GA
restored from its JSON state (:meth:`to_dict` / :meth:`from_dict`) continues exactly as if it had never stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from ase import Atoms

from aiida_nanoos.design.config import GA_MUTATION_TYPES as MUTATION_TYPES  # one list, checked by the config too
from aiida_nanoos.design.spaces import ParameterSpace, atoms_from_dict, atoms_to_dict


def random_search(space: ParameterSpace, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` feasible points drawn uniformly from ``space`` (the baseline every campaign should beat)."""
    return space.sample(n, seed)


# ---------------------------------------------------------------------------------------------- structure operators
def swap_element(atoms: Atoms, rng: np.random.Generator, element_pool: Sequence[str] | None = None) -> Atoms:
    """Change the chemistry at one or two sites.

    Without ``element_pool``: exchange the elements of two sites that hold different elements (composition kept,
    ordering changed). With a pool: give one random site another element from the pool (composition changed).
    Returns a copy; positions and cell are untouched.
    """
    new = atoms.copy()
    symbols = new.get_chemical_symbols()
    if element_pool:
        i = int(rng.integers(len(symbols)))
        choices = [e for e in element_pool if e != symbols[i]]
        if choices:
            symbols[i] = choices[int(rng.integers(len(choices)))]
    else:
        if len(set(symbols)) < 2:
            return new
        i = int(rng.integers(len(symbols)))
        others = [j for j, s in enumerate(symbols) if s != symbols[i]]
        j = others[int(rng.integers(len(others)))]
        symbols[i], symbols[j] = symbols[j], symbols[i]
    new.set_chemical_symbols(symbols)
    return new


def shift_atom(atoms: Atoms, rng: np.random.Generator, max_displacement: float = 0.3) -> Atoms:
    """Move one random atom by a random vector of length up to ``max_displacement`` Å (uniform in a ball)."""
    if max_displacement <= 0:
        raise ValueError(f"max_displacement must be positive, got {max_displacement}")
    new = atoms.copy()
    i = int(rng.integers(len(new)))
    direction = rng.standard_normal(3)
    direction /= np.linalg.norm(direction)
    length = max_displacement * rng.random() ** (1.0 / 3.0)
    positions = new.get_positions()
    positions[i] += length * direction
    new.set_positions(positions)
    return new


def change_lattice(atoms: Atoms, rng: np.random.Generator, max_strain: float = 0.05) -> Atoms:
    """Apply a random symmetric strain (each component in [-max_strain, max_strain]) to the cell, atoms follow."""
    if not 0 < max_strain < 1:
        raise ValueError(f"max_strain must be in (0, 1), got {max_strain}")
    new = atoms.copy()
    e = rng.uniform(-max_strain, max_strain, size=(3, 3))
    e = 0.5 * (e + e.T)
    cell = np.asarray(new.get_cell())
    new.set_cell(cell @ (np.eye(3) + e), scale_atoms=True)
    return new


def cut_and_splice(a: Atoms, b: Atoms, rng: np.random.Generator) -> Atoms:
    """Child of two parents with the same number of sites (e.g. two decorations of one base cell): a random plane
    along a random lattice direction; sites below it take parent ``a``'s element and position, the rest ``b``'s.
    The cell is the mean of the parents' cells."""
    if len(a) != len(b):
        raise ValueError(f"cut_and_splice needs parents with equal numbers of atoms, got {len(a)} and {len(b)}")
    axis = int(rng.integers(3))
    cut = rng.random()
    frac = a.get_scaled_positions(wrap=True)[:, axis]
    from_a = frac < cut
    cell = 0.5 * (np.asarray(a.get_cell()) + np.asarray(b.get_cell()))
    sym_a, sym_b = a.get_chemical_symbols(), b.get_chemical_symbols()
    symbols = [sa if fa else sb for sa, sb, fa in zip(sym_a, sym_b, from_a, strict=True)]
    scaled = np.where(from_a[:, None], a.get_scaled_positions(wrap=False), b.get_scaled_positions(wrap=False))
    child = Atoms(symbols=symbols, scaled_positions=scaled, cell=cell, pbc=a.get_pbc())
    return child


# ---------------------------------------------------------------------------------------------- shared machinery
class _SeededGA:
    """Population bookkeeping common to both GAs: elitism plus tournament-selected survivors for diversity."""

    def __init__(
        self,
        population_size: int,
        elite_fraction: float,
        crossover_probability: float,
        mutation_probability: float,
        seed: int,
    ) -> None:
        if population_size < 2:
            raise ValueError(f"population_size must be >= 2, got {population_size}")
        for name, value in (
            ("elite_fraction", elite_fraction),
            ("crossover_probability", crossover_probability),
            ("mutation_probability", mutation_probability),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        self.population_size = int(population_size)
        self.elite_fraction = float(elite_fraction)
        self.crossover_probability = float(crossover_probability)
        self.mutation_probability = float(mutation_probability)
        self.seed = int(seed)
        self.counter = 0
        self.fitness = np.empty(0)

    def _rng(self) -> np.random.Generator:
        rng = np.random.default_rng([self.seed, self.counter])
        self.counter += 1
        return rng

    def _tournament(self, rng: np.random.Generator, k: int = 2) -> int:
        idx = rng.integers(len(self.fitness), size=k)
        return int(idx[np.argmax(self.fitness[idx])])

    def _survivors(self, fitness: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Indices kept: the elite by fitness, then tournament winners among the rest (no repeats)."""
        n_keep = min(self.population_size, len(fitness))
        order = np.argsort(-fitness, kind="stable")
        n_elite = min(n_keep, max(1, int(round(self.elite_fraction * self.population_size))))
        keep = list(order[:n_elite])
        rest = list(order[n_elite:])
        while len(keep) < n_keep:
            if len(rest) == 1:
                winner = rest[0]
            else:
                a, b = rng.choice(len(rest), size=2, replace=False)
                winner = rest[a] if fitness[rest[a]] >= fitness[rest[b]] else rest[b]
            keep.append(winner)
            rest.remove(winner)
        return np.asarray(keep, dtype=int)

    def best(self) -> int:
        return int(np.argmax(self.fitness))


class VectorGA(_SeededGA):
    """GA on encoded points in [0, 1]^d: uniform crossover, per-gene Gaussian mutation, projection onto the space."""

    def __init__(
        self,
        n_dims: int,
        *,
        population_size: int = 50,
        elite_fraction: float = 0.2,
        crossover_probability: float = 0.7,
        mutation_probability: float = 0.3,
        mutation_scale: float = 0.1,
        project: Callable[[np.ndarray], np.ndarray] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(population_size, elite_fraction, crossover_probability, mutation_probability, seed)
        self.n_dims = int(n_dims)
        self.mutation_scale = float(mutation_scale)
        self.project = project or (lambda x: x)
        self.population = np.empty((0, self.n_dims))

    @classmethod
    def for_space(cls, space: ParameterSpace, **kwargs: Any) -> VectorGA:
        return cls(space.n_encoded, project=space.project, **kwargs)

    def ask(self, n: int) -> np.ndarray:
        """``n`` children (random points while nothing has been evaluated yet)."""
        rng = self._rng()
        if len(self.fitness) == 0:
            return self.project(rng.random((n, self.n_dims)))
        children = np.empty((n, self.n_dims))
        for k in range(n):
            child = self.population[self._tournament(rng)].copy()
            if rng.random() < self.crossover_probability:
                other = self.population[self._tournament(rng)]
                mask = rng.random(self.n_dims) < 0.5
                child[mask] = other[mask]
            genes = rng.random(self.n_dims) < self.mutation_probability
            child[genes] += self.mutation_scale * rng.standard_normal(int(genes.sum()))
            children[k] = np.clip(child, 0.0, 1.0)
        return self.project(children)

    def tell(self, X: np.ndarray, fitness: Sequence[float]) -> None:
        X = np.atleast_2d(np.asarray(X, dtype=float))
        fitness = np.asarray(fitness, dtype=float)
        if len(X) != len(fitness):
            raise ValueError(f"{len(X)} points but {len(fitness)} fitness values")
        pop = np.vstack([self.population, X])
        fit = np.concatenate([self.fitness, fitness])
        keep = self._survivors(fit, self._rng())
        self.population, self.fitness = pop[keep], fit[keep]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "vector_ga",
            "n_dims": self.n_dims,
            "population_size": self.population_size,
            "elite_fraction": self.elite_fraction,
            "crossover_probability": self.crossover_probability,
            "mutation_probability": self.mutation_probability,
            "mutation_scale": self.mutation_scale,
            "seed": self.seed,
            "counter": self.counter,
            "population": self.population.tolist(),
            "fitness": self.fitness.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], project: Callable[[np.ndarray], np.ndarray] | None = None) -> VectorGA:
        ga = cls(
            data["n_dims"],
            population_size=data["population_size"],
            elite_fraction=data["elite_fraction"],
            crossover_probability=data["crossover_probability"],
            mutation_probability=data["mutation_probability"],
            mutation_scale=data["mutation_scale"],
            project=project,
            seed=data["seed"],
        )
        ga.counter = int(data["counter"])
        ga.population = np.asarray(data["population"], dtype=float).reshape(-1, ga.n_dims)
        ga.fitness = np.asarray(data["fitness"], dtype=float)
        return ga


class StructureGA(_SeededGA):
    """GA on crystal structures (ase.Atoms). Children carry ``info['generation_method']`` and ``info['parents']``
    (``info['candidate_id']`` of the parents) for the provenance of the campaign.

    ``is_valid`` (e.g. ``lambda a: not space.violations(a)``) rejects children that break the constraints; a
    rejected child is re-drawn up to 20 times before a mutated copy of an elite parent is used instead.
    """

    def __init__(
        self,
        *,
        population_size: int = 50,
        elite_fraction: float = 0.2,
        crossover_probability: float = 0.7,
        mutation_probability: float = 0.3,
        mutation_types: Sequence[str] = MUTATION_TYPES,
        element_pool: Sequence[str] | None = None,
        max_displacement: float = 0.3,
        max_strain: float = 0.05,
        is_valid: Callable[[Atoms], bool] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(population_size, elite_fraction, crossover_probability, mutation_probability, seed)
        unknown = [m for m in mutation_types if m not in MUTATION_TYPES]
        if unknown or not mutation_types:
            raise ValueError(
                f"mutation_types: unknown or empty {list(mutation_types)} (allowed {list(MUTATION_TYPES)})"
            )
        self.mutation_types = tuple(mutation_types)
        self.element_pool = tuple(element_pool) if element_pool else None
        self.max_displacement = float(max_displacement)
        self.max_strain = float(max_strain)
        self.is_valid = is_valid or (lambda atoms: True)
        self.population: list[Atoms] = []
        self.generation = 0

    def _mutate(self, atoms: Atoms, rng: np.random.Generator) -> tuple[Atoms, str]:
        kind = self.mutation_types[int(rng.integers(len(self.mutation_types)))]
        if kind == "swap_element":
            return swap_element(atoms, rng, self.element_pool), kind
        if kind == "shift_atom":
            return shift_atom(atoms, rng, self.max_displacement), kind
        return change_lattice(atoms, rng, self.max_strain), kind

    def ask(self, n: int, seeds: Sequence[Atoms] = ()) -> list[Atoms]:
        """``n`` children. Before anything was evaluated, mutated copies of ``seeds`` (e.g. the base cell)."""
        rng = self._rng()
        self.generation += 1
        out: list[Atoms] = []
        for k in range(n):
            child = None
            for _ in range(20):
                child = self._make_child(rng, seeds)
                if self.is_valid(child):
                    break
            else:
                parent = self.population[self.best()] if self.population else seeds[0]
                child, kind = self._mutate(parent, rng)
                child.info.update(
                    {"generation_method": f"mutation:{kind}", "parents": [parent.info.get("candidate_id")]}
                )
            child.info["candidate_id"] = f"g{self.generation}-{k}"
            out.append(child)
        return out

    def _make_child(self, rng: np.random.Generator, seeds: Sequence[Atoms]) -> Atoms:
        if not self.population:
            if not seeds:
                raise ValueError("StructureGA.ask: no population yet; pass seed structures")
            parent = seeds[int(rng.integers(len(seeds)))]
            child, kind = self._mutate(parent, rng)
            child.info = {"generation_method": f"mutation:{kind}", "parents": [parent.info.get("candidate_id")]}
            return child
        a = self.population[self._tournament(rng)]
        parents = [a.info.get("candidate_id")]
        methods = []
        child = a.copy()
        if rng.random() < self.crossover_probability:
            b = self.population[self._tournament(rng)]
            if len(b) == len(a):
                child = cut_and_splice(a, b, rng)
                parents.append(b.info.get("candidate_id"))
                methods.append("crossover")
        if not methods or rng.random() < self.mutation_probability:
            child, kind = self._mutate(child, rng)
            methods.append(f"mutation:{kind}")
        child.info = {"generation_method": "+".join(methods), "parents": parents}
        return child

    def tell(self, structures: Sequence[Atoms], fitness: Sequence[float]) -> None:
        fitness = np.asarray(fitness, dtype=float)
        if len(structures) != len(fitness):
            raise ValueError(f"{len(structures)} structures but {len(fitness)} fitness values")
        pop = self.population + [s.copy() for s in structures]
        for s, src in zip(pop[len(self.population) :], structures, strict=True):
            s.info = dict(src.info)
        fit = np.concatenate([self.fitness, fitness])
        keep = self._survivors(fit, self._rng())
        self.population = [pop[i] for i in keep]
        self.fitness = fit[keep]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "structure_ga",
            "population_size": self.population_size,
            "elite_fraction": self.elite_fraction,
            "crossover_probability": self.crossover_probability,
            "mutation_probability": self.mutation_probability,
            "mutation_types": list(self.mutation_types),
            "element_pool": None if self.element_pool is None else list(self.element_pool),
            "max_displacement": self.max_displacement,
            "max_strain": self.max_strain,
            "seed": self.seed,
            "counter": self.counter,
            "generation": self.generation,
            "population": [
                {
                    **atoms_to_dict(a),
                    "info": {k: a.info.get(k) for k in ("candidate_id", "generation_method", "parents")},
                }
                for a in self.population
            ],
            "fitness": self.fitness.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], is_valid: Callable[[Atoms], bool] | None = None) -> StructureGA:
        ga = cls(
            population_size=data["population_size"],
            elite_fraction=data["elite_fraction"],
            crossover_probability=data["crossover_probability"],
            mutation_probability=data["mutation_probability"],
            mutation_types=data["mutation_types"],
            element_pool=data["element_pool"],
            max_displacement=data["max_displacement"],
            max_strain=data["max_strain"],
            is_valid=is_valid,
            seed=data["seed"],
        )
        ga.counter = int(data["counter"])
        ga.generation = int(data["generation"])
        ga.population = []
        for entry in data["population"]:
            atoms = atoms_from_dict(entry)
            atoms.info = dict(entry.get("info") or {})
            ga.population.append(atoms)
        ga.fitness = np.asarray(data["fitness"], dtype=float)
        return ga
