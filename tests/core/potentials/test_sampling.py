"""Sampling of configurations for DFT labelling: validation and determinism."""

import numpy as np
import pytest
from ase.build import bulk

from aiida_nanoos.potentials.sampling import SamplingSpec, sample_configurations


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"count": 0}, "sampling.count"),
        ({"count": 2, "rattle_std": -0.1}, "sampling.rattle_std"),
        ({"count": 2, "strain_max": -0.01}, "sampling.strain_max"),
        ({"count": 2, "supercell": [1, 0, 1]}, "sampling.supercell"),
        ({"count": 2, "seed": -1}, "sampling.seed"),
        ({"count": 2, "temperature": 300}, "temperature"),
        ({}, "sampling.count"),
    ],
)
def test_invalid_spec_names_the_field(spec, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        SamplingSpec.from_dict(spec)


def test_sampling_is_deterministic_and_perturbs_as_asked():
    parent = bulk("Si", "diamond", a=5.43, cubic=True)
    spec = SamplingSpec.from_dict(
        {"count": 3, "supercell": [2, 1, 1], "strain_max": 0.02, "rattle_std": 0.05, "seed": 4}
    )
    first, again = sample_configurations(parent, spec), sample_configurations(parent, spec)
    assert len(first) == 3 and all(len(atoms) == 16 for atoms in first)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a.positions, b.positions)
        np.testing.assert_array_equal(a.cell.array, b.cell.array)
    reference = parent.repeat((2, 1, 1))
    strain = np.linalg.solve(reference.cell.array, first[0].cell.array) - np.eye(3)
    assert 0 < np.abs(strain).max() <= 0.02
    assert np.allclose(strain, strain.T)
    assert not np.allclose(first[0].positions, first[1].positions)


def test_include_parent_keeps_the_first_configuration_unperturbed():
    parent = bulk("Si", "diamond", a=5.43)
    spec = SamplingSpec.from_dict({"count": 2, "rattle_std": 0.1, "include_parent": True})
    configurations = sample_configurations(parent, spec)
    np.testing.assert_allclose(configurations[0].positions, parent.positions)
    assert np.abs(configurations[1].positions - parent.positions).max() > 1e-3
