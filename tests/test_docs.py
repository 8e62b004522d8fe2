"""The documentation builds without a single warning, and its generated pages say what the code says.

``sphinx-build -W --keep-going`` (warnings are errors) on ``docs/``, as ``make docs`` runs it; then the pages a new
user needs must exist: the tutorial, each how-to, the exit codes of every process (read from the process specs at
build time: each status of each spec must be in the table), the CLI reference and the notebooks. The example code the
how-to guides include is run here too, so the guides cannot show code that does not work.
"""

from __future__ import annotations

import html
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HOWTOS = ("hpc_cluster", "add_evaluator", "add_proposer", "own_data", "mace")


def text_of(page: Path) -> str:
    """The visible text of an HTML page, whitespace collapsed."""
    return visible_text(page.read_text())


def visible_text(source: str) -> str:
    """Text without tags: inline tags (highlighted code, signatures) vanish, block tags become a space."""
    source = re.sub(r"<(script|style)\b.*?</\1>", " ", source, flags=re.S)
    source = re.sub(r"</?(span|a|code|em|strong|b|i)\b[^>]*>", "", source)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", source)))


def section_text(page: Path, anchor: str) -> str:
    """The visible text of the ``<section id=anchor>`` of a page, up to the next section."""
    source = page.read_text()
    start = source.index(f'id="{anchor}"')
    end = source.find("<section", start + 1)
    return visible_text(source[start : end if end > 0 else len(source)])


def load_example(name: str):
    """A module of ``docs/howto/examples`` (the code the how-to guides include), imported from its file."""
    path = DOCS / "howto" / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"nanoos_docs_example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory) -> Path:
    """The HTML documentation, built from scratch with warnings as errors."""
    out = tmp_path_factory.mktemp("docs-html")
    sphinx_build = Path(sys.executable).parent / "sphinx-build"
    command = [str(sphinx_build), "-W", "--keep-going", "-b", "html", "-d", str(out / ".doctrees"), str(DOCS), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200, env=dict(os.environ))
    assert result.returncode == 0, f"sphinx-build failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    assert "WARNING" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    return out


@pytest.mark.slow
def test_tutorial_and_how_to_guides_are_built(built_docs):
    tutorial = text_of(built_docs / "tutorial.html")
    for command in ("make demo", "make test", "aiida-nanoos campaign show", "aiida-nanoos campaign stats",
                    "aiida-nanoos campaign plot", "verdi process list", "verdi node graph generate"):  # fmt: skip
        assert command in tutorial, command
    for name in HOWTOS:
        assert (built_docs / "howto" / f"{name}.html").is_file(), name
    # the included example code is on the page, not only referenced
    assert "class DensityEvaluatorWorkChain" in text_of(built_docs / "howto" / "add_evaluator.html")
    assert "def propose_sobol" in text_of(built_docs / "howto" / "add_proposer.html")
    index = text_of(built_docs / "index.html")
    assert "Tutorial" in index and "How-to guides" in index and "Reference" in index


@pytest.mark.slow
def test_exit_code_table_lists_every_exit_code_of_every_process(built_docs):
    page = built_docs / "reference" / "exit_codes.html"
    md = section_text(page, "exit-codes-nanoos-md")
    assert "aiida_nanoos.calculations.md.MdCalculation" in md
    assert re.search(r"\b350 ERROR_MD_UNSTABLE \S", md), md[:2000]  # a real row: status, label, message
    assert re.search(r"\b351 ERROR_MD_LOST_ATOMS \S", md)
    from aiida.engine import CalcJob, Process, WorkChain

    inherited = {base: {code.status for code in base.spec().exit_codes.values()} for base in (CalcJob, WorkChain)}
    checked = 0
    for group in ("aiida.workflows", "aiida.calculations"):
        for ep in entry_points(group=group):
            if not ep.value.startswith("aiida_nanoos."):
                continue
            obj = ep.load()
            cls = obj if inspect.isclass(obj) else obj.process_class
            base = CalcJob if issubclass(cls, CalcJob) else WorkChain if issubclass(cls, WorkChain) else Process
            own = {label: code for label, code in cls.spec().exit_codes.items()
                   if code.status not in inherited.get(base, set())}  # fmt: skip
            if base is Process or not own:
                continue
            table = section_text(page, f"exit-codes-{ep.name}".replace(".", "-").replace("_", "-"))
            for label, code in own.items():
                assert f"{code.status} {label}" in table, (ep.name, code.status, label)
                checked += 1
    assert checked >= 40  # the plugin's work chains and CalcJobs define that many today
    inherited_rows = section_text(page, "exit-codes-aiida-calcjob")
    assert "110 ERROR_SCHEDULER_OUT_OF_MEMORY" in inherited_rows


@pytest.mark.slow
def test_cli_process_and_api_references_are_generated(built_docs):
    from aiida_nanoos.cli import cli

    reference = built_docs / "reference"
    cli_text = text_of(reference / "cli.html")
    for name in cli.commands:
        assert f"aiida-nanoos {name}" in cli_text, name
    assert "aiida-nanoos campaign run" in cli_text and "--example-config" in cli_text
    workflows = text_of(reference / "workflows.html")
    for ep in entry_points(group="aiida.workflows"):
        if ep.value.startswith("aiida_nanoos."):
            assert ep.value.split(":")[1] in workflows, ep.name
    assert "Outline:" in workflows and "Inputs:" in workflows  # aiida.sphinxext rendered the specs
    calculations = text_of(reference / "calculations.html")
    assert "MdCalculation" in calculations and "suggest_candidates" in calculations
    api = text_of(reference / "api.html")
    assert "class aiida_nanoos.data.potential.PotentialData(" in api  # the signature of the data type
    assert "campaign_dataframe" in api and "QueryBuilder" in api
    configuration = text_of(reference / "configuration.html")
    assert "search_space:" in configuration  # the example campaign file, included as it is


@pytest.mark.slow
def test_configuration_reference_is_generated_from_the_schema(built_docs):
    from aiida_nanoos.design.config import ALGORITHMS
    from aiida_nanoos.schema import json_schema, schema_kinds

    page = built_docs / "reference" / "configuration.html"
    for kind in schema_kinds():
        table = section_text(page, f"config-{kind.replace('_', '-')}")
        assert json_schema(kind)["description"] in table, kind
    campaign = section_text(page, "config-campaign")
    algorithm = campaign[campaign.index("config.algorithm") :][:400]
    assert "allowed: " + ", ".join(ALGORITHMS) in algorithm, algorithm
    assert "search_space.dimensions[type=substitution].host" in campaign
    iterations = json_schema("campaign")["properties"]["config"]["properties"]["max_iterations"]
    row = f"config.max_iterations integer no {iterations['description']}; >= 1; default: {iterations['default']}"
    assert row in campaign, campaign[campaign.index("config.max_iterations") :][:300]


@pytest.mark.slow
def test_every_notebook_is_a_page(built_docs):
    notebooks = sorted((ROOT / "examples" / "notebooks").glob("*.ipynb"))
    index = text_of(built_docs / "notebooks" / "index.html")
    for notebook in notebooks:
        assert (built_docs / "notebooks" / f"{notebook.stem}.html").is_file(), notebook.name
    assert "Notebooks" in index


def test_the_evaluator_of_the_how_to_guide_runs(aiida_profile):
    """The density evaluator of docs/howto/add_evaluator.md on diamond Si (a = 5.43 Å): 2.330 g/cm³, 20.01 Å³/atom."""
    from aiida import orm
    from aiida.engine import run_get_node
    from ase.build import bulk

    example = load_example("density_evaluator")
    structure = orm.StructureData(ase=bulk("Si", "diamond", a=5.43, cubic=True))
    results, node = run_get_node(example.DensityEvaluatorWorkChain, structure=structure)
    assert node.is_finished_ok
    properties = results["properties"].get_dict()
    assert properties["density"] == pytest.approx(2.3303, abs=2e-4)  # 8 x 28.0855 amu in (5.43 Å)³
    assert properties["volume_per_atom"] == pytest.approx(5.43**3 / 8)
    assert set(properties) == set(example.DensityEvaluatorWorkChain.PROPERTIES)


def test_the_proposer_of_the_how_to_guide_proposes_valid_reproducible_points():
    """The Sobol proposer of docs/howto/add_proposer.md: valid points of the space, the same after a restart."""
    import yaml
    from ase.build import bulk

    from aiida_nanoos.design import campaign as cp
    from aiida_nanoos.design.proposers.context import ProposalContext
    from aiida_nanoos.design.spaces import atoms_to_dict

    example = load_example("sobol_proposer")
    spec = yaml.safe_load((ROOT / "examples" / "campaign_group_iv.yaml").read_text())
    # the CLI turns the YAML's {bulk: ...} into a cell; here the same cell by hand
    spec["search_space"]["base_structure"] = atoms_to_dict(bulk("SiGe", "zincblende", a=5.54, cubic=True))
    config = cp.CampaignConfig.from_dict({"algorithm": "random", "batch_size": 4, "seed": 11})
    space, objective, _ = cp.validate_campaign(spec["search_space"], spec["objective"], config.to_dict())
    state = cp.new_state(config)
    proposals, report = example.propose_sobol(ProposalContext(space, objective, config, state, 4))
    assert len(proposals) == 4 and report == {"algorithm": "sobol", "sequence_start": 0}
    for proposal in proposals:
        space.validate_point(proposal.parameters)
        assert proposal.generation_method == "sobol"
    again, _ = example.propose_sobol(ProposalContext(space, objective, config, cp.new_state(config), 4))
    assert [p.parameters for p in again] == [p.parameters for p in proposals]
    # the four points are spread out: no two share their encoded position
    encoded = space.encode([p.parameters for p in proposals])
    assert len({tuple(row.round(6)) for row in encoded}) == 4


def documented_command_lines() -> list[tuple[str, list[str]]]:
    """(where, tokens) of every ``aiida-nanoos`` / ``verdi`` line in the ```bash blocks of the docs."""
    import shlex

    found = []
    for page in sorted(DOCS.rglob("*.md")):
        if "_build" in page.parts or "notebooks" in page.parts:
            continue
        blocks = re.findall(r"```(?:bash|console|shell)\n(.*?)```", page.read_text(), flags=re.S)
        for block in blocks:
            for line in block.replace("\\\n", " ").splitlines():
                line = re.split(r"\s#\s", line, maxsplit=1)[0].strip()
                if line.startswith(("aiida-nanoos ", "verdi ")):
                    found.append((f"{page.relative_to(DOCS)}: {line}", shlex.split(line)))
    return found


def unknown_command_or_option(root, tokens: list[str]) -> str | None:
    """Why ``tokens`` is not a command line of the click command ``root`` (None when every sub-command and option
    exists): sub-commands are descended by name, options checked against the command they follow."""
    import click

    context = click.Context(root, info_name=tokens[0])
    command, index = root, 1
    while isinstance(command, click.Group) and index < len(tokens) and not tokens[index].startswith("-"):
        try:
            sub = command.get_command(context, tokens[index])
        except click.UsageError as error:  # verdi-style groups suggest the nearest command
            return f"no command {' '.join(tokens[: index + 1])!r}: {error}"
        if sub is None:
            return f"no command {' '.join(tokens[: index + 1])!r}"
        context = click.Context(sub, parent=context, info_name=tokens[index])
        command, index = sub, index + 1
    params = {opt: param for param in command.params for opt in (*param.opts, *param.secondary_opts)}
    while index < len(tokens):
        token = tokens[index]
        if token == "--":
            break
        if token.startswith("-") and len(token) > 1 and not re.fullmatch(r"-\d.*", token):
            name = token.split("=", 1)[0]
            if name not in params:
                return f"{' '.join(tokens[:index])!r} has no option {name!r}"
            if not params[name].is_flag and "=" not in token and not getattr(params[name], "count", False):
                index += 1  # its value
        index += 1
    return None


def test_every_command_line_in_the_docs_exists():
    """Each ``aiida-nanoos ...`` and ``verdi ...`` line the docs show names real sub-commands and options."""
    from aiida.cmdline.commands.cmd_verdi import verdi

    from aiida_nanoos.cli import cli

    lines = documented_command_lines()
    assert len(lines) >= 30
    problems = [
        f"{where}: {problem}"
        for where, tokens in lines
        if (problem := unknown_command_or_option(cli if tokens[0] == "aiida-nanoos" else verdi, tokens))
    ]
    assert not problems, "\n".join(problems)
    # the checker can fail: a renamed option is caught
    assert unknown_command_or_option(cli, ["aiida-nanoos", "campaign", "plot", "1", "--output-file", "x"])
    assert unknown_command_or_option(cli, ["aiida-nanoos", "campaign", "replay", "1"])
