"""Specification of log expected improvement and of the GP-Hedge portfolio of acquisitions."""

import numpy as np
import pytest

from aiida_nanoos.acquisition.analytic import acquisition_scores, expected_improvement, log_expected_improvement
from aiida_nanoos.acquisition.optimize import argmax_acquisition
from aiida_nanoos.acquisition.portfolio import Hedge
from aiida_nanoos.design.bo import BOSettings, fit_gp_model, hedge_argmax
from aiida_nanoos.models.gp import GaussianProcess

pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.mark.parametrize("maximize", [True, False])
def test_log_ei_is_the_log_of_ei_where_ei_is_representable(maximize):
    mean = np.array([-30.0, -8.0, -1.5, -1.0, -0.5, 0.0, 0.7, 3.0])
    mean = mean if maximize else -mean
    std = np.array([1.0, 0.5, 2.0, 1.0, 0.1, 0.3, 1.0, 0.2])
    ei = expected_improvement(mean, std, 0.0, maximize=maximize)
    log_ei = log_expected_improvement(mean, std, 0.0, maximize=maximize)
    np.testing.assert_allclose(log_ei, np.log(ei), rtol=1e-9)


def test_log_ei_ranks_points_where_ei_underflows_to_zero():
    """Far below the incumbent EI is exactly 0 for every point (ties); log EI still prefers the nearer / wider one,
    and follows the asymptote log phi(z) - 2 log|z| + log std."""
    mean, std = np.array([-60.0, -50.0, -50.0]), np.array([1.0, 1.0, 1.2])
    assert np.all(expected_improvement(mean, std, 0.0) == 0.0)
    log_ei = log_expected_improvement(mean, std, 0.0)
    assert np.all(np.isfinite(log_ei)) and log_ei[0] < log_ei[1] < log_ei[2]
    z = -1e5
    expected = -0.5 * z * z - 0.5 * np.log(2 * np.pi) - 2 * np.log(-z)
    assert log_expected_improvement(np.array([z]), np.array([1.0]), 0.0)[0] == pytest.approx(expected, rel=1e-9)


def test_pool_argmax_of_log_ei_is_exact():
    rng = np.random.default_rng(2)
    X = rng.random((25, 2))
    gp = GaussianProcess().fit(X, np.sin(5 * X[:, 0]) + X[:, 1])
    pool = rng.random((3000, 2))
    scores = acquisition_scores("LOGEI", *gp.predict(pool), best=1.5)
    i, value = argmax_acquisition(gp, pool, "LOGEI", best=1.5)
    assert i == int(np.argmax(scores)) and value == pytest.approx(scores.max())


def test_hedge_gains_and_probabilities_follow_hoffman_et_al():
    hedge = Hedge(("LOGEI", "PI", "UCB"), eta=2.0)
    np.testing.assert_allclose(hedge.probabilities(), [1 / 3] * 3)
    hedge.reward([0.5, -1.0, 0.0])
    hedge.reward([0.5, 0.0, 1.0])
    assert hedge.gains == [1.0, -1.0, 1.0]
    weights = np.exp(2.0 * np.array([1.0, -1.0, 1.0]))
    np.testing.assert_allclose(hedge.probabilities(), weights / weights.sum())
    rng = np.random.default_rng(0)
    draws = [hedge.choose([np.zeros(2)] * 3, rng) for _ in range(4000)]
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / 4000, weights / weights.sum(), atol=0.02)
    again = Hedge.from_dict(hedge.to_dict())
    assert again.gains == hedge.gains and again.nominees == [[0.0, 0.0]] * 3
    with pytest.raises(ValueError, match="portfolio of 3"):
        hedge.reward([1.0])


def test_hedge_pick_is_a_nominee_and_the_next_step_rewards_the_nominees_with_the_model_mean():
    rng = np.random.default_rng(5)
    X = rng.random((12, 2))
    y = -((X[:, 0] - 0.3) ** 2) - (X[:, 1] - 0.6) ** 2
    pool = rng.random((400, 2))
    model = fit_gp_model(X, y, maximize=True)
    settings = BOSettings(acquisition="HEDGE", beta=2.0)
    hedge = Hedge()
    pick, kind = hedge_argmax(model, pool, settings, hedge, rng)
    assert kind in hedge.portfolio and pool[pick].tolist() in hedge.nominees
    assert hedge.gains == [0.0, 0.0, 0.0]  # nothing to reward on the first step
    nominees = np.asarray(hedge.nominees)
    model = fit_gp_model(np.vstack([X, pool[pick]]), np.append(y, -0.1), maximize=True)
    expected = (model.gp.predict(nominees, return_std=False) - model.gp.y_mean) / model.gp.y_std
    hedge_argmax(model, pool, settings, hedge, rng)
    np.testing.assert_allclose(hedge.gains, expected)
