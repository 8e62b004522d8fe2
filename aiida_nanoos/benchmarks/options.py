"""Options every benchmark command shares, declared once: how the figures are printed and how many threads run."""

from __future__ import annotations

import click

#: Why a BayBE or BoTorch baseline did not run, and how to add it (after the pinned CPU torch, with the constraints).
BENCH_EXTRA_MISSING = "the bench extra is not installed (make bench)"
#: ``--json``: one JSON object on stdout instead of a table, for scripts (passed as ``as_json``).
json_output = click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of a table.")
#: ``--quiet``: no progress lines on stderr.
quiet = click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
#: ``--threads``: torch threads of a crystal-graph benchmark.
torch_threads = click.option(
    "--threads",
    type=int,
    default=1,
    show_default=True,
    help="Torch threads (more than 1 was 6-10x slower per step on a shared 2-core machine).",
)
