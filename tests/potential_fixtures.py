"""Fixtures shared by the ML-potential tests: one real DFT training set of Si8 cells, a fitted SNAP and its committee.

The pw.x labelling runs once per test session (cached by node UUID), however many test modules import
these fixtures, so the suite pays for the DFT only once.
"""

from __future__ import annotations

import pytest

#: UUIDs of nodes made once per session: the labelled Si8 frames and a fitted SNAP committee.
_CACHE: dict[str, str] = {}


def _cached(key: str):
    """The node cached under ``key`` if it is still in the profile's storage (else None)."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    if key not in _CACHE:
        return None
    try:
        return orm.load_node(_CACHE[key])
    except NotExistent:
        del _CACHE[key]
        return None


#: A small, fast SNAP fit of Si with a 3-member bootstrap committee (2J=4: 15 coefficients per element).
SNAP_CONFIG = {
    "descriptor_type": "SNAP",
    "name": "si-test",
    "snap": {"twojmax": 4},
    "committee": {"size": 3, "method": "bootstrap", "seed": 1},
}


@pytest.fixture
def si8_training_set(label_builder, nanoos_resources):
    """Six strained and rattled 8-atom Si cells (the first unperturbed) labelled with real pw.x, cheap settings."""
    from aiida import orm
    from aiida.engine import run_get_node
    from ase.build import bulk

    if (cached := _cached("si8")) is not None:
        return cached
    builder = label_builder(
        structure=orm.StructureData(ase=bulk("Si", "diamond", a=5.43, cubic=True)),
        sampling={"count": 6, "strain_max": 0.03, "rattle_std": 0.1, "seed": 3, "include_parent": True},
        overrides={"max_concurrent": 2},
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    _CACHE["si8"] = results["training_set"].uuid
    return results["training_set"]


@pytest.fixture
def si_snap_training(si8_training_set, nanoos_resources):
    """A ``nanoos.potential.train`` CalcJob (run here) fitting :data:`SNAP_CONFIG` to the Si8 frames."""
    from aiida import orm
    from aiida.engine import run_get_node

    from aiida_nanoos.calculations.potential_training import PotentialTrainingCalculation

    if (cached := _cached("train")) is not None:
        return cached
    builder = PotentialTrainingCalculation.get_builder()
    builder.code = orm.load_code("nanoos-train@localhost")
    builder.training_set = si8_training_set
    builder.config = orm.Dict(SNAP_CONFIG)
    _, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    _CACHE["train"] = node.uuid
    return node


@pytest.fixture
def si_snap(si_snap_training):
    """The fitted Si SNAP potential (``PotentialData``)."""
    return si_snap_training.outputs.potential
