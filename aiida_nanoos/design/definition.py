"""What a design campaign is: its search space (with the campaign's element and structure constraints merged in),
its objective and configuration, validated together before anything runs (:func:`validate_campaign`), and what is
read off the space (its finite points, its elements, a placeholder cell for checking an evaluator's inputs)."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping
from typing import Any

from ase import Atoms

from aiida_nanoos.design.config import CampaignConfig
from aiida_nanoos.design.objectives import CampaignObjective
from aiida_nanoos.design.property_model_plan import validate_property_model
from aiida_nanoos.design.spaces import Categorical, Integer, ParameterSpace, Substitution

#: Spaces with at most this many distinct points are enumerated, so no candidate is ever proposed twice.
MAX_ENUMERATED_POINTS = 20000


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
    if config.uses_property_model:
        validate_property_model(objective, config)
    return space, objective, config


def representation(space: ParameterSpace, config: CampaignConfig) -> str:
    """'structure' (GA on cells: swap_element / shift_atom / change_lattice) or 'parameters' (GA on points)."""
    chosen = config.genetic.get("representation", "auto")
    if chosen == "auto":
        return "structure" if space.is_structural else "parameters"
    return chosen
