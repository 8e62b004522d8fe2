"""The dimensions of a design space: continuous, integer, categorical, composition, substitution, strain.

Each dimension validates its own spec (errors name the field), encodes a value into the unit box for the GP
(``width`` coordinates), decodes it back, samples it and writes itself as plain JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase.data import chemical_symbols

ELEMENTS = frozenset(chemical_symbols[1:])


def check_element(symbol: Any, where: str) -> str:
    if not isinstance(symbol, str) or symbol not in ELEMENTS:
        raise ValueError(f"{where}: unknown element {symbol!r}")
    return symbol


def check_range(low: Any, high: Any, where: str, *, strict: bool = True) -> tuple[float, float]:
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
        low, high = check_range(self.low, self.high, f"dimension {self.name!r}")
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
        check_range(self.low, self.high, f"dimension {self.name!r}", strict=False)
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
        check_element(self.host, f"{where} host")
        dopants = (self.dopants,) if isinstance(self.dopants, str) else tuple(self.dopants)
        if not dopants:
            raise ValueError(f"{where}: dopants must not be empty")
        for d in dopants:
            check_element(d, f"{where} dopants")
            if d == self.host:
                raise ValueError(f"{where}: dopant {d!r} is the host element")
        if len(set(dopants)) != len(dopants):
            raise ValueError(f"{where}: dopants must be unique, got {list(dopants)}")
        lo, hi = check_range(*self.fraction, f"{where} fraction", strict=False)
        if lo < 0 or hi > 1:
            raise ValueError(f"{where} fraction: must lie in [0, 1], got [{lo}, {hi}]")
        object.__setattr__(self, "dopants", dopants)
        object.__setattr__(self, "fraction", (lo, hi))

    @property
    def width(self) -> int:
        return len(self.dopants) + 1

    def quantise(self, f: float) -> float:
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
        return {"element": self.dopants[int(np.argmax(u[:-1]))], "fraction": self.quantise(f)}

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
        if not isinstance(self.isotropic, bool):
            raise ValueError(f"{where} isotropic: must be true or false, got {self.isotropic!r}")
        allowed = ("iso",) if self.isotropic else ("a", "b", "c")
        ranges = dict(self.ranges)
        if not ranges:
            raise ValueError(f"{where}: ranges must not be empty")
        for axis, rng in ranges.items():
            if axis not in allowed:
                raise ValueError(f"{where}: unknown axis {axis!r} (allowed: {list(allowed)})")
            lo, hi = check_range(*rng, f"{where} range {axis!r}")
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
DIMENSION_TYPES = {
    "continuous": Continuous,
    "integer": Integer,
    "categorical": Categorical,
    "composition": Composition,
    "substitution": Substitution,
    "strain": Strain,
}
