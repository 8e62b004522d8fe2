"""Closed-form acquisitions on a Gaussian posterior: EI (and its logarithm), PI, UCB/LCB and the target range.

Every score here follows one convention: **higher is better**, whatever the objective's direction, so a campaign
always takes the arg-max. The closed forms take the posterior mean and standard deviation of the property (not of a
standardised copy), so the numbers they print mean something to a materials scientist. :func:`posterior_scores`
applies them to a :class:`~aiida_nanoos.models.posterior.Posterior`, whichever model produced it (the GP of a BO
campaign, the crystal-graph network of active learning).
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfcx, ndtr
from scipy.stats import norm

from aiida_nanoos.models.posterior import Posterior

ACQUISITIONS = ("EI", "LOGEI", "PI", "UCB", "LCB", "RANGE")
STD_FLOOR = 1e-12


def _prepare(mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = np.asarray(mean, dtype=float)
    std = np.maximum(np.asarray(std, dtype=float), STD_FLOOR)
    return mean, std


def expected_improvement(
    mean: np.ndarray, std: np.ndarray, best: float, *, maximize: bool = True, xi: float = 0.0
) -> np.ndarray:
    """E[max(0, improvement over ``best`` - xi)] for a Gaussian posterior (Jones et al. 1998), >= 0.

    Where the std is exactly 0 (a certain prediction) this is its limit, max(0, improvement).
    """
    certain = np.asarray(std, dtype=float) <= 0
    mean, std = _prepare(mean, std)
    improvement = (mean - best - xi) if maximize else (best - mean - xi)
    z = improvement / std
    ei = np.maximum(improvement * ndtr(z) + std * norm.pdf(z), 0.0)
    return np.where(certain, np.maximum(improvement, 0.0), ei) if certain.any() else ei


def _log_h(z: np.ndarray) -> np.ndarray:
    """log(phi(z) + z Phi(z)), the log of EI / std, accurate for very negative z (where EI underflows to 0).

    For z < 0, phi(z) + z Phi(z) = phi(z) (1 - |z| m(|z|)) with the Mills ratio m(t) = Phi(-t) / phi(t) =
    erfcx(t / sqrt 2) sqrt(pi / 2), which never underflows; beyond |z| = 1e4 the asymptotic 1 / z^2 replaces the
    bracket, where it loses its digits to cancellation.
    """
    z = np.asarray(z, dtype=float)
    out = np.empty_like(z)
    pos = z > -1.0
    zp = z[pos]
    out[pos] = np.log(norm.pdf(zp) + zp * ndtr(zp))
    t = -z[~pos]
    log_phi = -0.5 * t * t - 0.5 * np.log(2.0 * np.pi)
    with np.errstate(divide="ignore", invalid="ignore"):
        bracket = np.log1p(-t * erfcx(t / np.sqrt(2.0)) * np.sqrt(np.pi / 2.0))
    out[~pos] = log_phi + np.where(t < 1e4, bracket, -2.0 * np.log(t))
    return out


def log_expected_improvement(
    mean: np.ndarray, std: np.ndarray, best: float, *, maximize: bool = True, xi: float = 0.0
) -> np.ndarray:
    """log EI (Ament et al. 2023, BoTorch's LogEI), finite everywhere a posterior has a positive std.

    The arg-max is EI's, but far from the incumbent EI underflows to exactly 0 for most of a pool, and ties among
    zeros are broken at random; the log keeps ranking them (by how improbable an improvement is).
    """
    mean, std = _prepare(mean, std)
    improvement = (mean - best - xi) if maximize else (best - mean - xi)
    return _log_h(improvement / std) + np.log(std)


def probability_of_improvement(
    mean: np.ndarray, std: np.ndarray, best: float, *, maximize: bool = True, xi: float = 0.0
) -> np.ndarray:
    """P(property better than ``best`` by more than ``xi``) under a Gaussian posterior."""
    mean, std = _prepare(mean, std)
    improvement = (mean - best - xi) if maximize else (best - mean - xi)
    return ndtr(improvement / std)


def upper_confidence_bound(mean: np.ndarray, std: np.ndarray, beta: float = 2.0) -> np.ndarray:
    """mean + beta * std: optimistic value of a property to maximise."""
    mean, std = _prepare(mean, std)
    return mean + beta * std


def lower_confidence_bound(mean: np.ndarray, std: np.ndarray, beta: float = 2.0) -> np.ndarray:
    """mean - beta * std: optimistic value of a property to minimise (the campaign takes the arg-*min* of it)."""
    mean, std = _prepare(mean, std)
    return mean - beta * std


def probability_in_range(mean: np.ndarray, std: np.ndarray, low: float, high: float) -> np.ndarray:
    """P(low <= property <= high): the target-range objective (e.g. a band gap between 1.1 and 1.5 eV)."""
    if not low < high:
        raise ValueError(f"target range needs low < high, got [{low}, {high}]")
    mean, std = _prepare(mean, std)
    return np.clip(ndtr((high - mean) / std) - ndtr((low - mean) / std), 0.0, 1.0)


def acquisition_scores(
    kind: str,
    mean: np.ndarray,
    std: np.ndarray,
    *,
    best: float | None = None,
    maximize: bool = True,
    xi: float = 0.0,
    beta: float = 2.0,
    target: tuple[float, float] | None = None,
) -> np.ndarray:
    """Scores where higher is better. ``kind``: EI, LOGEI (log of EI), PI, UCB, LCB (UCB and LCB are the same rule,
    named by the objective's direction: the score is the optimistic bound, negated for minimisation), RANGE (needs
    ``target``).
    """
    kind = kind.upper()
    if kind in ("EI", "LOGEI", "PI") and best is None:
        raise ValueError(f"{kind} needs the best value observed so far ('best')")
    if kind == "EI":
        return expected_improvement(mean, std, best, maximize=maximize, xi=xi)
    if kind == "LOGEI":
        return log_expected_improvement(mean, std, best, maximize=maximize, xi=xi)
    if kind == "PI":
        return probability_of_improvement(mean, std, best, maximize=maximize, xi=xi)
    if kind in ("UCB", "LCB"):
        return upper_confidence_bound(mean, std, beta) if maximize else -lower_confidence_bound(mean, std, beta)
    if kind == "RANGE":
        if target is None:
            raise ValueError("RANGE acquisition needs target=(low, high)")
        return probability_in_range(mean, std, *target)
    raise ValueError(f"unknown acquisition {kind!r}; choose one of {ACQUISITIONS}")


def posterior_scores(posterior: Posterior, kind: str = "EI", **kwargs) -> np.ndarray:
    """:func:`acquisition_scores` of a model's :class:`Posterior` (mean and std)."""
    return acquisition_scores(kind, posterior.mean, posterior.std, **kwargs)
