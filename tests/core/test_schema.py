"""Specification: one JSON Schema per kind of configuration file, which the examples satisfy and which states the
same allowed values and bounds the parsers enforce (every bound is probed at and beyond its limit in both)."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from aiida_nanoos.schema import json_schema, schema_errors, schema_kinds

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


def kind_of(path: Path) -> str:
    return path.stem.split("_")[0]


def test_there_is_one_valid_draft7_schema_per_kind_and_every_field_is_described():
    assert schema_kinds() == ("campaign", "label", "pipeline", "potential_training", "model_training")
    undescribed = []

    def walk(schema: dict, path: str) -> None:
        for key, sub in schema.get("properties", {}).items():
            if key != "type" and "description" not in sub:
                undescribed.append(f"{path}.{key}")
            walk(sub, f"{path}.{key}")
        for sub in schema.get("anyOf", []) + schema.get("oneOf", []):
            walk(sub, path)

    for kind in schema_kinds():
        schema = json_schema(kind)
        jsonschema.Draft7Validator.check_schema(schema)
        assert schema["additionalProperties"] is False
        walk(schema, kind)
    assert undescribed == []
    with pytest.raises(ValueError, match="no schema for 'hybrid'"):
        json_schema("hybrid")


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_file_validates_against_the_schema_of_its_kind(path):
    assert kind_of(path) in schema_kinds()
    data = yaml.safe_load(path.read_text())
    assert schema_errors(kind_of(path), data) == []
    if kind_of(path) == "pipeline":  # the training config inside is a potential-training config of its own
        assert schema_errors("potential_training", data["overrides"]["train"]["config"]) == []


def test_the_allowed_values_are_the_parsers_own():
    from aiida_nanoos.design import bo, config
    from aiida_nanoos.models.gp import KERNELS
    from aiida_nanoos.potentials.training_config import TRAINABLE_TYPES

    campaign = json_schema("campaign")["properties"]["config"]["properties"]
    assert campaign["algorithm"]["enum"] == list(config.ALGORITHMS)
    assert campaign["evaluation_method"]["enum"] == list(config.EVALUATION_METHODS)
    assert campaign["genetic"]["properties"]["mutation_types"]["items"]["enum"] == list(config.GA_MUTATION_TYPES)
    assert campaign["bo"]["properties"]["kernel"]["enum"] == list(KERNELS) == ["matern52", "rbf"]
    assert campaign["bo"]["properties"]["output_transform"]["enum"] == list(bo.OUTPUT_TRANSFORMS)
    assert campaign["batch_size"] == {"type": "integer", "minimum": 1, "description": "Candidates per iteration.",
                                      "default": 4}  # fmt: skip
    assert json_schema("potential_training")["properties"]["descriptor_type"]["enum"] == list(TRAINABLE_TYPES)


def test_a_wrong_config_is_refused_by_the_schema_and_the_parser_naming_the_same_field():
    from aiida_nanoos.design.config import CampaignConfig
    from aiida_nanoos.potentials.training_config import parse_train_config

    bad = {"algorithm": "bayesian_optimization", "bo": {"kernel": "cubic"}}
    assert schema_errors("campaign", {"config": bad})[-1].startswith("config.bo.kernel: 'cubic' is not one of")
    with pytest.raises(ValueError, match=r"config.bo: kernel: must be one of \['matern52', 'rbf'\]"):
        CampaignConfig.from_dict(bad)
    assert any(e.startswith("snap.twojmax: 14 is greater than the maximum of 12") for e in
               schema_errors("potential_training", {"snap": {"twojmax": 14}}))  # fmt: skip
    with pytest.raises(ValueError, match=r"config.snap.twojmax must be an integer in \[0, 12\], got 14"):
        parse_train_config({"snap": {"twojmax": 14}})
    assert schema_errors("campaign", {"config": {"colour": 1}})[-1].startswith("config: Additional properties")


# ---------------------------------------------------------------------------------------------- every bound, probed
def bounded_numbers(schema: dict, path: tuple[str, ...] = ()):
    """(path, subschema) of every number or integer with a limit, through nested mappings."""
    for key, sub in schema.get("properties", {}).items():
        types = sub.get("type") if isinstance(sub.get("type"), list) else [sub.get("type")]
        if {"integer", "number"} & set(types) and {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & set(
            sub
        ):
            yield (*path, key), sub
        yield from bounded_numbers(sub, (*path, key))


def probes(sub: dict):
    """(value, accepted?) at and just beyond each limit; a fraction for integers."""
    integer = "integer" in (sub["type"] if isinstance(sub["type"], list) else [sub["type"]])
    step = 1 if integer else 0.5
    if "minimum" in sub:
        yield sub["minimum"], True
        yield sub["minimum"] - step, False
    if "exclusiveMinimum" in sub:
        yield sub["exclusiveMinimum"], False
    if "maximum" in sub:
        yield sub["maximum"], True
        yield sub["maximum"] + step, False
    if "exclusiveMaximum" in sub:
        yield sub["exclusiveMaximum"], False
    if integer:
        yield (sub.get("minimum", 1) + 0.5), False


def put(base: dict, path: tuple[str, ...], value) -> dict:
    out = copy.deepcopy(base)
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return out


def model_training_base(path: tuple[str, ...]) -> dict:
    """Settings where the limit of ``path`` is the only rule in play: an ensemble needs 2 members, MC dropout 2
    passes and a dropout > 0."""
    return {"method": "ensemble" if path[-1] in ("n_samples", "dropout") else "mc_dropout"}


def base_config(kind: str, path: tuple[str, ...]) -> dict:
    if kind == "model_training":
        return {"target": "gap", **model_training_base(path)}
    if kind == "potential_training":
        return {}
    if kind == "label":
        return {"count": 2}
    section = path[1] if len(path) > 2 else None
    base = {"algorithm": "random", "batch_size": 1, "evaluation_method": "dft"}
    property_model = {"model": "m", "training": model_training_base(path)}
    return {
        "bo": {**base, "algorithm": "bayesian_optimization"},
        "genetic": {**base, "algorithm": "genetic"},
        "external": {**base, "algorithm": "external", "external": {"url": "http://127.0.0.1:9/propose"}},
        "property_model": {**base, "algorithm": "active_learning", "property_model": property_model},
    }.get(section, base)


def parsers():
    from aiida_nanoos.design.config import CampaignConfig
    from aiida_nanoos.models.training import parse_model_config
    from aiida_nanoos.potentials.sampling import SamplingSpec
    from aiida_nanoos.potentials.training_config import parse_train_config

    yield "model_training", (), parse_model_config
    yield "potential_training", (), parse_train_config
    yield "campaign", ("config",), CampaignConfig.from_dict
    yield "label", ("sampling",), SamplingSpec.from_dict


def cases():
    for kind, prefix, parse in parsers():
        schema = json_schema(kind)
        for path, sub in bounded_numbers(schema):
            if path[: len(prefix)] != prefix:
                continue
            for value, ok in probes(sub):
                yield pytest.param(kind, prefix, path, parse, value, ok, id=f"{kind}:{'.'.join(path)}={value}")


@pytest.mark.parametrize(("kind", "prefix", "path", "parse", "value", "ok"), list(cases()))
def test_every_bound_of_the_schema_is_the_parsers_bound(kind, prefix, path, parse, value, ok):
    """At an inclusive limit both accept; beyond it (or a fraction for an integer) both refuse, naming the field."""
    inner = path[len(prefix) :]
    data = put(base_config(kind, path), inner, value)
    whole = put({}, prefix, data) if prefix else data
    field = ".".join(path)
    schema_says = [e for e in schema_errors(kind, whole) if e.startswith(field + ":")]
    if ok:
        assert schema_says == []
        parse(data)
        return
    assert schema_says, f"the schema accepts {field} = {value}"
    with pytest.raises(ValueError) as refused:
        parse(data)
    assert field in str(refused.value).replace(": ", "."), str(refused.value)  # 'config.bo: beta' names config.bo.beta


def test_every_default_stated_by_the_schema_satisfies_it():
    checked = []

    def walk(schema: dict, path: str) -> None:
        for key, sub in schema.get("properties", {}).items():
            if "default" in sub:
                rule = {k: v for k, v in sub.items() if k != "default"}
                assert list(jsonschema.Draft7Validator(rule).iter_errors(sub["default"])) == [], f"{path}.{key}"
                checked.append(f"{path}.{key}")
            walk(sub, f"{path}.{key}")

    for kind in schema_kinds():
        walk(json_schema(kind), kind)
    assert {"campaign.config.batch_size", "campaign.config.bo.beta", "potential_training.mace.r_max"} <= set(checked)


def test_the_reference_table_of_a_kind_has_one_row_per_field_with_its_range_and_default():
    from aiida_nanoos.schema import reference_rows

    rows = {row["field"]: row for row in reference_rows("campaign")}
    assert rows["config.external.timeout"] == {
        "field": "config.external.timeout",
        "type": "number",
        "allowed": "(0.0, 3600.0]",
        "default": "60.0",
        "description": "Seconds to wait for an answer.",
    }
    assert rows["config.bo.kernel"]["allowed"] == "matern52, rbf"
    assert rows["config.budget"]["type"] == "integer or null" and rows["config.budget"]["allowed"] == "[1, inf)"
    assert rows["search_space.base_structure"]["type"] == "string or integer or object"
    for kind in schema_kinds():
        assert all(row["description"] for row in reference_rows(kind)), kind
