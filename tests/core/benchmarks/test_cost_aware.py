"""``benchmark cost-aware``: its pools cost what the protocol says, and the command reports every run."""

import json

import numpy as np
from click.testing import CliRunner

from aiida_nanoos.benchmarks.cost_aware import CostedPool, command


def test_candidates_cost_from_one_to_fifty_times_each_other_by_cell_size():
    for cell_size in ("landscape", "extra"):
        costed = CostedPool("branin", seed=3, pool_size=400, cell_size=cell_size)
        assert costed.atoms.min() >= 4 and costed.atoms.max() <= 32
        spread = np.percentile(costed.cost, 99) / np.percentile(costed.cost, 1)
        assert 20 < spread < 200
        assert np.corrcoef(np.log(costed.atoms), np.log(costed.cost))[0, 1] > 0.95
    assert CostedPool("branin", 3, 400, "extra").pool.X.shape == (400, 3)  # the cell size is an input of its own


def test_the_command_reports_cost_and_evaluations_of_every_run():
    arguments = ["--problem", "branin", "--method", "blind", "--method", "aware", "--runs", "2", "--pool-size", "60"]
    result = CliRunner().invoke(command, [*arguments, "--cell-size", "extra", "--json"])
    assert result.exit_code == 0, result.output
    entry = json.loads(result.output)["results"]["branin"]
    assert len(entry["cost"]["aware"]["runs"]) == 2 and all(c > 0 for c in entry["cost"]["aware"]["runs"])
    assert entry["cost_ratio_to_blind"]["blind"] == 1.0
    low, high = entry["cost_ratio_interval"]["aware"]
    assert low <= entry["cost_ratio_to_blind"]["aware"] <= high
    assert "blind" not in entry["cost_ratio_interval"]
