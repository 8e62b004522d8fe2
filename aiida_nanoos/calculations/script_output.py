"""What the parsers of the training scripts (``nanoos-train``, ``nanoos-train-model``) share: reading the reason a
script gave on stderr (``<script>: invalid config: ...`` / ``<script>: training failed: ...``) into an exit code."""

from __future__ import annotations

from aiida.engine import ExitCode
from aiida.parsers import Parser


def define_training_exit_codes(spec, script: str, outputs: str, unusable: str) -> None:
    """The exit codes :func:`training_script_failure` returns (300-330), and 340 for a fit with non-finite errors."""
    spec.exit_code(
        300, "ERROR_NO_RETRIEVED_FOLDER", message="The retrieved folder could not be accessed.", invalidates_cache=True
    )
    spec.exit_code(
        310, "ERROR_INVALID_CONFIG", message=f"{script} refused the config: {{message}}", invalidates_cache=True
    )
    spec.exit_code(320, "ERROR_TRAINING_FAILED", message=f"{script} failed: {{message}}", invalidates_cache=True)
    spec.exit_code(
        330, "ERROR_OUTPUT_MISSING", message=f"{script} wrote no {outputs} ({{message}}).", invalidates_cache=True
    )
    spec.exit_code(340, "ERROR_NON_FINITE_ERRORS", message=unusable)


def training_script_failure(parser: Parser, script: str, output_folder: str, metrics_filename: str) -> ExitCode | None:
    """The exit code of a run that refused its config, failed or wrote no ``metrics_filename``; None if it is there.

    The parser's CalcJob must define ``ERROR_NO_RETRIEVED_FOLDER``, ``ERROR_INVALID_CONFIG``, ``ERROR_TRAINING_FAILED``
    and ``ERROR_OUTPUT_MISSING`` (the last three with a ``{message}``).
    """
    try:
        retrieved = parser.retrieved
    except Exception:  # noqa: BLE001
        return parser.exit_codes.ERROR_NO_RETRIEVED_FOLDER
    stderr_name = parser.node.get_option("scheduler_stderr")
    names = retrieved.base.repository.list_object_names()
    stderr = retrieved.base.repository.get_object_content(stderr_name) if stderr_name in names else ""
    prefix = f"{script}:"
    message = next(
        (line.split(":", 2)[-1].strip() for line in reversed(stderr.splitlines()) if line.startswith(prefix)), ""
    )
    if f"{prefix} invalid config" in stderr:
        return parser.exit_codes.ERROR_INVALID_CONFIG.format(message=message)
    if f"{prefix} training failed" in stderr:
        return parser.exit_codes.ERROR_TRAINING_FAILED.format(message=message)
    if output_folder not in names or metrics_filename not in retrieved.base.repository.list_object_names(output_folder):
        tail = " | ".join(stderr.strip().splitlines()[-3:]) or "no stderr"
        return parser.exit_codes.ERROR_OUTPUT_MISSING.format(message=tail)
    return None
