"""Two fidelities, one decision: which candidates the property model already valued are worth a pw.x calculation.

In an ``ml_then_dft`` campaign the crystal-graph model (the cheap fidelity) has predicted every candidate of the batch;
DFT (the expensive one) costs from minutes to hours depending on the cell. A fixed sigma threshold sends every
uncertain candidate to DFT, however hopeless or expensive. The rule here prices each DFT label instead:

* its **value** is what the label may add to the campaign's result: the expected amount by which the candidate's
  DFT value would beat the reference (the ``top_n``-th best DFT label so far: the candidate could enter the reported
  top), E[max(0, g(y) - reference)] for y ~ N(prediction, sigma) and g the objective oriented so that larger is
  better; for a target window, the probability that the candidate lies in it (a hit the campaign can report only
  once DFT confirmed it). Before any DFT label the value is sigma: every label is news.
* its **price** is the predicted CPU cost of the candidate's cell raised to an exponent that cools from 1 to 0 as the
  CPU budget is spent (as cost-aware selection does, :mod:`aiida_nanoos.design.cost`).

Candidates go to DFT in order of value per price while the predicted cost of those chosen stays within
``cost_share`` of what DFT on the whole batch would cost (the best one always goes, unless none has any value): a
batch of cheap cells sends many, one expensive promising cell may use the share alone. This is a cost-weighted
one-step value of information, the knowledge-gradient idea restricted to "label it or keep the model's value".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aiida_nanoos.acquisition import analytic

#: A candidate whose value is below this fraction of the batch's largest is never worth a DFT label.
NEGLIGIBLE_VALUE = 1e-6


def value_of_dft_label(
    prediction: Sequence[float],
    uncertainty: Sequence[float],
    *,
    maximize: bool = True,
    reference: float | None = None,
    target_range: Sequence[float] | None = None,
) -> np.ndarray:
    """What a DFT label of each candidate is expected to add (see the module): EI over ``reference`` in the search
    direction, the probability of lying in ``target_range`` if given, sigma when there is no reference yet."""
    prediction = np.asarray(prediction, dtype=float)
    uncertainty = np.asarray(uncertainty, dtype=float)
    if target_range is not None:
        low, high = (float(v) for v in target_range)
        return analytic.probability_in_range(prediction, uncertainty, low, high)
    if reference is None:
        return uncertainty.copy()
    return analytic.expected_improvement(prediction, uncertainty, float(reference), maximize=maximize)


def reference_value(labels: Sequence[float], top_n: int, *, maximize: bool = True) -> float | None:
    """The ``top_n``-th best DFT label (the worst of them if fewer): the value a new label must beat to enter the
    campaign's reported top. None without labels."""
    values = np.sort(np.asarray(labels, dtype=float))
    if values.size == 0:
        return None
    ordered = values[::-1] if maximize else values
    return float(ordered[min(top_n, values.size) - 1])


@dataclass
class FidelityChoice:
    """Which candidates go to DFT, with each one's value, predicted cost and score (value / cost^exponent)."""

    indices: list[int]
    value: np.ndarray
    cost: np.ndarray
    score: np.ndarray
    allowance: float  #: the predicted cost the batch may spend on DFT
    spent: float  #: the predicted cost of the chosen candidates


def choose_dft_labels(
    value: Sequence[float],
    cost: Sequence[float],
    *,
    cost_share: float,
    exponent: float = 1.0,
    eligible: np.ndarray | None = None,
    max_count: int | None = None,
) -> FidelityChoice:
    """Candidates in order of value / cost^exponent while their predicted cost fits ``cost_share`` of the batch's
    total (candidates that do not fit are skipped, cheaper ones after them may still fit), at most ``max_count``.
    The best-scoring eligible candidate with a value always goes, even if it alone exceeds the share."""
    value = np.maximum(np.asarray(value, dtype=float), 0.0)
    cost = np.asarray(cost, dtype=float)
    if value.shape != cost.shape:
        raise ValueError(f"{value.size} values but {cost.size} costs")
    if np.any(~np.isfinite(cost)) or np.any(cost <= 0):
        raise ValueError("predicted costs must be positive and finite")
    if not 0.0 < cost_share <= 1.0:
        raise ValueError(f"cost_share must be in (0, 1], got {cost_share}")
    if not 0.0 <= exponent <= 1.0:
        raise ValueError(f"exponent must be in [0, 1], got {exponent}")
    eligible = np.ones(value.size, dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool).copy()
    top = float(value[eligible].max()) if eligible.any() else 0.0
    eligible &= value > NEGLIGIBLE_VALUE * top if top > 0 else np.zeros_like(eligible)
    score = value / cost**exponent
    allowance = cost_share * float(cost.sum())
    limit = value.size if max_count is None else max(0, int(max_count))
    chosen: list[int] = []
    spent = 0.0
    for index in np.argsort(-score, kind="stable"):
        if len(chosen) >= limit:
            break
        if not eligible[index]:
            continue
        if chosen and spent + cost[index] > allowance * (1 + 1e-12):
            continue
        chosen.append(int(index))
        spent += float(cost[index])
    return FidelityChoice(chosen, value, cost, score, allowance, spent)
