"""When a design campaign should stop: target reached, no progress for a while, or budget spent (evaluations or CPU
hours)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Reasons returned by :meth:`ConvergenceCriteria.check`, in the order they are tested.
REASONS = ("target_reached", "budget_exhausted", "cpu_budget_exhausted", "max_iterations", "no_improvement")


@dataclass(frozen=True)
class ConvergenceCriteria:
    """Stopping rules of a campaign; every rule is optional.

    * ``target``: stop as soon as the best value reaches it (>= for maximisation, <= for minimisation);
    * ``budget``: maximum number of evaluations (DFT runs) over the whole campaign;
    * ``budget_cpu_hours``: CPU hours the evaluations may use (checked when the caller passes ``cpu_hours``);
    * ``max_iterations``: maximum number of iterations;
    * ``patience``: stop after this many consecutive iterations whose best did not improve on the previous best
      by at least ``min_improvement`` (in the units of the objective).
    """

    maximize: bool = True
    target: float | None = None
    budget: int | None = None
    max_iterations: int | None = None
    patience: int | None = None
    min_improvement: float = 0.0
    budget_cpu_hours: float | None = None

    def __post_init__(self) -> None:
        for name in ("budget", "max_iterations", "patience"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
                raise ValueError(f"{name}: must be a positive integer, got {value!r}")
        if self.min_improvement < 0:
            raise ValueError(f"min_improvement: must be >= 0, got {self.min_improvement}")
        if self.budget_cpu_hours is not None and not self.budget_cpu_hours > 0:
            raise ValueError(f"budget_cpu_hours: must be > 0, got {self.budget_cpu_hours!r}")

    def check(self, iteration_values: Sequence[Sequence[float]], cpu_hours: float | None = None) -> str | None:
        """The reason to stop (one of :data:`REASONS`) or None to go on.

        ``iteration_values[k]`` holds the objective values evaluated in iteration k (NaN for failed evaluations);
        ``cpu_hours`` is what the evaluations used so far (the CPU budget is checked only when it is given).
        """
        values = [np.asarray(v, dtype=float) for v in iteration_values]
        n_eval = int(sum(v.size for v in values))
        sign = 1.0 if self.maximize else -1.0
        best_per_iter = [np.nanmax(sign * v) if np.any(np.isfinite(v)) else -np.inf for v in values]
        running = np.maximum.accumulate(best_per_iter) if best_per_iter else np.array([])
        if self.target is not None and len(running) and running[-1] >= sign * self.target:
            return "target_reached"
        if self.budget is not None and n_eval >= self.budget:
            return "budget_exhausted"
        if self.cpu_budget_spent(cpu_hours):
            return "cpu_budget_exhausted"
        if self.max_iterations is not None and len(values) >= self.max_iterations:
            return "max_iterations"
        if self.patience is not None and len(running) > self.patience:
            reference = running[-self.patience - 1]
            if not np.isfinite(reference):
                return None
            if running[-1] - reference < self.min_improvement or running[-1] <= reference:
                return "no_improvement"
        return None

    def cpu_budget_spent(self, cpu_hours: float | None) -> bool:
        return self.budget_cpu_hours is not None and cpu_hours is not None and cpu_hours >= self.budget_cpu_hours

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConvergenceCriteria:
        return cls(**data)
