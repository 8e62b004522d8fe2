"""Choosing MD cells (no AiiDA): how to repeat a small DFT cell into the large cell an ML potential can afford."""

from __future__ import annotations

import numpy as np


def supercell_repetitions(cell: np.ndarray, n_atoms: int, target_atoms: int) -> list[int]:
    """Repetitions ``[na, nb, nc]`` giving at least ``target_atoms`` atoms in a supercell as close to cubic as possible.

    The direction whose repeated height (distance between opposite faces) is smallest is extended first, so a
    cubic 8-atom Si cell becomes 5x5x5 (1000 atoms) and a long cell is repeated mostly across its short axes.
    """
    if n_atoms < 1 or target_atoms < 1:
        raise ValueError(f"n_atoms and target_atoms must be positive, got {n_atoms} and {target_atoms}")
    cell = np.asarray(cell, float)
    volume = abs(np.linalg.det(cell))
    if volume <= 0:
        raise ValueError("the cell has no volume: MD needs a periodic 3D cell")
    heights = np.array([volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)])
    repetitions = [1, 1, 1]
    while n_atoms * int(np.prod(repetitions)) < target_atoms:
        shortest = int(np.argmin(heights * np.array(repetitions)))
        repetitions[shortest] += 1
    return repetitions
