"""Warm start: a BO step that also learns from earlier campaigns on related tasks.

The earlier evaluations enter a :class:`~aiida_nanoos.models.transfer_gp.TransferGaussianProcess` as tasks of their
own, so the model learns how much of the earlier landscape the new task shares instead of pooling the data blindly
(which misleads the search when the tasks differ: another base structure, another functional, ML labels). Every
task's objective is oriented and transformed with one transform chosen on the earlier values by the rule the
single-task campaign uses (:func:`~aiida_nanoos.design.bo.choose_output_transform`, Yeo-Johnson; each task its
own when the scales differ, :func:`on_the_same_scale`), and the acquisition is the campaign's
(:class:`~aiida_nanoos.design.bo.BOSettings`), so a warm start differs from a cold one only by the earlier data. With
no evaluation of its own yet, the model of the earlier data alone picks the campaign's first batch.

A campaign's ``config.warm_start`` reads the earlier campaigns' evaluations with :func:`earlier_evaluations` (this
campaign's space and objective; ``same`` or ``related`` task); the same task's are pooled as extra observations
(:func:`pooled_evaluations`), the related ones become tasks of the multi-task model (:func:`related_tasks`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import yeojohnson

from aiida_nanoos.acquisition.analytic import posterior_scores
from aiida_nanoos.design.bo import BOSettings, choose_output_transform, yeo_johnson
from aiida_nanoos.design.objectives import CampaignObjective
from aiida_nanoos.design.spaces import ParameterSpace
from aiida_nanoos.design.state import CampaignState
from aiida_nanoos.models.gp import GaussianProcess
from aiida_nanoos.models.transfer_gp import TransferGaussianProcess


@dataclass(frozen=True)
class EarlierTask:
    """Evaluations of an earlier campaign: unit-cube inputs of the new campaign's space and the objective values."""

    X_unit: np.ndarray
    y: np.ndarray
    label: str = ""


#: Spreads further apart than this factor are not one property on one scale.
SCALE_MISMATCH = 10.0


def on_the_same_scale(
    target_X: np.ndarray, target_values: np.ndarray, earlier_X: np.ndarray, earlier_values: np.ndarray
) -> bool:
    """Whether the new campaign's values can be read on the earlier tasks' scale: true until it has three values,
    then while their spread agrees within :data:`SCALE_MISMATCH` with the spread a GP of the earlier values predicts
    at the same points. Why at the same points: a campaign's evaluations cluster where the objective is good, where
    the earlier landscape varies as little as the new one, so their spread is not the landscape's."""
    if len(target_values) < 3:
        return True
    earlier_X = np.ascontiguousarray(earlier_X, dtype=float)
    earlier_values = np.ascontiguousarray(earlier_values, dtype=float)
    landscape = _earlier_landscape(earlier_X.tobytes(), earlier_values.tobytes(), earlier_X.shape[1])
    predicted = landscape.predict(target_X, return_std=False)
    reference = float(np.std(predicted)) or float(np.std(earlier_values)) or 1.0
    ratio = float(np.std(target_values)) / reference
    return 1.0 / SCALE_MISMATCH <= ratio <= SCALE_MISMATCH


@functools.lru_cache(maxsize=4)
def _earlier_landscape(X_bytes: bytes, y_bytes: bytes, n_dims: int) -> GaussianProcess:
    """A GP of the earlier tasks' values (deterministic), fitted once per campaign: the earlier data are the same
    at every step, and this fit was a fifth of a warm-started step's time."""
    X = np.frombuffer(X_bytes, dtype=float).reshape(-1, n_dims)
    return GaussianProcess(input_scaling="none").fit(X, np.frombuffer(y_bytes, dtype=float))


def _own_transform(values: np.ndarray) -> np.ndarray:
    """The single-task campaign's transform of one task's (oriented) values."""
    return yeo_johnson(values)[0] if choose_output_transform(values) == "power" else values


def _common_transform(earlier_values: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """One output transform for every task, chosen on the earlier tasks' (oriented) values with the single-task
    campaign's rule: Yeo-Johnson from five distinct values on, the exponent fitted to the earlier values.

    Why not one per task: the tasks measure the same property, and the new campaign's evaluations cluster where
    the objective is good, so an exponent fitted to them warps the landscape differently from the earlier one and
    the model sees two unrelated tasks where there is one."""
    if choose_output_transform(earlier_values) != "power":
        return lambda values: values
    spread = float(earlier_values.std()) or 1.0
    exponent = yeo_johnson(earlier_values)[1]
    return lambda values: yeojohnson(values / spread, lmbda=exponent) if len(values) else values


@dataclass
class TransferModel:
    """The fitted multi-task model and what the acquisition needs (larger is better on its scale)."""

    gp: TransferGaussianProcess
    best: float

    def scores(self, X_unit: np.ndarray, settings: BOSettings) -> np.ndarray:
        kind = "UCB" if settings.acquisition.upper() in ("UCB", "LCB") else settings.acquisition.upper()
        if kind not in ("UCB", "EI", "PI"):
            raise ValueError(f"acquisition {settings.acquisition!r}: a warm start supports UCB/LCB, EI and PI")
        posterior = self.gp.posterior(X_unit)
        return posterior_scores(posterior, kind, best=self.best, maximize=True, beta=settings.beta, xi=settings.xi)

    def task_correlations(self) -> list[float]:
        return [float(v) for v in self.gp.task_correlations()]


def fit_transfer_model(
    X_unit: np.ndarray,
    y: np.ndarray,
    earlier: Sequence[EarlierTask],
    *,
    maximize: bool,
    model: TransferGaussianProcess | None = None,
    optimize: bool = True,
    seed: int = 0,
) -> TransferModel:
    """Fit the multi-task model to the new campaign's evaluations (task 0, possibly none yet) and the earlier ones
    (tasks 1, 2, ...).

    Pass the previous step's ``model`` with ``optimize=False`` to re-condition on new data with the same
    hyper-parameters (the cheap refit between full optimisations)."""
    sign = 1.0 if maximize else -1.0
    n_dims = np.atleast_2d(np.asarray(earlier[0].X_unit)).shape[1] if earlier else np.atleast_2d(X_unit).shape[1]
    X_parts = [np.asarray(X_unit, dtype=float).reshape(-1, n_dims)]
    y_parts = [sign * np.asarray(y, dtype=float).ravel()]
    for task in earlier:
        X_parts.append(np.atleast_2d(np.asarray(task.X_unit, dtype=float)))
        y_parts.append(sign * np.asarray(task.y, dtype=float).ravel())
    earlier_X = np.vstack(X_parts[1:]) if earlier else None
    earlier_values = np.concatenate(y_parts[1:]) if earlier else None
    same_scale = bool(earlier) and on_the_same_scale(X_parts[0], y_parts[0], earlier_X, earlier_values)
    if same_scale:
        transform = _common_transform(earlier_values)
        y_parts = [transform(part) for part in y_parts]
    else:  # another scale altogether: each task transformed and standardised on its own
        y_parts = [_own_transform(part) for part in y_parts]
    tasks = np.concatenate([np.full(len(part), index) for index, part in enumerate(y_parts)])
    gp = model if model is not None else TransferGaussianProcess(seed=seed)
    gp.fit(np.vstack(X_parts), np.concatenate(y_parts), tasks, optimize=optimize, same_scale=same_scale)
    if len(y_parts[0]):
        best = float(y_parts[0].max())
    else:  # no evaluation of its own yet: the best the target is expected to reach where the earlier tasks looked
        best = float(gp.posterior(earlier_X).mean.max())
    return TransferModel(gp=gp, best=best)


# ---------------------------------------------------------------------------------------------- earlier campaigns
#: How an earlier campaign's task relates to the new one: the same (pooled) or related (a task of its own).
RELATIONS = ("same", "related")


def objective_properties(objective: CampaignObjective) -> list[str]:
    """The properties the (first) objective is a function of: what "the same objective" means for a warm start."""
    return sorted(objective.primary.expression.properties)


def task_relation(
    search_space: Mapping[str, Any], task: Mapping[str, Any] | None, earlier_definition: Mapping[str, Any]
) -> str:
    """``same`` when the earlier campaign searched the same space with the same evaluator and inputs, else
    ``related`` (another base structure, evaluator or functional: the multi-task model learns how related)."""
    same_space = dict(earlier_definition.get("search_space") or {}) == dict(search_space)
    same_task = task is not None and earlier_definition.get("task") == dict(task)
    return "same" if same_space and same_task else "related"


def earlier_evaluations(
    space: ParameterSpace,
    objective: CampaignObjective,
    search_space: Mapping[str, Any],
    task: Mapping[str, Any] | None,
    label: str,
    earlier_definition: Mapping[str, Any],
    earlier_state: CampaignState,
) -> dict[str, Any]:
    """The successful evaluations of an earlier campaign as this campaign sees them: points encoded in this space,
    this objective re-computed from the recorded properties (its value, raw value and constraint margins), and how
    the task relates. ``ValueError`` naming the campaign when it cannot seed this one."""
    earlier_objective = CampaignObjective.from_spec(earlier_definition["objective"])
    if objective_properties(earlier_objective) != objective_properties(objective):
        raise ValueError(
            f"{label}: its objective is a function of {objective_properties(earlier_objective)}, this campaign's of "
            f"{objective_properties(objective)}"
        )
    entry: dict[str, Any] = {
        "label": label,
        "relation": task_relation(search_space, task, earlier_definition),
        **{key: [] for key in ("ids", "points", "values", "raw", "margins")},
    }
    for record in earlier_state.candidates:
        if not record.ok or record.parameters is None or record.source != "dft":
            continue
        try:
            point = space.encode(record.parameters)[0]
            result = objective.evaluate(record.properties or {})
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{label}: candidate {record.id} is not a point of this search space ({error})") from error
        entry["ids"].append(record.id)
        entry["points"].append([float(x) for x in point])
        entry["values"].append(float(result["values"][0]))
        entry["raw"].append(float(result["raw"][0]))
        entry["margins"].append([float(m) for m in result["margins"]])
    if not entry["ids"]:
        raise ValueError(f"{label}: no successful evaluation with a point of the space to start from")
    return entry


def pooled_evaluations(warm_start: Sequence[Mapping[str, Any]] | None, key: str = "values") -> dict[str, np.ndarray]:
    """Points, values (``key``: the objective's values, or ``raw`` for a target window) and margins of the earlier
    campaigns of the same task, taken as extra observations of this one."""
    same = [entry for entry in warm_start or () if entry["relation"] == "same"]
    points = [p for entry in same for p in entry["points"]]
    n_dims = len(points[0]) if points else 0
    return {
        "X": np.asarray(points, dtype=float).reshape(len(points), n_dims),
        "y": np.asarray([v for entry in same for v in entry[key]], dtype=float),
        "C": np.asarray([m for entry in same for m in entry["margins"]], dtype=float),
    }


def related_tasks(warm_start: Sequence[Mapping[str, Any]] | None) -> list[EarlierTask]:
    """The earlier campaigns of related tasks, one :class:`EarlierTask` each (objective values)."""
    return [
        EarlierTask(np.asarray(entry["points"], dtype=float), np.asarray(entry["values"], dtype=float), entry["label"])
        for entry in warm_start or ()
        if entry["relation"] == "related"
    ]
