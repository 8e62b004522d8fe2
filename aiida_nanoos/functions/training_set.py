"""Calcfunctions that make, filter and split training sets, so every step of data curation is in the graph."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from aiida_nanoos.data.training_set import TrainingSetData
from aiida_nanoos.potentials import frames as frame_io
from aiida_nanoos.potentials.sampling import SamplingSpec, sample_configurations


@calcfunction
def sample_structures(structure: orm.StructureData, sampling: orm.Dict) -> dict[str, orm.StructureData]:
    """Strained and rattled supercells of ``structure`` (see :class:`SamplingSpec`), one output per configuration."""
    spec = SamplingSpec.from_dict(sampling.get_dict())
    configurations = sample_configurations(structure.get_ase(), spec)
    return {f"configuration_{index:04d}": orm.StructureData(ase=atoms) for index, atoms in enumerate(configurations)}


@calcfunction
def build_training_set(config_type: orm.Str, **labelled: orm.Data) -> TrainingSetData:
    """Collect DFT labels into a training set; inputs come in triples ``<key>__structure/__parameters/__trajectory``.

    Energy (eV) is the total energy of ``output_parameters``, forces (eV/Å) and stress (GPa, pw.x sign: positive
    under compression) come from ``output_trajectory``; stress is converted to ASE's eV/Å³ and sign. Each frame's
    ``source_uuid`` is the ``PwCalculation`` that produced the labels.
    """
    keys = sorted({key.rsplit("__", 1)[0] for key in labelled})
    frames = []
    for key in keys:
        structure = labelled[f"{key}__structure"]
        parameters = labelled[f"{key}__parameters"]
        trajectory = labelled[f"{key}__trajectory"]
        atoms = structure.get_ase()
        arrays = trajectory.get_arraynames()
        stress = trajectory.get_array("stress")[-1] * -frame_io.GPA if "stress" in arrays else None
        frames.append(
            frame_io.make_frame(
                atoms.get_chemical_symbols(),
                atoms.positions,
                atoms.cell.array,
                pbc=atoms.pbc,
                energy=parameters["energy"],
                forces=trajectory.get_array("forces")[-1],
                stress=stress,
                config_type=config_type.value,
                source_uuid=parameters.creator.uuid,
            )
        )
    return TrainingSetData(frames)


@calcfunction
def filter_training_set(training_set: TrainingSetData, max_force: orm.Float) -> TrainingSetData:
    """Frames whose largest force is at most ``max_force`` eV/Å (drops collisions and unconverged SCFs)."""
    return TrainingSetData(frame_io.filter_by_max_force(training_set.get_frames(), max_force.value))


@calcfunction
def split_training_set(
    training_set: TrainingSetData, validation_fraction: orm.Float, seed: orm.Int
) -> dict[str, TrainingSetData]:
    """Deterministic train/validation split: the same seed gives the same frames on every machine."""
    frames = training_set.get_frames()
    train, validation = frame_io.split_indices(len(frames), validation_fraction.value, seed.value)
    return {
        "train": TrainingSetData([frames[i] for i in train]),
        "validation": TrainingSetData([frames[i] for i in validation]),
    }
