"""Design spaces: what a campaign may vary, how a point is encoded for the GP, and how it becomes a structure.

A point is a plain dict ``{dimension name: value}``; it is encoded as a vector in the unit box [0, 1]^D for the
surrogate (one-hot for categories, one coordinate per component for compositions) and decoded back after the
acquisition has been maximised. Structural spaces hold a base cell (an :class:`ase.Atoms`), substitutions of a host
element by dopants and lattice strains, and :meth:`ParameterSpace.to_atoms` turns a point into the candidate cell.

Everything is validated when the space is built, and every error names the offending field, so that a campaign
fails at submission instead of after the first DFT batch. :meth:`ParameterSpace.to_dict` gives plain JSON types for
an AiiDA ``Dict`` node and :meth:`ParameterSpace.from_dict` reads it back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from aiida_nanoos.design.constraints import ELEMENT_KEYS, STRUCTURE_KEYS, ElementConstraints, StructureConstraints
from aiida_nanoos.design.dimensions import (
    DIMENSION_TYPES,
    Categorical,
    Composition,
    Continuous,
    Dimension,
    Integer,
    Strain,
    Substitution,
    check_element,
)

__all__ = [
    "Categorical",
    "Composition",
    "Continuous",
    "Dimension",
    "ElementConstraints",
    "Integer",
    "ParameterSpace",
    "Strain",
    "StructureConstraints",
    "Substitution",
    "atoms_from_dict",
    "atoms_to_dict",
]


def atoms_to_dict(atoms: Atoms) -> dict[str, Any]:
    """Plain-JSON form of a cell (symbols, Cartesian positions in Å, cell in Å, periodicity)."""
    return {
        "symbols": atoms.get_chemical_symbols(),
        "positions": atoms.get_positions().tolist(),
        "cell": np.asarray(atoms.get_cell()).tolist(),
        "pbc": [bool(p) for p in atoms.get_pbc()],
    }


#: Longest name of a dimension (it becomes a key of every candidate's parameters and of the agent's JSON).
MAX_NAME_LENGTH = 100


def atoms_from_dict(data: Mapping[str, Any], where: str = "base_structure") -> Atoms:
    """A cell from ``{symbols, positions, cell, pbc}``; ``ValueError`` naming the missing or malformed entry."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: must be a mapping with symbols, positions and cell, got {type(data).__name__}")
    missing = [key for key in ("symbols", "positions", "cell") if key not in data]
    if missing:
        raise ValueError(f"{where}: missing {missing} (needs symbols, positions and cell)")
    symbols = _listed(data["symbols"], f"{where}.symbols")
    if not symbols:
        raise ValueError(f"{where}.symbols: a cell needs at least one atom")
    for s in symbols:
        check_element(s, f"{where}.symbols")
    arrays = {}
    for key, shape in (("positions", (len(symbols), 3)), ("cell", (3, 3))):
        try:
            array = np.asarray(data[key], dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}.{key}: must be numbers, {shape[0]} x 3") from exc
        if array.shape != shape or not np.isfinite(array).all():
            raise ValueError(f"{where}.{key}: must be {shape[0]} x 3 finite numbers, got shape {array.shape}")
        arrays[key] = array
    return Atoms(symbols=symbols, positions=arrays["positions"], cell=arrays["cell"], pbc=data.get("pbc", True))


def _listed(value: Any, where: str) -> list[Any]:
    """A JSON list (or tuple) as a list; a string, number or mapping is refused naming ``where``."""
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, list | tuple):
        raise ValueError(f"{where}: must be a list, got {value!r}"[:300])
    return list(value)


def _given(data: Mapping[str, Any], key: str) -> Any:
    """``data[key]``, an empty mapping when absent or null (``False``, ``0`` or ``""`` stay, to be refused)."""
    value = data.get(key)
    return {} if value is None else value


def _mapping(value: Any, where: str, known: Sequence[str] | None = None) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: must be a mapping, got {value!r}"[:300])
    unknown = sorted(set(value) - set(known)) if known is not None else []
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown} (allowed {sorted(known)})"[:400])
    return dict(value)


@dataclass
class ParameterSpace:
    """The search space of a campaign: dimensions, an optional base cell, and constraints on candidates."""

    dimensions: Sequence[Dimension]
    base_structure: Atoms | None = None
    element_constraints: ElementConstraints = field(default_factory=ElementConstraints)
    structure_constraints: StructureConstraints = field(default_factory=StructureConstraints)

    def __post_init__(self) -> None:
        self.dimensions = list(self.dimensions)
        if not self.dimensions:
            raise ValueError("dimensions: a space needs at least one dimension")
        names = [d.name for d in self.dimensions]
        for n in names:
            if not isinstance(n, str) or not n.strip() or len(n) > MAX_NAME_LENGTH:
                shown = f"{n[:40]!r}... ({len(n)} characters)" if isinstance(n, str) and len(n) > 60 else repr(n)
                raise ValueError(
                    f"dimensions: every dimension needs a name of 1 to {MAX_NAME_LENGTH} characters, got {shown}"
                )
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"dimensions: duplicate names {dup}")
        structural = [d for d in self.dimensions if isinstance(d, Substitution | Strain)]
        if structural and self.base_structure is None:
            raise ValueError(f"base_structure: required by the structural dimension {structural[0].name!r}")
        if self.base_structure is not None:
            self._check_structure_space()
        self._slices: list[slice] = []
        start = 0
        for d in self.dimensions:
            self._slices.append(slice(start, start + d.width))
            start += d.width
        self.n_encoded = start

    def _check_structure_space(self) -> None:
        base = self.base_structure
        symbols = base.get_chemical_symbols()
        for s in symbols:
            check_element(s, "base_structure symbols")
        hosts_seen: set[str] = set()
        resolved = []
        for d in self.dimensions:
            if isinstance(d, Substitution):
                n_host = symbols.count(d.host)
                if n_host == 0:
                    raise ValueError(f"substitution {d.name!r} host: {d.host!r} is not in the base structure")
                if d.host in hosts_seen:
                    raise ValueError(f"substitution {d.name!r} host: {d.host!r} is already substituted elsewhere")
                hosts_seen.add(d.host)
                lo, hi = d.fraction
                if math.floor(hi * n_host + 1e-9) < math.ceil(lo * n_host - 1e-9):
                    raise ValueError(
                        f"substitution {d.name!r} fraction: no whole number of the {n_host} {d.host} sites "
                        f"lies in [{lo}, {hi}]"
                    )
                ec = self.element_constraints
                for dop in d.dopants:
                    if dop in ec.forbidden or (ec.allowed is not None and dop not in ec.allowed):
                        raise ValueError(
                            f"substitution {d.name!r} dopants: {dop!r} is excluded by the element constraints"
                        )
                d = Substitution(d.name, d.host, d.dopants, d.fraction, n_sites=n_host)
            resolved.append(d)
        self.dimensions = resolved
        ec = self.element_constraints
        bad = [s for s in sorted(set(symbols)) if s in ec.forbidden]
        if bad:
            raise ValueError(f"base_structure: contains forbidden elements {bad}")
        v = self.structure_constraints.violations(len(base))
        if v:
            raise ValueError(f"base_structure: violates the structure constraints ({'; '.join(v)})")

    # --------------------------------------------------------------- points and encodings
    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def dimension(self, name: str) -> Dimension:
        for d in self.dimensions:
            if d.name == name:
                return d
        raise KeyError(name)

    def validate_point(self, point: Mapping[str, Any]) -> None:
        missing = [n for n in self.names if n not in point]
        if missing:
            raise ValueError(f"point is missing dimensions {missing}")
        extra = [n for n in point if n not in self.names]
        if extra:
            raise ValueError(f"point has unknown dimensions {extra}")
        for d in self.dimensions:
            d.validate_value(point[d.name])

    def encode(self, points: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> np.ndarray:
        """(n, n_encoded) array in [0, 1]; a single point gives shape (1, n_encoded)."""
        if isinstance(points, Mapping):
            points = [points]
        out = np.empty((len(points), self.n_encoded))
        for i, p in enumerate(points):
            for d, sl in zip(self.dimensions, self._slices, strict=True):
                if d.name not in p:
                    raise ValueError(f"point is missing dimension {d.name!r}")
                out[i, sl] = d.encode(p[d.name])
        return out

    def decode(self, U: np.ndarray) -> list[dict[str, Any]]:
        """Points from encoded rows (projected first, so any box point gives a valid point)."""
        U = np.atleast_2d(np.asarray(U, dtype=float))
        if U.shape[1] != self.n_encoded:
            raise ValueError(f"encoded points need {self.n_encoded} columns, got {U.shape[1]}")
        return [{d.name: d.decode(row[sl]) for d, sl in zip(self.dimensions, self._slices, strict=True)} for row in U]

    def project(self, U: np.ndarray) -> np.ndarray:
        """Nearest valid encodings: integers rounded, one-hot categories, compositions on the simplex."""
        return self.encode(self.decode(U))

    def sample(
        self, n: int, seed: int | np.random.Generator = 0, *, feasible_only: bool = True
    ) -> list[dict[str, Any]]:
        """``n`` random points (uniform per dimension; compositions uniform on the simplex), reproducible by seed.

        With ``feasible_only`` points whose structure violates the constraints are redrawn (up to 100 n tries).
        """
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        out: list[dict[str, Any]] = []
        tries = 0
        while len(out) < n:
            p = {d.name: d.sample(rng) for d in self.dimensions}
            tries += 1
            if not feasible_only or not self.violations(p):
                out.append(p)
            elif tries > 100 * max(n, 1):
                raise ValueError("sample: could not draw feasible points; the constraints exclude (almost) everything")
        return out

    # --------------------------------------------------------------- structures
    @property
    def is_structural(self) -> bool:
        return self.base_structure is not None

    def to_atoms(self, point: Mapping[str, Any], seed: int = 0) -> Atoms:
        """The candidate cell: substitutions on the base cell (sites drawn with ``seed``), then the strain.

        Site choice is random but reproducible: the same point and seed always give the same cell.
        """
        if self.base_structure is None:
            raise ValueError("to_atoms: this space has no base_structure")
        atoms = self.base_structure.copy()
        base_symbols = self.base_structure.get_chemical_symbols()
        symbols = list(base_symbols)
        rng = np.random.default_rng(seed)
        for d in self.dimensions:
            if isinstance(d, Substitution):
                value = point[d.name]
                sites = [i for i, s in enumerate(base_symbols) if s == d.host]
                k = round(d.quantise(float(value["fraction"])) * len(sites))
                for i in rng.permutation(sites)[:k]:
                    symbols[int(i)] = value["element"]
        atoms.set_chemical_symbols(symbols)
        for d in self.dimensions:
            if isinstance(d, Strain):
                value = point[d.name]
                if d.isotropic:
                    factors = np.full(3, 1.0 + float(value["iso"]))
                else:
                    factors = np.array([1.0 + float(value.get(ax, 0.0)) for ax in ("a", "b", "c")])
                atoms.set_cell(np.asarray(atoms.get_cell()) * factors[:, None], scale_atoms=True)
        return atoms

    def violations(self, point_or_atoms: Mapping[str, Any] | Atoms) -> list[str]:
        """Constraint violations of a candidate (empty list when feasible)."""
        if isinstance(point_or_atoms, Atoms):
            atoms = point_or_atoms
        elif self.base_structure is not None:
            atoms = self.to_atoms(point_or_atoms)
        else:
            return []
        return self.element_constraints.violations(atoms.get_chemical_symbols()) + (
            self.structure_constraints.violations(len(atoms))
        )

    # --------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "dimensions": [d.to_dict() for d in self.dimensions],
            "base_structure": None if self.base_structure is None else atoms_to_dict(self.base_structure),
            "element_constraints": self.element_constraints.to_dict(),
            "structure_constraints": self.structure_constraints.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ParameterSpace:
        """Build from :meth:`to_dict` output (as stored in a ``Dict`` node); unknown keys are an error."""
        known = {"dimensions", "base_structure", "element_constraints", "structure_constraints"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"search space: unknown keys {unknown} (expected {sorted(known)})")
        dims = []
        for i, spec in enumerate(_listed(data.get("dimensions", []), "dimensions")):
            spec = _mapping(spec, f"dimensions[{i}]")
            kind = spec.pop("type", None)
            if not isinstance(kind, str) or kind not in DIMENSION_TYPES:
                raise ValueError(
                    f"dimensions[{i}].type: unknown dimension type {kind!r} (one of {sorted(DIMENSION_TYPES)})"
                )
            where = f"dimensions[{i}] ({kind} {spec.get('name')!r})"
            if kind == "categorical":
                spec["choices"] = tuple(_listed(spec.get("choices", ()), f"{where}.choices"))
            if kind == "composition":
                for key in ("components", "min_fractions", "max_fractions"):
                    if spec.get(key) is not None:
                        spec[key] = tuple(_listed(spec[key], f"{where}.{key}"))
            if kind == "substitution":
                dopants = spec.get("dopants", ())  # one dopant may be given as a string
                listed = (dopants,) if isinstance(dopants, str) else _listed(dopants, f"{where}.dopants")
                spec["dopants"] = tuple(listed)
                spec["fraction"] = tuple(_listed(spec.get("fraction", (0.0, 1.0)), f"{where}.fraction"))
            if kind == "strain":
                ranges = _mapping(spec.get("ranges", {}), f"{where}.ranges")
                spec["ranges"] = {k: tuple(_listed(v, f"{where}.ranges.{k}")) for k, v in ranges.items()}
            try:
                dims.append(DIMENSION_TYPES[kind](**spec))
            except TypeError as exc:
                raise ValueError(f"dimensions[{i}] ({kind}): {exc}") from exc
        base = data.get("base_structure")
        ec = _mapping(_given(data, "element_constraints"), "element_constraints", ELEMENT_KEYS)
        sc = _mapping(_given(data, "structure_constraints"), "structure_constraints", STRUCTURE_KEYS)
        allowed = ec.get("allowed_elements")
        forbidden = ec.get("forbidden_elements")
        return cls(
            dimensions=dims,
            base_structure=None if base is None else atoms_from_dict(base),
            element_constraints=ElementConstraints(
                allowed=None if allowed is None else tuple(_listed(allowed, "allowed_elements")),
                forbidden=() if forbidden is None else tuple(_listed(forbidden, "forbidden_elements")),
                max_num_elements=ec.get("max_num_elements"),
            ),
            structure_constraints=StructureConstraints(
                min_atoms_per_cell=sc.get("min_atoms_per_cell", 1), max_atoms_per_cell=sc.get("max_atoms_per_cell")
            ),
        )
