"""Is a candidate cell physical enough to be worth a DFT run? Checked before anything is submitted.

Two atoms closer than :data:`MIN_INTERATOMIC_DISTANCE` (periodic images included) make pw.x fail after minutes of
work, or, worse, converge to nonsense: the pseudopotential cores overlap. The shortest bond in nature (H2) is
0.74 Å, so 0.5 Å refuses only cells no proposer should have made (an external agent's typo, a strain at the edge
of its range, a genetic mutation gone wrong).
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

#: Two atoms closer than this (Å) are overlapping: the candidate is refused before any evaluation.
MIN_INTERATOMIC_DISTANCE = 0.5


def shortest_distance(atoms: Atoms, cutoff: float) -> tuple[float, int, int] | None:
    """The shortest interatomic distance below ``cutoff`` (Å) and its pair ``(i, j)``, ``i <= j``, periodic images
    included (``i == j`` when an atom nearly touches its own image); None when no pair is that close."""
    first, second, distance = neighbor_list("ijd", atoms, cutoff, self_interaction=False)
    if len(distance) == 0:
        return None
    k = int(np.argmin(distance))
    i, j = sorted((int(first[k]), int(second[k])))
    return float(distance[k]), i, j


def overlapping_atoms(atoms: Atoms, min_distance: float = MIN_INTERATOMIC_DISTANCE) -> str | None:
    """Why the cell has overlapping atoms (``overlapping atoms: 0.31 Å between 0 (Si) and 3 (Ge), minimum 0.5 Å``),
    or None when every pair is at least ``min_distance`` apart."""
    closest = shortest_distance(atoms, min_distance)
    if closest is None:
        return None
    distance, i, j = closest
    symbols = atoms.get_chemical_symbols()
    pair = f"{i} ({symbols[i]}) and its periodic image" if i == j else f"{i} ({symbols[i]}) and {j} ({symbols[j]})"
    return f"overlapping atoms: {distance:.2f} Å between {pair}, minimum {min_distance} Å"
