"""The ``aiida-nanoos`` command line."""

import click

from .benchmark import benchmark


@click.group()
def cli() -> None:
    """aiida-nanoos: autonomous materials design on AiiDA."""


cli.add_command(benchmark)
