"""The ``aiida-nanoos`` command line."""

from __future__ import annotations

import click

from .benchmark import benchmark
from .campaign import campaign
from .label import label
from .model import model
from .pipeline import pipeline
from .plots import campaign_plot, md, model_plot, potential_plot
from .potential import potential
from .query import query
from .setup import doctor, setup
from .training_set import trainingset


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-p", "--profile", "profile_name", default=None, help="AiiDA profile to use (default: the default one).")
@click.pass_context
def cli(ctx: click.Context, profile_name: str | None) -> None:
    """aiida-nanoos: autonomous materials design on AiiDA (DFT -> ML potential -> MD, design campaigns)."""
    ctx.ensure_object(dict)
    ctx.obj["profile"] = profile_name


for command in (setup, doctor, label, trainingset, benchmark, pipeline, potential, campaign, model, md, query):
    cli.add_command(command)

# plots live in cli/plots.py, registered on the groups of their subjects
for group, command in ((campaign, campaign_plot), (potential, potential_plot), (model, model_plot)):
    group.add_command(command)
