"""``nanoos.dft.label``: real pw.x labels for tiny Si cells, run here, through the daemon, and with faults."""

import stat

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_nanoos.data.training_set import TrainingSetData
from aiida_nanoos.potentials import frames as frame_io


def assert_labels_come_from_the_calculations(training_set: TrainingSetData, label_node: orm.WorkChainNode):
    """Every frame's energy, forces and stress equal those parsed from the PwCalculation named in the frame."""
    calculations = {
        node.uuid: node
        for node in label_node.called_descendants
        if isinstance(node, orm.CalcJobNode) and node.is_finished_ok
    }
    frames = training_set.get_frames()
    assert {frame.info["source_uuid"] for frame in frames} <= set(calculations)
    for frame in frames:
        calculation = calculations[frame.info["source_uuid"]]
        labels = frame_io.frame_labels(frame)
        assert labels["energy"] == pytest.approx(calculation.outputs.output_parameters["energy"], abs=1e-6)
        trajectory = calculation.outputs.output_trajectory
        np.testing.assert_allclose(labels["forces"], trajectory.get_array("forces")[-1], atol=1e-6)
        # pw.x stress (GPa, positive under compression) -> ASE eV/Å³, negative under compression
        gpa = trajectory.get_array("stress")[-1]
        np.testing.assert_allclose(labels["stress"][:3], -np.diag(gpa) * frame_io.GPA, atol=1e-8)
    # the training set is made by a calcfunction whose inputs are the PwCalculation outputs: provenance, not copies
    from aiida.common.links import LinkType

    creator_inputs = training_set.creator.base.links.get_incoming(link_type=LinkType.INPUT_CALC).all_nodes()
    assert {node.creator.uuid for node in creator_inputs if node.creator is not None} >= {
        frame.info["source_uuid"] for frame in frames
    }


def test_label_sampled_silicon_in_process(label_builder, silicon_primitive):
    builder = label_builder(
        structure=silicon_primitive,
        sampling={"count": 3, "strain_max": 0.02, "rattle_std": 0.05, "seed": 1},
        overrides={"max_concurrent": 2},
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    training_set = results["training_set"]
    assert training_set.num_frames == 3 and training_set.elements == ["Si"]
    assert_labels_come_from_the_calculations(training_set, node)
    energies = [frame_io.frame_labels(f)["energy"] / 2 for f in training_set.get_frames()]
    # distinct, physical total energies (pw.x Si with this family: about -108 eV/atom for a US pseudo)
    assert len(set(np.round(energies, 6))) == 3
    assert max(energies) - min(energies) < 0.5
    forces = np.concatenate([frame_io.frame_labels(f)["forces"] for f in training_set.get_frames()])
    assert np.abs(forces.sum(axis=0)).max() < 0.05 * len(forces)  # forces sum to ~zero in each cell
    assert training_set.statistics["max_force"] > 0.05  # rattled atoms feel real forces
    # at most two DFT runs were in flight: the third started only after the first batch ended
    workchains = sorted((n for n in node.called if n.process_label == "PwBaseWorkChain"), key=lambda n: n.ctime)
    assert len(workchains) == 3
    assert workchains[2].ctime > min(workchains[0].mtime, workchains[1].mtime)


def test_label_explicit_configurations_through_the_daemon(label_builder, submit_and_await):
    configurations = [orm.StructureData(ase=bulk("Si", "diamond", a=a)) for a in (5.35, 5.50)]
    node = submit_and_await(label_builder(configurations=configurations), timeout=300)
    assert node.is_finished_ok, node.exit_message
    training_set = node.outputs.training_set
    assert training_set.num_frames == 2
    assert_labels_come_from_the_calculations(training_set, node)
    pressure = {
        round(frame.cell.volume, 3): -np.mean(frame_io.frame_labels(frame)["stress"][:3])
        for frame in training_set.get_frames()
    }
    small, large = sorted(pressure)
    assert pressure[small] > pressure[large]  # the compressed cell is under higher pressure


def test_element_without_pseudopotential_is_rejected_before_anything_runs(label_builder, nanoos_resources):
    from aiida_nanoos.workflows.label import LabelWorkChain

    scandium = orm.StructureData(ase=bulk("Sc", "hcp", a=3.3, c=5.3))
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=r"no pseudopotential for element\(s\) Sc"):
        label_builder(configurations=[scandium])
    silicon = label_builder(structure=orm.StructureData(ase=bulk("Si", "diamond", a=5.43)))
    builder = LabelWorkChain.get_builder()
    builder.base = silicon.base
    builder.configurations = {"si": orm.StructureData(ase=bulk("Si", "diamond", a=5.43)), "sc": scandium}
    with pytest.raises(ValueError, match=r"no pseudopotential for element\(s\) Sc in family `nanoos/PBE/US`"):
        run_get_node(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


@pytest.mark.parametrize(
    ("sampling", "field"),
    [({"count": 0}, "sampling.count"), ({"count": 2, "rattle_std": -0.05}, "sampling.rattle_std")],
)
def test_invalid_sampling_is_rejected_at_the_spec(label_builder, silicon_primitive, sampling, field):
    builder = label_builder(structure=silicon_primitive)
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        builder.sampling = orm.Dict(sampling)  # the port validator refuses it on assignment
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        label_builder(structure=silicon_primitive, sampling=sampling)


@pytest.fixture
def crashing_pw(nanoos_resources, tmp_path):
    """Fault injection: a pw.x that crashes on one-atom cells and is the real pw.x otherwise."""
    script = tmp_path / "pw-crashes-on-one-atom"
    real = nanoos_resources["pw"].filepath_executable
    script.write_text(
        "#!/bin/bash\n"
        'if grep -Eq "nat *= *1$" aiida.in; then echo "injected crash" >&2; exit 1; fi\n'
        f'exec {real} "$@"\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return orm.InstalledCode(
        computer=nanoos_resources["pw"].computer,
        filepath_executable=str(script),
        label=f"crashing-pw-{tmp_path.name}",
        default_calc_job_plugin="quantumespresso.pw",
    ).store()


def test_failed_configurations_are_left_out_and_too_many_give_an_exit_code(label_builder, crashing_pw):
    configurations = [
        orm.StructureData(ase=bulk("Si", "diamond", a=5.43)),
        orm.StructureData(ase=bulk("Si", "fcc", a=3.9)),  # one atom: the injected crash
    ]
    builder = label_builder(code=crashing_pw, configurations=configurations, overrides={"max_failure_fraction": 0.25})
    builder.base.max_iterations = orm.Int(1)
    results, node = run_get_node(builder)
    assert node.exit_status == 401
    assert "1 of 2 configurations failed" in node.exit_message
    assert results["training_set"].num_frames == 1  # what succeeded is still returned
    assert list(results["failed_configurations"].get_dict()) == ["configuration_0001"]

    builder = label_builder(code=crashing_pw, configurations=configurations, overrides={"max_failure_fraction": 0.5})
    builder.base.max_iterations = orm.Int(1)
    results, node = run_get_node(builder)
    assert node.is_finished_ok
    assert results["training_set"].num_frames == 1
