"""Inputs of the design campaign: splitting and merging an evaluator's nested inputs, the evaluator's builder for a
search space, and the validators that check a whole campaign before anything runs (the earlier campaigns of
``config.warm_start`` included)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from aiida import orm

from aiida_nanoos.design import campaign as cp
from aiida_nanoos.workflows.campaign_warm_start import validate_warm_start
from aiida_nanoos.workflows.evaluators import load_evaluator


def _python(node: orm.Data) -> Any:
    return node.get_dict() if isinstance(node, orm.Dict) else node.value


def plain(value: Any) -> Any:
    """Nested mappings (frozen port namespaces, builders and their namespaces, all public ``Mapping``s) as plain
    dicts without the unset entries (None or empty namespaces); leaves unchanged."""
    if isinstance(value, orm.Node) or not isinstance(value, Mapping):
        return value
    out = {}
    for key, item in value.items():
        item = plain(item)
        if item is None or (isinstance(item, Mapping) and not item):
            continue
        out[key] = item
    return out


def split_inputs(inputs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split nested process inputs into the nodes and the non-stored values (``metadata`` and friends)."""
    nodes: dict[str, Any] = {}
    other: dict[str, Any] = {}
    for key, value in plain(inputs).items():
        if isinstance(value, orm.Node):
            nodes[key] = value
        elif isinstance(value, Mapping) and key != "metadata":
            sub_nodes, sub_other = split_inputs(value)
            if sub_nodes:
                nodes[key] = sub_nodes
            if sub_other:
                other[key] = sub_other
        elif value is not None and value != {}:
            other[key] = value
    return nodes, other


def merge_inputs(nodes: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`split_inputs`."""
    out = {key: (dict(value) if isinstance(value, Mapping) else value) for key, value in nodes.items()}
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_inputs(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def evaluator_builder(
    name: str,
    space_spec: Mapping[str, Any],
    *,
    code: orm.AbstractCode | str | None = None,
    protocol: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    constraints: Mapping[str, Any] | None = None,
    **kwargs: Any,
):
    """The evaluator's builder for every element a candidate of the space can contain (one set of cutoffs for all,
    so energies compare), from its protocol when it has one (DFT evaluators need ``code``)."""
    evaluator = load_evaluator(name)
    if not hasattr(evaluator, "get_builder_from_protocol"):
        return evaluator.get_builder()
    if code is None:
        raise ValueError(f"evaluator {name!r}: needs a code (e.g. pw@localhost)")
    space = cp.load_space(space_spec, constraints)
    template = orm.StructureData(ase=space.base_structure)
    return evaluator.get_builder_from_protocol(
        code,
        elements=cp.space_elements(space),
        template=template,
        protocol=protocol,
        overrides=dict(overrides or {}),
        **kwargs,
    )


# ---------------------------------------------------------------------------------------------- validators
def _validated(call, *args) -> str | None:
    try:
        call(*args)
    except ValueError as error:
        return str(error)
    return None


def validate_search_space(value: orm.Dict | None, _) -> str | None:
    return None if value is None else _validated(cp.load_space, value.get_dict())


def validate_objective(value: orm.Data | None, _) -> str | None:
    return None if value is None else _validated(cp.CampaignObjective.from_spec, _python(value))


def validate_config(value: orm.Dict | None, _) -> str | None:
    return None if value is None else _validated(cp.CampaignConfig.from_dict, value.get_dict())


def validate_constraints(value: orm.Dict | None, _) -> str | None:
    if value is None:
        return None
    constraints = value.get_dict()
    return _validated(cp.apply_constraints, {}, constraints) or _validated(
        cp.CampaignObjective.from_spec, "maximize_bandgap", constraints.get("properties") or ()
    )


def validate_evaluator(value: orm.Str | None, _) -> str | None:
    if value is None:
        return None
    try:
        load_evaluator(value.value)
    except ValueError as error:
        return f"evaluator: {error}"
    return None


def validate_restart(value: orm.Dict | None, _) -> str | None:
    if value is None:
        return None
    try:
        cp.load_state(value.get_dict())
    except (ValueError, TypeError) as error:
        return f"restart_from: not a campaign state ({error})"
    return None


def validate_inputs(inputs: dict, _) -> str | None:
    """The whole campaign before anything runs: space, objective and config together (batch vs pool, algorithm vs
    objectives), the evaluator's inputs against its own spec, and the properties the objective needs."""
    required = ("search_space", "objective", "evaluator")
    if any(key not in inputs for key in required):
        return None
    constraints = inputs["constraints"].get_dict() if "constraints" in inputs else None
    config = inputs["config"].get_dict() if "config" in inputs else {}
    try:
        space, objective, parsed = cp.validate_campaign(
            inputs["search_space"].get_dict(), _python(inputs["objective"]), config, constraints
        )
        placeholder = orm.StructureData(ase=cp.placeholder_atoms(space))
    except ValueError as error:
        return str(error)
    if parsed.cost_aware and objective.multi:
        return "config.cost_aware: needs one objective (improvement per cost of a Pareto search is not defined)"
    refused = validate_warm_start(parsed, space, objective, inputs["search_space"].get_dict())
    if refused:
        return refused
    name = inputs["evaluator"].value
    evaluator = load_evaluator(name)
    provided = getattr(evaluator, "PROPERTIES", None)
    if provided is not None:
        missing = sorted(objective.properties - set(provided))
        if missing:
            return f"objective: needs {missing}, which evaluator {name!r} does not compute (it gives {list(provided)})"
    merged = merge_inputs(
        plain(inputs.get("evaluator_inputs", {})),
        inputs["evaluator_metadata"].get_dict() if "evaluator_metadata" in inputs else {},
    )
    merged.pop("structure", None)
    merged["structure"] = placeholder
    error = evaluator.spec().inputs.validate(merged)
    if error is not None:
        return f"evaluator_inputs: not valid for evaluator {name!r}: {error}"
    if "restart_from" in inputs:
        state = cp.load_state(inputs["restart_from"].get_dict())
        if state.points and len(state.points[0]) != space.n_encoded:
            return "restart_from: the state belongs to a campaign with a different search space"
    return validate_property_model_inputs(inputs, objective, cp.CampaignConfig.from_dict(config))


def validate_property_model_inputs(
    inputs: dict, objective: cp.CampaignObjective, config: cp.CampaignConfig
) -> str | None:
    """The property model exists and predicts the objective's property; training has a code."""
    settings = config.property_model_settings()
    if settings is None:
        if "model_training_code" in inputs:
            return "model_training_code: only used by campaigns with a property model (config.property_model.training)"
        return None
    target = cp.property_model_target(objective, settings)
    if settings.model is not None:
        from aiida_nanoos.data.model import ModelData

        try:
            model = ModelData.find(settings.model, settings.version)
            model.check_target(target)
            if settings.uncertainty_method is not None:
                model.check_method(settings.uncertainty_method)
        except ValueError as error:
            return f"config.property_model.model: {error}"
    if settings.trains and "model_training_code" not in inputs:
        return (
            "model_training_code: required by config.property_model.training (the code of the nanoos.model.train "
            "CalcJob, e.g. nanoos-train-model@localhost)"
        )
    return None
