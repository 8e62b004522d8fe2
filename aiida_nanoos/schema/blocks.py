"""Building blocks of the configuration schemas: one field, an object of fields, a dataclass's defaults, the
protocol names of a work chain, and the structure / electronic-type fields several kinds share."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from aiida_nanoos.common.checks import Bound

DRAFT = "http://json-schema.org/draft-07/schema#"
PROTOCOLS = Path(__file__).parent.parent / "workflows" / "protocols"
#: pw.x occupations: smearing for metals, fixed for insulators (aiida-quantumespresso's ElectronicType, any case).
ELECTRONIC_TYPES = ("metal", "insulator")


# ---------------------------------------------------------------------------------------------- building blocks
def field(rule: Bound | tuple | str | dict, description: str, default: Any = None, *, nullable: bool = False) -> dict:
    """One property: a :class:`Bound`, a tuple of allowed strings, a JSON type name or a ready schema."""
    if isinstance(rule, Bound):
        out = rule.json_schema()
    elif isinstance(rule, tuple):
        out = {"type": "string", "enum": list(rule)}
    elif isinstance(rule, str):
        out = {"type": rule}
    else:
        out = dict(rule)
    if nullable:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    out["description"] = description
    if default is not None:
        out["default"] = list(default) if isinstance(default, tuple) else default
    return out


def mapping(properties: dict[str, dict], description: str, required: tuple[str, ...] = ()) -> dict:
    """An object with exactly these keys (the parsers refuse unknown ones)."""
    out = {"type": "object", "description": description, "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = list(required)
    return out


def defaults(cls: type) -> dict[str, Any]:
    """The plain defaults of a dataclass's fields (what a key left out means)."""
    return {f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING}


def numbers(count: int | None, description: str) -> dict:
    out: dict[str, Any] = {"type": "array", "items": {"type": "number"}, "description": description}
    if count is not None:
        out.update(minItems=count, maxItems=count)
    return out


def protocol_names(workflow: str) -> tuple[str, ...]:
    """The protocols of a work chain, read from its protocol file (the names ``get_builder_from_protocol`` takes)."""
    return tuple(yaml.safe_load((PROTOCOLS / f"{workflow}.yaml").read_text())["protocols"])


STRUCTURE = {
    "description": "A file any ASE reader understands (path relative to the configuration file), the PK of a "
    "StructureData, or {bulk: ELEMENT, crystalstructure, a, cubic, repeat} passed to ase.build.bulk.",
    "anyOf": [{"type": "string"}, {"type": "integer", "minimum": 1}, {"type": "object", "required": ["bulk"]}],
}
ELECTRONIC_TYPE = {
    "type": "string",
    "enum": [case(name) for name in ELECTRONIC_TYPES for case in (str.lower, str.upper, str.capitalize)],
    "description": "metal (smeared occupations) or insulator (fixed occupations), in any case.",
}
