"""Accuracy of an interatomic potential against DFT labels, and committee disagreement for on-the-fly training.

Errors are reported as FitSNAP does (``*ALL`` and per group, unweighted and weighted, MAE / RMSE / R²) in its
units: energy per atom in eV/atom, force components in eV/Å, stress components in bar (1 bar = 1e-4 GPa,
positive under compression). A "weighted" error is the error of the weighted residual ``w (predicted -
reference)``, FitSNAP's definition, so tables can be compared line by line with its ``*_metrics.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from aiida_nanoos.potentials.frames import GROUP_KEY, frame_labels
from aiida_nanoos.potentials.lammps_engine import BAR, Prediction

ALL_GROUPS = "*ALL"
QUANTITIES = ("energy", "force", "stress")
UNITS = {"energy": "eV/atom", "force": "eV/Å", "stress": "bar"}


@dataclass
class ParityData:
    """Reference vs predicted values of one quantity, flat, with the group, frame and weight of each value."""

    quantity: str
    reference: np.ndarray
    predicted: np.ndarray
    group: np.ndarray
    frame: np.ndarray
    weight: np.ndarray

    def __post_init__(self) -> None:
        self.reference = np.asarray(self.reference, float)
        self.predicted = np.asarray(self.predicted, float)
        self.group = np.asarray(self.group, dtype=object)
        self.frame = np.asarray(self.frame, int)
        self.weight = np.ones(len(self.reference)) if self.weight is None else np.asarray(self.weight, float)

    @property
    def unit(self) -> str:
        return UNITS[self.quantity]

    def to_dict(self) -> dict:
        """Plain lists (for plotting or storing as a node attribute)."""
        return {
            "quantity": self.quantity,
            "unit": self.unit,
            "reference": self.reference.tolist(),
            "predicted": self.predicted.tolist(),
            "group": [str(g) for g in self.group],
            "frame": self.frame.tolist(),
            "weight": self.weight.tolist(),
        }


@dataclass(frozen=True)
class ErrorStats:
    """Number of values, mean absolute error, root-mean-square error, R² and largest absolute error."""

    count: int
    mae: float
    rmse: float
    rsq: float
    max_abs: float

    def to_dict(self) -> dict:
        return {"count": self.count, "mae": self.mae, "rmse": self.rmse, "rsq": self.rsq, "max_abs": self.max_abs}


def error_stats(reference: np.ndarray, predicted: np.ndarray, weight: np.ndarray | None = None) -> ErrorStats:
    """Errors of ``predicted`` vs ``reference``; with ``weight``, of the weighted values (FitSNAP's "Weighted")."""
    reference = np.asarray(reference, float)
    predicted = np.asarray(predicted, float)
    if weight is not None:
        reference, predicted = reference * weight, predicted * weight
    if reference.size == 0:
        return ErrorStats(0, math.nan, math.nan, math.nan, math.nan)
    residual = predicted - reference
    total = float(np.sum((reference - reference.mean()) ** 2))
    rsq = 1.0 - float(np.sum(residual**2)) / total if total > 0 else math.nan
    return ErrorStats(
        count=int(reference.size),
        mae=float(np.mean(np.abs(residual))),
        rmse=float(np.sqrt(np.mean(residual**2))),
        rsq=rsq,
        max_abs=float(np.max(np.abs(residual))),
    )


def parity_from_frames(
    reference_frames: Sequence[Atoms],
    predictions: Sequence[Prediction | Atoms],
    weights=None,
) -> dict[str, ParityData]:
    """Parity data of labelled frames vs predictions (LAMMPS :class:`Prediction` or frames with a calculator).

    Energies per atom (eV/atom), force components (eV/Å), stress components in bar with FitSNAP's sign (positive
    under compression, as the stress rows of a design matrix); quantities missing from
    either side are left out. ``weights`` (a :class:`~aiida_nanoos.potentials.snap.FitWeights`) adds FitSNAP row
    weights.
    """
    collected: dict[str, dict[str, list]] = {q: {"r": [], "p": [], "g": [], "f": [], "w": []} for q in QUANTITIES}
    for index, (atoms, predicted) in enumerate(zip(reference_frames, predictions, strict=True)):
        labels = frame_labels(atoms)
        other = _prediction_values(predicted)
        group = str(atoms.info.get(GROUP_KEY, "default"))
        group_weights = (1.0, 1.0, 1.0)
        if weights is not None:
            group_weights = weights.for_group(group)
            if weights.use_frame_weights:
                group_weights = tuple(w * float(atoms.info.get("config_weight", 1.0)) for w in group_weights)
        n = len(atoms)
        pairs = {  # per atom; eV/Å; eV/Å³ (ASE sign) -> bar, positive under compression as FitSNAP/LAMMPS
            "energy": (labels["energy"], other["energy"], 1.0 / n),
            "force": (labels["forces"], other["forces"], 1.0),
            "stress": (labels["stress"], other["stress"], -1.0 / BAR),
        }
        for quantity_index, (quantity, (ref, pred, scale)) in enumerate(pairs.items()):
            if ref is None or pred is None:
                continue
            ref = np.atleast_1d(np.asarray(ref, float)).ravel() * scale
            pred = np.atleast_1d(np.asarray(pred, float)).ravel() * scale
            store = collected[quantity]
            store["r"].append(ref)
            store["p"].append(pred)
            store["g"].append(np.full(ref.size, group, dtype=object))
            store["f"].append(np.full(ref.size, index))
            store["w"].append(np.full(ref.size, group_weights[quantity_index]))
    return {
        quantity: ParityData(
            quantity,
            np.concatenate(store["r"]),
            np.concatenate(store["p"]),
            np.concatenate(store["g"]),
            np.concatenate(store["f"]),
            np.concatenate(store["w"]),
        )
        for quantity, store in collected.items()
        if store["r"]
    }


def _prediction_values(predicted: Prediction | Atoms) -> dict:
    if isinstance(predicted, Atoms):
        return frame_labels(predicted)
    return {"energy": predicted.energy, "forces": predicted.forces, "stress": predicted.stress}


def parity_from_design(
    design, predicted_rows: np.ndarray, row_weights: np.ndarray | None = None
) -> dict[str, ParityData]:
    """Parity data from a :class:`~aiida_nanoos.potentials.snap.DesignMatrix` and its predicted rows (FitSNAP units).

    The design's row kind codes index :data:`QUANTITIES`. Energies include the design's energy shift on both sides,
    so errors are unaffected by it.
    """
    groups = design.row_groups()
    weights = np.ones(len(design.truth)) if row_weights is None else np.asarray(row_weights, float)
    out = {}
    for kind, quantity in enumerate(QUANTITIES):
        rows = (design.kind == kind) & design.labelled
        if np.any(rows):
            out[quantity] = ParityData(
                quantity, design.truth[rows], predicted_rows[rows], groups[rows], design.frame[rows], weights[rows]
            )
    return out


def error_summary(parity: dict[str, ParityData]) -> dict:
    """``{energy_rmse, energy_mae (eV/atom), force_rmse, force_mae (eV/Å), stress_rmse, stress_mae (bar), counts}``."""
    out: dict = {}
    for quantity, data in parity.items():
        stats = error_stats(data.reference, data.predicted)
        out[f"{quantity}_rmse"] = stats.rmse
        out[f"{quantity}_mae"] = stats.mae
        out[f"{quantity}_max_abs"] = stats.max_abs
        out[f"{quantity}_count"] = stats.count
    return out


def error_table(parity: dict[str, ParityData], per_group: bool = True) -> dict[tuple[str, str, str], ErrorStats]:
    """FitSNAP-style table keyed ``(group, 'Unweighted'|'Weighted', 'Energy'|'Force'|'Stress')``, ``*ALL`` first."""
    table = {}
    for quantity, data in parity.items():
        groups = [ALL_GROUPS] + (sorted(set(data.group)) if per_group else [])
        for group in groups:
            mask = np.ones(len(data.reference), bool) if group == ALL_GROUPS else data.group == group
            for weighting in ("Unweighted", "Weighted"):
                weight = data.weight[mask] if weighting == "Weighted" else None
                table[(group, weighting, quantity.capitalize())] = error_stats(
                    data.reference[mask], data.predicted[mask], weight
                )
    return dict(sorted(table.items(), key=lambda item: (item[0][0] != ALL_GROUPS, item[0])))


def format_error_table(table: dict[tuple[str, str, str], ErrorStats]) -> str:
    """Markdown table in the layout of FitSNAP's ``*_metrics.md``."""
    lines = ["| group | weighting | quantity | ncount | mae | rmse | rsq |", "|:--|:--|:--|--:|--:|--:|--:|"]
    for (group, weighting, quantity), stats in table.items():
        lines.append(
            f"| {group} | {weighting} | {quantity} | {stats.count} "
            f"| {stats.mae:.6g} | {stats.rmse:.6g} | {stats.rsq:.6g} |"
        )
    return "\n".join(lines)


def read_fitsnap_metrics(path: str | Path) -> dict[tuple[str, str, str], ErrorStats]:
    """Parse FitSNAP's ``*_metrics.md`` (rows ``| ('group', 'Unweighted', 'Energy') | ncount | mae | rmse | rsq |``)."""
    pattern = re.compile(r"\|\s*\('([^']*)',\s*'([^']*)',\s*'([^']*)'\)\s*\|([^|]*)\|([^|]*)\|([^|]*)\|([^|]*)\|")
    table = {}
    for line in Path(path).read_text().splitlines():
        match = pattern.match(line.strip())
        if match:
            group, weighting, quantity, count, mae, rmse, rsq = (s.strip() for s in match.groups())
            table[(group, weighting, quantity)] = ErrorStats(
                int(float(count)), float(mae), float(rmse), float(rsq), math.nan
            )
    if not table:
        raise ValueError(f"{path}: no FitSNAP metrics rows found")
    return table


def committee_force_disagreement(forces: np.ndarray) -> float:
    """Largest (over atoms) standard deviation of the force vector across a committee, ``forces`` shaped (K, N, 3).

    ``max_i sqrt(mean_k |F_ki - <F_i>|²)``: the DP-GEN / FLARE criterion for picking frames to label with DFT.
    """
    forces = np.asarray(forces, float)
    if forces.ndim != 3 or forces.shape[2] != 3:
        raise ValueError(f"expected forces shaped (models, atoms, 3), got {forces.shape}")
    deviation = forces - forces.mean(axis=0, keepdims=True)
    per_atom = np.sqrt(np.mean(np.sum(deviation**2, axis=2), axis=0))
    return float(per_atom.max()) if per_atom.size else 0.0


def committee_energy_spread(energies: np.ndarray, n_atoms: np.ndarray | Sequence[int]) -> np.ndarray:
    """Standard deviation of the energy per atom across a committee; ``energies`` shaped (K, n_frames), in eV."""
    energies = np.asarray(energies, float)
    return np.std(energies / np.asarray(n_atoms, float)[None, :], axis=0)
