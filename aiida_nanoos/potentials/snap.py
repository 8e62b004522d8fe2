"""SNAP machine-learned potentials: bispectrum descriptors from LAMMPS, weighted linear fits, potential files.

The model (Thompson et al., J. Comput. Phys. 285, 316 (2015)) writes the energy of atom *i* of element *e* as
``E_i = β_e0 + Σ_k β_ek B_ik`` (plus ``½ Σ_kl α_ekl B_ik B_il`` for quadratic SNAP), so energies, forces and
stresses are all linear in the coefficients and a fit is a weighted least-squares problem ``min |W (A β - b)|²``.

Conventions follow FitSNAP so its inputs, weights and reference results carry over unchanged:

* one *energy row* per frame holding the bispectrum sums divided by the number of atoms (target: energy per atom),
  preceded per element by a constant column ``N_e / N`` for ``β_e0``;
* ``3N`` *force rows* (``-dE/dr``, eV/Å) and 6 *stress rows* (``xx yy zz yz xz xy``, in **bar**, positive under
  compression as LAMMPS' pressure) per frame;
* a reference potential (e.g. ZBL) is evaluated in the same LAMMPS run (last column of ``compute snap``) and
  subtracted from the targets; the fitted SNAP is run on top of it with ``pair_style hybrid/overlay``.

Rows of one frame are contiguous (energy, forces atom by atom, stress) and are expressed in the frame's own axes,
so frames can be resampled (bootstrap committees) and predictions compared with the DFT labels directly.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import scipy.linalg
from ase import Atoms
from ase.data import atomic_numbers

from aiida_nanoos.potentials import lammps_engine
from aiida_nanoos.potentials.frames import GROUP_KEY, WEIGHT_KEY, frame_labels
from aiida_nanoos.potentials.lammps_engine import Prediction

ENERGY, FORCE, STRESS = 0, 1, 2
#: Row kinds as stored in :attr:`DesignMatrix.kind`.
ROW_KINDS = {ENERGY: "energy", FORCE: "force", STRESS: "stress"}
#: Units of the rows of a design matrix (and of FitSNAP's metrics).
ROW_UNITS = {ENERGY: "eV/atom", FORCE: "eV/Å", STRESS: "bar"}


# ----------------------------------------------------------------------------------------------------------------------
# Hyper-parameters
# ----------------------------------------------------------------------------------------------------------------------


def bispectrum_indices(twojmax: int) -> list[tuple[int, int, int]]:
    """The ``(2j1, 2j2, 2j)`` triples of the bispectrum components, in LAMMPS' order (``j2 <= j1 <= j``)."""
    triples = []
    for j1 in range(twojmax + 1):
        for j2 in range(j1 + 1):
            for j in range(j1 - j2, min(twojmax, j1 + j2) + 1, 2):
                if j >= j1:
                    triples.append((j1, j2, j))
    return triples


@dataclass(frozen=True)
class SnapHyperparameters:
    """Settings of the bispectrum descriptors, shared by ``compute snap`` (fitting) and ``pair_style snap`` (MD).

    The cutoff between elements *a* and *b* is ``rcutfac * (radelem_a + radelem_b)``; ``wj`` weighs neighbours of
    each element in the neighbour density. ``elements`` fixes the order of LAMMPS atom types and coefficient blocks.
    """

    elements: tuple[str, ...]
    twojmax: int = 6
    rcutfac: float = 4.67637
    rfac0: float = 0.99363
    rmin0: float = 0.0
    radelem: tuple[float, ...] = ()
    wj: tuple[float, ...] = ()
    bzeroflag: bool = False
    quadraticflag: bool = False
    chemflag: bool = False
    bnormflag: bool = False
    wselfallflag: bool = False
    switchflag: bool = True

    def __post_init__(self) -> None:
        elements = tuple(self.elements)
        object.__setattr__(self, "elements", elements)
        for name, default in (("radelem", 0.5), ("wj", 1.0)):
            values = tuple(float(v) for v in (getattr(self, name) or [default] * len(elements)))
            if len(values) != len(elements):
                raise ValueError(f"{name} needs one value per element {elements}, got {values}")
            object.__setattr__(self, name, values)
        for flag in ("bzeroflag", "quadraticflag", "chemflag", "bnormflag", "wselfallflag", "switchflag"):
            object.__setattr__(self, flag, bool(int(getattr(self, flag))))
        if not elements or len(set(elements)) != len(elements):
            raise ValueError(f"elements must be unique and non-empty: {elements}")
        if self.twojmax < 0 or not 0.0 < self.rfac0 <= 1.0:
            raise ValueError("twojmax must be >= 0 and 0 < rfac0 <= 1")

    @classmethod
    def for_elements(cls, elements: Sequence[str], **settings) -> SnapHyperparameters:
        """Defaults for any element set: radelem 0.5, ``wj`` proportional to the atomic number (1 for the heaviest)."""
        elements = tuple(elements)
        if "wj" not in settings:
            numbers = [atomic_numbers[e] for e in elements]
            settings["wj"] = tuple(z / max(numbers) for z in numbers)
        return cls(elements=elements, **settings)

    @property
    def cutoff(self) -> float:
        """Largest interaction range (Å) between any two elements."""
        return self.rcutfac * 2.0 * max(self.radelem)

    @property
    def n_bispectrum(self) -> int:
        """Number of linear bispectrum components per element (without chemflag)."""
        return len(bispectrum_indices(self.twojmax))

    def compute_command(self, compute_id: str = "snap") -> str:
        """The ``compute snap`` command (flags written as 0/1: LAMMPS rejects True/False)."""
        words = [f"compute {compute_id} all snap {self.rcutfac!r} {self.rfac0!r} {self.twojmax}"]
        words += [repr(r) for r in self.radelem] + [repr(w) for w in self.wj]
        words += [f"rmin0 {self.rmin0!r}", f"bzeroflag {int(self.bzeroflag)}"]
        words += [f"quadraticflag {int(self.quadraticflag)}", f"switchflag {int(self.switchflag)}"]
        if self.chemflag:
            words.append(f"chem {len(self.elements)} " + " ".join(str(i) for i in range(len(self.elements))))
        if self.bnormflag:
            words.append("bnormflag 1")
        if self.wselfallflag:
            words.append("wselfallflag 1")
        return " ".join(words)

    def snapparam_text(self, comment: str = "") -> str:
        """The ``.snapparam`` file read by ``pair_style snap``."""
        lines = [f"# {line}" for line in comment.splitlines()] if comment else []
        lines += ["# required", f"rcutfac {self.rcutfac!r}", f"twojmax {self.twojmax}", "", "# optional"]
        lines += [f"rfac0 {self.rfac0!r}", f"rmin0 {self.rmin0!r}"]
        for flag in ("bzeroflag", "quadraticflag", "switchflag", "chemflag", "bnormflag", "wselfallflag"):
            lines.append(f"{flag} {int(getattr(self, flag))}")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        data = asdict(self)
        data["elements"], data["radelem"], data["wj"] = list(self.elements), list(self.radelem), list(self.wj)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> SnapHyperparameters:
        data = dict(data)
        for key in ("elements", "radelem", "wj"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


def default_rcutfac(frames: Sequence[Atoms], minimum: float = 4.7, factor: float = 1.65) -> float:
    """A cutoff (Å, for radelem 0.5) covering the second neighbour shell: ``max(minimum, factor * d_nn)``.

    ``d_nn`` is the median nearest-neighbour distance over the frames (at most 50 sampled frames); 1.65 d_nn sits
    between the second and third shells of close-packed and bcc metals (Ta: 4.72 Å vs FitSNAP's 4.68 Å).
    """
    from ase.neighborlist import neighbor_list

    distances = []
    step = max(1, len(frames) // 50)
    for atoms in list(frames)[::step]:
        i, d = neighbor_list("id", atoms, 6.0)
        if len(i):
            nearest = np.full(len(atoms), np.inf)
            np.minimum.at(nearest, i, d)
            distances.extend(nearest[np.isfinite(nearest)])
    if not distances:
        return minimum
    return round(max(minimum, factor * float(np.median(distances))), 4)


# ----------------------------------------------------------------------------------------------------------------------
# Reference potential
# ----------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReferencePotential:
    """A physical baseline (e.g. ZBL for short-range repulsion) subtracted before the fit and added back in MD.

    ``pair_style`` holds the sub-style(s) with their arguments as they appear inside ``hybrid/overlay`` (e.g.
    ``"zbl 4.0 4.8"``), ``pair_coeff`` the coefficient lines including the sub-style name (``"* * zbl 73 73"``),
    written for atom types numbered in ``elements`` order. ZBL references are regenerated for any type order.
    """

    pair_style: str
    pair_coeff: tuple[str, ...]
    elements: tuple[str, ...] = ()
    zbl_cutoffs: tuple[float, float] | None = None

    @classmethod
    def zbl(cls, elements: Sequence[str], inner: float = 4.0, outer: float = 4.8) -> ReferencePotential:
        """ZBL screened nuclear repulsion, switched off between ``inner`` and ``outer`` (Å)."""
        elements = tuple(elements)
        return cls(
            pair_style=f"zbl {inner:g} {outer:g}",
            pair_coeff=tuple(_zbl_coeff_lines(elements)),
            elements=elements,
            zbl_cutoffs=(float(inner), float(outer)),
        )

    @classmethod
    def from_lammps(cls, pair_style: str, pair_coeff: Sequence[str], elements: Sequence[str]) -> ReferencePotential:
        """Read a FitSNAP-style reference (``hybrid/overlay zero 10.0 zbl 4.0 4.8`` + coeff lines), minus ``zero``."""
        words = pair_style.split()
        if words and words[0] == "pair_style":
            words = words[1:]
        coeffs = [line.split(None, 1)[1] if line.split()[0] == "pair_coeff" else line for line in pair_coeff]
        if words and words[0].startswith("hybrid"):
            words = words[1:]
            kept, index = [], 0
            while index < len(words):
                if words[index] == "zero":
                    index += 1
                    while index < len(words) and (_is_number(words[index]) or words[index] in {"nocoeff", "full"}):
                        index += 1
                    continue
                kept.append(words[index])
                index += 1
            coeffs = [line for line in coeffs if line.split()[2] != "zero"]
            words = kept
        else:  # a single style: its coefficient lines lack the sub-style name that hybrid/overlay needs
            if words and words[0] == "zero":
                words = []
            coeffs = [" ".join(line.split()[:2] + [words[0]] + line.split()[2:]) for line in coeffs] if words else []
        if not words:
            raise ValueError(f"no reference interaction left in {pair_style!r}")
        zbl = None
        if words[0] == "zbl" and len(words) == 3 and all(line.split()[2] == "zbl" for line in coeffs):
            zbl = (float(words[1]), float(words[2]))
        return cls(pair_style=" ".join(words), pair_coeff=tuple(coeffs), elements=tuple(elements), zbl_cutoffs=zbl)

    def pair_coeff_for(self, type_elements: Sequence[str]) -> list[str]:
        """Coefficient lines for LAMMPS types numbered in ``type_elements`` order."""
        type_elements = tuple(type_elements)
        if self.zbl_cutoffs is not None:
            return _zbl_coeff_lines(type_elements)
        if self.elements and type_elements != self.elements:
            raise ValueError(f"reference written for types {self.elements}, asked for {type_elements}")
        return list(self.pair_coeff)

    def to_dict(self) -> dict:
        return {
            "pair_style": self.pair_style,
            "pair_coeff": list(self.pair_coeff),
            "elements": list(self.elements),
            "zbl_cutoffs": None if self.zbl_cutoffs is None else list(self.zbl_cutoffs),
        }

    @classmethod
    def from_dict(cls, data: dict) -> ReferencePotential:
        zbl = data.get("zbl_cutoffs")
        return cls(
            pair_style=data["pair_style"],
            pair_coeff=tuple(data["pair_coeff"]),
            elements=tuple(data.get("elements", ())),
            zbl_cutoffs=None if zbl is None else tuple(zbl),
        )


def _zbl_coeff_lines(elements: Sequence[str]) -> list[str]:
    numbers = [atomic_numbers[e] for e in elements]
    return [
        f"{i + 1} {j + 1} zbl {numbers[i]} {numbers[j]}" for i in range(len(numbers)) for j in range(i, len(numbers))
    ]


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------------------------------------------------
# Descriptors
# ----------------------------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------------------------
# Weights and solvers
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class FitWeights:
    """Row weights: per-group ``(energy, force, stress)`` weights as in FitSNAP's ``[GROUPS]``, else the defaults.

    Rows are in eV/atom, eV/Å and bar, so the defaults (100, 1, 1e-5) make 1 meV/atom, 0.1 eV/Å and 10 kbar
    errors cost the same (FitSNAP's usual energy/force balance; stress kept light because DFT stresses of strongly
    compressed cells reach Mbar and would otherwise dominate). A frame's ``config_weight`` multiplies all its
    rows when ``use_frame_weights``.
    """

    energy: float = 100.0
    force: float = 1.0
    stress: float = 1.0e-5
    groups: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    use_frame_weights: bool = True

    def for_group(self, group: str) -> tuple[float, float, float]:
        return tuple(self.groups.get(group, (self.energy, self.force, self.stress)))

    def row_weights(self, design: DesignMatrix) -> np.ndarray:
        per_frame = np.array([self.for_group(g) for g in design.groups], float).reshape(-1, 3)
        weights = per_frame[design.frame, design.kind]
        if self.use_frame_weights:
            weights = weights * design.frame_weights[design.frame]
        return weights

    @classmethod
    def from_dict(cls, data: dict) -> FitWeights:
        data = dict(data)
        data["groups"] = {k: tuple(v) for k, v in data.get("groups", {}).items()}
        return cls(**data)

    def to_dict(self) -> dict:
        return {
            "energy": self.energy,
            "force": self.force,
            "stress": self.stress,
            "groups": {k: list(v) for k, v in self.groups.items()},
            "use_frame_weights": self.use_frame_weights,
        }


def solve_weighted_least_squares(
    A: np.ndarray,
    b: np.ndarray,
    w: np.ndarray,
    solver: str = "svd",
    ridge_alpha: float = 1.0e-6,
    rcond: float = 1.0e-13,
    unpenalized: Sequence[int] = (),
) -> np.ndarray:
    """Minimise ``|w (A x - b)|²`` (``svd``: SVD least squares, relative singular-value cutoff ``rcond`` as FitSNAP)
    or ``|w (A x - b)|² + ridge_alpha |x|²`` (``ridge``, solved stably as an augmented least-squares problem; the
    columns in ``unpenalized``, e.g. per-element constants, are not shrunk). Rows with zero weight are dropped.
    """
    keep = (w != 0) & np.isfinite(b)
    aw = A[keep] * w[keep, None]
    bw = b[keep] * w[keep]
    if solver == "svd":
        return scipy.linalg.lstsq(aw, bw, cond=rcond, lapack_driver="gelsd")[0]
    if solver == "ridge":
        penalty = np.full(A.shape[1], math.sqrt(ridge_alpha))
        penalty[list(unpenalized)] = 0.0
        aw = np.vstack([aw, np.diag(penalty)])
        bw = np.concatenate([bw, np.zeros(A.shape[1])])
        return scipy.linalg.lstsq(aw, bw, cond=rcond, lapack_driver="gelsd")[0]
    raise ValueError(f"unknown solver {solver!r}: use 'svd' or 'ridge'")


def fit_design(
    design: DesignMatrix,
    weights: FitWeights | None = None,
    solver: str = "svd",
    ridge_alpha: float = 1.0e-6,
    reference: ReferencePotential | None = None,
    fit_constant: bool | None = None,
) -> SnapPotential:
    """Fit SNAP coefficients to a design matrix (rows without labels or with zero weight are ignored).

    ``fit_constant`` says whether the per-element constant ``β_e0`` is fitted; by default it is unless
    ``bzeroflag`` is set, as in FitSNAP (with ``bzeroflag`` an isolated atom then has zero energy, which is what
    energy shifts to isolated-atom references expect). A fixed constant is written as 0.
    """
    weights = weights or FitWeights()
    start = time.perf_counter()
    n_elements = len(design.params.elements)
    fit_constant = (not design.params.bzeroflag) if fit_constant is None else fit_constant
    w = np.where(design.labelled, weights.row_weights(design), 0.0)
    n_block = design.A.shape[1] // n_elements
    constants = [i * n_block for i in range(n_elements)]
    columns = np.arange(design.A.shape[1]) if fit_constant else np.setdiff1d(np.arange(design.A.shape[1]), constants)
    beta = np.zeros(design.A.shape[1])
    beta[columns] = solve_weighted_least_squares(
        design.A[:, columns],
        np.nan_to_num(design.b, nan=0.0),
        w,
        solver,
        ridge_alpha,
        unpenalized=[int(np.searchsorted(columns, c)) for c in constants if c in columns],
    )
    return SnapPotential(
        params=design.params,
        coefficients=beta.reshape(n_elements, n_block),
        reference=reference,
        energy_shift=dict(design.energy_shift),
        metadata={
            "solver": solver,
            "ridge_alpha": ridge_alpha if solver == "ridge" else None,
            "n_frames": design.n_frames,
            "n_rows": int(np.count_nonzero(w)),
            "fit_constant": fit_constant,
            "fit_seconds": time.perf_counter() - start,
            "descriptor_seconds": design.timing,
            "weights": weights.to_dict(),
        },
    )


def fit_snap(
    frames: Sequence[Atoms],
    params: SnapHyperparameters,
    weights: FitWeights | None = None,
    solver: str = "svd",
    reference: ReferencePotential | None = None,
    energy_shift: dict[str, float] | None = None,
    ridge_alpha: float = 1.0e-6,
    stress: bool = True,
    fit_constant: bool | None = None,
) -> SnapPotential:
    """Descriptors of ``frames`` then a weighted linear fit: the one-call way to train a SNAP potential."""
    design = compute_descriptors(frames, params, reference=reference, energy_shift=energy_shift, stress=stress)
    return fit_design(design, weights, solver, ridge_alpha, reference, fit_constant)


# ----------------------------------------------------------------------------------------------------------------------
# The fitted potential
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class SnapPotential:
    """Fitted SNAP coefficients (one row per element: constant then bispectrum terms) plus what MD needs to use them."""

    params: SnapHyperparameters
    coefficients: np.ndarray
    reference: ReferencePotential | None = None
    energy_shift: dict[str, float] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.coefficients = np.asarray(self.coefficients, float).reshape(len(self.params.elements), -1)

    @property
    def n_coefficients(self) -> int:
        """Coefficients per element in the ``.snapcoeff`` file (constant included)."""
        return self.coefficients.shape[1]

    def snapcoeff_text(self, comment: str = "") -> str:
        """The ``.snapcoeff`` file: ``nelements ncoeff`` then per element ``name radelem wj`` and its coefficients."""
        labels = _coefficient_labels(self.params, self.n_coefficients)
        lines = [f"# {line}" for line in comment.splitlines()] if comment else []
        lines += ["", f"{len(self.params.elements)} {self.n_coefficients}"]
        for element, radius, weight, row in zip(
            self.params.elements, self.params.radelem, self.params.wj, self.coefficients, strict=True
        ):
            lines.append(f"{element} {radius!r} {weight!r}")
            lines += [f" {value: .17e}  # {label}" for value, label in zip(row, labels, strict=True)]
        return "\n".join(lines) + "\n"

    def write(self, directory: str | Path, name: str = "snap") -> tuple[Path, Path]:
        """Write ``name.snapcoeff`` and ``name.snapparam`` into ``directory``; returns both paths."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        comment = "SNAP potential written by aiida-nanoos"
        if self.reference is not None:
            comment += f"\nreference (hybrid/overlay): {self.reference.pair_style}"
        coeff_path, param_path = directory / f"{name}.snapcoeff", directory / f"{name}.snapparam"
        coeff_path.write_text(self.snapcoeff_text(comment))
        param_path.write_text(self.params.snapparam_text(comment))
        return coeff_path, param_path

    @classmethod
    def read(
        cls, coeff_path: str | Path, param_path: str | Path, reference: ReferencePotential | None = None
    ) -> SnapPotential:
        """Read a ``.snapcoeff`` / ``.snapparam`` pair (ours or FitSNAP's)."""
        elements, radelem, wj, coefficients = read_snapcoeff(coeff_path)
        settings = read_snapparam(param_path)
        params = SnapHyperparameters(elements=tuple(elements), radelem=tuple(radelem), wj=tuple(wj), **settings)
        return cls(params=params, coefficients=coefficients, reference=reference)

    def pair_style_lines(
        self, coeff_path: str | Path, param_path: str | Path, type_elements: Sequence[str] | None = None
    ) -> tuple[str, list[str]]:
        """``pair_style`` arguments and ``pair_coeff`` argument lines for LAMMPS (types in ``type_elements`` order)."""
        types = tuple(type_elements or self.params.elements)
        unknown = set(types) - set(self.params.elements)
        if unknown:
            raise ValueError(f"the potential has no coefficients for {sorted(unknown)}")
        snap_coeff = f"* * {{style}}{coeff_path} {param_path} {' '.join(types)}"
        if self.reference is None:
            return "snap", [snap_coeff.format(style="")]
        lines = self.reference.pair_coeff_for(types) + [snap_coeff.format(style="snap ")]
        return f"hybrid/overlay {self.reference.pair_style} snap", lines

    def lammps_commands(self, coeff_path: str | Path, param_path: str | Path, type_elements=None) -> list[str]:
        """Complete ``pair_style``/``pair_coeff`` commands, e.g. for an MD input file."""
        style, coeffs = self.pair_style_lines(coeff_path, param_path, type_elements)
        return [f"pair_style {style}"] + [f"pair_coeff {line}" for line in coeffs]

    def predict(self, frames: Sequence[Atoms], stress: bool = True) -> list[Prediction]:
        """Energies, forces, stresses from LAMMPS ``pair_style snap`` (reference added back, energy shift removed)."""
        with tempfile.TemporaryDirectory(prefix="nanoos-snap-") as tmp:
            coeff_path, param_path = self.write(tmp, "potential")
            style, coeffs = self.pair_style_lines(coeff_path, param_path)
            predictions = lammps_engine.evaluate(frames, style, coeffs, self.params.elements, stress=stress)
        for atoms, prediction in zip(frames, predictions, strict=True):
            prediction.energy -= sum(self.energy_shift.get(s, 0.0) for s in atoms.get_chemical_symbols())
        return predictions

    def predict_design(self, design: DesignMatrix) -> np.ndarray:
        """Every row of a design matrix predicted linearly (same units as the rows; energy shift not removed)."""
        if design.params != self.params:
            raise ValueError("design matrix was computed with other hyper-parameters than this potential")
        return design.predict(self.coefficients)

    def to_dict(self) -> dict:
        """JSON-serialisable form (for AiiDA node attributes)."""
        return {
            "params": self.params.to_dict(),
            "coefficients": self.coefficients.tolist(),
            "reference": None if self.reference is None else self.reference.to_dict(),
            "energy_shift": dict(self.energy_shift),
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict) -> SnapPotential:
        return cls(
            params=SnapHyperparameters.from_dict(data["params"]),
            coefficients=np.asarray(data["coefficients"], float),
            reference=None if data.get("reference") is None else ReferencePotential.from_dict(data["reference"]),
            energy_shift=dict(data.get("energy_shift", {})),
            metadata=dict(data.get("metadata", {})),
        )


def _coefficient_labels(params: SnapHyperparameters, n_coefficients: int) -> list[str]:
    """``B[k, j1, j2, j]`` labels as FitSNAP writes them (linear, non-chem), else plain indices."""
    triples = bispectrum_indices(params.twojmax)
    if not params.chemflag and n_coefficients - 1 >= len(triples):
        labels = ["B[0]"] + [f"B[{k + 1}, {j1}, {j2}, {j}]" for k, (j1, j2, j) in enumerate(triples)]
        n = len(triples)
        if params.quadraticflag:
            labels += [f"B[{k + 1}]*B[{m + 1}]" for k in range(n) for m in range(k, n)]
        if len(labels) == n_coefficients:
            return labels
    return [f"B[{k}]" for k in range(n_coefficients)]


def _data_lines(path: str | Path) -> list[list[str]]:
    """Non-empty lines of a LAMMPS potential file, comments stripped, split into words."""
    lines = []
    for line in Path(path).read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if words:
            lines.append(words)
    return lines


def read_snapcoeff(path: str | Path) -> tuple[list[str], list[float], list[float], np.ndarray]:
    """Elements, radelem, wj and the ``(n_elements, n_coefficients)`` array of a ``.snapcoeff`` file."""
    lines = _data_lines(path)
    n_elements, n_coefficients = int(lines[0][0]), int(lines[0][1])
    elements, radelem, wj, rows = [], [], [], []
    position = 1
    for _ in range(n_elements):
        name, radius, weight = lines[position][:3]
        elements.append(name)
        radelem.append(float(radius))
        wj.append(float(weight))
        rows.append([float(words[0]) for words in lines[position + 1 : position + 1 + n_coefficients]])
        position += 1 + n_coefficients
    coefficients = np.array(rows, float)
    if coefficients.shape != (n_elements, n_coefficients):
        raise ValueError(f"{path}: expected {n_elements} x {n_coefficients} coefficients, read {coefficients.shape}")
    return elements, radelem, wj, coefficients


_PARAM_KEYS = {
    "rcutfac": float,
    "twojmax": int,
    "rfac0": float,
    "rmin0": float,
    "bzeroflag": int,
    "quadraticflag": int,
    "switchflag": int,
    "chemflag": int,
    "bnormflag": int,
    "wselfallflag": int,
}


def read_snapparam(path: str | Path) -> dict:
    """Hyper-parameters from a ``.snapparam`` file (keywords this package does not model must be at their default)."""
    settings = {}
    for words in _data_lines(path):
        key, value = words[0], words[1]
        if key in _PARAM_KEYS:
            settings[key] = _PARAM_KEYS[key](float(value)) if _PARAM_KEYS[key] is int else float(value)
        elif key == "switchinnerflag" and int(value) == 0:
            continue
        else:
            raise ValueError(f"{path}: SNAP parameter {key!r} is not supported")
    return settings


# ----------------------------------------------------------------------------------------------------------------------
# Committees for active learning
# ----------------------------------------------------------------------------------------------------------------------


@dataclass
class SnapCommittee:
    """K SNAP models whose disagreement flags configurations that the training set does not cover."""

    potentials: list[SnapPotential]

    def predict(self, frames: Sequence[Atoms]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Energies ``(K, n_frames)`` in eV and forces per frame ``(K, N, 3)`` in eV/Å of every member.

        Members sharing hyper-parameters share one descriptor calculation, so a bootstrap committee costs one
        ``compute snap`` pass plus K matrix products.
        """
        energies = np.zeros((len(self.potentials), len(frames)))
        forces = [np.zeros((len(self.potentials), len(a), 3)) for a in frames]
        designs: dict[tuple, DesignMatrix] = {}
        for k, potential in enumerate(self.potentials):
            key = (potential.params, potential.reference)
            if key not in designs:
                designs[key] = compute_descriptors(
                    frames, potential.params, reference=potential.reference, stress=False
                )
            design = designs[key]
            values = design.predict(potential.coefficients)
            shift = np.array(
                [sum(potential.energy_shift.get(s, 0.0) for s in a.get_chemical_symbols()) for a in frames]
            )
            energies[k] = design.frame_energies(values) - shift
            for f, frame_forces in enumerate(design.frame_forces(values)):
                forces[f][k] = frame_forces
        return energies, forces

    def force_disagreement(self, frames: Sequence[Atoms]) -> np.ndarray:
        """Per frame: the largest (over atoms) standard deviation of the force vector across the committee (eV/Å)."""
        from aiida_nanoos.potentials.metrics import committee_force_disagreement

        _, forces = self.predict(frames)
        return np.array([committee_force_disagreement(f) for f in forces])


def fit_committee(
    design: DesignMatrix,
    n_models: int = 5,
    weights: FitWeights | None = None,
    solver: str = "svd",
    ridge_alpha: float = 1.0e-6,
    reference: ReferencePotential | None = None,
    method: str = "bootstrap",
    fraction: float = 0.8,
    seed: int = 0,
    fit_constant: bool | None = None,
) -> SnapCommittee:
    """K models fitted to resampled frames of one design matrix (``bootstrap``: n draws with replacement;
    ``subsample``: ``fraction`` of the frames without replacement)."""
    rng = np.random.default_rng(seed)
    members = []
    n = design.n_frames
    for _ in range(n_models):
        if method == "bootstrap":
            sample = rng.integers(0, n, size=n)
        elif method == "subsample":
            sample = np.sort(rng.choice(n, size=max(1, int(round(fraction * n))), replace=False))
        else:
            raise ValueError(f"unknown resampling method {method!r}: use 'bootstrap' or 'subsample'")
        potential = fit_design(design.subset(sample), weights, solver, ridge_alpha, reference, fit_constant)
        potential.metadata["frames"] = [int(i) for i in sample]
        members.append(potential)
    return SnapCommittee(members)


def fit_hyperparameter_committee(
    frames: Sequence[Atoms],
    params: Iterable[SnapHyperparameters],
    weights: FitWeights | None = None,
    solver: str = "svd",
    reference: ReferencePotential | None = None,
    energy_shift: dict[str, float] | None = None,
) -> SnapCommittee:
    """One model per hyper-parameter set (e.g. different cutoffs or 2J), all on the same frames."""
    return SnapCommittee(
        [fit_snap(frames, p, weights, solver=solver, reference=reference, energy_shift=energy_shift) for p in params]
    )
