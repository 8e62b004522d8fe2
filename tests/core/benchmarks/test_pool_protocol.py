"""Specification of the Liang et al. 2021 pool-based benchmark protocol and of its command."""

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import hypergeom

from aiida_nanoos.benchmarks.pool_protocol import (
    evaluations_to_find,
    found_curve,
    load_pool,
    median_ratio_interval,
    nanoos_strategy,
    random_evaluations_quantiles,
    run_benchmark,
    run_pool_campaign,
)

# one BLAS thread: millisecond tests stay milliseconds on a small shared machine
pytestmark = pytest.mark.usefixtures("one_blas_thread")


def _write_synthetic_csv(path, minimise=False):
    """Two numeric inputs on a grid, one text input, replicate rows; a smooth peaked objective."""
    rng = np.random.default_rng(0)
    rows = ["temperature (C),pressure,phase,yield"]
    for t in np.linspace(0, 1, 8):
        for p in np.linspace(0, 1, 8):
            for phase, offset in (("alpha", 0.0), ("beta", 0.4)):
                value = np.exp(-((t - 0.7) ** 2 + (p - 0.3) ** 2) / 0.05) + offset * t
                value = -value if minimise else value
                for _ in range(1 + (int(t * 7) % 2)):  # replicates on every other temperature
                    rows.append(f"{t * 300:.1f},{p:.4f},{phase},{value + 0.01 * rng.standard_normal():.6f}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_pool_groups_replicates_by_mean_of_unique_values(tmp_path):
    csv = tmp_path / "tiny.csv"
    csv.write_text("a,b,y\n1,x,1.0\n1,x,1.0\n1,x,3.0\n2,x,5.0\n2,z,7.0\n")
    pool = load_pool(csv, "y")
    assert pool.n_pool == 3 and pool.n_rows == 5
    assert pool.input_names == ["a", "b=x", "b=z"]
    np.testing.assert_allclose(sorted(pool.y), [2.0, 5.0, 7.0])  # mean of unique {1, 3} = 2, not 5/3
    assert pool.n_top == 1 and pool.y[pool.top_mask][0] == 7.0
    assert load_pool(csv, "y", maximize=False).y[load_pool(csv, "y", maximize=False).top_mask][0] == 2.0
    with pytest.raises(ValueError, match="objective column 'q'"):
        load_pool(csv, "q")
    with pytest.raises(ValueError, match="input columns"):
        load_pool(csv, "y", inputs=["a", "nope"])


def test_random_baseline_is_the_negative_hypergeometric():
    N, K, k = 100, 5, 3
    mean, (p5, p95) = random_evaluations_quantiles(N, K, k, (0.05, 0.95))
    assert mean == pytest.approx(k * (N + 1) / (K + 1))
    assert hypergeom.sf(k - 1, N, K, p5) >= 0.05 > hypergeom.sf(k - 1, N, K, p5 - 1)
    rng = np.random.default_rng(0)
    sims = [np.sort(np.flatnonzero(rng.permutation(N) < K))[k - 1] + 1 for _ in range(20000)]
    assert np.mean(sims) == pytest.approx(mean, rel=0.02)
    assert np.percentile(sims, 95) == pytest.approx(p95, abs=2)


def test_curve_and_evaluations_to_find(tmp_path):
    pool = load_pool(_write_synthetic_csv(tmp_path / "s.csv"), "yield")
    top = np.flatnonzero(pool.top_mask)
    rest = np.flatnonzero(~pool.top_mask)
    order = np.concatenate([rest[:3], top[:2], rest[3:5], top[2:]])
    curve = found_curve(pool, order)
    assert curve[4] == 2 and evaluations_to_find(curve, 2) == 5
    assert evaluations_to_find(curve, pool.n_top) == 7 + len(top) - 2
    assert curve[-1] == pool.n_top


@pytest.mark.parametrize("minimise", [False, True])
def test_our_bo_beats_random_on_a_synthetic_pool(tmp_path, minimise):
    csv = _write_synthetic_csv(tmp_path / "s.csv", minimise=minimise)
    pool = load_pool(csv, "yield", maximize=not minimise)
    assert pool.n_pool == 128 and pool.n_top == 7
    result = run_benchmark(pool, runs=3, seed=0, strategies=("nanoos",))
    ours = result["methods"]["nanoos"]
    rand = result["methods"]["random"]
    assert ours["ef"]["25%"]["mean"] > 2.0
    assert ours["evaluations_to_top"]["100%"]["mean"] < 0.5 * rand["evaluations_to_top"]["100%"]["mean"]
    assert ours["af"]["100%"]["mean"] > 2.0  # random needs all N = 128 evaluations for Top% = 100%


def test_runs_are_reproducible_and_stop_when_the_top_set_is_complete(tmp_path):
    pool = load_pool(_write_synthetic_csv(tmp_path / "s.csv"), "yield")
    a = run_pool_campaign(pool, nanoos_strategy(pool.X, True, seed=4), seed=4)
    b = run_pool_campaign(pool, nanoos_strategy(pool.X, True, seed=4), seed=4)
    np.testing.assert_array_equal(a, b)
    assert len(set(a.tolist())) == len(a)
    assert pool.top_mask[a].sum() == pool.n_top and pool.top_mask[a[-1]]


def test_command_prints_table_and_json(tmp_path):
    from aiida_nanoos.benchmarks.bo_pool import command

    csv = _write_synthetic_csv(tmp_path / "s.csv")
    args = ["--csv", str(csv), "--objective", "yield", "--runs", "1", "--quiet", "--max-evaluations", "20"]
    args += ["--methods", "nanoos,gp_lcb"]
    out = CliRunner().invoke(command, args)
    assert out.exit_code == 0, out.output
    assert "GP-ARD Matern52 MLE + LCB(2)" in out.output and "random (analytic)" in out.output
    out = CliRunner().invoke(command, [*args, "--json"])
    data = json.loads(out.output)
    assert data["n_pool"] == 128 and data["evaluations_at"] == {"10%": 13, "25%": 32}
    assert set(data["methods"]) == {"nanoos", "gp_lcb", "random"}
    assert data["methods"]["random"]["af"]["50%"]["mean"] == 1.0
    bad = CliRunner().invoke(command, ["--csv", str(csv), "--objective", "nope"])
    assert bad.exit_code != 0 and "nope" in bad.output
    bad = CliRunner().invoke(command, ["--csv", str(csv), "--methods", "nanoos,baybee"])
    assert bad.exit_code == 2 and "unknown ['baybee']" in bad.output and "Traceback" not in bad.output


def test_the_objective_is_the_last_column_unless_named(tmp_path):
    """As in the Liang et al. data sets, and as a --pools PATH.csv specification without an objective."""
    from aiida_nanoos.benchmarks.bo_pool import command

    csv = _write_synthetic_csv(tmp_path / "s.csv")
    assert load_pool(csv).objective == load_pool(csv, "yield").objective == "yield"
    args = ["--csv", str(csv), "--runs", "1", "--quiet", "--max-evaluations", "20", "--methods", "nanoos", "--json"]
    out = CliRunner().invoke(command, args)
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["objective"] == "yield"


def test_the_ratio_interval_brackets_the_ratio_and_narrows_with_more_runs():
    rng = np.random.default_rng(0)
    # bimodal runs, as when the best candidates sit in cheap cells in some pools and in expensive ones in others
    blind = np.where(rng.random(120) < 0.65, 50.0, 200.0) * rng.lognormal(0.0, 0.1, 120)
    aware = 0.6 * blind * rng.lognormal(0.0, 0.2, 120)
    widths = []
    for runs in (10, 120):
        low, high = median_ratio_interval(aware[:runs], blind[:runs])
        assert low <= np.median(aware[:runs]) / np.median(blind[:runs]) <= high
        widths.append(high - low)
    assert widths[1] < 0.7 * widths[0]
    assert median_ratio_interval(aware[:30], blind[:30]) == median_ratio_interval(aware[:30], blind[:30])
    with pytest.raises(ValueError, match="paired"):
        median_ratio_interval(aware[:3], blind[:4])


def test_liang_p3ht_pool_matches_the_documented_protocol(shared_benchmarks):
    csv = shared_benchmarks / "liang2021_bo" / "p3ht_cnt.csv"
    pool = load_pool(csv, "Conductivity (measured) (S/cm)")
    assert (pool.n_rows, pool.n_pool, pool.n_top) == (233, 178, math.ceil(0.05 * 178))
    order = run_pool_campaign(pool, nanoos_strategy(pool.X, True, seed=0), seed=0, max_evaluations=45)
    found = found_curve(pool, order)[44]
    assert found / pool.n_top > 45 / pool.n_pool  # ahead of random sampling after 25% of the pool
