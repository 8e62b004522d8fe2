"""The external proposer ("AGI agent") of a campaign, against a real HTTP server on localhost: the request it
receives, candidates validated against the space, the API key never stored, network failures, and resuming."""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiida import orm
from aiida.engine import run_get_node

from tests.campaign_fixtures import campaign_builder, iteration_results

POSCAR_WITH_LEAD = """forbidden lead
1.0
5.5 0 0
0 5.5 0
0 0 5.5
Si Pb
7 1
Direct
0 0 0
0 0.5 0.5
0.5 0 0.5
0.5 0.5 0
0.25 0.25 0.25
0.25 0.75 0.75
0.75 0.25 0.75
0.75 0.75 0.25
"""

CIF_SIC = """data_SiC
_cell_length_a 4.36
_cell_length_b 4.36
_cell_length_c 4.36
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Si1 Si 0 0 0
Si2 Si 0 0.5 0.5
Si3 Si 0.5 0 0.5
Si4 Si 0.5 0.5 0
C1 C 0.25 0.25 0.25
C2 C 0.25 0.75 0.75
C3 C 0.75 0.25 0.75
C4 C 0.75 0.75 0.25
"""


class Agent:
    """A scripted proposer: answers each POST with the next canned answer (or an HTTP status / a delay)."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests: list[dict] = []
        agent = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                agent.requests.append({"headers": dict(self.headers), "json": json.loads(body)})
                answer = agent.answers[min(len(agent.requests), len(agent.answers)) - 1]
                if isinstance(answer, int):
                    self.send_error(answer, "scripted failure")
                    return
                if isinstance(answer, float):
                    time.sleep(answer)
                    answer = {"candidates": []}
                if "message" in answer:  # a careless agent echoes the request's key in its message
                    answer = {**answer, "message": f"{answer['message']} (you sent {self.headers['Authorization']})"}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/propose"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


FIRST_ANSWER = {
    "message": "three ideas",
    "candidates": [
        {
            "parameters": {
                "si_sites": {"element": "C", "fraction": 0.5},
                "ge_sites": {"element": "Si", "fraction": 1.0},
                "strain": {"iso": 0.01},
            },
            "generation_method": "chemical_intuition",
            "rationale": "C opens the gap",
        },
        {"cif": CIF_SIC, "generation_method": "known_compound"},
        {"poscar": POSCAR_WITH_LEAD},  # Pb is not allowed: rejected
        {
            "parameters": {
                "si_sites": {"element": "C", "fraction": 0.5},
                "ge_sites": {"element": "Si", "fraction": 1.0},
                "strain": {"iso": 0.5},
            }
        },  # strain outside the range: rejected
    ],
}
SECOND_ANSWER = {
    "candidates": [
        {
            "parameters": {
                "si_sites": {"element": "Ge", "fraction": 0.25},
                "ge_sites": {"element": "C", "fraction": 0.75},
                "strain": {"iso": -0.02},
            }
        },
    ]
}


def external_config(url: str, **external) -> dict:
    return {
        "algorithm": "external",
        "batch_size": 3,
        "max_iterations": 2,
        "external": {"url": url, "api_key_env": "NANOOS_TEST_AGENT_KEY", "timeout": 5, **external},
    }


def everything_stored() -> str:
    """Every attribute, extra, log message and repository file of the profile, as one text."""
    chunks = []
    for (node,) in orm.QueryBuilder().append(orm.Node).iterall():
        chunks.append(json.dumps(node.base.attributes.all, default=str))
        chunks.append(json.dumps(node.base.extras.all, default=str))
        chunks.append(node.label + node.description)
        for name in node.base.repository.list_object_names():
            try:
                chunks.append(node.base.repository.get_object_content(name, mode="r"))
            except (IsADirectoryError, UnicodeDecodeError, TypeError):
                pass
    for (log,) in orm.QueryBuilder().append(orm.Log).iterall():
        chunks.append(log.message + json.dumps(log.metadata, default=str))
    return "\n".join(chunks)


def test_external_proposer_campaign_validates_candidates_and_never_stores_the_key(aiida_profile, monkeypatch):
    secret = "sk-test-" + secrets.token_hex(16)
    monkeypatch.setenv("NANOOS_TEST_AGENT_KEY", secret)
    with Agent([FIRST_ANSWER, SECOND_ANSWER]) as agent:
        results, node = run_get_node(
            campaign_builder(external_config(agent.url), constraints={"allowed_elements": ["C", "Si", "Ge"]})
        )
    assert node.is_finished_ok, node.exit_message
    # what the agent received: the key as a bearer header, objective, space and a growing history
    assert len(agent.requests) == 2
    assert all(r["headers"]["Authorization"] == f"Bearer {secret}" for r in agent.requests)
    first, second = (r["json"] for r in agent.requests)
    assert first["objective"]["objectives"][0]["name"] == "maximize_bandgap"
    assert [d["name"] for d in first["search_space"]["dimensions"]] == ["si_sites", "ge_sites", "strain"]
    assert first["history"] == [] and first["batch_size"] == 3
    assert [h["candidate_id"] for h in second["history"]] == ["i001c00", "i001c01"]
    assert second["history"][1]["formula"] == "C4Si4" and second["history"][1]["properties"]["bandgap"] > 1.0
    assert len(second["history"][0]["structure"]["symbols"]) == 8
    # two of the four proposals were valid; the Pb cell and the out-of-range strain were rejected, with reasons
    summary = iteration_results(node)["iteration_001"]["summary"]
    assert summary["candidates_evaluated"] == 2
    suggest = next(n for n in node.called if n.process_label == "suggest_candidates")
    rejected = suggest.outputs.proposals["report"]["rejected"]
    assert [r["index"] for r in rejected] == [2, 3]
    assert "Pb" in rejected[0]["reason"] and "strain" in rejected[1]["reason"]
    candidates = {entry["id"]: orm.load_node(entry["uuid"]) for entry in summary["candidates"]}
    first_candidate = candidates["i001c00"].base.attributes.get("candidate")
    assert first_candidate["generation_method"] == "external:chemical_intuition"
    assert first_candidate["parameters"]["strain"]["iso"] == pytest.approx(0.01)
    assert candidates["i001c01"].get_formula() == "C4Si4"
    assert candidates["i001c01"].base.attributes.get("candidate")["parameters"] is None  # a CIF: no parameters
    assert results["statistics"]["total_candidates_evaluated"] == 3
    # the key is nowhere in the profile, not even echoed back by the agent; the *name* of its variable is
    assert suggest.outputs.proposals["report"]["message"] == "three ideas (you sent Bearer [redacted])"
    stored = everything_stored()
    assert "NANOOS_TEST_AGENT_KEY" in stored
    assert secret not in stored


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_proposer_gives_exit_code_402(aiida_profile, monkeypatch):
    monkeypatch.setenv("NANOOS_TEST_AGENT_KEY", "sk-unused")
    results, node = run_get_node(campaign_builder(external_config(f"http://127.0.0.1:{_closed_port()}/x")))
    assert node.exit_status == 402
    assert "unreachable" in node.exit_message
    assert results["statistics"]["iterations"] == 0  # state and statistics are still returned
    assert results["state"]["iteration"] == 0


def test_proposer_failure_mid_campaign_keeps_the_state_and_the_campaign_resumes(aiida_profile, monkeypatch):
    monkeypatch.setenv("NANOOS_TEST_AGENT_KEY", "sk-" + secrets.token_hex(8))
    with Agent([FIRST_ANSWER, 500]) as agent:
        results, node = run_get_node(campaign_builder(external_config(agent.url)))
    assert node.exit_status == 402 and "HTTP 500" in node.exit_message
    state = results["state"]
    # iteration 1 is kept: without an element constraint the Pb cell was valid in the space, and its evaluation
    # failed (the analytic model knows no Pb): recorded as failed, the campaign went on
    assert state["iteration"] == 1
    assert [r["status"] for r in state["candidates"]] == ["ok", "ok", "failed"]
    assert "Pb" in state["candidates"][2]["error"]

    with Agent([SECOND_ANSWER]) as agent:
        builder = campaign_builder(external_config(agent.url))
        builder.restart_from = state
        results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    assert agent.requests[0]["json"]["iteration"] == 1
    assert [h["candidate_id"] for h in agent.requests[0]["json"]["history"]] == ["i001c00", "i001c01", "i001c02"]
    assert list(iteration_results(node)) == ["iteration_002"]
    assert results["statistics"]["total_candidates_evaluated"] == 4
    assert results["statistics"]["failed_evaluations"] == 1

    with Agent([3.0]) as agent:  # a slow agent: the timeout is a clean failure too
        results, node = run_get_node(campaign_builder(external_config(agent.url, timeout=0.5)))
    assert node.exit_status == 402 and "did not answer within 0.5 s" in node.exit_message


def test_missing_key_variable_is_a_clear_failure(aiida_profile, monkeypatch):
    monkeypatch.delenv("NANOOS_TEST_AGENT_KEY", raising=False)
    with Agent([FIRST_ANSWER]) as agent:
        _, node = run_get_node(campaign_builder(external_config(agent.url)))
    assert node.exit_status == 402
    assert "NANOOS_TEST_AGENT_KEY" in node.exit_message and "not set" in node.exit_message
    assert agent.requests == []


def test_an_answer_without_any_valid_candidate_gives_exit_code_403(aiida_profile, monkeypatch):
    monkeypatch.setenv("NANOOS_TEST_AGENT_KEY", "sk-unused")
    with Agent([{"candidates": [{"poscar": POSCAR_WITH_LEAD}, {"parameters": {"strain": {"iso": 0.0}}}]}]) as agent:
        results, node = run_get_node(
            campaign_builder(external_config(agent.url), constraints={"forbidden_elements": ["Pb"]})
        )
    assert node.exit_status == 403
    assert results["statistics"]["convergence_reason"] == "no_valid_candidates"
    suggest = next(n for n in node.called if n.process_label == "suggest_candidates")
    reasons = [r["reason"] for r in suggest.outputs.proposals["report"]["rejected"]]
    assert "forbidden elements ['Pb']" in reasons[0] and "missing dimensions" in reasons[1]
