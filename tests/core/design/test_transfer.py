"""Specification of a warm start's model (aiida_nanoos.design.transfer): the earlier landscape carries over to a
campaign whose evaluations cluster at the optimum, and a task on another scale is read on its own."""

import numpy as np
import pytest

from aiida_nanoos.benchmarks.synthetic import landscape
from aiida_nanoos.design.transfer import EarlierTask, fit_transfer_model, on_the_same_scale

pytestmark = pytest.mark.usefixtures("one_blas_thread")

hartmann3 = landscape("hartmann3")


def clustered_campaign(X_pool: np.ndarray, n: int) -> np.ndarray:
    """The pool points a successful campaign has evaluated: the ``n`` best (minimised), where values vary least."""
    return np.argsort(hartmann3(X_pool))[:n]


@pytest.fixture
def related():
    """An earlier campaign's 100 random evaluations of the same property by another method: 1.3x plus an offset."""
    rng = np.random.default_rng(0)
    X_earlier, X_pool = rng.random((100, 3)), rng.random((400, 3))
    return EarlierTask(X_earlier, 1.3 * hartmann3(X_earlier) + 2.0, "related"), X_pool


def test_a_campaign_at_the_optimum_still_follows_the_related_landscape(related):
    """Eight evaluations near the optimum spread far less than the landscape: read on their own scale (and
    transformed on their own) they looked unrelated to the earlier task and the model dropped it."""
    earlier, X_pool = related
    own = clustered_campaign(X_pool, 8)
    model = fit_transfer_model(X_pool[own], hartmann3(X_pool[own]), [earlier], maximize=False, seed=0)
    assert model.task_correlations()[1] > 0.8
    mean = model.gp.posterior(X_pool).mean  # larger is better: the minimised objective negated
    best_20 = set(np.argsort(hartmann3(X_pool))[:20])
    predicted_20 = set(np.argsort(-mean)[:20])
    assert len(best_20 & predicted_20) >= 12


def test_the_first_decision_ranks_by_the_earlier_landscape_alone(related):
    earlier, X_pool = related
    model = fit_transfer_model(np.zeros((0, 3)), np.zeros(0), [earlier], maximize=False, seed=0)
    mean = model.gp.posterior(X_pool).mean
    assert np.corrcoef(mean, -hartmann3(X_pool))[0, 1] > 0.8
    assert np.isfinite(model.best)


def test_values_on_another_scale_are_not_read_on_the_earlier_one(related):
    earlier, X_pool = related
    own = clustered_campaign(X_pool, 6)
    values = hartmann3(X_pool[own])
    assert on_the_same_scale(X_pool[own], values, earlier.X_unit, earlier.y)
    assert not on_the_same_scale(X_pool[own], 1e4 * values, earlier.X_unit, earlier.y)
    assert not on_the_same_scale(X_pool[own], 1e-4 * values, earlier.X_unit, earlier.y)
    assert on_the_same_scale(X_pool[own][:2], 1e4 * values[:2], earlier.X_unit, earlier.y)  # too few to tell
