"""Row weights of a SNAP fit (FitSNAP's ``[GROUPS]`` energy / force / stress weights and per-frame weights)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


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

    def row_weights(self, design) -> np.ndarray:
        """Weight of each row of a :class:`~aiida_nanoos.potentials.snap.descriptors.DesignMatrix`."""
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
