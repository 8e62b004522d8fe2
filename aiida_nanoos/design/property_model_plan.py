"""The decisions a campaign takes about its property model (the crystal-graph network of ``config.property_model``):
which property it predicts, whether it is due for (re)training and on which DFT labels, how the active-learning
batch is picked from a scored pool, and which candidates of an ``ml_then_dft`` batch go to DFT.

Each returns plain JSON; the campaign's calcfunctions turn them into nodes, so every such decision is in the
provenance graph and the work chain only acts on it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ase import Atoms

from aiida_nanoos.design.config import (
    PROPERTY_MODEL_ALGORITHMS,
    PROPERTY_MODEL_EVALUATION_METHODS,
    CampaignConfig,
    PropertyModelSettings,
)
from aiida_nanoos.design.objectives import CampaignObjective
from aiida_nanoos.design.records import CandidateRecord, cpu_hours_used, n_simulated, paid_evaluations
from aiida_nanoos.design.state import CampaignState


def property_model_target(objective: CampaignObjective, settings: PropertyModelSettings) -> str:
    """The property the model predicts: ``property_model.target`` or the one property of the primary objective."""
    if settings.target is not None:
        return settings.target
    props = sorted(objective.primary.expression.properties)
    if len(props) != 1:
        raise ValueError(
            f"config.property_model.target: the objective depends on {props}; name the property the model predicts"
        )
    return props[0]


def validate_property_model(objective: CampaignObjective, config: CampaignConfig) -> None:
    """What the property model can do for this objective: one objective, a single predicted property, and for ML
    evaluations every property the objective needs."""
    settings = config.property_model_settings()
    used = config.algorithm if config.algorithm in PROPERTY_MODEL_ALGORITHMS else config.evaluation_method
    if objective.multi:
        raise ValueError(f"objective: {used!r} with the property model optimises one objective, not several")
    target = property_model_target(objective, settings)
    if config.evaluation_method in PROPERTY_MODEL_EVALUATION_METHODS:
        missing = sorted(objective.properties - {target})
        if missing:
            raise ValueError(
                f"objective: needs {missing}, which evaluation_method {config.evaluation_method!r} cannot take from "
                f"the property model (it predicts {target!r} only)"
            )
    if (
        config.algorithm in PROPERTY_MODEL_ALGORITHMS
        and settings.strategy == "expected_improvement"
        and objective.primary.target_range is not None
    ):
        raise ValueError(
            "config.property_model.strategy: 'expected_improvement' needs a maximise/minimise objective; use "
            "'greedy_uncertainty' for a target range"
        )


def training_labels(records: Sequence[CandidateRecord], target: str) -> dict[str, dict[str, Any]]:
    """Every DFT label so far: candidate id -> {uuid, value} (successful, simulated, finite target property)."""
    out = {}
    for r in records:
        value = (r.properties or {}).get(target)
        if not r.ok or not r.simulated or isinstance(value, bool) or r.uuid is None:
            continue
        if isinstance(value, int | float) and math.isfinite(value):
            out[r.id] = {"uuid": r.uuid, "value": float(value)}
    return out


def training_due(state: CampaignState, objective: CampaignObjective, config: CampaignConfig) -> str | None:
    """Why the model should be (re)trained before the next iteration, or None: the first model once ``min_labels``
    DFT labels exist, then every ``retrain_every`` iterations and/or after ``retrain_min_new_labels`` new labels
    (never without a new label). The model in use is the one of ``state.property_model``."""
    settings = config.property_model_settings()
    if settings is None or not settings.trains:
        return None
    labels = len(training_labels(state.candidates, property_model_target(objective, settings)))
    if labels < settings.min_labels:
        return None
    book = state.book()
    if book.model_uuid is None:
        return f"first model ({labels} DFT labels)"
    new = labels - book.trained_labels
    if new <= 0:
        return None
    since = state.iteration - book.trained_iteration
    if settings.retrain_every is not None and since >= settings.retrain_every:
        return f"{since} iterations since the last training ({new} new labels)"
    if settings.retrain_min_new_labels is not None and new >= settings.retrain_min_new_labels:
        return f"{new} new DFT labels"
    return None


def trained_model_name(settings: PropertyModelSettings, target: str, current: str | None = None) -> str:
    """Name of the models a campaign trains: ``property_model.name``, else the name of the model in use, else
    ``cgcnn_<target>`` (each training stores the next version of it)."""
    if settings.name:
        return settings.name
    if current:
        return current
    if settings.model:
        return re.sub(r"_v\d+$", "", settings.model)
    return f"cgcnn_{target}"


def training_plan(
    state: CampaignState, objective: CampaignObjective, config: CampaignConfig, current_name: str | None = None
) -> dict[str, Any] | None:
    """The training due before the next iteration (None when none is): ``reason``, ``targets`` (candidate id ->
    DFT value), ``structures`` (candidate id -> UUID), the trainer's ``config`` and the ``index`` of this training."""
    reason = training_due(state, objective, config)
    if reason is None:
        return None
    settings = config.property_model_settings()
    target = property_model_target(objective, settings)
    labels = training_labels(state.candidates, target)
    n_trainings = state.book().n_trainings
    name = trained_model_name(settings, target, current_name or state.book().model_name)
    return {
        "reason": reason,
        "index": n_trainings + 1,
        "targets": {cid: entry["value"] for cid, entry in sorted(labels.items())},
        "structures": {cid: entry["uuid"] for cid, entry in sorted(labels.items())},
        "config": settings.training_config(target, name, seed=config.seed + n_trainings),
    }


def prediction_settings(objective: CampaignObjective, config: CampaignConfig, embeddings: bool = False) -> dict:
    """Settings of ``predict_with_uncertainty`` for this campaign (embeddings for ``diverse_uncertainty``)."""
    settings = config.property_model_settings()
    values: dict[str, Any] = {
        "target": property_model_target(objective, settings),
        "n_samples": settings.n_samples,
        "seed": config.seed,
        "store_samples": False,
    }
    if settings.uncertainty_method is not None:
        values["method"] = settings.uncertainty_method
    if embeddings:
        values["store_embeddings"] = True
    return values


def _best_label(state: CampaignState, objective: CampaignObjective, target: str) -> float | None:
    values = [v["value"] for v in training_labels(state.candidates, target).values()]
    if not values:
        return None
    return max(values) if objective.primary.maximize else min(values)


def selection_settings(state: CampaignState, objective: CampaignObjective, config: CampaignConfig, n: int) -> dict:
    """Settings of ``select_for_simulation`` for an active-learning batch of ``n``: the strategy pointed at the
    objective (maximise / minimise: direction; target range: its centre for ``greedy_uncertainty``)."""
    settings = config.property_model_settings()
    target = property_model_target(objective, settings)
    primary = objective.primary
    out: dict[str, Any] = {
        "strategy": settings.strategy,
        "budget": int(n),
        "exploration_weight": settings.exploration_weight,
        "direction": "max" if primary.maximize else "min",
    }
    if primary.target_range is not None:
        out["target_value"] = 0.5 * (primary.target_range[0] + primary.target_range[1])
    if settings.strategy == "expected_improvement":
        best = _best_label(state, objective, target)
        if best is None:  # a pre-trained model and no label yet: nothing to improve on, explore instead
            out["strategy"] = "uncertainty"
        else:
            out["best_observed"] = best
    return out


def budget_left(state: CampaignState, config: CampaignConfig) -> int | None:
    """DFT evaluations still allowed (None without a budget)."""
    if config.budget is None:
        return None
    return max(0, config.budget - n_simulated(state.candidates))


def ml_then_dft_settings(
    state: CampaignState,
    config: CampaignConfig,
    n: int,
    *,
    objective: CampaignObjective | None = None,
    cells: Mapping[str, Atoms] | None = None,
) -> dict[str, Any]:
    """Settings of ``select_for_simulation`` choosing which of an ``ml_then_dft`` batch of ``n`` go to DFT (by total
    sigma, the honest error bar of the value a candidate would otherwise keep), within the DFT budget.

    ``dft_trigger: value_per_cost`` needs the ``objective`` and the ``cells`` of the batch (candidate id -> atoms):
    see :func:`_value_per_cost_settings`."""
    settings = config.property_model_settings()
    if settings.dft_trigger == "value_per_cost":
        if objective is None or cells is None:
            raise ValueError("dft_trigger value_per_cost: the objective and the batch's cells are needed")
        out = _value_per_cost_settings(state, objective, config, n, cells)
    else:
        cap = n if settings.dft_fraction is None else int(math.ceil(settings.dft_fraction * n - 1e-9))
        out = {"strategy": "uncertainty", "budget": int(cap), "uncertainty": "total"}
    if settings.dft_trigger == "uncertainty":
        out["min_uncertainty"] = settings.uncertainty_threshold
        out["confidence_threshold"] = settings.uncertainty_threshold
    if config.budget is not None:
        out["simulation_budget"] = {"total": config.budget, "used": config.budget - budget_left(state, config)}
    return out


def _value_per_cost_settings(
    state: CampaignState,
    objective: CampaignObjective,
    config: CampaignConfig,
    n: int,
    cells: Mapping[str, Atoms],
) -> dict[str, Any]:
    """The fidelity choice of :mod:`aiida_nanoos.acquisition.fidelity`: a DFT label is worth its expected gain over
    the ``top_n``-th best DFT label of the model's target (the probability of the target window for a window), per
    predicted CPU cost (the cost model fitted to the evaluations paid so far, else the DFT prior) raised to an exponent
    cooling from 1 to 0 as ``budget_cpu_hours`` is spent; the batch may spend ``dft_fraction`` of its DFT cost."""
    from aiida_nanoos.acquisition.fidelity import reference_value
    from aiida_nanoos.design.cost import cooling_exponent, cost_features, predicted_costs

    settings = config.property_model_settings()
    primary = objective.primary
    ids = sorted(cells)
    features = np.asarray([cost_features(len(cells[i]), cells[i].cell.array) for i in ids], dtype=float)
    cost, _ = predicted_costs(*paid_evaluations(state.candidates), features)
    exponent = 1.0
    if config.budget_cpu_hours:
        exponent = cooling_exponent(cpu_hours_used(state.candidates), config.budget_cpu_hours)
    out: dict[str, Any] = {
        "strategy": "value_per_cost",
        "budget": int(n),
        "uncertainty": "total",
        "direction": "max" if primary.maximize else "min",
        "cost_share": float(settings.dft_fraction),
        "cost_exponent": float(exponent),
        "costs": {i: float(c) for i, c in zip(ids, cost, strict=True)},
    }
    if primary.target_range is not None:
        out["target_range"] = [float(v) for v in primary.target_range]
    else:
        labels = [
            v["value"] for v in training_labels(state.candidates, property_model_target(objective, settings)).values()
        ]
        reference = reference_value(labels, config.top_n, maximize=primary.maximize)
        if reference is not None:
            out["best_observed"] = reference
    return out


def ml_properties(target: str, value: float, uncertainty: float, model: str | None) -> dict[str, Any]:
    """The properties of a candidate the property model evaluated (recorded like an evaluator's)."""
    return {target: float(value), "uncertainty": float(uncertainty), "source": "ml", "model": model}
