"""The ``aiida-nanoos`` command on ``verdi``'s conventions: ``-p``/``-v`` on every command, identifiers by PK, UUID or
label, ``--json`` that parses, live progress of a foreground campaign, ``campaign watch`` and ``pause|play|kill``
through the daemon, and ``--example-config`` files that run as printed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
import yaml
from aiida import orm
from click.testing import CliRunner

from aiida_nanoos.cli import cli
from aiida_nanoos.cli.progress import ProgressLine, Step, iterations_left
from tests.campaign_fixtures import daemon, daemon_profile, wait_for  # noqa: F401 (fixtures)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def invoke(*args, expect_ok: bool = True, **kwargs):
    result = CliRunner().invoke(cli, [str(a) for a in args], **kwargs)
    if expect_ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


@pytest.fixture(scope="module")
def example_run(aiida_profile, tmp_path_factory):
    """The analytic example printed by ``--example-config analytic``, saved and run in the foreground: (the output of
    the run, the campaign node)."""
    printed = invoke("campaign", "run", "--example-config", "analytic").output
    config = tmp_path_factory.mktemp("example") / "campaign.yaml"
    config.write_text(printed)
    output = invoke("-p", aiida_profile.name, "campaign", "run", config).output
    pk = int(re.search(r"CampaignWorkChain<(\d+)> finished", output).group(1))
    return output, orm.load_node(pk)


# ------------------------------------------------------------------------------------------------ example configs
@pytest.mark.parametrize(
    ("kind", "name", "default"),
    [("campaign", "campaign_group_iv", True), ("campaign", "campaign_analytic", False),
     ("pipeline", "pipeline_si", True), ("label", "label_si", True)],
)  # fmt: skip
def test_example_config_prints_the_example_file(kind, name, default):
    args = [kind, "run", "--example-config"] + ([] if default else [name.removeprefix(f"{kind}_")])
    printed = invoke(*args).output
    assert printed == (EXAMPLES / f"{name}.yaml").read_text()
    assert isinstance(yaml.safe_load(printed), dict)


def test_example_config_refuses_an_unknown_example():
    result = invoke("campaign", "run", "--example-config", "nope", expect_ok=False)
    assert result.exit_code == 2 and "available: " in result.output and "analytic" in result.output


@pytest.mark.parametrize(
    ("kind", "name"),
    [("campaign", "group_iv"), ("campaign", "analytic"), ("campaign", "active_learning"), ("pipeline", "si"),
     ("label", "si")],
)  # fmt: skip
def test_the_printed_examples_follow_their_schema(kind, name):
    schema = pytest.importorskip("aiida_nanoos.schema", reason="no configuration schema module (aiida_nanoos.schema)")
    config = yaml.safe_load(invoke(kind, "run", "--example-config", name).output)
    assert schema.schema_errors(kind, config) == []
    config["unknown_key"] = 1  # and the check can fail
    assert schema.schema_errors(kind, config)


def test_example_campaign_runs_as_printed_with_one_progress_line_per_iteration(example_run):
    output, node = example_run
    assert node.is_finished_ok and node.label == "analytic group-IV band gap"
    progress = [line for line in output.splitlines() if line.startswith("iteration ")]
    assert [line.split()[1] for line in progress] == ["1/3", "2/3", "3/3"]  # not a terminal: one line each
    statistics = node.outputs.statistics.get_dict()
    last = re.match(r"iteration 3/3  best maximize_bandgap (\S+)  budget used (\d+)  elapsed (\S+)", progress[-1])
    assert float(last.group(1)) == pytest.approx(statistics["best_objective_value"], rel=1e-5)
    assert int(last.group(2)) == statistics["budget_used"] == 6
    assert "converged: max_iterations" in progress[-1]
    # the processes' reports are replaced by the progress (they are still in the database)
    assert "campaign: bayesian_optimization" not in output
    assert any("campaign: bayesian_optimization" in log.message for log in orm.Log.collection.get_logs_for(node))


def test_verbosity_info_shows_the_reports_of_a_foreground_run(aiida_profile, tmp_path):
    config = yaml.safe_load((EXAMPLES / "campaign_analytic.yaml").read_text())
    config["config"].update(max_iterations=1, algorithm="random")
    config["name"] = "one random iteration"
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(config))
    invoke("campaign", "run", "--example-config")  # a command before, in the same Python process (a notebook)
    output = invoke("-p", aiida_profile.name, "campaign", "run", path, "-v", "info").output
    assert "campaign: random, batch 2, maximize_bandgap, evaluator analytic" in output
    assert "iteration 1/1" in output
    # ... and the reports are in the database too, although that first command reconfigured the logging
    node = orm.load_node(int(re.search(r"CampaignWorkChain<(\d+)> finished", output).group(1)))
    assert any("campaign: random" in log.message for log in orm.Log.collection.get_logs_for(node))


def test_time_left_counts_the_iterations_to_the_first_limit_reached():
    assert iterations_left(2, 10, {"budget_used": 6}, budget=15) == 3  # 3 evaluations per iteration, 9 left
    assert iterations_left(2, 4, {"budget_used": 6}, budget=15) == 2  # max_iterations first
    assert iterations_left(2, 10, {"budget_used": 6}, budget=None) == 8
    assert iterations_left(3, 10, {"budget_used": 16}, budget=15) == 0  # the budget is spent


def test_progress_redraws_one_line_on_a_terminal_and_prints_every_iteration_elsewhere(capsys):
    first, later, second, third = (Step("iteration 1/3", 1), Step("iteration 1/3 later", 1), Step("iteration 2/3", 2),
                                   Step("iteration 3/3", 3))  # fmt: skip
    line = ProgressLine(tty=True)
    for steps in ([first], [later], [first, second]):
        line.show(steps)
    line.close()
    text = capsys.readouterr().out
    assert text.count("\r") == 3 and text.count("\n") == 1 and text.rstrip().endswith("iteration 2/3")
    line = ProgressLine(tty=False)
    for steps in ([first], [later], [first, second, third]):  # two iterations recorded between two looks
        line.show(steps)
    assert capsys.readouterr().out.splitlines() == ["iteration 1/3", "iteration 2/3", "iteration 3/3"]


# ------------------------------------------------------------------------------------------------ identifiers, -p, -v
def test_a_campaign_is_found_by_pk_uuid_and_label(aiida_profile, example_run):
    _, node = example_run
    shown = [
        json.loads(invoke("-p", aiida_profile.name, "campaign", "show", identifier, "--json").output)
        for identifier in (node.pk, node.uuid, node.label)
    ]
    assert shown[0] == shown[1] == shown[2]
    assert shown[0]["pk"] == node.pk and shown[0]["iterations"] == shown[0]["max_iterations"] == 3
    assert shown[0]["best_candidates"] == node.outputs.best_candidates["candidates"]
    other = next(c for c in node.called if c.process_label == "initialize_campaign")
    refused = invoke("-p", aiida_profile.name, "campaign", "show", other.pk, expect_ok=False)
    assert refused.exit_code == 2 and "not a campaign" in refused.output
    unknown = invoke("-p", aiida_profile.name, "campaign", "stats", "no-such-campaign", expect_ok=False)
    assert unknown.exit_code == 2 and "no-such-campaign" in unknown.output


def test_json_output_parses_and_holds_the_numbers_of_the_nodes(aiida_profile, example_run, tmp_path):
    _, node = example_run
    stats = json.loads(invoke("-p", aiida_profile.name, "campaign", "stats", node.label, "--json").output)
    assert stats["best_objective_value"] == node.outputs.statistics["best_objective_value"]
    listed = json.loads(invoke("-p", aiida_profile.name, "campaign", "list", "--json").output)
    row = next(r for r in listed if r["PK"] == node.pk)
    assert row["Iterations"] == 3 and row["Process State"] == "Finished [0]" and row["Label"] == node.label
    table = invoke("-p", aiida_profile.name, "campaign", "list").output
    assert re.search(rf"^\s*{node.pk}\s+\S+ \S+\s+Finished \[0\]\s+3\s+{re.escape(node.label)}", table, re.M)
    plotted = json.loads(
        invoke("-p", aiida_profile.name, "campaign", "plot", node.pk, "-o", tmp_path / "c.png", "--json").output
    )
    assert Path(plotted["path"]) == (tmp_path / "c.png").resolve() and plotted["bytes"] > 10_000
    rows = json.loads(invoke("-p", aiida_profile.name, "query", "campaign-table", node.uuid, "--json").output)
    assert len(rows) == 6 and {r["iteration"] for r in rows} == {1, 2, 3}


def test_profile_and_verbosity_options_on_every_command(aiida_profile, example_run):
    _, node = example_run

    def commands(group: click.Group, ctx: click.Context, path: tuple[str, ...] = ()):
        # of the benchmarks (each imported when asked for) two stand for all: the lazy group adds the options
        names = ["snap", "campaign-overhead"] if path == ("benchmark",) else group.list_commands(ctx)
        for name in names:
            command = group.get_command(ctx, name)
            yield (*path, name), command
            if isinstance(command, click.Group):
                yield from commands(command, ctx, (*path, name))

    with cli.make_context("aiida-nanoos", [], resilient_parsing=True) as ctx:
        found = dict(commands(cli, ctx))
    assert ("campaign", "watch") in found and ("benchmark", "snap") in found and ("hybrid", "run") in found
    assert len(found) > 40
    for path, command in found.items():
        names = {param.name for param in command.params}
        assert "verbosity" in names, path
        assert ("profile" in names) == (path != ("setup",)), path  # setup makes the profile (--profile-name)

    # -p after the sub-command loads that profile before the identifier is looked up
    after = invoke("campaign", "show", node.pk, "-p", aiida_profile.name, "--json").output
    assert json.loads(after)["uuid"] == node.uuid
    missing = invoke("campaign", "show", node.pk, "-p", "no-such-profile", expect_ok=False)
    assert missing.exit_code == 2 and "no-such-profile" in missing.output
    assert invoke("-p", "no-such-profile", "campaign", "list", expect_ok=False).exit_code == 2


# ---------------------------------------------------------------------------------------- watch, pause, play, kill
def test_watch_of_a_finished_campaign_prints_its_final_line(aiida_profile, example_run):
    output, node = example_run
    watched = invoke("-p", aiida_profile.name, "campaign", "watch", node.pk, "--interval", 0.1).output.splitlines()
    final_progress = next(line for line in output.splitlines() if line.startswith("iteration 3/3"))
    assert watched[-2].split("elapsed")[0] == final_progress.split("elapsed")[0]
    assert watched[-1] == f"CampaignWorkChain<{node.pk}> Finished [0]"


def _submit(aiida_profile, tmp_path: Path, name: str, **config) -> orm.WorkChainNode:
    spec = yaml.safe_load((EXAMPLES / "campaign_analytic.yaml").read_text())
    spec["name"] = name
    spec["config"] = {"algorithm": "random", "batch_size": 2, **config}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    output = invoke("-p", aiida_profile.name, "campaign", "run", path, "--submit").output
    return orm.load_node(int(re.search(r"CampaignWorkChain<(\d+)>", output).group(1)))


def _iterations(node) -> int:
    return sum(1 for n in node.called if n.process_label == "record_iteration" and n.is_finished_ok)


def test_pause_play_watch_and_kill_a_submitted_campaign(daemon, daemon_profile, tmp_path):  # noqa: F811
    import time

    node = _submit(daemon_profile, tmp_path, "cli-paused", max_iterations=4, seed=4)
    wait_for(lambda: _iterations(node) >= 1, 180, "the first iteration")
    paused = invoke("-p", daemon_profile.name, "campaign", "pause", node.label).output
    assert f"Request to pause Process<{node.pk}> sent" in paused
    wait_for(lambda: node.paused, 60, "the campaign to pause")
    frozen = _iterations(node)
    time.sleep(3)
    assert node.paused and _iterations(node) == frozen < 4
    played = invoke("-p", daemon_profile.name, "campaign", "play", node.pk).output
    assert f"Request to play Process<{node.pk}> sent" in played
    watched = invoke("-p", daemon_profile.name, "campaign", "watch", node.uuid, "--interval", 0.2).output
    assert node.is_finished_ok and watched.splitlines()[-1] == f"CampaignWorkChain<{node.pk}> Finished [0]"
    assert "iteration 4/4" in watched  # followed to the end, one line per iteration seen

    killed = _submit(daemon_profile, tmp_path, "cli-killed", max_iterations=20, seed=5)
    wait_for(lambda: _iterations(killed) >= 1, 180, "the first iteration")
    output = invoke("-p", daemon_profile.name, "campaign", "kill", killed.pk).output
    assert f"Request to kill Process<{killed.pk}> sent" in output
    wait_for(lambda: killed.is_terminated, 120, "the campaign to be killed")
    assert killed.is_killed and _iterations(killed) < 20
    again = invoke("-p", daemon_profile.name, "campaign", "kill", killed.pk).output
    assert f"Process<{killed.pk}> is already terminated" in again


# ---------------------------------------------------------------------------------------- the hybrid chain
def test_pipeline_run_shows_its_stages_instead_of_reports(aiida_profile, nanoos_resources, tmp_path):
    from tests.test_pipeline import TINY

    config = {
        "structure": {"bulk": "Si", "crystalstructure": "diamond", "a": 5.43},
        "protocol": "fast",
        "electronic_type": "insulator",
        "overrides": TINY,
    }
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    output = invoke("-p", aiida_profile.name, "hybrid", "run", path).output  # `hybrid` is `pipeline`
    assert "finished with exit status 0" in output
    stages = [line for line in output.splitlines() if line.startswith("stage ")]
    numbers = [int(line.split()[1].split("/")[0]) for line in stages]
    assert numbers == sorted(numbers) and {1, 3, 5} <= set(numbers), stages  # labelling, training and MD were seen
    # before the configurations are sampled their number is not known yet: 0/?
    labelling = [re.match(r"stage 1/5 DFT labelling: (\d+)/(6|\?) done", line) for line in stages if line[6] == "1"]
    assert all(labelling), stages
    labelled = [int(match.group(1)) for match in labelling]
    assert labelled and labelled == sorted(labelled) and labelled[-1] <= 6, stages
    assert stages[-1].startswith("stage 5/5 MD with the potential: 54 atoms (done)"), stages
    assert "labelling 6 configurations" not in output  # the label work chain's report: hidden without -v info
