"""``aiida-nanoos model train | list | show | predict`` smoke tests (CliRunner, test profile, a tiny model)."""

from __future__ import annotations

import csv
import io
import json

import pytest
from aiida import orm
from click.testing import CliRunner

from aiida_nanoos.benchmarks.crystal_graph_harness import generate_perovskite_candidates
from aiida_nanoos.cli import cli
from tests.test_model import toy_target


@pytest.fixture(scope="module")
def toy_csv(tmp_path_factory):
    """A CSV in the perov5 layout (material_id, cif, target) of generated cells with a rule-based target."""
    from ase.io import write

    path = tmp_path_factory.mktemp("cli-model") / "toy.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["material_id", "cif", "formation_energy"])
        for i, atoms in enumerate(generate_perovskite_candidates(24, seed=4)):
            cif = io.BytesIO()
            write(cif, atoms, format="cif")
            writer.writerow([f"toy-{i}", cif.getvalue().decode(), toy_target(atoms)])
    return path


def invoke(aiida_profile, *args, expect_ok=True):
    result = CliRunner().invoke(cli, ["-p", aiida_profile.name, "model", *map(str, args)])
    if expect_ok:
        assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_model_cli_train_list_show_predict(aiida_profile, nanoos_resources, toy_csv, tmp_path):
    trained = invoke(
        aiida_profile, "train", toy_csv, "--target", "formation_energy", "--name", "cli_toy",
        "--models", 2, "--epochs", 2,
    )  # fmt: skip
    assert "cli_toy_v1: predicts 'formation_energy'" in trained.output
    assert "trained by ModelTrainingCalculation" in trained.output

    listed = invoke(aiida_profile, "list")
    assert "cli_toy_v1 (formation_energy)" in listed.output
    shown = invoke(aiida_profile, "show", "cli_toy_v1")
    assert "validation: MAE" in shown.output

    from ase.io import write

    extxyz = tmp_path / "candidates.extxyz"
    write(extxyz, generate_perovskite_candidates(5, seed=9), format="extxyz")
    predicted = invoke(aiida_profile, "predict", "cli_toy", toy_csv, extxyz, "--select", 2, "--show", 3)
    assert "formation_energy for 29 structures" in predicted.output
    assert "±" in predicted.output and "... 26 more" in predicted.output
    assert "prediction ArrayData<" in predicted.output
    assert "selected for simulation (uncertainty) on the epistemic sigma" in predicted.output
    # --json: every structure (not only the --show rows), equal to the stored prediction node
    data = json.loads(invoke(aiida_profile, "predict", "cli_toy", extxyz, "--select", 2, "--json").output)
    prediction = orm.load_node(data["prediction_pk"])
    assert [row["value"] for row in data["predictions"]] == pytest.approx(prediction.get_array("prediction").tolist())
    assert len(data["predictions"]) == 5 and len(data["selected"]) == 2
    assert {entry["identifier"] for entry in data["selected"]} <= {row["identifier"] for row in data["predictions"]}

    wrong = invoke(aiida_profile, "predict", "cli_toy", extxyz, "--target", "band_gap", expect_ok=False)
    assert wrong.exit_code != 0 and "not 'band_gap'" in wrong.output
    missing = invoke(aiida_profile, "show", "no_such_model", expect_ok=False)
    assert missing.exit_code != 0 and "available: " in missing.output and "cli_toy_v1" in missing.output
    bad_column = invoke(aiida_profile, "train", toy_csv, "--target", "band_gap", "--name", "x", expect_ok=False)
    assert bad_column.exit_code != 0 and "no column 'band_gap'" in bad_column.output
