"""What a candidate costs to evaluate, and the cost-aware choice between candidates.

A 64-atom cell costs about 50 times an 8-atom one in pw.x, yet a cost-blind acquisition ranks them alike. Before any
evaluation the cost comes from a prior that scales with the cell (:func:`dft_cost_prior`); once evaluations report
their CPU seconds, a :class:`CostModel` fitted to them (log cost linear in log cell size and log k-points, shrunk
towards the prior's exponents) takes over. :func:`cost_aware_scores` picks, among the candidates whose acquisition
value comes close to the largest (within a share of its spread over the candidates), the cheapest one: a point of the
acquisition-cost Pareto front (Guinet et al. 2020), with a tolerance that shrinks from :data:`COST_TOLERANCE` to 0 as
the budget is spent (the cooling of Lee et al. 2020, CArBO): cheap candidates first while much budget is left, the
best ones whatever their price at the end.

Dividing the improvement by cost^exponent, the rule before, let a candidate 50x cheaper win with a 50th of the
improvement, so the search wandered among cheap cells of no promise: in ``benchmark cost-aware`` it needed 0.76-1.18x
the cost of a cost-blind campaign when the cell size follows the landscape. The tolerance bounds what cheapness buys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Exponents of the prior: plane-wave DFT cost grows about as atoms^2 to atoms^3 (bands x plane waves x bands) and
#: linearly with the k-points; 1.9 for atoms is what 8- and 64-atom Si cells took in pw.x here (about 50x).
PRIOR_EXPONENTS = {"atoms": 1.9, "kpoints": 1.0}


def dft_cost_prior(n_atoms: np.ndarray, n_kpoints: np.ndarray | float = 1.0) -> np.ndarray:
    """Relative CPU cost of a DFT evaluation before any has run: (atoms / 8)^1.9 x k-points."""
    n_atoms = np.asarray(n_atoms, dtype=float)
    if np.any(n_atoms < 1) or np.any(np.asarray(n_kpoints, dtype=float) < 1):
        raise ValueError("cells need at least one atom and one k-point")
    return (n_atoms / 8.0) ** PRIOR_EXPONENTS["atoms"] * np.asarray(n_kpoints, dtype=float) ** PRIOR_EXPONENTS[
        "kpoints"
    ]


@dataclass
class CostModel:
    """log(cost) = c + sum_k e_k log(feature_k), fitted by ridge regression that shrinks the exponents ``e_k``
    towards ``prior_exponents`` (``strength`` pseudo-observations), so a handful of timings cannot make them wild."""

    prior_exponents: np.ndarray
    strength: float = 3.0
    intercept: float = 0.0
    exponents: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.prior_exponents = np.asarray(self.prior_exponents, dtype=float)
        if self.exponents is None:
            self.exponents = self.prior_exponents.copy()

    def fit(self, features: np.ndarray, cost: np.ndarray) -> CostModel:
        """Fit to positive features (one row per evaluated candidate, e.g. atoms and k-points) and their costs."""
        features = np.atleast_2d(np.asarray(features, dtype=float))
        cost = np.asarray(cost, dtype=float).ravel()
        if len(features) != len(cost) or features.shape[1] != len(self.prior_exponents):
            raise ValueError(f"features {features.shape} do not match {len(cost)} costs / {self.prior_exponents}")
        if np.any(features <= 0) or np.any(cost <= 0):
            raise ValueError("cost features and costs must be positive")
        Z = np.log(features)
        target = np.log(cost) - Z @ self.prior_exponents  # fit the deviation from the prior's exponents
        Zc = Z - Z.mean(axis=0)
        penalty = self.strength * np.eye(Z.shape[1])
        deviation = np.linalg.solve(Zc.T @ Zc + penalty, Zc.T @ (target - target.mean()))
        self.exponents = self.prior_exponents + deviation
        self.intercept = float(np.mean(np.log(cost) - Z @ self.exponents))
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        features = np.atleast_2d(np.asarray(features, dtype=float))
        return np.exp(self.intercept + np.log(features) @ self.exponents)


def cooling_exponent(spent: float, budget: float, spent_initially: float = 0.0) -> float:
    """1 while nothing of the budget beyond the initial design is spent, falling linearly to 0 when all is."""
    if budget <= spent_initially:
        return 0.0
    return float(np.clip((budget - spent) / (budget - spent_initially), 0.0, 1.0))


#: The share of the acquisition's spread over the candidates that a cheaper candidate may give up while the whole
#: budget is left. On ``benchmark cost-aware`` (five landscapes, the cell size following the landscape or an input of
#: its own, seeds 0 and 100) 0.2 and 0.3 did alike (so did they on 1000-point pools, seed 200), 0.1 saved less, and
#: 0.5 cost more than 0.3 on three of the five landscapes when the cell size follows them.
COST_TOLERANCE = 0.3


def cost_aware_scores(
    acquisition: np.ndarray,
    cost: np.ndarray,
    exponent: float = 1.0,
    eligible: np.ndarray | None = None,
    tolerance: float = COST_TOLERANCE,
) -> np.ndarray:
    """Scores whose largest is the cheapest ``eligible`` candidate whose acquisition value lies within
    tolerance x exponent of the eligible candidates' spread (largest - smallest) below the largest; between equal
    costs, the larger acquisition value.

    Any acquisition serves (EI, UCB/LCB, PI): only differences within the pool count. ``exponent`` cools from 1 to 0
    over the budget (:func:`cooling_exponent`), so at 0 only the largest acquisition value counts.
    """
    acquisition = np.asarray(acquisition, dtype=float)
    cost = np.asarray(cost, dtype=float)
    if np.any(cost <= 0):
        raise ValueError("predicted costs must be positive")
    mask = np.ones(len(acquisition), dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    if not mask.any():
        return np.full(len(acquisition), -np.inf)
    largest, smallest = float(np.max(acquisition[mask])), float(np.min(acquisition[mask]))
    spread = largest - smallest
    near = mask & (acquisition >= largest - tolerance * float(np.clip(exponent, 0.0, 1.0)) * spread)
    # cheapest first; the acquisition (below 1e-6 of a factor e in cost) only breaks ties of equal cost
    relative = (acquisition - smallest) / spread if spread > 0 else np.zeros(len(acquisition))
    return np.where(near, -np.log(cost) + 1e-6 * relative, -np.inf)


#: k-point spacing (1/Å, 2π included, as aiida-quantumespresso's ``kpoints_distance``) used to count the k-points of a
#: candidate's cell for its predicted cost: only ratios between candidates matter, so one typical spacing serves.
COST_KPOINTS_DISTANCE = 0.3


def kpoint_count(cell: np.ndarray, distance: float = COST_KPOINTS_DISTANCE) -> int:
    """k-points of the Monkhorst-Pack mesh a ``kpoints_distance`` gives this cell (each reciprocal vector's length,
    2π included, over the spacing, rounded up): larger cells need fewer k-points, which offsets part of their cost."""
    reciprocal = 2.0 * np.pi * np.linalg.inv(np.asarray(cell, dtype=float)).T
    mesh = np.maximum(1, np.ceil(np.linalg.norm(reciprocal, axis=1) / distance))
    return int(np.prod(mesh))


def cost_features(n_atoms: int, cell: np.ndarray) -> list[float]:
    """What the cost of a candidate's DFT evaluation depends on: atoms and k-points of its cell."""
    return [float(n_atoms), float(kpoint_count(cell))]


def predicted_costs(
    paid_features: np.ndarray, paid_cpu_seconds: np.ndarray, candidate_features: np.ndarray
) -> tuple[np.ndarray, str]:
    """Predicted CPU cost of each candidate (features: atoms, k-points) and where it came from: a
    :class:`CostModel` fitted to the evaluations paid for so far once two of them reported a cost, else the DFT
    prior (relative units)."""
    candidate_features = np.atleast_2d(np.asarray(candidate_features, dtype=float))
    paid_features = np.asarray(paid_features, dtype=float).reshape(-1, candidate_features.shape[1])
    paid_cpu_seconds = np.asarray(paid_cpu_seconds, dtype=float).ravel()
    usable = paid_cpu_seconds > 0
    if usable.sum() >= 2:
        prior = [PRIOR_EXPONENTS["atoms"], PRIOR_EXPONENTS["kpoints"]]
        model = CostModel(prior_exponents=prior).fit(paid_features[usable], paid_cpu_seconds[usable])
        return model.predict(candidate_features), "cost model fitted to the paid evaluations"
    return dft_cost_prior(candidate_features[:, 0], candidate_features[:, 1]), "DFT cost prior (atoms, k-points)"
