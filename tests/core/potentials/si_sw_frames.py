"""Small sets of Si frames labelled by LAMMPS' Stillinger-Weber potential (a real potential, cheap, no DFT)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator

from aiida_nanoos.potentials import lammps_engine


def stillinger_weber_si(n_frames: int, seed: int, strain: float = 0.03, rattle: float = 0.08) -> list[Atoms]:
    """Strained and rattled 8-atom diamond Si cells with SW energy, forces and stress."""
    potential_file = Path(lammps_engine.lammps_module().__file__).parent / "share/lammps/potentials/Si.sw"
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        atoms = bulk("Si", "diamond", a=5.431, cubic=True)
        atoms.set_cell(atoms.cell @ (np.eye(3) + rng.uniform(-strain, strain, (3, 3))), scale_atoms=True)
        atoms.positions += rng.normal(0.0, rattle, atoms.positions.shape)
        frames.append(atoms)
    labels = lammps_engine.evaluate(frames, "sw", [f"* * {potential_file} Si"], ["Si"])
    for atoms, label in zip(frames, labels, strict=True):
        atoms.calc = SinglePointCalculator(atoms, energy=label.energy, forces=label.forces, stress=label.stress)
    return frames
