"""Specification of Pareto fronts, exact hypervolume and Monte-Carlo EHVI."""

import itertools

import numpy as np
import pytest

from aiida_nanoos.acquisition.hypervolume import (
    expected_hypervolume_improvement,
    hypervolume,
    hypervolume_improvement,
)
from aiida_nanoos.design.pareto import non_dominated_sort, pareto_mask

# one BLAS thread: millisecond tests stay milliseconds on a small shared machine
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def test_pareto_front_of_a_known_set_with_mixed_directions():
    # columns: band gap (max), formation energy (min)
    Y = np.array([[1.0, -1.0], [2.0, -0.5], [1.5, -1.2], [0.5, -0.2], [2.0, -0.4], [1.0, -1.0]])
    mask = pareto_mask(Y, ["max", "min"])
    assert mask.tolist() == [False, True, True, False, False, False]
    fronts = non_dominated_sort(Y, ["max", "min"])
    assert [sorted(f.tolist()) for f in fronts] == [[1, 2], [0, 4, 5], [3]]


def test_hypervolume_2d_by_hand():
    # minimisation, reference (4, 4): staircase of (1,3), (2,2), (3,1) -> 3 + 2 + 1 = 6
    F = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [3.5, 3.5]])
    assert hypervolume(F, [4.0, 4.0]) == pytest.approx(6.0)
    # maximisation of both with reference (0, 0): same staircase mirrored
    assert hypervolume(4.0 - F, [0.0, 0.0], ["max", "max"]) == pytest.approx(6.0)
    # a point outside the reference box contributes nothing
    assert hypervolume(np.array([[5.0, 0.0]]), [4.0, 4.0]) == 0.0


def test_hypervolume_3d_by_hand_and_against_inclusion_exclusion():
    F = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 3.0], [3.0, 3.0, 1.0]])
    ref = np.array([4.0, 4.0, 4.0])
    # boxes 3*2*1=6, 2*3*1=6, 1*1*3=3; pairwise overlaps 2*2*1=4, 1*1*1=1, 1*1*1=1; triple 1*1*1=1
    assert hypervolume(F, ref) == pytest.approx(6 + 6 + 3 - 4 - 1 - 1 + 1)

    rng = np.random.default_rng(0)
    P = rng.random((7, 4))
    ref4 = np.ones(4) * 1.1
    total = 0.0
    for k in range(1, len(P) + 1):
        for subset in itertools.combinations(range(len(P)), k):
            corner = P[list(subset)].max(axis=0)
            total += (-1) ** (k + 1) * np.prod(ref4 - corner)
    assert hypervolume(P, ref4) == pytest.approx(total, rel=1e-10)


def test_hypervolume_improvement_and_ehvi_agree_when_certain():
    front = np.array([[1.0, 3.0], [3.0, 1.0]])
    ref = [4.0, 4.0]
    assert hypervolume_improvement([2.0, 2.0], front, ref) == pytest.approx(1.0)
    assert hypervolume_improvement([3.5, 3.5], front, ref) == 0.0
    ehvi = expected_hypervolume_improvement(
        np.array([[2.0, 2.0], [3.5, 3.5]]), np.zeros((2, 2)), front, ref, n_samples=16
    )
    np.testing.assert_allclose(ehvi, [1.0, 0.0])


def test_ehvi_prefers_promising_uncertain_candidates_and_matches_brute_force():
    front = np.array([[1.0, 3.0], [3.0, 1.0]])
    ref = [4.0, 4.0]
    means = np.array([[2.0, 2.0], [2.0, 2.0], [3.8, 3.8]])
    stds = np.array([[0.01, 0.01], [0.8, 0.8], [0.1, 0.1]])
    ehvi = expected_hypervolume_improvement(means, stds, front, ref, n_samples=2000, seed=1)
    assert ehvi[1] > ehvi[0] > ehvi[2]
    z = np.random.default_rng(9).standard_normal((1000, 2))
    brute = np.mean([hypervolume_improvement(means[1] + s * stds[1], front, ref) for s in z])
    assert ehvi[1] == pytest.approx(brute, rel=0.08)


def test_ehvi_in_three_objectives_matches_brute_force():
    front = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 3.0], [3.0, 3.0, 1.0]])
    ref = [4.0, 4.0, 4.0]
    mean, std = np.array([[2.0, 2.0, 2.0]]), np.array([[0.5, 0.5, 0.5]])
    ehvi = expected_hypervolume_improvement(mean, std, front, ref, method="monte_carlo", n_samples=300, seed=3)
    z = np.random.default_rng(3).standard_normal((300, 3))
    brute = np.mean([hypervolume_improvement(mean[0] + s * std[0], front, ref) for s in z])
    assert ehvi[0] == pytest.approx(brute, rel=1e-10)
