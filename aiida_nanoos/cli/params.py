"""What every ``aiida-nanoos`` command shares with ``verdi``: the command group that gives each command ``-p/--profile``
and ``-v/--verbosity``, the identifier parameters (PK, UUID or label), ``--json`` and tables printed as verdi prints
them.

Identifiers: potentials, training sets and calculations are aiida's own ``DataParamType`` / ``ProcessParamType``;
campaigns, MD runs and property models go through :mod:`aiida_nanoos.query`'s loaders (``load_identified``), which
also know a model's name and ``name_vN`` -- one lookup per kind of node, shared with the Python API.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.groups.verdi import VerdiCommand, VerdiContext
from aiida.cmdline.params import options, types
from aiida.cmdline.params.options.main import set_log_level
from aiida.cmdline.utils.decorators import with_dbenv
from aiida.manage.configuration import get_config_path

#: ``ctx.meta`` key holding the ``-v/--verbosity`` value given anywhere on the command line (``None``: not given).
VERBOSITY_KEY = "aiida_nanoos.verbosity"
#: Commands that create the profile themselves (``--profile-name``): no ``-p`` that loads one first.
WITHOUT_PROFILE_OPTION = {"setup"}


def _record_verbosity(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """aiida's own callback (it configures the loggers), and remember the level for the progress display: aiida
    applies ``--verbosity`` to the loggers once per process, so a second command in the same process (tests) would
    not see it there."""
    if value is not None:
        ctx.meta[VERBOSITY_KEY] = value.upper()
    elif not Path(get_config_path()).is_file():
        # no AiiDA configuration yet (``setup`` is about to make it, or refuse): configuring the logging would
        # write an empty one
        return None
    return set_log_level(ctx, param, value)


def verbosity() -> str | None:
    """The ``-v`` level of the running command (``INFO``, ``DEBUG``, ...) or None when it was not given."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(VERBOSITY_KEY) if ctx is not None else None


VERBOSITY = options.VERBOSITY.clone(callback=_record_verbosity)
#: ``-p/--profile`` on every command: loads that profile before any identifier argument is converted (eager).
PROFILE = options.PROFILE.clone(
    type=types.ProfileParamType(load_profile=True), expose_value=False, default=None, is_eager=True
)


class NanoosCommand(VerdiCommand):
    """verdi's command class with verdi's context (the loaded configuration, for ``-p``) when invoked on its own."""

    context_class = VerdiContext


class NanoosGroup(VerdiCommandGroup):
    """verdi's command group: ``-v/--verbosity`` on every command, command suggestions on typos; in addition
    ``-p/--profile`` on every command (``aiida-nanoos campaign show 12 -p nanoos``), not only on the top one."""

    command_class = NanoosCommand

    @staticmethod
    def add_verbosity_option(cmd: click.Command) -> click.Command:
        names = [param.name for param in cmd.params]
        if "verbosity" not in names:
            cmd = VERBOSITY()(cmd)
        if "profile" not in names and cmd.name not in WITHOUT_PROFILE_OPTION:
            cmd = PROFILE()(cmd)
        return cmd


def group(name: str | None = None, **kwargs: Any):
    """``click.group`` with :class:`NanoosGroup` (so sub-commands get ``-p`` and ``-v``)."""
    return click.group(name, cls=NanoosGroup, **kwargs)


class QueryIdentifier(click.ParamType):
    """A node found by :mod:`aiida_nanoos.query`'s loader for its kind (PK, UUID, label; models also by name)."""

    def __init__(self, name: str, loader: str):
        self.name = name
        self.loader = loader

    @with_dbenv()
    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from aiida_nanoos import query

        try:
            return getattr(query, self.loader)(value)
        except ValueError as error:
            self.fail(str(error), param, ctx)


#: A design campaign (CampaignWorkChain) by PK, UUID or label.
CAMPAIGN = QueryIdentifier("CAMPAIGN", "load_campaign_node")
#: A ``nanoos.md`` run or a ``run_ase_md`` calcfunction by PK, UUID or label.
MD_RUN = QueryIdentifier("MD_RUN", "load_md")
#: A property model by PK, UUID, name (latest version) or ``name_vN``.
MODEL = QueryIdentifier("MODEL", "load_model")


class DataOfKind(types.DataParamType):
    """aiida's ``DataParamType`` for one data plugin, saying what a node of another kind is instead."""

    def __init__(self, entry_point: str, what: str):
        super().__init__(sub_classes=(entry_point,))
        self.what = what

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as refused:
            try:
                other = types.NodeParamType().convert(value, param, ctx)
            except click.BadParameter:
                raise refused from None
            self.fail(f"node {value} is a {type(other).__name__}, not a {self.what}", param, ctx)


#: An ML potential (``nanoos.potential``) by PK, UUID or label.
POTENTIAL = DataOfKind("aiida.data:nanoos.potential", "potential")
#: A training set (``nanoos.training_set``) by PK, UUID or label.
TRAINING_SET = DataOfKind("aiida.data:nanoos.training_set", "training set")
#: Any process (a DFT calculation, a work chain) by PK, UUID or label.
PROCESS = types.ProcessParamType()
#: A work chain, e.g. a potential pipeline, by PK, UUID or label.
WORKFLOW = types.WorkflowParamType()

JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of a table.")


def echo_json(data: Any) -> None:
    """JSON on stdout, nothing else: what a script parses."""
    click.echo(json.dumps(data, indent=1, default=str))


def echo_table(rows: list[dict] | list[list], headers: Any = "keys", plain: bool = False, indent: str = "") -> None:
    """A table the way ``verdi process list`` prints it (tabulate's simple format); ``plain`` drops the rule under
    the header (tables inside a ``show`` report)."""
    from tabulate import tabulate

    text = tabulate(rows, headers=headers, tablefmt="plain" if plain else "simple")
    click.echo("\n".join(indent + line for line in text.splitlines()))


def process_state(node) -> str:
    """``Finished [0]``, ``Waiting``, ``Excepted``, as ``verdi process list`` shows the state."""
    if node.process_state is None:
        return "?"
    state = node.process_state.value.capitalize()
    return f"{state} [{node.exit_status}]" if node.is_finished else state
