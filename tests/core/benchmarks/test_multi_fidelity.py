"""``benchmark multi-fidelity``: each trigger sends to DFT what it says, and the command reports every run."""

import json

import pytest
from click.testing import CliRunner

from aiida_nanoos.benchmarks.cost_aware import CostedPool
from aiida_nanoos.benchmarks.multi_fidelity import command, run_campaign


@pytest.mark.parametrize("trigger", ["dft", "fraction", "value_per_cost"])
def test_a_campaign_pays_only_for_the_labels_its_trigger_sends_to_dft(trigger):
    costed = CostedPool("branin", seed=1, pool_size=80, cell_size="extra")
    outcome = run_campaign(costed, trigger, seed=1, batch_size=8, share=0.25, budget=0.1 * costed.cost.sum())
    if trigger == "dft":
        assert outcome["kept_by_model"] == 0
    if trigger == "fraction":  # 2 of every 8 to DFT, 6 keep the model's value
        assert outcome["kept_by_model"] == 3 * (outcome["dft_labels"] - 4)
    assert outcome["dft_labels"] >= 4 and outcome["cost"] > 0
    assert outcome["reached"] or outcome["dft_labels"] + outcome["kept_by_model"] == 80


def test_the_command_reports_the_cost_of_every_run_and_the_ratio_to_all_dft():
    arguments = ["--problem", "branin", "--trigger", "dft", "--trigger", "value_per_cost", "--runs", "2"]
    result = CliRunner().invoke(command, [*arguments, "--pool-size", "60", "--json"])
    assert result.exit_code == 0, result.output
    entry = json.loads(result.output)["results"]["branin"]
    assert len(entry["cost"]["value_per_cost"]["runs"]) == 2 and entry["cost_ratio_to_dft"]["dft"] == 1.0
    assert 0 <= entry["reached"]["value_per_cost"] <= 1
