"""Tables of structures with a property (a CIF column and a target column in a CSV), read into ASE atoms."""

from __future__ import annotations

import csv
import io
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

from aiida_nanoos.models.graph import MAX_ATOMIC_NUMBER


@dataclass
class StructureTable:
    """Structures, their target values and an identifier per row."""

    structures: list[Atoms]
    targets: np.ndarray
    identifiers: list[str]
    target: str

    def __len__(self) -> int:
        return len(self.structures)

    def supported_only(self) -> tuple[StructureTable, list[str]]:
        """The rows whose elements all have features (H..Pu), and the identifiers of the rows dropped."""
        keep, dropped = [], []
        for i, atoms in enumerate(self.structures):
            (keep if atoms.numbers.max() <= MAX_ATOMIC_NUMBER and atoms.numbers.min() >= 1 else dropped).append(i)
        return self.subset(keep), [self.identifiers[i] for i in dropped]

    def subset(self, indices: Sequence[int]) -> StructureTable:
        indices = list(map(int, indices))
        return StructureTable(
            [self.structures[i] for i in indices],
            self.targets[indices],
            [self.identifiers[i] for i in indices],
            self.target,
        )


def read_structure_csv(
    path: str | Path, target: str, cif_column: str = "cif", id_column: str | None = None
) -> StructureTable:
    """Read every row with a finite target; the CIF text is parsed by ASE (one structure per row).

    Rows whose target is empty or not a number are skipped (a property table often has gaps); missing
    columns and unreadable CIFs raise a ``ValueError`` naming the row.
    """
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        for column in (cif_column, target):
            if column not in columns:
                raise ValueError(f"{path}: no column '{column}' (columns: {', '.join(c for c in columns if c)})")
        if id_column is None:
            id_column = next((c for c in ("material_id", "id", "") if c in columns), None)
        structures, targets, identifiers = [], [], []
        for row_number, row in enumerate(reader):
            try:
                value = float(row[target])
            except (TypeError, ValueError):
                continue
            if not math.isfinite(value):
                continue
            try:
                atoms = read(io.StringIO(row[cif_column]), format="cif")
            except Exception as error:  # ASE raises many kinds of errors on bad CIF text
                raise ValueError(f"{path}: row {row_number} has an unreadable CIF ({error})") from error
            structures.append(atoms)
            targets.append(value)
            identifiers.append(str(row[id_column]) if id_column is not None else str(row_number))
    if not structures:
        raise ValueError(f"{path}: no rows with a numeric '{target}'")
    return StructureTable(structures, np.asarray(targets, float), identifiers, target)


def split_indices(n: int, test_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, test) index split: the same ``n``, fraction and seed give the same split."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError("test_fraction must lie strictly between 0 and 1")
    permutation = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    return np.sort(permutation[n_test:]), np.sort(permutation[:n_test])
