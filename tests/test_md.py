"""``nanoos.md``: LAMMPS MD with a fitted SNAP through AiiDA (and its daemon), refusals and blow-up detection."""

from __future__ import annotations

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_nanoos.calculations.md import MdCalculation, md_parameters
from aiida_nanoos.potentials.md_stability import detect_instability, energy_drift

pytest_plugins = ["tests.potential_fixtures"]


def md_builder(potential, structure, parameters: dict, settings: dict | None = None):
    builder = MdCalculation.get_builder()
    builder.code = orm.load_code("lmp@localhost")
    builder.potential = potential
    builder.structure = structure
    builder.parameters = orm.Dict(parameters)
    if settings:
        builder.settings = orm.Dict(settings)
    return builder


def si64() -> orm.StructureData:
    return orm.StructureData(ase=bulk("Si", "diamond", a=5.43, cubic=True).repeat((2, 2, 2)))


def test_snap_nvt_md_through_the_daemon(si_snap, submit_and_await):
    builder = md_builder(si_snap, si64(), md_parameters("nvt", temperature=500, steps=200, dump_every=50, seed=4))
    node = submit_and_await(builder, timeout=300)
    assert node.is_finished_ok, node.exit_message
    # LAMMPS read the potential node's own files (its 2J=4 .snapparam) and ran pair style snap
    screen = node.outputs.retrieved.base.repository.get_object_content("lammps.out")
    assert "SNAP keyword twojmax 4" in screen and "(1) pair snap, perpetual" in screen
    results = node.outputs.results.get_dict()
    assert results["final_step"] == 200
    # a stable crystal: the thermostat keeps it near 500 K (64 atoms fluctuate), potential energy stays bound
    assert 200 < results["final_temp"] < 900
    thermo = node.outputs.time_dependent_computes
    assert len(thermo.get_array("Step")) == 21
    assert np.all(np.isfinite(thermo.get_array("PotEng")))
    assert node.outputs.trajectories.number_steps == 5  # steps 0, 50, ..., 200
    final = node.outputs.structure
    assert len(final.sites) == 64 and final.get_symbols_set() == {"Si"}
    # atoms vibrate around the lattice: none drifted more than 1 Å from the start (minimum image)
    start = si64().get_ase()
    moved = final.get_ase().positions - start.positions
    fractional = np.linalg.solve(start.cell.array.T, moved.T).T
    displacement = (fractional - np.round(fractional)) @ start.cell.array
    assert np.linalg.norm(displacement, axis=1).max() < 1.0


def test_input_script_and_npt_nve_runs(si_snap):
    compressed = orm.StructureData(ase=bulk("Si", "diamond", a=5.30, cubic=True).repeat((2, 2, 2)))
    parameters = md_parameters("npt", temperature=300, pressure_gpa=0.0, steps=300, timestep_fs=1.0, pdamp_fs=100)
    results, node = run_get_node(md_builder(si_snap, compressed, parameters))
    assert node.is_finished_ok, node.exit_message
    script = node.base.repository.get_object_content("input.in")
    assert "pair_style snap\npair_coeff * * potential.snapcoeff potential.snapparam Si" in script
    assert "fix npt_all_aiida all npt temp 300 300 0.1  iso 0.0 0.0 0.1" in script
    volumes = node.outputs.time_dependent_computes.get_array("Volume")
    assert volumes[-1] > volumes[0] * 1.02  # a cell squeezed to a=5.30 Å expands at zero pressure

    nve = md_parameters("nve", temperature=300, steps=200, timestep_fs=1.0, thermo_every=5)
    results, node = run_get_node(md_builder(si_snap, si64(), nve))
    assert node.is_finished_ok, node.exit_message
    thermo = node.outputs.time_dependent_computes
    total = thermo.get_array("TotEng")
    # energy is conserved to well below the kinetic energy scale in NVE
    assert np.ptp(total) < 0.1 * np.ptp(thermo.get_array("KinEng"))
    assert abs(energy_drift(thermo.get_array("Step") / 1000.0, total, 64)) < 5.0  # meV/atom/ps over 0.2 ps


def test_structure_with_an_element_the_potential_lacks_is_refused(si_snap):
    silicon_carbide = orm.StructureData(ase=bulk("SiC", "zincblende", a=4.36))
    before = orm.QueryBuilder().append(orm.ProcessNode).count()
    with pytest.raises(ValueError, match=r"structure: potential `si-test` v1 covers \['Si'\], not \['C'\]"):
        run_get_node(md_builder(si_snap, silicon_carbide, md_parameters("nvt", steps=10)))
    assert orm.QueryBuilder().append(orm.ProcessNode).count() == before


def test_md_that_blows_up_gets_its_own_exit_code(si_snap):
    """Fault injection by input: a 50 fs timestep throws atoms across the box within a few steps."""
    absurd = md_parameters("nvt", temperature=1000, steps=200, timestep_fs=50.0, thermo_every=5)
    _, node = run_get_node(md_builder(si_snap, si64(), absurd))
    codes = MdCalculation.exit_codes
    if "Lost atoms" in node.exit_message:  # LAMMPS stopped: its own exit code, for the neighbour-list handler
        assert node.exit_status == codes.ERROR_MD_LOST_ATOMS.status == 351
        assert "lost atoms" in node.exit_message
    else:
        assert node.exit_status == codes.ERROR_MD_UNSTABLE.status == 350
        assert "blew up" in node.exit_message
        assert any(word in node.exit_message for word in ("temperature", "non-finite"))


def test_md_parameters_and_instability_detection_units():
    npt = md_parameters("npt", temperature=800, pressure_gpa=1.5, steps=10, timestep_fs=2.0)
    assert npt["md"]["integration"] == {
        "style": "npt",
        "constraints": {"temp": [800, 800, 0.2], "iso": [15000.0, 15000.0, 2.0]},
    }
    assert npt["control"]["timestep"] == 0.002
    with pytest.raises(ValueError, match="ensemble must be one of"):
        md_parameters("nvk")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        md_parameters("nve", steps=0)
    log = "   Step    Temp    PotEng\n   0   300   -10\n   10  nan   -nan\nLoop time of 1 on 1 procs\n"
    assert detect_instability(log) == "non-finite Temp (nan) at step 10"
    hot = "Step Temp PotEng\n 0 300 -10\n 10 25000 -1\n"
    assert detect_instability(hot, max_temperature=1e4).startswith("temperature 2.5e+04 K above")
    assert detect_instability("Step Temp\n 0 300\n 10 310\nLoop time\n") is None
    lost = "ERROR: Lost atoms: original 64 current 60"
    assert detect_instability(f"Step Temp\n 0 300\n{lost}\n") == lost


def test_md_throughput_benchmark_runs_both_ways_and_leaves_no_dry_run_folder(si_snap, tmp_path, monkeypatch):
    """The benchmark's two paths run the same input: the same step count and atoms, both LAMMPS loops timed."""
    import json

    from click.testing import CliRunner

    from aiida_nanoos.benchmarks.md_throughput import command

    monkeypatch.chdir(tmp_path)  # aiida's dry run writes into the working directory
    arguments = ["--potential", str(si_snap.pk), "--atoms", "64", "--seconds", "1", "--repeats", "1", "--json"]
    result = CliRunner().invoke(command, arguments)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert figures["atoms"] == 64 and figures["steps"] >= 100
    assert len(figures["aiida_lammps_loop_s"]) == len(figures["bare_lammps_loop_s"]) == 1
    assert all(loop > 0 for loop in figures["aiida_lammps_loop_s"] + figures["bare_lammps_loop_s"])
    assert 0 < figures["throughput_ratio"] < 2 and 0 < figures["engine_only_ratio"] < 1
    assert not (tmp_path / "submit_test").exists()
