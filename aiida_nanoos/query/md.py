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
    """The MD run with this PK, UUID or label: a CalcJob with thermo output, a ``run_ase_md`` calcfunction, or a
    work chain that ran such jobs (``nanoos.md.base``, as the pipeline does)."""
    node = load_identified(identifier, single_with_label(orm.ProcessNode, "MD run"))
    if not isinstance(node, orm.ProcessNode) or not md_segments(node):
        raise ValueError(f"node {node.pk} ({type(node).__name__}) is not an MD run with thermodynamic output")
    return node


def _has_thermo(node: orm.Node) -> bool:
    return isinstance(node, orm.CalculationNode) and (
        "time_dependent_computes" in node.outputs or "thermo" in node.outputs
    )


def md_segments(node: orm.ProcessNode) -> list[orm.CalculationNode]:
    """The runs that recorded the thermodynamics of ``node``, in order: the run itself, or every run a work chain
    launched (a restart chain continuing after a walltime gives one segment per job)."""
    if not isinstance(node, orm.WorkflowNode):
        return [node] if _has_thermo(node) else []
    return sorted((n for n in node.called_descendants if _has_thermo(n)), key=lambda n: n.ctime)


def thermo_data(md: int | str | orm.Node) -> dict[str, Any]:
    """The arguments of :func:`aiida_nanoos.plots.thermo_figure` from the run's stored outputs: time (ps, from the
    step numbers and the timestep of its parameters), temperature (K), total and potential energy (eV), pressure
    (bar, LAMMPS metal units; ASE runs record none), atoms, and the thermostat's target temperature. The segments of
    a continued run are joined (each continuation replaces the rows from its restart step on)."""
    node = load_md(md)
    segments = md_segments(node)
    first = segments[0]
    parameters = first.inputs.parameters.get_dict()
    n_atoms = len(first.inputs.structure.sites)
    title = f"{node.process_label}<{node.pk}> {node.label or ''}".strip()
    if len(segments) > 1:
        title += f" ({len(segments)} runs)"
    if "thermo" in first.outputs:  # run_ase_md
        thermo = first.outputs.thermo
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
    rows: list[dict[str, Any]] = []  # one per thermo row: step, time and the plotted quantities
    for segment in segments:
        thermo = segment.outputs.time_dependent_computes
        names = thermo.get_arraynames()
        timestep_ps = float(segment.inputs.parameters.get_dict().get("control", {}).get("timestep", 0.001))
        steps = np.asarray(thermo.get_array("Step"), float)
        if steps.size:  # a continuation replaces what the run before recorded from its restart step on
            rows = [row for row in rows if row["step"] < steps[0]]
        values = {
            key: np.asarray(thermo.get_array(col), float) if col in names else None
            for key, col in LAMMPS_COLUMNS.items()
        }
        for i, step in enumerate(steps):
            rows.append(
                {
                    "step": step,
                    "time_ps": step * timestep_ps,
                    **{k: None if v is None else v[i] for k, v in values.items()},
                }
            )
    if not rows or any(row["temperature"] is None for row in rows):
        names = first.outputs.time_dependent_computes.get_arraynames()
        raise ValueError(f"MD run {node.pk} recorded no temperature (thermo columns: {', '.join(names)})")
    out: dict[str, Any] = {
        key: None if any(row[key] is None for row in rows) else np.array([row[key] for row in rows])
        for key in ("time_ps", *LAMMPS_COLUMNS)
    }
    integration = parameters.get("md", {}).get("integration", {})
    target = (integration.get("constraints") or {}).get("temp")
    return {
        **out,
        "n_atoms": n_atoms,
        "target_temperature": float(target[1]) if target else None,
        "title": title,
    }
