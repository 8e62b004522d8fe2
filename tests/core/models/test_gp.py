"""Specification of the Gaussian-process surrogate (aiida_nanoos.models.gp)."""

import json

import numpy as np
import pytest
from scipy.optimize import approx_fprime

from aiida_nanoos.models.gp import GaussianProcess

# one BLAS thread: millisecond tests stay milliseconds on a small shared machine
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _data(n=60, seed=0, noise=0.01):
    rng = np.random.default_rng(seed)
    X = rng.random((n, 3))
    # x0 matters most, x1 a little, x2 not at all
    y = np.sin(6 * X[:, 0]) + 0.3 * X[:, 1] + noise * rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize("kernel", ["matern52", "rbf"])
@pytest.mark.parametrize("ard", [True, False])
def test_log_marginal_likelihood_gradient_is_exact(kernel, ard):
    X, y = _data(30)
    gp = GaussianProcess(kernel, ard=ard)
    gp._set_scaling(X, y)
    Xs, ys = gp._scale_x(X), (y - gp.y_mean) / gp.y_std
    priors = gp._resolved_priors(3)
    theta = np.array(([0.1, -0.3, 0.5] if ard else [0.2]) + [0.2, np.log(0.05)])
    f, g = gp._neg_log_posterior(theta, Xs, ys, priors)
    numeric = approx_fprime(theta, lambda t: gp._neg_log_posterior(t, Xs, ys, priors)[0], 1e-6)
    np.testing.assert_allclose(g, numeric, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernel", ["matern52", "rbf"])
def test_recovers_known_function_and_ranks_relevance(kernel):
    X, y = _data(80)
    gp = GaussianProcess(kernel, seed=1).fit(X, y)
    Xt = np.random.default_rng(5).random((200, 3))
    truth = np.sin(6 * Xt[:, 0]) + 0.3 * Xt[:, 1]
    mean, std = gp.predict(Xt)
    assert np.sqrt(np.mean((mean - truth) ** 2)) < 0.05
    # calibrated: most errors within 3 std
    assert np.mean(np.abs(mean - truth) < 3 * std + 0.02) > 0.9
    relevance = gp.relevance()
    assert relevance[0] > relevance[1] > relevance[2]


def test_hyperparameters_round_trip_through_json():
    X, y = _data(40)
    gp = GaussianProcess(seed=3).fit(X, y)
    record = json.loads(json.dumps(gp.get_hyperparameters()))
    again = GaussianProcess.from_hyperparameters(record, X, y)
    Xt = np.random.default_rng(1).random((50, 3))
    m1, s1 = gp.predict(Xt)
    m2, s2 = again.predict(Xt)
    np.testing.assert_allclose(m1, m2, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s1, s2, rtol=1e-10, atol=1e-12)


def test_duplicate_inputs_and_constant_outputs_do_not_fail():
    X = np.array([[0.1, 0.2]] * 10 + [[0.5, 0.5]] * 5)
    y = np.array([1.0] * 10 + [2.0] * 5)
    gp = GaussianProcess(noise_floor=1e-10, noise_variance_bounds=(1e-10, 1.0)).fit(X, y)
    mean = gp.predict(X[[0, -1]], return_std=False)
    np.testing.assert_allclose(mean, [1.0, 2.0], atol=1e-3)
    flat = GaussianProcess().fit(np.random.default_rng(0).random((8, 2)), np.full(8, 3.0))
    m, s = flat.predict(np.array([[0.3, 0.3]]))
    assert m[0] == pytest.approx(3.0) and np.isfinite(s[0])


def test_jitter_escalates_on_a_singular_kernel():
    gp = GaussianProcess()
    K = np.ones((5, 5))  # rank one
    L, jitter = gp._cholesky(K)
    assert jitter > 0
    np.testing.assert_allclose(L @ L.T, K + jitter * np.eye(5), atol=1e-12)


def test_joint_covariance_matches_marginal_std():
    X, y = _data(30)
    gp = GaussianProcess(seed=0).fit(X, y)
    Xt = np.random.default_rng(2).random((6, 3))
    mean, cov = gp.predict(Xt, return_cov=True)
    m2, std = gp.predict(Xt)
    np.testing.assert_allclose(mean, m2)
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), std, rtol=1e-6)
    assert np.all(np.linalg.eigvalsh(cov) > -1e-10)


def test_std_shrinks_at_observations_and_grows_away():
    X, y = _data(20, noise=0.0)
    gp = GaussianProcess(seed=0).fit(X, y)
    _, at = gp.predict(X)
    _, far = gp.predict(np.full((1, 3), 3.0))
    assert at.max() < 0.1 * far[0]


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="kernel"):
        GaussianProcess("cubic")
    with pytest.raises(ValueError, match="rows"):
        GaussianProcess().fit(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        GaussianProcess().fit(np.array([[np.nan, 0.0]]), np.zeros(1))


def test_std_bound_is_an_upper_bound_and_mean_is_exact():
    X, y = _data(80)
    gp = GaussianProcess(seed=0).fit(X, y)
    Xt = np.random.default_rng(4).random((500, 3)) * 1.4 - 0.2
    mean, std = gp.predict(Xt)
    mean_b, std_ub = gp.predict_mean_and_std_bound(Xt)
    np.testing.assert_allclose(mean_b, mean, rtol=1e-12, atol=1e-12)
    assert np.all(std_ub >= std * (1 - 1e-9))


@pytest.mark.parametrize("dims", [2, 8])
def test_dimension_scaled_prior_sets_the_lengthscale_where_the_data_are_silent(dims):
    """Replicate measurements at one point say nothing about the lengthscale (the kernel matrix does not depend on it),
    so the MAP lengthscale is the prior's mode: BoTorch's 0.205 sqrt(d) of the unit range with 'dimension_scaled',
    0.5 whatever d with the weak default."""
    X = np.tile(np.random.default_rng(1).random((1, dims)), (4, 1))
    y = np.array([1.0, 1.2, 0.9, 1.1])
    scaled = GaussianProcess(input_scaling="none", priors="dimension_scaled").fit(X, y)
    np.testing.assert_allclose(scaled.lengthscales, np.exp(np.sqrt(2) - 3) * np.sqrt(dims), rtol=0.02)
    weak = GaussianProcess(input_scaling="none", priors="default").fit(X, y)
    np.testing.assert_allclose(weak.lengthscales, 0.5, rtol=0.02)


def test_dimension_scaled_prior_keeps_few_points_in_six_dimensions_from_becoming_needles():
    """Eight points of a smooth 6-D function: without a prior the likelihood may shrink lengthscales to fit every
    point; the dimension-scaled prior keeps the geometric-mean lengthscale within a factor 3 of its mode 0.5."""
    rng = np.random.default_rng(3)
    X = rng.random((8, 6))
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + 0.1 * rng.standard_normal(8)
    gp = GaussianProcess(input_scaling="none", priors="dimension_scaled", n_restarts=3).fit(X, y)
    mode = np.exp(np.sqrt(2) - 3) * np.sqrt(6)
    assert mode / 3 < np.exp(np.mean(np.log(gp.lengthscales))) < 3 * mode
    with pytest.raises(ValueError, match="dimension_scaled"):
        GaussianProcess(priors="botorch")
