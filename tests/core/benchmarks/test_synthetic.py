"""The synthetic landscapes reach their published minima at their published minimisers."""

import numpy as np
import pytest

from aiida_nanoos.benchmarks.synthetic import FUNCTIONS, landscape, sample_pool


@pytest.mark.parametrize(
    ("name", "dims", "u_star", "f_star"),
    [
        ("branin", None, [(5 - np.pi) / 15, 12.275 / 15], 0.397887),
        ("hartmann3", None, [0.114614, 0.555649, 0.852547], -3.86278),
        ("hartmann6", None, [0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573], -3.32237),
        ("ackley", 5, [0.5] * 5, 0.0),
        ("levy", 3, [0.55] * 3, 0.0),
        ("rosenbrock", 4, [0.75] * 4, 0.0),
    ],
)
def test_known_minimum(name, dims, u_star, f_star):
    function = landscape(name, dims)
    assert function([u_star])[0] == pytest.approx(f_star, abs=1e-5)
    X, y = sample_pool(function, 500, seed=1)
    assert X.shape == (500, function.dims) and np.all((X >= 0) & (X <= 1))
    assert y.min() > f_star - 1e-9  # nothing in the pool beats the global minimum


def test_unknown_function_and_wrong_dimension_are_refused():
    with pytest.raises(ValueError, match="unknown test function"):
        landscape("sphere")
    with pytest.raises(ValueError, match="has 2 inputs"):
        landscape("branin", 3)
    assert set(FUNCTIONS) >= {"branin", "hartmann6", "rosenbrock"}
