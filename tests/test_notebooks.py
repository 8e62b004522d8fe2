"""The example notebooks (``examples/notebooks``) executed top to bottom with nbclient, as an AiiDAlab user runs them,
on the test profile with small settings injected after their ``parameters`` cell; a cell that raises fails the test
(``CellExecutionError``). Each test then checks what the notebook made: the process nodes it ran, the numbers it
printed against those nodes, the figures it showed and wrote, the state of its progress widget.

The kernel is a subprocess (the venv's ``python3`` kernel): it finds the test profile through ``AIIDA_PATH`` (the
test configuration, whose default profile is the test profile) and the injected ``PROFILE``.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import os
import re
import sys
import uuid
from pathlib import Path

import nbformat
import numpy as np
import pytest
from aiida import orm
from aiida.engine import submit
from jupyter_client.kernelspec import KernelSpecManager
from matplotlib.image import imread
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell

from aiida_nanoos import query
from tests.campaign_fixtures import campaign_builder, daemon, daemon_profile  # noqa: F401
from tests.core.plots.test_plots import assert_picture

pytestmark = pytest.mark.slow

NOTEBOOKS = Path(__file__).resolve().parent.parent / "examples" / "notebooks"
#: Structure views are pictures drawn by ASE unless AiiDAlab's widgets are installed (then they are 3D widgets).
STRUCTURE_PICTURES = 0 if importlib.util.find_spec("aiidalab_widgets_base") else 1
#: A notebook that runs longer than this has hung (the small settings take 0.5-3 min on a loaded 2-core machine).
CELL_TIMEOUT = 900


def execute(
    name: str, aiida_config, aiida_profile, output_dir: Path, stop_before: str | None = None, **parameters
) -> nbformat.NotebookNode:
    """Run notebook ``name`` with ``parameters`` injected after its ``parameters`` cell (papermill's convention), up
    to the first cell tagged ``stop_before`` if given; the executed notebook is also written to ``output_dir`` to look
    at when a test fails."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    if stop_before:
        tags = [cell.metadata.get("tags", []) for cell in notebook.cells]
        notebook.cells = notebook.cells[: next(i for i, cell_tags in enumerate(tags) if stop_before in cell_tags)]
    tagged = [i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{name}: one cell tagged `parameters` expected, found {len(tagged)}"
    values = {"PROFILE": aiida_profile.name, "OUTPUT_DIR": str(output_dir), **parameters}
    injected = new_code_cell("\n".join(f"{key} = {value!r}" for key, value in values.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    notebook.cells.insert(tagged[0] + 1, injected)
    spec = KernelSpecManager().get_kernel_spec("python3")
    # jupyter_client runs a spec's "python" as this interpreter: the venv's, where aiida_nanoos is installed
    assert spec.argv[0] in {"python", "python3", sys.executable}, f"kernel python3 runs {spec.argv[0]}, not the venv"
    client = NotebookClient(
        notebook, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    env = {**os.environ, "AIIDA_PATH": str(aiida_config.dirpath)}
    try:
        client.execute(env=env)
    finally:
        output_dir.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, str(output_dir / name))
    return notebook


def stdout(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook's cells printed."""
    return "".join(
        output.get("text", "")
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stdout"
    )


def shown_pictures(notebook: nbformat.NotebookNode) -> list[np.ndarray]:
    """Pixels of every PNG the notebook displayed (its figures), each checked to be a real picture: many colours,
    some ink, mostly background."""
    pictures = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                pixels = imread(io.BytesIO(base64.b64decode(png)))[..., :3]
                rgb = (pixels * 255).astype(np.uint32).reshape(-1, 3)
                colours = np.unique((rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2])
                assert len(colours) > 50, len(colours)
                assert 0.02 < np.mean(np.any(pixels < 0.95, axis=-1)) < 0.7
                pictures.append(pixels)
    return pictures


def widget_models(notebook: nbformat.NotebookNode, model_name: str) -> list[dict]:
    """The saved state of every ipywidgets model of this kind (nbclient stores the widget state in the metadata)."""
    state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    return [model["state"] for model in state.values() if model["model_name"] == model_name]


def by_label(label: str) -> orm.WorkChainNode:
    return orm.QueryBuilder().append(orm.WorkChainNode, filters={"label": label}).one()[0]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------------------------- executed notebooks
@pytest.fixture(scope="module")
def hybrid_run(aiida_config, aiida_profile, tmp_path_factory):
    """hybrid_si.ipynb with the tests' tiny pipeline (six Si2 cells with pw.x, a 2J=4 SNAP, 100 LAMMPS steps)."""
    label = unique("nb-hybrid")
    output = tmp_path_factory.mktemp("hybrid")
    notebook = execute("hybrid_si.ipynb", aiida_config, aiida_profile, output, SMALL=True, LABEL=label)
    return notebook, by_label(label), output


@pytest.fixture(scope="module")
def bo_run(aiida_config, aiida_profile, tmp_path_factory):
    """bo_campaign.ipynb with the analytic evaluator: a BO campaign and a two-objective campaign."""
    labels = {"LABEL": unique("nb-bo"), "PARETO_LABEL": unique("nb-pareto")}
    output = tmp_path_factory.mktemp("bo")
    notebook = execute(
        "bo_campaign.ipynb", aiida_config, aiida_profile, output, SMALL=True, EVALUATOR="analytic", **labels
    )
    return notebook, by_label(labels["LABEL"]), by_label(labels["PARETO_LABEL"]), output


# ---------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize(
    ("name", "summary"),
    [
        ("hybrid_si.ipynb", "10 DFT cells of 8 atoms, SNAP 2J=6, MD supercell [5, 5, 5] for 500 steps"),
        ("bo_campaign.ipynb", "bayesian_optimization: 4 iterations of 3 candidates, evaluator band_gap"),
        ("active_learning.ipynb", "6 iterations of 4, evaluator band_gap; model cgcnn_sige_bandgap after 8 labels"),
    ],
)
def test_default_settings_build_the_example_files_processes(name, summary, aiida_config, aiida_profile, tmp_path):
    """What an AiiDAlab user gets without changing a parameter: the YAML files' real settings (pw.x evaluators, the
    1000-atom MD), checked by the builders, up to the cell that would launch them."""
    notebook = execute(name, aiida_config, aiida_profile, tmp_path, stop_before="launch")
    assert summary in stdout(notebook)


def test_hybrid_si_notebook_runs_dft_fit_validation_and_md(hybrid_run):
    notebook, node, output = hybrid_run
    assert node.process_label == "PotentialPipelineWorkChain" and node.is_finished_ok, node.exit_message
    potential = node.outputs.potential
    assert potential.validated and potential.descriptor_type == "SNAP"
    assert node.outputs.training_set.num_frames == 6
    printed = stdout(notebook)
    assert "6 DFT cells of 2 atoms, SNAP 2J=4, MD supercell [3, 3, 3] for 100 steps" in printed
    # the DFT runs behind the potential, found in the graph by the notebook: one per fitted frame
    calculations = [c.pk for c in potential.training_calculations()]
    assert len(calculations) == node.outputs.train_set.num_frames == 4
    assert f"fitted on the labels of 4 pw.x calculations: {calculations}" in printed
    # the MD the notebook plotted is the pipeline's: 54 atoms, 11 thermo rows (every 10 of 100 steps)
    md_run = next(n for n in node.called_descendants if n.process_label == "MdCalculation")
    assert f"{md_run.process_label}<{md_run.pk}>: 54 atoms, 11 thermo rows" in printed
    cost = node.outputs.cost.get_dict()
    assert f"{cost['speedup']:.3g}x cheaper" in printed
    # figures: parity, MD thermodynamics, and the parent and MD cells; parity and MD also written as PNG files
    assert len(shown_pictures(notebook)) == 2 + 2 * STRUCTURE_PICTURES
    for name in ("parity", "md"):
        assert_picture(output / f"hybrid_si_{name}.png")


def test_bo_campaign_notebook_shows_progress_convergence_and_pareto_front(bo_run):
    notebook, campaign, pareto, output = bo_run
    assert campaign.is_finished_ok and pareto.is_finished_ok
    statistics = campaign.outputs.statistics.get_dict()
    assert campaign.outputs.state["candidates"] and len(campaign.outputs.state["candidates"]) == 6  # 3 x 2
    # the progress widgets read the nodes: three of three iterations each, finished, the campaign's best value
    bars = widget_models(notebook, "IntProgressModel")
    assert [(bar["value"], bar["max"], bar["description"], bar["bar_style"]) for bar in bars] == [
        (3, 3, "3/3", "success")
    ] * 2
    texts = {
        pk: [model["value"] for model in widget_models(notebook, "HTMLModel") if f"&lt;{pk}&gt;" in model["value"]]
        for pk in (campaign.pk, pareto.pk)
    }
    assert len(texts[campaign.pk]) == len(texts[pareto.pk]) == 1
    best = f"best target_range_bandgap so far: {statistics['best_objective_value']:.4g} eV"
    assert best in texts[campaign.pk][0] and "evaluations used: 6 of 6" in texts[campaign.pk][0]
    assert f"best hypervolume so far: {pareto.outputs.pareto_front['hypervolume']:.4g}" in texts[pareto.pk][0]
    printed = stdout(notebook)
    members = len(pareto.outputs.pareto_front["members"])
    feasible = sum(1 for r in pareto.outputs.state["candidates"] if r["feasible"])
    assert members >= 1 and f"{members} of {feasible} feasible candidates on the front" in printed
    assert f"hypervolume {pareto.outputs.pareto_front['hypervolume']:.4g}" in printed
    # convergence, the Pareto front and the best candidate's cell; the plots written as PNG files too
    assert len(shown_pictures(notebook)) == 2 + STRUCTURE_PICTURES
    for name in ("convergence", "pareto"):
        assert_picture(output / f"bo_campaign_{name}.png")


def test_active_learning_notebook_trains_the_model_and_plots_its_uncertainty(aiida_config, aiida_profile, tmp_path):
    label = unique("nb-al")
    notebook = execute(
        "active_learning.ipynb", aiida_config, aiida_profile, tmp_path, SMALL=True, EVALUATOR="analytic", LABEL=label
    )
    campaign = by_label(label)
    assert campaign.is_finished_ok, campaign.exit_message
    trainings = [n for n in campaign.called_descendants if n.process_label == "ModelTrainingCalculation"]
    assert len(trainings) == 1 and trainings[0].is_finished_ok  # after the first iteration's 8 labels
    model = campaign.outputs.property_model
    assert model.uuid == trainings[0].outputs.model.uuid and len(trainings[0].inputs.structures) == 8
    printed = stdout(notebook)
    # a third of the 8 labels held out: the calibration plot recomputes the model on those 3 structures
    assert f"{model.full_name}: target bandgap, 3 validation structures, recomputed" in printed
    records = campaign.outputs.state["candidates"]
    checked = [r for r in records if r["source"] != "ml" and r["status"] == "ok" and (r.get("prediction") or {})]
    assert len(checked) == 4  # the second iteration sent the uncertain half of its 8 predicted candidates
    assert f"{len(checked)} candidates predicted then evaluated" in printed
    assert sum(r["source"] == "ml" for r in records) == 4
    summaries = [s.get_dict() for s in query.iteration_outputs(campaign, "summary")]
    assert [(s["candidates_simulated"], s["candidates_ml_predicted"]) for s in summaries] == [(8, 0), (4, 4)]
    bars = widget_models(notebook, "IntProgressModel")
    assert [(bar["value"], bar["description"]) for bar in bars] == [(2, "2/2")]
    # convergence, calibration of the validation split, calibration on the campaign's candidates
    assert len(shown_pictures(notebook)) == 3
    for name in ("convergence", "calibration", "campaign_calibration"):
        assert_picture(tmp_path / f"active_learning_{name}.png")


def test_provenance_queries_notebook_answers_from_the_graph(aiida_config, aiida_profile, hybrid_run, bo_run, tmp_path):
    _, pipeline, _ = hybrid_run
    _, campaign, pareto, _ = bo_run
    potential = pipeline.outputs.potential
    notebook = execute(
        "provenance_queries.ipynb",
        aiida_config,
        aiida_profile,
        tmp_path,
        POTENTIAL=potential.pk,
        CAMPAIGN=campaign.label,
        PROPERTY="bandgap",
        LOW=-1.0,
        HIGH=100.0,
        LIMIT=1000,
    )
    printed = stdout(notebook)
    assert f"potential {potential.pk}: {potential.name} v{potential.version} (SNAP)" in printed
    calculations = potential.training_calculations()
    assert f"{len(calculations)} pw.x calculations trained the potential" in printed and len(calculations) == 4
    first = calculations[0]
    trained = re.search(rf"PwCalculation<{first.pk}> labelled frames of: (.*)", printed).group(1)
    assert f"<{potential.pk}>" in trained  # back from the calculation to the potential it trained
    md_run = next(n for n in pipeline.called_descendants if n.process_label == "MdCalculation")
    assert f"MD runs with the potential: [{md_run.pk}]" in printed
    # every evaluated candidate of both campaigns of bo_campaign.ipynb has a band gap within [-1, 100] eV
    found = int(re.search(r"(\d+) candidates with -1.0 <= bandgap <= 100.0", printed).group(1))
    assert found >= len(campaign.outputs.state["candidates"]) + len(pareto.outputs.state["candidates"])
    assert f"campaign {campaign.pk} ({campaign.label}): 6 candidates in 3 iterations" in printed
    shown = [
        output["data"]["text/markdown"]
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "text/markdown" in output.get("data", {})
    ]
    assert len(shown) == 5 and all("qb.append(" in text for text in shown)


def test_progress_widget_follows_a_campaign_running_in_the_daemon(daemon, monkeypatch):  # noqa: F811
    """What the notebooks do with SUBMIT = True: the widget reads a campaign the daemon runs until it ends."""
    monkeypatch.syspath_prepend(str(NOTEBOOKS))
    from nanoos_widgets import CampaignProgress

    node = submit(campaign_builder({"algorithm": "random", "batch_size": 2, "max_iterations": 4, "seed": 3}))
    progress = CampaignProgress(node)
    seen, read = [], progress.refresh
    progress.refresh = lambda: seen.append(read()) or seen[-1]
    status = progress.watch(interval=0.5, timeout=300)
    assert node.is_finished_ok, node.exit_message
    # it followed the campaign from its start (nothing recorded yet) to its end, one iteration after the other
    iterations = [s.get("iteration", 0) for s in seen]
    assert iterations[0] < 4 and iterations == sorted(iterations) and iterations[-1] == status["iteration"] == 4
    assert (progress.bar.value, progress.bar.max, progress.bar.description) == (4, 4, "4/4")
    assert progress.bar.bar_style == "success"
    statistics = node.outputs.statistics.get_dict()
    assert status["best_so_far"] == pytest.approx(statistics["best_objective_value"])
    assert f"so far: {statistics['best_objective_value']:.4g} eV" in progress.text.value
    assert "evaluations used: 8" in progress.text.value and "finished (exit status 0)" in progress.text.value
