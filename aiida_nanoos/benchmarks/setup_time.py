"""Time of ``aiida-nanoos setup`` from scratch (new AiiDA folder) and of a second, no-op run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from aiida_nanoos.benchmarks import options


@click.command()
@options.json_output
def command(as_json: bool) -> None:
    """Run setup twice in a throw-away AIIDA_PATH and print both wall times."""
    executable = str(Path(sys.executable).parent / "aiida-nanoos")
    figures = {}
    with tempfile.TemporaryDirectory(prefix="nanoos-setup-bench-") as folder:
        env = dict(os.environ, AIIDA_PATH=folder)
        for run in ("from_scratch_s", "second_run_s"):
            start = time.perf_counter()
            result = subprocess.run([executable, "setup"], env=env, capture_output=True, text=True)
            figures[run] = round(time.perf_counter() - start, 2)
            if result.returncode:
                raise click.ClickException(result.stderr)
    if as_json:
        click.echo(json.dumps(figures))
        return
    click.echo(f"aiida-nanoos setup from scratch: {figures['from_scratch_s']:.1f} s")
    click.echo(f"aiida-nanoos setup second run:   {figures['second_run_s']:.1f} s (nothing to do)")
