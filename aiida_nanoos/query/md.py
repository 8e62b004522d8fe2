"""MD runs read back for the thermodynamics plot: a ``nanoos.md`` LAMMPS CalcJob (aiida-lammps' thermo arrays) or a
``run_ase_md`` calcfunction (MACE through ASE)."""

from __future__ import annotations

from typing import Any

import numpy as np
from aiida import orm

from aiida_nanoos.query.identifiers import load_identified, single_with_label

#: aiida-lammps' thermo columns (``time_dependent_computes``) for each quantity of the plot (metal units).
LAMMPS_COLUMNS = {"temperature": "Temp", "total_energy": "TotEng", "potential_energy": "PotEng", "pressure": "Press"}


def load_md(identifier: int | str | orm.Node) -> orm.ProcessNode:
    """The MD run with this PK, UUID or label: a CalcJob with thermo output, or a ``run_ase_md`` calcfunction."""
    node = load_identified(identifier, single_with_label(orm.ProcessNode, "MD run"))
    if not isinstance(node, orm.ProcessNode) or not (
        "time_dependent_computes" in node.outputs or "thermo" in node.outputs
    ):
        raise ValueError(f"node {node.pk} ({type(node).__name__}) is not an MD run with thermodynamic output")
    return node


def thermo_data(md: int | str | orm.Node) -> dict[str, Any]:
    """The arguments of :func:`aiida_nanoos.plots.thermo_figure` from the run's stored outputs: time (ps, from the
    step numbers and the timestep of its parameters), temperature (K), total and potential energy (eV), pressure
    (bar, LAMMPS metal units; ASE runs record none), atoms, and the thermostat's target temperature."""
    node = load_md(md)
    parameters = node.inputs.parameters.get_dict()
    n_atoms = len(node.inputs.structure.sites)
    title = f"{node.process_label}<{node.pk}> {node.label or ''}".strip()
    if "thermo" in node.outputs:  # run_ase_md
        thermo = node.outputs.thermo
        names = thermo.get_arraynames()
        return {
            "time_ps": thermo.get_array("time_ps"),
            "temperature": thermo.get_array("temperature"),
            "total_energy": thermo.get_array("etotal") if "etotal" in names else None,
            "potential_energy": thermo.get_array("potential_energy") if "potential_energy" in names else None,
            "pressure": None,
            "n_atoms": n_atoms,
            "target_temperature": parameters.get("temperature") if parameters.get("ensemble") == "nvt" else None,
            "title": title,
        }
    thermo = node.outputs.time_dependent_computes
    names = thermo.get_arraynames()
    timestep_ps = float(parameters.get("control", {}).get("timestep", 0.001))
    integration = parameters.get("md", {}).get("integration", {})
    target = (integration.get("constraints") or {}).get("temp")
    out: dict[str, Any] = {
        key: (np.asarray(thermo.get_array(column), float) if column in names else None)
        for key, column in LAMMPS_COLUMNS.items()
    }
    if out["temperature"] is None:
        raise ValueError(f"MD run {node.pk} recorded no temperature (thermo columns: {', '.join(names)})")
    return {
        "time_ps": np.asarray(thermo.get_array("Step"), float) * timestep_ps,
        **out,
        "n_atoms": n_atoms,
        "target_temperature": float(target[1]) if target else None,
        "title": title,
    }
