"""Bispectrum descriptors from LAMMPS' ``compute snap``, laid out as the design matrix of a linear SNAP fit.

Rows follow FitSNAP: per frame one energy row (bispectrum sums / N, target energy per atom, preceded per element by
a constant column ``N_e / N``), ``3N`` force rows (eV/Å) and 6 stress rows (``xx yy zz yz xz xy``, bar, positive
under compression), contiguous and in the frame's own axes. The reference potential is evaluated in the same run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from ase import Atoms

from aiida_nanoos.potentials import lammps_engine
from aiida_nanoos.potentials.frames import GROUP_KEY, WEIGHT_KEY, frame_labels
from aiida_nanoos.potentials.metrics import QUANTITIES, UNITS
from aiida_nanoos.potentials.snap.hyperparameters import SnapHyperparameters
from aiida_nanoos.potentials.snap.reference import ReferencePotential
from aiida_nanoos.potentials.snap.weights import FitWeights

#: Row kind codes stored in :attr:`DesignMatrix.kind`; they index :data:`aiida_nanoos.potentials.metrics.QUANTITIES`.
ENERGY, FORCE, STRESS = (QUANTITIES.index(quantity) for quantity in ("energy", "force", "stress"))
#: Row kinds as stored in :attr:`DesignMatrix.kind`.
ROW_KINDS = dict(enumerate(QUANTITIES))
#: Units of the rows of a design matrix (and of FitSNAP's metrics).
ROW_UNITS = {kind: UNITS[quantity] for kind, quantity in ROW_KINDS.items()}


@dataclass
class DesignMatrix:
    """The linear system of a SNAP fit, one block of rows per frame (energy, 3N forces, 6 stresses).

    ``truth`` holds the DFT labels (plus energy shifts) in row units, ``reference`` the reference potential's
    contribution and ``b = truth - reference`` the fit target; rows of unlabelled quantities have ``truth`` NaN.
    A model's prediction of every row is ``A @ coefficients + reference``.
    """

    A: np.ndarray
    truth: np.ndarray
    reference: np.ndarray
    kind: np.ndarray
    frame: np.ndarray
    atom: np.ndarray
    component: np.ndarray
    groups: list[str]
    frame_weights: np.ndarray
    n_atoms: np.ndarray
    params: SnapHyperparameters
    energy_shift: dict[str, float] = field(default_factory=dict)
    timing: float = 0.0

    @property
    def b(self) -> np.ndarray:
        return self.truth - self.reference

    @property
    def n_frames(self) -> int:
        return len(self.groups)

    @property
    def labelled(self) -> np.ndarray:
        return np.isfinite(self.truth)

    def rows(self, kind: int) -> np.ndarray:
        return self.kind == kind

    def row_groups(self) -> np.ndarray:
        return np.asarray(self.groups, dtype=object)[self.frame]

    def row_weights(self, weights: FitWeights | None = None) -> np.ndarray:
        """Weight of each row: group weight for its kind times the frame's ``config_weight``."""
        return (weights or FitWeights()).row_weights(self)

    def frame_slices(self) -> list[slice]:
        starts = np.searchsorted(self.frame, np.arange(self.n_frames + 1))
        return [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:], strict=True)]

    def subset(self, frames: Sequence[int]) -> DesignMatrix:
        """The rows of the given frames (repeats allowed, as in a bootstrap sample), renumbered 0..len(frames)-1."""
        slices = self.frame_slices()
        frames = [int(f) for f in frames]
        rows = np.concatenate([np.arange(slices[f].start, slices[f].stop) for f in frames]) if frames else []
        rows = np.asarray(rows, dtype=int)
        new_frame = np.repeat(np.arange(len(frames)), [slices[f].stop - slices[f].start for f in frames])
        return replace(
            self,
            A=self.A[rows],
            truth=self.truth[rows],
            reference=self.reference[rows],
            kind=self.kind[rows],
            frame=new_frame,
            atom=self.atom[rows],
            component=self.component[rows],
            groups=[self.groups[f] for f in frames],
            frame_weights=self.frame_weights[frames],
            n_atoms=self.n_atoms[frames],
        )

    def predict(self, coefficients: np.ndarray) -> np.ndarray:
        """Every row predicted by a linear model with these coefficients (reference added back)."""
        return self.A @ np.asarray(coefficients).ravel() + self.reference

    def frame_forces(self, values: np.ndarray) -> list[np.ndarray]:
        """Split per-row values (e.g. :meth:`predict`) into an ``(N, 3)`` force array per frame."""
        force = self.kind == FORCE
        out = []
        for frame_slice, n in zip(self.frame_slices(), self.n_atoms, strict=True):
            mask = force[frame_slice]
            out.append(np.asarray(values[frame_slice][mask]).reshape(int(n), 3))
        return out

    def frame_energies(self, values: np.ndarray) -> np.ndarray:
        """Total energies (eV) per frame from per-row values (energy rows are per atom)."""
        energy = np.full(self.n_frames, np.nan)
        rows = self.kind == ENERGY
        energy[self.frame[rows]] = values[rows] * self.n_atoms[self.frame[rows]]
        return energy


def compute_descriptors(
    frames: Sequence[Atoms],
    params: SnapHyperparameters,
    reference: ReferencePotential | None = None,
    energy_shift: dict[str, float] | None = None,
    stress: bool = True,
    lmp=None,
) -> DesignMatrix:
    """Bispectrum design matrix of labelled (or unlabelled) frames from ``compute snap`` in a LAMMPS ``run 0``.

    ``energy_shift`` (eV per atom of each element) is added to the DFT energies as FitSNAP's ``[ESHIFT]`` does.
    Stress rows are produced for fully periodic frames when ``stress`` is true.
    """
    if not frames:
        raise ValueError("no frames given")
    start = time.perf_counter()
    energy_shift = dict(energy_shift or {})
    elements = params.elements
    n_types = len(elements)
    pair_style, pair_coeff = _descriptor_pair(params, reference)
    blocks: list[dict[str, np.ndarray]] = []
    own = lmp is None
    lmp = lmp if lmp is not None else lammps_engine.new_lammps()
    try:
        for index, atoms in enumerate(frames):
            box = lammps_engine.setup_frame(lmp, atoms, elements)
            lammps_engine.set_pair(lmp, pair_style, pair_coeff)
            lmp.commands_list([params.compute_command("snap"), "thermo_style custom step pe", "run 0"])
            array = np.array(lmp.numpy.extract_compute("snap", 0, 2), dtype=float, copy=True)
            lmp.command("uncompute snap")
            to_bar = lammps_engine.ev_per_a3_in_bar(lmp) if stress else 0.0
            blocks.append(_frame_rows(array, atoms, box, params, n_types, energy_shift, to_bar, index))
    finally:
        if own:
            lmp.close()
    concatenated = {key: np.concatenate([block[key] for block in blocks]) for key in blocks[0]}
    return DesignMatrix(
        A=concatenated["A"],
        truth=concatenated["truth"],
        reference=concatenated["reference"],
        kind=concatenated["kind"].astype(np.int8),
        frame=concatenated["frame"].astype(int),
        atom=concatenated["atom"].astype(int),
        component=concatenated["component"].astype(np.int8),
        groups=[str(atoms.info.get(GROUP_KEY, "default")) for atoms in frames],
        frame_weights=np.array([float(atoms.info.get(WEIGHT_KEY, 1.0)) for atoms in frames]),
        n_atoms=np.array([len(atoms) for atoms in frames]),
        params=params,
        energy_shift=energy_shift,
        timing=time.perf_counter() - start,
    )


def _descriptor_pair(params: SnapHyperparameters, reference: ReferencePotential | None) -> tuple[str, list[str]]:
    """``zero`` (so that neighbour lists reach the SNAP cutoff) overlaid with the reference, if any."""
    cutoff = f"{params.cutoff + 1.0e-3:.10g}"
    if reference is None:
        return f"zero {cutoff}", ["* *"]
    return f"hybrid/overlay zero {cutoff} {reference.pair_style}", ["* * zero"] + reference.pair_coeff_for(
        params.elements
    )


def _frame_rows(
    array: np.ndarray,
    atoms: Atoms,
    box: lammps_engine.LammpsBox,
    params: SnapHyperparameters,
    n_types: int,
    energy_shift: dict[str, float],
    to_bar: float,
    index: int,
) -> dict[str, np.ndarray]:
    """One ``compute snap`` array as FitSNAP-layout rows in the frame's own axes (no stress rows if ``to_bar`` is 0)."""
    n = len(atoms)
    n_columns = array.shape[1] - 1
    if n_columns % n_types:
        raise RuntimeError(f"compute snap returned {n_columns} columns for {n_types} types")
    n_coeff = n_columns // n_types
    symbols = atoms.get_chemical_symbols()
    labels = frame_labels(atoms)

    def with_constant(values: np.ndarray, constant: np.ndarray) -> np.ndarray:
        """Insert each element's constant column before its bispectrum block."""
        blocks = values[:, :n_columns].reshape(len(values), n_types, n_coeff)
        return np.concatenate([constant.reshape(len(values), n_types, 1), blocks], axis=2).reshape(len(values), -1)

    counts = np.array([symbols.count(e) for e in params.elements], float)
    energy_a = with_constant(array[:1] / n, counts[None, :] / n)
    energy_ref = array[0, -1] / n
    energy = labels["energy"]
    energy_truth = np.nan
    if energy is not None:
        energy_truth = (energy + sum(energy_shift.get(s, 0.0) for s in symbols)) / n

    # Force rows, atom-major, rotated back from the LAMMPS frame (all columns incl. the reference are vectors).
    force_block = array[1 : 1 + 3 * n].reshape(n, 3, -1)
    force_block = np.einsum("nac,ba->nbc", force_block, box.rotation).reshape(3 * n, -1)
    force_a = with_constant(force_block, np.zeros((3 * n, n_types)))
    force_truth = np.full(3 * n, np.nan) if labels["forces"] is None else labels["forces"].ravel()

    parts_a = [energy_a, force_a]
    truth = [[energy_truth], force_truth]
    reference = [[energy_ref], force_block[:, -1]]
    kind = [[ENERGY], np.full(3 * n, FORCE)]
    atom = [[-1], np.repeat(np.arange(n), 3)]
    component = [[0], np.tile(np.arange(3), n)]
    if to_bar and all(box.pbc):
        # Bispectrum virial columns are sums of r dB/dr (eV): / volume -> bar, LAMMPS (pressure) sign. The
        # reference column already holds the reference pressure tensor in bar.
        virial = array[1 + 3 * n : 7 + 3 * n].copy()
        virial[:, :-1] *= to_bar / box.volume
        virial = box.voigt_to_frame(virial)
        parts_a.append(with_constant(virial, np.zeros((6, n_types))))
        # Labels (eV/Å³, ASE sign) converted with the same factor, so in-model data are fitted exactly.
        stress_truth = np.full(6, np.nan) if labels["stress"] is None else -labels["stress"] * to_bar
        truth.append(stress_truth)
        reference.append(virial[:, -1])
        kind.append(np.full(6, STRESS))
        atom.append(np.full(6, -1))
        component.append(np.arange(6))
    a = np.vstack(parts_a)
    return {
        "A": a,
        "truth": np.concatenate([np.asarray(t, float) for t in truth]),
        "reference": np.concatenate([np.asarray(r, float) for r in reference]),
        "kind": np.concatenate([np.asarray(k) for k in kind]),
        "frame": np.full(len(a), index),
        "atom": np.concatenate([np.asarray(x) for x in atom]),
        "component": np.concatenate([np.asarray(c) for c in component]),
    }
