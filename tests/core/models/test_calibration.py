"""Calibration metrics on synthetic Gaussian errors, where the right answers are known, and recalibration."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_nanoos.models.calibration import (
    calibration_curve,
    calibration_report,
    coverage,
    cross_validated_areas,
    fit_recalibration,
    fit_uncertainty_scale,
    miscalibration_area,
    spearman_error_uncertainty,
)


@pytest.fixture(scope="module")
def heteroscedastic():
    """Errors drawn from N(0, sigma_i) with sigma_i varying over a decade: a perfectly calibrated predictor."""
    rng = np.random.default_rng(0)
    sigma = rng.uniform(0.05, 0.5, 20000)
    return rng.normal(0.0, sigma), sigma


def test_calibrated_gaussian_errors(heteroscedastic):
    errors, sigma = heteroscedastic
    assert coverage(errors, sigma, 1.0) == pytest.approx(0.6827, abs=0.01)
    assert coverage(errors, sigma, 2.0) == pytest.approx(0.9545, abs=0.005)
    assert miscalibration_area(errors, sigma) < 0.01
    expected, observed = calibration_curve(errors, sigma)
    np.testing.assert_allclose(observed, expected, atol=0.02)
    # sigma really tracks the error size here
    assert spearman_error_uncertainty(errors, sigma) > 0.3


def test_overconfident_predictor_detected_and_fixed(heteroscedastic):
    errors, sigma = heteroscedastic
    overconfident = sigma / 3.0
    assert coverage(errors, overconfident) < 0.3
    assert miscalibration_area(errors, overconfident) > 0.2
    for method in ("area", "nll", "coverage"):
        scale = fit_uncertainty_scale(errors, overconfident, method=method)
        assert scale == pytest.approx(3.0, rel=0.05), method
        assert coverage(errors, scale * overconfident) == pytest.approx(0.6827, abs=0.015)
        assert miscalibration_area(errors, scale * overconfident) < 0.015


def test_recalibration_fitted_on_validation_transfers_to_test():
    rng = np.random.default_rng(1)
    sigma = rng.uniform(0.1, 1.0, 4000)
    errors = rng.normal(0.0, 2.5 * sigma)  # the model's sigma is 2.5x too small
    scale = fit_uncertainty_scale(errors[:1000], sigma[:1000])
    assert coverage(errors[1000:], scale * sigma[1000:]) == pytest.approx(0.6827, abs=0.03)


def test_auto_recalibration_keeps_honest_sigma_and_fixes_overconfident_sigma():
    rng = np.random.default_rng(3)
    sigma = rng.uniform(0.1, 1.0, 2300)
    honest = rng.normal(0.0, sigma)
    kept = fit_recalibration(honest[:300], sigma[:300])  # 300 validation errors, as in the gnn benchmark
    assert kept.method.startswith("auto: ")
    assert miscalibration_area(honest[300:], kept.apply(sigma[300:])) < 0.03
    assert coverage(honest[300:], kept.apply(sigma[300:])) == pytest.approx(0.6827, abs=0.04)
    overconfident = rng.normal(0.0, 3.0 * sigma)
    fixed = fit_recalibration(overconfident[:300], sigma[:300])
    assert not fixed.method.startswith("auto: identity")
    assert fixed.scale == pytest.approx(3.0, rel=0.15)  # 300 errors fix the factor to about 10 %
    assert miscalibration_area(overconfident[300:], fixed.apply(sigma[300:])) < 0.04
    areas = cross_validated_areas(overconfident[:300], sigma[:300])
    assert areas["identity"] > 0.2 > areas["area"]
    assert fit_recalibration(honest[:5], sigma[:5]).scale == 1.0  # too few errors: sigma left alone


def test_extreme_cases_by_hand():
    # all errors zero: every interval covers everything, area = integral of (1 - p) = 0.5
    assert miscalibration_area(np.zeros(50), np.ones(50)) == pytest.approx(0.5, abs=1e-9)
    # sigma unrelated to the error: no rank correlation
    rng = np.random.default_rng(2)
    assert abs(spearman_error_uncertainty(rng.normal(size=5000), rng.uniform(0.1, 1, 5000))) < 0.05
    assert coverage([0.5, -1.5, 2.5], [1.0, 1.0, 1.0]) == pytest.approx(1 / 3)
    assert coverage([0.5, -1.5, 2.5], [1.0, 1.0, 1.0], n_sigma=2.0) == pytest.approx(2 / 3)


def test_report_and_bad_input(heteroscedastic):
    errors, sigma = heteroscedastic
    # the report of a calibrated predictor says so in numbers; the same errors with sigma halved read overconfident
    report = calibration_report(errors[:5000], sigma[:5000])
    assert report["n"] == 5000
    assert report["coverage_1sigma"] == pytest.approx(0.683, abs=0.02)
    assert report["coverage_2sigma"] == pytest.approx(0.954, abs=0.01)
    assert report["miscalibration_area"] < 0.02
    assert report["mae"] == pytest.approx(np.sqrt(2 / np.pi) * np.mean(sigma[:5000]), rel=0.05)
    assert report["rmse"] == pytest.approx(np.sqrt(np.mean(sigma[:5000] ** 2)), rel=0.05)
    overconfident = calibration_report(errors[:5000], 0.5 * sigma[:5000])
    assert overconfident["coverage_1sigma"] == pytest.approx(0.383, abs=0.02)  # P(|z| < 0.5)
    assert overconfident["miscalibration_area"] > 0.1
    assert overconfident["negative_log_likelihood"] > report["negative_log_likelihood"]
    with pytest.raises(ValueError):
        coverage([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        coverage([], [])
    with pytest.raises(ValueError):
        coverage([1.0], [-1.0])
    with pytest.raises(ValueError, match="method"):
        fit_uncertainty_scale(errors, sigma, method="isotonic")
