"""Generated cubic ABX3 perovskites with a physical, site-dependent target, for the crystal-graph tests.

The lattice constant follows the B-X bond (a = 2 (r_B + r_X), covalent radii) and the target is the
Goldschmidt tolerance factor t = (r_A + r_X) / (sqrt(2) (r_B + r_X)): it depends on which cation sits on
which site, so a composition-only baseline cannot learn it but a crystal graph can.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, covalent_radii

A_SITE = ["Li", "Na", "K", "Rb", "Ca", "Sr", "Ba", "La", "Y", "Pb", "Bi", "Ag", "Cd"]
B_SITE = ["Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zr", "Nb", "Mo", "Sn", "Ta", "W", "Al", "Ga"]
ANIONS = ["O", "F", "N", "S"]


def radius(symbol: str) -> float:
    return float(covalent_radii[atomic_numbers[symbol]])


def perovskite(a_site: str, b_site: str, anion: str, strain: float = 1.0) -> Atoms:
    """Cubic ABX3: A at the corner, B at the body centre, X at the face centres."""
    lattice = 2.0 * (radius(b_site) + radius(anion)) * strain
    fractional = [(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.0, 0.5, 0.5)]
    return Atoms([a_site, b_site, anion, anion, anion], scaled_positions=fractional, cell=np.eye(3) * lattice, pbc=True)


def tolerance_factor(a_site: str, b_site: str, anion: str) -> float:
    return (radius(a_site) + radius(anion)) / (np.sqrt(2.0) * (radius(b_site) + radius(anion)))


def perovskite_set(n: int, seed: int = 0) -> tuple[list[Atoms], np.ndarray]:
    """``n`` random perovskites (with repeats) and their tolerance factors."""
    rng = np.random.default_rng(seed)
    structures, targets = [], []
    for _ in range(n):
        a_site, b_site, anion = rng.choice(A_SITE), rng.choice(B_SITE), rng.choice(ANIONS)
        structures.append(perovskite(a_site, b_site, anion))
        targets.append(tolerance_factor(a_site, b_site, anion))
    return structures, np.array(targets)
