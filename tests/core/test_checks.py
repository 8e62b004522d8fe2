"""Specification of the one value check every parser uses: what YAML can produce (true, .nan, .inf, "3", [300], 3.0)
is refused or accepted the same way everywhere, and the message says what the field must be."""

from __future__ import annotations

import dataclasses
import math

import pytest

from aiida_nanoos.common.checks import Bound, number, positive_int


@pytest.mark.parametrize("value", [True, False, math.nan, math.inf, -math.inf, "3", [300], {"value": 1}, None])
def test_a_value_that_is_not_a_finite_number_is_refused_naming_the_field(value):
    with pytest.raises(ValueError, match=r"^md\.temperature: must be a number, got "):
        Bound(float, 0.0, low_open=True).check(value, "md.temperature")
    with pytest.raises(ValueError, match=r"^md\.steps: must be a positive integer, got "):
        Bound(int, 1).check(value, "md.steps")


def test_limits_open_and_closed_and_the_messages_that_state_them():
    fraction = Bound(float, 0.0, 1.0, low_open=True, high_open=True)
    assert fraction.problem(0.5) is None
    assert fraction.problem(0.0) == "must lie in (0.0, 1.0), got 0.0"
    assert fraction.problem(1) == "must lie in (0.0, 1.0), got 1"
    assert Bound(float, 0.0, 3600.0, low_open=True).problem(3600.0) is None
    assert Bound(float, 0.0).problem(-1e-12) == "must be >= 0.0, got -1e-12"
    assert Bound(float, high=5.0, high_open=True).problem(5.0) == "must be < 5.0, got 5.0"
    assert Bound(int, 0, 12).problem(13) == "must be an integer in [0, 12], got 13"
    assert Bound(int, 2).problem(1) == "must be an integer >= 2, got 1"
    assert Bound(int, 0).problem(-1) == "must be a non-negative integer, got -1"
    assert Bound(int, 1).check(3.0, "x") == 3 and isinstance(Bound(int, 1).check(3.0, "x"), int)
    assert Bound(int, 1).problem(1.5) == "must be a positive integer, got 1.5"
    assert Bound(int, 1).check(None, "budget", allow_none=True) is None
    assert number(2, "beta", 0.0) == 2.0 and positive_int(None, "patience", allow_none=True) is None


def test_a_bound_is_stated_in_json_schema_with_the_same_limits():
    assert Bound(int, 0, 12).json_schema() == {"type": "integer", "minimum": 0, "maximum": 12}
    assert Bound(float, 0.0, 1.0, low_open=True).json_schema() == {
        "type": "number",
        "exclusiveMinimum": 0.0,
        "maximum": 1.0,
    }
    assert Bound().json_schema() == {"type": "number"}


def test_the_network_settings_a_config_may_override_are_exactly_the_fields_of_the_network():
    from aiida_nanoos.models.cgcnn_network import Architecture
    from aiida_nanoos.models.graph import GraphSettings
    from aiida_nanoos.models.training import ARCHITECTURE_BOUNDS, GRAPH_BOUNDS

    assert list(ARCHITECTURE_BOUNDS) == [f.name for f in dataclasses.fields(Architecture)]
    assert list(GRAPH_BOUNDS) == [f.name for f in dataclasses.fields(GraphSettings)]
    for bounds, cls in ((ARCHITECTURE_BOUNDS, Architecture), (GRAPH_BOUNDS, GraphSettings)):
        for name, rule in bounds.items():  # the defaults respect the bounds
            default = getattr(cls(), name)
            if isinstance(rule, Bound):
                assert rule.problem(default) is None, name
            elif isinstance(rule, tuple):
                assert default in rule, name
            else:
                assert isinstance(default, bool), name


def test_an_unknown_element_table_is_refused_by_the_parser_and_the_schema_naming_it():
    import jsonschema

    from aiida_nanoos.models.training import parse_model_config
    from aiida_nanoos.schema import json_schema

    config = {"target": "band_gap", "architecture": {"element_table": "periodic"}}
    with pytest.raises(ValueError, match=r"config\.architecture\.element_table must be one of \['basic', 'extended'\]"):
        parse_model_config(config)
    assert not jsonschema.Draft7Validator(json_schema("model_training")).is_valid(config)
    extended = parse_model_config({"target": "band_gap", "architecture": {"element_table": "extended"}})
    assert extended["architecture"]["element_table"] == "extended"
    assert jsonschema.Draft7Validator(json_schema("model_training")).is_valid(
        {"target": "band_gap", "architecture": {"element_table": "extended"}}
    )
