"""A fitted SNAP potential: its coefficients, the ``.snapcoeff`` / ``.snapparam`` files and its LAMMPS lines."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ase import Atoms

from aiida_nanoos.potentials import lammps_engine
from aiida_nanoos.potentials.lammps_engine import Prediction
from aiida_nanoos.potentials.snap.descriptors import DesignMatrix
from aiida_nanoos.potentials.snap.hyperparameters import SnapHyperparameters, bispectrum_indices
from aiida_nanoos.potentials.snap.reference import ReferencePotential


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
