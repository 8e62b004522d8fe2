"""The training scripts' shared wrapper: arguments, the reason line on stderr, exit statuses (no AiiDA)."""

from __future__ import annotations

import json

import pytest

from aiida_nanoos.scripts import common
from aiida_nanoos.scripts.train_potential import main as train_potential


def _parse(data: dict) -> dict:
    if "bad" in data:
        raise ValueError("config.bad is not a setting")
    return data


def _run(tmp_path, config, work, capsys):
    path = tmp_path / "config.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    argv = ["--data", "x.csv", "--config", str(path), "--output", str(tmp_path / "out")]
    status = common.run_script("nanoos-test", "test", {"data": "input"}, _parse, work, argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_success_prints_the_summary(tmp_path, capsys):
    status, out, err = _run(tmp_path, {"a": 1}, lambda arguments, config: f"{arguments.data} {config['a']}", capsys)
    assert (status, out.strip(), err) == (common.SUCCESS, "nanoos-test: x.csv 1", "")


@pytest.mark.parametrize("config", [{"bad": 1}, "{not json"])
def test_bad_config_is_reported_as_invalid_config(tmp_path, capsys, config):
    status, _, err = _run(tmp_path, config, lambda arguments, config: pytest.fail("must not run"), capsys)
    assert status == common.INVALID_CONFIG.script_status == 2
    failure, message = common.read_failure("nanoos-test", err)
    assert failure is common.INVALID_CONFIG and failure.exit_status == 310
    assert ("config.bad" in message) == isinstance(config, dict)


def test_a_failing_fit_is_reported_with_its_traceback(tmp_path, capsys):
    def work(arguments, config):
        raise KeyError("injected")

    status, _, err = _run(tmp_path, {}, work, capsys)
    assert status == common.TRAINING_FAILED.script_status == 3
    assert "Traceback" in err
    assert common.read_failure("nanoos-test", err) == (common.TRAINING_FAILED, "KeyError: 'injected'")


@pytest.mark.parametrize(
    "error",
    [
        MemoryError("injected"),
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"),
    ],
)
def test_running_out_of_memory_has_its_own_status_and_exit_code(tmp_path, capsys, error):
    """Fault injection: the fit raises what Python or torch raise when an allocation fails."""

    def work(arguments, config):
        raise error

    status, _, err = _run(tmp_path, {}, work, capsys)
    assert status == common.OUT_OF_MEMORY.script_status == 4
    failure, message = common.read_failure("nanoos-test", err)
    assert failure is common.OUT_OF_MEMORY and failure.exit_status == 350
    assert message.startswith(type(error).__name__)
    assert not common.is_out_of_memory(RuntimeError("shape mismatch"))


def test_reason_lines_of_other_scripts_and_plain_errors_are_not_failures():
    assert common.read_failure("nanoos-train", "nanoos-train-model: training failed: x\nboom") is None
    assert common.read_failure("nanoos-train", "") is None


def test_exit_statuses_are_unique_and_script_statuses_distinct():
    statuses = [failure.exit_status for failure in common.FAILURES]
    assert statuses == sorted(set(statuses)) == [300, 310, 320, 330, 340, 350]
    reported = [failure.script_status for failure in common.FAILURES if failure.script_status is not None]
    assert len(set(reported)) == len(reported) and common.SUCCESS not in reported


def test_nanoos_train_refuses_a_bad_config_naming_the_field(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"descriptor_type": "SNAP", "snap": {"twojmax": -2}}))
    argv = ["--frames", str(tmp_path / "none.extxyz"), "--config", str(config), "--output", str(tmp_path / "out")]
    assert train_potential(argv) == 2
    failure, message = common.read_failure("nanoos-train", capsys.readouterr().err)
    assert failure is common.INVALID_CONFIG and "config.snap.twojmax" in message
