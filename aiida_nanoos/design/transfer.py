"""Warm start: a BO step that also learns from earlier campaigns on related tasks.

The earlier evaluations enter a :class:`~aiida_nanoos.models.transfer_gp.TransferGaussianProcess` as tasks of their
own, so the model learns how much of the earlier landscape the new task shares instead of pooling the data blindly
(which misleads the search when the tasks differ: another base structure, another functional, ML labels). Each task's
objective is oriented and transformed on its own, with the rule the single-task campaign uses
(:func:`~aiida_nanoos.design.bo.choose_output_transform`, Yeo-Johnson), and the acquisition is the campaign's
(:class:`~aiida_nanoos.design.bo.BOSettings`), so a warm start differs from a cold one only by the earlier data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aiida_nanoos.acquisition.analytic import posterior_scores
from aiida_nanoos.design.bo import BOSettings, choose_output_transform, yeo_johnson
from aiida_nanoos.models.transfer_gp import TransferGaussianProcess


@dataclass(frozen=True)
class EarlierTask:
    """Evaluations of an earlier campaign: unit-cube inputs of the new campaign's space and the objective values."""

    X_unit: np.ndarray
    y: np.ndarray
    label: str = ""


def _oriented(y: np.ndarray, sign: float) -> np.ndarray:
    """The objective made larger-is-better and, from five distinct values on, Yeo-Johnson transformed."""
    y = sign * np.asarray(y, dtype=float)
    return yeo_johnson(y)[0] if choose_output_transform(y) == "power" else y


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
    """Fit the multi-task model to the new campaign's evaluations (task 0) and the earlier ones (tasks 1, 2, ...).

    Pass the previous step's ``model`` with ``optimize=False`` to re-condition on new data with the same
    hyper-parameters (the cheap refit between full optimisations)."""
    sign = 1.0 if maximize else -1.0
    X_parts = [np.atleast_2d(np.asarray(X_unit, dtype=float))]
    y_parts = [_oriented(y, sign)]
    for task in earlier:
        X_parts.append(np.atleast_2d(np.asarray(task.X_unit, dtype=float)))
        y_parts.append(_oriented(task.y, sign))
    tasks = np.concatenate([np.full(len(part), index) for index, part in enumerate(y_parts)])
    gp = model if model is not None else TransferGaussianProcess(seed=seed)
    gp.fit(np.vstack(X_parts), np.concatenate(y_parts), tasks, optimize=optimize)
    return TransferModel(gp=gp, best=float(y_parts[0].max()))
