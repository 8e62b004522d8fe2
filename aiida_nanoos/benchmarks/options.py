"""Options every benchmark command shares, declared once: how the figures are printed and how many threads run."""

from __future__ import annotations

import click

#: Why a BayBE or BoTorch baseline did not run, and how to add it (after the pinned CPU torch, with the constraints).
BENCH_EXTRA_MISSING = "the bench extra is not installed (make bench)"
#: ``--json``: one JSON object on stdout instead of a table, for scripts (passed as ``as_json``).
json_output = click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of a table.")
#: ``--quiet``: no progress lines on stderr.
quiet = click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
#: Default ``--runs`` of the benchmarks whose figure is a ratio of two medians (``transfer``, ``cost-aware``). Why 30,
#: not 10: over 10 runs the ratio moves more than the margin to its goal between seed windows (warm/cold on levy4:
#: 0.62, 0.48 and 0.58 on seeds 0-9, 10-19 and 20-29; 0.53 on 0-29), because the runs are often bimodal and the
#: median of 10 falls in either group.
RATIO_RUNS = 30
#: ``--threads``: torch threads of a crystal-graph benchmark.
torch_threads = click.option(
    "--threads",
    type=int,
    default=1,
    show_default=True,
    help="Torch threads (more than 1 was 6-10x slower per step on a shared 2-core machine).",
)
