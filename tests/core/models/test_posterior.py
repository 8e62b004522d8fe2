"""The one Posterior interface: what it holds, that it refuses inconsistent shapes, and that the GP answers it."""

from __future__ import annotations

import numpy as np
import pytest

from aiida_nanoos.models.gp import GaussianProcess
from aiida_nanoos.models.posterior import Posterior

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def test_posterior_holds_arrays_and_subsets_them():
    samples = np.arange(12.0).reshape(3, 4)
    embeddings = np.arange(8.0).reshape(4, 2)
    posterior = Posterior([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4], samples=samples, embeddings=embeddings)
    assert len(posterior) == 4 and posterior.n_samples == 3 and posterior.mean.dtype == float
    part = posterior.subset([3, 1])
    np.testing.assert_array_equal(part.mean, [4.0, 2.0])
    np.testing.assert_array_equal(part.std, [0.4, 0.2])
    np.testing.assert_array_equal(part.samples, samples[:, [3, 1]])
    np.testing.assert_array_equal(part.embeddings, embeddings[[3, 1]])
    assert Posterior([0.0], [0.0]).n_samples == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mean": [0.0, 1.0], "std": [1.0]}, "2 means but 1"),
        ({"mean": [0.0], "std": [-1.0]}, "non-negative"),
        ({"mean": [0.0, 1.0], "std": [1.0, 1.0], "samples": np.zeros((5, 3))}, "samples"),
        ({"mean": [0.0, 1.0], "std": [1.0, 1.0], "embeddings": np.zeros((3, 2))}, "embeddings"),
    ],
)
def test_posterior_refuses_inconsistent_shapes(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Posterior(**kwargs)


def test_gp_posterior_is_its_prediction_and_its_samples_follow_it():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (25, 2))
    y = np.sin(6 * X[:, 0]) + X[:, 1] ** 2
    gp = GaussianProcess("matern52", seed=0).fit(X, y)
    X_new = rng.uniform(0, 1, (6, 2))
    mean, std = gp.predict(X_new)
    posterior = gp.posterior(X_new)
    np.testing.assert_array_equal(posterior.mean, mean)
    np.testing.assert_array_equal(posterior.std, std)
    assert posterior.samples is None and posterior.embeddings is None
    noisy = gp.posterior(X_new, include_noise=True)
    assert np.all(noisy.std > posterior.std)
    drawn = gp.posterior(X_new, n_samples=20000, seed=1)
    np.testing.assert_allclose(drawn.mean, mean)
    np.testing.assert_allclose(drawn.std, std, rtol=1e-6)
    assert drawn.samples.shape == (20000, 6)
    np.testing.assert_allclose(drawn.samples.mean(axis=0), mean, atol=4 * std.max() / np.sqrt(20000) + 1e-9)
    np.testing.assert_allclose(drawn.samples.std(axis=0), std, rtol=0.05)
    again = gp.posterior(X_new, n_samples=20000, seed=1)
    np.testing.assert_array_equal(again.samples, drawn.samples)
