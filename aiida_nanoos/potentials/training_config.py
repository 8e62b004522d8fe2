"""The training config of the ``nanoos-train`` script: what to fit, checked field by field (no AiiDA here).

A bad config raises :class:`ValueError` naming the field (``config.snap.twojmax ...``); the training CalcJob calls
the same :func:`parse_train_config` to refuse bad input before anything is submitted. The names of the files a
training run writes are here too, shared by the trainers (SNAP, MACE) and the CalcJob's parser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ase import Atoms
from ase.data import atomic_numbers

#: Descriptor types the trainer can fit (the potential node also knows ACE, NequIP, GAP files made elsewhere).
TRAINABLE_TYPES = ("SNAP", "qSNAP", "MACE")
#: Name of the file describing a trained potential, written next to its files.
METRICS_FILENAME = "metrics.json"
POTENTIAL_STEM = "potential"
COMMITTEE_FOLDER = "committee"

_SNAP_KEYS = {
    "twojmax": int,
    "rcutfac": float,
    "rfac0": float,
    "rmin0": float,
    "radelem": list,
    "wj": list,
    "bzeroflag": bool,
    "switchflag": bool,
    "quadraticflag": bool,
}
_WEIGHT_KEYS = {"energy", "force", "stress", "groups", "use_frame_weights"}
_COMMITTEE_METHODS = ("bootstrap", "subsample", "hyperparameters")
MACE_DEFAULTS = {
    "r_max": 4.5,
    "num_channels": 16,
    "max_L": 0,
    "correlation": 2,
    "num_interactions": 2,
    "max_num_epochs": 40,
    "batch_size": 2,
    "lr": 0.01,
    "energy_weight": 1.0,
    "forces_weight": 10.0,
    "seed": 0,
    "valid_fraction": 0.1,
}
_TOP_KEYS = {
    "descriptor_type",
    "name",
    "version",
    "elements",
    "snap",
    "weights",
    "solver",
    "ridge_alpha",
    "reference",
    "energy_shift",
    "committee",
    "mace",
    "temperature_range",
    "pressure_range",
}


@dataclass
class TrainConfig:
    """What to train: descriptor type and its settings, weights, solver, reference potential, committee.

    ``snap`` holds SNAP hyper-parameters (``twojmax``, ``rcutfac`` (Å for radelem 0.5; default from the frames'
    nearest-neighbour distance), ``rfac0``, ``rmin0``, ``radelem``, ``wj``, ``bzeroflag``, ``switchflag``);
    ``weights`` the energy (per atom) / force / stress row weights and per-group weights; ``reference`` either
    ``{"type": "zbl", "inner": 4.0, "outer": 4.8}`` or a LAMMPS ``{"pair_style": ..., "pair_coeff": [...]}``;
    ``committee`` ``{"size": K, "method": "bootstrap"|"subsample"|"hyperparameters", "fraction", "seed",
    "members": [{snap overrides}, ...]}`` for on-the-fly training; ``mace`` the MACE model and training settings.
    """

    descriptor_type: str = "SNAP"
    name: str = "potential"
    version: int = 1
    elements: tuple[str, ...] | None = None
    snap: dict = field(default_factory=dict)
    weights: dict = field(default_factory=dict)
    solver: str = "svd"
    ridge_alpha: float = 1.0e-6
    reference: dict | None = None
    energy_shift: dict = field(default_factory=dict)
    committee: dict | None = None
    mace: dict = field(default_factory=dict)
    temperature_range: tuple[float, float] | None = None
    pressure_range: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        return {
            "descriptor_type": self.descriptor_type,
            "name": self.name,
            "version": self.version,
            "elements": None if self.elements is None else list(self.elements),
            "snap": dict(self.snap),
            "weights": dict(self.weights),
            "solver": self.solver,
            "ridge_alpha": self.ridge_alpha,
            "reference": self.reference,
            "energy_shift": dict(self.energy_shift),
            "committee": self.committee,
            "mace": dict(self.mace),
            "temperature_range": None if self.temperature_range is None else list(self.temperature_range),
            "pressure_range": None if self.pressure_range is None else list(self.pressure_range),
        }


def config_error(name: str, message: str) -> ValueError:
    return ValueError(f"config.{name} {message}")


def _number(data: dict, key: str, prefix: str, kind=float, minimum: float | None = None, strict: bool = False):
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise config_error(f"{prefix}{key}", f"must be a number, got {value!r}")
    if kind is int and float(value) != int(value):
        raise config_error(f"{prefix}{key}", f"must be an integer, got {value!r}")
    value = kind(value)
    if minimum is not None and (value <= minimum if strict else value < minimum):
        relation = ">" if strict else ">="
        raise config_error(f"{prefix}{key}", f"must be {relation} {minimum}, got {value!r}")
    return value


def _range(value, name: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(isinstance(v, (int, float)) for v in value):
        raise config_error(name, f"must be [low, high], got {value!r}")
    low, high = float(value[0]), float(value[1])
    if low > high:
        raise config_error(name, f"must have low <= high, got {value!r}")
    return low, high


def _check_snap_settings(snap: dict, prefix: str) -> dict:
    if not isinstance(snap, dict):
        raise config_error(prefix.rstrip("."), f"must be a mapping, got {snap!r}")
    unknown = sorted(set(snap) - set(_SNAP_KEYS))
    if unknown:
        raise config_error(f"{prefix}{unknown[0]}", f"is not a SNAP setting; known: {sorted(_SNAP_KEYS)}")
    out = dict(snap)
    if "twojmax" in snap:
        out["twojmax"] = _number(snap, "twojmax", prefix, int, 0)
        if out["twojmax"] > 12:
            raise config_error(f"{prefix}twojmax", f"above 12 is impractical, got {out['twojmax']}")
    for key in ("rcutfac", "rmin0"):
        if key in snap and snap[key] is not None:
            out[key] = _number(snap, key, prefix, float, 0.0, strict=key == "rcutfac")
    if "rfac0" in snap:
        out["rfac0"] = _number(snap, "rfac0", prefix, float, 0.0, strict=True)
        if out["rfac0"] > 1.0:
            raise config_error(f"{prefix}rfac0", f"must lie in (0, 1], got {out['rfac0']}")
    for key in ("radelem", "wj"):
        if key in snap and (
            not isinstance(snap[key], (list, tuple)) or not all(isinstance(v, (int, float)) for v in snap[key])
        ):
            raise config_error(f"{prefix}{key}", f"must be a list of numbers (one per element), got {snap[key]!r}")
    for key in ("bzeroflag", "switchflag", "quadraticflag"):
        if key in snap and snap[key] not in (True, False, 0, 1):
            raise config_error(f"{prefix}{key}", f"must be true/false, got {snap[key]!r}")
    return out


def parse_train_config(data: dict) -> TrainConfig:
    """Check a config mapping field by field and return a :class:`TrainConfig` (``ValueError`` names the field)."""
    if not isinstance(data, dict):
        raise ValueError(f"config must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise config_error(unknown[0], f"is not a training setting; known: {sorted(_TOP_KEYS)}")
    config = TrainConfig()
    kind = data.get("descriptor_type", "SNAP")
    if kind not in TRAINABLE_TYPES:
        raise config_error("descriptor_type", f"must be one of {TRAINABLE_TYPES}, got {kind!r}")
    config.descriptor_type = kind
    if "name" in data:
        if not isinstance(data["name"], str) or not data["name"].strip():
            raise config_error("name", f"must be a non-empty string, got {data['name']!r}")
        config.name = data["name"]
    if "version" in data:
        config.version = _number(data, "version", "", int, 1)
    if data.get("elements") is not None:
        elements = data["elements"]
        if not isinstance(elements, (list, tuple)) or not elements or any(e not in atomic_numbers for e in elements):
            raise config_error("elements", f"must be a list of element symbols, got {elements!r}")
        if len(set(elements)) != len(elements):
            raise config_error("elements", f"must not repeat an element, got {elements!r}")
        config.elements = tuple(elements)
    config.snap = _check_snap_settings(data.get("snap") or {}, "snap.")
    weights = data.get("weights") or {}
    if not isinstance(weights, dict):
        raise config_error("weights", f"must be a mapping, got {weights!r}")
    unknown = sorted(set(weights) - _WEIGHT_KEYS)
    if unknown:
        raise config_error(f"weights.{unknown[0]}", f"is not a weight; known: {sorted(_WEIGHT_KEYS)}")
    for key in ("energy", "force", "stress"):
        if key in weights:
            _number(weights, key, "weights.", float, 0.0)
    for group, values in (weights.get("groups") or {}).items():
        if not isinstance(values, (list, tuple)) or len(values) != 3 or any(v < 0 for v in values):
            raise config_error(f"weights.groups.{group}", f"must be [energy, force, stress] >= 0, got {values!r}")
    config.weights = dict(weights)
    solver = data.get("solver", "svd")
    if solver not in ("svd", "ridge"):
        raise config_error("solver", f"must be 'svd' or 'ridge', got {solver!r}")
    config.solver = solver
    if "ridge_alpha" in data:
        config.ridge_alpha = _number(data, "ridge_alpha", "", float, 0.0)
    config.reference = _check_reference(data.get("reference"))
    shift = data.get("energy_shift") or {}
    if not isinstance(shift, dict) or any(e not in atomic_numbers for e in shift):
        raise config_error("energy_shift", f"must map element symbols to eV per atom, got {shift!r}")
    for element in shift:
        _number(shift, element, "energy_shift.", float)
    config.energy_shift = {e: float(v) for e, v in shift.items()}
    config.committee = _check_committee(data.get("committee"))
    mace = data.get("mace") or {}
    if not isinstance(mace, dict):
        raise config_error("mace", f"must be a mapping, got {mace!r}")
    unknown = sorted(set(mace) - set(MACE_DEFAULTS))
    if unknown:
        raise config_error(f"mace.{unknown[0]}", f"is not a MACE setting; known: {sorted(MACE_DEFAULTS)}")
    for key, default in MACE_DEFAULTS.items():
        if key in mace:
            kind_of = int if isinstance(default, int) else float
            minimum = 0.0 if key in ("max_L", "seed") else (0.0 if kind_of is float else 1)
            mace[key] = _number(mace, key, "mace.", kind_of, minimum, strict=kind_of is float and key != "seed")
    if "valid_fraction" in mace and not 0.0 < mace["valid_fraction"] < 1.0:
        raise config_error("mace.valid_fraction", f"must lie strictly between 0 and 1, got {mace['valid_fraction']}")
    config.mace = dict(mace)
    if kind == "MACE" and config.committee and config.committee["method"] == "hyperparameters":
        raise config_error("committee.method", "'hyperparameters' committees are for SNAP; use bootstrap/subsample")
    config.temperature_range = _range(data.get("temperature_range"), "temperature_range")
    config.pressure_range = _range(data.get("pressure_range"), "pressure_range")
    return config


def _check_reference(reference) -> dict | None:
    if reference is None:
        return None
    if not isinstance(reference, dict):
        raise config_error("reference", f"must be a mapping, got {reference!r}")
    if reference.get("type") == "zbl":
        unknown = sorted(set(reference) - {"type", "inner", "outer"})
        if unknown:
            raise config_error(f"reference.{unknown[0]}", "is not a ZBL setting; known: inner, outer")
        inner = _number(reference, "inner", "reference.", float, 0.0, strict=True) if "inner" in reference else 4.0
        outer = _number(reference, "outer", "reference.", float, 0.0, strict=True) if "outer" in reference else 4.8
        if inner >= outer:
            raise config_error("reference.inner", f"must be smaller than reference.outer ({inner} >= {outer})")
        return {"type": "zbl", "inner": inner, "outer": outer}
    if "pair_style" in reference:
        coeff = reference.get("pair_coeff", [])
        if not isinstance(reference["pair_style"], str) or not isinstance(coeff, (list, tuple)):
            raise config_error("reference", "needs pair_style (string) and pair_coeff (list of lines)")
        if any(not isinstance(line, str) for line in coeff):
            raise config_error("reference.pair_coeff", "must be a list of strings")
        return {"pair_style": reference["pair_style"], "pair_coeff": list(coeff)}
    raise config_error("reference", "must be {type: zbl, inner, outer} or {pair_style, pair_coeff}")


def _check_committee(committee) -> dict | None:
    if committee is None:
        return None
    if not isinstance(committee, dict):
        raise config_error("committee", f"must be a mapping, got {committee!r}")
    unknown = sorted(set(committee) - {"size", "method", "fraction", "seed", "members"})
    if unknown:
        raise config_error(
            f"committee.{unknown[0]}", "is not a committee setting; known: size, method, fraction, seed, members"
        )
    method = committee.get("method", "bootstrap")
    if method not in _COMMITTEE_METHODS:
        raise config_error("committee.method", f"must be one of {_COMMITTEE_METHODS}, got {method!r}")
    out = {"method": method, "seed": 0, "fraction": 0.8}
    if "seed" in committee:
        out["seed"] = _number(committee, "seed", "committee.", int, 0)
    if "fraction" in committee:
        out["fraction"] = _number(committee, "fraction", "committee.", float, 0.0, strict=True)
        if out["fraction"] > 1.0:
            raise config_error("committee.fraction", f"must lie in (0, 1], got {out['fraction']}")
    if method == "hyperparameters":
        members = committee.get("members")
        if not isinstance(members, (list, tuple)) or len(members) < 2:
            raise config_error("committee.members", "must list at least 2 SNAP setting overrides")
        out["members"] = [_check_snap_settings(m, f"committee.members[{i}].") for i, m in enumerate(members)]
        out["size"] = len(members)
    else:
        out["size"] = _number(committee, "size", "committee.", int, 2) if "size" in committee else 4
    return out


def frame_elements(frames: Sequence[Atoms], config: TrainConfig) -> tuple[str, ...]:
    """Elements of the potential: the config's list (checked to cover the frames) or the frames' elements by Z."""
    present = {symbol for atoms in frames for symbol in atoms.get_chemical_symbols()}
    if config.elements is not None:
        missing = sorted(present - set(config.elements))
        if missing:
            raise config_error("elements", f"lacks {missing}, present in the training frames")
        return tuple(config.elements)
    return tuple(sorted(present, key=lambda s: atomic_numbers[s]))


def with_smaller_batch(data: dict) -> tuple[dict | None, str]:
    """The config with MACE's ``mace.batch_size`` halved, and what changed; ``(None, why)`` where nothing can shrink.

    For a restart after the fit ran out of memory. SNAP and qSNAP have no batch: their fit is one least-squares solve
    over the descriptors of all frames, so the memory it needs is that of the training set.
    """
    config = parse_train_config(data)
    if config.descriptor_type != "MACE":
        return None, f"a {config.descriptor_type} fit has no batch size (one least-squares solve over all frames)"
    old = int(config.mace.get("batch_size", MACE_DEFAULTS["batch_size"]))
    if old <= 1:
        return None, "mace.batch_size is already 1"
    new = dict(data)
    new["mace"] = {**(data.get("mace") or {}), "batch_size": old // 2}
    return new, f"mace.batch_size {old} -> {old // 2}"
