"""Synthetic landscapes with known optima, on the unit cube, for benchmarks that must not be tuned to one data set.

Each :class:`Landscape` maps points of [0, 1]^d onto its usual domain and returns the usual value (all are
minimised). They are the standard global-optimisation test set (Surjanovic & Bingham's library): Branin,
Hartmann-3/6, Ackley, Levy, Rosenbrock. :func:`sample_pool` draws a seeded pool of candidates from one, the shape
the pool benchmarks (:mod:`.pool_protocol`) work on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_HARTMANN3_A = np.array([[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]])
_HARTMANN3_P = 1e-4 * np.array([[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]])
_HARTMANN6_A = np.array(
    [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
)
_HARTMANN6_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_HARTMANN_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def _branin(x: np.ndarray) -> np.ndarray:
    x1, x2 = x[:, 0], x[:, 1]
    b, c, t = 5.1 / (4 * np.pi**2), 5 / np.pi, 1 / (8 * np.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * np.cos(x1) + 10


def _hartmann(A: np.ndarray, P: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    def f(x: np.ndarray) -> np.ndarray:
        inner = np.einsum("kj,nkj->nk", A, (x[:, None, :] - P[None, :, :]) ** 2)
        return -np.exp(-inner) @ _HARTMANN_ALPHA

    return f


def _ackley(x: np.ndarray) -> np.ndarray:
    d = x.shape[1]
    return (
        -20 * np.exp(-0.2 * np.sqrt(np.sum(x**2, axis=1) / d))
        - np.exp(np.sum(np.cos(2 * np.pi * x), axis=1) / d)
        + 20
        + np.e
    )


def _levy(x: np.ndarray) -> np.ndarray:
    w = 1 + (x - 1) / 4
    head = np.sin(np.pi * w[:, 0]) ** 2
    middle = np.sum((w[:, :-1] - 1) ** 2 * (1 + 10 * np.sin(np.pi * w[:, :-1] + 1) ** 2), axis=1)
    tail = (w[:, -1] - 1) ** 2 * (1 + np.sin(2 * np.pi * w[:, -1]) ** 2)
    return head + middle + tail


def _rosenbrock(x: np.ndarray) -> np.ndarray:
    return np.sum(100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (x[:, :-1] - 1) ** 2, axis=1)


@dataclass(frozen=True)
class Landscape:
    """A landscape to minimise, evaluated at unit-cube points (rows of ``u``)."""

    name: str
    dims: int
    lower: float | tuple[float, ...]
    upper: float | tuple[float, ...]
    formula: Callable[[np.ndarray], np.ndarray]

    def __call__(self, u: np.ndarray) -> np.ndarray:
        u = np.atleast_2d(np.asarray(u, dtype=float))
        if u.shape[1] != self.dims:
            raise ValueError(f"{self.name} takes {self.dims} inputs, got {u.shape[1]}")
        lower, upper = np.broadcast_to(self.lower, self.dims), np.broadcast_to(self.upper, self.dims)
        return self.formula(lower + u * (upper - lower))


def landscape(name: str, dims: int | None = None) -> Landscape:
    """One of :data:`FUNCTIONS` by name; Ackley, Levy and Rosenbrock take any ``dims`` >= 2."""
    fixed = {
        "branin": Landscape("branin", 2, (-5.0, 0.0), (10.0, 15.0), _branin),
        "hartmann3": Landscape("hartmann3", 3, 0.0, 1.0, _hartmann(_HARTMANN3_A, _HARTMANN3_P)),
        "hartmann6": Landscape("hartmann6", 6, 0.0, 1.0, _hartmann(_HARTMANN6_A, _HARTMANN6_P)),
    }
    scalable = {"ackley": (-5.0, 5.0, _ackley), "levy": (-10.0, 10.0, _levy), "rosenbrock": (-2.0, 2.0, _rosenbrock)}
    if name in fixed:
        if dims not in (None, fixed[name].dims):
            raise ValueError(f"{name} has {fixed[name].dims} inputs, not {dims}")
        return fixed[name]
    if name in scalable:
        dims = 4 if dims is None else int(dims)
        if dims < 2:
            raise ValueError(f"{name} needs at least 2 inputs, got {dims}")
        lower, upper, formula = scalable[name]
        return Landscape(f"{name}{dims}", dims, lower, upper, formula)
    raise ValueError(f"unknown test function {name!r}; known: {FUNCTIONS}")


FUNCTIONS = ("branin", "hartmann3", "hartmann6", "ackley", "levy", "rosenbrock")


def sample_pool(function: Landscape, size: int, seed: int, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``size`` uniform random unit-cube points and their values (plus Gaussian noise of ``noise`` times the values'
    standard deviation, if asked)."""
    rng = np.random.default_rng(seed)
    X = rng.random((size, function.dims))
    y = function(X)
    if noise > 0:
        y = y + rng.normal(0.0, noise * float(y.std()), size)
    return X, y
