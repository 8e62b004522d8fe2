"""``nanoos.training_set``: labelled configurations for fitting a potential, in one repository-backed node."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from aiida import orm
from ase import Atoms

from aiida_nanoos.potentials import frames as frame_io

#: Formats ``export`` writes; each maps to a writer in :mod:`aiida_nanoos.potentials.frames`.
EXPORT_FORMATS = ("extxyz", "json", "lammps-data")


class TrainingSetData(orm.Data):
    """Frames (species, positions, cell, pbc, energy, forces, stress, per-frame metadata) stored as extxyz.

    Thousands of frames stay one node: the frames live in the repository as one extxyz file (ASE units: eV, eV/Å,
    eV/Å³), and the statistics a user filters on (number of frames and atoms, elements, energy range, largest force)
    are attributes, so they can be queried with the QueryBuilder without reading the file. Which calculations
    labelled the frames is in the provenance graph (and each frame's ``source_uuid``).
    """

    FILENAME = "frames.extxyz"

    def __init__(self, frames: Sequence[Atoms] | None = None, **kwargs):
        super().__init__(**kwargs)
        if frames is not None:
            self.set_frames(frames)

    @classmethod
    def from_file(cls, path: str | Path, stress_unit: str = "auto") -> TrainingSetData:
        """Read an extxyz file, a folder of them, a FitSNAP JSON folder or an mlearn JSON file (see
        :func:`frames.read_frames`)."""
        frames = frame_io.read_frames(path, stress_unit=stress_unit)
        if not frames:
            raise ValueError(f"{path}: no frames found")
        return cls(frames)

    def set_frames(self, frames: Sequence[Atoms]) -> None:
        """Store the frames (replaces any stored before; only on an unstored node)."""
        frames = list(frames)
        for index, atoms in enumerate(frames):
            if frame_io.frame_labels(atoms)["energy"] is None:
                raise ValueError(f"frame {index} has no energy: a training set holds labelled frames only")
        buffer = io.StringIO()
        import ase.io

        ase.io.write(buffer, frames, format="extxyz")
        self.base.repository.put_object_from_bytes(buffer.getvalue().encode(), self.FILENAME)
        for key, value in frame_io.frame_statistics(frames).items():
            self.base.attributes.set(key, value)

    def get_frames(self) -> list[Atoms]:
        """Return the frames as ASE ``Atoms`` with a single-point calculator holding the labels."""
        import ase.io

        with self.base.repository.open(self.FILENAME) as handle:
            return ase.io.read(handle, index=":", format="extxyz")

    @property
    def num_frames(self) -> int:
        return self.base.attributes.get("num_frames")

    @property
    def num_atoms(self) -> int:
        return self.base.attributes.get("num_atoms")

    @property
    def elements(self) -> list[str]:
        return self.base.attributes.get("elements")

    @property
    def statistics(self) -> dict:
        """All summary attributes (number of frames/atoms, elements, energy range, max force, groups)."""
        return dict(self.base.attributes.all)

    def export(self, path: str | Path, fmt: str = "extxyz") -> list[Path]:
        """Write the frames as ``extxyz`` (one file), ``json`` (FitSNAP folder) or ``lammps-data``; returns paths."""
        if fmt not in EXPORT_FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {EXPORT_FORMATS}")
        frames = self.get_frames()
        path = Path(path)
        if fmt == "extxyz":
            frame_io.write_extxyz(frames, path)
            return [path]
        if fmt == "json":
            return frame_io.write_fitsnap_json(frames, path)
        return frame_io.write_lammps_data(frames, path)
