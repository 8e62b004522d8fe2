"""JSON Schema (draft 7) of each kind of configuration file a user writes, built from the parsers' own tables.

``json_schema(kind)`` for ``kind`` in :func:`schema_kinds`: ``campaign`` (``aiida-nanoos campaign run``), ``label``
(``label run``), ``pipeline`` (``pipeline run``), ``potential_training`` (the ``config`` of ``nanoos.potential.train``,
also ``overrides.train.config`` of a pipeline) and ``model_training`` (the ``config`` of ``nanoos.model.train``, also
``config.property_model.training`` of a campaign). The allowed values (``ALGORITHMS``, ``EVALUATION_METHODS``, GA
mutation types, GP kernels, ...) and the bounds (the :class:`~aiida_nanoos.common.checks.Bound` tables) are imported
from the modules whose parsers check them, and the defaults are read from their dataclasses, so the schema cannot
drift from what is enforced; the descriptions are written here, for the configuration reference of the docs.

The parsers stay the authority: they also check relations between fields (``budget`` at least one batch, a
``target_range`` acquisition with a window, elements of the structure covered by the pseudopotentials) and refuse
NaN and infinities, which YAML can hold and JSON cannot. No AiiDA is imported here.

Modules: :mod:`.blocks` (one field, an object of fields, shared fields), :mod:`.training` (model and potential
training), :mod:`.campaign` (campaign files); label and pipeline files and the public functions are here.
"""

from __future__ import annotations

from typing import Any

from aiida_nanoos.common.checks import Bound
from aiida_nanoos.potentials import md_settings
from aiida_nanoos.potentials import training_config as potential_training
from aiida_nanoos.potentials.sampling import SamplingSpec
from aiida_nanoos.potentials.validation import CRITERIA_UNITS
from aiida_nanoos.schema.blocks import DRAFT, ELECTRONIC_TYPE, STRUCTURE, defaults, field, mapping, protocol_names
from aiida_nanoos.schema.campaign import campaign_schema
from aiida_nanoos.schema.training import model_training_schema, potential_training_schema


# ---------------------------------------------------------------------------------------------- label, pipeline
def sampling_schema() -> dict:
    own = defaults(SamplingSpec)
    text = {
        "count": "Configurations made from the parent structure.",
        "supercell": "Repetitions [na, nb, nc] of the parent (or one integer for all three).",
        "strain_max": "Largest component of the random symmetric strain.",
        "rattle_std": "Standard deviation of the Gaussian displacement of every atom (Å).",
        "seed": "Seed of the strains and displacements.",
        "include_parent": "The unperturbed supercell is the first configuration.",
    }
    types = {
        "count": {"type": "integer", "minimum": 1},
        "supercell": {"anyOf": [{"type": "integer", "minimum": 1},
                                {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 3,
                                 "maxItems": 3}]},
        "strain_max": {"type": "number", "minimum": 0},
        "rattle_std": {"type": "number", "minimum": 0},
        "seed": {"type": "integer", "minimum": 0},
        "include_parent": {"type": "boolean"},
    }  # fmt: skip
    properties = {name: field(types[name], text[name], own.get(name)) for name in SamplingSpec.FIELDS}
    return mapping(properties, "How configurations are derived from the structure (strain + rattle).", ("count",))


def label_schema() -> dict:
    properties = {
        "code": field("string", "pw.x code label.", "pw@localhost"),
        "structure": STRUCTURE,
        "sampling": sampling_schema(),
        "configurations": field("string", "A file of configurations to label instead (any format ASE reads)."),
        "protocol": field(protocol_names("label"), "DFT protocol."),
        "electronic_type": ELECTRONIC_TYPE,
        "overrides": field("object", "Overrides of the protocol's inputs (base: the PwBaseWorkChain's)."),
        "pseudo_family": field("string", "Label of the pseudopotential family (with cutoffs)."),
        "config_type": field("string", "Configuration type recorded with each frame."),
        "max_concurrent": field({"type": "integer", "minimum": 1}, "pw.x runs at once."),
        "max_failure_fraction": field({"type": "number", "minimum": 0, "maximum": 1}, "Failed runs tolerated."),
    }
    return mapping(properties, "DFT labelling of configurations (aiida-nanoos label run).")


def pipeline_schema() -> dict:
    md = {
        "ensemble": field(tuple(md_settings.ENSEMBLES), "Integrator: NVE, NVT (Nosé-Hoover) or NPT (isotropic)."),
        **{key: field(rule, key.replace("_", " ")) for key, rule in md_settings.MD_BOUNDS.items()},
        "atoms": field(md_settings.MD_ATOMS, "The labelled cell is repeated to at least this many atoms."),
        "max_temperature": field(md_settings.MAX_TEMPERATURE, "Temperature (K) above which the MD counts as blown up.",
                                 md_settings.DEFAULT_MAX_TEMPERATURE),
    }  # fmt: skip
    criteria = {key: field(Bound(float, 0.0, low_open=True), f"Largest held-out {key} ({unit}).")
                for key, unit in CRITERIA_UNITS.items()}  # fmt: skip
    overrides = mapping(
        {
            "label": mapping(
                {"protocol": field(protocol_names("label"), "DFT protocol."), "sampling": sampling_schema(),
                 "overrides": field("object", "Overrides of the label protocol's inputs.")},
                "The DFT labelling.",
            ),
            **{key: field(rule, f"{key.replace('_', ' ')} of the labelled frames")
               for key, rule in potential_training.SPLIT_BOUNDS.items()},
            "train": mapping({"config": potential_training_schema()}, "The fit."),
            "validation_criteria": mapping(criteria, "Held-out errors the potential must reach before MD."),
            "md": mapping(md, "The MD run with the potential."),
        },
        "Overrides of the protocol's inputs.",
    )  # fmt: skip
    properties = {
        "structure": STRUCTURE,
        "md_structure": STRUCTURE,
        "protocol": field(protocol_names("pipeline"), "Protocol of the pipeline."),
        "electronic_type": ELECTRONIC_TYPE,
        "codes": mapping({role: field("string", f"{role} code label.") for role in ("pw", "lmp", "train")}, "Codes."),
        "overrides": overrides,
    }
    return mapping(properties, "DFT labels -> ML potential -> validation -> MD (aiida-nanoos pipeline run).",
                   ("structure",))  # fmt: skip


_BUILDERS = {
    "campaign": campaign_schema,
    "label": label_schema,
    "pipeline": pipeline_schema,
    "potential_training": potential_training_schema,
    "model_training": model_training_schema,
}


def schema_kinds() -> tuple[str, ...]:
    """The kinds of configuration with a schema."""
    return tuple(_BUILDERS)


def json_schema(kind: str) -> dict:
    """The JSON Schema (draft 7) of one kind of configuration, with descriptions, types, allowed values, bounds."""
    if kind not in _BUILDERS:
        raise ValueError(f"no schema for {kind!r}; kinds: {list(_BUILDERS)}")
    return {"$schema": DRAFT, "title": f"aiida-nanoos {kind} configuration", **_BUILDERS[kind]()}


def schema_errors(kind: str, data: Any) -> list[str]:
    """Where ``data`` breaks the schema of ``kind``: one ``path: message`` per error (empty when it validates)."""
    import jsonschema

    validator = jsonschema.Draft7Validator(json_schema(kind))
    return [
        f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"[:400]
        for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    ]


def _allowed(sub: dict) -> str:
    """The allowed values of a field as a reader writes them: a list, or a range such as (0.0, 1.0]."""
    if "enum" in sub:
        return ", ".join(str(v) for v in sub["enum"] if v is not None)
    low = next(
        (f"{bracket}{sub[key]}" for key, bracket in (("minimum", "["), ("exclusiveMinimum", "(")) if key in sub), ""
    )
    high = next(
        (f"{sub[key]}{bracket}" for key, bracket in (("maximum", "]"), ("exclusiveMaximum", ")")) if key in sub), ""
    )
    return f"{low or '(-inf'}, {high or 'inf)'}" if low or high else ""


def _types(sub: dict) -> str:
    kinds = sub.get("type") or [option.get("type", "object") for option in sub.get("anyOf", [])] or "any"
    return kinds if isinstance(kinds, str) else " or ".join(dict.fromkeys(kinds))


def reference_rows(kind: str) -> list[dict[str, str]]:
    """The schema of ``kind`` flattened for a reference table: one row per field (dotted ``field``, ``type``,
    ``allowed`` values or range, ``default``, ``description``), nested fields after their parent."""
    rows: list[dict[str, str]] = []

    def walk(schema: dict, prefix: str) -> None:
        for key, sub in schema.get("properties", {}).items():
            default = "" if "default" not in sub else str(sub["default"])
            row = {"field": prefix + key, "type": _types(sub), "allowed": _allowed(sub), "default": default}
            rows.append({**row, "description": sub.get("description", "")})
            walk(sub, f"{prefix}{key}.")

    walk(json_schema(kind), "")
    return rows
