"""Specification of one campaign BO step (aiida_nanoos.design.bo.suggest) on small analytic problems."""

import numpy as np
import pytest
from scipy.special import ndtri
from scipy.stats import skew

from aiida_nanoos.design.bo import BOSettings, choose_output_transform, normal_scores, suggest, yeo_johnson
from aiida_nanoos.design.spaces import Categorical, Continuous, ParameterSpace
from aiida_nanoos.design.state import OptimizerHistory

# one BLAS thread: millisecond tests stay milliseconds on a small shared machine
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _space():
    return ParameterSpace([Continuous("x", -2.0, 2.0), Continuous("y", -2.0, 2.0)])


def _property(p):  # a "band gap" landscape with its maximum 3.0 at (0.5, -0.5)
    return 3.0 - (p["x"] - 0.5) ** 2 - 2 * (p["y"] + 0.5) ** 2


def _run(settings, n_iter, maximize=True, f=_property, seed=0):
    space, state = _space(), OptimizerHistory(seed=seed)
    for _ in range(n_iter):
        points, report = suggest(space, state, maximize=maximize, settings=settings)
        state.record(space.encode(points), [f(p) for p in points])
    return state, report


def test_bo_finds_the_maximum_far_better_than_random():
    state, report = _run({"acquisition": "EI"}, 14)
    best = max(state.values)
    assert best > 2.95
    random_bests = [max(_property(p) for p in _space().sample(14, seed)) for seed in range(30)]
    assert best > np.percentile(random_bests, 90)
    assert report["gp_hyperparameters"]["kernel"] == "matern52"


def test_minimisation_with_lcb_batches():
    def loss(p):  # positive, minimum 0.01 at (-1, 1)
        return 0.01 + ((p["x"] + 1) ** 2 + (p["y"] - 1) ** 2) ** 2

    space, state = _space(), OptimizerHistory(seed=3)
    for _ in range(6):
        points, report = suggest(space, state, maximize=False, settings={"acquisition": "LCB", "batch_size": 3})
        assert len(points) == 3 and len({(p["x"], p["y"]) for p in points}) == 3
        state.record(space.encode(points), [loss(p) for p in points])
    assert report["output_transform"] == "power" and np.isfinite(report["power_lambda"])
    assert min(state.values) < 0.05


def test_skewed_positive_property_to_maximise_is_modelled_on_a_compressed_scale():
    def conductivity(p):  # S/cm, spans three decades, peak 1000 at (1, 1)
        return 1000.0 * np.exp(-2.0 * ((p["x"] - 1) ** 2 + (p["y"] - 1) ** 2))

    space, state = _space(), OptimizerHistory(seed=5)
    start = space.sample(12, seed=5)  # a space-filling start: most values are small, a few large
    state.record(space.encode(start), [conductivity(p) for p in start])
    for _ in range(5):
        points, report = suggest(space, state, maximize=True, settings={"batch_size": 2})
        state.record(space.encode(points), [conductivity(p) for p in points])
        if state.iteration == 2:  # the fitted exponent is below 1: large values are pulled in, as by a log
            assert report["output_transform"] == "power" and report["power_lambda"] < 0.5
    assert max(state.values) > 900.0


def test_discrete_candidates_and_categorical_space():
    space = ParameterSpace([Categorical("substrate", ("SiO2", "hBN", "Au")), Continuous("t", 0.0, 1.0)])
    cands = [{"substrate": s, "t": t} for s in ("SiO2", "hBN", "Au") for t in np.linspace(0, 1, 11)]
    value = {"SiO2": 0.0, "hBN": 1.0, "Au": 0.5}
    state = OptimizerHistory(seed=1)
    seen = set()
    for _ in range(8):
        points, _ = suggest(space, state, maximize=True, candidates=cands, settings={"batch_size": 2})
        for p in points:
            key = (p["substrate"], round(p["t"], 6))
            assert p in cands and key not in seen  # a pool candidate is never proposed twice
            seen.add(key)
        state.record(space.encode(points), [value[p["substrate"]] - (p["t"] - 0.3) ** 2 for p in points])
    assert max(state.values) == pytest.approx(1.0, abs=0.02)


def test_target_range_and_feasibility_weighting():
    # aim the property into [2.0, 2.2] eV
    state, _ = _run({"acquisition": "RANGE", "target_range": [2.0, 2.2]}, 12, seed=2)
    hits = [v for v in state.values[-6:] if 2.0 <= v <= 2.2]
    assert len(hits) >= 3
    # constraint x >= 0.8 (as a second measured quantity): late suggestions respect it
    space, state = _space(), OptimizerHistory(seed=4)
    constraint = []
    settings = {"acquisition": "EI", "constraint_bounds": [[0.8, None]]}
    for _ in range(12):
        points, _ = suggest(space, state, maximize=True, settings=settings, constraint_values=np.array(constraint))
        state.record(space.encode(points), [_property(p) for p in points])
        constraint.extend([[p["x"]] for p in points])
    assert all(c[0] >= 0.75 for c in constraint[-4:])


def test_output_transform_rule_and_settings_validation():
    skewed = np.exp(np.random.default_rng(0).normal(size=50) * 1.5)
    assert choose_output_transform(skewed) == choose_output_transform(-skewed) == "power"
    assert choose_output_transform(np.array([1.0, 2.0, 2.0, 3.0, 4.0, 4.0])) == "none"  # 4 distinct values: too few
    # Yeo-Johnson: skew removed in either direction, independent of the unit, the identity on Gaussian data
    transformed, lam = yeo_johnson(skewed)
    assert skew(skewed) > 2.0 and abs(skew(transformed)) < 0.5 and lam < 0
    assert abs(skew(yeo_johnson(-skewed)[0])) < 0.5
    in_mev, lam_mev = yeo_johnson(1000.0 * skewed)
    assert lam_mev == pytest.approx(lam) and np.allclose(in_mev, transformed)
    assert yeo_johnson(np.random.default_rng(1).normal(size=400))[1] == pytest.approx(1.0, abs=0.15)
    state, report = _run({"output_transform": "rank"}, 10)  # outlier-proof copula scale also optimises
    assert report["output_transform"] == "rank" and max(state.values) > 2.5
    scores = normal_scores(np.array([10.0, 1e6, 3.0, 3.0]))
    np.testing.assert_allclose(scores, ndtri(np.array([2.5, 3.5, 1.0, 1.0]) / 4))  # ties share their mean rank
    with pytest.raises(ValueError, match="acquisition"):
        BOSettings(acquisition="magic")
    with pytest.raises(ValueError, match="target_range"):
        BOSettings(acquisition="RANGE")
    with pytest.raises(ValueError, match="unknown keys"):
        BOSettings.from_dict({"betta": 2})
