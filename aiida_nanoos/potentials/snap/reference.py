"""Reference potentials (e.g. ZBL) that a SNAP fit is made on top of: subtracted before the fit, overlaid in MD."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ase.data import atomic_numbers


@dataclass(frozen=True)
class ReferencePotential:
    """A physical baseline (e.g. ZBL for short-range repulsion) subtracted before the fit and added back in MD.

    ``pair_style`` holds the sub-style(s) with their arguments as they appear inside ``hybrid/overlay`` (e.g.
    ``"zbl 4.0 4.8"``), ``pair_coeff`` the coefficient lines including the sub-style name (``"* * zbl 73 73"``),
    written for atom types numbered in ``elements`` order. ZBL references are regenerated for any type order.
    """

    pair_style: str
    pair_coeff: tuple[str, ...]
    elements: tuple[str, ...] = ()
    zbl_cutoffs: tuple[float, float] | None = None

    @classmethod
    def zbl(cls, elements: Sequence[str], inner: float = 4.0, outer: float = 4.8) -> ReferencePotential:
        """ZBL screened nuclear repulsion, switched off between ``inner`` and ``outer`` (Å)."""
        elements = tuple(elements)
        return cls(
            pair_style=f"zbl {inner:g} {outer:g}",
            pair_coeff=tuple(_zbl_coeff_lines(elements)),
            elements=elements,
            zbl_cutoffs=(float(inner), float(outer)),
        )

    @classmethod
    def from_lammps(cls, pair_style: str, pair_coeff: Sequence[str], elements: Sequence[str]) -> ReferencePotential:
        """Read a FitSNAP-style reference (``hybrid/overlay zero 10.0 zbl 4.0 4.8`` + coeff lines), minus ``zero``."""
        words = pair_style.split()
        if words and words[0] == "pair_style":
            words = words[1:]
        coeffs = [line.split(None, 1)[1] if line.split()[0] == "pair_coeff" else line for line in pair_coeff]
        if words and words[0].startswith("hybrid"):
            words = words[1:]
            kept, index = [], 0
            while index < len(words):
                if words[index] == "zero":
                    index += 1
                    while index < len(words) and (_is_number(words[index]) or words[index] in {"nocoeff", "full"}):
                        index += 1
                    continue
                kept.append(words[index])
                index += 1
            coeffs = [line for line in coeffs if line.split()[2] != "zero"]
            words = kept
        else:  # a single style: its coefficient lines lack the sub-style name that hybrid/overlay needs
            if words and words[0] == "zero":
                words = []
            coeffs = [" ".join(line.split()[:2] + [words[0]] + line.split()[2:]) for line in coeffs] if words else []
        if not words:
            raise ValueError(f"no reference interaction left in {pair_style!r}")
        zbl = None
        if words[0] == "zbl" and len(words) == 3 and all(line.split()[2] == "zbl" for line in coeffs):
            zbl = (float(words[1]), float(words[2]))
        return cls(pair_style=" ".join(words), pair_coeff=tuple(coeffs), elements=tuple(elements), zbl_cutoffs=zbl)

    def pair_coeff_for(self, type_elements: Sequence[str]) -> list[str]:
        """Coefficient lines for LAMMPS types numbered in ``type_elements`` order."""
        type_elements = tuple(type_elements)
        if self.zbl_cutoffs is not None:
            return _zbl_coeff_lines(type_elements)
        if self.elements and type_elements != self.elements:
            raise ValueError(f"reference written for types {self.elements}, asked for {type_elements}")
        return list(self.pair_coeff)

    def to_dict(self) -> dict:
        return {
            "pair_style": self.pair_style,
            "pair_coeff": list(self.pair_coeff),
            "elements": list(self.elements),
            "zbl_cutoffs": None if self.zbl_cutoffs is None else list(self.zbl_cutoffs),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ReferencePotential:
        zbl = data.get("zbl_cutoffs")
        return cls(
            pair_style=data["pair_style"],
            pair_coeff=tuple(data["pair_coeff"]),
            elements=tuple(data.get("elements", ())),
            zbl_cutoffs=None if zbl is None else tuple(zbl),
        )


def _zbl_coeff_lines(elements: Sequence[str]) -> list[str]:
    numbers = [atomic_numbers[e] for e in elements]
    return [
        f"{i + 1} {j + 1} zbl {numbers[i]} {numbers[j]}" for i in range(len(numbers)) for j in range(i, len(numbers))
    ]


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True
