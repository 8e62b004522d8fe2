"""How a design campaign searches: :class:`CampaignConfig` (algorithm, batch, budget, stopping rules, the settings
of each algorithm) and :class:`PropertyModelSettings` (the crystal-graph property model of ``config.property_model``),
validated so that every ``ValueError`` names the offending field. Configurations using a name of the previous
version (``surrogate``, evaluation method ``hybrid``) are refused with the new name."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from aiida_nanoos.common.checks import Bound, number
from aiida_nanoos.design.convergence import ConvergenceCriteria
from aiida_nanoos.models.training import UNCERTAINTY_METHODS

#: Search algorithms a campaign knows; ``IMPLEMENTED_ALGORITHMS`` are the ones that can run today.
ALGORITHMS = ("random", "genetic", "bayesian_optimization", "active_learning", "external")
IMPLEMENTED_ALGORITHMS = ALGORITHMS
#: How candidates are evaluated: every candidate with the named evaluator ('dft'), by the property model only
#: ('ml_only'), or the model first and DFT on the uncertain ones ('ml_then_dft'); the last two need
#: ``config.property_model``.
EVALUATION_METHODS = ("dft", "ml_only", "ml_then_dft")
IMPLEMENTED_EVALUATION_METHODS = EVALUATION_METHODS
#: What needs the crystal-graph property model (``config.property_model``).
PROPERTY_MODEL_ALGORITHMS = ("active_learning",)
PROPERTY_MODEL_EVALUATION_METHODS = ("ml_only", "ml_then_dft")
#: Which candidates of an ml_then_dft batch go to DFT: those whose sigma exceeds ``uncertainty_threshold`` (at most
#: ``dft_fraction`` of the batch if given), the ``dft_fraction`` most uncertain ones, or those whose DFT label is
#: worth most per predicted CPU cost within ``dft_fraction`` of the batch's DFT cost
#: (:mod:`aiida_nanoos.acquisition.fidelity`).
DFT_TRIGGERS = ("uncertainty", "fraction", "value_per_cost")
#: Acquisition strategies of the active-learning proposer (:mod:`.active_learning`).
PROPERTY_MODEL_STRATEGIES = ("uncertainty", "greedy_uncertainty", "expected_improvement", "diverse_uncertainty")

#: Mutations of the structure GA; the source of the list (:mod:`.proposers.genetic` imports it: the config imports no
#: proposer).
GA_MUTATION_TYPES = ("swap_element", "shift_atom", "change_lattice")
#: What the GA evolves: encoded parameters, structures, or whichever the search space implies ('auto').
GA_REPRESENTATIONS = ("auto", "parameters", "structure")

#: The numbers of ``config``, ``config.genetic``, ``config.external`` and ``config.property_model`` and their allowed
#: ranges: the parsers below check them, the JSON schema (:mod:`aiida_nanoos.common.schema`) states them.
CONFIG_BOUNDS = {
    "batch_size": Bound(int, 1),
    "budget": Bound(int, 1),
    "max_iterations": Bound(int, 1),
    "patience": Bound(int, 1),
    "top_n": Bound(int, 1),
    "seed": Bound(int, 0),
    "candidate_pool": Bound(int, 0),
    "min_improvement": Bound(float, 0.0),
    "target": Bound(float),
    "budget_cpu_hours": Bound(float, 0.0, low_open=True),
}
GENETIC_BOUNDS = {
    "population_size": Bound(int, 2),
    "elite_fraction": Bound(float, 0.0, 1.0),
    "crossover_probability": Bound(float, 0.0, 1.0),
    "mutation_probability": Bound(float, 0.0, 1.0),
    "mutation_scale": Bound(float, 0.0, low_open=True),
    "max_displacement": Bound(float, 0.0, low_open=True),
    "max_strain": Bound(float, 0.0, 1.0, low_open=True, high_open=True),
}
_GENETIC_KEYS = {"representation", "mutation_types", *GENETIC_BOUNDS}
EXTERNAL_BOUNDS = {
    "timeout": Bound(float, 0.0, 3600.0, low_open=True),
    "context_window": Bound(int, 1),
    "max_response_bytes": Bound(int, 1),
}
PROPERTY_MODEL_BOUNDS = {
    "version": Bound(int, 1),
    "exploration_weight": Bound(float, 0.0),
    "uncertainty_threshold": Bound(float, 0.0),
    "dft_fraction": Bound(float, 0.0, 1.0),
    "retrain_every": Bound(int, 1),
    "retrain_min_new_labels": Bound(int, 1),
    "min_labels": Bound(int, 4),  # a model needs at least 4 labels to train
    "pool_size": Bound(int, 1),
    "n_samples": Bound(int, 2),  # MC-dropout / ensemble passes
}
#: Numbers that may be left out (None): the rest have defaults.
_OPTIONAL_NUMBERS = {
    *("budget", "budget_cpu_hours", "patience", "target", "version", "uncertainty_threshold", "dft_fraction"),
    *("retrain_every", "retrain_min_new_labels"),
}


@dataclass(frozen=True)
class ExternalSettings:
    """Where the external proposer is reached and how (``config.external``); the API key is read from the
    environment variable named by ``api_key_env`` when a request is sent, never stored."""

    url: str
    api_key_env: str | None = None
    api_key_header: str = "Authorization"
    api_key_prefix: str = "Bearer "
    timeout: float = 60.0
    context_window: int = 100
    max_response_bytes: int = 10_000_000

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url:
            raise ValueError("config.external.url: the proposer's URL is required for algorithm 'external'")
        parsed = urllib.parse.urlparse(self.url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"config.external.url: must be an http(s) URL, got {self.url!r}")
        if self.api_key_env is not None and (not isinstance(self.api_key_env, str) or not self.api_key_env.strip()):
            raise ValueError("config.external.api_key_env: must be the name of an environment variable")
        for name, bound in EXTERNAL_BOUNDS.items():
            bound.check(getattr(self, name), f"config.external.{name}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExternalSettings:
        data = dict(data)
        if "url" not in data:
            raise ValueError("config.external.url: the proposer's URL is required for algorithm 'external'")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_genetic(genetic: Mapping[str, Any]) -> None:
    """The values of ``config.genetic``, with the bounds the genetic algorithm enforces when it is built."""
    for key, bound in GENETIC_BOUNDS.items():
        if key in genetic:
            bound.check(genetic[key], f"config.genetic.{key}")
    if genetic.get("representation", "auto") not in GA_REPRESENTATIONS:
        raise ValueError(
            f"config.genetic.representation: must be one of {list(GA_REPRESENTATIONS)}, "
            f"got {genetic['representation']!r}"[:400]
        )
    if "mutation_types" in genetic:
        types = genetic["mutation_types"]
        if isinstance(types, str) or not isinstance(types, list | tuple) or not types:
            raise ValueError(f"config.genetic.mutation_types: must be a non-empty list, got {types!r}")
        unknown = [t for t in types if not isinstance(t, str) or t not in GA_MUTATION_TYPES]
        if unknown:
            raise ValueError(f"config.genetic.mutation_types: unknown {unknown} (allowed {list(GA_MUTATION_TYPES)})")


# ---------------------------------------------------------------------------------------------- property model
#: Names of the previous version a configuration may no longer use: old -> new.
RENAMED = {"surrogate": "property_model", "hybrid": "ml_then_dft"}


def renamed_config_keys(data: Mapping[str, Any]) -> str | None:
    """The message refusing a configuration that uses a name of the previous version (None when there is none)."""
    if "surrogate" in data:
        return "config.surrogate: renamed; use config.property_model (same settings)"
    if data.get("evaluation_method") == "hybrid":
        return "config.evaluation_method: 'hybrid' was renamed; use 'ml_then_dft'"
    return None


#: Keys of ``config.property_model.training`` the campaign sets itself.
TRAINING_OWN_KEYS = ("target", "name", "version")


@dataclass
class PropertyModelSettings:
    """The crystal-graph property model of a campaign (``config.property_model``).

    ``model`` names a stored ``nanoos.model`` (``"cgcnn_bandgap"``, ``"cgcnn_bandgap_v2"``, or a name plus
    ``version``). Without it the campaign trains its first model once ``min_labels`` DFT labels exist (proposing
    randomly and evaluating with DFT until then); ``training`` (the settings of the ``nanoos.model.train`` CalcJob:
    epochs, n_models, method, architecture, ...) is then required. With ``training`` set, the campaign retrains on
    every DFT label so far every ``retrain_every`` iterations and/or once ``retrain_min_new_labels`` new labels
    arrived (the new model gets the next version of ``name``, by default the model's name or ``cgcnn_<target>``).

    Active learning scores ``pool_size`` random candidates of the space per iteration and picks the batch with
    ``strategy`` (see :mod:`.active_learning`; ``exploration_weight`` weights sigma in ``greedy_uncertainty``).
    Hybrid evaluation sends to DFT the candidates whose sigma exceeds ``uncertainty_threshold`` (``dft_trigger:
    uncertainty``, at most ``dft_fraction`` of the batch if given), the ``dft_fraction`` most uncertain ones
    (``dft_trigger: fraction``), or, choosing the fidelity per candidate, those whose DFT label is expected to add
    most to the campaign's top per predicted CPU cost, within ``dft_fraction`` of what DFT on the whole batch would
    cost (``dft_trigger: value_per_cost``); the others keep the model's value.
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
        where = "config.property_model"
        if self.model is not None and (not isinstance(self.model, str) or not self.model):
            raise ValueError(f"{where}.model: must be the name of a stored nanoos.model, got {self.model!r}")
        for key, bound in PROPERTY_MODEL_BOUNDS.items():
            setattr(self, key, bound.check(getattr(self, key), f"{where}.{key}", allow_none=key in _OPTIONAL_NUMBERS))
        for key in ("target", "name"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{where}.{key}: must be a non-empty string, got {value!r}")
        if self.strategy not in PROPERTY_MODEL_STRATEGIES:
            raise ValueError(
                f"{where}.strategy: unknown strategy {self.strategy!r} (one of {list(PROPERTY_MODEL_STRATEGIES)})"[:400]
            )
        if self.dft_trigger not in DFT_TRIGGERS:
            raise ValueError(
                f"{where}.dft_trigger: must be one of {list(DFT_TRIGGERS)}, got {self.dft_trigger!r}"[:400]
            )
        if self.uncertainty_method is not None and self.uncertainty_method not in UNCERTAINTY_METHODS:
            raise ValueError(
                f"{where}.uncertainty_method: must be one of {list(UNCERTAINTY_METHODS)}, "
                f"got {self.uncertainty_method!r}"[:400]
            )
        if self.training is not None:
            if not isinstance(self.training, Mapping):
                raise ValueError(f"{where}.training: must be a mapping of training settings")
            self.training = dict(self.training)
            own = sorted(set(self.training) & set(TRAINING_OWN_KEYS))
            if own:
                raise ValueError(f"{where}.training: {own} are set by the campaign (use property_model.target / name)")
            self.training_config("placeholder")  # validates with the trainer's own checks
        elif self.retrain_every is not None or self.retrain_min_new_labels is not None:
            raise ValueError(f"{where}.retrain_every: retraining needs training settings (property_model.training)")

    @property
    def trains(self) -> bool:
        return self.training is not None

    def training_config(self, target: str, name: str | None = None, seed: int | None = None) -> dict[str, Any]:
        """The ``config`` of a ``nanoos.model.train`` CalcJob (validated by the trainer's own parser)."""
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
            raise ValueError(f"config.property_model.training: {message}") from exc
        return config

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PropertyModelSettings:
        data = dict(data)
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"config.property_model: unknown keys {unknown} (allowed {sorted(cls.__dataclass_fields__)})"
            )
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------------- warm start
@dataclass(frozen=True)
class WarmStartSettings:
    """Earlier campaigns whose evaluations seed this one (``config.warm_start``): named by PK or UUID
    (``campaigns``), or every finished campaign on the profile whose objective is a function of the same property
    (``same_objective: true``). Evaluations of the same task (same search space and evaluator inputs) are pooled
    with the new ones; those of a related task (another base structure, evaluator or functional) enter a multi-task
    GP as a task of their own, so the model learns how far to trust them. Either way the first batch is already
    chosen by the model, not at random."""

    campaigns: tuple[int | str, ...] = ()
    same_objective: bool = False

    def __post_init__(self) -> None:
        where = "config.warm_start"
        if not isinstance(self.same_objective, bool):
            raise ValueError(f"{where}.same_objective: must be true or false, got {self.same_objective!r}")
        if isinstance(self.campaigns, str | bytes | Mapping) or not isinstance(self.campaigns, list | tuple):
            raise ValueError(f"{where}.campaigns: must be a list of campaign PKs or UUIDs, got {self.campaigns!r}")
        for value in self.campaigns:
            if isinstance(value, bool) or not isinstance(value, int | str) or (isinstance(value, int) and value < 1):
                raise ValueError(f"{where}.campaigns: {value!r} is not a campaign PK or UUID")
        if bool(self.campaigns) == self.same_objective:
            raise ValueError(f"{where}: give either campaigns: [PK or UUID, ...] or same_objective: true")
        object.__setattr__(self, "campaigns", tuple(self.campaigns))

    @classmethod
    def from_dict(cls, data: Any) -> WarmStartSettings:
        if not isinstance(data, Mapping):
            raise ValueError("config.warm_start: must be a mapping ({campaigns: [...]} or {same_objective: true})")
        unknown = sorted(set(data) - {"campaigns", "same_objective"})
        if unknown:
            raise ValueError(f"config.warm_start: unknown keys {unknown} (allowed ['campaigns', 'same_objective'])")
        return cls(**data)


# ---------------------------------------------------------------------------------------------- configuration
@dataclass
class CampaignConfig:
    """How a campaign searches: the algorithm, the batch per iteration, the budget and the stopping rules.

    ``budget`` counts evaluations (DFT runs) over the whole campaign; ``patience`` / ``min_improvement`` stop it
    when the best value has not improved enough for that many iterations; ``target`` stops it once the best
    value reaches it; ``budget_cpu_hours`` stops it once the evaluations have used that many CPU hours (wall
    seconds x MPI processes x threads of every calculation). ``cost_aware`` makes Bayesian optimisation pick the
    cheapest candidate (by predicted cost) whose acquisition value comes close to the largest, the margin shrinking
    to none as the budget is spent (:func:`~aiida_nanoos.design.cost.cost_aware_scores`);
    ``warm_start`` seeds the surrogate with earlier campaigns (:class:`WarmStartSettings`). ``candidate_pool`` > 0
    makes BO and random search pick from that many random points per iteration instead of optimising over the
    continuous space. ``bo``, ``genetic`` and
    ``external`` hold the settings of those algorithms (see :class:`~aiida_nanoos.design.bo.BOSettings`,
    :mod:`.search`, :mod:`.external_proposer`).
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
    property_model: dict[str, Any] | None = None
    warm_start: dict[str, Any] | None = None
    cost_aware: bool = False
    budget_cpu_hours: float | None = None

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"config.algorithm: unknown algorithm {self.algorithm!r} (one of {list(ALGORITHMS)})")
        if self.evaluation_method not in EVALUATION_METHODS:
            raise ValueError(
                f"config.evaluation_method: unknown {self.evaluation_method!r} (one of {list(EVALUATION_METHODS)})"
            )
        for key, bound in CONFIG_BOUNDS.items():
            setattr(self, key, bound.check(getattr(self, key), f"config.{key}", allow_none=key in _OPTIONAL_NUMBERS))
        if self.reference_point is not None:
            if isinstance(self.reference_point, str | Mapping) or not isinstance(self.reference_point, list | tuple):
                raise ValueError(f"config.reference_point: must be a list of numbers, got {self.reference_point!r}")
            self.reference_point = [
                number(v, f"config.reference_point[{i}]") for i, v in enumerate(self.reference_point)
            ]
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
        _check_genetic(self.genetic)
        allowed = {f.name for f in fields(ExternalSettings)}
        unknown = sorted(set(self.external) - allowed)
        if unknown:
            raise ValueError(f"config.external: unknown keys {unknown} (allowed {sorted(allowed)})")
        if self.algorithm == "external":
            ExternalSettings.from_dict(self.external)  # validates
        if not isinstance(self.cost_aware, bool):
            raise ValueError(f"config.cost_aware: must be true or false, got {self.cost_aware!r}")
        for key in ("cost_aware", "warm_start"):
            if getattr(self, key) and self.algorithm != "bayesian_optimization":
                raise ValueError(
                    f"config.{key}: only used by algorithm 'bayesian_optimization' (not {self.algorithm!r})"
                )
        if self.warm_start is not None:
            self.warm_start = dict(self.warm_start) if isinstance(self.warm_start, Mapping) else self.warm_start
            self.warm_start_settings()  # validates
        if self.uses_property_model:
            if self.property_model is None:
                used = self.algorithm if self.algorithm in PROPERTY_MODEL_ALGORITHMS else self.evaluation_method
                raise ValueError(
                    f"config.property_model: {used!r} needs a property model: an existing model "
                    "(property_model.model) and/or training settings (property_model.training)"
                )
            if not isinstance(self.property_model, Mapping):
                raise ValueError("config.property_model: must be a mapping of settings")
            self.property_model = dict(self.property_model)
            self.property_model_settings()  # validates
        elif self.property_model is not None:
            raise ValueError(
                "config.property_model: only used by algorithm 'active_learning' or evaluation_method 'ml_only' / "
                "'ml_then_dft'"
            )

    def warm_start_settings(self) -> WarmStartSettings | None:
        return None if self.warm_start is None else WarmStartSettings.from_dict(self.warm_start)

    @property
    def uses_property_model(self) -> bool:
        return (
            self.algorithm in PROPERTY_MODEL_ALGORITHMS or self.evaluation_method in PROPERTY_MODEL_EVALUATION_METHODS
        )

    def property_model_settings(self) -> PropertyModelSettings | None:
        """The validated :class:`PropertyModelSettings` (None when the campaign uses no property model)."""
        if not self.uses_property_model or self.property_model is None:
            return None
        settings = PropertyModelSettings.from_dict(self.property_model)
        if (
            self.evaluation_method in PROPERTY_MODEL_EVALUATION_METHODS
            and settings.model is None
            and not settings.trains
        ):
            raise ValueError(
                f"config.property_model: evaluation_method {self.evaluation_method!r} needs a model "
                "(property_model.model) or training settings (property_model.training)"
            )
        if self.algorithm in PROPERTY_MODEL_ALGORITHMS and settings.model is None and not settings.trains:
            raise ValueError(
                "config.property_model: algorithm 'active_learning' needs a model (property_model.model) or training "
                "settings (property_model.training)"
            )
        if self.algorithm in PROPERTY_MODEL_ALGORITHMS and settings.pool_size < self.batch_size:
            raise ValueError(
                f"config.property_model.pool_size: {settings.pool_size} is smaller than the batch ({self.batch_size})"
            )
        if self.evaluation_method == "ml_then_dft":
            if settings.dft_trigger == "uncertainty" and settings.uncertainty_threshold is None:
                raise ValueError("config.property_model.uncertainty_threshold: required by dft_trigger 'uncertainty'")
            if settings.dft_trigger == "fraction" and settings.dft_fraction is None:
                raise ValueError("config.property_model.dft_fraction: required by dft_trigger 'fraction'")
            if settings.dft_trigger == "value_per_cost" and not settings.dft_fraction:
                raise ValueError(
                    "config.property_model.dft_fraction: required by dft_trigger 'value_per_cost' (the share of the "
                    "batch's DFT cost it may spend, above 0)"
                )
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
        if not isinstance(data["acquisition"], str):
            raise ValueError(
                f"config.bo.acquisition: must be a name (UCB, LCB, EI, PI, RANGE), got {data['acquisition']!r}"
            )
        try:
            return BOSettings.from_dict(data)
        except (TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"config.bo: {exc}") from exc

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> CampaignConfig:
        data = dict(data or {})
        refused = renamed_config_keys(data)
        if refused:
            raise ValueError(refused)
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
            budget_cpu_hours=self.budget_cpu_hours,
        )
