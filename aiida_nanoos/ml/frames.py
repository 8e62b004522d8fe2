"""Labelled atomic configurations ("frames") as ASE ``Atoms``: reading and writing, no AiiDA.

A frame is an :class:`ase.Atoms` whose calculator (a ``SinglePointCalculator``) holds the DFT labels in ASE
units and sign conventions: total ``energy`` in eV, ``forces`` in eV/Å, ``stress`` in eV/Å³ with ASE's sign
(negative under compression). Per-frame metadata lives in ``atoms.info``:

* ``config_type``: the group a frame belongs to (FitSNAP group, MACE/GAP ``config_type``), used for weights;
* ``config_weight``: an optional per-frame weight;
* ``source_uuid``: the UUID of the calculation that labelled the frame.

FitSNAP data files (JSON folders, and its extxyz files) store stress in bar with the LAMMPS sign (positive
under compression); the readers here convert them so that all frames in the package follow one convention.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.units import GPa

#: 1 bar in eV/Å³.
BAR = 1.0e-4 * GPa

#: Above this |stress| (eV/Å³, i.e. ~16 Mbar) a value cannot be in eV/Å³; ``stress_unit='auto'`` then reads bar.
_IMPLAUSIBLE_STRESS = 100.0

GROUP_KEY = "config_type"
WEIGHT_KEY = "config_weight"
SOURCE_KEY = "source_uuid"


def make_frame(
    symbols: Sequence[str],
    positions: np.ndarray,
    cell: np.ndarray,
    pbc: Sequence[bool] | bool = True,
    energy: float | None = None,
    forces: np.ndarray | None = None,
    stress: np.ndarray | None = None,
    **info,
) -> Atoms:
    """Build one labelled frame; ``stress`` in eV/Å³ (ASE sign), as 3x3 or Voigt-6."""
    atoms = Atoms(symbols=list(symbols), positions=np.asarray(positions, float), cell=np.asarray(cell, float), pbc=pbc)
    labels = {}
    if energy is not None:
        labels["energy"] = float(energy)
    if forces is not None:
        labels["forces"] = np.asarray(forces, float).reshape(len(atoms), 3)
    if stress is not None:
        labels["stress"] = _voigt(np.asarray(stress, float))
    if labels:
        atoms.calc = SinglePointCalculator(atoms, **labels)
    atoms.info.update({key: value for key, value in info.items() if value is not None})
    return atoms


def frame_labels(atoms: Atoms) -> dict[str, np.ndarray | float | None]:
    """Return ``{'energy', 'forces', 'stress'}`` of a frame (``None`` where a label is absent)."""
    results = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
    stress = results.get("stress")
    return {
        "energy": None if results.get("energy") is None else float(results["energy"]),
        "forces": None if results.get("forces") is None else np.asarray(results["forces"], float),
        "stress": None if stress is None else _voigt(np.asarray(stress, float)),
    }


def read_fitsnap_json(path: str | Path, group: str | None = None) -> list[Atoms]:
    """Read one FitSNAP JSON file (optionally starting with a ``#`` comment line) into frames."""
    path = Path(path)
    text = path.read_text()
    if text.lstrip().startswith("#"):
        text = text.split("\n", 1)[1]
    dataset = json.loads(text)["Dataset"]
    stress_style = dataset.get("StressStyle", "bar")
    if stress_style != "bar":
        raise ValueError(f"{path}: StressStyle {stress_style!r} is not supported (FitSNAP JSON uses 'bar').")
    frames = []
    for index, data in enumerate(dataset["Data"]):
        stress = data.get("Stress")
        frames.append(
            make_frame(
                data["AtomTypes"],
                data["Positions"],
                data["Lattice"],
                pbc=True,
                energy=data.get("Energy"),
                forces=data.get("Forces"),
                stress=None if stress is None else -np.asarray(stress, float) * BAR,
                config_type=group or path.parent.name,
                source_file=f"{path.name}" + (f"[{index}]" if len(dataset["Data"]) > 1 else ""),
            )
        )
    return frames


def read_frames(path: str | Path, stress_unit: str = "auto") -> list[Atoms]:
    """Read labelled frames from an extxyz file, a folder of extxyz files or a FitSNAP JSON folder.

    Folders are read recursively in sorted order; a frame's ``config_type`` defaults to the name of the
    file (extxyz) or sub-folder (JSON) it came from, as FitSNAP groups them. ``stress_unit`` says how extxyz
    stress is stored: ``'eV/A3'`` (ASE), ``'bar'`` (FitSNAP: bar, positive under compression) or ``'auto'``
    (bar when a value is too large to be eV/Å³).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in {".json", ".xyz", ".extxyz"})
        if not files:
            raise ValueError(f"{path}: no .json, .xyz or .extxyz files inside")
        return [frame for file in files for frame in read_frames(file, stress_unit)]
    if path.suffix == ".json":
        return read_fitsnap_json(path)
    return _read_extxyz(path, stress_unit)


def _read_extxyz(path: Path, stress_unit: str) -> list[Atoms]:
    import ase.io

    if stress_unit not in {"auto", "bar", "eV/A3"}:
        raise ValueError(f"stress_unit must be 'auto', 'bar' or 'eV/A3', not {stress_unit!r}")
    frames = ase.io.read(path, index=":", format="extxyz")
    stresses = [frame_labels(atoms)["stress"] for atoms in frames]
    present = [s for s in stresses if s is not None]
    in_bar = stress_unit == "bar" or (
        stress_unit == "auto" and bool(present) and max(np.abs(s).max() for s in present) > _IMPLAUSIBLE_STRESS
    )
    for atoms, stress in zip(frames, stresses, strict=True):
        atoms.info.setdefault(GROUP_KEY, path.stem)
        if in_bar and stress is not None:
            atoms.calc.results["stress"] = -stress * BAR
    return frames


def write_extxyz(frames: Iterable[Atoms], path: str | Path) -> None:
    """Write frames as extxyz (ASE units and sign), readable by ``ase.io.read``."""
    import ase.io

    ase.io.write(Path(path), list(frames), format="extxyz")


def _voigt(stress: np.ndarray) -> np.ndarray:
    """Return a stress as Voigt-6 ``xx yy zz yz xz xy``."""
    if stress.shape == (6,):
        return stress
    matrix = stress.reshape(3, 3)
    return np.array([matrix[0, 0], matrix[1, 1], matrix[2, 2], matrix[1, 2], matrix[0, 2], matrix[0, 1]])
