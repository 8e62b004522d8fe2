"""Security of a campaign: the external proposer's API key is stored nowhere and appears in no error message, and a
user formula cannot stop a campaign (a candidate on which it divides by zero is recorded as failed, with the reason).

The key lives only in the environment variable named by ``config.external.api_key_env``; after a campaign every node
of the profile (attributes, extras, label, description, every repository file at any depth), every process report
(``orm.Log``), every comment and group, and the daemon's log files are scanned for it. Each test also checks that the
key did reach the agent (the request's header), so a campaign that never sent it cannot pass.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from aiida import orm
from aiida.engine import run_get_node, submit

from aiida_nanoos.design.config import ExternalSettings
from aiida_nanoos.design.proposers.external import ExternalProposerError, request_candidates
from tests.campaign_fixtures import campaign_builder, daemon, daemon_profile, iteration_results, sige_cell, wait_for  # noqa: F401
from tests.test_campaign_external import FIRST_ANSWER, SECOND_ANSWER, Agent, external_config

KEY_ENV = "NANOOS_TEST_AGENT_KEY"


def new_key() -> str:
    return "sk-sec-" + secrets.token_hex(20)


def _json_escaped(text: str) -> str:
    """``text`` as a JSON string body with every character \\u-escaped (decodes to ``text``)."""
    return "".join(f"\\u{ord(c):04x}" for c in text)


class EchoingAgent(Agent):
    """An agent that echoes the key in its answers in three disguises: verbatim in the message (as the base class
    does), JSON-\\u-escaped in a rationale (it decodes to the key only after ``json.loads``), and as the name of a
    parameter (an unknown dimension: a rejection reason would quote it)."""

    SENTINEL = "__ESCAPED_KEY__"

    def __init__(self, answers, key):
        answers = [
            {
                **answer,
                "candidates": [
                    *answer["candidates"],
                    {"parameters": {**answer["candidates"][0]["parameters"], key: 1.0}},
                    {**answer["candidates"][0], "rationale": self.SENTINEL},
                ],
            }
            for answer in answers
        ]
        super().__init__(answers)
        agent, escaped = self, _json_escaped(key)

        class Handler(self.server.RequestHandlerClass):
            def do_POST(self):  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                agent.requests.append({"headers": dict(self.headers), "json": json.loads(body)})
                answer = agent.answers[min(len(agent.requests), len(agent.answers)) - 1]
                answer = {
                    **answer,
                    "message": f"{answer.get('message', '')} (you sent {self.headers['Authorization']})",
                }
                data = json.dumps(answer).replace(json.dumps(agent.SENTINEL), f'"{escaped}"').encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server.RequestHandlerClass = Handler


def stored_text(profile_extra: list[Path] = ()) -> tuple[bytes, dict[str, int]]:
    """Everything the profile stores, as bytes, and how many of each kind were read (so the scan cannot be empty)."""
    chunks: list[bytes] = []
    counts = {"nodes": 0, "files": 0, "logs": 0, "comments": 0, "groups": 0, "daemon_logs": 0}

    def add(value) -> None:
        chunks.append(json.dumps(value, default=str).encode())
        chunks.append(str(value).encode())

    for (node,) in orm.QueryBuilder().append(orm.Node).iterall():
        counts["nodes"] += 1
        add(node.base.attributes.all)
        add(node.base.extras.all)
        add([node.label, node.description, node.process_label if isinstance(node, orm.ProcessNode) else None])
        repository = node.base.repository
        for root, _, filenames in repository.walk():
            for filename in filenames:
                chunks.append(repository.get_object_content(str(root / filename), mode="rb"))
                counts["files"] += 1
    for (log,) in orm.QueryBuilder().append(orm.Log).iterall():
        counts["logs"] += 1
        add([log.message, log.metadata, log.levelname, log.loggername])
    for (comment,) in orm.QueryBuilder().append(orm.Comment).iterall():
        counts["comments"] += 1
        add(comment.content)
    for (group,) in orm.QueryBuilder().append(orm.Group).iterall():
        counts["groups"] += 1
        add([group.label, group.description, group.base.extras.all])
    for path in profile_extra:
        if path.is_file():
            counts["daemon_logs"] += 1
            chunks.append(path.read_bytes())
    return b"\n".join(chunks), counts


def assert_key_nowhere(key: str, extra_files: list[Path] = ()) -> dict[str, int]:
    text, counts = stored_text(extra_files)
    assert key.encode() not in text
    # not even a long piece of it (a key cut in two by a message's truncation)
    secret_part = key.removeprefix("sk-sec-")
    for start in range(0, len(secret_part) - 16, 8):
        assert secret_part[start : start + 16].encode() not in text
    return counts


# ------------------------------------------------------------------------------------------------ the API key
def test_after_an_external_campaign_the_key_is_in_no_node_file_report_or_message(aiida_profile, monkeypatch):
    key = new_key()
    monkeypatch.setenv(KEY_ENV, key)
    with EchoingAgent([FIRST_ANSWER, SECOND_ANSWER], key) as agent:
        _, node = run_get_node(
            campaign_builder(external_config(agent.url), constraints={"allowed_elements": ["C", "Si", "Ge"]})
        )
    assert node.is_finished_ok, node.exit_message
    # the key did travel: as the bearer header of every request, and nowhere in the request's body
    assert len(agent.requests) == 2
    assert all(r["headers"]["Authorization"] == f"Bearer {key}" for r in agent.requests)
    assert all(key not in json.dumps(r["json"]) for r in agent.requests)
    # the agent echoed it three ways; each one reached the campaign, and was redacted
    suggest = next(n for n in node.called if n.process_label == "suggest_candidates")
    report = suggest.outputs.proposals["report"]
    assert report["message"].endswith("(you sent Bearer [redacted])")
    assert any("[redacted]" in r["reason"] for r in report["rejected"])
    summary = iteration_results(node)["iteration_001"]["summary"]
    rationales = [
        orm.load_node(c["uuid"]).base.attributes.get("candidate").get("rationale") for c in summary["candidates"]
    ]
    assert "[redacted]" in rationales
    counts = assert_key_nowhere(key)
    assert counts["nodes"] > 20 and counts["files"] > 0 and counts["logs"] > 0
    # the scan does find a string that is stored (the name of the variable): it can fail
    text, _ = stored_text()
    assert KEY_ENV.encode() in text


def test_a_failing_proposer_never_puts_the_key_in_the_exit_message(aiida_profile, monkeypatch):
    key = new_key()
    monkeypatch.setenv(KEY_ENV, key)

    class Rude(Agent):
        """Answers 500 with the request's Authorization header as the reason phrase."""

        def __init__(self):
            super().__init__([500])
            handler = self.server.RequestHandlerClass

            def do_post(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                self.server.agent_requests.append(dict(self.headers))
                self.send_error(500, f"bad key {self.headers['Authorization']}")

            handler.do_POST = do_post
            self.server.agent_requests = self.requests

    with Rude() as agent:
        results, node = run_get_node(campaign_builder(external_config(agent.url)))
    assert agent.requests and agent.requests[0]["Authorization"] == f"Bearer {key}"
    assert node.exit_status == 402 and "HTTP 500" in node.exit_message and "[redacted]" in node.exit_message
    assert key not in node.exit_message
    assert_key_nowhere(key)


@pytest.mark.parametrize(
    "key",
    [
        "sk-sec-" + "a" * 24 + "\nX-Injected: 1",  # header injection: http.client quotes the whole header
        "sk-sec-" + "b" * 24 + "\r",
        "sk-sec-" + "c" * 24 + "\u2603",  # not encodable in a header
        "sk-sec-" + "d" * 24 + "\x7f",
    ],
)
def test_a_key_a_header_cannot_carry_is_refused_without_quoting_it(monkeypatch, key):
    monkeypatch.setenv(KEY_ENV, key)
    settings = ExternalSettings(url="http://127.0.0.1:9/propose", api_key_env=KEY_ENV, timeout=1)
    with pytest.raises(ExternalProposerError) as error:
        request_candidates(settings, {"candidates": []})
    message = str(error.value)
    assert KEY_ENV in message and "not shown" in message
    assert key.strip() not in message and key[:20] not in message
    assert error.value.__cause__ is None and error.value.__context__ is None or key not in str(error.value.__context__)


def test_every_failure_of_the_request_is_an_external_proposer_error_without_the_key(monkeypatch):
    """Whatever breaks inside urllib / http.client (here: an exception quoting the request's headers), the proposer
    raises ExternalProposerError naming the endpoint, with neither the key nor a chained exception that holds it."""
    import urllib.request

    key = new_key()
    monkeypatch.setenv(KEY_ENV, key)

    def broken_urlopen(request, timeout):
        raise RuntimeError(f"cannot send {request.headers}")  # fault injection: a library error quoting headers

    monkeypatch.setattr(urllib.request, "urlopen", broken_urlopen)
    settings = ExternalSettings(url="http://127.0.0.1:9/propose", api_key_env=KEY_ENV, timeout=1)
    with pytest.raises(ExternalProposerError, match="127.0.0.1:9/propose failed: RuntimeError") as error:
        request_candidates(settings, {})
    assert key not in str(error.value) and error.value.__suppress_context__


def test_a_key_echoed_by_the_agent_is_redacted_however_it_is_escaped(monkeypatch):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    key = new_key()
    monkeypatch.setenv(KEY_ENV, key)
    escaped = _json_escaped(key)
    candidate = f'{{"parameters": {{"x": 1}}, "rationale": "{escaped}"}}'
    body = f'{{"candidates": [{candidate}], "message": "{key}", "{escaped}": 1}}'
    body = body.encode()
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server API)
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.headers["X-Key"])
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = ExternalSettings(
            url=f"http://127.0.0.1:{server.server_address[1]}/", api_key_env=KEY_ENV, api_key_header="X-Key",
            api_key_prefix="", timeout=5,
        )  # fmt: skip
        data = request_candidates(settings, {})
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [key]
    assert key not in json.dumps(data)
    assert data["candidates"][0]["rationale"] == "[redacted]" and data["message"] == "[redacted]"
    assert "[redacted]" in data


def test_through_the_daemon_the_key_is_in_no_node_and_no_daemon_log(monkeypatch, daemon_profile):  # noqa: F811
    """The key set where the daemon starts (as a user does before `verdi daemon start`); its logs are scanned too."""
    from aiida.engine.daemon.client import get_daemon_client

    key = new_key()
    monkeypatch.setenv(KEY_ENV, key)
    client = get_daemon_client(daemon_profile.name)
    if client.is_daemon_running:
        client.stop_daemon(wait=True, timeout=120)
    client.start_daemon(number_workers=1, timeout=120)  # inherits the environment holding the key
    try:
        wait_for(lambda: client.is_daemon_running, 60, "the daemon to start")
        with EchoingAgent([FIRST_ANSWER, SECOND_ANSWER], key) as agent:
            node = submit(
                campaign_builder(external_config(agent.url), constraints={"allowed_elements": ["C", "Si", "Ge"]})
            )
            wait_for(lambda: node.is_terminated, 300, "the campaign to finish on the daemon")
    finally:
        client.stop_daemon(wait=True, timeout=120)
    assert node.is_finished_ok, node.exit_message
    assert len(agent.requests) == 2 and agent.requests[0]["headers"]["Authorization"] == f"Bearer {key}"
    logs = [Path(client.daemon_log_file), Path(client.circus_log_file)]
    counts = assert_key_nowhere(key, logs)
    assert counts["daemon_logs"] >= 1


# ------------------------------------------------------------------------------------------------ formulas
def test_a_formula_dividing_by_zero_on_one_candidate_fails_only_that_candidate(aiida_profile):
    """``stability_score / bandgap`` on the all-Ge cell squeezed to the SiGe lattice (a metal in the analytic model:
    band gap 0) fails that candidate with the reason; the four others are ranked and the campaign finishes."""
    from aiida_nanoos.design.spaces import atoms_to_dict

    space = {
        "base_structure": atoms_to_dict(sige_cell()),
        "dimensions": [
            {"type": "substitution", "name": "si_sites", "host": "Si", "dopants": ["Ge"], "fraction": [0, 1]}
        ],
    }
    objective = {"objective": "custom", "formula": "stability_score / bandgap", "direction": "maximize"}
    results, node = run_get_node(
        campaign_builder({"algorithm": "random", "batch_size": 5, "max_iterations": 1}, objective, space=space)
    )
    assert node.is_finished_ok, node.exit_message
    records = results["state"]["candidates"]
    assert len(records) == 5
    failed = [r for r in records if r["status"] == "failed"]
    assert len(failed) == 1
    metal = failed[0]
    assert metal["parameters"]["si_sites"]["fraction"] == 1.0 and metal["properties"]["bandgap"] == 0.0
    assert metal["value"] is None
    assert "stability_score / bandgap" in metal["error"] and "ZeroDivisionError" in metal["error"]
    assert all(r["status"] == "ok" and r["value"] > 0 for r in records if r is not metal)
    statistics = results["statistics"]
    assert statistics["failed_evaluations"] == 1 and statistics["total_candidates_evaluated"] == 5
    summary = iteration_results(node)["iteration_001"]["summary"]
    assert summary["failed"] == 1 and summary["candidates"][-1]["status"] == "failed"
    assert "ZeroDivisionError" in summary["candidates"][-1]["error"]
    # its evaluation itself succeeded: the failure is the formula's, recorded by the decision step
    record = next(n for n in node.called if n.process_label == "record_iteration")
    assert record.is_finished_ok
