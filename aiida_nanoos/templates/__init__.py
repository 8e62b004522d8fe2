"""Maintained campaign templates: YAML files in the shape ``aiida-nanoos campaign run FILE`` reads, each opening with
a comment header that says what it searches, which evaluator it needs and what it costs.

They live here, as package data, so ``aiida-nanoos campaign template new NAME`` works from an installed wheel as well
as from a checkout. Reading them needs no AiiDA; the header is parsed from ``# key: text`` lines (continued by lines
that start with ``#`` and more spaces), so the file itself is the only place a template is described.
"""

from __future__ import annotations

import re
from pathlib import Path

#: The folder holding the template files (``NAME.yaml``).
TEMPLATE_FOLDER = Path(__file__).parent
#: Header keys every template must fill (``# searches: ...``); shown by ``campaign template list``.
HEADER_KEYS = ("title", "searches", "evaluator", "cost")

_HEADER_LINE = re.compile(r"^#\s?(\w[\w ]*?):\s+(.*)$")
_CONTINUATION = re.compile(r"^#\s{2,}(\S.*)$")


def template_names() -> list[str]:
    """Names of the templates, sorted."""
    return sorted(path.stem for path in TEMPLATE_FOLDER.glob("*.yaml"))


def template_path(name: str) -> Path:
    """The file of template ``name``; ``KeyError`` listing the names when there is none."""
    path = TEMPLATE_FOLDER / f"{name}.yaml"
    if not re.fullmatch(r"\w+", name) or not path.is_file():
        raise KeyError(f"no campaign template {name!r}; templates: {', '.join(template_names())}")
    return path


def template_text(name: str) -> str:
    """The template's YAML text, comments included (what ``template new`` writes)."""
    return template_path(name).read_text()


def template_header(name: str) -> dict[str, str]:
    """``{key: text}`` of the comment header (the lines before the first YAML line), keys lower case."""
    header: dict[str, str] = {}
    key = None
    for line in template_text(name).splitlines():
        if not line.startswith("#"):
            break
        continuation = _CONTINUATION.match(line)
        if continuation and key is not None:
            header[key] += " " + continuation.group(1).strip()
            continue
        match = _HEADER_LINE.match(line)
        if match:
            key = match.group(1).strip().lower()
            header[key] = match.group(2).strip()
        else:
            key = None
    return header


__all__ = ["HEADER_KEYS", "TEMPLATE_FOLDER", "template_header", "template_names", "template_path", "template_text"]
