"""``nanoos.potential`` and ``nanoos.potential.train``: real SNAP fits to pw.x Si frames, validation, CLI."""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk
from click.testing import CliRunner

from aiida_nanoos.calculations.potential_training import PotentialTrainingCalculation
from aiida_nanoos.data.potential import PotentialData
from aiida_nanoos.functions.potential import validate_potential
from aiida_nanoos.functions.training_set import split_training_set
from aiida_nanoos.potentials import metrics as pm
from aiida_nanoos.potentials import snap
from aiida_nanoos.potentials.frames import frame_labels

pytest_plugins = ["tests.potential_fixtures"]


def test_snap_fit_through_the_train_calcjob(si_snap_training, si8_training_set):
    """The CalcJob's potential reproduces, through LAMMPS pair_style snap, the training errors it reports."""
    potential = si_snap_training.outputs.potential
    assert potential.descriptor_type == "SNAP" and potential.elements == ["Si"]
    assert potential.hyperparameters["twojmax"] == 4 and potential.hyperparameters["n_coefficients"] == 15
    train = potential.metrics["train"]
    # a 15-coefficient linear model on 6 strained/rattled cells: meV/atom energies, ~0.1 eV/Å forces, not zero
    assert 0 < train["energy_rmse"] < 0.01
    assert 0.005 < train["force_rmse"] < 0.5
    assert train["force_count"] == 6 * 8 * 3
    frames = si8_training_set.get_frames()
    predictions = potential.predict(frames)  # the stored .snapcoeff/.snapparam files, run in LAMMPS
    errors = pm.error_stats(
        np.concatenate([frame_labels(f)["forces"].ravel() for f in frames]),
        np.concatenate([p.forces.ravel() for p in predictions]),
    )
    assert errors.rmse == pytest.approx(train["force_rmse"], rel=1e-6)
    committee = si_snap_training.outputs.committee
    assert sorted(committee) == ["member_00", "member_01", "member_02"]
    coefficients = [committee[k].to_snap().coefficients for k in sorted(committee)]
    assert not np.allclose(coefficients[0], coefficients[1])  # bootstrap members differ
    metrics = si_snap_training.outputs.metrics.get_dict()
    assert metrics["n_frames"] == 6 and len(metrics["committee_metrics"]) == 3


def test_training_calculations_are_a_provenance_query(si_snap, si8_training_set):
    """The potential finds the PwCalculations that labelled its frames through the graph, not a stored list."""
    calculations = si_snap.training_calculations()
    assert {c.uuid for c in calculations} == {f.info["source_uuid"] for f in si8_training_set.get_frames()}
    assert all(c.process_type.endswith("quantumespresso.pw") for c in calculations)
    assert si_snap.training_sets() == [si8_training_set]


def test_validation_on_held_out_frames_records_the_verdict(si8_training_set, nanoos_resources):
    split = split_training_set(si8_training_set, orm.Float(0.25), orm.Int(5))
    builder = PotentialTrainingCalculation.get_builder()
    builder.code = orm.load_code("nanoos-train@localhost")
    builder.training_set = split["train"]
    builder.config = orm.Dict({"descriptor_type": "SNAP", "snap": {"twojmax": 4}, "name": "si-held-out"})
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    fitted = results["potential"]
    lenient = validate_potential(fitted, split["validation"], orm.Dict({"energy_rmse": 0.05, "force_rmse": 1.0}))
    metrics = lenient["metrics"].get_dict()
    n_validation = split["validation"].num_frames
    assert n_validation == 2 and metrics["n_frames"] == 2 and metrics["passed"]
    errors = metrics["errors"]
    assert 0 < errors["energy_rmse"] < 0.05 and 0 < errors["force_rmse"] < 1.0
    # held-out errors are larger than training errors for this small fit
    assert errors["force_rmse"] > fitted.metrics["train"]["force_rmse"]
    parity = lenient["parity"]
    assert parity.get_array("force_reference").shape == (n_validation * 8 * 3,)
    reference_forces = np.concatenate([frame_labels(f)["forces"].ravel() for f in split["validation"].get_frames()])
    np.testing.assert_allclose(parity.get_array("force_reference"), reference_forces)
    validated = lenient["potential"]
    assert validated.validated and not fitted.validated
    assert validated.metrics["validation"]["force_rmse"] == pytest.approx(errors["force_rmse"])
    assert validated.metrics["train"] == fitted.metrics["train"]
    # the copy leads back to the same DFT calculations as the fit it was made from
    assert [c.pk for c in validated.training_calculations()] == [c.pk for c in fitted.training_calculations()]

    strict = validate_potential(fitted, split["validation"], orm.Dict({"force_rmse": 1e-4}))
    assert not strict["potential"].validated
    assert strict["metrics"]["failed_criteria"][0].startswith("force_rmse")


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"snap": {"twojmax": -2}}, "config.snap.twojmax"),
        ({"snap": {"cutoff": 5.0}}, "config.snap.cutoff"),
        ({"descriptor_type": "LJ"}, "config.descriptor_type"),
        ({"committee": {"size": 1}}, "config.committee.size"),
        ({"reference": {"type": "zbl", "inner": 5.0, "outer": 4.0}}, "config.reference.inner"),
        ({"elements": ["Ge"]}, "config.elements lacks"),
    ],
)
def test_bad_training_config_is_refused_at_the_spec(si8_training_set, config, field):
    builder = PotentialTrainingCalculation.get_builder()
    builder.code = orm.load_code("nanoos-train@localhost")
    builder.training_set = si8_training_set
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        builder.config = orm.Dict(config)  # refused on assignment (port validator) or at launch (namespace)
        run_get_node(builder)
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_failing_training_script_gives_an_exit_code(si8_training_set, nanoos_resources, tmp_path):
    """Fault injection: a nanoos-train that dies like a crashed fit; the parser reports the reason (exit 320)."""
    script = tmp_path / "nanoos-train-crashes"
    script.write_text("#!/bin/bash\necho 'nanoos-train: training failed: MemoryError: injected' >&2\nexit 3\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    code = orm.InstalledCode(
        computer=nanoos_resources["pw"].computer,
        filepath_executable=str(script),
        label=f"crashing-train-{tmp_path.name}",
        default_calc_job_plugin="nanoos.potential.train",
    ).store()
    builder = PotentialTrainingCalculation.get_builder()
    builder.code = code
    builder.training_set = si8_training_set
    _, node = run_get_node(builder)
    assert node.exit_status == 320
    assert "MemoryError: injected" in node.exit_message


def test_potential_node_from_snap_and_its_lammps_lines(tmp_path):
    params = snap.SnapHyperparameters.for_elements(["Ga", "As"], twojmax=2, rcutfac=4.2)
    coefficients = np.arange(2 * 6, dtype=float).reshape(2, 6) * 1e-3
    fitted = snap.SnapPotential(params, coefficients, reference=snap.ReferencePotential.zbl(["Ga", "As"]))
    node = PotentialData.from_snap(fitted, name="gaas", version=3)
    assert node.descriptor_type == "SNAP" and node.version == 3
    assert node.reference_potential == fitted.reference.to_dict()
    lines = node.lammps_commands(["As", "Ga"])  # type order of a structure listing As first
    assert lines[0] == "pair_style hybrid/overlay zbl 4 4.8 snap"
    assert "pair_coeff 1 1 zbl 33 33" in lines and "pair_coeff 1 2 zbl 33 31" in lines
    assert lines[-1] == "pair_coeff * * snap potential.snapcoeff potential.snapparam As Ga"
    # the files round-trip: the node's SNAP is the fitted one
    np.testing.assert_allclose(node.to_snap().coefficients, coefficients)
    with pytest.raises(ValueError, match=r"covers \['Ga', 'As'\], not \['Si'\]"):
        node.lammps_commands(["Si"])
    copy = node.copy_with(validated=True)
    assert copy.validated and copy.files == node.files and copy.name == "gaas"
    model = tmp_path / "si.model"
    model.write_bytes(b"model")
    mace = PotentialData(files={"model": model}, descriptor_type="MACE", elements=["Si"], name="m")
    assert mace.lammps_commands(["Si"]) == ["pair_style mliap unified si.model 0", "pair_coeff * * Si"]
    ace = PotentialData(files={"model": model}, descriptor_type="ACE", elements=["Si"], name="a")
    assert ace.lammps_commands(["Si"]) == ["pair_style pace", "pair_coeff * * si.model Si"]
    with pytest.raises(ValueError, match="needs the file role"):
        PotentialData(files={"model": model}, descriptor_type="SNAP", elements=["Si"])


def test_potential_cli_list_show_export(si_snap, tmp_path):
    from aiida_nanoos.cli import cli
    from aiida_nanoos.potentials import lammps_engine

    runner = CliRunner()
    result = runner.invoke(cli, ["potential", "list"])
    assert result.exit_code == 0, result.output
    assert str(si_snap.pk) in result.output.split() and "SNAP" in result.output
    result = runner.invoke(cli, ["potential", "show", str(si_snap.pk)])
    assert result.exit_code == 0, result.output
    assert "pair_style snap" in result.output
    assert f"labelled by {len(si_snap.training_calculations())} DFT calculation(s)" in result.output
    result = runner.invoke(cli, ["potential", "export", str(si_snap.pk), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "out" / "potential.json").read_text())
    assert meta["uuid"] == si_snap.uuid and meta["descriptor_type"] == "SNAP"
    # the exported files and LAMMPS lines run in LAMMPS and give the node's own predictions
    lines = (tmp_path / "out" / "pair.lmp").read_text().splitlines()
    style = lines[0].split(None, 1)[1]
    coeff = [line.split(None, 1)[1].replace("potential.", str(tmp_path / "out" / "potential.")) for line in lines[1:]]
    atoms = bulk("Si", "diamond", a=5.40, cubic=True)
    atoms.rattle(0.05, seed=2)
    exported = lammps_engine.evaluate([atoms], style, coeff, ["Si"])[0]
    assert exported.energy == pytest.approx(si_snap.predict([atoms])[0].energy, abs=1e-8)
    result = runner.invoke(cli, ["potential", "show", "999999"])
    assert result.exit_code != 0
    # the same group is `verdi data nanoos.potential`
    from aiida.plugins.entry_point import load_entry_point

    from aiida_nanoos.cli.potential import potential

    assert load_entry_point("aiida.cmdline.data", "nanoos.potential") is potential


def test_snap_with_a_zbl_reference_runs_as_hybrid_overlay(si8_training_set, tmp_path):
    """The ML part is fitted to DFT minus ZBL; the stored potential adds ZBL back in LAMMPS, and that reproduces
    the fit (the training errors the script reports are those of pair_style hybrid/overlay zbl ... snap)."""
    from aiida_nanoos.potentials import training as potential_training

    frames = si8_training_set.get_frames()
    config = {"snap": {"twojmax": 4}, "reference": {"type": "zbl", "inner": 1.5, "outer": 2.2}, "name": "si-zbl"}
    description = potential_training.train(frames, config, tmp_path)
    node = PotentialData.from_training_output(tmp_path, description)
    assert node.lammps_commands(["Si"])[:2] == [
        "pair_style hybrid/overlay zbl 1.5 2.2 snap",
        "pair_coeff 1 1 zbl 14 14",
    ]
    forces = np.concatenate([p.forces.ravel() for p in node.predict(frames)])
    reference = np.concatenate([frame_labels(f)["forces"].ravel() for f in frames])
    rmse = float(np.sqrt(np.mean((forces - reference) ** 2)))
    assert rmse == pytest.approx(description["metrics"]["train"]["force_rmse"], rel=1e-6)
