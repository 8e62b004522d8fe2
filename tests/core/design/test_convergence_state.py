"""Specification of the stopping rules and of the resumable optimiser state."""

import json

import numpy as np
import pytest

from aiida_nanoos.design.convergence import ConvergenceCriteria
from aiida_nanoos.design.state import OptimizerState

# one BLAS thread: millisecond tests stay milliseconds on a small shared machine
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def test_patience_counts_iterations_without_enough_improvement():
    c = ConvergenceCriteria(patience=2, min_improvement=0.1)
    assert c.check([[1.0], [1.5]]) is None
    assert c.check([[1.0], [1.5], [1.55]]) is None  # one stale iteration
    assert c.check([[1.0], [1.5], [1.55], [1.58]]) == "no_improvement"  # +0.08 over two iterations
    assert c.check([[1.0], [1.5], [1.55], [1.61]]) is None  # +0.11


def test_minimisation_target_budget_and_iterations():
    c = ConvergenceCriteria(maximize=False, target=-2.0, budget=10, max_iterations=5)
    assert c.check([[-1.0, -1.5]]) is None
    assert c.check([[-1.0, -1.5], [-2.1]]) == "target_reached"
    assert c.check([[0.0] * 4, [0.0] * 6]) == "budget_exhausted"
    assert c.check([[0.0]] * 5) == "max_iterations"
    # failed evaluations (NaN) count towards the budget but not towards the best value
    assert ConvergenceCriteria(budget=3).check([[np.nan, np.nan, 1.0]]) == "budget_exhausted"
    with pytest.raises(ValueError, match="patience"):
        ConvergenceCriteria(patience=0)


def test_state_resumes_the_same_random_stream_and_history_from_json():
    state = OptimizerState(seed=42)
    state.record([[0.1, 0.2], [0.3, 0.4]], [1.0, None])
    first = state.rng().random(3)
    restored = OptimizerState.from_json(state.to_json())
    np.testing.assert_array_equal(state.rng().random(3), restored.rng().random(3))
    assert not np.array_equal(first, OptimizerState.from_json(state.to_json()).rng().random(3))
    X, y = restored.observed()
    np.testing.assert_allclose(X, [[0.1, 0.2]])
    np.testing.assert_allclose(y, [1.0])
    assert restored.iteration_values()[0][0] == 1.0 and np.isnan(restored.iteration_values()[0][1])
    json.loads(restored.to_json())
    with pytest.raises(ValueError, match="unknown keys"):
        OptimizerState.from_dict({"seed": 1, "colour": "red"})
