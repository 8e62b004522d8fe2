"""What the parsers of the training scripts (``nanoos-train``, ``nanoos-train-model``) share: the exit codes declared
once in :mod:`aiida_nanoos.scripts.common` (300-350), reading the reason a script gave on stderr into one, and the
opening of every parse (failure check, retrieved output copied to a temporary folder, ``metrics.json`` read)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiida.engine import ExitCode
from aiida.parsers import Parser

from aiida_nanoos.scripts.common import (
    FAILURES,
    NO_RETRIEVED_FOLDER,
    NON_FINITE_ERRORS,
    OUTPUT_MISSING,
    read_failure,
)


def define_training_exit_codes(spec, script: str, outputs: str, unusable: str) -> None:
    """The exit codes of :data:`aiida_nanoos.scripts.common.FAILURES` (300-340), messages naming ``script``."""
    for failure in FAILURES:
        if failure is NON_FINITE_ERRORS:
            message = unusable
        else:
            message = failure.message.format(script=script, outputs=outputs, message="{message}")
        spec.exit_code(failure.exit_status, failure.label, message=message, invalidates_cache=failure.invalidates_cache)


def training_script_failure(parser: Parser, script: str, output_folder: str, metrics_filename: str) -> ExitCode | None:
    """The exit code of a run that refused its config, failed or wrote no ``metrics_filename``; None if it is there.

    The parser's CalcJob must define its exit codes with :func:`define_training_exit_codes`.
    """
    try:
        retrieved = parser.retrieved
    except Exception:  # noqa: BLE001
        return parser.exit_codes(NO_RETRIEVED_FOLDER.exit_status)
    stderr_name = parser.node.get_option("scheduler_stderr")
    names = retrieved.base.repository.list_object_names()
    stderr = retrieved.base.repository.get_object_content(stderr_name) if stderr_name in names else ""
    reported = read_failure(script, stderr)
    if reported is not None:
        failure, message = reported
        return parser.exit_codes(failure.exit_status).format(message=message)
    if output_folder not in names or metrics_filename not in retrieved.base.repository.list_object_names(output_folder):
        tail = " | ".join(stderr.strip().splitlines()[-3:]) or "no stderr"
        return parser.exit_codes(OUTPUT_MISSING.exit_status).format(message=tail)
    return None


@dataclass
class TrainingOutput:
    """What :func:`training_output` found: the exit code of a failed run, or the local copy and its metrics."""

    failure: ExitCode | None
    folder: Path
    description: dict


@contextmanager
def training_output(
    parser: Parser, script: str, output_folder: str, metrics_filename: str, prefix: str = "nanoos-parse-"
) -> Iterator[TrainingOutput]:
    """The run's ``output_folder`` copied to a temporary folder (removed on exit) with its ``metrics_filename`` read.

    ``failure`` is set (and ``description`` empty) when the script failed, wrote no metrics, or wrote unreadable ones.
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        folder = Path(name)
        failure = training_script_failure(parser, script, output_folder, metrics_filename)
        description: dict = {}
        if failure is None:
            parser.retrieved.base.repository.copy_tree(folder, output_folder)
            try:
                description = json.loads((folder / metrics_filename).read_text())
            except (OSError, ValueError) as error:
                failure = parser.exit_codes(OUTPUT_MISSING.exit_status).format(message=f"{metrics_filename}: {error}")
        yield TrainingOutput(failure, folder, description)
