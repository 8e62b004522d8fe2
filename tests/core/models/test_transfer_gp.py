"""Specification of the multi-task GP behind warm starts (aiida_nanoos.models.transfer_gp)."""

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from aiida_nanoos.models.gp import GaussianProcess
from aiida_nanoos.models.transfer_gp import TransferGaussianProcess

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def landscape(X):
    return np.sin(6 * X[:, 0]) + 0.5 * np.cos(4 * X[:, 1])


def other_landscape(X):
    return np.cos(9 * X[:, 1] + 1.0) * X[:, 0] ** 2


def rmse(prediction, truth):
    return float(np.sqrt(np.mean((prediction - truth) ** 2)))


def test_log_posterior_gradient_is_exact():
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    task = np.r_[np.zeros(10, int), np.ones(18, int), np.full(12, 2)]
    y = landscape(X) + 0.3 * task
    gp = TransferGaussianProcess().fit(X, y, task, optimize=False)  # sets the layout and the standardisation
    ys = (y - gp.y_mean[task]) / gp.y_std[task]
    theta = gp.theta + rng.normal(0, 0.3, gp.theta.size)
    analytic = gp._neg_log_posterior(theta, X, ys, task)[1]
    numeric = approx_fprime(theta, lambda t: gp._neg_log_posterior(t, X, ys, task)[0], 1e-6)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-4, atol=1e-3)


def test_a_related_earlier_task_makes_four_new_points_enough():
    rng = np.random.default_rng(1)
    X_new, X_earlier, X_test = rng.random((4, 2)), rng.random((60, 2)), rng.random((300, 2))
    y_earlier = 1.3 * landscape(X_earlier) + 2.0  # another method: rescaled and offset
    X = np.vstack([X_new, X_earlier])
    y = np.concatenate([landscape(X_new), y_earlier])
    task = np.r_[np.zeros(4, int), np.ones(60, int)]
    transfer = TransferGaussianProcess().fit(X, y, task)
    alone = GaussianProcess(input_scaling="none").fit(X_new, landscape(X_new))
    transfer_error = rmse(transfer.posterior(X_test).mean, landscape(X_test))
    alone_error = rmse(alone.predict(X_test, return_std=False), landscape(X_test))
    assert transfer.task_correlations()[1] > 0.8
    assert transfer_error < 0.7 * alone_error


def test_an_unrelated_earlier_task_is_learned_to_be_unrelated_and_does_no_harm():
    rng = np.random.default_rng(2)
    X_new, X_earlier, X_test = rng.random((30, 2)), rng.random((60, 2)), rng.random((300, 2))
    X = np.vstack([X_new, X_earlier])
    y = np.concatenate([landscape(X_new), other_landscape(X_earlier)])
    task = np.r_[np.zeros(30, int), np.ones(60, int)]
    transfer = TransferGaussianProcess().fit(X, y, task)
    alone = GaussianProcess(input_scaling="none").fit(X_new, landscape(X_new))
    posterior = transfer.posterior(X_test)
    assert abs(transfer.task_correlations()[1]) < 0.5
    assert rmse(posterior.mean, landscape(X_test)) < 1.25 * rmse(
        alone.predict(X_test, return_std=False), landscape(X_test)
    )
    assert np.all(posterior.std > 0)


def test_the_posterior_is_of_the_target_in_its_own_units():
    rng = np.random.default_rng(3)
    X = rng.random((50, 1))
    task = np.r_[np.zeros(25, int), np.ones(25, int)]
    y = np.where(task == 0, 100.0 + 10.0 * np.sin(5 * X[:, 0]), -3.0 + np.sin(5 * X[:, 0]))
    posterior = TransferGaussianProcess().fit(X, y, task).posterior(X[:25])
    np.testing.assert_allclose(posterior.mean, y[:25], atol=0.5)


def test_without_target_observations_the_posterior_follows_the_related_task():
    """A campaign's first decision: no point of its own yet, the earlier task's landscape ranks the candidates."""
    rng = np.random.default_rng(4)
    X, X_test = rng.random((40, 2)), rng.random((200, 2))
    gp = TransferGaussianProcess().fit(X, 2.0 * landscape(X) + 5.0, np.ones(40, int))
    posterior = gp.posterior(X_test)
    assert np.corrcoef(posterior.mean, landscape(X_test))[0, 1] > 0.95
    assert np.all(posterior.std > 0)
    assert gp.task_correlations()[1] > 0.3
