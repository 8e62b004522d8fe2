"""MACE (optional ``[mace]`` extra): trained by the same ``nanoos.potential.train`` CalcJob, run with ASE MD."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_nanoos.potentials.mace import mace_available

pytest_plugins = ["tests.potential_fixtures"]

pytestmark = pytest.mark.skipif(
    not mace_available(), reason="mace-torch is not installed (pip install 'aiida-nanoos[mace]' with torch pinned)"
)


def test_mace_training_prediction_and_ase_md(si8_training_set, nanoos_resources):
    from aiida_nanoos.calculations.md import MdCalculation, md_parameters
    from aiida_nanoos.calculations.potential_training import PotentialTrainingCalculation
    from aiida_nanoos.functions.potential import run_ase_md, validate_potential
    from aiida_nanoos.functions.training_set import split_training_set

    split = split_training_set(si8_training_set, orm.Float(0.25), orm.Int(5))
    builder = PotentialTrainingCalculation.get_builder()
    builder.code = orm.load_code("nanoos-train@localhost")
    builder.training_set = split["train"]
    builder.config = orm.Dict(
        {
            "descriptor_type": "MACE",
            "name": "si-mace-test",
            "mace": {"num_channels": 8, "max_L": 0, "r_max": 4.0, "max_num_epochs": 3, "batch_size": 2, "seed": 1},
        }
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    potential = results["potential"]
    assert potential.descriptor_type == "MACE" and list(potential.files) == ["model"]
    train = potential.metrics["train"]
    assert np.isfinite(train["energy_rmse"]) and np.isfinite(train["force_rmse"]) and train["force_count"] == 4 * 24

    validation = validate_potential(potential, split["validation"])
    errors = validation["metrics"]["errors"]
    # three epochs make a crude model, but a real one: finite errors of physical size on held-out Si frames
    assert 0 < errors["force_rmse"] < 5.0 and 0 < errors["energy_rmse"] < 5.0
    assert validation["parity"].get_array("force_predicted").shape == (2 * 24,)

    structure = orm.StructureData(ase=bulk("Si", "diamond", a=5.43, cubic=True))
    md = run_ase_md(
        potential,
        structure,
        orm.Dict(
            {
                "ensemble": "nvt",
                "temperature": 300.0,
                "timestep_fs": 1.0,
                "steps": 10,
                "sample_every": 5,
                "max_temperature": 1.0e5,
            }
        ),
    )
    assert md["results"]["steps"] == 10 and md["thermo"].get_array("temperature").shape == (2,)
    assert md["trajectory"].numsteps == 2 and len(md["structure"].sites) == 8

    # LAMMPS cannot run MACE here (no ML-IAP Python package): refused before submission, saying why
    builder = MdCalculation.get_builder()
    builder.code = orm.load_code("lmp@localhost")
    builder.potential = potential
    builder.structure = structure
    builder.parameters = orm.Dict(md_parameters("nvt", steps=10))
    with pytest.raises(ValueError, match="MACE potential cannot run in this LAMMPS build"):
        run_get_node(builder)
