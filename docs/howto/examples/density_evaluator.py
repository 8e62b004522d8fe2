"""An evaluator for design campaigns: the mass density and the volume per atom of a candidate.

Register it in your package's ``pyproject.toml`` (``[project.entry-points."nanoos.evaluators"]``) and name it in a
campaign's ``evaluator: {name: density}``; tested as written by tests/test_docs.py.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import WorkChain, calcfunction

#: g/cm³ per amu/Å³ (1 amu = 1.66053906660e-24 g, 1 Å³ = 1e-24 cm³).
AMU_PER_A3_IN_G_PER_CM3 = 1.66053906660


@calcfunction
def density_properties(structure: orm.StructureData) -> orm.Dict:
    """The properties as a node of the graph, computed from the candidate structure alone."""
    atoms = structure.get_ase()
    volume = atoms.get_volume()  # Å³
    mass = float(atoms.get_masses().sum())  # amu
    return orm.Dict({"density": AMU_PER_A3_IN_G_PER_CM3 * mass / volume, "volume_per_atom": volume / len(atoms)})


class DensityEvaluatorWorkChain(WorkChain):
    """Evaluate one candidate: its density (g/cm³) and volume per atom (Å³/atom)."""

    #: What the ``properties`` output holds: a campaign whose objective needs anything else is refused before it runs.
    PROPERTIES = ("density", "volume_per_atom")

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structure", valid_type=orm.StructureData, help="The candidate to evaluate.")
        spec.outline(cls.evaluate)
        spec.output("properties", valid_type=orm.Dict, help="density (g/cm³) and volume_per_atom (Å³/atom).")
        spec.exit_code(410, "ERROR_NO_VOLUME", message="The candidate cell has no volume.")

    def evaluate(self):
        """One step: refuse a degenerate cell (the campaign records the failure and goes on), else compute."""
        if self.inputs.structure.get_cell_volume() <= 1e-8:
            return self.exit_codes.ERROR_NO_VOLUME
        self.out("properties", density_properties(self.inputs.structure))
        return None
