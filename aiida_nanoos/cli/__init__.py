"""The ``aiida-nanoos`` command line, on ``verdi``'s conventions (:mod:`.params`): ``-p/--profile`` and
``-v/--verbosity`` on every command, identifiers that take a PK, UUID or label, tables as verdi prints them and
``--json`` for scripts."""

from __future__ import annotations

import click

from .benchmark import benchmark
from .campaign import campaign
from .label import label
from .model import model
from .params import PROFILE, VERBOSITY, NanoosGroup
from .pipeline import hybrid, pipeline
from .plots import campaign_plot, md, model_plot, potential_plot
from .potential import potential
from .query import query
from .setup import doctor, setup
from .training_set import trainingset


@click.group(cls=NanoosGroup, context_settings={"help_option_names": ["-h", "--help"]})
@PROFILE(help="AiiDA profile to use (default: the default profile); also accepted after any sub-command.")
@VERBOSITY()
def cli() -> None:
    """aiida-nanoos: autonomous materials design on AiiDA (DFT -> ML potential -> MD, design campaigns)."""


for command in (setup, doctor, label, trainingset, benchmark, pipeline, hybrid, potential, campaign, model, md, query):
    cli.add_command(command)

# plots live in cli/plots.py, registered on the groups of their subjects
for group, command in ((campaign, campaign_plot), (potential, potential_plot), (model, model_plot)):
    group.add_command(command)
