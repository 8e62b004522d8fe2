"""What every training script shares with the parser of its CalcJob: arguments, exit codes, the reason on stderr.

A script reads plain files given as ``--name path`` options and a JSON config, and writes an output folder. When
it fails it prints one reason line on stderr, ``<script>: <reason>: <message>`` (the scheduler's stderr file is
retrieved with the job), and exits with the script status of that reason. The parser of the CalcJob
(:mod:`aiida_nanoos.calculations.script_output`) reads the line back with :func:`read_failure` and returns the
CalcJob exit code of the same :class:`Failure`, so each way to fail is declared once, here.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Failure:
    """One way a training run fails: its CalcJob exit code and, if the script itself reports it, its exit status.

    ``message`` may hold ``{script}`` and ``{outputs}`` (filled in by the CalcJob's spec) and ``{message}`` (filled
    in by the parser with the details); ``reason`` is the word the script prints on stderr.
    """

    label: str
    exit_status: int
    message: str
    script_status: int | None = None
    reason: str | None = None
    invalidates_cache: bool = True


NO_RETRIEVED_FOLDER = Failure("ERROR_NO_RETRIEVED_FOLDER", 300, "The retrieved folder could not be accessed.")
INVALID_CONFIG = Failure(
    "ERROR_INVALID_CONFIG", 310, "{script} refused the config: {message}", script_status=2, reason="invalid config"
)
TRAINING_FAILED = Failure(
    "ERROR_TRAINING_FAILED", 320, "{script} failed: {message}", script_status=3, reason="training failed"
)
OUTPUT_MISSING = Failure("ERROR_OUTPUT_MISSING", 330, "{script} wrote no {outputs} ({message}).")
NON_FINITE_ERRORS = Failure("ERROR_NON_FINITE_ERRORS", 340, "{unusable}", invalidates_cache=False)
#: Its own code, not TRAINING_FAILED, so that a restart work chain can retry with a smaller batch.
OUT_OF_MEMORY = Failure(
    "ERROR_OUT_OF_MEMORY", 350, "{script} ran out of memory: {message}", script_status=4, reason="out of memory"
)
#: Every failure of a training run, in exit-status order.
FAILURES = (NO_RETRIEVED_FOLDER, INVALID_CONFIG, TRAINING_FAILED, OUTPUT_MISSING, NON_FINITE_ERRORS, OUT_OF_MEMORY)
#: Exit status of a script that did its work.
SUCCESS = 0


def report_failure(script: str, failure: Failure, message: str) -> int:
    """Print the reason line of ``failure`` on stderr; returns the script's exit status for it."""
    print(f"{script}: {failure.reason}: {message}", file=sys.stderr)
    return failure.script_status


def read_failure(script: str, stderr: str) -> tuple[Failure, str] | None:
    """The failure a script reported on ``stderr`` (its last reason line) and its message; None if it reported none."""
    prefix = f"{script}: "
    for line in reversed(stderr.splitlines()):
        for failure in FAILURES:
            if failure.reason is not None and line.startswith(f"{prefix}{failure.reason}:"):
                return failure, line[len(prefix) + len(failure.reason) + 1 :].strip()
    return None


def is_out_of_memory(error: BaseException) -> bool:
    """A :class:`MemoryError`, or the RuntimeError torch raises when an allocation fails (CPU or GPU)."""
    if isinstance(error, MemoryError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def run_script(
    script: str,
    description: str,
    inputs: dict[str, str],
    parse_config: Callable[[dict], object],
    work: Callable[[argparse.Namespace, object], str],
    argv: Sequence[str] | None = None,
) -> int:
    """Parse ``--<name> PATH`` for each of ``inputs`` (name -> help) plus ``--config`` and ``--output``, then run.

    A config that cannot be read or that ``parse_config`` refuses (:class:`ValueError`) is reported as
    :data:`INVALID_CONFIG`; running out of memory in ``work(arguments, config)`` as :data:`OUT_OF_MEMORY`, any
    other exception as :data:`TRAINING_FAILED` (with its traceback before the reason line). ``work`` returns a
    one-line summary, printed on stdout. Returns the exit status.
    """
    parser = argparse.ArgumentParser(prog=script, description=description)
    for name, help_text in inputs.items():
        parser.add_argument(f"--{name}", required=True, help=help_text)
    parser.add_argument("--config", required=True, help="training config (JSON)")
    parser.add_argument("--output", required=True, help="folder for the trained files and metrics.json")
    arguments = parser.parse_args(argv)
    try:
        config = parse_config(json.loads(Path(arguments.config).read_text()))
    except (OSError, ValueError) as error:  # json.JSONDecodeError is a ValueError
        return report_failure(script, INVALID_CONFIG, str(error))
    try:
        summary = work(arguments, config)
    except Exception as error:  # noqa: BLE001 - any failure is reported to the parser through stderr
        traceback.print_exc()
        failure = OUT_OF_MEMORY if is_out_of_memory(error) else TRAINING_FAILED
        return report_failure(script, failure, f"{type(error).__name__}: {error}")
    print(f"{script}: {summary}")
    return SUCCESS
