"""What the parsers of the training scripts (``nanoos-train``, ``nanoos-train-model``) share: reading the reason a
script gave on stderr (``<script>: invalid config: ...`` / ``<script>: training failed: ...``) into an exit code."""

from __future__ import annotations

from aiida.engine import ExitCode
from aiida.parsers import Parser


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
