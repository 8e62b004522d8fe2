"""The pace of a design campaign for ``aiida-nanoos campaign stats``: wall seconds per iteration read from the
iteration nodes, handed as plain numbers to :func:`aiida_nanoos.design.statistics.time_to_finish` (no AiiDA in the
core), and the hypervolume after each iteration of a Pareto campaign."""

from __future__ import annotations

import math
from typing import Any

from aiida.common import timezone


def fmt(value: Any) -> str:
    """A number as campaign show/stats print it (4 significant digits; '-' for none; lists element-wise)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


def iteration_seconds(node) -> list[float]:
    """Wall seconds of each iteration this campaign ran, oldest first: from the end of the previous iteration (its
    ``record_iteration``; the campaign's start for the first) to the end of this one, so proposals, GP fits,
    evaluations, model trainings and waits in the queue all count, as they do for the time still to come."""
    records = [summary.creator for summary in _iteration_summaries(node)]
    ends = [node.ctime, *(record.ctime for record in records)]
    return [(later - earlier).total_seconds() for earlier, later in zip(ends, ends[1:], strict=False)]


def _iteration_summaries(node) -> list:
    from aiida_nanoos.query import iteration_outputs

    return iteration_outputs(node, "summary")


def pace_data(snap: dict[str, Any]) -> dict[str, Any]:
    """``campaign stats``' pace: seconds per iteration, evaluations per hour, time left and to which limit (see
    :func:`aiida_nanoos.design.statistics.time_to_finish`); for a campaign that stopped without converging (killed,
    failed) the estimate is for continuing it with ``restart_from``."""
    from aiida_nanoos.design.statistics import time_to_finish

    node, state = snap["node"], snap["state"]
    budget_cpu_hours = snap["definition"]["config"].get("budget_cpu_hours")
    cpu_hours = None
    if budget_cpu_hours is not None:  # what the evaluations used, as the campaign records it per candidate
        records = snap["state_node"].get_dict().get("candidates") or []
        cpu_hours = sum(float((r.get("cost") or {}).get("cpu_seconds") or 0.0) for r in records) / 3600.0
    pace = time_to_finish(
        state, snap["config"], iteration_seconds(node), cpu_hours_used=cpu_hours, budget_cpu_hours=budget_cpu_hours
    )
    pace["cpu_hours_used"] = cpu_hours
    pace["stopped"] = bool(node.is_terminated and not state.converged)
    if not node.is_terminated and state.converged is None:
        summaries = _iteration_summaries(node)
        last = summaries[-1].creator.ctime if summaries else node.ctime
        pace["current_iteration_seconds"] = (timezone.now() - last).total_seconds()
    return pace


def hypervolume_data(snap: dict[str, Any]) -> dict[str, Any] | None:
    """Hypervolume of the feasible front after each iteration and its reference point (Pareto campaigns only)."""
    from aiida_nanoos.design import campaign as cp

    objective, config, state = snap["objective"], snap["config"], snap["state"]
    if not objective.multi:
        return None
    trend = cp.convergence_trend(state, objective, config)
    return {
        "objectives": [o.name for o in objective.objectives],
        "directions": objective.directions,
        "reference_point": cp.reference_point(state.candidates, objective, config, state.reference_point),
        "trend": [None if not math.isfinite(v) else v for v in trend],
    }


def pace_lines(pace: dict[str, Any]) -> list[str]:
    """The pace as ``campaign stats`` prints it: times as h:mm:ss like the progress line, so the two read alike."""
    from .progress import clock

    median, last = pace["seconds_per_iteration_median"], pace["seconds_per_iteration_last"]
    rate = pace["evaluations_per_hour"]
    lines = [
        f"  seconds per iteration  median {fmt(median)}, last {fmt(last)} ({pace['iterations_timed']} timed)",
        f"  evaluations per hour   {fmt(rate)}",
    ]
    left = ", ".join(f"{limit} {'-' if n is None else n}" for limit, n in pace["iterations_left"].items())
    if pace["converged"]:
        lines.append(f"  time left              0 (converged: {pace['converged']})")
    else:
        when = "if continued (restart_from) ~" if pace["stopped"] else "~"
        lines.append(
            f"  time left              {when}{clock(pace['seconds_left'])} to {pace['limit']}: "
            f"{pace['iterations_to_finish']} iterations (iterations left: {left})"
        )
    if pace.get("cpu_hours_used") is not None:
        lines.append(f"  CPU hours used         {fmt(pace['cpu_hours_used'])}")
    return lines
