"""SNAP hyper-parameters: the bispectrum settings shared by ``compute snap`` (fitting) and ``pair_style snap`` (MD)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers


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
