"""An analytic model of group-IV alloy properties: a cheap stand-in for DFT when testing campaigns and measuring
the engine's own overhead.

Not a prediction: it has the right shape (Vegard's law with bowing for the gap, a regular-solution mixing enthalpy
with a size-mismatch interaction, a deformation potential and an elastic penalty for strain), so an optimiser
meets the trade-offs a real campaign meets — carbon opens the gap but costs stability, strain moves the gap — in
microseconds instead of minutes. Numbers are in eV, Å and eV/atom.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ase.data import atomic_masses, atomic_numbers

from aiida_nanoos.design.properties import stability_score

#: element -> (band gap in eV, diamond-lattice constant in Å, bulk modulus in GPa); PBE-like gaps.
ELEMENTS: dict[str, tuple[float, float, float]] = {
    "C": (4.10, 3.567, 443.0),
    "Si": (0.61, 5.431, 98.0),
    "Ge": (0.05, 5.658, 75.0),
    "Sn": (0.00, 6.489, 53.0),
}
#: Gap bowing per Å of lattice mismatch (eV/Å) and mixing interaction per Å² of mismatch (eV/Å²).
BOWING_PER_ANGSTROM = 0.6
MIXING_PER_ANGSTROM2 = 0.08
#: d(gap)/d(volumetric strain) in eV: compressing an indirect-gap group-IV crystal closes its gap.
DEFORMATION_POTENTIAL = 1.5
_GPA = 1.0 / 160.21766208  # eV/Å^3


def unsupported_elements(symbols: Sequence[str]) -> list[str]:
    return sorted(set(symbols) - set(ELEMENTS))


def alloy_properties(symbols: Sequence[str], volume: float) -> dict[str, Any]:
    """Band gap, formation energy, stability score, volume per atom and density of a cell with these atoms."""
    bad = unsupported_elements(symbols)
    if bad:
        raise ValueError(f"the analytic alloy model has no parameters for {bad} (known: {sorted(ELEMENTS)})")
    n = len(symbols)
    elements = sorted(set(symbols))
    x = np.array([symbols.count(e) / n for e in elements])
    gap, a, bulk = (np.array([ELEMENTS[e][k] for e in elements]) for k in range(3))
    mismatch = np.abs(a[:, None] - a[None, :])
    pairs = np.triu(np.outer(x, x), k=1)
    v0 = float(x @ (a**3 / 8.0))  # Vegard volume per atom (8 atoms per cubic diamond cell)
    v = float(volume) / n
    strain = v / v0 - 1.0
    band_gap = float(x @ gap - (BOWING_PER_ANGSTROM * mismatch * pairs).sum() + DEFORMATION_POTENTIAL * strain)
    mixing = float((MIXING_PER_ANGSTROM2 * mismatch**2 * pairs).sum())
    elastic = 0.5 * float(x @ bulk) * _GPA * v0 * strain**2
    formation_energy = mixing + elastic
    mass = float(sum(atomic_masses[atomic_numbers[s]] for s in symbols))
    return {
        "bandgap": max(band_gap, 0.0),
        "metallic": band_gap <= 0.0,
        "formation_energy": formation_energy,
        "stability_score": stability_score(formation_energy),
        "volume_per_atom": v,
        "volumetric_strain": strain,
        "density": mass / float(volume) * 1.66053906660,  # amu/Å^3 -> g/cm^3
    }


__all__ = ["ELEMENTS", "alloy_properties", "unsupported_elements"]
