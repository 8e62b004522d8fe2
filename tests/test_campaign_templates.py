"""``aiida-nanoos campaign template list|show|new`` and the maintained templates (each follows the campaign schema;
those the analytic evaluator can evaluate really run through ``campaign run``), and ``campaign stats``: the pace
(seconds per iteration, evaluations per hour), the time left and the hypervolume trend of real runs."""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

import moocore
import numpy as np
import pytest
import yaml
from aiida import orm

from aiida_nanoos import templates
from aiida_nanoos.design import campaign as cp
from aiida_nanoos.design.spaces import atoms_to_dict
from tests.campaign_fixtures import daemon, daemon_profile, wait_for  # noqa: F401 (fixtures)
from tests.test_cli_conventions import invoke

NAMES = ("band_gap_window_group_iv", "pareto_gap_stability", "stable_perovskites")


def load(name: str) -> dict:
    return yaml.safe_load(templates.template_text(name))


def space_of(config: dict) -> dict:
    """The search space with a ``{bulk: ...}`` base structure built as ``campaign run`` builds it."""
    from ase.build import bulk

    space = dict(config["search_space"])
    base = dict(space["base_structure"])
    if "bulk" in base:
        space["base_structure"] = atoms_to_dict(bulk(base.pop("bulk"), **base))
    return space


def record_ends(node) -> list:
    """End times of the campaign's iterations (its finished record_iteration calcfunctions), oldest first."""
    records = [n for n in node.called if n.process_label == "record_iteration" and n.is_finished_ok]
    return sorted(n.ctime for n in records)


# ------------------------------------------------------------------------------------------------ the templates
@pytest.mark.parametrize("name", NAMES)
def test_every_template_follows_the_campaign_schema_and_says_what_it_costs(name):
    from aiida_nanoos.schema import schema_errors

    assert set(templates.template_names()) >= set(NAMES)
    config = load(name)
    assert schema_errors("campaign", config) == []
    space, objective, settings = cp.validate_campaign(
        space_of(config), config["objective"], config["config"], config.get("constraints")
    )
    assert space.n_encoded > 0 and settings.max_iterations >= 1
    header = templates.template_header(name)
    for key in templates.HEADER_KEYS:
        assert len(header[key]) > 20, (name, key)
    # the header names the evaluator the file uses
    assert header["evaluator"].split()[0] == config["evaluator"]["name"]
    broken = {**config, "evaluator": {**config["evaluator"], "nmae": "typo"}}
    assert schema_errors("campaign", broken)  # and the check can fail


def test_the_templates_search_what_their_names_say():
    gap = cp.CampaignObjective.from_spec(load("band_gap_window_group_iv")["objective"])
    assert gap.primary.target_range is not None and gap.properties == {"bandgap"}
    pareto = cp.CampaignObjective.from_spec(load("pareto_gap_stability")["objective"])
    assert pareto.multi and pareto.properties == {"bandgap", "stability_score"} and pareto.directions == ["max", "max"]
    perovskites = load("stable_perovskites")
    stable = cp.CampaignObjective.from_spec(perovskites["objective"])
    assert stable.directions == ["min"] and stable.primary.properties == {"formation_energy"}
    assert stable.evaluate({"formation_energy": 0.2})["feasible"] is False
    assert stable.evaluate({"formation_energy": -1.1})["feasible"] is True
    base = perovskites["search_space"]["base_structure"]
    assert base["symbols"] == ["Sr", "Ti", "O", "O", "O"]


def test_the_perovskite_template_makes_abx3_cells_with_at_most_one_anion_replaced():
    """The template that cannot run here (its pw.x needs pseudopotentials for Sr, Ba, Zr, ...): its space makes the
    cells the header promises."""
    config = load("stable_perovskites")
    space = cp.load_space(config["search_space"], config.get("constraints"))
    rng = np.random.default_rng(0)
    seen = set()
    for k, point in enumerate(space.sample(40, rng)):
        atoms = space.to_atoms(point, seed=k)
        symbols = atoms.get_chemical_symbols()
        assert len(symbols) == 5 and symbols[0] in {"Sr", "Ca", "Ba"} and symbols[1] in {"Ti", "Zr", "Hf", "Sn"}
        anions = symbols[2:]
        assert anions.count("O") >= 2 and set(anions) <= {"O", "N", "F", "S"}
        assert abs(atoms.get_volume() / 3.905**3 - 1) < 0.07  # isotropic strain of at most 2 %
        seen.add(tuple(symbols))
    assert len(seen) > 10  # the sample covers the space, not one cell


def test_template_list_prints_a_table_and_json():
    table = invoke("campaign", "template", "list").output
    for name in NAMES:
        assert re.search(rf"^{name}\s+\S", table, re.M), table
    rows = json.loads(invoke("campaign", "template", "list", "--json").output)
    assert [row["name"] for row in rows] == templates.template_names()
    by_name = {row["name"]: row for row in rows}
    assert by_name["stable_perovskites"]["evaluator"].startswith("formation_energy")
    assert "pw.x" in by_name["band_gap_window_group_iv"]["cost"]


def test_template_show_prints_the_file():
    for name in NAMES:
        assert invoke("campaign", "template", "show", name).output == templates.template_text(name)


def test_template_new_writes_a_file_and_refuses_to_overwrite_it(tmp_path):
    path = tmp_path / "gap.yaml"
    invoke("campaign", "template", "new", "band_gap_window_group_iv", "-o", path)
    assert path.read_text() == templates.template_text("band_gap_window_group_iv")
    path.write_text("edited by hand\n")
    refused = invoke("campaign", "template", "new", "band_gap_window_group_iv", "-o", path, expect_ok=False)
    assert refused.exit_code == 2 and "--force" in refused.output
    assert path.read_text() == "edited by hand\n"
    invoke("campaign", "template", "new", "band_gap_window_group_iv", "-o", path, "--force")
    assert path.read_text() == templates.template_text("band_gap_window_group_iv")

    # --from: NAME is the new campaign's label, everything else (comments too) is the template's
    mine = tmp_path / "mine.yaml"
    invoke("campaign", "template", "new", "my perovskites: Ba only", "--from", "stable_perovskites", "-o", mine)
    assert load_text(mine)["name"] == "my perovskites: Ba only"
    original, written = templates.template_text("stable_perovskites").splitlines(), mine.read_text().splitlines()
    assert [a for a, b in zip(original, written, strict=True) if a != b] == ["name: stable perovskites"]


def load_text(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_an_unknown_template_is_a_usage_error_that_lists_the_names(tmp_path):
    for args in (("show", "nope"), ("new", "nope", "-o", tmp_path / "x.yaml"), ("new", "x", "--from", "nope")):
        result = invoke("campaign", "template", *args, expect_ok=False)
        assert result.exit_code == 2 and "no campaign template 'nope'" in result.output
        assert all(name in result.output for name in NAMES)
    assert not (tmp_path / "x.yaml").exists()
    nowhere = invoke("campaign", "template", "new", NAMES[0], "-o", tmp_path / "no" / "x.yaml", expect_ok=False)
    assert nowhere.exit_code == 2 and "no folder" in nowhere.output


# ------------------------------------------------------------------------------------------------ real runs
def run_template(aiida_profile, tmp_path: Path, name: str, **config) -> orm.WorkChainNode:
    """The template saved by ``template new``, with the analytic evaluator and a short ``config``, run here."""
    path = tmp_path / f"{name}.yaml"
    invoke("campaign", "template", "new", name, "-o", path)
    spec = load_text(path)
    spec["evaluator"] = {"name": "analytic"}
    spec["config"].update(config)
    path.write_text(yaml.safe_dump(spec))
    output = invoke("-p", aiida_profile.name, "campaign", "run", path).output
    node = orm.load_node(int(re.search(r"CampaignWorkChain<(\d+)> finished", output).group(1)))
    assert node.is_finished_ok, output
    return node


@pytest.fixture(scope="module")
def band_gap_run(aiida_profile, tmp_path_factory):
    return run_template(
        aiida_profile, tmp_path_factory.mktemp("gap"), "band_gap_window_group_iv", max_iterations=2, budget=6
    )


def test_the_band_gap_window_template_runs_and_stats_gives_its_pace(aiida_profile, band_gap_run):
    node = band_gap_run
    stats = json.loads(invoke("-p", aiida_profile.name, "campaign", "stats", node.pk, "--json").output)
    assert stats["iterations"] == 2 and stats["total_candidates_evaluated"] == 6
    pace = stats["pace"]
    ends = [node.ctime, *record_ends(node)]
    seconds = [(b - a).total_seconds() for a, b in zip(ends, ends[1:], strict=False)]
    assert pace["iterations_timed"] == 2 and pace["seconds_per_iteration_last"] == pytest.approx(seconds[-1])
    assert pace["seconds_per_iteration_median"] == pytest.approx(statistics.median(seconds))
    assert pace["evaluations_per_hour"] == pytest.approx(6 / sum(seconds) * 3600)
    # budget 6 and two batches of 3: both limits reached at once; the campaign says budget_exhausted, so does stats
    assert stats["convergence_reason"] == "budget_exhausted" == pace["limit"]
    assert pace["iterations_to_finish"] == 0 and pace["seconds_left"] == 0 and not pace["stopped"]
    assert "hypervolume" not in stats
    text = invoke("-p", aiida_profile.name, "campaign", "stats", node.pk).output
    assert f"evaluations per hour   {pace['evaluations_per_hour']:.4g}" in text
    assert "time left              0 (converged: budget_exhausted)" in text


def test_the_pareto_template_runs_and_stats_gives_the_hypervolume_after_each_iteration(aiida_profile, tmp_path):
    node = run_template(aiida_profile, tmp_path, "pareto_gap_stability", max_iterations=3, batch_size=3, budget=9)
    stats = json.loads(invoke("-p", aiida_profile.name, "campaign", "stats", node.pk, "--json").output)
    hypervolume = stats["hypervolume"]
    trend = hypervolume["trend"]
    assert hypervolume["objectives"] == ["maximize_bandgap", "maximize_stability"]
    assert hypervolume["reference_point"] == [0.0, 0.0] and len(trend) == 3
    assert all(later >= earlier for earlier, later in zip(trend, trend[1:], strict=False)), trend
    # the last value is moocore's hypervolume of the final front (both objectives maximised: negate to minimise)
    front = node.outputs.pareto_front.get_dict()
    points = np.array([member["objectives"] for member in front["members"]])
    assert len(points) >= 1 and trend[-1] > 0
    assert trend[-1] == pytest.approx(moocore.hypervolume(-points, ref=[0.0, 0.0]), rel=1e-12)
    assert trend[-1] == pytest.approx(front["hypervolume"], rel=1e-12)
    text = invoke("-p", aiida_profile.name, "campaign", "stats", node.pk).output
    assert "Hypervolume (maximize_bandgap, maximize_stability; reference point [0, 0])" in text


def test_the_time_left_of_a_running_campaign_is_its_iterations_left_at_the_median_pace(
    daemon,  # noqa: F811
    daemon_profile,  # noqa: F811
    tmp_path,
):
    """Submitted to the daemon and paused after two iterations: the budget (20 evaluations in batches of 2) comes
    before max_iterations (30), and the time left is what stats says per iteration times the iterations left."""
    path = tmp_path / "running.yaml"
    invoke("campaign", "template", "new", "paced", "--from", "band_gap_window_group_iv", "-o", path)
    spec = load_text(path)
    spec["evaluator"] = {"name": "analytic"}
    spec["config"].update(algorithm="random", batch_size=2, max_iterations=30, budget=20, patience=None)
    path.write_text(yaml.safe_dump(spec))
    output = invoke("-p", daemon_profile.name, "campaign", "run", path, "--submit").output
    node = orm.load_node(int(re.search(r"CampaignWorkChain<(\d+)>", output).group(1)))
    try:
        wait_for(lambda: len(record_ends(node)) >= 2, 180, "two iterations")
        invoke("-p", daemon_profile.name, "campaign", "pause", node.pk)
        wait_for(lambda: node.paused or node.is_terminated, 60, "the campaign to pause")
        stats = json.loads(invoke("-p", daemon_profile.name, "campaign", "stats", "paced", "--json").output)
        pace, done = stats["pace"], stats["iterations"]
        assert not node.is_terminated and 2 <= done < 10 and stats["budget_used"] == 2 * done
        ends = [node.ctime, *record_ends(node)]
        seconds = [(b - a).total_seconds() for a, b in zip(ends, ends[1:], strict=False)]
        assert pace["seconds_per_iteration_median"] == pytest.approx(statistics.median(seconds))
        assert pace["iterations_left"] == {"max_iterations": 30 - done, "budget": math.ceil((20 - 2 * done) / 2)}
        assert pace["limit"] == "budget" and pace["iterations_to_finish"] == 10 - done
        assert pace["seconds_left"] == pytest.approx((10 - done) * statistics.median(seconds))
        assert pace["current_iteration_seconds"] >= 0 and not pace["stopped"]
    finally:
        invoke("-p", daemon_profile.name, "campaign", "kill", node.pk)
        wait_for(lambda: node.is_terminated, 120, "the campaign to be killed")
    stopped = json.loads(invoke("-p", daemon_profile.name, "campaign", "stats", node.pk, "--json").output)["pace"]
    assert stopped["stopped"] and stopped["limit"] == "budget" and stopped["seconds_left"] > 0
