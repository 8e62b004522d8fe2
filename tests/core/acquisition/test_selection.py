"""Active-learning selection on hand-made candidates where the right choice is obvious."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from aiida_nanoos.acquisition.selection import (
    ActiveLearningConfig,
    SimulationBudget,
    acquisition_scores,
    classify_confidence,
    expected_improvement,
    information_gain,
    select_for_simulation,
)

#             0     1     2     3     4     5
PREDICTION = [1.00, 0.20, 0.50, 2.00, 0.52, 0.90]
UNCERTAINTY = [0.05, 0.10, 0.40, 0.60, 0.30, 0.01]


def test_uncertainty_picks_largest_sigma():
    result = select_for_simulation(PREDICTION, UNCERTAINTY, ActiveLearningConfig("uncertainty", budget=2))
    assert result.indices == [3, 2]
    assert result.reasons[0].startswith("high_uncertainty") and "rank 1" in result.reasons[0]


def test_greedy_uncertainty_balances_target_and_sigma():
    # aim at 0.5: candidate 2 (on target, sigma 0.4) beats 4 (0.02 off, sigma 0.3) and 3 (far but sigma 0.6)
    config = ActiveLearningConfig("greedy_uncertainty", budget=3, target_value=0.5, exploration_weight=1.0)
    result = select_for_simulation(PREDICTION, UNCERTAINTY, config)
    expected = -np.abs(np.array(PREDICTION) - 0.5) + np.array(UNCERTAINTY)
    assert result.indices == list(np.argsort(-expected)[:3])
    assert result.indices[0] == 2
    assert result.reasons[0].startswith("high_uncertainty_promising_value")
    # no exploration: only closeness to the target counts
    config = ActiveLearningConfig("greedy_uncertainty", budget=2, target_value=0.5, exploration_weight=0.0)
    assert select_for_simulation(PREDICTION, UNCERTAINTY, config).indices == [2, 4]
    # no target: a lower confidence bound when minimising
    config = ActiveLearningConfig("greedy_uncertainty", budget=1, direction="min", exploration_weight=0.0)
    result = select_for_simulation(PREDICTION, UNCERTAINTY, config)
    assert result.indices == [1] and result.reasons[0].startswith("promising_value")


def test_expected_improvement_matches_formula():
    best = 0.3
    config = ActiveLearningConfig("expected_improvement", budget=2, direction="min")
    scores = acquisition_scores(PREDICTION, UNCERTAINTY, config, best_observed=best)
    mu, sigma = np.array(PREDICTION), np.array(UNCERTAINTY)
    z = (best - mu) / sigma
    np.testing.assert_allclose(scores, (best - mu) * stats.norm.cdf(z) + sigma * stats.norm.pdf(z))
    result = select_for_simulation(PREDICTION, UNCERTAINTY, config, best_observed=best)
    assert result.indices == list(np.argsort(-scores)[:2])
    # predicted improvement first (1), then the uncertain 2 ahead of 4, predicted about as well but surer
    assert result.indices == [1, 2]
    # maximising turns it around; a certain candidate's EI is its plain improvement
    assert expected_improvement([2.0], [0.0], best=1.5, direction="max")[0] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="best_observed"):
        select_for_simulation(PREDICTION, UNCERTAINTY, config)


def test_diverse_uncertainty_spreads_over_embedding_space():
    # four very uncertain candidates in two tight clusters, plus a confident one far away
    embeddings = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [9.9, 10.0], [-30.0, 40.0]])
    uncertainty = [0.9, 0.8, 0.7, 0.6, 0.01]
    prediction = [0.0] * 5
    config = ActiveLearningConfig("diverse_uncertainty", budget=2, diversity_pool_factor=2)
    result = select_for_simulation(prediction, uncertainty, config, embeddings=embeddings)
    assert result.indices == [0, 2]  # most uncertain, then the farthest of the uncertain pool: the other cluster
    plain = select_for_simulation(prediction, uncertainty, ActiveLearningConfig("uncertainty", budget=2))
    assert plain.indices == [0, 1]  # redundant pair, which diversity avoids
    # with a labelled point in the first cluster, start from the other one
    result = select_for_simulation(
        prediction, uncertainty, config, embeddings=embeddings, labelled_embeddings=np.array([[0.05, 0.0]])
    )
    assert result.indices[0] in (2, 3)
    assert all(reason.startswith("diverse_high_uncertainty") for reason in result.reasons)
    with pytest.raises(ValueError, match="embeddings"):
        select_for_simulation(prediction, uncertainty, config)


def test_min_uncertainty_exclusion_and_confidence():
    config = ActiveLearningConfig("uncertainty", budget=10, min_uncertainty=0.2)
    result = select_for_simulation(PREDICTION, UNCERTAINTY, config, exclude=[3])
    assert result.indices == [2, 4]  # 3 is already labelled, the rest are below 0.2
    assert result.n_eligible == 2
    assert result.confidence == ["high", "high", "low", "low", "low", "high"]
    assert classify_confidence([0.1, 0.3], threshold=0.2) == ["high", "low"]


def test_budget_tracker_caps_selection():
    budget = SimulationBudget(total=5)
    config = ActiveLearningConfig("uncertainty", budget=3)
    first = select_for_simulation(PREDICTION, UNCERTAINTY, config, budget=budget)
    second = select_for_simulation(PREDICTION, UNCERTAINTY, config, exclude=first.indices, budget=budget)
    third = select_for_simulation(PREDICTION, UNCERTAINTY, config, budget=budget)
    assert (len(first.indices), len(second.indices), len(third.indices)) == (3, 2, 0)
    assert budget.exhausted and budget.history == [3, 2, 0]
    assert SimulationBudget.from_dict(budget.to_dict()).to_dict() == budget.to_dict()
    with pytest.raises(ValueError, match="exceeded"):
        budget.spend(1)


def test_result_is_json_serialisable():
    result = select_for_simulation(
        PREDICTION, UNCERTAINTY, ActiveLearningConfig("uncertainty", budget=2), identifiers=list("abcdef")
    )
    payload = json.loads(json.dumps(result.to_dict()))
    assert payload["selected_count"] == 2 and payload["total_candidates"] == 6
    assert [entry["identifier"] for entry in payload["selected"]] == ["d", "c"]
    assert payload["selected"][0]["uncertainty"] == 0.60 and payload["selected"][0]["reason"]


def test_information_gain():
    gain = information_gain([0.4, 0.2], [0.1, 0.1])
    assert gain["mean_uncertainty_before"] == pytest.approx(0.3)
    assert gain["absolute_reduction"] == pytest.approx(0.2)
    assert gain["relative_reduction"] == pytest.approx(2 / 3)
    assert gain["entropy_reduction_nats"] == pytest.approx(np.log(4) + np.log(2))
    with pytest.raises(ValueError):
        information_gain([0.1], [0.1, 0.2])


def test_bad_input_refused():
    with pytest.raises(ValueError, match="strategy"):
        ActiveLearningConfig("thompson")
    with pytest.raises(ValueError, match="empty"):
        select_for_simulation([], [], ActiveLearningConfig())
    with pytest.raises(ValueError):
        select_for_simulation([1.0, 2.0], [0.1], ActiveLearningConfig())
    with pytest.raises(ValueError, match="non-negative"):
        select_for_simulation([1.0], [-0.1], ActiveLearningConfig())


# ---------------------------------------------------------------------------- one acquisition implementation
def test_selection_scores_are_the_shared_acquisitions():
    from aiida_nanoos.acquisition import analytic

    rng = np.random.default_rng(4)
    mean, sigma = rng.normal(0.0, 1.0, 50), rng.uniform(0.0, 0.5, 50)
    sigma[:3] = 0.0  # certain candidates too
    for direction in ("min", "max"):
        config = ActiveLearningConfig("greedy_uncertainty", budget=7, exploration_weight=1.7, direction=direction)
        scores = acquisition_scores(mean, sigma, config)
        shared = analytic.acquisition_scores("UCB", mean, sigma, beta=1.7, maximize=direction == "max")
        np.testing.assert_array_equal(scores, shared)  # UCB for max, -LCB for min
        picks = select_for_simulation(mean, sigma, config).indices
        assert picks == np.argsort(-shared, kind="stable")[:7].tolist()
        config = ActiveLearningConfig("expected_improvement", budget=7, direction=direction, xi=0.05)
        ei = analytic.expected_improvement(mean, sigma, 0.3, maximize=direction == "max", xi=0.05)
        np.testing.assert_array_equal(acquisition_scores(mean, sigma, config, best_observed=0.3), ei)
        np.testing.assert_array_equal(expected_improvement(mean, sigma, 0.3, direction, 0.05), ei)
        picks = select_for_simulation(mean, sigma, config, best_observed=0.3).indices
        assert picks == np.argsort(-ei, kind="stable")[:7].tolist()
    # with a target value, greedy_uncertainty is UCB of minus the distance to the target
    config = ActiveLearningConfig("greedy_uncertainty", target_value=0.5, exploration_weight=2.0)
    np.testing.assert_array_equal(
        acquisition_scores(mean, sigma, config), analytic.upper_confidence_bound(-np.abs(mean - 0.5), sigma, 2.0)
    )


def test_diverse_uncertainty_is_the_shared_diverse_batch():
    from aiida_nanoos.acquisition.batch import diverse_batch

    rng = np.random.default_rng(5)
    sigma, embeddings = rng.uniform(0.1, 1.0, 40), rng.normal(size=(40, 3))
    labelled = rng.normal(size=(4, 3))
    config = ActiveLearningConfig("diverse_uncertainty", budget=5, diversity_pool_factor=3)
    result = select_for_simulation(
        np.zeros(40),
        sigma,
        config,
        embeddings=embeddings,
        labelled_embeddings=labelled,
        exclude=[int(np.argmax(sigma))],
    )
    eligible = np.ones(40, bool)
    eligible[int(np.argmax(sigma))] = False
    picks, _, pool = diverse_batch(sigma, embeddings, 5, eligible=eligible, pool_factor=3, labelled_embeddings=labelled)
    assert result.indices == picks and pool == 15
    assert all(f"within the {pool} most uncertain" in reason for reason in result.reasons)


def test_selection_takes_a_model_posterior():
    from aiida_nanoos.acquisition.selection import posterior_acquisition
    from aiida_nanoos.models.posterior import Posterior

    config = ActiveLearningConfig("greedy_uncertainty", direction="max")
    posterior = Posterior(PREDICTION, UNCERTAINTY)
    np.testing.assert_array_equal(
        posterior_acquisition(posterior, config), acquisition_scores(PREDICTION, UNCERTAINTY, config)
    )
