"""Labelled atomic configurations ("frames") as ASE ``Atoms``: reading and writing, no AiiDA.

A frame is an :class:`ase.Atoms` whose calculator (a ``SinglePointCalculator``) holds the DFT labels in ASE
units and sign conventions: total ``energy`` in eV, ``forces`` in eV/Å, ``stress`` in eV/Å³ with ASE's sign
(negative under compression). Per-frame metadata lives in ``atoms.info``:

* ``config_type``: the group a frame belongs to (FitSNAP group, MACE/GAP ``config_type``), used for weights;
* ``config_weight``: an optional per-frame weight;
* ``source_uuid``: the UUID of the calculation that labelled the frame.

FitSNAP data files (JSON folders, and its extxyz files) store stress in bar with the LAMMPS sign (positive
under compression); the mlearn data sets (Zuo et al. 2020: a JSON list of pymatgen structures with ``outputs``)
store VASP's ``virial_stress`` in kbar, also positive under compression. The readers here convert them so that all
frames in the package follow one convention.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.units import GPa

#: 1 GPa and 1 bar in eV/Å³.
GPA = GPa
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


#: mlearn's ``virial_stress`` order (VASP: xx yy zz xy yz zx) as positions of the Voigt order used here.
_VASP_TO_VOIGT = (0, 1, 2, 4, 5, 3)
KBAR = 1.0e3 * BAR


def read_mlearn_json(path: str | Path) -> list[Atoms]:
    """Read an mlearn data file: a JSON list of ``{"structure": pymatgen dict, "outputs": {"energy", "forces",
    "virial_stress"}, "group": ...}`` (energy in eV, forces in eV/Å, virial stress in kbar, VASP order and sign)."""
    path = Path(path)
    frames = []
    for index, document in enumerate(json.loads(path.read_text())):
        structure, outputs = document["structure"], document["outputs"]
        sites = structure["sites"]
        stress = outputs.get("virial_stress")
        frames.append(
            make_frame(
                [site["species"][0]["element"] for site in sites],
                np.array([site["xyz"] for site in sites], dtype=float),
                np.array(structure["lattice"]["matrix"], dtype=float),
                pbc=True,
                energy=outputs.get("energy"),
                forces=outputs.get("forces"),
                stress=None if stress is None else -np.asarray(stress, float)[list(_VASP_TO_VOIGT)] * KBAR,
                config_type=str(document.get("group") or path.stem),
                source_file=f"{path.name}[{index}]",
            )
        )
    return frames


def _is_mlearn_json(path: Path) -> bool:
    """A JSON list (mlearn) rather than FitSNAP's ``{"Dataset": ...}`` object: the first non-blank character."""
    with path.open() as handle:
        head = handle.read(4096).lstrip()
    return head.startswith("[")


def read_frames(path: str | Path, stress_unit: str = "auto") -> list[Atoms]:
    """Read labelled frames from an extxyz file, a folder of extxyz files, a FitSNAP JSON folder or an mlearn JSON
    file (:func:`read_mlearn_json`).

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
        return read_mlearn_json(path) if _is_mlearn_json(path) else read_fitsnap_json(path)
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


def write_fitsnap_json(frames: Sequence[Atoms], directory: str | Path) -> list[Path]:
    """Write one FitSNAP JSON file per frame into ``directory/<config_type>/``, stress in bar (LAMMPS sign)."""
    directory = Path(directory)
    written = []
    for index, atoms in enumerate(frames):
        labels = frame_labels(atoms)
        data = {
            "AtomTypes": atoms.get_chemical_symbols(),
            "NumAtoms": len(atoms),
            "Positions": atoms.positions.tolist(),
            "Lattice": atoms.cell.array.tolist(),
        }
        if labels["energy"] is not None:
            data["Energy"] = labels["energy"]
        if labels["forces"] is not None:
            data["Forces"] = labels["forces"].tolist()
        if labels["stress"] is not None:
            data["Stress"] = (-_matrix(labels["stress"]) / BAR).tolist()
        dataset = {
            "Dataset": {
                "Data": [data],
                "PositionsStyle": "angstrom",
                "AtomTypeStyle": "chemicalsymbol",
                "StressStyle": "bar",
                "LatticeStyle": "angstrom",
                "EnergyStyle": "electronvolt",
                "ForcesStyle": "electronvoltperangstrom",
                "Label": f"frame {index} written by aiida-nanoos",
            }
        }
        group = str(atoms.info.get(GROUP_KEY, "default"))
        path = directory / group / f"{group}_{index:05d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(dataset))
        written.append(path)
    return written


def write_lammps_data(frames: Sequence[Atoms], path: str | Path) -> list[Path]:
    """Write frames as LAMMPS data files (``atom_style atomic``, ``units metal``), types in sorted element order.

    One frame goes to ``path``; several go to ``<stem>_00000<suffix>``, ... next to it, since a LAMMPS data file
    holds a single configuration.
    """
    from ase.io.lammpsdata import write_lammps_data as _write

    path = Path(path)
    species = sorted({symbol for atoms in frames for symbol in atoms.get_chemical_symbols()})
    targets = (
        [path]
        if len(frames) == 1
        else [path.with_name(f"{path.stem}_{i:05d}{path.suffix}") for i in range(len(frames))]
    )
    for atoms, target in zip(frames, targets, strict=True):
        _write(target, atoms, specorder=species, units="metal", atom_style="atomic", masses=True)
    return targets


def frame_statistics(frames: Sequence[Atoms]) -> dict:
    """Summary a materials scientist checks first: sizes, elements, energy range per atom, largest force."""
    energies_per_atom = []
    max_force = 0.0
    with_stress = 0
    groups: dict[str, int] = {}
    for atoms in frames:
        labels = frame_labels(atoms)
        if labels["energy"] is not None:
            energies_per_atom.append(labels["energy"] / len(atoms))
        if labels["forces"] is not None and len(atoms):
            max_force = max(max_force, float(np.linalg.norm(labels["forces"], axis=1).max()))
        with_stress += labels["stress"] is not None
        group = str(atoms.info.get(GROUP_KEY, "default"))
        groups[group] = groups.get(group, 0) + 1
    return {
        "num_frames": len(frames),
        "num_atoms": int(sum(len(atoms) for atoms in frames)),
        "elements": sorted({symbol for atoms in frames for symbol in atoms.get_chemical_symbols()}),
        "energy_per_atom_min": min(energies_per_atom) if energies_per_atom else None,
        "energy_per_atom_max": max(energies_per_atom) if energies_per_atom else None,
        "max_force": max_force,
        "num_frames_with_stress": with_stress,
        "groups": groups,
    }


def filter_by_max_force(frames: Sequence[Atoms], max_force: float) -> list[Atoms]:
    """Keep frames whose largest atomic force norm (eV/Å) is at most ``max_force`` (drops broken SCFs, collisions)."""
    if max_force <= 0:
        raise ValueError(f"max_force must be positive, got {max_force}")
    kept = []
    for atoms in frames:
        forces = frame_labels(atoms)["forces"]
        if forces is None or not len(atoms) or np.linalg.norm(forces, axis=1).max() <= max_force:
            kept.append(atoms)
    return kept


def split_indices(num_frames: int, validation_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic train/validation split of frame indices (the same seed always gives the same split)."""
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must lie strictly between 0 and 1, got {validation_fraction}")
    if num_frames < 2:
        raise ValueError(f"need at least 2 frames to split, got {num_frames}")
    order = np.random.default_rng(seed).permutation(num_frames)
    num_validation = min(num_frames - 1, max(1, round(validation_fraction * num_frames)))
    return sorted(order[num_validation:].tolist()), sorted(order[:num_validation].tolist())


def _matrix(voigt: np.ndarray) -> np.ndarray:
    xx, yy, zz, yz, xz, xy = voigt
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
