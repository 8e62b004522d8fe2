"""``nanoos.potential.pipeline``: real DFT -> SNAP -> validation -> MD on Si end to end (tiny settings)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_nanoos.workflows.pipeline import PotentialPipelineWorkChain
from tests.conftest import FAST_DFT_OVERRIDES

ROOT = Path(__file__).resolve().parent.parent

#: Tiny settings: six Si2 cells at the cheap DFT settings of the test suite, a 2J=4 SNAP, 100 MD steps on 54 atoms.
TINY = {
    "label": {
        "sampling": {"count": 6, "strain_max": 0.03, "rattle_std": 0.08, "seed": 11},
        "overrides": FAST_DFT_OVERRIDES,
    },
    "validation_fraction": 0.34,
    "train": {"config": {"name": "si-pipeline-test", "snap": {"twojmax": 4}}},
    "validation_criteria": {"energy_rmse": 0.05, "force_rmse": 1.0},
    "md": {"steps": 100, "atoms": 54, "temperature": 300.0, "thermo_every": 10, "dump_every": 50},
}


def test_pipeline_end_to_end_on_silicon(nanoos_resources):
    structure = orm.StructureData(ase=bulk("Si", "diamond", a=5.43))
    builder = PotentialPipelineWorkChain.get_builder_from_protocol(
        nanoos_resources["pw"], nanoos_resources["lmp"], structure, protocol="fast", overrides=TINY
    )
    assert builder.md_supercell.get_list() == [3, 3, 3]
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert results["training_set"].num_frames == 6
    assert results["train_set"].num_frames == 4 and results["validation_set"].num_frames == 2
    potential = results["potential"]
    assert potential.validated and potential.name == "si-pipeline-test"
    held_out = results["validation_metrics"]["errors"]
    assert 0 < held_out["energy_rmse"] < 0.05 and 0 < held_out["force_rmse"] < 1.0
    # the DFT runs behind the potential are found in the graph: one per labelled frame
    assert len(potential.training_calculations()) == 4
    # the fit and the MD ran inside their restart work chains (one attempt each here)
    children = {n.process_label: n for n in node.called}
    assert [c.process_label for c in children["PotentialTrainingBaseWorkChain"].called] == [
        "PotentialTrainingCalculation"
    ]
    assert [c.process_label for c in children["MdBaseWorkChain"].called] == ["MdCalculation"]
    assert potential.training_sets()[0].uuid == results["train_set"].uuid
    md = results["md"]
    assert len(md["structure"].sites) == 54 and md["results"]["final_step"] == 100
    assert 100 < md["results"]["final_temp"] < 800
    cost = results["cost"].get_dict()
    assert cost["dft_runs"] == 6 and cost["md_atoms"] == 54 and cost["md_steps"] == 100
    assert cost["dft_mean_atoms"] == 2
    # pw.x on 2 atoms takes ~0.1-5 s per atom; SNAP ~1e-4 s per atom-step: orders of magnitude apart
    assert cost["dft_seconds_per_atom_step"] > 0.01
    assert 1e-7 < cost["potential_seconds_per_atom_step"] < 1e-2
    assert cost["speedup"] > 100
    assert cost["speedup"] == pytest.approx(cost["dft_seconds_per_atom_step"] / cost["potential_seconds_per_atom_step"])


def test_protocols_and_input_checks(nanoos_resources):
    assert set(PotentialPipelineWorkChain.get_available_protocols()) == {"fast", "balanced", "precise"}
    cubic = orm.StructureData(ase=bulk("Si", "diamond", a=5.43, cubic=True))
    sizes = {}
    for protocol in ("fast", "balanced", "precise"):
        builder = PotentialPipelineWorkChain.get_builder_from_protocol(
            nanoos_resources["pw"], nanoos_resources["lmp"], cubic, protocol=protocol
        )
        sizes[protocol] = (builder.label.sampling["count"], builder.train.config["snap"]["twojmax"])
        assert builder.md.parameters["md"]["integration"]["style"] == "nvt"
    assert builder.md_supercell.get_list() == [8, 8, 8]  # precise: at least 4000 atoms from the 8-atom cell
    assert sizes == {"fast": (8, 4), "balanced": (24, 6), "precise": (60, 8)}
    assert builder.validation_criteria.get_dict() == {"energy_rmse": 0.005, "force_rmse": 0.2}

    builder = PotentialPipelineWorkChain.get_builder_from_protocol(
        nanoos_resources["pw"], nanoos_resources["lmp"], cubic, protocol="fast"
    )
    builder.pop("md_supercell")
    builder.md_structure = orm.StructureData(ase=bulk("SiC", "zincblende", a=4.36))
    with pytest.raises(ValueError, match=r"md_structure contains \['C'\], absent from the labelled configurations"):
        run_get_node(builder)
    with pytest.raises(ValueError, match=r"config\.snap\.rcutfac must be > 0"):
        builder.train.config = orm.Dict({"snap": {"twojmax": 4, "rcutfac": -1.0}})


def test_pipeline_config_file_builds_the_demo(nanoos_resources):
    from aiida_nanoos.cli.pipeline import builder_from_config
    from aiida_nanoos.cli.utils import read_config

    config = read_config(ROOT / "examples" / "pipeline_si.yaml")
    builder = builder_from_config(config, ROOT / "examples")
    assert builder.md_supercell.get_list() == [5, 5, 5]  # 1000 atoms from the 8-atom cell
    assert builder.label.sampling["count"] == 10
    assert builder.train.config["snap"]["twojmax"] == 6
    config["overrides"]["md"]["ensemble"] = "nph"
    import click

    with pytest.raises(click.BadParameter, match="ensemble must be one of"):
        builder_from_config(config, ROOT / "examples")
    with pytest.raises(click.BadParameter, match=r"unknown key\(s\) \['temperature'\]"):
        builder_from_config({"structure": {"bulk": "Si"}, "temperature": 3}, ROOT)
