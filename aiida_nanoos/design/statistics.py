"""What a campaign's history says: the convergence trend (best value, or hypervolume, after each iteration), whether
to stop, the hypervolume reference point, the Pareto front and the campaign statistics."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from aiida_nanoos.acquisition.hypervolume import hypervolume
from aiida_nanoos.design.config import CampaignConfig
from aiida_nanoos.design.convergence import ConvergenceCriteria
from aiida_nanoos.design.objectives import CampaignObjective
from aiida_nanoos.design.pareto import pareto_mask
from aiida_nanoos.design.property_model_plan import budget_left
from aiida_nanoos.design.records import CandidateRecord, best_value, n_simulated, scores
from aiida_nanoos.design.state import CampaignState


def reference_point(
    records: Sequence[CandidateRecord],
    objective: CampaignObjective,
    config: CampaignConfig,
    stored: Sequence[float] | None = None,
) -> list[float] | None:
    """Hypervolume reference (in the objectives' own directions): the configured one, else the one ``stored`` in
    the state, else 10 % beyond the worst feasible value of each objective in ``records``."""
    if config.reference_point is not None:
        return [float(x) for x in config.reference_point]
    if stored is not None:
        return [float(x) for x in stored]
    good = [r for r in records if r.good]
    if not good:
        return None
    S = scores(good, objective)
    worst, span = S.min(axis=0), np.ptp(S, axis=0)
    ref = worst - 0.1 * np.where(span > 0, span, 1.0)
    sign = np.array([1.0 if o.maximize else -1.0 for o in objective.objectives])
    return (ref * sign).tolist()


def convergence_trend(state: CampaignState, objective: CampaignObjective, config: CampaignConfig) -> list[float]:
    """Best value so far after each iteration (one objective) or hypervolume of the feasible front (several);
    NaN until something feasible has been found."""
    records = state.candidates
    if not objective.multi:
        sign = 1.0 if objective.primary.maximize else -1.0
        best, out = -np.inf, []
        for k in range(state.iteration):
            feasible = [sign * r.objectives[0] for r in records if r.iteration == k and r.good]
            best = max([best, *feasible])
            out.append(float(sign * best) if np.isfinite(best) else float("nan"))
        return out
    ref = reference_point(records, objective, config, state.reference_point)
    out = []
    for k in range(state.iteration):
        upto = [r for r in records if r.iteration <= k and r.good]
        if not upto or ref is None:
            out.append(float("nan"))
            continue
        Y = np.asarray([r.objectives for r in upto], dtype=float)
        out.append(float(hypervolume(Y, ref, objective.directions)))
    return out


def check_convergence(state: CampaignState, objective: CampaignObjective, config: CampaignConfig) -> str | None:
    """Why the campaign should stop now (target_reached, budget_exhausted, max_iterations, no_improvement) or None.

    The criteria see, per iteration, the feasible values (one objective) or the hypervolume so far repeated once per
    evaluation (several objectives), with NaN for failed or infeasible candidates, so budgets count every paid
    evaluation.
    """
    records = state.candidates
    per_iteration: list[list[float]] = [[] for _ in range(state.iteration)]
    if objective.multi:
        trend = convergence_trend(state, objective, config)
        for r in records:
            per_iteration[r.iteration].append(trend[r.iteration] if r.good else float("nan"))
        criteria = config.criteria(True)
        if config.target is not None:  # a target is a value of the objective, not of the hypervolume
            criteria = ConvergenceCriteria(**{**criteria.to_dict(), "target": None})
    else:
        for r in records:
            per_iteration[r.iteration].append(float(r.objectives[0]) if r.good else float("nan"))
        criteria = config.criteria(objective.primary.maximize)
    if config.evaluation_method == "dft" or config.budget is None:
        return criteria.check(per_iteration)
    # the budget of an ML or ml_then_dft campaign counts DFT simulations, not every (ML-)evaluated candidate
    reason = ConvergenceCriteria(**{**criteria.to_dict(), "budget": None}).check(per_iteration)
    if reason != "target_reached" and n_simulated(records) >= config.budget:
        return "budget_exhausted"
    return reason


def pareto_records(
    records: Sequence[CandidateRecord],
    objective: CampaignObjective,
    config: CampaignConfig,
    stored_reference: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The feasible non-dominated candidates and the hypervolume they dominate."""
    good = [r for r in records if r.good]
    ref = reference_point(records, objective, config, stored_reference)
    if not good:
        return {"directions": objective.directions, "members": [], "hypervolume": 0.0, "reference_point": ref}
    Y = np.asarray([r.objectives for r in good], dtype=float)
    mask = pareto_mask(Y, objective.directions)
    members = [
        {"id": r.id, "uuid": r.uuid, "formula": r.formula, "objectives": r.objectives}
        for r, m in zip(good, mask, strict=True)
        if m
    ]
    members.sort(key=lambda m: m["objectives"][0], reverse=objective.primary.maximize)
    return {
        "directions": objective.directions,
        "names": [o.name for o in objective.objectives],
        "members": members,
        "hypervolume": float(hypervolume(Y, ref, objective.directions)) if ref is not None else 0.0,
        "reference_point": ref,
    }


def statistics(
    state: CampaignState,
    objective: CampaignObjective,
    config: CampaignConfig,
    iteration_times: Sequence[float] = (),
) -> dict[str, Any]:
    """Campaign statistics: budget used, evaluations and failures, best per iteration, convergence trend."""
    records = state.candidates
    best_per_iteration = [
        best_value([r for r in records if r.iteration == k], objective) for k in range(state.iteration)
    ]
    methods: dict[str, int] = {}
    for r in records:
        key = str(r.generation_method)
        methods[key] = methods.get(key, 0) + 1
    trend = convergence_trend(state, objective, config)
    out = {
        "iterations": state.iteration,
        "total_candidates_evaluated": len(records),
        "failed_evaluations": sum(r.status == "failed" for r in records),
        "infeasible_candidates": sum(r.ok and not r.feasible for r in records),
        "budget": config.budget,
        "budget_used": n_simulated(records),
        "best_objective_value": trend[-1] if trend and math.isfinite(trend[-1]) else None,
        "metric": "hypervolume" if objective.multi else objective.primary.name,
        "best_per_iteration": best_per_iteration,
        "convergence_trend": [None if not math.isfinite(v) else v for v in trend],
        "convergence_reason": state.converged,
        "generation_methods": methods,
        "iteration_times": [float(t) for t in iteration_times],
    }
    if config.uses_property_model:
        book = state.book()
        per_iteration = list(book.iterations)
        out["property_model"] = {
            "total_candidates_simulated": n_simulated(records),
            "total_candidates_ml_predicted": len(records) - n_simulated(records),
            "total_candidates_scored": sum(int(s.get("candidates_scored") or 0) for s in per_iteration),
            "budget_remaining": budget_left(state, config),
            "trainings": book.n_trainings,
            "models": list(book.models),
            "final_model": book.model,
            "mean_uncertainty_per_iteration": [s.get("mean_uncertainty") for s in per_iteration],
            "information_gain_per_iteration": [s.get("information_gain") for s in per_iteration],
            "per_iteration": per_iteration,
        }
    return out


#: The limits of :func:`time_to_finish`, in the order the convergence check tests them.
_LIMIT_ORDER = ("budget", "budget_cpu_hours", "max_iterations")


def time_to_finish(
    state: CampaignState,
    config: CampaignConfig,
    iteration_seconds: Sequence[float],
    *,
    cpu_hours_used: float | None = None,
    budget_cpu_hours: float | None = None,
) -> dict[str, Any]:
    """The pace of a campaign and when it will stop, from the wall seconds of its last iterations.

    ``iteration_seconds`` are those of the iterations this run recorded (a continued campaign's earlier ones took no
    time here), the newest last. The campaign stops at whichever limit comes first: ``max_iterations``, the
    evaluation ``budget`` (DFT runs: a batch per iteration, or the share of a batch the property model sent to DFT so
    far) or the CPU-hour budget (at the CPU hours per iteration so far). Each limit's iterations left times the median
    seconds per iteration is the estimate: the median, because the first iteration (elemental references, the first
    model) and a queue wait are not the pace. A converged campaign has nothing left.
    """
    seconds = [float(t) for t in iteration_seconds]
    done = state.iteration
    timed = min(len(seconds), done)
    evaluations = sum(1 for r in state.candidates if r.iteration >= done - timed) if timed else 0
    median = float(np.median(seconds)) if seconds else None
    out: dict[str, Any] = {
        "iterations_done": done,
        "iterations_timed": len(seconds),
        "seconds_per_iteration_median": median,
        "seconds_per_iteration_last": seconds[-1] if seconds else None,
        "evaluations_per_hour": 3600.0 * evaluations / sum(seconds) if seconds and sum(seconds) > 0 else None,
        "converged": state.converged,
        "iterations_left": {"max_iterations": max(config.max_iterations - done, 0)},
    }
    left = out["iterations_left"]
    if config.budget is not None:
        spent = n_simulated(state.candidates)
        per_iteration = float(config.batch_size) if config.evaluation_method == "dft" else spent / max(done, 1)
        remaining = max(config.budget - spent, 0)
        left["budget"] = math.ceil(remaining / per_iteration) if per_iteration > 0 else None
    if budget_cpu_hours is not None and cpu_hours_used is not None:
        per_iteration = cpu_hours_used / done if done else 0.0
        remaining = max(budget_cpu_hours - cpu_hours_used, 0.0)
        left["budget_cpu_hours"] = math.ceil(remaining / per_iteration) if per_iteration > 0 else None
    known = {limit: n for limit, n in left.items() if n is not None}
    # on a tie the budget is what the campaign will give as its reason (check_convergence tests it first)
    limit = min(known, key=lambda k: (known[k], _LIMIT_ORDER.index(k)))
    if state.converged:
        out.update(limit=state.converged, iterations_to_finish=0, seconds_left=0.0)
    else:
        out.update(
            limit=limit,
            iterations_to_finish=known[limit],
            seconds_left=None if median is None else known[limit] * median,
        )
    return out
