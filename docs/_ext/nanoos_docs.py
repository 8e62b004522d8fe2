"""Sphinx extension for the aiida-nanoos docs: pages generated from the installed package at build time.

* ``nanoos-exit-codes``: one table per process of the plugin (every ``aiida.workflows`` / ``aiida.calculations``
  entry point of ``aiida_nanoos``) read from ``spec().exit_codes``, and the codes every process inherits from
  aiida-core. No hand-written table: a new exit code appears in the docs the next time they are built.
* ``nanoos-process-specs``: the ``aiida-workchain`` / ``aiida-calcjob`` directive of ``aiida.sphinxext`` for every
  work chain or CalcJob entry point, and the docstring of every calcfunction.
* ``nanoos-config-schema``: a table of every key of each kind of configuration file, from the JSON schemas of
  :mod:`aiida_nanoos.schema` (the parsers' own allowed values, bounds and defaults).
* On ``config-inited``: an in-memory AiiDA profile (``aiida.sphinxext`` calls ``load_profile()``), and the notebooks
  of ``examples/notebooks`` copied into ``docs/notebooks`` (Sphinx reads documents only from its source folder).
"""

from __future__ import annotations

import inspect
import json
import re
import shutil
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

PACKAGE = "aiida_nanoos"
PROCESS_GROUPS = ("aiida.workflows", "aiida.calculations")


# ---------------------------------------------------------------------------------------------------------- helpers
def plugin_entry_points(group: str) -> list:
    """This package's entry points of ``group``, sorted by name."""
    return sorted(
        (ep for ep in entry_points(group=group) if ep.value.split(":")[0].split(".")[0] == PACKAGE),
        key=lambda ep: ep.name,
    )


def process_class(obj: Any):
    """The Process class behind an entry point: the class itself, or a process function's ``process_class``."""
    return obj if inspect.isclass(obj) else obj.process_class


def aiida_base(cls) -> type:
    """The aiida-core class whose exit codes ``cls`` inherits (CalcJob, WorkChain or Process)."""
    from aiida.engine import CalcJob, Process, WorkChain

    for base in (CalcJob, WorkChain):
        if issubclass(cls, base):
            return base
    return Process


def exit_code_rows(cls, skip: set[int]) -> list[tuple[int, str, str, bool]]:
    """(status, label, message, invalidates cache) of ``cls``'s exit codes whose status is not in ``skip``."""
    codes = cls.spec().exit_codes
    return sorted(
        (code.status, label, code.message, code.invalidates_cache)
        for label, code in codes.items()
        if code.status not in skip
    )


def table(headers: list[str], rows: list[list[nodes.Node | str]], widths: list[int], classes=()) -> nodes.table:
    """A docutils table; a cell is text or a node (literal text stays literal, so no markup is ever parsed)."""
    result = nodes.table(classes=list(classes))
    group = nodes.tgroup(cols=len(headers))
    result += group
    for width in widths:
        group += nodes.colspec(colwidth=width)
    head = nodes.thead()
    group += head
    head += _row(headers)
    body = nodes.tbody()
    group += body
    for cells in rows:
        body += _row(cells)
    return result


def _row(cells) -> nodes.row:
    row = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        paragraph = nodes.paragraph()
        paragraph += cell if isinstance(cell, nodes.Node) else nodes.Text(str(cell))
        entry += paragraph
        row += entry
    return row


def section(title: str, anchor: str) -> nodes.section:
    result = nodes.section(ids=[nodes.make_id(anchor)])
    result += nodes.title(text=title)
    return result


# ------------------------------------------------------------------------------------------------------ directives
class ExitCodesDirective(SphinxDirective):
    """Exit codes of every process of the plugin, from the process specs."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        from aiida.engine import CalcJob, Process, WorkChain

        bases = (CalcJob, WorkChain, Process)
        inherited = {base: {code.status for code in base.spec().exit_codes.values()} for base in bases}
        output: list[nodes.Node] = []
        without_own: list[str] = []
        for group in PROCESS_GROUPS:
            for ep in plugin_entry_points(group):
                cls = process_class(ep.load())
                base = aiida_base(cls)
                rows = exit_code_rows(cls, inherited[base])
                if not rows:
                    without_own.append(ep.name)
                    continue
                part = section(ep.name, f"exit-codes-{ep.name}")
                intro = nodes.paragraph()
                intro += nodes.literal(text=f"{cls.__module__}.{cls.__name__}")
                intro += nodes.Text(f" ({base.__name__}); also the codes of aiida-core's {base.__name__} below.")
                part += intro
                part += table(
                    ["status", "label", "message", "invalidates cache"],
                    [
                        [str(status), nodes.literal(text=label), message, "yes" if invalid else "no"]
                        for status, label, message, invalid in rows
                    ],
                    [8, 30, 60, 10],
                    classes=["nanoos-exit-codes"],
                )
                output.append(part)
        if without_own:
            part = section("Processes with only aiida-core's exit codes", "exit-codes-inherited-only")
            text = nodes.paragraph(text="These processes (mostly calcfunctions) define no exit code of their own: ")
            for index, name in enumerate(without_own):
                text += nodes.literal(text=name)
                text += nodes.Text(", " if index < len(without_own) - 1 else ".")
            part += text
            output.append(part)
        for base in (Process, WorkChain, CalcJob):
            below = {Process: set(), WorkChain: inherited[Process], CalcJob: inherited[Process]}[base]
            part = section(f"Inherited from aiida-core's {base.__name__}", f"exit-codes-aiida-{base.__name__}")
            rows = exit_code_rows(base, below)
            part += table(
                ["status", "label", "message", "invalidates cache"],
                [[str(s), nodes.literal(text=label), m, "yes" if i else "no"] for s, label, m, i in rows],
                [8, 30, 60, 10],
            )
            output.append(part)
        return output


class ProcessSpecsDirective(SphinxDirective):
    """Inputs, outputs and outline of every process of one entry-point group (``:group:`` option)."""

    option_spec = {"group": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        from aiida.engine import CalcJob, WorkChain

        group = self.options["group"]
        lines: list[str] = []
        functions: list[str] = []
        for ep in plugin_entry_points(group):
            obj = ep.load()
            if not inspect.isclass(obj):
                functions.append(f"{obj.__module__}.{obj.__name__}")
                continue
            kind = "aiida-workchain" if issubclass(obj, WorkChain) else "aiida-calcjob"
            if not issubclass(obj, (WorkChain, CalcJob)):
                kind = "aiida-process"
            lines += [f"``{ep.name}``", "-" * (len(ep.name) + 4), "", f".. {kind}:: {obj.__name__}"]
            lines += [f"   :module: {obj.__module__}", "   :hide-nondb-inputs:", ""]
        if functions:
            lines += ["Calcfunctions", "-------------", ""]
            lines += ["Each decision of a work chain is one of these nodes; their inputs and outputs are nodes.", ""]
            for name in functions:
                lines += [f".. autofunction:: {name}", ""]
        content = StringList(lines, source=f"<nanoos-process-specs {group}>")
        container = nodes.section()
        container.document = self.state.document
        self.state.nested_parse(content, 0, container, match_titles=True)
        return container.children


class ConfigSchemaDirective(SphinxDirective):
    """One table per configuration kind (every key, its type, whether it is required, its meaning, allowed values,
    default and bounds), generated from :func:`aiida_nanoos.schema.json_schema`."""

    def run(self) -> list[nodes.Node]:
        from aiida_nanoos.schema import json_schema, schema_kinds

        output: list[nodes.Node] = []
        for kind in schema_kinds():
            schema = json_schema(kind)
            part = section(kind, f"config-{kind}")
            if schema.get("description"):
                part += nodes.paragraph(text=schema["description"])
            rows = [
                [nodes.literal(text=path), type_of(spec), required, describe(spec)]
                for path, spec, required in walk_schema(schema)
            ]
            part += table(["key", "type", "required", "meaning"], rows, [28, 14, 8, 50], classes=["nanoos-config"])
            output.append(part)
        return output


def variants(spec: dict) -> list[dict]:
    """The alternatives of an ``anyOf`` / ``oneOf`` (or the schema itself)."""
    return list(spec.get("anyOf") or spec.get("oneOf") or [spec])


def walk_schema(schema: dict, prefix: str = "", depth: int = 0, seen: set[str] | None = None):
    """(dotted key, schema, 'yes'/'no'/'') of every key, depth first: nested mappings as ``a.b``, the items of a list
    as ``a[]``, and list items of several kinds (the dimensions of a space) as ``a[type=KIND]``."""
    seen = set() if seen is None else seen
    if depth > 6:
        return
    for variant in variants(schema):
        required = set(variant.get("required", []))
        for name, spec in (variant.get("properties") or {}).items():
            path = f"{prefix}{name}"
            if path not in seen and not (name == "type" and "const" in spec):
                seen.add(path)
                yield path, spec, "yes" if name in required else "no"
            yield from walk_children(spec, path, depth, seen)


def walk_children(spec: dict, path: str, depth: int, seen: set[str]):
    """The keys below one key: its own mapping(s), or those of its list items."""
    for variant in variants(spec):
        if variant.get("properties"):
            yield from walk_schema(variant, f"{path}.", depth + 1, seen)
        items = variant.get("items")
        if not isinstance(items, dict):
            continue
        kinds = variants(items)
        if len(kinds) > 1:
            for item in kinds:
                const = ((item.get("properties") or {}).get("type") or {}).get("const")
                item_path = f"{path}[type={const}]" if const else f"{path}[]"
                if const and item_path not in seen:
                    seen.add(item_path)
                    yield item_path, item, ""
                yield from walk_schema(item, f"{item_path}.", depth + 1, seen)
        elif items.get("properties"):
            yield from walk_schema(items, f"{path}[].", depth + 1, seen)


def type_of(spec: dict) -> str:
    """A short type: ``integer``, ``integer | null``, ``list of number``, ``one of`` (enumerations), ..."""
    if "const" in spec:
        return "constant"
    if "enum" in spec:
        return "one of"
    names: list[str] = []
    for variant in variants(spec):
        value = variant.get("type", "mapping" if "properties" in variant or "required" in variant else "any")
        for name in value if isinstance(value, list) else [value]:
            if name == "array":
                inner = variant.get("items", {}).get("type") if isinstance(variant.get("items"), dict) else None
                name = f"list of {' | '.join(inner) if isinstance(inner, list) else inner}" if inner else "list"
            elif name == "object":
                name = "mapping"
            if name not in names:
                names.append(name)
    return " | ".join(names)


#: JSON Schema keywords of bounds and how the table writes them.
BOUNDS = (
    ("minimum", ">="),
    ("exclusiveMinimum", ">"),
    ("maximum", "<="),
    ("exclusiveMaximum", "<"),
    ("minItems", "items >="),
    ("maxItems", "items <="),
    ("minLength", "length >="),
    ("maxLength", "length <="),
)


def describe(spec: dict) -> str:
    """Description, allowed values, bounds and default of one key, as one line of text."""
    parts = [spec.get("description") or spec.get("title") or ""]
    for variant in variants(spec):
        if "enum" in variant:
            parts.append("allowed: " + ", ".join("null" if v is None else str(v) for v in variant["enum"]))
        bounds = dict(variant)
        if "minItems" in bounds and bounds["minItems"] == bounds.get("maxItems"):
            parts.append(f"exactly {bounds.pop('minItems')} items")
            bounds.pop("maxItems")
        words = [f"{word} {bounds[key]}" for key, word in BOUNDS if key in bounds]
        if words:
            parts.append(", ".join(words))
    if "default" in spec:
        parts.append(f"default: {json.dumps(spec['default'])}")
    return "; ".join(dict.fromkeys(p for p in parts if p))


# ------------------------------------------------------------- help texts written for a terminal, shown as text
_LITERAL_SPAN = re.compile(r"(``[^`]+``|`[^`]+`)")
_RST_INLINE = re.compile(r"([\\*|]|_(?=\W|$)|`)")


def plain_text_as_rst(text: str) -> str:
    """reStructuredText that reads as the help text does in a terminal: `code` spans become literals, and the
    characters that would start inline markup (``*``, ``|``, a trailing ``_``, a lone backtick) are escaped, so a help
    string can never produce a warning or a dangling reference."""
    out = []
    for index, piece in enumerate(_LITERAL_SPAN.split(text)):
        if index % 2:
            out.append(f"``{piece.strip('`')}``")
        else:
            out.append(_RST_INLINE.sub(r"\\\1", piece))
    return "".join(out)


def sanitise_click_help(command, seen: set[int] | None = None) -> None:
    """Rewrite the help of ``command``, its parameters and sub-commands with :func:`plain_text_as_rst` (only in the
    process that builds the docs; sphinx-click parses help as reStructuredText, the CLI prints it as text)."""
    import click

    seen = set() if seen is None else seen
    if id(command) in seen:
        return
    seen.add(id(command))
    for attribute in ("help", "short_help", "epilog"):
        value = getattr(command, attribute, None)
        if isinstance(value, str):
            setattr(command, attribute, plain_text_as_rst(value))
    for param in command.params:
        if isinstance(getattr(param, "help", None), str):
            param.help = plain_text_as_rst(param.help)
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            if sub is not None:
                sanitise_click_help(sub, seen)


#: ``|x - y|`` in a docstring is an absolute value, which reStructuredText reads as a substitution reference.
_ABSOLUTE_VALUE = re.compile(r"(?<![\\|])\|(?=[^\s|])([^|\n]*?[^\s|\\])\|(?![_|])")


def escape_absolute_values(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """``autodoc-process-docstring``: keep ``|error|`` as written instead of an undefined substitution."""
    lines[:] = [_ABSOLUTE_VALUE.sub(r"\\|\1\\|", line) for line in lines]


def sanitise_cli(app: Sphinx) -> None:
    from aiida_nanoos.cli import cli

    sanitise_click_help(cli)


def sanitise_port_help() -> None:
    """``aiida.sphinxext`` parses each port's help with docutils on its own: give it the same plain-text treatment."""
    from aiida.sphinxext import process
    from docutils.core import publish_doctree

    def parse(text: str, *args, **kwargs):
        kwargs.setdefault("settings_overrides", {"report_level": 5, "halt_level": 5})
        document = publish_doctree(plain_text_as_rst(text), *args, **kwargs)
        # the directive puts the paragraph's children straight into a list item, where Sphinx's HTML writer accepts
        # no hyperlink (a URL in a help text): keep the URL as text
        for reference in list(document.findall(nodes.reference)):
            reference.replace_self(nodes.Text(reference.astext()))
        return document

    process.publish_doctree = parse


# ------------------------------------------------------------------------------------------------------- set-up
def load_documentation_profile(app: Sphinx, config) -> None:
    """An in-memory profile (nothing on disk, no broker): ``aiida.sphinxext`` calls ``load_profile()``."""
    from aiida.manage import get_manager
    from aiida.storage.sqlite_temp import SqliteTempBackend

    manager = get_manager()
    if manager.get_profile() is None:
        # autodoc walks every attribute of the Data classes, touching aiida-core's deprecated ones: not ours to fix
        profile = SqliteTempBackend.create_profile("nanoos-docs", options={"warnings.showdeprecations": False})
        manager.load_profile(profile, allow_switch=True)


NOTEBOOK_INDEX = """# Notebooks

Notebooks in `examples/notebooks/` of the repository, shown here as stored (the docs build does not run them;
`make test` executes each from top to bottom with small settings). Open them in Jupyter or AiiDAlab with the profile
of `make demo` loaded (`AIIDA_PATH=$PWD/.aiida`).

"""


def copy_notebooks(app: Sphinx, config) -> None:
    """Copy ``examples/notebooks/*.ipynb`` into ``docs/notebooks/`` (only when changed) and write its index page."""
    source = Path(app.srcdir).parent / "examples" / "notebooks"
    target = Path(app.srcdir) / "notebooks"
    target.mkdir(exist_ok=True)
    notebooks = sorted(source.glob("*.ipynb")) if source.is_dir() else []
    names = {path.name for path in notebooks}
    for stale in target.glob("*.ipynb"):
        if stale.name not in names:
            stale.unlink()
    for path in notebooks:
        copy = target / path.name
        if not copy.is_file() or copy.read_bytes() != path.read_bytes():
            shutil.copyfile(path, copy)
    if notebooks:
        body = "```{toctree}\n:maxdepth: 1\n\n" + "\n".join(p.stem for p in notebooks) + "\n```\n"
    else:
        body = "No notebook in `examples/notebooks/` in this version.\n"
    index = target / "index.md"
    text = NOTEBOOK_INDEX + body
    if not index.is_file() or index.read_text() != text:
        index.write_text(text)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", load_documentation_profile)
    app.connect("config-inited", copy_notebooks)
    app.connect("builder-inited", sanitise_cli)
    app.connect("autodoc-process-docstring", escape_absolute_values)
    sanitise_port_help()
    app.add_directive("nanoos-exit-codes", ExitCodesDirective)
    app.add_directive("nanoos-process-specs", ProcessSpecsDirective)
    app.add_directive("nanoos-config-schema", ConfigSchemaDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
