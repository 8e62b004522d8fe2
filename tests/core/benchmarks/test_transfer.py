"""``benchmark transfer`` runs its protocol and reports every run (tiny pools here; the figures come from the
command with its defaults)."""

import json

import numpy as np
from click.testing import CliRunner

from aiida_nanoos.benchmarks.synthetic import landscape
from aiida_nanoos.benchmarks.transfer import command, make_problem


def test_the_related_source_is_the_target_seen_through_another_method():
    problem = make_problem("branin", "related", seed=0, pool_size=100, n_earlier=50)
    unrelated = make_problem("branin", "unrelated", seed=0, pool_size=100, n_earlier=50)
    truth = landscape("branin")(problem.earlier.X_unit)
    assert np.corrcoef(truth, problem.earlier.y)[0, 1] > 0.9
    assert abs(np.corrcoef(truth, unrelated.earlier.y)[0, 1]) < 0.5
    assert np.array_equal(problem.pool.X, unrelated.pool.X)  # the same new campaign either way


def test_the_command_reports_evaluations_of_every_run_and_the_ratio_to_a_cold_start():
    result = CliRunner().invoke(
        command,
        ["--problem", "branin", "--relation", "related", "--method", "cold", "--method", "warm", "--runs", "2",
         "--pool-size", "60", "--earlier", "20", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    entry = json.loads(result.output)["results"]["branin/related"]
    for method in ("cold", "warm"):
        runs = entry["evaluations"][method]["runs"]
        assert len(runs) == 2 and all(2 <= n <= 60 for n in runs)
    assert entry["ratio_to_cold"]["warm"] > 0
    low, high = entry["ratio_interval"]["warm"]
    assert low <= entry["ratio_to_cold"]["warm"] <= high
