"""Bookkeeping of one design-campaign iteration, and the campaign core's public API in one import.

The campaign's memory is one :class:`~aiida_nanoos.design.state.CampaignState` (typed; plain JSON as an AiiDA
``Dict`` per step) holding one :class:`~aiida_nanoos.design.records.CandidateRecord` per candidate. Proposals come
from :mod:`.proposers`; :func:`record_results` records an evaluated batch, ranks it, checks convergence and returns
the iteration summary. The rest lives by meaning: :mod:`.config` (configuration), :mod:`.definition` (space,
objective and configuration validated together), :mod:`.records` (records and ranking), :mod:`.statistics`
(trend, convergence, Pareto front, statistics), :mod:`.property_model_plan` (the property model's decisions).

Every function is deterministic in its inputs, so a campaign that is stopped and resumed from any stored state
makes exactly the decisions it would have made without the interruption.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ase import Atoms

from aiida_nanoos.common.jsonsafe import json_safe
from aiida_nanoos.design.config import (
    ALGORITHMS,
    EVALUATION_METHODS,
    CampaignConfig,
    PropertyModelSettings,
    renamed_config_keys,
)
from aiida_nanoos.design.cost import cost_features
from aiida_nanoos.design.definition import (
    apply_constraints,
    count_points,
    enumerate_points,
    load_space,
    placeholder_atoms,
    representation,
    space_elements,
    validate_campaign,
)
from aiida_nanoos.design.geometry import MIN_INTERATOMIC_DISTANCE, overlapping_atoms
from aiida_nanoos.design.objectives import CampaignObjective
from aiida_nanoos.design.property_model_plan import (
    budget_left,
    ml_properties,
    ml_then_dft_settings,
    prediction_settings,
    property_model_target,
    selection_settings,
    trained_model_name,
    training_due,
    training_labels,
    training_plan,
)
from aiida_nanoos.design.records import (
    CandidateRecord,
    best_candidates,
    best_value,
    candidate_atoms,
    candidate_id,
    cpu_hours_used,
    formula,
    history,
    n_simulated,
    rank_records,
    table_row,
)
from aiida_nanoos.design.spaces import ParameterSpace
from aiida_nanoos.design.state import CampaignState
from aiida_nanoos.design.statistics import (
    check_convergence,
    convergence_trend,
    pareto_records,
    reference_point,
    statistics,
)


def dump_state(state: CampaignState) -> dict[str, Any]:
    """The state as database-safe JSON (NaN -> None; see :func:`load_state`)."""
    return json_safe(state.to_dict())


def load_state(data: Mapping[str, Any]) -> CampaignState:
    """Inverse of :func:`dump_state`; also reads a state stored by the previous version."""
    return CampaignState.from_dict(data)


def new_state(config: CampaignConfig) -> CampaignState:
    return CampaignState(seed=config.seed, algorithm=config.algorithm)


def encoded_point(space: ParameterSpace, parameters: Mapping[str, Any] | None) -> list[float]:
    """Encoded parameters, or NaN when a candidate has none (a structure from the GA or an external agent)."""
    if parameters is None:
        return [float("nan")] * space.n_encoded
    return space.encode(parameters)[0].tolist()


def _is_json_scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _evaluate(record: CandidateRecord, objective: CampaignObjective, properties: Mapping[str, Any]) -> None:
    record.properties = {k: v for k, v in dict(properties).items() if _is_json_scalar(v)}
    try:
        result = objective.evaluate(record.properties)
    except ValueError as exc:
        record.status, record.error, record.value = "failed", str(exc), None
        return
    record.status = "ok"
    record.raw, record.objectives, record.margins = result["raw"], result["values"], result["margins"]
    record.feasible, record.value = result["feasible"], result["values"][0]


def refuse_unphysical(
    candidates: Sequence[tuple[CandidateRecord, Atoms | None]], min_distance: float = MIN_INTERATOMIC_DISTANCE
) -> dict[str, str]:
    """Mark the proposed candidates that must not reach an evaluator (overlapping atoms): their ``error`` is set
    while still pending, :func:`record_results` records them as failed with it. Returns ``{id: reason}``."""
    refused = {}
    for record, atoms in candidates:
        reason = overlapping_atoms(atoms, min_distance) if atoms is not None else None
        if reason:
            record.error = reason
            refused[record.id] = reason
    return refused


def stopping_reason(state: CampaignState, objective: CampaignObjective, config: CampaignConfig) -> str | None:
    """Why the campaign should stop now: the criteria of :func:`check_convergence`, and the CPU hours of
    ``config.budget_cpu_hours`` (after a target reached or the evaluation budget, before the iteration limit)."""
    reason = check_convergence(state, objective, config)
    if reason in (None, "max_iterations", "no_improvement") and config.criteria(objective.maximize).cpu_budget_spent(
        cpu_hours_used(state.candidates)
    ):
        return "cpu_budget_exhausted"
    return reason


def evaluation_cost(space: ParameterSpace, record: CandidateRecord, paid: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the evaluation of ``record`` used (``paid``: wall and CPU seconds its evaluator reported) and the cost
    features of its cell (atoms, k-points), the data of the cost model of cost-aware selection."""
    cost = {key: float(value) for key, value in dict(paid or {}).items() if isinstance(value, int | float)}
    try:
        atoms = candidate_atoms(space, record)
    except ValueError:  # a point of a space without a structure: no cell to cost
        return cost
    n_atoms, n_kpoints = cost_features(len(atoms), atoms.cell.array)
    return {**cost, "n_atoms": int(n_atoms), "n_kpoints": int(n_kpoints)}


def record_results(
    state: CampaignState,
    space: ParameterSpace,
    objective: CampaignObjective,
    config: CampaignConfig,
    properties: Mapping[str, Mapping[str, Any]],
    failures: Mapping[str, str],
    elapsed: Mapping[str, float] | None = None,
    property_model: Mapping[str, Any] | None = None,
    costs: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Record the evaluated batch (``properties`` by candidate id; ``failures`` id -> reason) and return the
    iteration summary. A candidate whose evaluation failed, or whose properties cannot give the objective (a
    property missing, a formula dividing by zero), is kept as failed (value ``None``) and the campaign goes on.

    ``property_model`` (campaigns with a property model) holds what the model did this iteration: ``candidates``
    (id -> source 'dft' or 'ml', prediction, uncertainty, reason), ``model`` / ``model_uuid`` / ``model_name`` in
    use, ``retrained``, ``training_labels``, ``pool_size``, ``pool_mean_uncertainty``, ``information_gain``; it is
    kept in ``state.property_model`` and summarised as the per-iteration statistics. ``costs`` (id -> wall_seconds,
    cpu_seconds) is what each evaluation used, kept in the candidate's record (``cost``) and counted against
    ``config.budget_cpu_hours``."""
    iteration = state.iteration
    info = dict(property_model or {})
    per_candidate = dict(info.get("candidates") or {})
    records, points, values = [], [], []
    for record in state.pending:
        about = dict(per_candidate.get(record.id) or {})
        if about:
            record.source = about.get("source") or "dft"
            if about.get("prediction") is not None:
                record.prediction = {
                    "value": about.get("prediction"),
                    "uncertainty": about.get("uncertainty"),
                    "model": info.get("model"),
                }
            record.selection_reason = about.get("reason") or None
        if record.error:  # refused before evaluation (see refuse_unphysical): nothing it was given counts
            record.status, record.value = "failed", None
        elif record.id in properties:
            _evaluate(record, objective, properties[record.id])
        else:
            record.status, record.value = "failed", None
            record.error = str(failures.get(record.id, "no evaluation result"))
        record.cost = evaluation_cost(space, record, (costs or {}).get(record.id)) if record.simulated else None
        records.append(record)
        points.append(encoded_point(space, record.parameters))
        values.append(record.value)
    if records:
        state.record(np.asarray(points, dtype=float).reshape(len(records), space.n_encoded), values)
    else:
        state.iteration += 1
    state.candidates.extend(records)
    state.pending = []
    if objective.multi and state.reference_point is None:
        # fixed once the first feasible candidates are in, so hypervolumes of all iterations compare
        state.reference_point = reference_point(state.candidates, objective, config)
    trend = convergence_trend(state, objective, config)
    reason = stopping_reason(state, objective, config)
    state.converged = reason
    ranked = rank_records(records, objective)
    summary = {
        "iteration": iteration + 1,
        "candidates_evaluated": len(records),
        "failed": sum(r.status == "failed" for r in records),
        "best_objective_value": best_value(records, objective),
        "best_so_far": trend[-1] if trend and math.isfinite(trend[-1]) else None,
        "metric": "hypervolume" if objective.multi else objective.primary.name,
        "budget_used": n_simulated(state.candidates),
        "cpu_hours_used": cpu_hours_used(state.candidates),
        "iteration_cpu_seconds": sum(float((r.cost or {}).get("cpu_seconds") or 0.0) for r in records),
        "converged": reason,
        "candidates": [table_row(r, rank) for rank, r in enumerate(ranked, start=1)],
        "elapsed": dict(elapsed or {}),
    }
    if config.uses_property_model:
        summary.update(_property_model_summary(state, config, records, info, iteration))
    return summary


def _property_model_summary(
    state: CampaignState,
    config: CampaignConfig,
    records: Sequence[CandidateRecord],
    info: Mapping[str, Any],
    iteration: int,
) -> dict[str, Any]:
    """Per-iteration statistics of the property model; also updates its bookkeeping in the state."""
    sigmas = [
        float(r.prediction["uncertainty"])
        for r in records
        if r.prediction and r.prediction.get("uncertainty") is not None
    ]
    simulated = sum(1 for r in records if r.simulated)
    stats = {
        "model": info.get("model"),
        "retrained": bool(info.get("retrained")),
        "training_labels": info.get("training_labels"),
        "candidates_scored": int(info.get("pool_size") or 0),
        "candidates_ml_predicted": len(records) - simulated,
        "candidates_simulated": simulated,
        "budget_remaining": budget_left(state, config),
        "mean_uncertainty": float(np.mean(sigmas)) if sigmas else None,
        "pool_mean_uncertainty": info.get("pool_mean_uncertainty"),
        "information_gain": info.get("information_gain"),
    }
    book = state.book()
    if info.get("model_uuid") and info.get("model_uuid") != book.model_uuid:
        book.models.append(info.get("model"))
    if info.get("model_uuid"):
        book.model_uuid, book.model = info["model_uuid"], info.get("model")
        book.model_name = info.get("model_name") or book.model_name
    if info.get("retrained"):
        book.trained_iteration = iteration
        book.trained_labels = int(info.get("training_labels") or 0)
        book.n_trainings += 1
    book.iterations.append({"iteration": iteration + 1, **stats})
    return stats


__all__ = [
    "ALGORITHMS",
    "EVALUATION_METHODS",
    "CampaignConfig",
    "CampaignObjective",
    "CampaignState",
    "CandidateRecord",
    "PropertyModelSettings",
    "apply_constraints",
    "best_candidates",
    "budget_left",
    "candidate_atoms",
    "candidate_id",
    "check_convergence",
    "convergence_trend",
    "count_points",
    "cpu_hours_used",
    "dump_state",
    "enumerate_points",
    "formula",
    "history",
    "json_safe",
    "load_space",
    "load_state",
    "ml_properties",
    "ml_then_dft_settings",
    "n_simulated",
    "new_state",
    "pareto_records",
    "placeholder_atoms",
    "prediction_settings",
    "property_model_target",
    "rank_records",
    "record_results",
    "reference_point",
    "refuse_unphysical",
    "renamed_config_keys",
    "representation",
    "selection_settings",
    "space_elements",
    "statistics",
    "stopping_reason",
    "trained_model_name",
    "training_due",
    "training_labels",
    "training_plan",
    "validate_campaign",
]
