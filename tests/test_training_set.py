"""The ``nanoos.training_set`` data type: storage, statistics, export/import and calcfunctions."""

import numpy as np
import pytest
from aiida import orm

from aiida_nanoos.data.training_set import TrainingSetData
from aiida_nanoos.functions.training_set import filter_training_set, split_training_set
from aiida_nanoos.potentials import frames as frame_io
from tests.core.potentials.test_frames import assert_same_labels, labelled_frames


def test_node_stores_frames_and_queryable_statistics():
    frames = labelled_frames(4)
    node = TrainingSetData(frames).store()
    assert_same_labels(frames, node.get_frames())
    found = (
        orm.QueryBuilder()
        .append(TrainingSetData, filters={"id": node.pk, "attributes.num_frames": 4}, project="attributes.elements")
        .one()[0]
    )
    assert found == ["Si"]
    assert node.num_atoms == 32
    assert node.statistics["groups"] == {"strained": 2, "rattled": 2}


def test_unlabelled_frame_is_refused():
    from ase.build import bulk

    with pytest.raises(ValueError, match="frame 0 has no energy"):
        TrainingSetData([bulk("Si")])


@pytest.mark.parametrize("fmt", ["extxyz", "json"])
def test_export_import_round_trip_keeps_energies_and_forces(tmp_path, fmt):
    node = TrainingSetData(labelled_frames(3)).store()
    target = tmp_path / ("set.extxyz" if fmt == "extxyz" else "set_json")
    node.export(target, fmt)
    again = TrainingSetData.from_file(target).store()
    order = np.argsort([frame_io.frame_labels(a)["energy"] for a in again.get_frames()])
    original = sorted(node.get_frames(), key=lambda a: frame_io.frame_labels(a)["energy"])
    assert_same_labels(original, [again.get_frames()[i] for i in order])


def test_exported_extxyz_is_read_by_ase(tmp_path):
    import ase.io

    node = TrainingSetData(labelled_frames(2)).store()
    node.export(tmp_path / "set.extxyz")
    frames = ase.io.read(tmp_path / "set.extxyz", index=":")
    assert frames[1].get_potential_energy() == pytest.approx(frame_io.frame_labels(node.get_frames()[1])["energy"])
    assert frames[1].get_forces().shape == (8, 3)


def test_split_and_filter_are_calcfunctions_with_deterministic_results():
    node = TrainingSetData(labelled_frames(10)).store()
    first = split_training_set(node, orm.Float(0.2), orm.Int(3))
    second = split_training_set(node, orm.Float(0.2), orm.Int(3))
    assert first["train"].num_frames == 8 and first["validation"].num_frames == 2
    energies = [frame_io.frame_labels(a)["energy"] for a in first["validation"].get_frames()]
    assert energies == [frame_io.frame_labels(a)["energy"] for a in second["validation"].get_frames()]
    assert first["train"].creator.inputs.training_set.uuid == node.uuid
    filtered = filter_training_set(node, orm.Float(3.0))
    assert 0 < filtered.num_frames < 10
    assert filtered.statistics["max_force"] <= 3.0
