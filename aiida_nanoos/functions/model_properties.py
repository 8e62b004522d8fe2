"""Calcfunction of the analytic alloy evaluator (a cheap stand-in for DFT in engine tests and benchmarks)."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from aiida_nanoos.design.analytic_model import alloy_properties


@calcfunction
def analytic_alloy_properties(structure: orm.StructureData) -> orm.Dict:
    """Band gap, formation energy, stability score, volume per atom and density from the analytic alloy model."""
    atoms = structure.get_ase()
    return orm.Dict(alloy_properties(atoms.get_chemical_symbols(), atoms.get_volume()))
