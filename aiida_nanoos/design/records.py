"""One candidate of a design campaign, typed: :class:`CandidateRecord`, and what is read off a list of them
(ranking, best values, the Pareto front's members, the table rows of a summary, the history an external proposer
sees)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from ase import Atoms

from aiida_nanoos.design.objectives import CampaignObjective
from aiida_nanoos.design.pareto import non_dominated_sort
from aiida_nanoos.design.spaces import ParameterSpace, atoms_from_dict, atoms_to_dict

#: Status of a record: proposed and not yet recorded, evaluated, or failed (kept: it was paid for).
STATUSES = ("pending", "ok", "failed")
#: Where a recorded value came from: the evaluator (DFT) or the property model's prediction.
SOURCES = ("dft", "ml")


@dataclass
class CandidateRecord:
    """A proposed (``pending``) or evaluated (``ok`` / ``failed``) candidate of a campaign.

    ``parameters`` is its point of the space (None for a cell from the structure GA or an external proposer, which
    then has ``structure``); ``site_seed`` placed its substituted sites. After evaluation: ``properties``,
    ``raw`` formula values, ``objectives`` (with target-range distance), constraint ``margins``, ``feasible``,
    ``value`` (the first objective; None when failed, with ``error``), ``source`` and, when the property model
    predicted it, ``prediction`` ({value, uncertainty, model}) and the ``selection_reason``. ``cost`` is what its
    evaluation used (``wall_seconds``, ``cpu_seconds``) and the cell's cost features (``n_atoms``, ``n_kpoints``).
    """

    id: str
    iteration: int
    generation_method: str | None = None
    parents: list[str] = field(default_factory=list)
    parameters: dict[str, Any] | None = None
    site_seed: int | None = None
    formula: str | None = None
    acquisition: float | None = None
    rationale: str | None = None
    structure: dict[str, Any] | None = None
    uuid: str | None = None
    status: str = "pending"
    properties: dict[str, Any] | None = None
    raw: list[float] | None = None
    objectives: list[float] | None = None
    margins: list[float] | None = None
    feasible: bool | None = None
    value: float | None = None
    error: str | None = None
    source: str = "dft"
    prediction: dict[str, Any] | None = None
    selection_reason: str | None = None
    cost: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"candidate {self.id}: unknown status {self.status!r} (one of {list(STATUSES)})")
        if self.source not in SOURCES:
            raise ValueError(f"candidate {self.id}: unknown source {self.source!r} (one of {list(SOURCES)})")
        self.parents = list(self.parents or [])

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def good(self) -> bool:
        """Evaluated successfully and meets every constraint."""
        return self.status == "ok" and bool(self.feasible)

    @property
    def simulated(self) -> bool:
        """Paid for with the evaluator (DFT), rather than taken from the property model."""
        return self.source != "ml"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (a new dict; nested values are shared, :func:`~aiida_nanoos.design.campaign.dump_state`
        copies)."""
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CandidateRecord:
        data = dict(data)
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise ValueError(f"candidate record {data.get('id')}: unknown keys {unknown}")
        if data.get("source") is None:
            data.pop("source", None)
        return cls(**data)


_FIELDS = tuple(f.name for f in fields(CandidateRecord))


def candidate_id(iteration: int, index: int) -> str:
    """Stable, link-label-safe name of a candidate: ``i003c01`` is the second candidate of the third iteration.

    ``iteration`` counts from 0 as in the state; names and reports count iterations from 1.
    """
    return f"i{iteration + 1:03d}c{index:02d}"


def formula(atoms: Atoms) -> str:
    return atoms.get_chemical_formula(mode="hill", empirical=False)


def candidate_atoms(space: ParameterSpace, record: CandidateRecord) -> Atoms:
    """The cell of a recorded candidate: rebuilt from its parameters and site seed, or its stored structure."""
    if record.parameters is not None and space.is_structural:
        atoms = space.to_atoms(record.parameters, int(record.site_seed or 0))
    elif record.structure is not None:
        atoms = atoms_from_dict(record.structure)
    else:
        raise ValueError(f"candidate {record.id}: neither parameters of a structural space nor a structure")
    atoms.info["candidate_id"] = record.id
    return atoms


def n_simulated(records: Sequence[CandidateRecord]) -> int:
    return sum(1 for r in records if r.simulated)


def cpu_hours_used(records: Sequence[CandidateRecord]) -> float:
    """CPU hours the evaluations of ``records`` used (failed ones included: they were paid for)."""
    return sum(float((r.cost or {}).get("cpu_seconds") or 0.0) for r in records) / 3600.0


def paid_evaluations(records: Sequence[CandidateRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Cost features (atoms, k-points) and CPU seconds of the evaluations that reported a cost: what a cost model
    (:func:`aiida_nanoos.design.cost.predicted_costs`) is fitted to."""
    paid = [r.cost for r in records if r.cost and "n_atoms" in r.cost and r.cost.get("cpu_seconds")]
    features = np.asarray([[c["n_atoms"], c["n_kpoints"]] for c in paid], dtype=float).reshape(len(paid), 2)
    return features, np.asarray([c["cpu_seconds"] for c in paid], dtype=float)


def scores(records: Sequence[CandidateRecord], objective: CampaignObjective) -> np.ndarray:
    """(n, m) objective values oriented so that larger is better."""
    sign = np.array([1.0 if o.maximize else -1.0 for o in objective.objectives])
    return np.asarray([r.objectives for r in records], dtype=float).reshape(len(records), -1) * sign


def rank_records(records: Sequence[CandidateRecord], objective: CampaignObjective) -> list[CandidateRecord]:
    """Best first: feasible successful candidates, then infeasible ones, then failures.

    One objective: by value in its direction. Several: by Pareto front (non-dominated first), then by the first.
    """
    ok = [r for r in records if r.ok]
    failed = [r for r in records if not r.ok]
    out: list[CandidateRecord] = []
    for group in ([r for r in ok if r.feasible], [r for r in ok if not r.feasible]):
        if not group:
            continue
        S = scores(group, objective)
        if objective.multi:
            front_of = np.empty(len(group), dtype=int)
            for k, front in enumerate(non_dominated_sort(S, ["max"] * S.shape[1])):
                front_of[front] = k
            order = sorted(range(len(group)), key=lambda i: (front_of[i], -S[i, 0], group[i].id))
        else:
            order = sorted(range(len(group)), key=lambda i: (-S[i, 0], group[i].id))
        out.extend(group[i] for i in order)
    return out + failed


def best_value(records: Sequence[CandidateRecord], objective: CampaignObjective) -> float | list[float] | None:
    """Best feasible value among ``records`` (None if none); with several objectives, the best of each."""
    good = [r for r in records if r.good]
    if not good:
        return None
    best = []
    for j, o in enumerate(objective.objectives):
        values = [r.objectives[j] for r in good]
        best.append(float(max(values) if o.maximize else min(values)))
    return best if objective.multi else best[0]


def table_row(record: CandidateRecord, rank: int) -> dict[str, Any]:
    """A candidate in an iteration summary."""
    return {
        "rank": rank,
        "id": record.id,
        "uuid": record.uuid,
        "formula": record.formula,
        "generation_method": record.generation_method,
        "parents": list(record.parents),
        "status": record.status,
        "objectives": record.objectives,
        "feasible": record.feasible,
        "error": record.error,
    }


def best_candidates(
    records: Sequence[CandidateRecord], objective: CampaignObjective, top_n: int
) -> list[dict[str, Any]]:
    """The top ``top_n`` successful candidates with their properties (what the campaign reports as its result)."""
    ranked = [r for r in rank_records(records, objective) if r.ok][:top_n]
    return [
        {
            "rank": rank,
            "id": r.id,
            "uuid": r.uuid,
            "iteration": r.iteration,
            "formula": r.formula,
            "generation_method": r.generation_method,
            "parents": list(r.parents),
            "parameters": r.parameters,
            "objectives": r.objectives,
            "feasible": r.feasible,
            "properties": r.properties or {},
        }
        for rank, r in enumerate(ranked, start=1)
    ]


def history(
    records: Sequence[CandidateRecord], space: ParameterSpace, context_window: int | None = None
) -> list[dict[str, Any]]:
    """The evaluated candidates as plain JSON, newest last (what an external proposer sees)."""
    if context_window:
        records = records[-context_window:]
    out = []
    for r in records:
        entry = {
            "candidate_id": r.id,
            "iteration": r.iteration,
            "formula": r.formula,
            "generation_method": r.generation_method,
            "parameters": r.parameters,
            "status": r.status,
            "objectives": r.objectives,
            "feasible": r.feasible,
            "properties": r.properties,
        }
        if space.is_structural or r.structure is not None:
            entry["structure"] = atoms_to_dict(candidate_atoms(space, r))
        out.append(entry)
    return out
