"""``aiida-nanoos campaign|potential|md|model plot ID -o FILE`` on real stored nodes: the files exist, are pictures
of a sensible size, and the numbers the command reports are those of the nodes."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from aiida_nanoos.cli import cli
from tests.core.plots.test_plots import assert_picture, assert_svg

#: The campaigns, the MD run and the trained model are the fixtures of the query tests.
pytest_plugins = ["tests.potential_fixtures", "tests.test_query"]


def invoke(aiida_profile, *args, expect_ok: bool = True):
    result = CliRunner().invoke(cli, ["-p", aiida_profile.name, *map(str, args)])
    if expect_ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_campaign_convergence_and_pareto_plots(aiida_profile, bo_campaign, random_campaign, pareto_campaign, tmp_path):
    best = bo_campaign.outputs.statistics["best_objective_value"]
    png = tmp_path / "convergence.png"
    result = invoke(aiida_profile, "campaign", "plot", bo_campaign.label, "-o", png)
    # the curve's last point is the campaign's best value
    shown = float(re.search(r"best maximize_bandgap (\S+) after 3 iteration", result.output).group(1))
    assert shown == pytest.approx(best) and "no random baseline" not in result.output
    assert_picture(png)

    svg = tmp_path / "sub" / "convergence.svg"
    invoke(aiida_profile, "campaign", "plot", bo_campaign.uuid, "-o", svg, "--baseline", random_campaign.pk)
    assert "random median (campaign" in assert_svg(svg)

    pareto = tmp_path / "pareto.png"
    result = invoke(aiida_profile, "campaign", "plot", pareto_campaign.pk, "-o", pareto, "--kind", "pareto")
    members = len(pareto_campaign.outputs.pareto_front["members"])
    assert f"{members} on the front of" in result.output
    assert_picture(pareto)

    refused = invoke(
        aiida_profile, "campaign", "plot", bo_campaign.pk, "-o", pareto, "--kind", "pareto", expect_ok=False
    )
    assert refused.exit_code != 0 and "one objective" in refused.output
    jpeg = invoke(aiida_profile, "campaign", "plot", bo_campaign.pk, "-o", tmp_path / "x.jpg", expect_ok=False)
    assert jpeg.exit_code == 2 and ".png or .svg" in jpeg.output and not (tmp_path / "x.jpg").exists()
    missing = invoke(aiida_profile, "campaign", "plot", "no-such-campaign", "-o", png, expect_ok=False)
    assert missing.exit_code == 2


def test_potential_and_md_plots(aiida_profile, si_snap, si_md, tmp_path):
    png = tmp_path / "parity.png"
    result = invoke(aiida_profile, "potential", "plot", si_snap.uuid, "-o", png)
    assert "frames" in result.output
    assert_picture(png)
    thermo = tmp_path / "md.svg"
    result = invoke(aiida_profile, "md", "plot", si_md.pk, "-o", thermo)
    assert "11 thermo rows, 64 atoms" in result.output
    assert "temperature (K)" in assert_svg(thermo)
    invoke(aiida_profile, "md", "plot", si_md.uuid, "-o", tmp_path / "md.png")
    assert_picture(tmp_path / "md.png")
    not_md = invoke(aiida_profile, "md", "plot", si_snap.creator.pk, "-o", thermo, expect_ok=False)
    assert not_md.exit_code == 2 and "not an MD run" in not_md.output  # a usage error, as verdi refuses a wrong ID


def test_model_plot(aiida_profile, trained_model, tmp_path):
    png = tmp_path / "calibration.png"
    result = invoke(aiida_profile, "model", "plot", trained_model.full_name, "-o", png)
    assert "6 validation structures, recomputed" in result.output
    assert_picture(png)
