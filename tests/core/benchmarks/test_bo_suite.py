"""Specification of the BO suite: pools from specifications, the ratio table, leave-one-pool-out, the command."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner

from aiida_nanoos.benchmarks.bo_suite import leave_one_pool_out, make_pool, ratio_table
from aiida_nanoos.benchmarks.synthetic import landscape

pytestmark = pytest.mark.usefixtures("one_blas_thread")


def test_synthetic_specifications_make_the_pools_they_name():
    pool = make_pool("hartmann6:150")
    assert pool.X.shape == (150, 6) and not pool.maximize and pool.n_top == 8
    np.testing.assert_allclose(pool.y, landscape("hartmann6")(pool.X))  # no noise: the landscape's own values
    np.testing.assert_array_equal(make_pool("hartmann6:150").X, pool.X)  # a spec always names the same pool
    noisy = make_pool("hartmann6:150:noise0.05")
    residual = noisy.y - landscape("hartmann6")(noisy.X)
    assert 0.02 < residual.std() / noisy.y.std() < 0.1
    ackley = make_pool("ackley5:120")
    assert ackley.X.shape == (120, 5)


def test_categorical_pool_one_hot_encodes_four_unordered_levels():
    pool = make_pool("branin:200:cat")
    assert pool.X.shape == (200, 5) and pool.input_names[-1].startswith("x2=level")
    one_hot = pool.X[:, 1:]
    assert set(np.unique(one_hot)) == {0.0, 1.0} and np.all(one_hot.sum(axis=1) == 1)
    # the value is Branin at x2 = level / 3: each one-hot column is one level
    for k in range(4):
        rows = one_hot[:, k] == 1
        levels = [
            lv
            for lv in (0, 1 / 3, 2 / 3, 1)
            if np.allclose(
                landscape("branin")(np.column_stack([pool.X[rows, 0], np.full(rows.sum(), lv)])), pool.y[rows]
            )
        ]
        assert len(levels) == 1


def test_bad_specifications_are_refused():
    for spec, message in (("sphere:100", "unknown function"), ("branin:10", "size"), ("branin:100:hot", "flag")):
        with pytest.raises(ValueError, match=message):
            make_pool(spec)


def _result(n_pool, means, medians=None):
    medians = medians or means
    methods = {k: {"evaluations_to_top": {"50%": {"mean": m, "median": medians[k]}}} for k, m in means.items()}
    return {"n_pool": n_pool, "methods": {**methods, "random": {}}}


def test_ratio_is_ours_over_the_best_established_method_and_pools_combine_geometrically():
    results = {
        "a": _result(100, {"nanoos": 20.0, "gp_lcb": 40.0, "baybe": 25.0}),
        "b": _result(
            200,
            {"nanoos": 60.0, "gp_lcb": 30.0, "botorch_logei": 50.0},
            {"nanoos": 50.0, "gp_lcb": 35.0, "botorch_logei": 25.0},
        ),
    }
    summary = ratio_table(results)
    assert summary["pools"]["a"]["best_baseline"] == "baybe" and summary["pools"]["a"]["ratio"]["nanoos"] == 0.8
    assert summary["pools"]["b"]["ratio"]["nanoos"] == 2.0 and summary["pools"]["b"]["ratio_median"]["nanoos"] == 2.0
    assert summary["geometric_mean"]["nanoos"] == pytest.approx(math.sqrt(0.8 * 2.0))


def test_leave_one_pool_out_does_not_reward_a_win_on_one_pool():
    """'spiky' is best on pool p1 by far and bad elsewhere; 'steady' is a little better than level everywhere. Chosen
    on the other pools, 'steady' is what each held-out pool gets, including p1."""
    ratios = {
        "spiky": {"p1": 0.5, "p2": 1.5, "p3": 1.4, "p4": 1.6},
        "steady": {"p1": 0.9, "p2": 0.9, "p3": 0.95, "p4": 0.9},
    }
    out = leave_one_pool_out(ratios)
    assert out["chosen"] == {"p1": "steady", "p2": "steady", "p3": "steady", "p4": "steady"}
    assert out["geometric_mean"] == pytest.approx((0.9 * 0.9 * 0.95 * 0.9) ** 0.25)
    assert out["all_pools"]["spiky"] == pytest.approx((0.5 * 1.5 * 1.4 * 1.6) ** 0.25)


def test_suite_command_prints_the_ratio_table(tmp_path):
    """Two pools, two runs, ours against Liang et al.'s GP + LCB (and BoTorch LogEI where installed)."""
    from importlib.util import find_spec

    from aiida_nanoos.benchmarks.bo_pool import command

    methods = "nanoos,gp_lcb" + (",botorch_logei" if find_spec("botorch") else "")
    args = ["--pools", "branin:60", "--pools", "hartmann3:60:noise0.05", "--runs", "2", "--methods", methods]
    out = CliRunner().invoke(command, [*args, "--quiet"])
    assert out.exit_code == 0, out.output
    assert "geometric mean of the ratios over 2 pools: nanoos" in out.output
    assert "evaluations to 50% of top, every run" in out.output
    data = json.loads(CliRunner().invoke(command, [*args, "--quiet", "--json"]).output)
    for spec in ("branin:60", "hartmann3:60:noise0.05"):
        row = data["summary"]["pools"][spec]
        best = min(row["mean"][k] for k in row["mean"] if k != "nanoos")
        assert row["ratio"]["nanoos"] == pytest.approx(row["mean"]["nanoos"] / best)
        runs = data["pools"][spec]["methods"]["nanoos"]["evaluations_to_top"]["50%"]["runs"]
        assert len(runs) == 2 and all(2 <= r <= 60 for r in runs)
        if "botorch_logei" in methods:  # the established method's configuration is reported with its figures
            configuration = data["pools"][spec]["methods"]["botorch_logei"]["configuration"]
            assert "LogExpectedImprovement" in configuration["acquisition"] and "botorch 0." in configuration["package"]
    bad = CliRunner().invoke(command, ["--pools", "sphere:100", "--quiet"])
    assert bad.exit_code != 0 and "unknown function" in bad.output
