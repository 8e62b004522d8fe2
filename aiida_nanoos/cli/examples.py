"""``--example-config``: print a working configuration file -- the ``examples/*.yaml`` files themselves, so the
printed example and the one the README runs are the same file and cannot drift apart."""

from __future__ import annotations

from pathlib import Path

import click

import aiida_nanoos

#: Where the examples are looked for: inside the package (when shipped as package data), then the checkout the
#: package is installed from in editable mode.
EXAMPLE_FOLDERS = (Path(aiida_nanoos.__file__).parent / "examples", Path(aiida_nanoos.__file__).parents[1] / "examples")

#: kind of configuration -> (example offered by default, file name prefix of the others).
KINDS = {"campaign": "campaign_group_iv", "pipeline": "pipeline_si", "label": "label_si"}


def example_folder() -> Path:
    for folder in EXAMPLE_FOLDERS:
        if all((folder / f"{name}.yaml").is_file() for name in KINDS.values()):
            return folder
    raise click.ClickException(
        "the example configurations (examples/*.yaml) are not installed with this copy of aiida-nanoos; they are in "
        "the repository's examples/ folder (install it with `pip install -e .` from a checkout)"
    )


def available(kind: str) -> dict[str, Path]:
    """The examples of one kind: ``{"group_iv": .../campaign_group_iv.yaml, ...}`` (name without the prefix)."""
    return {path.stem.removeprefix(f"{kind}_"): path for path in sorted(example_folder().glob(f"{kind}_*.yaml"))}


def example_text(kind: str, name: str | None = None) -> str:
    """The text of the example ``name`` (default: the one the README runs) of this kind of configuration."""
    examples = available(kind)
    wanted = name or KINDS[kind].removeprefix(f"{kind}_")
    if wanted not in examples:
        raise click.BadParameter(f"no {kind} example {wanted!r}; available: {', '.join(examples)}")
    return examples[wanted].read_text()


def example_option(kind: str):
    """``--example-config [NAME]``: print the example and exit (no CONFIG_FILE needed)."""

    def callback(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
        if value is None or ctx.resilient_parsing:
            return
        click.echo(example_text(kind, None if value == "default" else value), nl=False)
        ctx.exit(0)

    default = KINDS[kind].removeprefix(f"{kind}_")
    return click.option(
        "--example-config",
        is_flag=False,
        flag_value="default",
        default=None,
        metavar="[NAME]",
        expose_value=False,
        is_eager=True,
        callback=callback,
        help=f"Print a working {kind} configuration (YAML) and exit: the {default!r} example by default, or NAME "
        f"(the examples/{kind}_NAME.yaml files). Save it, edit it, run it.",
    )
