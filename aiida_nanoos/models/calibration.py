"""Is a predicted standard deviation honest? Calibration metrics and post-hoc recalibration (numpy/scipy).

For Gaussian predictive distributions N(mu, sigma), a fraction p of the errors should fall inside the
central interval mu +- z_p sigma with z_p = Phi^-1((1 + p) / 2): 68.3 % within 1 sigma, 95.4 % within 2.
The *calibration curve* plots the observed fraction against p; the *miscalibration area* is the area
between that curve and the diagonal (Tran et al., Mach. Learn.: Sci. Technol. 1, 025006 (2020); the
uncertainty-toolbox convention with central intervals): 0 for perfect calibration, up to 0.5.

Ensembles and MC dropout are usually over-confident; a factor s fitted on validation data
(sigma' = s sigma, "sigma scaling", Levi et al. 2019) fixes most of it. Small ensembles also report
near-zero spread for some structures that are in fact badly predicted (errors are heavy-tailed), which no
single factor can fix, hence sigma' = sqrt((s sigma)^2 + floor^2), a scale plus an error floor, fitted by
minimising the miscalibration area on the validation errors. With a few hundred validation errors such a fit
can also make an already honest sigma worse, so :func:`fit_recalibration` by default (``auto``) keeps sigma,
scales it, or scales it and adds the floor, whichever has the smallest area on held-out folds of those errors.
All keep the ranking of uncertainties, which is what active learning uses; calibration says nothing about
ranking, so the Spearman correlation between |error| and sigma is reported alongside.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

SCALE_METHODS = ("area", "nll", "coverage")
RECALIBRATION_METHODS = ("auto", "area_floor", *SCALE_METHODS, "identity")
#: What ``auto`` chooses between, simplest first (a tie goes to the simpler one).
AUTO_CANDIDATES = ("identity", "area", "area_floor")
AUTO_FOLDS = 5


def _as_arrays(errors: Sequence[float], uncertainty: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    errors = np.asarray(errors, float).ravel()
    uncertainty = np.asarray(uncertainty, float).ravel()
    if errors.shape != uncertainty.shape:
        raise ValueError(f"{errors.size} errors but {uncertainty.size} uncertainties")
    if errors.size == 0:
        raise ValueError("no errors given")
    if np.any(uncertainty < 0) or not np.all(np.isfinite(uncertainty)):
        raise ValueError("uncertainties must be finite and non-negative")
    return errors, np.maximum(uncertainty, 1e-12)


def coverage(errors: Sequence[float], uncertainty: Sequence[float], n_sigma: float = 1.0) -> float:
    """Fraction of errors with |error| <= n_sigma * sigma (0.683 expected for 1 sigma, 0.954 for 2)."""
    errors, uncertainty = _as_arrays(errors, uncertainty)
    return float(np.mean(np.abs(errors) <= n_sigma * uncertainty))


def calibration_curve(
    errors: Sequence[float], uncertainty: Sequence[float], n_levels: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """(expected, observed) coverage of central Gaussian intervals at ``n_levels`` + 1 levels in [0, 1]."""
    errors, uncertainty = _as_arrays(errors, uncertainty)
    expected = np.linspace(0.0, 1.0, n_levels + 1)
    # |z| <= Phi^-1((1 + p)/2)  <=>  p >= 2 Phi(|z|) - 1: observed(p) = fraction of errors whose level is <= p
    levels = np.sort(2.0 * stats.norm.cdf(np.abs(errors) / uncertainty) - 1.0)
    observed = np.searchsorted(levels, expected, side="right") / len(levels)
    return expected, observed


def miscalibration_area(errors: Sequence[float], uncertainty: Sequence[float], n_levels: int = 100) -> float:
    """Area between the observed and the ideal calibration curve (trapezoid rule); 0 is perfect."""
    expected, observed = calibration_curve(errors, uncertainty, n_levels)
    difference = np.abs(observed - expected)
    return float(np.sum(0.5 * (difference[1:] + difference[:-1]) * np.diff(expected)))


def spearman_error_uncertainty(errors: Sequence[float], uncertainty: Sequence[float]) -> float:
    """Spearman rank correlation of |error| with sigma: does a larger sigma flag a larger error?"""
    errors, uncertainty = _as_arrays(errors, uncertainty)
    if len(errors) < 3 or np.ptp(uncertainty) == 0 or np.ptp(np.abs(errors)) == 0:
        return float("nan")
    return float(stats.spearmanr(np.abs(errors), uncertainty).statistic)


def negative_log_likelihood(errors: Sequence[float], uncertainty: Sequence[float]) -> float:
    """Mean Gaussian negative log-likelihood of the errors (lower is better)."""
    errors, uncertainty = _as_arrays(errors, uncertainty)
    return float(np.mean(0.5 * np.log(2 * np.pi * uncertainty**2) + 0.5 * (errors / uncertainty) ** 2))


def fit_uncertainty_scale(errors: Sequence[float], uncertainty: Sequence[float], method: str = "area") -> float:
    """Factor s such that s * sigma is calibrated on these (validation) errors.

    * ``nll``: s^2 = mean(z^2), the maximum-likelihood factor; dominated by the largest outliers, so with
      heavy-tailed errors the 1 sigma interval ends up too wide;
    * ``coverage``: s = median(|z|) / 0.6745, so exactly 68.3 % of the validation errors fall within 1 sigma;
    * ``area`` (default): s minimising the miscalibration area over all interval levels at once, searched
      on a fine logarithmic grid around the other two (robust and level-balanced).
    """
    errors, uncertainty = _as_arrays(errors, uncertainty)
    z = np.abs(errors) / uncertainty
    nll_scale = float(np.sqrt(np.mean(z**2))) or 1.0
    coverage_scale = float(np.median(z) / stats.norm.ppf(0.75)) or nll_scale
    if method == "nll":
        return nll_scale
    if method == "coverage":
        return coverage_scale
    if method != "area":
        raise ValueError(f"unknown recalibration method '{method}', choose from {SCALE_METHODS}")
    low, high = min(nll_scale, coverage_scale) / 3.0, max(nll_scale, coverage_scale) * 3.0
    grid = np.geomspace(low, high, 301)
    areas = np.array([miscalibration_area(errors, uncertainty * s) for s in grid])
    best = np.flatnonzero(areas <= areas.min() + 1e-12)
    return float(grid[best[len(best) // 2]])  # middle of a flat optimum


@dataclass
class Recalibration:
    """sigma' = sqrt((scale * sigma)^2 + floor^2), fitted on validation errors; the identity by default."""

    scale: float = 1.0
    floor: float = 0.0  #: in target units
    method: str = "identity"

    def apply(self, uncertainty: Sequence[float] | np.ndarray) -> np.ndarray:
        uncertainty = np.asarray(uncertainty, float)
        return np.sqrt((self.scale * uncertainty) ** 2 + self.floor**2)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Recalibration:
        return cls(**data)


def fit_recalibration(errors: Sequence[float], uncertainty: Sequence[float], method: str = "auto") -> Recalibration:
    """Recalibration of sigma fitted on (validation) errors.

    ``auto`` (default): the one of ``identity``, ``area`` and ``area_floor`` with the smallest miscalibration
    area on held-out folds of these errors (:func:`cross_validated_areas`), refitted on all of them, so a
    two-parameter fit on a few hundred validation errors is used only where it beats the raw sigma out of
    sample. ``area_floor``: scale and floor minimising the miscalibration area, on a logarithmic grid
    (floors from 0.3 % to 100 % of the RMSE, and zero) refined once around the best point. The scale
    methods fit a factor only, as :func:`fit_uncertainty_scale`; ``identity`` leaves sigma as it is.
    """
    if method == "auto":
        return _fit_auto(errors, uncertainty)
    if method == "identity":
        return Recalibration()
    if method in SCALE_METHODS:
        return Recalibration(scale=fit_uncertainty_scale(errors, uncertainty, method), method=method)
    if method != "area_floor":
        raise ValueError(f"unknown recalibration method '{method}', choose from {RECALIBRATION_METHODS}")
    errors, uncertainty = _as_arrays(errors, uncertainty)
    start = fit_uncertainty_scale(errors, uncertainty, "area")
    rmse = float(np.sqrt(np.mean(errors**2))) or 1.0
    scales = start * np.geomspace(0.1, 3.0, 41)
    floors = np.concatenate([[0.0], rmse * np.geomspace(0.003, 1.0, 30)])
    best = (miscalibration_area(errors, uncertainty * start), start, 0.0)
    for _ in range(2):
        for scale in scales:
            for floor in floors:
                area = miscalibration_area(errors, np.sqrt((scale * uncertainty) ** 2 + floor**2))
                if area < best[0] - 1e-12:
                    best = (area, float(scale), float(floor))
        # refine around the best point
        scales = best[1] * np.geomspace(0.8, 1.25, 15)
        floors = np.unique(np.concatenate([[0.0], max(best[2], 1e-3 * rmse) * np.geomspace(0.7, 1.4, 15)]))
    return Recalibration(scale=best[1], floor=best[2], method="area_floor")


def cross_validated_areas(
    errors: Sequence[float],
    uncertainty: Sequence[float],
    methods: Sequence[str] = AUTO_CANDIDATES,
    folds: int = AUTO_FOLDS,
    seed: int = 0,
) -> dict[str, float]:
    """Mean miscalibration area on held-out folds of each recalibration method fitted on the other folds."""
    errors, uncertainty = _as_arrays(errors, uncertainty)
    folds = max(2, min(folds, len(errors) // 4))
    assignment = np.random.default_rng(seed).permutation(len(errors)) % folds
    areas = {}
    for method in methods:
        held_out = []
        for fold in range(folds):
            fit, test = assignment != fold, assignment == fold
            fitted = fit_recalibration(errors[fit], uncertainty[fit], method)
            held_out.append(miscalibration_area(errors[test], fitted.apply(uncertainty[test])))
        areas[method] = float(np.mean(held_out))
    return areas


def _fit_auto(errors: np.ndarray, uncertainty: np.ndarray) -> Recalibration:
    if len(errors) < 8:  # too few errors to tell the methods apart out of sample
        return Recalibration(method="identity (too few validation errors)")
    areas = cross_validated_areas(errors, uncertainty)
    best = min(AUTO_CANDIDATES, key=lambda name: (round(areas[name], 4), AUTO_CANDIDATES.index(name)))
    chosen = fit_recalibration(errors, uncertainty, best)
    chosen.method = f"auto: {best} (held-out areas " + ", ".join(f"{k} {v:.4f}" for k, v in areas.items()) + ")"
    return chosen


def calibration_report(errors: Sequence[float], uncertainty: Sequence[float]) -> dict[str, float]:
    """All metrics in one JSON-serialisable dict (errors = true - predicted, in target units)."""
    errors, uncertainty = _as_arrays(errors, uncertainty)
    return {
        "n": int(len(errors)),
        "mae": float(np.mean(np.abs(errors))),
        "rmse": float(np.sqrt(np.mean(errors**2))),
        "mean_uncertainty": float(np.mean(uncertainty)),
        "coverage_1sigma": coverage(errors, uncertainty, 1.0),
        "coverage_2sigma": coverage(errors, uncertainty, 2.0),
        "miscalibration_area": miscalibration_area(errors, uncertainty),
        "spearman_error_uncertainty": spearman_error_uncertainty(errors, uncertainty),
        "negative_log_likelihood": negative_log_likelihood(errors, uncertainty),
    }
