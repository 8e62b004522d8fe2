"""Active learning: which candidates deserve an expensive simulation, given predictions and uncertainties.

Pure numpy/scipy (no AiiDA, no torch): the inputs are arrays of predicted values and standard deviations
(a model's :class:`~aiida_nanoos.models.posterior.Posterior`, e.g. :meth:`CrystalGraphModel.posterior`), optionally
embeddings for diversity. Every result is JSON-serialisable so the AiiDA layer can store it in a Dict. The scores are
the shared acquisitions of :mod:`aiida_nanoos.acquisition.analytic` and the batches those of
:mod:`aiida_nanoos.acquisition.batch`; nothing here re-implements them.

Strategies (``score`` is maximised):

* ``uncertainty``: score = sigma; label where the model knows least (pure exploration, best for the model);
* ``greedy_uncertainty``: the upper confidence bound (UCB, beta = exploration_weight) of the value term:
  -|mu - target_value| + w sigma; without a target value the confidence bound in the search direction,
  -mu + w sigma (min) or mu + w sigma (max);
* ``expected_improvement``: EI over the best value observed so far, in the search direction;
* ``diverse_uncertainty``: among the ``diversity_pool_factor * budget`` most uncertain candidates, a
  farthest-point (max-min distance) sequence in embedding space, starting from the most uncertain one and
  keeping away from already labelled embeddings: a batch that is uncertain *and* not redundant.

Pass the *epistemic* uncertainty (``UncertainPrediction.epistemic_uncertainty``) for exploration: label
noise (the aleatoric part) does not shrink when a candidate is labelled. Candidates with sigma below
``min_uncertainty`` are never selected (the model is already sure of them);
a :class:`SimulationBudget` caps how many are selected over a whole campaign.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from aiida_nanoos.acquisition import analytic, fidelity
from aiida_nanoos.acquisition.batch import diverse_batch, greedy_batch
from aiida_nanoos.models.posterior import Posterior

#: ``value_per_cost`` chooses which candidates a cheap model valued deserve the expensive simulation
#: (:mod:`aiida_nanoos.acquisition.fidelity`); the others rank candidates by the model's posterior.
STRATEGIES = ("uncertainty", "greedy_uncertainty", "expected_improvement", "diverse_uncertainty", "value_per_cost")
DIRECTIONS = ("min", "max")


@dataclass
class ActiveLearningConfig:
    """How to pick candidates for simulation; stored with each selection."""

    strategy: str = "uncertainty"
    budget: int = 10  #: at most this many selected per call
    min_uncertainty: float = 0.0  #: candidates with a smaller sigma are not simulated
    exploration_weight: float = 1.0  #: weight of sigma in greedy_uncertainty
    target_value: float | None = None  #: greedy_uncertainty aims at this value if given
    direction: str = "min"  #: search direction for expected_improvement (and greedy without a target)
    xi: float = 0.0  #: expected_improvement margin: improvements smaller than xi are not rewarded
    diversity_pool_factor: int = 3  #: diverse_uncertainty draws from the factor * budget most uncertain
    confidence_threshold: float | None = None  #: sigma above which a prediction counts as low confidence
    cost_share: float | None = None  #: value_per_cost: share of the candidates' total predicted cost it may spend
    cost_exponent: float = 1.0  #: value_per_cost: value / cost^exponent (cools to 0 as a CPU budget is spent)
    target_range: tuple[float, float] | None = None  #: value_per_cost: a DFT label is worth P(value in range)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy '{self.strategy}', choose from {STRATEGIES}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'min' or 'max', not '{self.direction}'")
        if self.budget < 0:
            raise ValueError("budget must be non-negative")
        if self.min_uncertainty < 0:
            raise ValueError("min_uncertainty must be non-negative")
        if self.diversity_pool_factor < 1:
            raise ValueError("diversity_pool_factor must be at least 1")
        if self.strategy == "value_per_cost" and (self.cost_share is None or not 0 < self.cost_share <= 1):
            raise ValueError(f"value_per_cost needs cost_share in (0, 1], got {self.cost_share!r}")
        if not 0 <= self.cost_exponent <= 1:
            raise ValueError(f"cost_exponent must lie in [0, 1], got {self.cost_exponent!r}")
        if self.target_range is not None:
            low, high = (float(v) for v in self.target_range)
            if not low < high:
                raise ValueError(f"target_range needs low < high, got {self.target_range!r}")
            self.target_range = (low, high)

    def to_dict(self) -> dict:
        return asdict(self)


class SimulationBudget:
    """Simulations allowed over a campaign and how many were spent, per iteration."""

    def __init__(self, total: int, used: int = 0, history: Sequence[int] = ()):
        if total < 0 or used < 0 or used > total:
            raise ValueError(f"invalid budget: {used} used of {total}")
        self.total = int(total)
        self.used = int(used)
        self.history = [int(n) for n in history]

    @property
    def remaining(self) -> int:
        return self.total - self.used

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0

    def allowance(self, requested: int) -> int:
        """How many of ``requested`` simulations the budget still allows."""
        return max(0, min(int(requested), self.remaining))

    def spend(self, n: int) -> None:
        """Record ``n`` simulations started; refuses to overspend."""
        if n < 0:
            raise ValueError("cannot spend a negative number of simulations")
        if n > self.remaining:
            raise ValueError(f"budget exceeded: {n} requested, {self.remaining} of {self.total} left")
        self.used += int(n)
        self.history.append(int(n))

    def to_dict(self) -> dict:
        return {"total": self.total, "used": self.used, "remaining": self.remaining, "history": list(self.history)}

    @classmethod
    def from_dict(cls, data: dict) -> SimulationBudget:
        return cls(data["total"], data.get("used", 0), data.get("history", ()))


def expected_improvement(
    prediction: np.ndarray, uncertainty: np.ndarray, best: float, direction: str = "min", xi: float = 0.0
) -> np.ndarray:
    """Gaussian expected improvement over ``best`` (below it for ``min``, above it for ``max``): the one
    :func:`aiida_nanoos.acquisition.analytic.expected_improvement`, with the search direction named as here."""
    return analytic.expected_improvement(prediction, uncertainty, best, maximize=direction == "max", xi=xi)


def _value_score(prediction: np.ndarray, config: ActiveLearningConfig) -> np.ndarray:
    """The value term of greedy_uncertainty, larger = better: closeness to the target, or the oriented prediction."""
    if config.target_value is not None:
        return -np.abs(prediction - config.target_value)
    return -prediction if config.direction == "min" else prediction


def posterior_acquisition(
    posterior: Posterior, config: ActiveLearningConfig, best_observed: float | None = None
) -> np.ndarray:
    """Score per candidate of a model's :class:`Posterior` (higher = more worth simulating), from the shared
    acquisitions: ``uncertainty`` and ``diverse_uncertainty`` rank by sigma (the diverse batch is chosen by
    :func:`aiida_nanoos.acquisition.batch.diverse_batch`), ``greedy_uncertainty`` is the upper confidence bound
    (beta = ``exploration_weight``) of the value term (the oriented prediction, or minus the distance to
    ``target_value``), ``expected_improvement`` is EI in the search direction."""
    if config.strategy in ("uncertainty", "diverse_uncertainty"):
        return posterior.std.copy()
    if config.strategy == "greedy_uncertainty":
        return analytic.upper_confidence_bound(
            _value_score(posterior.mean, config), posterior.std, config.exploration_weight
        )
    if best_observed is None:
        raise ValueError("expected_improvement needs best_observed (the best labelled value so far)")
    return analytic.acquisition_scores(
        "EI", posterior.mean, posterior.std, best=best_observed, maximize=config.direction == "max", xi=config.xi
    )


def acquisition_scores(
    prediction: Sequence[float],
    uncertainty: Sequence[float],
    config: ActiveLearningConfig,
    best_observed: float | None = None,
) -> np.ndarray:
    """Score per candidate (higher = more worth simulating); :func:`posterior_acquisition` of (prediction, sigma)."""
    prediction, uncertainty = _check_inputs(prediction, uncertainty)
    return posterior_acquisition(Posterior(prediction, uncertainty), config, best_observed)


def classify_confidence(uncertainty: Sequence[float], threshold: float) -> list[str]:
    """'high' where sigma <= threshold (the prediction can stand in for a simulation), else 'low'."""
    return ["high" if s <= threshold else "low" for s in np.asarray(uncertainty, float)]


@dataclass
class SelectionResult:
    """Chosen candidates (indices into the candidate arrays) with a score and a reason each."""

    indices: list[int]
    scores: list[float]
    reasons: list[str]
    config: ActiveLearningConfig
    n_candidates: int
    n_eligible: int  #: candidates not excluded and with sigma >= min_uncertainty
    confidence: list[str]  #: per candidate (all of them), 'high' or 'low'
    confidence_threshold: float
    prediction: list[float] = field(repr=False, default_factory=list)
    uncertainty: list[float] = field(repr=False, default_factory=list)
    identifiers: list[str] | None = None
    budget: dict | None = None  #: the SimulationBudget after this selection, if one was given

    def to_dict(self) -> dict:
        """JSON-serialisable summary in the shape of the original ``select_for_simulation`` response."""
        selected = []
        for index, score, reason in zip(self.indices, self.scores, self.reasons, strict=True):
            entry = {
                "index": index,
                "predicted_value": self.prediction[index],
                "uncertainty": self.uncertainty[index],
                "acquisition_score": score,
                "confidence": self.confidence[index],
                "reason": reason,
            }
            if self.identifiers is not None:
                entry["identifier"] = self.identifiers[index]
            selected.append(entry)
        counts = {level: self.confidence.count(level) for level in ("high", "low")}
        return {
            "strategy": self.config.strategy,
            "config": self.config.to_dict(),
            "selected": selected,
            "total_candidates": self.n_candidates,
            "eligible_candidates": self.n_eligible,
            "selected_count": len(self.indices),
            "confidence_threshold": self.confidence_threshold,
            "confidence_counts": counts,
            "mean_uncertainty": float(np.mean(self.uncertainty)) if self.uncertainty else None,
            "budget": self.budget,
        }


def select_for_simulation(
    prediction: Sequence[float],
    uncertainty: Sequence[float],
    config: ActiveLearningConfig | None = None,
    *,
    best_observed: float | None = None,
    embeddings: np.ndarray | None = None,
    labelled_embeddings: np.ndarray | None = None,
    exclude: Sequence[int] = (),
    identifiers: Sequence[str] | None = None,
    budget: SimulationBudget | None = None,
    costs: Sequence[float] | None = None,
) -> SelectionResult:
    """Pick up to ``config.budget`` candidates (fewer if the campaign budget or confident candidates limit it).

    ``exclude``: indices already labelled or running. ``embeddings`` (n, d) are required for
    ``diverse_uncertainty``; ``labelled_embeddings`` (m, d) lets it avoid regions already labelled.
    ``costs`` (predicted cost of simulating each candidate) are required for ``value_per_cost``, where
    ``best_observed`` is the reference a label must beat (the ``top_n``-th best so far). ``budget`` is debited by the
    number selected.
    """
    config = config or ActiveLearningConfig()
    prediction, uncertainty = _check_inputs(prediction, uncertainty)
    n = len(prediction)
    if identifiers is not None and len(identifiers) != n:
        raise ValueError(f"{len(identifiers)} identifiers for {n} candidates")
    threshold = (
        config.confidence_threshold
        if config.confidence_threshold is not None
        else (config.min_uncertainty if config.min_uncertainty > 0 else float(np.median(uncertainty)))
    )
    if config.strategy != "value_per_cost":  # which scores its own way below
        scores = acquisition_scores(prediction, uncertainty, config, best_observed)
    eligible = uncertainty >= config.min_uncertainty
    excluded = np.asarray(list(exclude), np.int64)
    if excluded.size and (excluded.min() < 0 or excluded.max() >= n):
        raise ValueError("exclude holds indices outside the candidate list")
    eligible[excluded] = False
    n_select = min(config.budget, int(eligible.sum()))
    if budget is not None:
        n_select = budget.allowance(n_select)

    if config.strategy == "diverse_uncertainty":
        if embeddings is None:
            raise ValueError("diverse_uncertainty needs embeddings (e.g. CrystalGraphModel.embed)")
        embeddings = np.asarray(embeddings, float)
        if embeddings.ndim != 2 or len(embeddings) != n:
            raise ValueError(f"embeddings must have shape ({n}, d)")
        chosen, distances, pool_size = diverse_batch(
            uncertainty,
            embeddings,
            n_select,
            eligible=eligible,
            pool_factor=config.diversity_pool_factor,
            labelled_embeddings=labelled_embeddings,
        )
        reasons = [_diverse_reason(uncertainty[i], d, pool_size) for i, d in zip(chosen, distances, strict=True)]
    elif config.strategy == "value_per_cost":
        chosen, scores, reasons = _value_per_cost(
            prediction, uncertainty, config, best_observed, costs, eligible, n_select
        )
    else:
        chosen = greedy_batch(scores, n_select, eligible)
        reasons = [
            _reason(i, rank, prediction, uncertainty, scores, config, best_observed) for rank, i in enumerate(chosen)
        ]
    if budget is not None:
        budget.spend(len(chosen))
    return SelectionResult(
        indices=[int(i) for i in chosen],
        scores=[float(scores[i]) for i in chosen],
        reasons=reasons,
        config=config,
        n_candidates=n,
        n_eligible=int(eligible.sum()),
        confidence=classify_confidence(uncertainty, threshold),
        confidence_threshold=float(threshold),
        prediction=prediction.tolist(),
        uncertainty=uncertainty.tolist(),
        identifiers=list(identifiers) if identifiers is not None else None,
        budget=budget.to_dict() if budget is not None else None,
    )


def _value_per_cost(
    prediction: np.ndarray,
    uncertainty: np.ndarray,
    config: ActiveLearningConfig,
    reference: float | None,
    costs: Sequence[float] | None,
    eligible: np.ndarray,
    n_select: int,
) -> tuple[list[int], np.ndarray, list[str]]:
    """The candidates whose simulation is worth most per predicted cost (:func:`fidelity.choose_dft_labels`)."""
    if costs is None or len(costs) != len(prediction):
        raise ValueError(f"value_per_cost needs the predicted cost of each of the {len(prediction)} candidates")
    value = fidelity.value_of_dft_label(
        prediction,
        uncertainty,
        maximize=config.direction == "max",
        reference=reference,
        target_range=config.target_range,
    )
    choice = fidelity.choose_dft_labels(
        value,
        np.asarray(costs, dtype=float),
        cost_share=float(config.cost_share),
        exponent=config.cost_exponent,
        eligible=eligible,
        max_count=n_select,
    )
    what = (
        "P(in target range)"
        if config.target_range is not None
        else ("sigma (no reference yet)" if reference is None else f"EI over {reference:.4g}")
    )
    reasons = [
        f"value_per_cost: {what} {value[i]:.4g} per predicted cost {choice.cost[i]:.4g}^{config.cost_exponent:.2g} "
        f"= {choice.score[i]:.4g} (predicted {prediction[i]:.4g} +- {uncertainty[i]:.4g}; batch DFT share "
        f"{choice.spent:.4g} of {choice.allowance:.4g} allowed)"
        for i in choice.indices
    ]
    return choice.indices, choice.score, reasons


def _check_inputs(prediction: Sequence[float], uncertainty: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    prediction = np.asarray(prediction, float).ravel()
    uncertainty = np.asarray(uncertainty, float).ravel()
    if prediction.size == 0:
        raise ValueError("empty batch: no candidates given")
    if prediction.shape != uncertainty.shape:
        raise ValueError(f"{prediction.size} predictions but {uncertainty.size} uncertainties")
    if not (np.all(np.isfinite(prediction)) and np.all(np.isfinite(uncertainty))):
        raise ValueError("predictions and uncertainties must be finite")
    if np.any(uncertainty < 0):
        raise ValueError("uncertainties must be non-negative")
    return prediction, uncertainty


def _reason(
    index: int,
    rank: int,
    prediction: np.ndarray,
    uncertainty: np.ndarray,
    scores: np.ndarray,
    config: ActiveLearningConfig,
    best_observed: float | None,
) -> str:
    """Human-readable reason: which part of the score put this candidate in the batch."""
    mu, sigma = prediction[index], uncertainty[index]
    sigma_rank = int(np.sum(uncertainty > sigma)) + 1
    if config.strategy == "uncertainty":
        return f"high_uncertainty: sigma={sigma:.4g} is rank {sigma_rank} of {len(uncertainty)}"
    if config.strategy == "expected_improvement":
        return (
            f"expected_improvement: EI={scores[index]:.4g} over best {best_observed:.4g} "
            f"(predicted {mu:.4g} +- {sigma:.4g}, {config.direction}imising)"
        )
    # greedy_uncertainty: compare the value term with the exploration term, both relative to the candidates
    if config.target_value is not None:
        value_term = -abs(mu - config.target_value)
        value_terms = -np.abs(prediction - config.target_value)
        value_text = f"predicted {mu:.4g} is {abs(mu - config.target_value):.4g} from target {config.target_value:.4g}"
    else:
        value_term = -mu if config.direction == "min" else mu
        value_terms = -prediction if config.direction == "min" else prediction
        value_text = f"predicted {mu:.4g} ({config.direction}imising)"
    value_advantage = value_term - np.median(value_terms)
    exploration_advantage = config.exploration_weight * (sigma - np.median(uncertainty))
    if value_advantage > 0 and exploration_advantage > 0:
        code = "high_uncertainty_promising_value"
    elif value_advantage >= exploration_advantage:
        code = "promising_value"
    else:
        code = "high_uncertainty"
    return f"{code}: {value_text}, sigma={sigma:.4g}, score={scores[index]:.4g} (rank {rank + 1})"


def _diverse_reason(sigma: float, distance: float, pool_size: int) -> str:
    distance_text = "first pick" if not np.isfinite(distance) else f"{distance:.3g}"
    return (
        f"diverse_high_uncertainty: sigma={sigma:.4g} within the {pool_size} most uncertain, "
        f"distance to nearest selected/labelled (standardised embedding) {distance_text}"
    )


def information_gain(uncertainty_before: Sequence[float], uncertainty_after: Sequence[float]) -> dict[str, float]:
    """How much the mean sigma on a fixed reference set fell after new labels were added and the model retrained.

    Also reports the Gaussian entropy reduction summed over the reference set, sum log(sigma_before /
    sigma_after) in nats, an information-theoretic reading of the same change.
    """
    before = np.asarray(uncertainty_before, float).ravel()
    after = np.asarray(uncertainty_after, float).ravel()
    if before.shape != after.shape or before.size == 0:
        raise ValueError("uncertainty_before and uncertainty_after must be non-empty and of equal length")
    mean_before, mean_after = float(before.mean()), float(after.mean())
    floor = 1e-12
    return {
        "mean_uncertainty_before": mean_before,
        "mean_uncertainty_after": mean_after,
        "absolute_reduction": mean_before - mean_after,
        "relative_reduction": (mean_before - mean_after) / mean_before if mean_before > 0 else 0.0,
        "entropy_reduction_nats": float(np.sum(np.log(np.maximum(before, floor) / np.maximum(after, floor)))),
        "n_reference": int(before.size),
    }
