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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

_ELEMENTS = frozenset(chemical_symbols[1:])


def _check_element(symbol: Any, where: str) -> str:
    if not isinstance(symbol, str) or symbol not in _ELEMENTS:
        raise ValueError(f"{where}: unknown element {symbol!r}")
    return symbol


def _check_range(low: Any, high: Any, where: str, *, strict: bool = True) -> tuple[float, float]:
    try:
        low, high = float(low), float(high)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: range bounds must be numbers, got {low!r}, {high!r}") from exc
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{where}: range bounds must be finite, got [{low}, {high}]")
    if high < low or (strict and high == low):
        raise ValueError(f"{where}: empty or inverted range [{low}, {high}] (need low < high)")
    return low, high


# ---------------------------------------------------------------------------------------------- dimensions
@dataclass(frozen=True)
class Continuous:
    """A real parameter in [low, high], optionally searched on a log scale (e.g. a concentration)."""

    name: str
    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        low, high = _check_range(self.low, self.high, f"dimension {self.name!r}")
        if self.log and low <= 0:
            raise ValueError(f"dimension {self.name!r}: a log-scale range needs low > 0, got {low}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @property
    def width(self) -> int:
        return 1

    def _fwd(self, v: np.ndarray) -> np.ndarray:
        return np.log(v) if self.log else v

    def encode(self, value: Any) -> list[float]:
        lo, hi = self._fwd(np.array([self.low, self.high]))
        return [float((self._fwd(np.asarray(float(value))) - lo) / (hi - lo))]

    def decode(self, u: np.ndarray) -> float:
        lo, hi = self._fwd(np.array([self.low, self.high]))
        x = lo + float(np.clip(u[0], 0.0, 1.0)) * (hi - lo)
        return float(np.clip(np.exp(x) if self.log else x, self.low, self.high))

    def sample(self, rng: np.random.Generator) -> float:
        return self.decode(rng.random(1))

    def validate_value(self, value: Any) -> None:
        if not self.low <= float(value) <= self.high:
            raise ValueError(f"dimension {self.name!r}: value {value} outside [{self.low}, {self.high}]")

    def to_dict(self) -> dict[str, Any]:
        return {"type": "continuous", "name": self.name, "low": self.low, "high": self.high, "log": self.log}


@dataclass(frozen=True)
class Integer:
    """An integer parameter in [low, high] (e.g. number of layers, supercell repetitions)."""

    name: str
    low: int
    high: int

    def __post_init__(self) -> None:
        for key in ("low", "high"):
            value = getattr(self, key)
            if isinstance(value, bool) or not float(value).is_integer():
                raise ValueError(f"dimension {self.name!r}: {key} must be an integer, got {value!r}")
        _check_range(self.low, self.high, f"dimension {self.name!r}", strict=False)
        object.__setattr__(self, "low", int(self.low))
        object.__setattr__(self, "high", int(self.high))

    @property
    def width(self) -> int:
        return 1

    def encode(self, value: Any) -> list[float]:
        span = self.high - self.low
        return [0.5 if span == 0 else (int(value) - self.low) / span]

    def decode(self, u: np.ndarray) -> int:
        return int(self.low + round(float(np.clip(u[0], 0.0, 1.0)) * (self.high - self.low)))

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high + 1))

    def validate_value(self, value: Any) -> None:
        if int(value) != value or not self.low <= int(value) <= self.high:
            raise ValueError(f"dimension {self.name!r}: value {value} not an integer in [{self.low}, {self.high}]")

    def to_dict(self) -> dict[str, Any]:
        return {"type": "integer", "name": self.name, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Categorical:
    """One of a fixed set of choices (e.g. a substrate, a functional, a prototype); one-hot encoded."""

    name: str
    choices: tuple[Any, ...]

    def __post_init__(self) -> None:
        choices = tuple(self.choices) if not isinstance(self.choices, str) else (self.choices,)
        if not choices:
            raise ValueError(f"dimension {self.name!r}: choices must not be empty")
        if len(set(map(repr, choices))) != len(choices):
            raise ValueError(f"dimension {self.name!r}: choices must be unique, got {list(choices)}")
        object.__setattr__(self, "choices", choices)

    @property
    def width(self) -> int:
        return len(self.choices)

    def encode(self, value: Any) -> list[float]:
        if value not in self.choices:
            raise ValueError(f"dimension {self.name!r}: {value!r} is not one of {list(self.choices)}")
        return [1.0 if c == value else 0.0 for c in self.choices]

    def decode(self, u: np.ndarray) -> Any:
        return self.choices[int(np.argmax(u))]

    def sample(self, rng: np.random.Generator) -> Any:
        return self.choices[int(rng.integers(len(self.choices)))]

    def validate_value(self, value: Any) -> None:
        self.encode(value)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "categorical", "name": self.name, "choices": list(self.choices)}


def project_to_bounded_simplex(v: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``v`` onto {x : sum(x) = 1, low <= x <= high} (bisection on the shift)."""
    v = np.asarray(v, dtype=float)
    a, b = float(np.min(v - high)) - 1.0, float(np.max(v - low)) + 1.0
    for _ in range(100):
        tau = 0.5 * (a + b)
        if np.clip(v - tau, low, high).sum() > 1.0:
            a = tau
        else:
            b = tau
    x = np.clip(v - 0.5 * (a + b), low, high)
    return x


@dataclass(frozen=True)
class Composition:
    """Fractions of several components that sum to 1 (an alloy, a blend, a precursor mix), each within bounds."""

    name: str
    components: tuple[str, ...]
    min_fractions: tuple[float, ...] | None = None
    max_fractions: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        comps = tuple(self.components)
        where = f"composition {self.name!r}"
        if len(comps) < 2:
            raise ValueError(f"{where}: components needs at least two entries, got {list(comps)}")
        if len(set(comps)) != len(comps):
            raise ValueError(f"{where}: components must be unique, got {list(comps)}")
        k = len(comps)
        lo = np.zeros(k) if self.min_fractions is None else np.asarray(self.min_fractions, dtype=float)
        hi = np.ones(k) if self.max_fractions is None else np.asarray(self.max_fractions, dtype=float)
        for key, arr in (("min_fractions", lo), ("max_fractions", hi)):
            if arr.shape != (k,):
                raise ValueError(f"{where}: {key} needs {k} values, got {arr.tolist()}")
            if np.any(arr < 0) or np.any(arr > 1) or not np.all(np.isfinite(arr)):
                raise ValueError(f"{where}: {key} must lie in [0, 1], got {arr.tolist()}")
        if np.any(lo > hi):
            bad = [c for c, a, b in zip(comps, lo, hi, strict=True) if a > b]
            raise ValueError(f"{where}: min_fractions > max_fractions for {bad}")
        if lo.sum() > 1.0 + 1e-12 or hi.sum() < 1.0 - 1e-12:
            raise ValueError(
                f"{where}: fractions cannot sum to 1 (sum of min_fractions {lo.sum():g}, of max_fractions {hi.sum():g})"
            )
        object.__setattr__(self, "components", comps)
        object.__setattr__(self, "min_fractions", tuple(map(float, lo)))
        object.__setattr__(self, "max_fractions", tuple(map(float, hi)))

    @property
    def width(self) -> int:
        return len(self.components)

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.min_fractions), np.asarray(self.max_fractions)

    def encode(self, value: Mapping[str, float]) -> list[float]:
        unknown = set(value) - set(self.components)
        if unknown:
            raise ValueError(f"composition {self.name!r}: unknown components {sorted(unknown)}")
        return [float(value.get(c, 0.0)) for c in self.components]

    def decode(self, u: np.ndarray) -> dict[str, float]:
        x = project_to_bounded_simplex(np.asarray(u, dtype=float), *self._bounds())
        return {c: float(f) for c, f in zip(self.components, x, strict=True)}

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        lo, hi = self._bounds()
        for _ in range(1000):  # uniform on the simplex, rejection for the bounds
            x = rng.dirichlet(np.ones(self.width))
            if np.all(x >= lo) and np.all(x <= hi):
                return {c: float(f) for c, f in zip(self.components, x, strict=True)}
        return self.decode(rng.dirichlet(np.ones(self.width)))

    def validate_value(self, value: Mapping[str, float]) -> None:
        x = np.asarray(self.encode(value))
        lo, hi = self._bounds()
        if abs(x.sum() - 1.0) > 1e-6 or np.any(x < lo - 1e-9) or np.any(x > hi + 1e-9):
            raise ValueError(f"composition {self.name!r}: {dict(value)} does not sum to 1 within the bounds")

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "composition",
            "name": self.name,
            "components": list(self.components),
            "min_fractions": list(self.min_fractions),
            "max_fractions": list(self.max_fractions),
        }


@dataclass(frozen=True)
class Substitution:
    """Replace a fraction of the ``host`` sites of the base cell by one of the ``dopants`` (e.g. Mo -> W, Nb).

    The value is ``{"element": dopant, "fraction": x}``; the fraction is rounded to a whole number of host sites
    when the structure is built (``n_sites`` of them).
    """

    name: str
    host: str
    dopants: tuple[str, ...]
    fraction: tuple[float, float] = (0.0, 1.0)
    n_sites: int = 0  # set by ParameterSpace from the base structure

    def __post_init__(self) -> None:
        where = f"substitution {self.name!r}"
        _check_element(self.host, f"{where} host")
        dopants = (self.dopants,) if isinstance(self.dopants, str) else tuple(self.dopants)
        if not dopants:
            raise ValueError(f"{where}: dopants must not be empty")
        for d in dopants:
            _check_element(d, f"{where} dopants")
            if d == self.host:
                raise ValueError(f"{where}: dopant {d!r} is the host element")
        if len(set(dopants)) != len(dopants):
            raise ValueError(f"{where}: dopants must be unique, got {list(dopants)}")
        lo, hi = _check_range(*self.fraction, f"{where} fraction", strict=False)
        if lo < 0 or hi > 1:
            raise ValueError(f"{where} fraction: must lie in [0, 1], got [{lo}, {hi}]")
        object.__setattr__(self, "dopants", dopants)
        object.__setattr__(self, "fraction", (lo, hi))

    @property
    def width(self) -> int:
        return len(self.dopants) + 1

    def _quantise(self, f: float) -> float:
        if self.n_sites <= 0:
            return f
        lo, hi = self.fraction
        k = round(f * self.n_sites)
        k = min(max(k, math.ceil(lo * self.n_sites - 1e-9)), math.floor(hi * self.n_sites + 1e-9))
        return k / self.n_sites

    def encode(self, value: Mapping[str, Any]) -> list[float]:
        element = value["element"]
        if element not in self.dopants:
            raise ValueError(f"substitution {self.name!r}: {element!r} is not one of the dopants {list(self.dopants)}")
        lo, hi = self.fraction
        u = 0.5 if hi == lo else (float(value["fraction"]) - lo) / (hi - lo)
        return [1.0 if d == element else 0.0 for d in self.dopants] + [u]

    def decode(self, u: np.ndarray) -> dict[str, Any]:
        lo, hi = self.fraction
        f = lo + float(np.clip(u[-1], 0.0, 1.0)) * (hi - lo)
        return {"element": self.dopants[int(np.argmax(u[:-1]))], "fraction": self._quantise(f)}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        u = np.zeros(self.width)
        u[int(rng.integers(len(self.dopants)))] = 1.0
        u[-1] = rng.random()
        return self.decode(u)

    def validate_value(self, value: Mapping[str, Any]) -> None:
        self.encode(value)
        lo, hi = self.fraction
        if not lo - 1e-9 <= float(value["fraction"]) <= hi + 1e-9:
            raise ValueError(f"substitution {self.name!r}: fraction {value['fraction']} outside [{lo}, {hi}]")

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "substitution",
            "name": self.name,
            "host": self.host,
            "dopants": list(self.dopants),
            "fraction": list(self.fraction),
        }


@dataclass(frozen=True)
class Strain:
    """Engineering strain of the lattice vectors: ``{"a": e_a, "b": e_b, "c": e_c}`` each within its range.

    ``isotropic=True`` uses one strain for all three vectors (value ``{"iso": e}``).
    """

    name: str
    ranges: Mapping[str, tuple[float, float]]
    isotropic: bool = False

    def __post_init__(self) -> None:
        where = f"strain {self.name!r}"
        allowed = ("iso",) if self.isotropic else ("a", "b", "c")
        ranges = dict(self.ranges)
        if not ranges:
            raise ValueError(f"{where}: ranges must not be empty")
        for axis, rng in ranges.items():
            if axis not in allowed:
                raise ValueError(f"{where}: unknown axis {axis!r} (allowed: {list(allowed)})")
            lo, hi = _check_range(*rng, f"{where} range {axis!r}")
            if lo <= -1.0:
                raise ValueError(f"{where} range {axis!r}: strain must be > -1, got {lo}")
            ranges[axis] = (lo, hi)
        object.__setattr__(self, "ranges", dict(sorted(ranges.items())))

    @property
    def width(self) -> int:
        return len(self.ranges)

    def encode(self, value: Mapping[str, float]) -> list[float]:
        return [(float(value[ax]) - lo) / (hi - lo) for ax, (lo, hi) in self.ranges.items()]

    def decode(self, u: np.ndarray) -> dict[str, float]:
        return {
            ax: float(lo + np.clip(ui, 0.0, 1.0) * (hi - lo))
            for ui, (ax, (lo, hi)) in zip(u, self.ranges.items(), strict=True)
        }

    def sample(self, rng: np.random.Generator) -> dict[str, float]:
        return self.decode(rng.random(self.width))

    def validate_value(self, value: Mapping[str, float]) -> None:
        for ax, (lo, hi) in self.ranges.items():
            if not lo <= float(value[ax]) <= hi:
                raise ValueError(f"strain {self.name!r}: {ax} = {value[ax]} outside [{lo}, {hi}]")

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": "strain",
            "name": self.name,
            "ranges": {k: list(v) for k, v in self.ranges.items()},
            "isotropic": self.isotropic,
        }


Dimension = Continuous | Integer | Categorical | Composition | Substitution | Strain
_TYPES = {
    "continuous": Continuous,
    "integer": Integer,
    "categorical": Categorical,
    "composition": Composition,
    "substitution": Substitution,
    "strain": Strain,
}


# ---------------------------------------------------------------------------------------------- constraints
@dataclass(frozen=True)
class ElementConstraints:
    """Which elements a candidate may contain (e.g. no toxic Cd, Hg, Pb) and how many distinct ones."""

    allowed: tuple[str, ...] | None = None
    forbidden: tuple[str, ...] = ()
    max_num_elements: int | None = None

    def __post_init__(self) -> None:
        if self.allowed is not None:
            if not self.allowed:
                raise ValueError("allowed_elements: must not be empty (omit it to allow every element)")
            object.__setattr__(self, "allowed", tuple(_check_element(e, "allowed_elements") for e in self.allowed))
        object.__setattr__(self, "forbidden", tuple(_check_element(e, "forbidden_elements") for e in self.forbidden))
        both = set(self.allowed or ()) & set(self.forbidden)
        if both:
            raise ValueError(f"forbidden_elements: {sorted(both)} also listed in allowed_elements")
        if self.max_num_elements is not None and (
            isinstance(self.max_num_elements, bool)
            or int(self.max_num_elements) != self.max_num_elements
            or self.max_num_elements < 1
        ):
            raise ValueError(f"max_num_elements: must be a positive integer, got {self.max_num_elements!r}")

    def violations(self, symbols: Iterable[str]) -> list[str]:
        present = sorted(set(symbols))
        out = []
        if self.allowed is not None:
            extra = [e for e in present if e not in self.allowed]
            if extra:
                out.append(f"elements {extra} not in allowed_elements")
        bad = [e for e in present if e in self.forbidden]
        if bad:
            out.append(f"forbidden elements {bad}")
        if self.max_num_elements is not None and len(present) > self.max_num_elements:
            out.append(f"{len(present)} elements > max_num_elements {self.max_num_elements}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "allowed_elements": None if self.allowed is None else list(self.allowed),
            "forbidden_elements": list(self.forbidden),
            "max_num_elements": self.max_num_elements,
        }


@dataclass(frozen=True)
class StructureConstraints:
    """Size limits that keep a candidate computable (atoms per cell)."""

    min_atoms_per_cell: int = 1
    max_atoms_per_cell: int | None = None

    def __post_init__(self) -> None:
        if int(self.min_atoms_per_cell) != self.min_atoms_per_cell or self.min_atoms_per_cell < 1:
            raise ValueError(f"min_atoms_per_cell: must be a positive integer, got {self.min_atoms_per_cell!r}")
        if self.max_atoms_per_cell is not None and (
            int(self.max_atoms_per_cell) != self.max_atoms_per_cell or self.max_atoms_per_cell < self.min_atoms_per_cell
        ):
            raise ValueError(
                f"max_atoms_per_cell: must be an integer >= min_atoms_per_cell ({self.min_atoms_per_cell}), "
                f"got {self.max_atoms_per_cell!r}"
            )

    def violations(self, n_atoms: int) -> list[str]:
        out = []
        if n_atoms < self.min_atoms_per_cell:
            out.append(f"{n_atoms} atoms < min_atoms_per_cell {self.min_atoms_per_cell}")
        if self.max_atoms_per_cell is not None and n_atoms > self.max_atoms_per_cell:
            out.append(f"{n_atoms} atoms > max_atoms_per_cell {self.max_atoms_per_cell}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"min_atoms_per_cell": self.min_atoms_per_cell, "max_atoms_per_cell": self.max_atoms_per_cell}


# ---------------------------------------------------------------------------------------------- the space
def atoms_to_dict(atoms: Atoms) -> dict[str, Any]:
    """Plain-JSON form of a cell (symbols, Cartesian positions in Å, cell in Å, periodicity)."""
    return {
        "symbols": atoms.get_chemical_symbols(),
        "positions": atoms.get_positions().tolist(),
        "cell": np.asarray(atoms.get_cell()).tolist(),
        "pbc": [bool(p) for p in atoms.get_pbc()],
    }


def atoms_from_dict(data: Mapping[str, Any]) -> Atoms:
    symbols = list(data["symbols"])
    for s in symbols:
        _check_element(s, "base_structure symbols")
    return Atoms(symbols=symbols, positions=data["positions"], cell=data["cell"], pbc=data.get("pbc", True))


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
            if not isinstance(n, str) or not n:
                raise ValueError(f"dimensions: every dimension needs a non-empty name, got {n!r}")
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
            _check_element(s, "base_structure symbols")
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
                k = round(d._quantise(float(value["fraction"])) * len(sites))
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
        for i, spec in enumerate(data.get("dimensions", [])):
            spec = dict(spec)
            kind = spec.pop("type", None)
            if kind not in _TYPES:
                raise ValueError(f"dimensions[{i}].type: unknown dimension type {kind!r} (one of {sorted(_TYPES)})")
            if kind == "categorical":
                spec["choices"] = tuple(spec.get("choices", ()))
            if kind == "composition":
                for key in ("components", "min_fractions", "max_fractions"):
                    if spec.get(key) is not None:
                        spec[key] = tuple(spec[key])
            if kind == "substitution":
                spec["dopants"] = tuple(spec.get("dopants", ()))
                spec["fraction"] = tuple(spec.get("fraction", (0.0, 1.0)))
            if kind == "strain":
                spec["ranges"] = {k: tuple(v) for k, v in spec.get("ranges", {}).items()}
            try:
                dims.append(_TYPES[kind](**spec))
            except TypeError as exc:
                raise ValueError(f"dimensions[{i}] ({kind}): {exc}") from exc
        base = data.get("base_structure")
        ec = dict(data.get("element_constraints") or {})
        sc = dict(data.get("structure_constraints") or {})
        allowed = ec.get("allowed_elements")
        return cls(
            dimensions=dims,
            base_structure=None if base is None else atoms_from_dict(base),
            element_constraints=ElementConstraints(
                allowed=None if allowed is None else tuple(allowed),
                forbidden=tuple(ec.get("forbidden_elements") or ()),
                max_num_elements=ec.get("max_num_elements"),
            ),
            structure_constraints=StructureConstraints(
                min_atoms_per_cell=sc.get("min_atoms_per_cell", 1), max_atoms_per_cell=sc.get("max_atoms_per_cell")
            ),
        )
