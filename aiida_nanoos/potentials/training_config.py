"""The training config of the ``nanoos-train`` script: what to fit, checked field by field (no AiiDA here).

A bad config raises :class:`ValueError` naming the field (``config.snap.twojmax ...``); the training CalcJob calls
the same :func:`parse_train_config` to refuse bad input before anything is submitted. The names of the files a
training run writes are here too, shared by the trainers (SNAP, MACE) and the CalcJob's parser.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ase import Atoms
from ase.data import atomic_numbers

from aiida_nanoos.common.checks import Bound, is_number

#: Descriptor types the trainer can fit (the potential node also knows ACE, NequIP, GAP files made elsewhere).
TRAINABLE_TYPES = ("SNAP", "qSNAP", "MACE")
#: Name of the file describing a trained potential, written next to its files.
METRICS_FILENAME = "metrics.json"
POTENTIAL_STEM = "potential"
COMMITTEE_FOLDER = "committee"

#: The numbers of a training config and their allowed ranges: :func:`parse_train_config` checks them, the JSON
#: schema of the config (:mod:`aiida_nanoos.common.schema`) states them.
SNAP_BOUNDS = {
    "twojmax": Bound(int, 0, 12),  # above 12 the descriptors are impractically many
    "rcutfac": Bound(float, 0.0, low_open=True),
    "rfac0": Bound(float, 0.0, 1.0, low_open=True),
    "rmin0": Bound(float, 0.0),
}
#: SNAP settings that are one number per element, and the 0/1 flags.
SNAP_LISTS = ("radelem", "wj")
SNAP_FLAGS = ("bzeroflag", "switchflag", "quadraticflag")
_SNAP_KEYS = {*SNAP_BOUNDS, *SNAP_LISTS, *SNAP_FLAGS}
TOP_BOUNDS = {"version": Bound(int, 1), "ridge_alpha": Bound(float, 0.0)}
WEIGHT_BOUNDS = {"energy": Bound(float, 0.0), "force": Bound(float, 0.0), "stress": Bound(float, 0.0)}
_WEIGHT_KEYS = {*WEIGHT_BOUNDS, "groups", "use_frame_weights"}
SOLVERS = ("svd", "ridge")
COMMITTEE_METHODS = ("bootstrap", "subsample", "hyperparameters")
COMMITTEE_BOUNDS = {"size": Bound(int, 2), "fraction": Bound(float, 0.0, 1.0, low_open=True), "seed": Bound(int, 0)}
#: How the potential pipeline splits the labelled frames: the held-out fraction and the seed of the split.
SPLIT_BOUNDS = {
    "validation_fraction": Bound(float, 0.0, 1.0, low_open=True, high_open=True),
    "split_seed": Bound(int, 0),
}
#: The ZBL reference: inner and outer radius of its switching region (Å).
ZBL_BOUNDS = {"inner": Bound(float, 0.0, low_open=True), "outer": Bound(float, 0.0, low_open=True)}
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
#: Integers from 1 (max_L and seed from 0), positive numbers, a validation fraction in (0, 1).
MACE_BOUNDS = {
    key: Bound(int, 0 if key in ("max_L", "seed") else 1)
    if isinstance(default, int)
    else Bound(float, 0.0, 1.0 if key == "valid_fraction" else None, low_open=True, high_open=True)
    for key, default in MACE_DEFAULTS.items()
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


def _checked(bound: Bound, value, name: str):
    """``value`` within ``bound`` as its kind, or the error naming ``config.<name>``."""
    problem = bound.problem(value)
    if problem:
        raise config_error(name, problem)
    return bound.kind(value)


def _numbers(value, name: str) -> list[float]:
    if not isinstance(value, (list, tuple)) or not all(is_number(v) for v in value):
        raise config_error(name, f"must be a list of finite numbers, got {value!r}")
    return [float(v) for v in value]


def _range(value, name: str) -> tuple[float, float] | None:
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(is_number(v) for v in value):
        raise config_error(name, f"must be [low, high] (finite numbers), got {value!r}")
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
    for key, bound in SNAP_BOUNDS.items():
        if snap.get(key) is not None or (key in snap and key not in ("rcutfac", "rmin0")):
            out[key] = _checked(bound, snap[key], f"{prefix}{key}")
    for key in SNAP_LISTS:
        if key in snap:
            out[key] = _numbers(snap[key], f"{prefix}{key}")
    for key in SNAP_FLAGS:
        if key in snap and (not isinstance(snap[key], (bool, int)) or snap[key] not in (0, 1)):
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
        config.version = _checked(TOP_BOUNDS["version"], data["version"], "version")
    if data.get("elements") is not None:
        elements = data["elements"]
        if (
            not isinstance(elements, (list, tuple))
            or not elements
            or any(not isinstance(e, str) or e not in atomic_numbers for e in elements)
        ):
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
    for key, bound in WEIGHT_BOUNDS.items():
        if key in weights:
            _checked(bound, weights[key], f"weights.{key}")
    groups = weights.get("groups") or {}
    if not isinstance(groups, dict):
        raise config_error("weights.groups", f"must map group names to [energy, force, stress], got {groups!r}")
    for group, values in groups.items():
        if len(_numbers(values, f"weights.groups.{group}")) != 3 or any(v < 0 for v in values):
            raise config_error(f"weights.groups.{group}", f"must be [energy, force, stress] >= 0, got {values!r}")
    config.weights = dict(weights)
    solver = data.get("solver", "svd")
    if not isinstance(solver, str) or solver not in SOLVERS:
        raise config_error("solver", f"must be one of {list(SOLVERS)}, got {solver!r}"[:400])
    config.solver = solver
    if "ridge_alpha" in data:
        config.ridge_alpha = _checked(TOP_BOUNDS["ridge_alpha"], data["ridge_alpha"], "ridge_alpha")
    config.reference = _check_reference(data.get("reference"))
    shift = data.get("energy_shift") or {}
    if not isinstance(shift, dict) or any(e not in atomic_numbers for e in shift):
        raise config_error("energy_shift", f"must map element symbols to eV per atom, got {shift!r}")
    for element in shift:
        _checked(Bound(), shift[element], f"energy_shift.{element}")
    config.energy_shift = {e: float(v) for e, v in shift.items()}
    config.committee = _check_committee(data.get("committee"))
    mace = data.get("mace") or {}
    if not isinstance(mace, dict):
        raise config_error("mace", f"must be a mapping, got {mace!r}")
    unknown = sorted(set(mace) - set(MACE_DEFAULTS))
    if unknown:
        raise config_error(f"mace.{unknown[0]}", f"is not a MACE setting; known: {sorted(MACE_DEFAULTS)}")
    config.mace = {key: _checked(MACE_BOUNDS[key], value, f"mace.{key}") for key, value in mace.items()}
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
        inner, outer = (
            _checked(ZBL_BOUNDS[key], reference[key], f"reference.{key}") if key in reference else default
            for key, default in (("inner", 4.0), ("outer", 4.8))
        )
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
    if not isinstance(method, str) or method not in COMMITTEE_METHODS:
        raise config_error("committee.method", f"must be one of {list(COMMITTEE_METHODS)}, got {method!r}"[:400])
    out = {"method": method, "seed": 0, "fraction": 0.8}
    for key in ("seed", "fraction"):
        if key in committee:
            out[key] = _checked(COMMITTEE_BOUNDS[key], committee[key], f"committee.{key}")
    if method == "hyperparameters":
        members = committee.get("members")
        if not isinstance(members, (list, tuple)) or len(members) < 2:
            raise config_error("committee.members", "must list at least 2 SNAP setting overrides")
        out["members"] = [_check_snap_settings(m, f"committee.members[{i}].") for i, m in enumerate(members)]
        out["size"] = len(members)
    else:
        out["size"] = (
            _checked(COMMITTEE_BOUNDS["size"], committee["size"], "committee.size") if "size" in committee else 4
        )
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
