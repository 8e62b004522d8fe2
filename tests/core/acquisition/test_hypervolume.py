"""Specification of the moocore hypervolume and the exact EHVI, against the pure-Python WFG code they replaced."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_nanoos.acquisition import hypervolume_wfg as oracle
from aiida_nanoos.acquisition.batch import select_hypervolume_batch
from aiida_nanoos.acquisition.hypervolume import (
    expected_hypervolume_improvement,
    hypervolume,
    hypervolume_improvement,
    hypervolume_improvements,
    nondominated_boxes,
)
from aiida_nanoos.design.pareto import non_dominated_sort, pareto_mask
from aiida_nanoos.models.gp import GaussianProcess

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def random_front(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """Points near the simplex sum = 1 (many mutually non-dominated) plus some scattered, dominated ones."""
    on_front = rng.dirichlet(np.ones(m), size=n) + 0.02 * rng.random((n, m))
    scattered = rng.random((n // 3, m))
    return np.vstack([on_front, scattered])


@pytest.mark.parametrize("m", [2, 3, 4])
def test_hypervolume_equals_the_wfg_oracle_on_random_fronts(m):
    rng = np.random.default_rng(m)
    directions = ["min", "max"] * 2
    for _ in range(15):
        F = random_front(rng, int(rng.integers(1, 30)), m)
        ref = np.full(m, 1.1)
        expected = oracle.hypervolume(F, ref)
        assert expected > 0
        assert hypervolume(F, ref) == pytest.approx(expected, rel=1e-10)
        # the same set seen with some objectives maximised (values and reference mirrored)
        sign = np.array([1.0 if d == "min" else -1.0 for d in directions[:m]])
        assert hypervolume(F * sign, ref * sign, directions[:m]) == pytest.approx(expected, rel=1e-10)


def test_hypervolume_ignores_points_outside_the_reference_box_and_empty_fronts():
    assert hypervolume(np.array([[5.0, 0.0], [0.5, 4.0]]), [4.0, 4.0]) == 0.0
    assert hypervolume(np.empty((0, 3)), [1.0, 1.0, 1.0]) == 0.0
    assert hypervolume(np.array([[1.0, 3.0], [3.0, 1.0], [2.0, 2.0]]), [4.0, 4.0]) == pytest.approx(6.0)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_nondominated_boxes_are_disjoint_and_cover_what_the_front_leaves(m):
    rng = np.random.default_rng(10 + m)
    F = random_front(rng, 12, m)
    ref = np.full(m, 1.1)
    lower, upper = nondominated_boxes(F, ref)
    assert np.all(lower < upper)
    # clipped at the origin (every point is >= 0): box volumes add up to the reference box minus the hypervolume
    clipped = np.maximum(lower, 0.0)
    volumes = np.prod(upper - clipped, axis=1)
    assert volumes.sum() == pytest.approx(np.prod(ref) - oracle.hypervolume(F, ref), rel=1e-10)
    # pairwise disjoint (overlaps of measure zero only)
    overlap = np.prod(
        np.clip(np.minimum(upper[:, None], upper[None]) - np.maximum(clipped[:, None], clipped[None]), 0.0, None),
        axis=2,
    )
    np.fill_diagonal(overlap, 0.0)
    assert overlap.max() == 0.0
    # no box holds a point some front member dominates: its lower corner (finite part) is not dominated
    corners = np.where(np.isfinite(lower), lower, -1.0) + 1e-9
    dominated = np.all(F[None, :, :] <= corners[:, None, :], axis=2).any(axis=1)
    assert not dominated.any()


@pytest.mark.parametrize("m", [2, 3, 4])
def test_hypervolume_improvements_equal_the_oracle_difference(m):
    rng = np.random.default_rng(20 + m)
    F = random_front(rng, 15, m)
    ref = np.full(m, 1.1)
    base = oracle.hypervolume(F, ref)
    new = np.vstack([rng.random((20, m)) * 1.2, F[:3], np.zeros((1, m))])  # some dominated, outside, on the front
    expected = np.array([oracle.hypervolume(np.vstack([F, y]), ref) - base for y in new])
    np.testing.assert_allclose(hypervolume_improvements(new, F, ref), expected, rtol=1e-10, atol=1e-14)
    assert hypervolume_improvement(np.zeros(m), F, ref) == pytest.approx(np.prod(ref) - base, rel=1e-10)
    assert hypervolume_improvement(F[0], F, ref) == 0.0


def test_monte_carlo_ehvi_uses_the_oracle_draws_and_agrees_with_it_in_three_objectives():
    rng = np.random.default_rng(3)
    F = random_front(rng, 10, 3)
    ref = [1.1, 1.1, 1.1]
    means, stds = rng.random((5, 3)) * 0.8, 0.05 + 0.2 * rng.random((5, 3))
    ours = expected_hypervolume_improvement(means, stds, F, ref, method="monte_carlo", n_samples=64, seed=7)
    theirs = oracle.expected_hypervolume_improvement(means, stds, F, ref, n_samples=64, seed=7)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_exact_ehvi_is_the_limit_of_the_monte_carlo_estimate(m):
    rng = np.random.default_rng(30 + m)
    F = random_front(rng, 8, m)
    ref = np.full(m, 1.1)
    means, stds = rng.random((6, m)) * 0.5, 0.05 + 0.2 * rng.random((6, m))  # improvement not a rare event
    directions = ["max"] * m  # mirrored problem: the same numbers must come out
    exact = expected_hypervolume_improvement(-means, stds, -F, -ref, directions)
    n = 20_000
    z = np.random.default_rng(1).standard_normal((n, 1, m))
    draws = means[None] + z * stds[None]
    hvi = hypervolume_improvements(draws.reshape(-1, m), F, ref).reshape(n, -1)
    standard_error = hvi.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(exact - hvi.mean(axis=0)) < 4.0 * standard_error + 1e-12)
    assert np.all(exact > 0)


def test_ehvi_of_a_candidate_that_dominates_the_front_is_positive_and_of_a_certain_dominated_one_zero():
    front = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 3.0], [3.0, 3.0, 1.0]])
    ref = [4.0, 4.0, 4.0]
    means = np.array([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5], [3.5, 3.5, 3.5], [3.5, 3.5, 3.5], [5.0, 0.0, 0.0]])
    stds = np.array([[0.0, 0.0, 0.0], [0.3, 0.3, 0.3], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.0, 0.0, 0.0]])
    ehvi = expected_hypervolume_improvement(means, stds, front, ref)
    # certain and dominating everything: the improvement is the whole box minus the front's volume
    assert ehvi[0] == pytest.approx(3.5**3 - oracle.hypervolume(front, ref), rel=1e-12)
    assert ehvi[1] > 0
    assert ehvi[2] == 0.0  # dominated by (3, 3, 1)... by every member, and certain
    assert ehvi[3] > 0  # dominated on average, but it may come out better
    assert ehvi[4] == 0.0  # outside the reference box in the first objective
    # here, behind the front, only the chance of landing in front of it counts: it grows with the uncertainty
    sigmas = np.outer([0.1, 0.3, 0.6, 1.0], [1.0, 1.0, 1.0])
    spread = expected_hypervolume_improvement(np.repeat(means[2:3], 4, axis=0), sigmas, front, ref)
    assert np.all(np.diff(spread) > 0)


def test_ehvi_without_a_front_is_the_expected_volume_of_the_reference_box():
    means, stds = np.array([[1.0, 2.0]]), np.array([[0.0, 0.0]])
    assert expected_hypervolume_improvement(means, stds, np.empty((0, 2)), [4.0, 4.0])[0] == pytest.approx(6.0)
    with pytest.raises(ValueError, match="'exact' or 'monte_carlo'"):
        expected_hypervolume_improvement(means, stds, np.empty((0, 2)), [4.0, 4.0], method="sobol")
    with pytest.raises(ValueError, match="non-negative"):
        expected_hypervolume_improvement(means, -stds - 1, np.empty((0, 2)), [4.0, 4.0])


def brute_pareto_mask(F: np.ndarray) -> np.ndarray:
    dominated = [(np.all(F <= f, axis=1) & np.any(F < f, axis=1)).any() for f in F]
    return ~np.asarray(dominated, dtype=bool)


def test_pareto_mask_and_sort_follow_the_definition_with_ties_and_nan():
    rng = np.random.default_rng(5)
    for trial in range(100):
        m, n = int(rng.integers(1, 5)), int(rng.integers(0, 25))
        Y = rng.integers(0, 4, (n, m)).astype(float)  # many ties and duplicates
        if trial % 3 == 0 and n:
            Y[rng.integers(n)] = np.nan  # compared with nothing: on the first front
        np.testing.assert_array_equal(pareto_mask(Y), brute_pareto_mask(Y))
        np.testing.assert_array_equal(pareto_mask(-Y, ["max"] * m), brute_pareto_mask(Y))
        remaining, fronts = np.arange(n), []
        while remaining.size:
            mask = brute_pareto_mask(Y[remaining])
            fronts.append(remaining[mask].tolist())
            remaining = remaining[~mask]
        assert [f.tolist() for f in non_dominated_sort(Y)] == fronts


def two_objective_models(X: np.ndarray) -> tuple[list[GaussianProcess], np.ndarray]:
    """Two fitted GPs for a 1-D trade-off: f1 = x^2, f2 = (x - 1)^2 (both minimised), observed at X."""
    Y = np.column_stack([X[:, 0] ** 2, (X[:, 0] - 1.0) ** 2])
    models = [GaussianProcess(input_scaling="none", seed=j).fit(X, Y[:, j]) for j in range(2)]
    return models, Y


def test_hypervolume_batch_picks_distinct_spread_candidates_and_its_first_pick_maximises_ehvi():
    X = np.array([[-0.5], [0.0], [1.0], [1.5]])
    models, Y = two_objective_models(X)
    pool = np.vstack([np.linspace(-0.5, 1.5, 41)[:, None], [[0.5], [0.5]]])  # 0.5 three times
    ref = [4.0, 4.0]
    picks, values = select_hypervolume_batch(models, pool, 3, Y, ref, ["min", "min"], exclude=[0])
    means, stds = zip(*(m.predict(pool) for m in models), strict=True)
    ehvi = expected_hypervolume_improvement(np.column_stack(means), np.column_stack(stds), Y, ref, ["min", "min"])
    ehvi[0] = -np.inf
    assert picks[0] == int(np.argmax(ehvi)) and values[0] == pytest.approx(ehvi.max())
    assert len(set(picks)) == 3 and 0 not in picks
    # kriging believer: once a point near x is fantasised, its twins promise little, so the batch spreads out
    assert len({round(float(pool[i, 0]), 6) for i in picks}) == 3
    assert min(values) > 0
    liar, _ = select_hypervolume_batch(models, pool, 3, Y, ref, ["min", "min"], strategy="constant_liar")
    assert len(set(liar)) == 3
