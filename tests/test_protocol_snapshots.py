"""Protocol builders, snapshot-tested as aiida-quantumespresso does: the inputs each protocol produces are stored
as YAML next to this file and compared, so a change of a default shows up in review as a diff of that YAML.

Regenerate after an intended change with ``pytest tests/test_protocol_snapshots.py --force-regen``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from aiida import orm
from ase.build import bulk

from aiida_nanoos.workflows.evaluators.dft import BandGapWorkChain
from aiida_nanoos.workflows.label import LabelWorkChain

PROTOCOLS = ("fast", "balanced", "precise")


def builder_snapshot(value: Any) -> Any:
    """Plain data of a builder (a Mapping of ports): node values, code and structure by what identifies them."""
    if isinstance(value, Mapping):
        items = {key: builder_snapshot(item) for key, item in sorted(value.items())}
        return {key: item for key, item in items.items() if item not in ({}, None)}
    if isinstance(value, orm.Dict):
        return builder_snapshot(value.get_dict())
    if isinstance(value, orm.List):
        return value.get_list()
    if isinstance(value, orm.KpointsData):
        return {"mesh": value.get_kpoints_mesh()[0]} if "mesh" in value.base.attributes.keys() else "kpoints list"
    if isinstance(value, orm.AbstractCode):
        return f"code {value.full_label}"
    if isinstance(value, orm.StructureData):
        return f"structure {value.get_formula()}"
    if hasattr(value, "element") and hasattr(value, "filename"):  # a pseudopotential
        return f"pseudo {value.element} {value.filename}"
    if isinstance(value, orm.BaseType):
        return value.value
    if isinstance(value, float):
        return round(value, 10)
    if isinstance(value, tuple):
        return list(value)
    return value


@pytest.fixture
def silicon():
    return orm.StructureData(ase=bulk("Si", "diamond", a=5.43))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_label_protocol(nanoos_resources, silicon, protocol, data_regression):
    builder = LabelWorkChain.get_builder_from_protocol(
        nanoos_resources["pw"], structure=silicon, sampling={"count": 4, "rattle_std": 0.05}, protocol=protocol
    )
    data_regression.check(builder_snapshot(builder))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_band_gap_evaluator_protocol(nanoos_resources, silicon, protocol, data_regression):
    builder = BandGapWorkChain.get_builder_from_protocol(
        nanoos_resources["pw"], ["Si", "Ge"], silicon, protocol=protocol
    )
    data_regression.check(builder_snapshot(builder))


def test_scheduler_options_from_protocol_overrides_and_argument(nanoos_resources, silicon):
    """sbatch resources come from the protocol; account and queue from `overrides.options` or `options` (which wins)."""
    builder = LabelWorkChain.get_builder_from_protocol(
        nanoos_resources["pw"],
        structure=silicon,
        protocol="fast",
        overrides={"options": {"account": "proj-a", "queue_name": "debug", "max_wallclock_seconds": 900}},
        options={"account": "proj-b", "resources": {"num_mpiprocs_per_machine": 2}},
    )
    options = builder.base.pw.metadata.options
    assert options["account"] == "proj-b" and options["queue_name"] == "debug"
    assert options["max_wallclock_seconds"] == 900
    assert options["resources"] == {"num_machines": 1, "num_mpiprocs_per_machine": 2}
    assert options["withmpi"] is False
    evaluator = BandGapWorkChain.get_builder_from_protocol(
        nanoos_resources["pw"], ["Si"], silicon, protocol="precise", overrides={"options": {"queue_name": "long"}}
    )
    assert evaluator.scf.pw.metadata.options["queue_name"] == "long"
    assert evaluator.scf.pw.metadata.options["max_wallclock_seconds"] == 43200
