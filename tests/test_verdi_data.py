"""``verdi data nanoos.*``: the plugin's data commands run through the real ``verdi`` executable on the test profile.

The same click groups are ``aiida-nanoos trainingset | potential | model``; here they must work where an AiiDA user
looks first: registered under ``aiida.cmdline.data``, loaded by ``verdi`` (its ``-p`` profile option, its own
process), reading and writing the profile's storage.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from aiida_nanoos.data.model import ModelData
from aiida_nanoos.data.potential import PotentialData
from aiida_nanoos.data.training_set import TrainingSetData
from aiida_nanoos.potentials import frames as frame_io
from tests.core.potentials.test_frames import labelled_frames

#: Each ``verdi`` call is a new Python process loading aiida-core and the plugin (~2-3 s here): ~30 s in all.
pytestmark = pytest.mark.slow


def verdi(profile, *args: str, expect_ok: bool = True) -> subprocess.CompletedProcess:
    """``verdi -p PROFILE ARGS`` in a new process, on the test profile (its configuration folder is our AIIDA_PATH)."""
    from aiida.manage.configuration import get_config

    exe = shutil.which("verdi")
    assert exe, "verdi is not on PATH (tests/conftest.py puts the venv's scripts there)"
    env = {**os.environ, "AIIDA_PATH": str(Path(get_config().dirpath).parent)}
    result = subprocess.run([exe, "-p", profile.name, *args], env=env, capture_output=True, text=True, timeout=300)
    if expect_ok:
        assert result.returncode == 0, f"verdi {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def row_of(output: str, pk: int) -> list[str]:
    """The whitespace-separated cells of the table row whose first cell is ``pk``."""
    for line in output.splitlines():
        cells = line.replace("|", " ").split()
        if cells and cells[0] == str(pk):
            return cells
    raise AssertionError(f"no row for PK {pk} in:\n{output}")


def test_verdi_data_lists_the_plugin_groups(aiida_profile):
    listed = verdi(aiida_profile, "data", "--help").stdout
    for group in ("nanoos.training_set", "nanoos.potential", "nanoos.model"):
        assert re.search(rf"^\s+{re.escape(group)}\s", listed, re.MULTILINE), listed


def test_training_set_list_show_export_import_through_verdi(aiida_profile, tmp_path):
    frames = labelled_frames(3)
    node = TrainingSetData(frames).store()
    node.label = "verdi-data-test"

    cells = row_of(verdi(aiida_profile, "data", "nanoos.training_set", "list").stdout, node.pk)
    assert "3" in cells and "24" in cells and "Si" in " ".join(cells)  # frames, atoms, elements

    shown = verdi(aiida_profile, "data", "nanoos.training_set", "show", str(node.pk)).stdout
    assert f"TrainingSetData<{node.pk}>" in shown
    assert re.search(r"frames:\s+3\b", shown) and re.search(r"atoms:\s+24\b", shown)

    exported = tmp_path / "frames.extxyz"
    verdi(aiida_profile, "data", "nanoos.training_set", "export", str(node.pk), "-o", str(exported))
    import ase.io

    written = ase.io.read(exported, index=":")
    assert len(written) == 3
    expected = sorted(frame_io.frame_labels(a)["energy"] for a in node.get_frames())
    assert sorted(a.get_potential_energy() for a in written) == pytest.approx(expected, abs=1e-8)

    imported = verdi(aiida_profile, "data", "nanoos.training_set", "import", str(exported), "--label", "re-imported")
    new_pk = int(re.search(r"TrainingSetData<(\d+)>", imported.stdout).group(1))
    assert new_pk != node.pk
    from aiida import orm

    again = orm.load_node(new_pk)
    assert isinstance(again, TrainingSetData) and again.label == "re-imported"
    assert sorted(frame_io.frame_labels(a)["energy"] for a in again.get_frames()) == pytest.approx(expected, abs=1e-8)

    wrong = verdi(aiida_profile, "data", "nanoos.training_set", "show", str(orm.Int(5).store().pk), expect_ok=False)
    assert wrong.returncode != 0 and "not a training set" in wrong.stdout + wrong.stderr


def test_potential_list_show_export_through_verdi(aiida_profile, tmp_path):
    from aiida_nanoos.potentials import snap

    params = snap.SnapHyperparameters.for_elements(["Si"], twojmax=2, rcutfac=4.7)
    coefficients = np.linspace(-0.5, 0.5, 6).reshape(1, 6)
    node = PotentialData.from_snap(snap.SnapPotential(params, coefficients), name="verdi-si", version=2).store()

    cells = row_of(verdi(aiida_profile, "data", "nanoos.potential", "list").stdout, node.pk)
    assert "SNAP" in cells and "verdi-si" in cells

    shown = verdi(aiida_profile, "data", "nanoos.potential", "show", str(node.pk)).stdout
    assert "verdi-si v2 (SNAP)" in shown
    assert "pair_style snap" in shown and "pair_coeff * * potential.snapcoeff potential.snapparam Si" in shown

    folder = tmp_path / "exported"
    verdi(aiida_profile, "data", "nanoos.potential", "export", str(node.pk), "-o", str(folder))
    meta = json.loads((folder / "potential.json").read_text())
    assert meta["uuid"] == node.uuid and meta["descriptor_type"] == "SNAP"
    assert (folder / "pair.lmp").read_text().splitlines()[0] == "pair_style snap"
    # the coefficient file holds the node's coefficients (after the 2-line header and the element line)
    values = [float(line.split()[0]) for line in (folder / "potential.snapcoeff").read_text().splitlines()[-6:]]
    np.testing.assert_allclose(values, coefficients[0])

    missing = verdi(aiida_profile, "data", "nanoos.potential", "show", "99999999", expect_ok=False)
    assert missing.returncode != 0 and "99999999" in missing.stdout + missing.stderr


def test_model_list_and_show_through_verdi(aiida_profile):
    from aiida_nanoos.benchmarks.crystal_graph_harness import generate_perovskite_candidates
    from aiida_nanoos.models.cgcnn import Architecture, TrainingSettings, train_model

    structures = generate_perovskite_candidates(12, seed=1)
    targets = [float(atoms.get_volume() / len(atoms)) for atoms in structures]  # a simple learnable target
    tiny = Architecture(hidden=8, n_conv=1, head_hidden=8, dropout=0.0, bond_ratio_bins=4)
    model = train_model(
        structures, targets, "volume_per_atom", n_members=2, architecture=tiny, training=TrainingSettings(epochs=1)
    )
    node = ModelData.from_model(model, name="verdi_toy", metrics={"mae": 0.25}).store()

    cells = row_of(verdi(aiida_profile, "data", "nanoos.model", "list").stdout, node.pk)
    assert f"verdi_toy_v{node.version}" in cells and "ensemble" in cells and "0.25" in cells

    shown = verdi(aiida_profile, "data", "nanoos.model", "show", "verdi_toy").stdout
    assert f"ModelData<{node.pk}> verdi_toy_v{node.version}: predicts 'volume_per_atom'" in shown
    assert "2 member(s)" in shown

    unknown = verdi(aiida_profile, "data", "nanoos.model", "show", "no_such_model", expect_ok=False)
    assert unknown.returncode != 0 and "verdi_toy" in unknown.stdout + unknown.stderr  # the available names


def test_verdi_node_graph_generate_draws_the_provenance_of_a_split(aiida_profile, tmp_path):
    """Graphviz (`dot`, a Debian package `make` installs) renders the provenance graph of a training-set split."""
    from aiida import orm

    from aiida_nanoos.functions.training_set import split_training_set

    assert shutil.which("dot"), "Graphviz is missing: `make system` as root installs it (apt-get install graphviz)"
    training_set = TrainingSetData(labelled_frames(5)).store()
    split = split_training_set(training_set, orm.Float(0.4), orm.Int(1))
    output = tmp_path / "split.png"
    verdi(aiida_profile, "node", "graph", "generate", "-f", "png", "-O", str(output), str(training_set.pk))
    assert output.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    canonical = tmp_path / "split.canon"  # Graphviz's own text format: one `N<pk>` per node, `N<a> -> N<b>` per link
    verdi(aiida_profile, "node", "graph", "generate", "-f", "canon", "-O", str(canonical), str(training_set.pk))
    graph = canonical.read_text()
    calculation = split["train"].creator
    assert f"N{training_set.pk} -> N{calculation.pk}" in graph  # INPUT_CALC
    for created in (split["train"], split["validation"]):
        assert f"N{calculation.pk} -> N{created.pk}" in graph  # CREATE
