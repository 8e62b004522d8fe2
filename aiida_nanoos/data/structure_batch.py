"""``nanoos.structure_batch``: many candidate structures in one repository-backed node (for ML screening).

Screening thousands of candidates must not make thousands of nodes: the batch stores the structures as flat numpy
arrays (atomic numbers, positions, cells, pbc, atom counts, labels) in one ``.npz`` file of the repository, which
writes and reads at tens of thousands of structures per second; what one queries on (number of structures and
atoms, elements) is kept as attributes, so a batch can be checked against a model without reading the file.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from aiida import orm


class StructureBatchData(orm.Data):
    """Labelled structures (ASE ``Atoms``: numbers, positions, cell, pbc) stored as arrays in one node.

    Attributes: ``n_structures``, ``n_atoms`` (total), ``elements`` (sorted symbols), ``atomic_numbers`` (sorted).
    """

    FILENAME = "structures.npz"

    def __init__(self, structures: Sequence | None = None, labels: Sequence[str] | None = None, **kwargs):
        if structures is None:  # an empty node, e.g. while loading from the database
            super().__init__(**kwargs)
            return
        structures = list(structures)
        if not structures:
            raise ValueError("empty batch: no structures given")
        if labels is None:
            width = len(str(len(structures) - 1))
            labels = [f"{i:0{width}d}" for i in range(len(structures))]
        labels = [str(label) for label in labels]
        if len(labels) != len(structures):
            raise ValueError(f"{len(labels)} labels for {len(structures)} structures")
        if len(set(labels)) != len(labels):
            raise ValueError("the labels of a batch must be unique")
        n_atoms = np.array([len(atoms) for atoms in structures], np.int64)
        if (n_atoms == 0).any():
            raise ValueError(f"structure '{labels[int(np.argmin(n_atoms))]}' has no atoms")
        super().__init__(**kwargs)
        numbers = np.concatenate([atoms.numbers for atoms in structures]).astype(np.int16)
        arrays = {
            "numbers": numbers,
            "positions": np.concatenate([atoms.positions for atoms in structures]),
            "cells": np.array([np.asarray(atoms.cell) for atoms in structures], float).reshape(-1, 3, 3),
            "pbc": np.array([atoms.pbc for atoms in structures], bool).reshape(-1, 3),
            "n_atoms": n_atoms,
            "labels": np.array(labels, dtype=str),
        }
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        self.base.repository.put_object_from_bytes(buffer.getvalue(), self.FILENAME)
        present = sorted({int(z) for z in np.unique(numbers)})
        from ase.data import chemical_symbols

        self.base.attributes.set_many(
            {
                "n_structures": len(structures),
                "n_atoms": int(n_atoms.sum()),
                "atomic_numbers": present,
                "elements": [chemical_symbols[z] if 0 < z < len(chemical_symbols) else f"Z={z}" for z in present],
            }
        )

    @classmethod
    def from_structure_nodes(cls, structures: Mapping[str, orm.StructureData] | Sequence[orm.StructureData]):
        """A batch of StructureData nodes (labels: the mapping's keys, or the nodes' UUIDs)."""
        if isinstance(structures, Mapping):
            labels, nodes = list(structures), list(structures.values())
        else:
            nodes = list(structures)
            labels = [node.uuid for node in nodes]
        return cls([node.get_ase() for node in nodes], labels)

    @classmethod
    def from_file(cls, path: str | Path, label_key: str | None = None):
        """Every structure ASE reads from ``path`` (extxyz, CIF, POSCAR...); labels from ``atoms.info[label_key]``,
        else ``<file stem>_<index>``."""
        from ase.io import read

        path = Path(path)
        structures = read(path, index=":")
        labels = [
            str(atoms.info.get(label_key, f"{path.stem}_{i}")) if label_key else f"{path.stem}_{i}"
            for i, atoms in enumerate(structures)
        ]
        return cls(structures, labels)

    # ------------------------------------------------------------------------------------------------------------------

    n_structures = property(lambda self: self.base.attributes.get("n_structures"))
    n_atoms = property(lambda self: self.base.attributes.get("n_atoms"))
    elements = property(lambda self: list(self.base.attributes.get("elements", [])))
    atomic_numbers = property(lambda self: list(self.base.attributes.get("atomic_numbers", [])))

    def __len__(self) -> int:
        return int(self.n_structures or 0)

    def _arrays(self) -> dict[str, np.ndarray]:
        content = self.base.repository.get_object_content(self.FILENAME, mode="rb")
        with np.load(io.BytesIO(content), allow_pickle=False) as data:
            return {key: data[key] for key in data.files}

    @property
    def labels(self) -> list[str]:
        return self._arrays()["labels"].tolist()

    def get_atoms(self) -> list:
        """The structures as ASE ``Atoms`` (in the stored order)."""
        from ase import Atoms

        arrays = self._arrays()
        offsets = np.concatenate([[0], np.cumsum(arrays["n_atoms"])])
        numbers, positions = arrays["numbers"].astype(int), arrays["positions"]
        return [
            Atoms(
                numbers=numbers[offsets[i] : offsets[i + 1]],
                positions=positions[offsets[i] : offsets[i + 1]],
                cell=arrays["cells"][i],
                pbc=arrays["pbc"][i],
            )
            for i in range(len(arrays["n_atoms"]))
        ]

    def export(self, path: str | Path) -> Path:
        """Write the structures as one extxyz file (labels in ``info['label']``)."""
        from ase.io import write

        structures = self.get_atoms()
        for atoms, label in zip(structures, self.labels, strict=True):
            atoms.info["label"] = label
        path = Path(path)
        write(path, structures, format="extxyz")
        return path


__all__ = ["StructureBatchData"]
