"""Sampling of atomic configurations for DFT labelling: supercell, random strain and rattle, no AiiDA.

A training set for a machine-learned potential needs configurations away from equilibrium: small random
cell strains probe the stress and elastic response, rattled positions probe the forces. The same spec and seed
always give the same configurations, so a labelling run can be reproduced from its inputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms


@dataclass(frozen=True)
class SamplingSpec:
    """How to derive configurations from one parent structure.

    ``count`` configurations are made from the ``supercell`` of the parent; each gets a random symmetric strain
    with components uniform in ``[-strain_max, strain_max]`` and Gaussian displacements of standard deviation
    ``rattle_std`` (Å) on every atom. With ``include_parent`` the unperturbed supercell is the first configuration.
    """

    count: int
    supercell: tuple[int, int, int] = (1, 1, 1)
    strain_max: float = 0.0
    rattle_std: float = 0.0
    seed: int = 0
    include_parent: bool = False

    FIELDS = ("count", "supercell", "strain_max", "rattle_std", "seed", "include_parent")

    @classmethod
    def from_dict(cls, spec: dict) -> SamplingSpec:
        """Validate a plain dictionary; raises ``ValueError`` naming the offending field."""
        unknown = sorted(set(spec) - set(cls.FIELDS))
        if unknown:
            raise ValueError(f"sampling: unknown field(s) {unknown}; allowed: {list(cls.FIELDS)}")
        if "count" not in spec:
            raise ValueError("sampling.count is required (number of configurations to make)")
        count = spec["count"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"sampling.count must be a positive integer, got {count!r}")
        supercell = spec.get("supercell", (1, 1, 1))
        if isinstance(supercell, int):
            supercell = (supercell,) * 3
        if len(supercell) != 3 or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in supercell):
            raise ValueError(f"sampling.supercell must be three positive integers, got {supercell!r}")
        for name, upper in (("strain_max", 0.3), ("rattle_std", 1.0)):
            value = spec.get(name, 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value <= upper:
                raise ValueError(f"sampling.{name} must be a number in [0, {upper}], got {value!r}")
        seed = spec.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"sampling.seed must be a non-negative integer, got {seed!r}")
        include_parent = spec.get("include_parent", False)
        if not isinstance(include_parent, bool):
            raise ValueError(f"sampling.include_parent must be true or false, got {include_parent!r}")
        return cls(
            count=count,
            supercell=tuple(supercell),
            strain_max=float(spec.get("strain_max", 0.0)),
            rattle_std=float(spec.get("rattle_std", 0.0)),
            seed=seed,
            include_parent=include_parent,
        )

    def to_dict(self) -> dict:
        data = asdict(self)
        data["supercell"] = list(self.supercell)
        return data


def sample_configurations(parent: Atoms, spec: SamplingSpec) -> list[Atoms]:
    """Return ``spec.count`` strained and rattled copies of the parent's supercell (deterministic in the seed)."""
    base = parent.repeat(spec.supercell)
    rng = np.random.default_rng(spec.seed)
    configurations = []
    for index in range(spec.count):
        atoms = base.copy()
        if not (spec.include_parent and index == 0):
            strain = rng.uniform(-spec.strain_max, spec.strain_max, size=(3, 3))
            strain = 0.5 * (strain + strain.T)
            atoms.set_cell(base.cell.array @ (np.eye(3) + strain), scale_atoms=True)
            atoms.positions += rng.normal(0.0, spec.rattle_std, size=atoms.positions.shape)
        atoms.info["sampling_index"] = index
        configurations.append(atoms)
    return configurations
