"""Small real-DFT campaigns: PBE band gaps of 2-atom group-IV cells with pw.x, and formation energies with the
elemental references computed once for the whole campaign."""

from __future__ import annotations

import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk

from aiida_nanoos.design.spaces import atoms_to_dict
from aiida_nanoos.workflows.campaign import CampaignWorkChain, evaluator_builder

#: Tiny pw.x settings: low cutoffs and a coarse mesh (about a second per SCF of a 2-atom cell).
CHEAP = {"scf": {"kpoints_distance": 0.6, "pw": {"parameters": {"SYSTEM": {"ecutwfc": 20.0, "ecutrho": 160.0}}}}}


def two_atom_space(dopants=("Ge", "C")) -> dict:
    return {
        "base_structure": atoms_to_dict(bulk("Si", "diamond", a=5.43)),
        "dimensions": [
            {"type": "substitution", "name": "dopant", "host": "Si", "dopants": list(dopants), "fraction": [0, 1]},
            {"type": "strain", "name": "strain", "ranges": {"iso": [-0.02, 0.02]}, "isotropic": True},
        ],
    }


def dft_campaign(nanoos_resources, evaluator, space, objective, config):
    inputs = evaluator_builder(evaluator, space, code=nanoos_resources["pw"], protocol="fast", overrides=CHEAP)
    return CampaignWorkChain.get_builder_from_evaluator(space, objective, evaluator, inputs, config=config)


def test_band_gap_campaign_with_pw(nanoos_resources):
    space = two_atom_space()
    builder = dft_campaign(
        nanoos_resources,
        "band_gap",
        space,
        "maximize_bandgap",
        {"algorithm": "bayesian_optimization", "batch_size": 2, "max_iterations": 2, "seed": 5},
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    records = results["state"]["candidates"]
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    scf_runs = [n for n in node.called_descendants if n.process_label == "PwBaseWorkChain"]
    assert len(scf_runs) == 4 and all(n.is_finished_ok for n in scf_runs)
    # one set of cutoffs for every candidate (the family's for Si, Ge and C, overridden here to 20 Ry)
    assert {n.inputs.pw.parameters["SYSTEM"]["ecutwfc"] for n in scf_runs} == {20.0}
    for record in records:
        structure = orm.load_node(record["uuid"])
        scf = next(n for n in scf_runs if n.inputs.pw.structure.uuid == structure.uuid)
        gap_node = next(
            link.node
            for link in scf.outputs.output_band.base.links.get_outgoing().all()
            if link.node.process_label == "band_gap_properties"
        ).outputs.result
        # the recorded value is the gap pw.x's eigenvalues gave for exactly this structure
        assert record["properties"]["bandgap"] == gap_node["bandgap"] == record["value"]
        assert 0.0 <= record["value"] < 3.0
        symbols = structure.get_ase().get_chemical_symbols()
        if set(symbols) == {"Si"}:
            assert 0.3 < record["value"] < 1.5  # PBE Si on a coarse mesh
    assert results["best_candidates"]["candidates"][0]["objectives"][0] == max(r["value"] for r in records)
    fit = next(n for n in node.called if n.process_label == "fit_gp")
    assert fit.outputs.result["models"][0]["n_observed"] == 2


def test_formation_energy_campaign_computes_the_references_once(nanoos_resources):
    space = two_atom_space(dopants=("Ge",))
    builder = dft_campaign(
        nanoos_resources,
        "formation_energy",
        space,
        "minimize_formation_energy",
        {"algorithm": "random", "batch_size": 2, "max_iterations": 1, "seed": 2},
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    references = [n for n in node.called if n.process_label == "ElementalReferencesWorkChain"]
    assert len(references) == 1
    energies = results["reference_energies"]
    assert set(energies.get_dict()) == {"Ge", "Si"}
    evaluations = [n for n in node.called if n.process_label == "FormationEnergyWorkChain"]
    assert len(evaluations) == 2
    for evaluation in evaluations:
        assert evaluation.inputs.reference_energies.uuid == energies.uuid  # the campaign's, not its own
        assert not [n for n in evaluation.called if n.process_label == "ElementalReferencesWorkChain"]
    by_ge_fraction = {}
    for record in results["state"]["candidates"]:
        symbols = orm.load_node(record["uuid"]).get_ase().get_chemical_symbols()
        fe = record["properties"]["formation_energy"]
        assert record["value"] == fe
        by_ge_fraction[symbols.count("Ge") / 2] = fe
        if "Ge" not in symbols:
            assert fe == pytest.approx(0.0, abs=0.03)  # silicon near its own lattice constant vs its reference
        else:
            assert 0.0 < fe < 0.6  # Ge squeezed onto the Si lattice (a 7 % smaller cell) costs elastic energy
    fractions = sorted(by_ge_fraction)
    assert [by_ge_fraction[x] for x in fractions] == sorted(by_ge_fraction.values())  # more Ge, more strain
