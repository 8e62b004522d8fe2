"""``nanoos.potential.on_the_fly``: two real iterations on Si (pw.x, SNAP committees, LAMMPS), MD blow-up retry
by the handler of ``nanoos.md.base``."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_nanoos.functions.potential import committee_disagreement
from aiida_nanoos.workflows.on_the_fly import OnTheFlyTrainingWorkChain
from tests.conftest import FAST_DFT_OVERRIDES

pytest_plugins = ["tests.potential_fixtures"]


def al_builder(nanoos_resources, training_set, **overrides):
    settings = {
        "label": {"protocol": "fast", "overrides": FAST_DFT_OVERRIDES},
        "train": {"config": {"snap": {"twojmax": 4}, "committee": {"size": 3, "method": "bootstrap", "seed": 2}}},
        "exploration": {
            "temperatures": [900.0],
            "steps": 100,
            "dump_every": 20,
            "thermo_every": 5,
            "timestep_fs": 1.0,
            "seed": 5,
        },
    }
    settings.update(overrides)
    return OnTheFlyTrainingWorkChain.get_builder_from_protocol(
        nanoos_resources["pw"],
        nanoos_resources["lmp"],
        orm.StructureData(ase=bulk("Si", "diamond", a=5.43, cubic=True)),
        training_set,
        protocol="fast",
        overrides=settings,
    )


def test_two_iterations_label_the_most_uncertain_frames_and_survive_md_blowups(si8_training_set, nanoos_resources):
    """Every exploration starts with an absurd 50 fs timestep (fault injection by input): the run blows up, is
    retried with a new seed and a 2 fs timestep, and the loop goes on; two iterations label one frame each."""
    builder = al_builder(
        nanoos_resources,
        si8_training_set,
        exploration={
            "temperatures": [900.0],
            "steps": 100,
            "dump_every": 20,
            "thermo_every": 5,
            "timestep_fs": 50.0,
            "seed": 5,
        },
        threshold=0.001,  # eV/Å: every frame is "uncertain", so each iteration labels its budget
        max_frames_per_iteration=1,
        max_dft_frames=2,
        max_iterations=3,
        max_md_retries=1,
        md_timestep_reduction=0.04,
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    summary = results["summary"].get_dict()
    iterations = summary["iterations"]
    assert [it["iteration"] for it in iterations] == [1, 2]
    assert summary["stop_reason"].startswith("DFT budget spent (2 frames)") and not summary["converged"]
    for it in iterations:
        attempts = [(md["attempt"], md["timestep_fs"], md["exit_status"] in (350, 351)) for md in it["md"]]
        assert attempts == [(0, 50.0, True), (1, 2.0, False)]  # blew up, then ran with the smaller timestep
        assert it["md"][1]["exit_status"] == 0 and it["md"][1]["seed"] == it["md"][0]["seed"] + 7919
        assert it["n_frames_scored"] == 6 and it["n_selected"] == 1 and it["n_labelled"] == 1
        assert it["max_disagreement"] > it["mean_disagreement"] > 0
    assert [it["training_frames"] for it in iterations] == [6, 7]
    # fits and MD ran inside their restart work chains, never as bare CalcJobs of the loop
    called = sorted(n.process_label for n in node.called if n.process_label.endswith(("Calculation", "WorkChain")))
    assert called.count("MdBaseWorkChain") == 2 and called.count("PotentialTrainingBaseWorkChain") == 3
    assert not {"MdCalculation", "PotentialTrainingCalculation"} & set(called)
    final_set = results["training_set"]
    assert final_set.num_frames == 8
    groups = final_set.statistics["groups"]
    assert groups == {"dft": 6, "on_the_fly_01": 1, "on_the_fly_02": 1}
    # the final potential was refitted on everything labelled (train_final), and knows its 8 DFT calculations
    potential = results["potential"]
    assert potential.training_sets() == [final_set]
    assert len(potential.training_calculations()) == 8
    assert sorted(results["committee"]) == ["member_00", "member_01", "member_02"]

    # the selection calcfunction picked the most uncertain frame, scored by the committee it was given ...
    first = orm.load_node(iterations[0]["selection_pk"]).creator
    selected = [first.outputs[key].get_ase() for key in sorted(first.outputs) if key.startswith("frame_")]
    chosen = [entry["disagreement"] for entry in first.outputs.summary["selected"]]
    scores = first.outputs.disagreement
    all_values = np.concatenate([scores.get_array(name) for name in scores.get_arraynames()])
    assert chosen == pytest.approx(sorted(all_values, reverse=True)[:1], rel=1e-12)
    members = [first.inputs[key] for key in sorted(first.inputs) if key.startswith("member_")]
    assert len(members) == 3 and all(m.version == 1 for m in members)
    np.testing.assert_allclose(committee_disagreement(members, selected), chosen, rtol=1e-9)
    # ... and exactly that MD frame was labelled with DFT and added to the training set
    labelled = [f for f in final_set.get_frames() if f.info["config_type"] == "on_the_fly_01"]
    assert len(labelled) == 1
    np.testing.assert_allclose(labelled[0].positions, selected[0].positions, atol=1e-6)
    assert np.abs(labelled[0].calc.results["forces"]).max() > 0.05  # a hot MD frame feels real DFT forces


def test_loop_stops_when_the_committee_agrees(si8_training_set, nanoos_resources):
    builder = al_builder(nanoos_resources, si8_training_set, threshold=50.0, max_iterations=3)
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    summary = results["summary"].get_dict()
    assert summary["converged"] and summary["dft_frames_labelled"] == 0
    assert len(summary["iterations"]) == 1 and summary["iterations"][0]["n_selected"] == 0
    assert 0 < summary["iterations"][0]["max_disagreement"] < 50.0
    assert results["training_set"].uuid == si8_training_set.uuid  # nothing labelled, nothing merged


def test_on_the_fly_inputs_are_checked(si8_training_set, nanoos_resources):
    builder = al_builder(nanoos_resources, si8_training_set, threshold=0.1)
    builder.train.config = orm.Dict({"snap": {"twojmax": 4}})
    with pytest.raises(ValueError, match="train.config.committee is required"):
        run_get_node(builder)
    builder = al_builder(nanoos_resources, si8_training_set, threshold=0.1)
    with pytest.raises(ValueError, match=r"exploration\.temperatures must be a non-empty list of positive"):
        builder.exploration = orm.Dict({"temperatures": [-5.0], "steps": 10})
    builder = al_builder(nanoos_resources, si8_training_set, threshold=0.1)
    builder.structure = orm.StructureData(ase=bulk("SiC", "zincblende", a=4.36))
    with pytest.raises(ValueError, match=r"structure contains \['C'\], absent from the training set"):
        run_get_node(builder)
