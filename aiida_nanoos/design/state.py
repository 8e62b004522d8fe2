"""The state of a design campaign, typed, so that a WorkChain can stop after any iteration and resume exactly.

:class:`CampaignState` holds the evaluated history (encoded points, objective values, iteration numbers), one
:class:`~aiida_nanoos.design.records.CandidateRecord` per candidate, the batch proposed and not yet recorded, the
stopping reason, the GP hyper-parameters (warm starts), the GA population, the property model's bookkeeping, the
evaluations of earlier campaigns it started from, and the random stream as ``seed`` + ``counter``: ``rng()``
returns ``default_rng([seed, counter])`` and increments the
counter, so the n-th draw after a restart is the n-th draw without one. ``to_dict()`` is plain JSON (a ``Dict``
node) with a ``schema_version``; ``from_dict()`` also reads the previous version (the optimiser history with
the campaign's records under ``extra``).

:class:`OptimizerHistory` is the part of it an optimiser sees (the Bayesian-optimisation step works on it alone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from aiida_nanoos.design.records import CandidateRecord

#: Version key of a state stored by the previous layout.
STATE_VERSION = 1
#: Version of :meth:`CampaignState.to_dict`; 1 is the previous layout (history + ``extra`` dict, key ``version``).
SCHEMA_VERSION = 2


@dataclass
class OptimizerHistory:
    """What an optimiser has seen: the evaluated points and values by iteration, the random stream (``seed`` +
    ``counter``) and the last GP hyper-parameters. :class:`CampaignState` extends it; the Bayesian-optimisation step
    (:func:`~aiida_nanoos.design.bo.suggest`) needs no more."""

    seed: int = 0
    counter: int = 0
    iteration: int = 0
    points: list[list[float]] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    iterations: list[int] = field(default_factory=list)
    gp_hyperparameters: dict[str, Any] | None = None  #: the one-objective GP (warm start)

    def rng(self) -> np.random.Generator:
        """A fresh generator for the next random decision (and advance the counter)."""
        rng = np.random.default_rng([int(self.seed), int(self.counter)])
        self.counter += 1
        return rng

    def record(self, points: np.ndarray | Sequence[Sequence[float]], values: Sequence[float | None]) -> None:
        """Append the evaluated batch of the current iteration and advance the iteration number.

        ``None`` or NaN marks a failed evaluation: kept in the history (it was paid for) but not used for fitting.
        """
        points = np.atleast_2d(np.asarray(points, dtype=float))
        if len(points) != len(values):
            raise ValueError(f"{len(points)} points but {len(values)} values")
        for p, v in zip(points, values, strict=True):
            self.points.append([float(x) for x in p])
            ok = v is not None and np.isfinite(float(v))
            self.values.append(float(v) if ok else None)
            self.iterations.append(self.iteration)
        self.iteration += 1

    def observed(self) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) of the successful evaluations, for fitting the GP."""
        ok = [i for i, v in enumerate(self.values) if v is not None]
        n_dims = len(self.points[0]) if self.points else 0
        X = np.asarray([self.points[i] for i in ok], dtype=float).reshape(len(ok), n_dims)
        return X, np.asarray([self.values[i] for i in ok], dtype=float)

    def iteration_values(self) -> list[list[float]]:
        """Objective values grouped by iteration (NaN for failures), the input of ConvergenceCriteria.check."""
        out: list[list[float]] = [[] for _ in range(self.iteration)]
        for it, v in zip(self.iterations, self.values, strict=True):
            out[it].append(float("nan") if v is None else v)
        return out


@dataclass
class PropertyModelBook:
    """What the campaign's property model (crystal-graph network) did so far: the model in use, when and on how many
    DFT labels it was last trained, every model used, and the per-iteration statistics."""

    model_uuid: str | None = None
    model: str | None = None
    model_name: str | None = None  #: the model's name without version (what a retraining stores the next version of)
    trained_iteration: int = 0
    trained_labels: int = 0
    n_trainings: int = 0
    models: list[str] = field(default_factory=list)
    iterations: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PropertyModelBook:
        data = {k: v for k, v in dict(data).items() if v is not None or k in ("model_uuid", "model", "model_name")}
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"property model bookkeeping: unknown keys {unknown}")
        return cls(**data)


#: ``extra`` keys of a version-1 state and the field of :class:`CampaignState` each became.
_V1_EXTRA = {
    "candidates": "candidates",
    "pending": "pending",
    "converged": "converged",
    "algorithm": "algorithm",
    "reference_point": "reference_point",
    "ga_told": "ga_told",
    "gp_hyperparameters": "gp_models",
    "surrogate": "property_model",
    "property_model": "property_model",
}


@dataclass
class CampaignState(OptimizerHistory):
    """Everything a campaign remembers between iterations (see the module docstring)."""

    gp_models: list[dict[str, Any]] | None = None  #: one GP per objective (multi-objective warm start)
    ga: dict[str, Any] | None = None
    ga_told: int = 0  #: records already told to the GA
    algorithm: str | None = None
    candidates: list[CandidateRecord] = field(default_factory=list)
    pending: list[CandidateRecord] = field(default_factory=list)
    converged: str | None = None
    reference_point: list[float] | None = None
    property_model: PropertyModelBook | None = None
    #: evaluations of earlier campaigns it started from (:func:`~aiida_nanoos.design.transfer.earlier_evaluations`)
    warm_start: list[dict[str, Any]] | None = None
    schema_version: int = SCHEMA_VERSION

    def book(self) -> PropertyModelBook:
        """The property model's bookkeeping (created on first use)."""
        if self.property_model is None:
            self.property_model = PropertyModelBook()
        return self.property_model

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (NaN where a candidate has no point; a new dict whose nested values are shared:
        :func:`~aiida_nanoos.design.campaign.dump_state` makes the database-safe copy)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["candidates"] = [r.to_dict() for r in self.candidates]
        out["pending"] = [r.to_dict() for r in self.pending]
        out["property_model"] = None if self.property_model is None else self.property_model.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CampaignState:
        """A stored state of this version or of version 1 (migrated: ``extra`` unpacked, ``surrogate`` ->
        ``property_model``); points stored with ``None`` (candidates without parameters) come back as NaN."""
        data = dict(data)
        if "schema_version" not in data:
            data = _migrate_v1(data)
        if data["schema_version"] != SCHEMA_VERSION:
            raise ValueError(
                f"campaign state: schema_version {data['schema_version']} not supported (expected {SCHEMA_VERSION})"
            )
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"campaign state: unknown keys {unknown}")
        data["points"] = [[float("nan") if x is None else float(x) for x in p] for p in data.get("points") or []]
        data["candidates"] = [CandidateRecord.from_dict(r) for r in data.get("candidates") or []]
        data["pending"] = [CandidateRecord.from_dict(r) for r in data.get("pending") or []]
        if data.get("property_model") is not None:
            data["property_model"] = PropertyModelBook.from_dict(data["property_model"])
        return cls(**data)


def _migrate_v1(data: dict[str, Any]) -> dict[str, Any]:
    version = data.pop("version", STATE_VERSION)
    if version != STATE_VERSION:
        raise ValueError(f"campaign state: version {version} not supported")
    extra = dict(data.pop("extra", None) or {})
    if "candidates" not in extra:
        raise ValueError("campaign state: no candidate history (not the state of a campaign)")
    unknown = sorted(set(extra) - set(_V1_EXTRA))
    if unknown:
        raise ValueError(f"campaign state: unknown keys {unknown} in extra")
    for key, value in extra.items():
        data[_V1_EXTRA[key]] = value
    data["ga_told"] = int(data.get("ga_told") or 0)
    data["schema_version"] = SCHEMA_VERSION
    return data
