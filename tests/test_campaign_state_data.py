"""Specification of ``nanoos.campaign_state``: a campaign state stored as one JSON file, read back unchanged."""

from __future__ import annotations

import math

import pytest
from aiida import orm

from aiida_nanoos.data.campaign_state import CampaignStateData
from aiida_nanoos.design.records import CandidateRecord
from aiida_nanoos.design.state import CampaignState


def _state() -> dict:
    state = CampaignState(seed=3, algorithm="random")
    state.record([[0.1, 1 / 3], [0.5, 0.25]], [2 / 3, None])
    state.candidates = [
        CandidateRecord(id="i001c00", iteration=0, generation_method="random", parameters={"strain": {"iso": 1 / 7}})
    ]
    return state.to_dict()


def test_a_state_reads_back_as_stored_with_its_summary_as_attributes(aiida_profile):
    node = CampaignStateData(_state()).store()
    loaded = orm.load_node(node.pk)
    assert isinstance(loaded, CampaignStateData)
    assert loaded.base.repository.list_object_names() == ["state.json"]
    state = CampaignState.from_dict(loaded.get_dict())
    assert state.seed == 3 and state.iteration == 1 and state.values[1] is None
    assert loaded.iteration == 1 and loaded.n_candidates == 1
    assert loaded.base.attributes.get("algorithm") == "random"
    assert loaded.base.attributes.get("schema_version") == 2
    assert loaded["candidates"][0]["id"] == "i001c00"
    # found by what one queries on, without reading the file
    query = orm.QueryBuilder().append(CampaignStateData, filters={"attributes.n_candidates": 1, "id": node.pk})
    assert query.count() == 1


def test_numbers_in_the_state_equal_the_same_numbers_stored_as_attributes(aiida_profile):
    """AiiDA keeps 14 significant digits of a float attribute: the state keeps the same, so a candidate's parameters
    in the state equal those on its structure node."""
    state = _state()
    as_attribute = orm.Dict({"x": 1 / 7}).store().get_dict()["x"]
    stored = CampaignStateData(state).store().get_dict()
    assert stored["candidates"][0]["parameters"]["strain"]["iso"] == as_attribute
    assert stored["values"][0] == orm.Dict({"x": 2 / 3}).store().get_dict()["x"]
    assert math.isclose(stored["points"][0][1], 1 / 3, rel_tol=1e-13)


def test_a_state_with_nan_is_refused_before_it_is_stored(aiida_profile):
    state = _state()
    state["points"][0][0] = float("nan")
    with pytest.raises(ValueError):
        CampaignStateData(state)
