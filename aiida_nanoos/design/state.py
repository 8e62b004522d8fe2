"""JSON state of a campaign's optimiser, so that a WorkChain can stop after any iteration and resume exactly.

The state holds the evaluated history (encoded points, objective values, iteration numbers), the last GP
hyper-parameters (a warm start for the next fit), the GA population if any, and the random stream as
``seed`` + ``counter``: ``rng()`` returns ``default_rng([seed, counter])`` and increments the counter, so the
n-th draw after a restart is the n-th draw without one. All fields are plain JSON types (a ``Dict`` node).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

STATE_VERSION = 1


@dataclass
class OptimizerState:
    seed: int = 0
    counter: int = 0
    iteration: int = 0
    points: list[list[float]] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    iterations: list[int] = field(default_factory=list)
    gp_hyperparameters: dict[str, Any] | None = None
    ga: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    version: int = STATE_VERSION

    def rng(self) -> np.random.Generator:
        """A fresh generator for the next random decision (and advance the counter)."""
        rng = np.random.default_rng([int(self.seed), int(self.counter)])
        self.counter += 1
        return rng

    def record(self, points: np.ndarray | Sequence[Sequence[float]], values: Sequence[float | None]) -> None:
        """Append the evaluated batch of the current iteration and advance the iteration number.

        ``None`` or NaN marks a failed evaluation: kept in the history (it was paid for) but not used for fitting.
        """
        points = np.atleast_2d(np.asarray(points, dtype=float))
        if len(points) != len(values):
            raise ValueError(f"{len(points)} points but {len(values)} values")
        for p, v in zip(points, values, strict=True):
            self.points.append([float(x) for x in p])
            ok = v is not None and np.isfinite(float(v))
            self.values.append(float(v) if ok else None)
            self.iterations.append(self.iteration)
        self.iteration += 1

    def observed(self) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) of the successful evaluations, for fitting the surrogate."""
        ok = [i for i, v in enumerate(self.values) if v is not None]
        n_dims = len(self.points[0]) if self.points else 0
        X = np.asarray([self.points[i] for i in ok], dtype=float).reshape(len(ok), n_dims)
        return X, np.asarray([self.values[i] for i in ok], dtype=float)

    def iteration_values(self) -> list[list[float]]:
        """Objective values grouped by iteration (NaN for failures), the input of ConvergenceCriteria.check."""
        out: list[list[float]] = [[] for _ in range(self.iteration)]
        for it, v in zip(self.iterations, self.values, strict=True):
            out[it].append(float("nan") if v is None else v)
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OptimizerState:
        data = dict(data)
        version = data.get("version", STATE_VERSION)
        if version != STATE_VERSION:
            raise ValueError(f"optimizer state version {version} not supported (expected {STATE_VERSION})")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"optimizer state: unknown keys {unknown}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> OptimizerState:
        return cls.from_dict(json.loads(text))
