"""Calcfunctions around the crystal-graph property model: prediction with uncertainty, and what to simulate.

Thin wrappers around the core (:meth:`CrystalGraphModel.predict_with_uncertainty`,
:func:`aiida_nanoos.acquisition.selection.select_for_simulation`), so that each screening step is one node in the
provenance graph: a batch of thousands of candidates goes in as one :class:`StructureBatchData` (or, for a few
candidates a campaign already holds as nodes, as a namespace ``candidates`` of StructureData) and comes out as one
ArrayData with arrays over the candidates. Bad input (empty batch, element without features, a property the model
was not trained on, an uncertainty method it cannot run) is refused by the input validators, before any work.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from aiida import orm
from aiida.engine import calcfunction

from aiida_nanoos.data.model import ModelData
from aiida_nanoos.data.structure_batch import StructureBatchData

#: Settings of :func:`predict_with_uncertainty` and their defaults.
PREDICT_DEFAULTS = {
    "target": None,  # the property wanted: refused if the model predicts another
    "method": None,  # 'ensemble' or 'mc_dropout' (default: the model's)
    "n_samples": 30,  # MC-dropout passes
    "seed": 0,
    "batch_size": 512,
    "allow_unseen_elements": True,  # False: refuse elements absent from the training data
    "store_samples": True,  # keep the raw per-sample predictions (n_samples x n float32)
    "store_embeddings": False,  # keep pooled graph embeddings (needed by diverse_uncertainty)
}
#: Settings of :func:`select_for_simulation` besides the ActiveLearningConfig fields.
SELECT_EXTRA = ("best_observed", "exclude", "simulation_budget", "uncertainty", "costs")


def predict_settings(settings: orm.Dict | dict | None) -> dict:
    """Settings with defaults filled in; unknown keys raise a ValueError naming them."""
    values = settings.get_dict() if isinstance(settings, orm.Dict) else dict(settings or {})
    unknown = sorted(set(values) - set(PREDICT_DEFAULTS))
    if unknown:
        raise ValueError(f"settings: unknown key(s) {unknown}; known: {sorted(PREDICT_DEFAULTS)}")
    merged = {**PREDICT_DEFAULTS, **values}
    if not isinstance(merged["n_samples"], int) or merged["n_samples"] < 2:
        raise ValueError("settings.n_samples must be an integer >= 2")
    if not isinstance(merged["batch_size"], int) or merged["batch_size"] < 1:
        raise ValueError("settings.batch_size must be a positive integer")
    return merged


def _candidate_nodes(candidates: dict) -> dict[str, orm.StructureData]:
    """Flatten the dynamic ``candidates`` namespace (label -> StructureData)."""
    flat = {}
    for key, value in candidates.items():
        if isinstance(value, Mapping):
            flat.update(_candidate_nodes(value))
        else:
            flat[key] = value
    return flat


def check_prediction_inputs(
    model: ModelData, structures: StructureBatchData | None, candidates: dict, settings: orm.Dict | dict | None
) -> dict:
    """Everything that can be refused without featurising or predicting; returns the parsed settings.

    Reads only attributes: the batch's element list, the StructureData kinds, the model's target and methods.
    """
    from aiida_nanoos.models.graph import check_atomic_numbers

    parsed = predict_settings(settings)
    model.check_target(parsed["target"])
    parsed["method"] = model.check_method(parsed["method"])
    nodes = _candidate_nodes(candidates)
    bad = sorted(label for label, node in nodes.items() if not isinstance(node, orm.StructureData))
    if bad:
        raise ValueError(f"candidates {bad[:5]} are not StructureData")
    if structures is not None and nodes:
        raise ValueError("give either `structures` (one batch node) or `candidates` (StructureData), not both")
    if structures is None and not nodes:
        raise ValueError("empty batch: no structures given")
    if structures is not None:
        if not structures.n_structures:
            raise ValueError("empty batch: no structures given")
        numbers = structures.atomic_numbers
    else:
        from ase.data import atomic_numbers

        symbols = {symbol for node in nodes.values() for symbol in node.get_symbols_set()}
        unknown = sorted(s for s in symbols if s not in atomic_numbers)
        if unknown:
            raise ValueError(f"no element features for {', '.join(unknown)}: only H..Pu are supported")
        numbers = [atomic_numbers[s] for s in symbols]
    try:
        check_atomic_numbers(numbers)
    except ValueError as error:
        raise ValueError(f"model `{model.full_name}`: {error}") from error
    if not parsed["allow_unseen_elements"]:
        from ase.data import chemical_symbols

        unseen = sorted({chemical_symbols[z] for z in numbers} - set(model.elements))
        if unseen:
            raise ValueError(
                f"model `{model.full_name}` was trained on {', '.join(model.elements)}; not on {', '.join(unseen)} "
                "(set allow_unseen_elements to predict anyway)"
            )
    return parsed


def _validate_predict(inputs: dict, _) -> str | None:
    model = inputs.get("model")
    if model is None:
        return None
    candidates = {
        key: value for key, value in inputs.items() if key not in ("model", "structures", "settings", "metadata")
    }
    try:
        check_prediction_inputs(model, inputs.get("structures"), candidates, inputs.get("settings"))
    except ValueError as error:
        return str(error)
    return None


@calcfunction
def predict_with_uncertainty(
    model: ModelData,
    structures: StructureBatchData | None = None,
    settings: orm.Dict | None = None,
    **candidates,
) -> orm.ArrayData:
    """Predict ``model.target`` with a standard deviation for a whole batch: one output node, arrays inside.

    Pass the batch either as ``structures`` (one StructureBatchData, for thousands of candidates) or as
    ``candidates={label: StructureData}`` (a campaign's candidate nodes, each linked in the graph). The output
    ArrayData holds ``labels``, ``prediction``, ``uncertainty`` (recalibrated sigma), ``raw_uncertainty``,
    ``epistemic_uncertainty``, ``aleatoric_uncertainty``, ``model_agreement``, ``n_atoms``,
    ``unseen_element`` (bool: an element absent from the training data), optionally ``predictions_raw``
    (samples x candidates) and ``embeddings``; attributes name the model, target, method and recalibration.
    """
    parsed = check_prediction_inputs(model, structures, candidates, settings)
    if structures is not None:
        atoms_list, labels = structures.get_atoms(), structures.labels
    else:
        nodes = _candidate_nodes(candidates)
        labels = sorted(nodes)
        atoms_list = [nodes[label].get_ase() for label in labels]
    network = model.load_model()
    data = network.featurise(atoms_list)
    result = network.predict_with_uncertainty(
        data,
        method=parsed["method"],
        n_samples=parsed["n_samples"],
        batch_size=parsed["batch_size"],
        seed=parsed["seed"],
    )
    trained = np.zeros(max(max(network.training_elements, default=0), int(data.atomic_numbers.max())) + 1, bool)
    trained[list(network.training_elements)] = True
    unseen_atom = (
        ~trained[data.atomic_numbers] if network.training_elements else np.zeros(len(data.atomic_numbers), bool)
    )
    unseen = np.add.reduceat(unseen_atom.astype(np.int64), data.atom_offsets[:-1]) > 0

    output = orm.ArrayData()
    output.set_array("labels", np.asarray(labels, dtype=str))
    for key in (
        "prediction",
        "uncertainty",
        "raw_uncertainty",
        "epistemic_uncertainty",
        "aleatoric_uncertainty",
        "model_agreement",
    ):
        output.set_array(key, np.asarray(getattr(result, key), float))
    output.set_array("n_atoms", np.asarray(data.n_atoms, np.int64))
    output.set_array("unseen_element", unseen)
    if parsed["store_samples"]:
        output.set_array("predictions_raw", result.predictions_raw.astype(np.float32))
    if parsed["store_embeddings"]:
        output.set_array("embeddings", network.embed(data, batch_size=parsed["batch_size"]).astype(np.float32))
    output.base.attributes.set_many(
        {
            "model": model.full_name,
            "model_uuid": model.uuid,
            "target": result.target,
            "method": result.method,
            "n_samples": int(result.predictions_raw.shape[0]),
            "n_candidates": len(labels),
            "n_unseen_element": int(unseen.sum()),
            "agreement_tolerance": float(result.agreement_tolerance),
            "recalibration": dict(result.recalibration),
            "mean_uncertainty": float(np.mean(result.uncertainty)),
        }
    )
    return output


predict_with_uncertainty.spec().inputs.validator = _validate_predict


# ---------------------------------------------------------------------------------------------- selection
def select_settings(settings: orm.Dict | dict | None) -> tuple:
    """(ActiveLearningConfig, extras) from the settings; unknown keys raise a ValueError naming them."""
    from dataclasses import fields

    from aiida_nanoos.acquisition.selection import ActiveLearningConfig, SimulationBudget

    values = settings.get_dict() if isinstance(settings, orm.Dict) else dict(settings or {})
    known = {f.name for f in fields(ActiveLearningConfig)}
    unknown = sorted(set(values) - known - set(SELECT_EXTRA))
    if unknown:
        raise ValueError(f"settings: unknown key(s) {unknown}; known: {sorted(known | set(SELECT_EXTRA))}")
    config = ActiveLearningConfig(**{key: values[key] for key in known if key in values})
    extras = {key: values.get(key) for key in SELECT_EXTRA}
    extras["uncertainty"] = extras["uncertainty"] or "epistemic"
    if extras["uncertainty"] not in ("epistemic", "total"):
        raise ValueError("settings.uncertainty must be 'epistemic' (exploration, default) or 'total'")
    if extras["simulation_budget"] is not None:
        SimulationBudget.from_dict(extras["simulation_budget"])  # refuse a malformed budget now
    costs = extras["costs"]
    if costs is not None and (
        not isinstance(costs, dict)
        or not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in costs.values())
    ):
        raise ValueError("settings.costs must map each candidate label to its predicted cost, a positive number")
    if config.strategy == "value_per_cost" and costs is None:
        raise ValueError("settings.costs: required by strategy value_per_cost (label -> predicted cost)")
    return config, extras


def _validate_select(inputs: dict, _) -> str | None:
    prediction = inputs.get("prediction")
    try:
        config, _extras = select_settings(inputs.get("settings"))
    except (TypeError, ValueError) as error:
        return str(error)
    if prediction is None:
        return None
    names = set(prediction.get_arraynames())
    missing = sorted({"labels", "prediction", "uncertainty"} - names)
    if missing:
        return f"prediction lacks the array(s) {missing}: pass the output of predict_with_uncertainty"
    if config.strategy == "diverse_uncertainty" and "embeddings" not in names:
        return "diverse_uncertainty needs embeddings: predict with settings store_embeddings=True"
    return None


@calcfunction
def select_for_simulation(prediction: orm.ArrayData, settings: orm.Dict | None = None) -> orm.Dict:
    """Which candidates of a prediction deserve a simulation (:func:`acquisition.selection.select_for_simulation`).

    Settings: the :class:`ActiveLearningConfig` fields (``strategy``, ``budget``, ``min_uncertainty``,
    ``exploration_weight``, ``target_value``, ``direction``, ``xi``, ``diversity_pool_factor``,
    ``confidence_threshold``) plus ``best_observed``, ``exclude`` (labels already labelled or running),
    ``simulation_budget`` (``{"total": N, "used": M}``: the campaign-wide cap, returned debited),
    ``uncertainty`` (``epistemic``, default, or ``total`` sigma) and ``costs`` (label -> predicted cost of simulating
    it; required by ``value_per_cost``, with ``cost_share``, ``cost_exponent``, ``target_range``). Returns the
    selection with ``selected_labels``, a reason and confidence class per chosen candidate, and the budget state.
    """
    from aiida_nanoos.acquisition.selection import SimulationBudget
    from aiida_nanoos.acquisition.selection import select_for_simulation as select

    config, extras = select_settings(settings)
    labels = prediction.get_array("labels").tolist()
    names = set(prediction.get_arraynames())
    key = (
        "epistemic_uncertainty"
        if extras["uncertainty"] == "epistemic" and "epistemic_uncertainty" in names
        else "uncertainty"
    )
    exclude = set(extras["exclude"] or ())
    unknown = sorted(exclude - set(labels))
    if unknown:
        raise ValueError(f"exclude names labels not in the prediction: {unknown[:5]}")
    budget = SimulationBudget.from_dict(extras["simulation_budget"]) if extras["simulation_budget"] else None
    costs = None
    if extras["costs"] is not None:
        missing = sorted(set(labels) - set(extras["costs"]))
        if missing:
            raise ValueError(f"settings.costs has no predicted cost for {missing[:5]}")
        costs = [float(extras["costs"][label]) for label in labels]
    result = select(
        prediction.get_array("prediction"),
        prediction.get_array(key),
        config,
        best_observed=extras["best_observed"],
        embeddings=prediction.get_array("embeddings") if "embeddings" in names else None,
        exclude=[i for i, label in enumerate(labels) if label in exclude],
        identifiers=labels,
        budget=budget,
        costs=costs,
    )
    summary = result.to_dict()
    summary["selected_labels"] = [labels[i] for i in result.indices]
    summary["uncertainty_used"] = key
    attributes = prediction.base.attributes.all
    summary["prediction_attributes"] = {k: attributes[k] for k in ("model", "target", "method") if k in attributes}
    return orm.Dict(summary)


select_for_simulation.spec().inputs.validator = _validate_select

__all__ = ["check_prediction_inputs", "predict_settings", "predict_with_uncertainty", "select_for_simulation"]
