"""Bookkeeping of a design campaign: its configuration, (multi-)objective, candidate records, ranking, convergence
and statistics — everything a campaign decides that is not the proposal itself (see :mod:`.proposers`).

The campaign's memory is one :class:`~aiida_nanoos.design.state.OptimizerState` (plain JSON, an AiiDA ``Dict``
per iteration). Besides the optimiser's history it holds, in ``state.extra``:

* ``candidates``: one record per evaluated candidate, aligned with ``state.points`` / ``state.values``
  (id, iteration, generation method, parent ids, parameters, formula, status, properties, objective values,
  feasibility; failed evaluations are kept with ``status='failed'`` and value ``None``);
* ``pending``: the candidates proposed in the current iteration and not yet recorded;
* ``converged``: the reason the campaign stopped (or ``None``).

Every function here is deterministic in its inputs, so a campaign that is stopped and resumed from any stored state
makes exactly the decisions it would have made without the interruption.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from ase import Atoms

from aiida_nanoos.common.jsonsafe import json_safe
from aiida_nanoos.design.convergence import ConvergenceCriteria
from aiida_nanoos.design.objectives import KNOWN_PROPERTIES, Constraint, Objective, get_objective
from aiida_nanoos.design.pareto import hypervolume, non_dominated_sort, pareto_mask
from aiida_nanoos.design.spaces import (
    Categorical,
    Integer,
    ParameterSpace,
    Substitution,
    atoms_from_dict,
    atoms_to_dict,
)
from aiida_nanoos.design.state import OptimizerState

#: Search algorithms a campaign knows; ``IMPLEMENTED_ALGORITHMS`` are the ones that can run today.
ALGORITHMS = ("random", "genetic", "bayesian_optimization", "active_learning", "external")
IMPLEMENTED_ALGORITHMS = ALGORITHMS
#: How candidates are evaluated: every candidate with the named evaluator ('dft'), by a surrogate only ('ml_only'),
#: or a surrogate prescreen with DFT on a fraction ('hybrid'). The last two need a surrogate (``config.surrogate``).
EVALUATION_METHODS = ("dft", "ml_only", "hybrid")
IMPLEMENTED_EVALUATION_METHODS = EVALUATION_METHODS
#: What needs the crystal-graph surrogate (``config.surrogate``).
SURROGATE_ALGORITHMS = ("active_learning",)
SURROGATE_EVALUATION_METHODS = ("ml_only", "hybrid")
#: Which candidates of a hybrid batch go to DFT: those whose sigma exceeds ``uncertainty_threshold`` (at most
#: ``dft_fraction`` of the batch if given), or the ``dft_fraction`` most uncertain ones.
DFT_TRIGGERS = ("uncertainty", "fraction")
#: Acquisition strategies of the active-learning proposer (:mod:`.active_learning`).
SURROGATE_STRATEGIES = ("uncertainty", "greedy_uncertainty", "expected_improvement", "diverse_uncertainty")

#: Spaces with at most this many distinct points are enumerated, so no candidate is ever proposed twice.
MAX_ENUMERATED_POINTS = 20000

_GENETIC_KEYS = {
    "representation",
    "population_size",
    "elite_fraction",
    "crossover_probability",
    "mutation_probability",
    "mutation_types",
    "mutation_scale",
    "max_displacement",
    "max_strain",
}
_EXTERNAL_KEYS = {
    "url",
    "api_key_env",
    "api_key_header",
    "api_key_prefix",
    "timeout",
    "context_window",
    "max_response_bytes",
}


def _positive_int(value: Any, where: str, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value or value < 1:
        raise ValueError(f"{where}: must be a positive integer, got {value!r}")
    return int(value)


def _number(value: Any, where: str, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where}: must be a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{low if low is not None else '-inf'}, {high if high is not None else 'inf'}]"
        raise ValueError(f"{where}: must lie in {bounds}, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------- surrogate
#: Keys of ``config.surrogate.training`` the campaign sets itself.
_TRAINING_OWN_KEYS = ("target", "name", "version")


@dataclass
class SurrogateSettings:
    """The crystal-graph surrogate of a campaign (``config.surrogate``).

    ``model`` names a stored ``nanoos.model`` (``"cgcnn_bandgap"``, ``"cgcnn_bandgap_v2"``, or a name plus
    ``version``). Without it the campaign trains its first model once ``min_labels`` DFT labels exist (proposing
    randomly and evaluating with DFT until then); ``training`` (the settings of the ``nanoos.train_model`` CalcJob:
    epochs, n_models, method, architecture, ...) is then required. With ``training`` set, the campaign retrains on
    every DFT label so far every ``retrain_every`` iterations and/or once ``retrain_min_new_labels`` new labels
    arrived (the new model gets the next version of ``name``, by default the model's name or ``cgcnn_<target>``).

    Active learning scores ``pool_size`` random candidates of the space per iteration and picks the batch with
    ``strategy`` (see :mod:`.active_learning`; ``exploration_weight`` weights sigma in ``greedy_uncertainty``).
    Hybrid evaluation sends to DFT the candidates whose sigma exceeds ``uncertainty_threshold`` (``dft_trigger:
    uncertainty``, at most ``dft_fraction`` of the batch if given) or the ``dft_fraction`` most uncertain ones
    (``dft_trigger: fraction``); the others keep the surrogate's value.
    """

    model: str | None = None
    version: int | None = None
    target: str | None = None
    name: str | None = None
    strategy: str = "greedy_uncertainty"
    exploration_weight: float = 1.0
    uncertainty_threshold: float | None = None
    dft_fraction: float | None = None
    dft_trigger: str = "uncertainty"
    retrain_every: int | None = None
    retrain_min_new_labels: int | None = None
    min_labels: int = 8
    pool_size: int = 64
    uncertainty_method: str | None = None
    n_samples: int = 30
    training: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        where = "config.surrogate"
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise ValueError(f"{where}.model: must be the name of a stored nanoos.model, got {self.model!r}")
        self.version = _positive_int(self.version, f"{where}.version", allow_none=True)
        for key in ("target", "name"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{where}.{key}: must be a non-empty string, got {value!r}")
        if self.strategy not in SURROGATE_STRATEGIES:
            raise ValueError(
                f"{where}.strategy: unknown strategy {self.strategy!r} (one of {list(SURROGATE_STRATEGIES)})"
            )
        self.exploration_weight = _number(self.exploration_weight, f"{where}.exploration_weight", low=0.0)
        if self.uncertainty_threshold is not None:
            self.uncertainty_threshold = _number(self.uncertainty_threshold, f"{where}.uncertainty_threshold", low=0.0)
        if self.dft_fraction is not None:
            self.dft_fraction = _number(self.dft_fraction, f"{where}.dft_fraction", low=0.0, high=1.0)
        if self.dft_trigger not in DFT_TRIGGERS:
            raise ValueError(f"{where}.dft_trigger: must be one of {list(DFT_TRIGGERS)}, got {self.dft_trigger!r}")
        self.retrain_every = _positive_int(self.retrain_every, f"{where}.retrain_every", allow_none=True)
        self.retrain_min_new_labels = _positive_int(
            self.retrain_min_new_labels, f"{where}.retrain_min_new_labels", allow_none=True
        )
        self.min_labels = _positive_int(self.min_labels, f"{where}.min_labels")
        if self.min_labels < 4:
            raise ValueError(f"{where}.min_labels: a model needs at least 4 labels to train, got {self.min_labels}")
        self.pool_size = _positive_int(self.pool_size, f"{where}.pool_size")
        if self.uncertainty_method not in (None, "ensemble", "mc_dropout"):
            raise ValueError(f"{where}.uncertainty_method: 'ensemble' or 'mc_dropout', got {self.uncertainty_method!r}")
        self.n_samples = _positive_int(self.n_samples, f"{where}.n_samples")
        if self.n_samples < 2:
            raise ValueError(f"{where}.n_samples: at least 2 passes, got {self.n_samples}")
        if self.training is not None:
            if not isinstance(self.training, Mapping):
                raise ValueError(f"{where}.training: must be a mapping of training settings")
            self.training = dict(self.training)
            own = sorted(set(self.training) & set(_TRAINING_OWN_KEYS))
            if own:
                raise ValueError(f"{where}.training: {own} are set by the campaign (use surrogate.target / name)")
            self.training_config("placeholder")  # validates with the trainer's own checks
        elif self.retrain_every is not None or self.retrain_min_new_labels is not None:
            raise ValueError(f"{where}.retrain_every: retraining needs training settings (surrogate.training)")

    @property
    def trains(self) -> bool:
        return self.training is not None

    def training_config(self, target: str, name: str | None = None, seed: int | None = None) -> dict[str, Any]:
        """The ``config`` of a ``nanoos.train_model`` CalcJob (validated by the trainer's own parser)."""
        from aiida_nanoos.models.training import parse_model_config

        config = {**(self.training or {}), "target": target}
        if name is not None:
            config["name"] = name
        if seed is not None and "seed" not in (self.training or {}):
            config["seed"] = int(seed)
        try:
            parse_model_config(config)
        except ValueError as exc:
            message = str(exc).replace("config.", "", 1) if str(exc).startswith("config.") else str(exc)
            raise ValueError(f"config.surrogate.training: {message}") from exc
        return config

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SurrogateSettings:
        data = dict(data)
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"config.surrogate: unknown keys {unknown} (allowed {sorted(cls.__dataclass_fields__)})")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------- configuration
@dataclass
class CampaignConfig:
    """How a campaign searches: the algorithm, the batch per iteration, the budget and the stopping rules.

    ``budget`` counts evaluations (DFT runs) over the whole campaign; ``patience`` / ``min_improvement`` stop it
    when the best value has not improved enough for that many iterations; ``target`` stops it once the best
    value reaches it. ``candidate_pool`` > 0 makes BO and random search pick from that many random points per
    iteration instead of optimising over the continuous space. ``bo``, ``genetic`` and ``external`` hold the
    settings of those algorithms (see :class:`~aiida_nanoos.design.bo.BOSettings`, :mod:`.search`,
    :mod:`.external_proposer`).
    """

    algorithm: str = "bayesian_optimization"
    batch_size: int = 4
    evaluation_method: str = "dft"
    budget: int | None = None
    max_iterations: int = 10
    patience: int | None = None
    min_improvement: float = 0.0
    target: float | None = None
    seed: int = 0
    top_n: int = 5
    candidate_pool: int = 0
    reference_point: list[float] | None = None
    bo: dict[str, Any] = field(default_factory=dict)
    genetic: dict[str, Any] = field(default_factory=dict)
    external: dict[str, Any] = field(default_factory=dict)
    surrogate: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"config.algorithm: unknown algorithm {self.algorithm!r} (one of {list(ALGORITHMS)})")
        if self.evaluation_method not in EVALUATION_METHODS:
            raise ValueError(
                f"config.evaluation_method: unknown {self.evaluation_method!r} (one of {list(EVALUATION_METHODS)})"
            )
        self.batch_size = _positive_int(self.batch_size, "config.batch_size")
        self.budget = _positive_int(self.budget, "config.budget", allow_none=True)
        self.max_iterations = _positive_int(self.max_iterations, "config.max_iterations")
        self.patience = _positive_int(self.patience, "config.patience", allow_none=True)
        self.top_n = _positive_int(self.top_n, "config.top_n")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"config.seed: must be a non-negative integer, got {self.seed!r}")
        if isinstance(self.candidate_pool, bool) or not isinstance(self.candidate_pool, int) or self.candidate_pool < 0:
            raise ValueError(f"config.candidate_pool: must be a non-negative integer, got {self.candidate_pool!r}")
        try:
            self.min_improvement = float(self.min_improvement)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config.min_improvement: must be a number, got {self.min_improvement!r}") from exc
        if not math.isfinite(self.min_improvement) or self.min_improvement < 0:
            raise ValueError(f"config.min_improvement: must be >= 0, got {self.min_improvement}")
        if self.target is not None and (isinstance(self.target, bool) or not isinstance(self.target, int | float)):
            raise ValueError(f"config.target: must be a number, got {self.target!r}")
        if self.budget is not None and self.budget < self.batch_size and self.evaluation_method == "dft":
            raise ValueError(f"config.budget: {self.budget} evaluations is less than one batch ({self.batch_size})")
        for name in ("bo", "genetic", "external"):
            if not isinstance(getattr(self, name), Mapping):
                raise ValueError(f"config.{name}: must be a mapping of settings")
            setattr(self, name, dict(getattr(self, name)))
        self.bo_settings()  # validates
        unknown = sorted(set(self.genetic) - _GENETIC_KEYS)
        if unknown:
            raise ValueError(f"config.genetic: unknown keys {unknown} (allowed {sorted(_GENETIC_KEYS)})")
        if self.genetic.get("representation", "auto") not in ("auto", "parameters", "structure"):
            raise ValueError(
                "config.genetic.representation: must be 'auto', 'parameters' or 'structure', "
                f"got {self.genetic['representation']!r}"
            )
        unknown = sorted(set(self.external) - _EXTERNAL_KEYS)
        if unknown:
            raise ValueError(f"config.external: unknown keys {unknown} (allowed {sorted(_EXTERNAL_KEYS)})")
        if self.algorithm == "external":
            from aiida_nanoos.design.proposers.external import ExternalSettings

            ExternalSettings.from_dict(self.external)  # validates URL scheme, timeout, ...
        if self.uses_surrogate:
            if self.surrogate is None:
                used = self.algorithm if self.algorithm in SURROGATE_ALGORITHMS else self.evaluation_method
                raise ValueError(
                    f"config.surrogate: {used!r} needs a surrogate: an existing model (surrogate.model) and/or "
                    "training settings (surrogate.training)"
                )
            if not isinstance(self.surrogate, Mapping):
                raise ValueError("config.surrogate: must be a mapping of settings")
            self.surrogate = dict(self.surrogate)
            self.surrogate_settings()  # validates
        elif self.surrogate is not None:
            raise ValueError(
                "config.surrogate: only used by algorithm 'active_learning' or evaluation_method 'ml_only' / 'hybrid'"
            )

    @property
    def uses_surrogate(self) -> bool:
        return self.algorithm in SURROGATE_ALGORITHMS or self.evaluation_method in SURROGATE_EVALUATION_METHODS

    def surrogate_settings(self) -> SurrogateSettings | None:
        """The validated :class:`SurrogateSettings` (None when the campaign uses no surrogate)."""
        if not self.uses_surrogate or self.surrogate is None:
            return None
        settings = SurrogateSettings.from_dict(self.surrogate)
        if self.evaluation_method in SURROGATE_EVALUATION_METHODS and settings.model is None and not settings.trains:
            raise ValueError(
                f"config.surrogate: evaluation_method {self.evaluation_method!r} needs a model (surrogate.model) or "
                "training settings (surrogate.training)"
            )
        if self.algorithm in SURROGATE_ALGORITHMS and settings.model is None and not settings.trains:
            raise ValueError(
                "config.surrogate: algorithm 'active_learning' needs a model (surrogate.model) or training settings "
                "(surrogate.training)"
            )
        if self.algorithm in SURROGATE_ALGORITHMS and settings.pool_size < self.batch_size:
            raise ValueError(
                f"config.surrogate.pool_size: {settings.pool_size} is smaller than the batch ({self.batch_size})"
            )
        if self.evaluation_method == "hybrid":
            if settings.dft_trigger == "uncertainty" and settings.uncertainty_threshold is None:
                raise ValueError("config.surrogate.uncertainty_threshold: required by dft_trigger 'uncertainty'")
            if settings.dft_trigger == "fraction" and settings.dft_fraction is None:
                raise ValueError("config.surrogate.dft_fraction: required by dft_trigger 'fraction'")
        return settings

    def bo_settings(self, target_range: tuple[float, float] | None = None) -> Any:
        """The :class:`~aiida_nanoos.design.bo.BOSettings` of this campaign (batch size from the campaign)."""
        from aiida_nanoos.design.bo import BOSettings

        data = dict(self.bo)
        data["batch_size"] = self.batch_size
        if data.get("acquisition") is None:
            data["acquisition"] = "RANGE" if target_range is not None else "UCB"
        if str(data["acquisition"]).upper() == "RANGE":
            if data.get("target_range") is None and target_range:
                data["target_range"] = tuple(target_range)
            # a believer's fantasy inside the window makes its neighbours *more* likely to be in it, and a batch piles
            # into one spot; a liar (the worst value seen) pushes the batch apart
            data.setdefault("batch_strategy", "constant_liar")
        if data.get("target_range") is not None:
            data["target_range"] = tuple(data["target_range"])
        for key in ("constraint_bounds", "batch_size"):
            if key in self.bo:
                raise ValueError(f"config.bo.{key}: set by the campaign (use config.batch_size / constraints)")
        try:
            return BOSettings.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"config.bo: {exc}") from exc

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> CampaignConfig:
        data = dict(data or {})
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"config: unknown keys {unknown} (allowed {sorted(cls.__dataclass_fields__)})")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def criteria(self, maximize: bool) -> ConvergenceCriteria:
        return ConvergenceCriteria(
            maximize=maximize,
            target=self.target,
            budget=self.budget,
            max_iterations=self.max_iterations,
            patience=self.patience,
            min_improvement=self.min_improvement,
        )


# ---------------------------------------------------------------------------------------------- objectives
@dataclass(frozen=True)
class CampaignObjective:
    """One objective, or several for a Pareto search, plus the property constraints every candidate must meet."""

    objectives: tuple[Objective, ...]
    constraints: tuple[Constraint, ...] = ()

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    @property
    def primary(self) -> Objective:
        return self.objectives[0]

    @property
    def maximize(self) -> bool:
        """Direction of the campaign's figure of merit (for several objectives: the hypervolume, maximised)."""
        return True if self.multi else self.primary.maximize

    @property
    def directions(self) -> list[str]:
        return ["max" if o.maximize else "min" for o in self.objectives]

    @property
    def properties(self) -> frozenset[str]:
        out: set[str] = set()
        for o in self.objectives:
            out |= o.properties
        for c in self.constraints:
            out |= c.properties
        return frozenset(out)

    @classmethod
    def from_spec(
        cls, spec: str | Mapping[str, Any], extra_constraints: Sequence[Any] = (), extra_properties: Sequence[str] = ()
    ) -> CampaignObjective:
        """From a name, a single-objective spec (see :func:`~aiida_nanoos.design.objectives.get_objective`) or
        ``{"objectives": [spec, spec, ...], "constraints": [...]}`` for several objectives at once."""
        names = tuple(KNOWN_PROPERTIES) + tuple(extra_properties)
        if isinstance(spec, Mapping) and "objectives" in spec:
            unknown = sorted(set(spec) - {"objectives", "constraints"})
            if unknown:
                raise ValueError(f"objective: unknown keys {unknown} next to 'objectives'")
            specs = spec["objectives"]
            if isinstance(specs, str | Mapping) or not specs:
                raise ValueError("objective.objectives: must be a non-empty list of objective specs")
            objectives = []
            for i, s in enumerate(specs):
                try:
                    objectives.append(get_objective(s, extra_properties))
                except ValueError as exc:
                    raise ValueError(f"objective.objectives[{i}]: {exc}") from exc
            top = spec.get("constraints") or ()
        else:
            try:
                objectives = [get_objective(spec, extra_properties)]
            except ValueError as exc:
                raise ValueError(f"objective: {exc}") from exc
            top = ()
        constraints: list[Constraint] = []
        for o in objectives:
            constraints.extend(o.constraints)
        for where, items in (("objective.constraints", top), ("constraints.properties", extra_constraints)):
            if isinstance(items, str | Mapping):
                raise ValueError(f"{where}: must be a list of constraints")
            for i, c in enumerate(items):
                try:
                    constraints.append(Constraint.from_spec(c, names))
                except ValueError as exc:
                    raise ValueError(f"{where}[{i}]: {exc}") from exc
        return cls(tuple(objectives), tuple(constraints))

    def evaluate(self, properties: Mapping[str, Any]) -> dict[str, Any]:
        """Objective values of one candidate: ``raw`` formula values, ``values`` (with target-range distance),
        constraint ``margins`` (>= 0 satisfied) and ``feasible``. ``ValueError`` when a property is missing or not
        a finite number (the evaluation is then recorded as failed)."""
        needed = sorted(self.properties)
        missing = [p for p in needed if p not in properties]
        if missing:
            raise ValueError(f"the evaluator did not return {missing}")
        numbers = {}
        for p in needed:
            value = properties[p]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"property {p!r} is not a finite number: {value!r}")
            numbers[p] = float(value)
        raw = [float(o.expression.evaluate(numbers)) + 0.0 for o in self.objectives]
        values = [float(o.value(numbers)) + 0.0 for o in self.objectives]  # + 0.0: no "-0" inside a target window
        if not all(math.isfinite(v) for v in raw + values):
            raise ValueError(f"objective is not finite for properties {numbers}")
        margins = [float(c.margin(numbers)) for c in self.constraints]
        return {"raw": raw, "values": values, "margins": margins, "feasible": all(m >= 0 for m in margins)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "objectives": [o.to_dict() for o in self.objectives],
            "constraints": [c.source for c in self.constraints],
            "directions": self.directions,
        }


# ---------------------------------------------------------------------------------------------- the space
def apply_constraints(space_spec: Mapping[str, Any], constraints: Mapping[str, Any] | None) -> dict[str, Any]:
    """The search space with the campaign's element and structure constraints merged in (they take precedence).

    ``constraints`` has the keys of the original design: ``allowed_elements``, ``forbidden_elements``,
    ``max_num_elements``, ``min_atoms_per_cell``, ``max_atoms_per_cell`` and ``properties`` (a list of property
    constraints such as ``"bandgap >= 1.0"`` or ``{"property": "stability_score", "min": 0.7}``).
    """
    spec = copy.deepcopy(dict(space_spec))
    constraints = dict(constraints or {})
    element_keys = ("allowed_elements", "forbidden_elements", "max_num_elements")
    structure_keys = ("min_atoms_per_cell", "max_atoms_per_cell")
    unknown = sorted(set(constraints) - set(element_keys) - set(structure_keys) - {"properties"})
    if unknown:
        raise ValueError(
            f"constraints: unknown keys {unknown} (allowed {sorted([*element_keys, *structure_keys, 'properties'])})"
        )
    for keys, section in ((element_keys, "element_constraints"), (structure_keys, "structure_constraints")):
        chosen = {k: constraints[k] for k in keys if k in constraints}
        if chosen:
            spec[section] = {**dict(spec.get(section) or {}), **chosen}
    return spec


def load_space(space_spec: Mapping[str, Any], constraints: Mapping[str, Any] | None = None) -> ParameterSpace:
    """The :class:`ParameterSpace` of a campaign; errors are prefixed ``search_space`` (or name the constraint)."""
    if not isinstance(space_spec, Mapping):
        raise ValueError("search_space: must be a mapping with 'dimensions' (and 'base_structure' for structures)")
    merged = apply_constraints(space_spec, constraints)
    try:
        return ParameterSpace.from_dict(merged)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"search_space: {exc}") from exc


def _finite_values(dim: Any) -> list[Any] | None:
    if isinstance(dim, Categorical):
        return list(dim.choices)
    if isinstance(dim, Integer):
        return list(range(dim.low, dim.high + 1))
    if isinstance(dim, Substitution) and dim.n_sites > 0:
        lo, hi = dim.fraction
        ks = range(math.ceil(lo * dim.n_sites - 1e-9), math.floor(hi * dim.n_sites + 1e-9) + 1)
        # no substituted site: the same cell whatever the dopant, so one point (with the first dopant)
        return [
            {"element": e, "fraction": k / dim.n_sites} for k in ks for e in dim.dopants if k > 0 or e == dim.dopants[0]
        ]
    return None


def count_points(space: ParameterSpace) -> int | None:
    """Number of distinct points of a space without continuous dimensions (``None`` when it is continuous)."""
    total = 1
    for d in space.dimensions:
        values = _finite_values(d)
        if values is None:
            return None
        total *= len(values)
    return total


def enumerate_points(space: ParameterSpace) -> list[dict[str, Any]] | None:
    """Every feasible point of a finite space (``None`` if continuous or larger than MAX_ENUMERATED_POINTS)."""
    n = count_points(space)
    if n is None or n > MAX_ENUMERATED_POINTS:
        return None
    grids = [_finite_values(d) for d in space.dimensions]
    points = [dict(zip(space.names, combo, strict=True)) for combo in itertools.product(*grids)]
    return [p for p in points if not space.violations(p)]


def space_elements(space: ParameterSpace) -> list[str]:
    """Every element a candidate of this space can contain: the base cell's, the dopants, and the allowed elements
    (what the evaluators' cutoffs and elemental references must cover)."""
    out: set[str] = set()
    if space.base_structure is not None:
        out |= set(space.base_structure.get_chemical_symbols())
    for d in space.dimensions:
        if isinstance(d, Substitution):
            out |= set(d.dopants)
    if space.element_constraints.allowed is not None:
        out |= set(space.element_constraints.allowed)
    return sorted(out - set(space.element_constraints.forbidden))


def placeholder_atoms(space: ParameterSpace) -> Atoms:
    """A cell holding every element of :func:`space_elements`, to check an evaluator's inputs before running."""
    if space.base_structure is None:
        raise ValueError("search_space.base_structure: the evaluator evaluates structures; give a base structure")
    atoms = space.base_structure.copy()
    missing = [e for e in space_elements(space) if e not in atoms.get_chemical_symbols()]
    for i, element in enumerate(missing):
        atoms += Atoms(element, positions=[[0.1 * (i + 1)] * 3])
    return atoms


def validate_pool(space: ParameterSpace, config: CampaignConfig) -> None:
    """Reject a batch that can never be filled: larger than the candidate pool or than a finite space."""
    if config.candidate_pool and config.batch_size > config.candidate_pool:
        raise ValueError(
            f"config.batch_size: {config.batch_size} is larger than the candidate pool of {config.candidate_pool}"
        )
    n = count_points(space)
    if n is not None and config.batch_size > n:
        raise ValueError(
            f"config.batch_size: {config.batch_size} is larger than the pool of {n} distinct candidates of the "
            "search space"
        )


def validate_campaign(
    space_spec: Mapping[str, Any],
    objective_spec: str | Mapping[str, Any],
    config_spec: Mapping[str, Any] | None,
    constraints: Mapping[str, Any] | None = None,
) -> tuple[ParameterSpace, CampaignObjective, CampaignConfig]:
    """Everything a campaign needs, validated together; every ``ValueError`` names the offending field."""
    space = load_space(space_spec, constraints)
    objective = CampaignObjective.from_spec(objective_spec, (constraints or {}).get("properties") or ())
    config = CampaignConfig.from_dict(config_spec)
    validate_pool(space, config)
    if objective.multi and config.algorithm == "genetic":
        raise ValueError("config.algorithm: 'genetic' optimises one objective; use 'bayesian_optimization' or 'random'")
    if config.reference_point is not None and len(config.reference_point) != len(objective.objectives):
        raise ValueError(
            f"config.reference_point: needs {len(objective.objectives)} values, one per objective, "
            f"got {config.reference_point}"
        )
    if config.algorithm == "genetic" and representation(space, config) == "structure" and not space.is_structural:
        raise ValueError("config.genetic.representation: 'structure' needs a search_space.base_structure")
    config.bo_settings(objective.primary.target_range)
    if config.uses_surrogate:
        validate_surrogate(objective, config)
    return space, objective, config


def representation(space: ParameterSpace, config: CampaignConfig) -> str:
    """'structure' (GA on cells: swap_element / shift_atom / change_lattice) or 'parameters' (GA on points)."""
    chosen = config.genetic.get("representation", "auto")
    if chosen == "auto":
        return "structure" if space.is_structural else "parameters"
    return chosen


# ---------------------------------------------------------------------------------------------- surrogate
def surrogate_target(objective: CampaignObjective, settings: SurrogateSettings) -> str:
    """The property the surrogate predicts: ``surrogate.target`` or the one property of the primary objective."""
    if settings.target is not None:
        return settings.target
    props = sorted(objective.primary.expression.properties)
    if len(props) != 1:
        raise ValueError(
            f"config.surrogate.target: the objective depends on {props}; name the property the surrogate predicts"
        )
    return props[0]


def validate_surrogate(objective: CampaignObjective, config: CampaignConfig) -> None:
    """What the surrogate can do for this objective: one objective, a single predicted property, and for ML
    evaluations every property the objective needs."""
    settings = config.surrogate_settings()
    used = config.algorithm if config.algorithm in SURROGATE_ALGORITHMS else config.evaluation_method
    if objective.multi:
        raise ValueError(f"objective: {used!r} with the surrogate optimises one objective, not several")
    target = surrogate_target(objective, settings)
    if config.evaluation_method in SURROGATE_EVALUATION_METHODS:
        missing = sorted(objective.properties - {target})
        if missing:
            raise ValueError(
                f"objective: needs {missing}, which evaluation_method {config.evaluation_method!r} cannot take from "
                f"the surrogate (it predicts {target!r} only)"
            )
    if (
        config.algorithm in SURROGATE_ALGORITHMS
        and settings.strategy == "expected_improvement"
        and objective.primary.target_range is not None
    ):
        raise ValueError(
            "config.surrogate.strategy: 'expected_improvement' needs a maximise/minimise objective; use "
            "'greedy_uncertainty' for a target range"
        )


def is_simulated(record: Mapping[str, Any]) -> bool:
    """Whether a candidate was paid for with the evaluator (DFT), rather than taken from the surrogate."""
    return record.get("source", "dft") != "ml"


def n_simulated(records: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for r in records if is_simulated(r))


def training_labels(state: OptimizerState, target: str) -> dict[str, dict[str, Any]]:
    """Every DFT label so far: candidate id -> {uuid, value} (successful, simulated, finite target property)."""
    out = {}
    for r in state.extra.get("candidates") or []:
        value = (r.get("properties") or {}).get(target)
        if r["status"] != "ok" or not is_simulated(r) or isinstance(value, bool) or r.get("uuid") is None:
            continue
        if isinstance(value, int | float) and math.isfinite(value):
            out[r["id"]] = {"uuid": r["uuid"], "value": float(value)}
    return out


def surrogate_state(state: OptimizerState) -> dict[str, Any]:
    """The surrogate's bookkeeping in the state (model in use, when it was trained, per-iteration statistics)."""
    return state.extra.setdefault(
        "surrogate",
        {
            "model_uuid": None,
            "model": None,
            "trained_iteration": 0,
            "trained_labels": 0,
            "models": [],
            "iterations": [],
        },
    )


def training_due(
    state: OptimizerState, objective: CampaignObjective, config: CampaignConfig, has_model: bool
) -> str | None:
    """Why the surrogate should be (re)trained before this iteration, or None: the first model once ``min_labels``
    DFT labels exist, then every ``retrain_every`` iterations and/or after ``retrain_min_new_labels`` new labels
    (never without a new label)."""
    settings = config.surrogate_settings()
    if settings is None or not settings.trains:
        return None
    labels = len(training_labels(state, surrogate_target(objective, settings)))
    if labels < settings.min_labels:
        return None
    info = state.extra.get("surrogate") or {}
    if not has_model:
        return f"first model ({labels} DFT labels)"
    new = labels - int(info.get("trained_labels") or 0)
    if new <= 0:
        return None
    since = state.iteration - int(info.get("trained_iteration") or 0)
    if settings.retrain_every is not None and since >= settings.retrain_every:
        return f"{since} iterations since the last training ({new} new labels)"
    if settings.retrain_min_new_labels is not None and new >= settings.retrain_min_new_labels:
        return f"{new} new DFT labels"
    return None


def trained_model_name(settings: SurrogateSettings, target: str, current: str | None = None) -> str:
    """Name of the models a campaign trains: ``surrogate.name``, else the name of the model in use, else
    ``cgcnn_<target>`` (each training stores the next version of it)."""
    if settings.name:
        return settings.name
    if current:
        return current
    if settings.model:
        import re

        return re.sub(r"_v\d+$", "", settings.model)
    return f"cgcnn_{target}"


def _best_label(state: OptimizerState, objective: CampaignObjective, target: str) -> float | None:
    values = [v["value"] for v in training_labels(state, target).values()]
    if not values:
        return None
    return max(values) if objective.primary.maximize else min(values)


def selection_settings(
    state: OptimizerState, objective: CampaignObjective, config: CampaignConfig, n: int
) -> dict[str, Any]:
    """Settings of ``select_for_simulation`` for an active-learning batch of ``n``: the strategy pointed at the
    objective (maximise / minimise: direction; target range: its centre for ``greedy_uncertainty``)."""
    settings = config.surrogate_settings()
    target = surrogate_target(objective, settings)
    primary = objective.primary
    out: dict[str, Any] = {
        "strategy": settings.strategy,
        "budget": int(n),
        "exploration_weight": settings.exploration_weight,
        "direction": "max" if primary.maximize else "min",
    }
    if primary.target_range is not None:
        out["target_value"] = 0.5 * (primary.target_range[0] + primary.target_range[1])
    if settings.strategy == "expected_improvement":
        best = _best_label(state, objective, target)
        if best is None:  # a pre-trained model and no label yet: nothing to improve on, explore instead
            out["strategy"] = "uncertainty"
        else:
            out["best_observed"] = best
    return out


def budget_left(state: OptimizerState, config: CampaignConfig) -> int | None:
    """DFT evaluations still allowed (None without a budget)."""
    if config.budget is None:
        return None
    return max(0, config.budget - n_simulated(state.extra.get("candidates") or []))


def hybrid_settings(state: OptimizerState, config: CampaignConfig, n: int) -> dict[str, Any]:
    """Settings of ``select_for_simulation`` choosing which of a hybrid batch of ``n`` go to DFT (by total sigma,
    the honest error bar of the value a candidate would otherwise keep), within the DFT budget."""
    settings = config.surrogate_settings()
    cap = n if settings.dft_fraction is None else int(math.ceil(settings.dft_fraction * n - 1e-9))
    out: dict[str, Any] = {"strategy": "uncertainty", "budget": int(cap), "uncertainty": "total"}
    if settings.dft_trigger == "uncertainty":
        out["min_uncertainty"] = settings.uncertainty_threshold
        out["confidence_threshold"] = settings.uncertainty_threshold
    if config.budget is not None:
        out["simulation_budget"] = {"total": config.budget, "used": config.budget - budget_left(state, config)}
    return out


def ml_properties(target: str, value: float, uncertainty: float, model: str | None) -> dict[str, Any]:
    """The properties of a candidate the surrogate evaluated (recorded like an evaluator's)."""
    return {target: float(value), "uncertainty": float(uncertainty), "source": "ml", "model": model}


# ---------------------------------------------------------------------------------------------- candidates
def candidate_id(iteration: int, index: int) -> str:
    """Stable, link-label-safe name of a candidate: ``i003c01`` is the second candidate of the third iteration.

    ``iteration`` counts from 0 as in the optimiser state; names and reports count iterations from 1.
    """
    return f"i{iteration + 1:03d}c{index:02d}"


def formula(atoms: Atoms) -> str:
    return atoms.get_chemical_formula(mode="hill", empirical=False)


def candidate_atoms(space: ParameterSpace, record: Mapping[str, Any]) -> Atoms:
    """The cell of a recorded candidate: rebuilt from its parameters and site seed, or its stored structure."""
    if record.get("parameters") is not None and space.is_structural:
        atoms = space.to_atoms(record["parameters"], int(record.get("site_seed") or 0))
    elif record.get("structure") is not None:
        atoms = atoms_from_dict(record["structure"])
    else:
        raise ValueError(f"candidate {record.get('id')}: neither parameters of a structural space nor a structure")
    atoms.info["candidate_id"] = record.get("id")
    return atoms


def dump_state(state: OptimizerState) -> dict[str, Any]:
    """The state as database-safe JSON (see :func:`load_state`)."""
    return json_safe(state.to_dict())


def load_state(data: Mapping[str, Any]) -> OptimizerState:
    """Inverse of :func:`dump_state`: missing coordinates of candidates without parameters come back as NaN."""
    state = OptimizerState.from_dict(data)
    state.points = [[float("nan") if x is None else float(x) for x in p] for p in state.points]
    return state


def new_state(config: CampaignConfig) -> OptimizerState:
    return OptimizerState(seed=config.seed, extra={"candidates": [], "pending": [], "converged": None})


def encoded_point(space: ParameterSpace, parameters: Mapping[str, Any] | None) -> list[float]:
    """Encoded parameters, or NaN when a candidate has none (a structure from the GA or an external agent)."""
    if parameters is None:
        return [float("nan")] * space.n_encoded
    return space.encode(parameters)[0].tolist()


def record_results(
    state: OptimizerState,
    space: ParameterSpace,
    objective: CampaignObjective,
    config: CampaignConfig,
    properties: Mapping[str, Mapping[str, Any]],
    failures: Mapping[str, str],
    elapsed: Mapping[str, float] | None = None,
    surrogate: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Record the evaluated batch (``properties`` by candidate id; ``failures`` id -> reason) and return the
    iteration summary. A candidate whose evaluation failed, or whose properties cannot give the objective, is kept
    as failed (value ``None``) and the campaign goes on.

    ``surrogate`` (campaigns with a surrogate) holds what the surrogate did this iteration: ``candidates`` (id ->
    source 'dft' or 'ml', prediction, uncertainty, reason), ``model`` / ``model_uuid`` in use, ``retrained``,
    ``training_labels``, ``pool_size``, ``pool_mean_uncertainty``, ``information_gain``; it is kept in the state
    (``extra['surrogate']``) and summarised as the per-iteration statistics."""
    pending = list(state.extra.get("pending") or [])
    iteration = state.iteration
    info = dict(surrogate or {})
    per_candidate = dict(info.get("candidates") or {})
    records, points, values = [], [], []
    for entry in pending:
        record = dict(entry)
        cid = record["id"]
        if cid in per_candidate:
            about = dict(per_candidate[cid])
            record["source"] = about.get("source", "dft")
            if about.get("prediction") is not None:
                record["prediction"] = {
                    "value": about.get("prediction"),
                    "uncertainty": about.get("uncertainty"),
                    "model": info.get("model"),
                }
            if about.get("reason"):
                record["selection_reason"] = about["reason"]
        if cid in properties:
            props = {k: v for k, v in dict(properties[cid]).items() if _is_json_scalar(v)}
            record["properties"] = props
            try:
                result = objective.evaluate(props)
            except ValueError as exc:
                record.update(status="failed", error=str(exc), value=None)
            else:
                record.update(
                    status="ok",
                    raw=result["raw"],
                    objectives=result["values"],
                    margins=result["margins"],
                    feasible=result["feasible"],
                    value=result["values"][0],
                )
        else:
            record.update(status="failed", error=str(failures.get(cid, "no evaluation result")), value=None)
        records.append(record)
        points.append(encoded_point(space, record.get("parameters")))
        values.append(record["value"])
    if records:
        state.record(np.asarray(points, dtype=float).reshape(len(records), space.n_encoded), values)
    else:
        state.iteration += 1
    state.extra.setdefault("candidates", []).extend(records)
    state.extra["pending"] = []
    if objective.multi and state.extra.get("reference_point") is None:
        # fixed once the first feasible candidates are in, so hypervolumes of all iterations compare
        state.extra["reference_point"] = reference_point(state.extra["candidates"], objective, config)
    trend = convergence_trend(state, objective, config)
    reason = check_convergence(state, objective, config)
    state.extra["converged"] = reason
    ranked = rank_records(records, objective)
    best_iteration = _best_value(records, objective)
    summary = {
        "iteration": iteration + 1,
        "candidates_evaluated": len(records),
        "failed": sum(r["status"] == "failed" for r in records),
        "best_objective_value": best_iteration,
        "best_so_far": trend[-1] if trend and math.isfinite(trend[-1]) else None,
        "metric": "hypervolume" if objective.multi else objective.primary.name,
        "budget_used": n_simulated(state.extra["candidates"]),
        "converged": reason,
        "candidates": [_table_row(r, rank) for rank, r in enumerate(ranked, start=1)],
        "elapsed": dict(elapsed or {}),
    }
    if config.uses_surrogate:
        summary.update(_surrogate_summary(state, config, records, info, iteration))
    return summary


def _surrogate_summary(
    state: OptimizerState,
    config: CampaignConfig,
    records: Sequence[Mapping[str, Any]],
    info: Mapping[str, Any],
    iteration: int,
) -> dict[str, Any]:
    """Per-iteration statistics of the surrogate; also updates its bookkeeping in the state."""
    sigmas = [
        float(r["prediction"]["uncertainty"])
        for r in records
        if r.get("prediction") and r["prediction"].get("uncertainty") is not None
    ]
    simulated = sum(1 for r in records if is_simulated(r))
    left = budget_left(state, config)
    stats = {
        "model": info.get("model"),
        "retrained": bool(info.get("retrained")),
        "training_labels": info.get("training_labels"),
        "candidates_scored": int(info.get("pool_size") or 0),
        "candidates_ml_predicted": len(records) - simulated,
        "candidates_simulated": simulated,
        "budget_remaining": left,
        "mean_uncertainty": float(np.mean(sigmas)) if sigmas else None,
        "pool_mean_uncertainty": info.get("pool_mean_uncertainty"),
        "information_gain": info.get("information_gain"),
    }
    book = surrogate_state(state)
    if info.get("model_uuid") and info.get("model_uuid") != book.get("model_uuid"):
        book["models"].append(info.get("model"))
    if info.get("model_uuid"):
        book["model_uuid"], book["model"] = info["model_uuid"], info.get("model")
    if info.get("retrained"):
        book["trained_iteration"] = iteration
        book["trained_labels"] = int(info.get("training_labels") or 0)
        book["n_trainings"] = int(book.get("n_trainings") or 0) + 1
    book["iterations"].append({"iteration": iteration + 1, **{k: v for k, v in stats.items()}})
    return stats


def _is_json_scalar(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str)


def _table_row(record: Mapping[str, Any], rank: int) -> dict[str, Any]:
    return {
        "rank": rank,
        "id": record["id"],
        "uuid": record.get("uuid"),
        "formula": record.get("formula"),
        "generation_method": record.get("generation_method"),
        "parents": list(record.get("parents") or []),
        "status": record["status"],
        "objectives": record.get("objectives"),
        "feasible": record.get("feasible"),
        "error": record.get("error"),
    }


# ---------------------------------------------------------------------------------------------- ranking
def _scores(records: Sequence[Mapping[str, Any]], objective: CampaignObjective) -> np.ndarray:
    """(n, m) objective values oriented so that larger is better."""
    sign = np.array([1.0 if o.maximize else -1.0 for o in objective.objectives])
    return np.asarray([r["objectives"] for r in records], dtype=float).reshape(len(records), -1) * sign


def rank_records(records: Sequence[Mapping[str, Any]], objective: CampaignObjective) -> list[dict[str, Any]]:
    """Best first: feasible successful candidates, then infeasible ones, then failures.

    One objective: by value in its direction. Several: by Pareto front (non-dominated first), then by the
    first objective.
    """
    ok = [r for r in records if r["status"] == "ok"]
    failed = [r for r in records if r["status"] != "ok"]
    out: list[dict[str, Any]] = []
    for group in ([r for r in ok if r.get("feasible")], [r for r in ok if not r.get("feasible")]):
        if not group:
            continue
        S = _scores(group, objective)
        if objective.multi:
            front_of = np.empty(len(group), dtype=int)
            for k, front in enumerate(non_dominated_sort(S, ["max"] * S.shape[1])):
                front_of[front] = k
            order = sorted(range(len(group)), key=lambda i: (front_of[i], -S[i, 0], group[i]["id"]))
        else:
            order = sorted(range(len(group)), key=lambda i: (-S[i, 0], group[i]["id"]))
        out.extend(dict(group[i]) for i in order)
    return out + [dict(r) for r in failed]


def _best_value(records: Sequence[Mapping[str, Any]], objective: CampaignObjective) -> float | list[float] | None:
    """Best feasible value among ``records`` (None if none); with several objectives, the best of each."""
    good = [r for r in records if r["status"] == "ok" and r.get("feasible")]
    if not good:
        return None
    best = []
    for j, o in enumerate(objective.objectives):
        values = [r["objectives"][j] for r in good]
        best.append(float(max(values) if o.maximize else min(values)))
    return best if objective.multi else best[0]


def reference_point(
    records: Sequence[Mapping[str, Any]],
    objective: CampaignObjective,
    config: CampaignConfig,
    stored: Sequence[float] | None = None,
) -> list[float] | None:
    """Hypervolume reference (in the objectives' own directions): the configured one, else the one ``stored`` in
    the state, else 10 % beyond the worst feasible value of each objective in ``records``."""
    if config.reference_point is not None:
        return [float(x) for x in config.reference_point]
    if stored is not None:
        return [float(x) for x in stored]
    good = [r for r in records if r["status"] == "ok" and r.get("feasible")]
    if not good:
        return None
    S = _scores(good, objective)
    worst, span = S.min(axis=0), np.ptp(S, axis=0)
    ref = worst - 0.1 * np.where(span > 0, span, 1.0)
    sign = np.array([1.0 if o.maximize else -1.0 for o in objective.objectives])
    return (ref * sign).tolist()


def convergence_trend(state: OptimizerState, objective: CampaignObjective, config: CampaignConfig) -> list[float]:
    """Best value so far after each iteration (one objective) or hypervolume of the feasible front (several);
    NaN until something feasible has been found."""
    records = state.extra.get("candidates") or []
    n_iter = state.iteration
    if not objective.multi:
        sign = 1.0 if objective.primary.maximize else -1.0
        best, out = -np.inf, []
        for k in range(n_iter):
            feasible = [
                sign * r["objectives"][0]
                for r in records
                if r["iteration"] == k and r["status"] == "ok" and r.get("feasible")
            ]
            best = max([best, *feasible])
            out.append(float(sign * best) if np.isfinite(best) else float("nan"))
        return out
    ref = reference_point(records, objective, config, state.extra.get("reference_point"))
    out = []
    for k in range(n_iter):
        upto = [r for r in records if r["iteration"] <= k and r["status"] == "ok" and r.get("feasible")]
        if not upto or ref is None:
            out.append(float("nan"))
            continue
        Y = np.asarray([r["objectives"] for r in upto], dtype=float)
        out.append(float(hypervolume(Y, ref, objective.directions)))
    return out


def check_convergence(state: OptimizerState, objective: CampaignObjective, config: CampaignConfig) -> str | None:
    """Why the campaign should stop now (target_reached, budget_exhausted, max_iterations, no_improvement) or None.

    The criteria see, per iteration, the feasible values (one objective) or the hypervolume so far repeated once per
    evaluation (several objectives), with NaN for failed or infeasible candidates, so budgets count every paid
    evaluation.
    """
    records = state.extra.get("candidates") or []
    per_iteration: list[list[float]] = [[] for _ in range(state.iteration)]
    if objective.multi:
        trend = convergence_trend(state, objective, config)
        for r in records:
            ok = r["status"] == "ok" and r.get("feasible")
            per_iteration[r["iteration"]].append(trend[r["iteration"]] if ok else float("nan"))
        criteria = config.criteria(True)
        if config.target is not None:  # a target is a value of the objective, not of the hypervolume
            criteria = ConvergenceCriteria(**{**criteria.to_dict(), "target": None})
    else:
        for r in records:
            ok = r["status"] == "ok" and r.get("feasible")
            per_iteration[r["iteration"]].append(float(r["objectives"][0]) if ok else float("nan"))
        criteria = config.criteria(objective.primary.maximize)
    if config.evaluation_method == "dft" or config.budget is None:
        return criteria.check(per_iteration)
    # the budget of an ML or hybrid campaign counts DFT simulations, not every (ML-)evaluated candidate
    reason = ConvergenceCriteria(**{**criteria.to_dict(), "budget": None}).check(per_iteration)
    if reason != "target_reached" and n_simulated(records) >= config.budget:
        return "budget_exhausted"
    return reason


def pareto_records(
    records: Sequence[Mapping[str, Any]],
    objective: CampaignObjective,
    config: CampaignConfig,
    stored_reference: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The feasible non-dominated candidates and the hypervolume they dominate."""
    good = [r for r in records if r["status"] == "ok" and r.get("feasible")]
    ref = reference_point(records, objective, config, stored_reference)
    if not good:
        return {"directions": objective.directions, "members": [], "hypervolume": 0.0, "reference_point": ref}
    Y = np.asarray([r["objectives"] for r in good], dtype=float)
    mask = pareto_mask(Y, objective.directions)
    members = [
        {"id": r["id"], "uuid": r.get("uuid"), "formula": r.get("formula"), "objectives": r["objectives"]}
        for r, m in zip(good, mask, strict=True)
        if m
    ]
    members.sort(key=lambda m: m["objectives"][0], reverse=objective.primary.maximize)
    return {
        "directions": objective.directions,
        "names": [o.name for o in objective.objectives],
        "members": members,
        "hypervolume": float(hypervolume(Y, ref, objective.directions)) if ref is not None else 0.0,
        "reference_point": ref,
    }


def best_candidates(
    records: Sequence[Mapping[str, Any]], objective: CampaignObjective, top_n: int
) -> list[dict[str, Any]]:
    """The top ``top_n`` successful candidates with their properties (what the campaign reports as its result)."""
    ranked = [r for r in rank_records(records, objective) if r["status"] == "ok"][:top_n]
    return [
        {
            "rank": rank,
            "id": r["id"],
            "uuid": r.get("uuid"),
            "iteration": r["iteration"],
            "formula": r.get("formula"),
            "generation_method": r.get("generation_method"),
            "parents": list(r.get("parents") or []),
            "parameters": r.get("parameters"),
            "objectives": r["objectives"],
            "feasible": r.get("feasible"),
            "properties": r.get("properties", {}),
        }
        for rank, r in enumerate(ranked, start=1)
    ]


def statistics(
    state: OptimizerState,
    objective: CampaignObjective,
    config: CampaignConfig,
    iteration_times: Sequence[float] = (),
) -> dict[str, Any]:
    """Campaign statistics: budget used, evaluations and failures, best per iteration, convergence trend."""
    records = state.extra.get("candidates") or []
    best_per_iteration = []
    for k in range(state.iteration):
        best_per_iteration.append(_best_value([r for r in records if r["iteration"] == k], objective))
    methods: dict[str, int] = {}
    for r in records:
        key = str(r.get("generation_method"))
        methods[key] = methods.get(key, 0) + 1
    trend = convergence_trend(state, objective, config)
    out = {
        "iterations": state.iteration,
        "total_candidates_evaluated": len(records),
        "failed_evaluations": sum(r["status"] == "failed" for r in records),
        "infeasible_candidates": sum(r["status"] == "ok" and not r.get("feasible") for r in records),
        "budget": config.budget,
        "budget_used": n_simulated(records),
        "best_objective_value": trend[-1] if trend and math.isfinite(trend[-1]) else None,
        "metric": "hypervolume" if objective.multi else objective.primary.name,
        "best_per_iteration": best_per_iteration,
        "convergence_trend": [None if not math.isfinite(v) else v for v in trend],
        "convergence_reason": state.extra.get("converged"),
        "generation_methods": methods,
        "iteration_times": [float(t) for t in iteration_times],
    }
    if config.uses_surrogate:
        book = state.extra.get("surrogate") or {}
        per_iteration = list(book.get("iterations") or [])
        out["surrogate"] = {
            "total_candidates_simulated": n_simulated(records),
            "total_candidates_ml_predicted": len(records) - n_simulated(records),
            "total_candidates_scored": sum(int(s.get("candidates_scored") or 0) for s in per_iteration),
            "budget_remaining": budget_left(state, config),
            "trainings": int(book.get("n_trainings") or 0),
            "models": list(book.get("models") or []),
            "final_model": book.get("model"),
            "mean_uncertainty_per_iteration": [s.get("mean_uncertainty") for s in per_iteration],
            "information_gain_per_iteration": [s.get("information_gain") for s in per_iteration],
            "per_iteration": per_iteration,
        }
    return out


def history(state: OptimizerState, space: ParameterSpace, context_window: int | None = None) -> list[dict[str, Any]]:
    """The evaluated candidates as plain JSON, newest last (what an external proposer sees)."""
    records = state.extra.get("candidates") or []
    if context_window:
        records = records[-context_window:]
    out = []
    for r in records:
        entry = {
            "candidate_id": r["id"],
            "iteration": r["iteration"],
            "formula": r.get("formula"),
            "generation_method": r.get("generation_method"),
            "parameters": r.get("parameters"),
            "status": r["status"],
            "objectives": r.get("objectives"),
            "feasible": r.get("feasible"),
            "properties": r.get("properties"),
        }
        if space.is_structural or r.get("structure") is not None:
            entry["structure"] = atoms_to_dict(candidate_atoms(space, r))
        out.append(entry)
    return out


__all__ = [
    "ALGORITHMS",
    "EVALUATION_METHODS",
    "CampaignConfig",
    "SurrogateSettings",
    "budget_left",
    "hybrid_settings",
    "ml_properties",
    "n_simulated",
    "selection_settings",
    "surrogate_target",
    "trained_model_name",
    "training_due",
    "training_labels",
    "CampaignObjective",
    "apply_constraints",
    "best_candidates",
    "candidate_atoms",
    "candidate_id",
    "check_convergence",
    "convergence_trend",
    "count_points",
    "dump_state",
    "enumerate_points",
    "history",
    "json_safe",
    "load_space",
    "load_state",
    "new_state",
    "pareto_records",
    "placeholder_atoms",
    "rank_records",
    "record_results",
    "space_elements",
    "statistics",
    "validate_campaign",
]
