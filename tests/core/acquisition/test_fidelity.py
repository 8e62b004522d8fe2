"""Choosing the fidelity per candidate: a DFT label is worth what it may add to the campaign's top, per predicted
cost, within a share of the batch's DFT cost."""

import numpy as np
import pytest
from scipy.stats import norm

from aiida_nanoos.acquisition.fidelity import choose_dft_labels, reference_value, value_of_dft_label
from aiida_nanoos.acquisition.selection import ActiveLearningConfig, select_for_simulation


def test_a_label_is_worth_its_expected_gain_over_the_top_n_th_best_or_its_chance_of_a_hit():
    # maximising, reference 1.0: a certain 1.5 gains 0.5; a hopeless certain 0.2 gains nothing
    value = value_of_dft_label([1.5, 0.2, 1.0], [1e-9, 1e-9, 0.3], maximize=True, reference=1.0)
    assert value[0] == pytest.approx(0.5) and value[1] == pytest.approx(0.0, abs=1e-12)
    assert value[2] == pytest.approx(0.3 * norm.pdf(0.0))  # EI at the reference = sigma phi(0)
    # minimising turns the direction round
    assert value_of_dft_label([0.5], [1e-9], maximize=False, reference=1.0)[0] == pytest.approx(0.5)
    # a target window: the probability of lying in it
    window = value_of_dft_label([1.3, 3.0], [0.1, 0.1], target_range=(1.1, 1.5))
    assert window[0] == pytest.approx(norm.cdf(2) - norm.cdf(-2)) and window[1] < 1e-12
    # no DFT label yet: every label is news, worth its sigma
    assert value_of_dft_label([0.0, 9.0], [0.4, 0.1]).tolist() == [0.4, 0.1]


def test_the_reference_is_the_top_n_th_best_label_or_the_worst_of_fewer():
    labels = [3.0, 1.0, 2.0, 5.0, 4.0]
    assert reference_value(labels, 2, maximize=True) == 4.0
    assert reference_value(labels, 2, maximize=False) == 2.0
    assert reference_value(labels[:1], 5, maximize=True) == 3.0
    assert reference_value([], 5) is None


def test_cheap_promising_cells_go_first_within_the_cost_share():
    value = np.array([1.0, 1.0, 0.9, 0.5, 0.0])
    cost = np.array([50.0, 1.0, 1.0, 1.0, 1.0])  # the first is as promising as the second but 50x dearer
    choice = choose_dft_labels(value, cost, cost_share=0.25)  # 0.25 x 54 = 13.5 of predicted cost may be spent
    assert choice.indices == [1, 2, 3]  # the 50x cell does not fit; the worthless one never goes
    assert choice.spent == 3.0 and choice.allowance == pytest.approx(13.5)
    # without the cost weighting (exponent 0) the dear cell ranks first and uses the share alone
    blind = choose_dft_labels(value, cost, cost_share=0.25, exponent=0.0)
    assert blind.indices[0] == 0 and blind.spent > blind.allowance  # the best always goes, even beyond the share
    # a count cap and ineligible candidates are respected
    assert choose_dft_labels(value, cost, cost_share=1.0, max_count=2).indices == [1, 2]
    eligible = np.array([True, False, True, True, True])
    assert choose_dft_labels(value, cost, cost_share=1.0, eligible=eligible).indices == [2, 3, 0]


def test_a_batch_where_no_label_can_add_anything_sends_nothing():
    assert choose_dft_labels([0.0, 0.0], [1.0, 2.0], cost_share=1.0).indices == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cost_share": 0.0}, r"cost_share must be in \(0, 1\]"),
        ({"cost_share": 0.5, "exponent": 2.0}, r"exponent must be in \[0, 1\]"),
    ],
)
def test_bad_shares_and_exponents_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        choose_dft_labels([1.0], [1.0], **kwargs)
    with pytest.raises(ValueError, match="costs must be positive"):
        choose_dft_labels([1.0], [0.0], cost_share=0.5)


def test_select_for_simulation_value_per_cost_explains_each_choice():
    config = ActiveLearningConfig(strategy="value_per_cost", budget=4, direction="max", cost_share=0.3)
    result = select_for_simulation(
        [2.0, 2.0, 0.0, 1.9], [0.2, 0.2, 0.01, 0.2], config, best_observed=1.8, costs=[40.0, 2.0, 1.0, 3.0]
    )
    assert result.indices == [1, 3]  # the 40x cell would use the whole share; the certain poor one is worthless
    assert result.reasons[0].startswith("value_per_cost: EI over 1.8")
    with pytest.raises(ValueError, match="needs the predicted cost of each of the 4 candidates"):
        select_for_simulation([2.0, 2.0, 0.0, 1.9], [0.2] * 4, config, best_observed=1.8)
    with pytest.raises(ValueError, match=r"value_per_cost needs cost_share in \(0, 1\]"):
        ActiveLearningConfig(strategy="value_per_cost")
