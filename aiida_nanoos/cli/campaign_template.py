"""``aiida-nanoos campaign template list|show|new``: the maintained campaign templates (``aiida_nanoos/templates``),
copied to a file the user edits and runs with ``aiida-nanoos campaign run FILE``."""

from __future__ import annotations

from pathlib import Path

import click

from aiida_nanoos import templates

from .params import JSON, echo_json, echo_table, group


class TemplateName(click.ParamType):
    """The name of a maintained template; an unknown one is a usage error that lists the names."""

    name = "TEMPLATE"

    def convert(self, value, param, ctx) -> str:
        try:
            templates.template_path(value)
        except KeyError:
            self.fail(f"no campaign template {value!r}; templates: {', '.join(templates.template_names())}", param, ctx)
        return value

    def shell_complete(self, ctx, param, incomplete):
        from click.shell_completion import CompletionItem

        return [CompletionItem(name) for name in templates.template_names() if name.startswith(incomplete)]


TEMPLATE = TemplateName()


def template_rows() -> list[dict[str, str]]:
    """One row per template: its name and the header fields (title, searches, evaluator, cost)."""
    rows = []
    for name in templates.template_names():
        header = templates.template_header(name)
        rows.append({"name": name, **{key: header.get(key, "") for key in templates.HEADER_KEYS}})
    return rows


@group("template")
def campaign_template() -> None:
    """Maintained campaign templates: list them, print one, or copy one to a file to edit and run."""


@campaign_template.command("list")
@JSON
def template_list(as_json: bool) -> None:
    """The maintained templates: what each searches and which evaluator it needs (`template show NAME` for the cost)."""
    rows = template_rows()
    if as_json:
        echo_json(rows)
        return
    # the evaluator's name, without the explanation that follows it in the header
    evaluators = [row["evaluator"].split(" (")[0] for row in rows]
    table = [{"Name": r["name"], "Searches": r["title"], "Evaluator": e} for r, e in zip(rows, evaluators, strict=True)]
    echo_table(table)
    click.echo("\nCopy one to edit and run: aiida-nanoos campaign template new NAME -o my_campaign.yaml")


@campaign_template.command("show")
@click.argument("name", type=TEMPLATE)
def template_show(name: str) -> None:
    """Print the template NAME (YAML with its comment header: what it searches, evaluator, cost)."""
    click.echo(templates.template_text(name), nl=False)


@campaign_template.command("new")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="File to write (default: NAME.yaml in the current folder).",
)
@click.option("--from", "source", type=TEMPLATE, default=None, help="Template to start from (default: NAME itself).")
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
def template_new(name: str, output: Path | None, source: str | None, force: bool) -> None:
    """Write a campaign file from a maintained template, to edit and run with `aiida-nanoos campaign run FILE`.

    NAME is a template (`template new stable_perovskites`), or, with --from, the name of your campaign: it becomes
    the campaign's label (`template new my_gap_search --from band_gap_window_group_iv`)."""
    if source is None:
        ctx = click.get_current_context()
        source = TEMPLATE.convert(name, next(p for p in ctx.command.params if p.name == "name"), ctx)
    path = output or Path(f"{name}.yaml")
    if path.exists() and not force:
        raise click.UsageError(f"{path} exists; choose another file with -o or overwrite it with --force")
    if not path.parent.is_dir():
        raise click.UsageError(f"no folder {path.parent} to write {path.name} into")
    text = templates.template_text(source)
    if name != source:
        text = _renamed(text, name)
    path.write_text(text)
    click.echo(f"Wrote {path} from template {source!r}. Edit it, then: aiida-nanoos campaign run {path}")


def _renamed(text: str, name: str) -> str:
    """The template with its top-level ``name:`` (the campaign's label) set to ``name``; comments stay as they are."""
    import json

    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.startswith("name:"):
            lines[index] = f"name: {json.dumps(name)}\n"  # a JSON string is a valid YAML scalar, quoted as needed
            break
    return "".join(lines)
