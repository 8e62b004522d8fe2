"""Constraints on candidates: which elements they may contain and how many atoms a cell may hold."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiida_nanoos.design.dimensions import check_element

#: Keys of ``search_space.element_constraints`` and ``search_space.structure_constraints``.
ELEMENT_KEYS = ("allowed_elements", "forbidden_elements", "max_num_elements")
STRUCTURE_KEYS = ("min_atoms_per_cell", "max_atoms_per_cell")


def _is_count(value: Any, low: int) -> bool:
    """``value`` is a whole number >= ``low`` (not a bool, not NaN or infinite)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return (isinstance(value, int) or value.is_integer()) and value >= low


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
            object.__setattr__(self, "allowed", tuple(check_element(e, "allowed_elements") for e in self.allowed))
        object.__setattr__(self, "forbidden", tuple(check_element(e, "forbidden_elements") for e in self.forbidden))
        both = set(self.allowed or ()) & set(self.forbidden)
        if both:
            raise ValueError(f"forbidden_elements: {sorted(both)} also listed in allowed_elements")
        if self.max_num_elements is not None and not _is_count(self.max_num_elements, 1):
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
        if not _is_count(self.min_atoms_per_cell, 1):
            raise ValueError(f"min_atoms_per_cell: must be a positive integer, got {self.min_atoms_per_cell!r}")
        if self.max_atoms_per_cell is not None and not _is_count(self.max_atoms_per_cell, self.min_atoms_per_cell):
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
