"""Committees of SNAP models whose disagreement flags configurations the training set does not cover."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms

from aiida_nanoos.potentials.metrics import committee_force_disagreement
from aiida_nanoos.potentials.snap.descriptors import DesignMatrix, compute_descriptors
from aiida_nanoos.potentials.snap.fit import fit_design, fit_snap
from aiida_nanoos.potentials.snap.hyperparameters import SnapHyperparameters
from aiida_nanoos.potentials.snap.potential import SnapPotential
from aiida_nanoos.potentials.snap.reference import ReferencePotential
from aiida_nanoos.potentials.snap.weights import FitWeights


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
