"""Specification of the acquisition functions, their maximisation and batch selection."""

import numpy as np
import pytest

from aiida_nanoos.acquisition.analytic import (
    acquisition_scores,
    expected_improvement,
    probability_in_range,
    probability_of_improvement,
)
from aiida_nanoos.acquisition.batch import select_batch
from aiida_nanoos.acquisition.feasibility import FeasibilityModel, weight_by_feasibility
from aiida_nanoos.acquisition.optimize import argmax_acquisition, maximize_continuous, score_candidates
from aiida_nanoos.models.gp import GaussianProcess

# one BLAS thread: millisecond tests stay milliseconds on a small shared machine
pytestmark = pytest.mark.usefixtures("one_blas_thread")


@pytest.mark.parametrize("maximize", [True, False])
def test_expected_improvement_matches_monte_carlo(maximize):
    mean, std, best = np.array([0.3, 1.2, -0.5]), np.array([0.8, 0.1, 2.0]), 1.0
    samples = mean + std * np.random.default_rng(0).standard_normal((400_000, 3))
    gain = (samples - best) if maximize else (best - samples)
    mc = np.maximum(gain, 0.0).mean(axis=0)
    np.testing.assert_allclose(expected_improvement(mean, std, best, maximize=maximize), mc, rtol=0.01, atol=2e-4)
    pi_mc = (gain > 0).mean(axis=0)
    np.testing.assert_allclose(probability_of_improvement(mean, std, best, maximize=maximize), pi_mc, atol=0.003)


def test_expected_improvement_without_uncertainty_is_the_plain_improvement():
    assert expected_improvement(np.array([2.5]), np.array([0.0]), 2.0)[0] == pytest.approx(0.5)
    assert expected_improvement(np.array([1.5]), np.array([0.0]), 2.0)[0] == 0.0


def test_probability_in_range_matches_normal_cdf_and_monte_carlo():
    mean, std = np.array([1.3, 0.0]), np.array([0.2, 1.0])
    p = probability_in_range(mean, std, 1.1, 1.5)
    assert p[0] == pytest.approx(0.6826894921, abs=1e-9)  # +-1 sigma
    samples = mean + std * np.random.default_rng(1).standard_normal((200_000, 2))
    np.testing.assert_allclose(p, ((samples >= 1.1) & (samples <= 1.5)).mean(axis=0), atol=0.003)
    with pytest.raises(ValueError, match="low < high"):
        probability_in_range(mean, std, 2.0, 1.0)


def test_confidence_bound_scores_are_higher_is_better_for_both_directions():
    mean, std = np.array([1.0, 2.0]), np.array([1.0, 0.1])
    np.testing.assert_allclose(acquisition_scores("UCB", mean, std, beta=2.0), [3.0, 2.2])
    # minimisation: LCB = mean - 2 std = [-1.0, 1.8]; the first is more promising, so it scores higher
    np.testing.assert_allclose(acquisition_scores("LCB", mean, std, beta=2.0, maximize=False), [1.0, -1.8])
    with pytest.raises(ValueError, match="best"):
        acquisition_scores("EI", mean, std)


def test_continuous_maximisation_finds_the_peak_and_respects_projection():
    peak = np.array([0.3, 0.7])
    score = lambda X: -np.sum((X - peak) ** 2, axis=1)  # noqa: E731
    x, f = maximize_continuous(score, 2, seed=0)
    np.testing.assert_allclose(x, peak, atol=1e-4)
    grid = lambda X: np.round(X * 4) / 4  # noqa: E731  (an integer dimension with 5 levels)
    x, _ = maximize_continuous(score, 2, project=grid, seed=0)
    np.testing.assert_allclose(x, [0.25, 0.75])


def test_batch_selection_spreads_out_instead_of_repeating_one_peak():
    rng = np.random.default_rng(0)
    X = rng.random((12, 1))
    y = np.sin(8 * X[:, 0])
    gp = GaussianProcess(seed=0).fit(X, y)
    pool = np.linspace(0, 1, 201)[:, None]
    # an exploration-heavy UCB: greedy top-4 on the unchanged model takes neighbours of the most uncertain point
    mean, std = gp.predict(pool)
    greedy = np.argsort(-acquisition_scores("UCB", mean, std, beta=50.0))[:4]
    picks = select_batch(gp, pool, 4, "UCB", beta=50.0)
    assert len(set(picks)) == 4
    assert np.min(np.diff(np.sort(pool[greedy, 0]))) < 0.011
    assert np.min(np.diff(np.sort(pool[picks, 0]))) > 0.03
    liar = select_batch(gp, pool, 4, "EI", strategy="constant_liar", best=float(y.max()))
    assert len(set(liar)) == 4


def test_feasibility_model_gives_probability_of_constraint():
    X = np.linspace(0, 1, 30)[:, None]
    stability = X[:, 0]  # feasible (>= 0.5) on the right half
    model = FeasibilityModel(lower=0.5, seed=0).fit(X, stability)
    p = model.probability(np.array([[0.1], [0.9]]))
    assert p[0] < 0.01 and p[1] > 0.99
    weighted = weight_by_feasibility(np.array([1.0, 1.0]), p)
    assert weighted[1] > 0.99 and weighted[0] < 0.01


@pytest.mark.parametrize(("kind", "kwargs"), [("EI", {"best": 1.0}), ("UCB", {"beta": 2.0}), ("PI", {"best": 1.0})])
def test_pruned_argmax_equals_the_full_argmax(kind, kwargs):
    rng = np.random.default_rng(3)
    X = rng.random((300, 4))
    y = np.sin(5 * X[:, 0]) + X[:, 1] ** 2 + 0.05 * rng.standard_normal(300)
    gp = GaussianProcess(seed=0).fit(X, y)
    pool = rng.random((4000, 4))
    i, value = argmax_acquisition(gp, pool, kind, exclude=[0, 1], **kwargs)
    full = score_candidates(gp, pool, kind, **kwargs)
    full[[0, 1]] = -np.inf
    assert i == int(np.argmax(full))
    assert value == pytest.approx(full.max(), rel=1e-10)
