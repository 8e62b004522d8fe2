"""Specification of the cost model and cost-aware scores (aiida_nanoos.design.cost)."""

import numpy as np
import pytest

from aiida_nanoos.design.cost import CostModel, cooling_exponent, cost_aware_scores, dft_cost_prior


def test_the_prior_makes_a_64_atom_cell_about_50_times_an_8_atom_one():
    ratio = dft_cost_prior(64) / dft_cost_prior(8)
    assert 45 < ratio < 55
    assert dft_cost_prior(8, n_kpoints=4) == pytest.approx(4 * dft_cost_prior(8, n_kpoints=1))


def test_the_cost_model_learns_the_exponent_the_timings_show():
    rng = np.random.default_rng(0)
    atoms = rng.integers(4, 33, size=40).astype(float)
    seconds = 3.0 * atoms**2.4 * np.exp(rng.normal(0, 0.1, 40))
    model = CostModel(prior_exponents=[1.9]).fit(atoms[:, None], seconds)
    assert model.exponents[0] == pytest.approx(2.4, abs=0.1)
    assert model.predict([[16.0]])[0] == pytest.approx(3.0 * 16**2.4, rel=0.15)


def test_two_timings_cannot_make_the_exponent_wild():
    model = CostModel(prior_exponents=[1.9]).fit([[8.0], [9.0]], [1.0, 10.0])  # a 10x jump for one atom more
    assert 1.9 < model.exponents[0] < 6.0
    assert CostModel(prior_exponents=[1.9], strength=0.0).fit([[8.0], [9.0]], [1.0, 10.0]).exponents[0] > 19


def test_the_cost_exponent_cools_from_one_to_zero_over_the_budget():
    assert cooling_exponent(spent=10, budget=110, spent_initially=10) == 1.0
    assert cooling_exponent(spent=60, budget=110, spent_initially=10) == pytest.approx(0.5)
    assert cooling_exponent(spent=200, budget=110, spent_initially=10) == 0.0


def test_cost_aware_scores_rank_the_cheapest_of_the_near_best_first():
    acquisition, cost = np.array([1.0, 0.8, 0.6, 0.0]), np.array([10.0, 2.0, 0.5, 0.1])
    scores = cost_aware_scores(acquisition, cost, exponent=1.0)  # within 0.3 x 1.0 of 1.0
    assert np.argmax(scores) == 1 and np.isinf(scores[2]) and np.isinf(scores[3])
    assert np.argmax(cost_aware_scores(acquisition, cost, exponent=1.0, tolerance=0.5)) == 2
    assert np.argmax(cost_aware_scores(acquisition, cost, exponent=0.0)) == 0  # budget spent: cost ignored
    assert np.argmax(cost_aware_scores(acquisition, cost, eligible=np.array([False, True, True, True]))) == 2
    assert np.argmax(cost_aware_scores(np.ones(3), np.array([3.0, 1.0, 2.0]))) == 1  # all alike: the cheapest
    with pytest.raises(ValueError, match="positive"):
        cost_aware_scores(np.array([1.0]), np.array([0.0]))
