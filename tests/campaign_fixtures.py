"""Shared pieces of the campaign tests: the group-IV search space, builders, and a daemon-capable test profile."""

from __future__ import annotations

import time

import pytest
from ase.build import bulk

from aiida_nanoos.design.spaces import atoms_to_dict


def sige_cell(a: float = 5.54):
    """8-atom cubic diamond cell, 4 Si + 4 Ge (a zincblende-like ordering)."""
    atoms = bulk("Si", "diamond", a=a, cubic=True)
    symbols = atoms.get_chemical_symbols()
    symbols[4:] = ["Ge"] * 4
    atoms.set_chemical_symbols(symbols)
    return atoms


def group_iv_space(strain=(-0.04, 0.04), ge_dopants=("Si", "C")) -> dict:
    """C/Si/Ge substitutions on both sublattices of the SiGe cell plus isotropic strain."""
    return {
        "base_structure": atoms_to_dict(sige_cell()),
        "dimensions": [
            {"type": "substitution", "name": "si_sites", "host": "Si", "dopants": ["C", "Ge"], "fraction": [0, 1]},
            {"type": "substitution", "name": "ge_sites", "host": "Ge", "dopants": list(ge_dopants), "fraction": [0, 1]},
            {"type": "strain", "name": "strain", "ranges": {"iso": list(strain)}, "isotropic": True},
        ],
    }


def campaign_builder(config: dict, objective="maximize_bandgap", space=None, evaluator="analytic", **kwargs):
    from aiida_nanoos.workflows.campaign import CampaignWorkChain

    return CampaignWorkChain.get_builder_from_evaluator(
        space or group_iv_space(), objective, evaluator, config=config, **kwargs
    )


def iteration_results(node) -> dict[str, dict]:
    """``iteration_<k>`` -> {summary, state}: the outputs of each finished ``record_iteration`` of a campaign, found
    through its links (the campaign itself exposes only the final state)."""
    from aiida_nanoos.query import iteration_outputs

    summaries, states = iteration_outputs(node, "summary"), iteration_outputs(node, "state")
    return {
        f"iteration_{summary['iteration']:03d}": {"summary": summary, "state": state}
        for summary, state in zip(summaries, states, strict=True)
    }


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def daemon_profile(aiida_profile):
    """The test profile (tests/conftest.py gives it the ZeroMQ broker and puts ``verdi`` on PATH)."""
    assert aiida_profile.process_control_backend == "core.zeromq"
    return aiida_profile


@pytest.fixture
def daemon(daemon_profile):
    """A started daemon on the test profile (one worker), stopped again after the test; yields its client."""
    from aiida.engine.daemon.client import get_daemon_client

    client = get_daemon_client(daemon_profile.name)
    if not client.is_daemon_running:
        client.start_daemon(number_workers=1, timeout=120)
    wait_for(lambda: client.is_daemon_running, 60, "the daemon to start")
    try:
        yield client
    finally:
        if client.is_daemon_running:
            client.stop_daemon(wait=True, timeout=120)


def replay_campaign(config: dict, objective="maximize_bandgap", space=None) -> list[dict]:
    """The decisions of a campaign with the analytic evaluator, made by the pure core alone, with the state written
    to JSON and read back between every step exactly as the work chain does: the reference for a campaign that
    was interrupted (same seed, same decisions)."""
    from aiida_nanoos.design import campaign as cp
    from aiida_nanoos.design.analytic_model import alloy_properties
    from aiida_nanoos.design.proposers import registry as proposers

    space_obj, objective_obj, config_obj = cp.validate_campaign(space or group_iv_space(), objective, config)
    state = cp.load_state(cp.dump_state(cp.new_state(config_obj)))
    while state.converged is None:
        hyper = None
        if config_obj.algorithm == "bayesian_optimization" and proposers.n_trainable(state) >= 2:
            hyper = proposers.fit_models(space_obj, objective_obj, config_obj, state)
        proposal = proposers.propose(space_obj, objective_obj, config_obj, state, hyper)
        state = cp.load_state(cp.dump_state(state))
        if not proposal["candidates"]:
            break
        properties, failures = {}, {}
        for record, atoms in proposal["candidates"]:
            try:
                properties[record.id] = alloy_properties(atoms.get_chemical_symbols(), atoms.get_volume())
            except ValueError as error:  # an element the model does not know: the evaluator fails
                failures[record.id] = str(error)
        cp.record_results(state, space_obj, objective_obj, config_obj, properties, failures)
        state = cp.load_state(cp.dump_state(state))
    return [r.to_dict() for r in state.candidates]
