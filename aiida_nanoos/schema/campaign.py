"""The schema of a campaign file (``aiida-nanoos campaign run``): its config (algorithm settings, warm start,
budgets), the space of candidates, the objectives and the constraints."""

from __future__ import annotations

import copy
import dataclasses

from aiida_nanoos.design import bo, config
from aiida_nanoos.design.constraints import ELEMENT_KEYS, STRUCTURE_KEYS
from aiida_nanoos.design.dimensions import DIMENSION_TYPES
from aiida_nanoos.design.objectives import MAX_FORMULA_LENGTH, STANDARD_OBJECTIVES
from aiida_nanoos.models import training as model_training
from aiida_nanoos.schema.blocks import ELECTRONIC_TYPE, STRUCTURE, defaults, field, mapping, numbers
from aiida_nanoos.schema.training import model_training_schema


# ---------------------------------------------------------------------------------------------- campaign
def campaign_config_schema() -> dict:
    c = config
    text = {
        "algorithm": "How candidates are proposed.",
        "batch_size": "Candidates per iteration.",
        "evaluation_method": "dft: every candidate by the evaluator; ml_only / ml_then_dft: the property model "
        "first (needs property_model).",
        "budget": "Evaluations (DFT runs) over the whole campaign.",
        "max_iterations": "Iterations at most.",
        "patience": "Stop after this many iterations without an improvement of min_improvement.",
        "min_improvement": "Smallest improvement of the best value that counts.",
        "target": "Stop once the best value reaches it.",
        "seed": "Seed of every random choice.",
        "top_n": "Best candidates reported.",
        "candidate_pool": "> 0: BO and random search pick from this many random points per iteration.",
        "reference_point": "Reference point of the hypervolume (several objectives).",
        "budget_cpu_hours": "Stop once the evaluations used this many CPU hours (wall seconds x MPI processes x "
        "threads of every calculation; the reason is cpu_budget_exhausted).",
    }
    own = defaults(c.CampaignConfig)
    properties = {
        "algorithm": field(c.ALGORITHMS, text["algorithm"], own["algorithm"]),
        "evaluation_method": field(c.EVALUATION_METHODS, text["evaluation_method"], own["evaluation_method"]),
    }
    for key, rule in c.CONFIG_BOUNDS.items():
        properties[key] = field(rule, text[key], own.get(key), nullable=own.get(key, 0) is None)
    properties["reference_point"] = numbers(None, text["reference_point"])
    properties["bo"] = bo_schema()
    properties["genetic"] = genetic_schema()
    properties["external"] = external_schema()
    properties["property_model"] = property_model_schema()
    properties["cost_aware"] = field(
        "boolean",
        "Bayesian optimisation picks the cheapest candidate by predicted CPU cost (cells' atoms and k-points, then "
        "the costs the evaluations reported) among those whose acquisition value is within 30 % of its spread over "
        "the candidates below the largest, the tolerance shrinking to 0 as budget_cpu_hours (else budget) is spent.",
        False,
    )
    properties["warm_start"] = warm_start_schema()
    return mapping(properties, "How the campaign searches: algorithm, batch, budget, stopping rules, settings.")


def warm_start_schema() -> dict:
    identifier = {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1}]}
    properties = {
        "campaigns": field(
            {"type": "array", "items": identifier, "minItems": 1},
            "Earlier campaigns (PK or UUID), finished ok, whose objective is a function of the same property.",
        ),
        "same_objective": field(
            "boolean",
            "Every finished campaign on the profile with the same objective property and search space.",
            False,
        ),
    }
    return {
        **mapping(
            properties,
            "Seed the surrogate with earlier campaigns' evaluations (Bayesian optimisation, one objective): the same "
            "task's pooled, a related task's (another base structure, evaluator or functional) as a task of a "
            "multi-task GP, which picks the first batch too. Give campaigns or same_objective: true.",
        ),
        "type": ["object", "null"],
    }


def bo_schema() -> dict:
    own = defaults(bo.BOSettings)
    text = {
        "acquisition": "UCB (LCB when minimising), EI, LOGEI (log of EI), PI, RANGE (probability of landing in "
        "target_range), or HEDGE (GP-Hedge portfolio; LogEI in a campaign).",
        "kernel": "GP kernel.",
        "gp_priors": "Weak log-normal priors on the GP hyper-parameters ('default'), BoTorch's dimension-scaled "
        "ones ('dimension_scaled'), or none.",
        "output_transform": "Transform of the objective before the GP sees it ('auto': Yeo-Johnson from 5 values).",
        "batch_strategy": "Fantasised observations filling a batch.",
        "beta": "UCB/LCB exploration weight (standard deviations).",
        "xi": "EI/PI improvement margin.",
        "n_raw_samples": "Sobol points scored before the local optimisation of the acquisition.",
        "n_restarts": "Local optimisations of the acquisition.",
    }
    acquisitions = (*bo.ACQUISITIONS, *(a.lower() for a in bo.ACQUISITIONS))
    properties = {key: field(choices, text[key], own[key]) for key, choices in bo.BO_CHOICES.items()}
    properties["acquisition"] = field(acquisitions, text["acquisition"] + " Default UCB, RANGE for a target_range.")
    properties.update({key: field(rule, text[key], own[key]) for key, rule in bo.BO_BOUNDS.items() if key in text})
    properties["target_range"] = numbers(2, "[low, high] window of the RANGE acquisition (default: the objective's).")
    properties["optimize_hyperparameters"] = field("boolean", "Refit the GP hyper-parameters every iteration.", True)
    return mapping(properties, "Bayesian optimisation (algorithm bayesian_optimization).")


def genetic_schema() -> dict:
    text = {
        "population_size": "Individuals per generation.",
        "elite_fraction": "Fraction of the best kept unchanged.",
        "crossover_probability": "Probability of a crossover.",
        "mutation_probability": "Probability of a mutation.",
        "mutation_scale": "Standard deviation of the Gaussian mutation (unit box of the parameters).",
        "max_displacement": "Largest atom shift of shift_atom (Å).",
        "max_strain": "Largest lattice strain of change_lattice.",
    }
    properties = {key: field(rule, text[key]) for key, rule in config.GENETIC_BOUNDS.items()}
    properties["representation"] = field(config.GA_REPRESENTATIONS, "What is evolved.", "auto")
    properties["mutation_types"] = {
        "type": "array",
        "items": {"type": "string", "enum": list(config.GA_MUTATION_TYPES)},
        "minItems": 1,
        "description": "Mutations of the structure GA.",
    }
    return mapping(properties, "Genetic algorithm (algorithm genetic).")


def external_schema() -> dict:
    own = defaults(config.ExternalSettings)
    properties = {
        "url": field({"type": "string", "pattern": "^https?://[^/]"}, "http(s) URL of the proposer."),
        "api_key_env": field({"type": "string", "minLength": 1}, "Environment variable holding the API key (never "
                             "stored)."),
        "api_key_header": field("string", "Header carrying the key.", own["api_key_header"]),
        "api_key_prefix": field("string", "Text before the key in the header.", own["api_key_prefix"]),
        "timeout": field(config.EXTERNAL_BOUNDS["timeout"], "Seconds to wait for an answer.", own["timeout"]),
        "context_window": field(config.EXTERNAL_BOUNDS["context_window"], "Past evaluations sent with a request.",
                                own["context_window"]),
        "max_response_bytes": field(config.EXTERNAL_BOUNDS["max_response_bytes"], "Largest answer read.",
                                    own["max_response_bytes"]),
    }  # fmt: skip
    return mapping(properties, "External proposer reached over HTTP (algorithm external).")


def property_model_schema() -> dict:
    own = defaults(config.PropertyModelSettings)
    text = {
        "version": "Version of the stored model.",
        "exploration_weight": "Weight of sigma in greedy_uncertainty.",
        "uncertainty_threshold": "sigma above which a candidate goes to DFT (dft_trigger uncertainty).",
        "dft_fraction": "Fraction of a batch sent to DFT (at most, or exactly with dft_trigger fraction; with "
        "value_per_cost the share of the batch's predicted DFT cost).",
        "retrain_every": "Retrain every this many iterations.",
        "retrain_min_new_labels": "Retrain once this many new DFT labels arrived.",
        "min_labels": "DFT labels before the first model is trained.",
        "pool_size": "Random candidates scored per iteration (active learning).",
        "n_samples": "Passes for the uncertainty (MC dropout).",
    }
    properties = {
        "model": field({"type": "string", "minLength": 1}, "Name of a stored nanoos.model to start from."),
        "target": field({"type": "string", "minLength": 1}, "Property the model predicts (default: the objective's)."),
        "name": field({"type": "string", "minLength": 1}, "Name of the models the campaign trains."),
        "strategy": field(config.PROPERTY_MODEL_STRATEGIES, "How active learning picks a batch.", own["strategy"]),
        "dft_trigger": field(config.DFT_TRIGGERS, "Which candidates go to DFT (ml_then_dft): sigma above the "
                             "threshold, the most uncertain, or the most valuable DFT labels per predicted CPU cost.",
                             own["dft_trigger"]),
        "uncertainty_method": field(model_training.UNCERTAINTY_METHODS, "Uncertainty of the predictions "
                                    "(default: the model's method).", nullable=True),
    }  # fmt: skip
    for key, rule in config.PROPERTY_MODEL_BOUNDS.items():
        properties[key] = field(rule, text[key], own[key], nullable=own[key] is None)
    training = copy.deepcopy(model_training_schema())
    for key in config.TRAINING_OWN_KEYS:  # set by the campaign
        training["properties"].pop(key)
    training.pop("required")
    training["description"] = "Training settings of nanoos.model.train (target, name, version: set by the campaign)."
    properties["training"] = training
    return mapping(properties, "Crystal-graph property model (active_learning, ml_only, ml_then_dft).")


def dimension_schema(kind: str, cls: type) -> dict:
    types = {
        "name": field({"type": "string", "minLength": 1}, "Name of the parameter (unique in the space)."),
        "low": field("number", "Lowest value."),
        "high": field("number", "Highest value."),
        "log": field("boolean", "Search on a log scale (low > 0)."),
        "choices": field({"type": "array", "minItems": 1}, "The possible values."),
        "components": field({"type": "array", "items": {"type": "string"}, "minItems": 2}, "Components mixed."),
        "min_fractions": numbers(None, "Lowest fraction of each component."),
        "max_fractions": numbers(None, "Highest fraction of each component."),
        "host": field("string", "Element of the base structure whose sites are substituted."),
        "dopants": field({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
                         "Element(s) put on the host sites."),
        "fraction": numbers(2, "[low, high] fraction of the host sites substituted."),
        "ranges": field({"type": "object", "additionalProperties": numbers(2, "[low, high] strain.")},
                        "Per lattice vector (a, b, c; iso when isotropic): [low, high] strain."),
        "isotropic": field("boolean", "One strain for all three lattice vectors."),
    }  # fmt: skip
    names = [f.name for f in dataclasses.fields(cls) if f.name != "n_sites"]  # n_sites comes from the base structure
    required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
    properties = {"type": {"const": kind}, **{name: types[name] for name in names}}
    return mapping(properties, (cls.__doc__ or kind).split("\n")[0], ("type", *required))


CONSTRAINTS = {
    "type": "array",
    "items": {"type": ["string", "object"]},
    "description": "Property constraints: formulas such as 'bandgap >= 1.0' or {property, min, max}.",
}


def objective_schema() -> dict:
    standard = field(tuple(STANDARD_OBJECTIVES), "A standard objective.")
    single = mapping(
        {
            "objective": field((*STANDARD_OBJECTIVES, "custom", "target_range"), "Kind of objective."),
            "name": field({"type": "string", "minLength": 1}, "Name of a custom objective."),
            "formula": field({"type": "string", "maxLength": MAX_FORMULA_LENGTH}, "Formula of property names."),
            "direction": field(("maximize", "minimize"), "Direction of a custom objective.", "maximize"),
            "property": field("string", "Property of a target_range objective."),
            "range": numbers(2, "[low, high] window of a target_range objective."),
            "constraints": CONSTRAINTS,
        },
        "One objective.",
        ("objective",),
    )
    several = mapping(
        {"objectives": field({"type": "array", "items": {"anyOf": [standard, single]}, "minItems": 1},
                             "The objectives: standard names or objective mappings."),
         "constraints": CONSTRAINTS},
        "Several objectives (Pareto front, hypervolume).",
        ("objectives",),
    )  # fmt: skip
    return {
        "description": "What the campaign optimises: a standard objective's name, one objective or several.",
        "anyOf": [standard, single, several],
    }


def campaign_schema() -> dict:
    dimensions = [dimension_schema(kind, cls) for kind, cls in DIMENSION_TYPES.items()]
    space = mapping(
        {
            "base_structure": {**STRUCTURE, "anyOf": [*STRUCTURE["anyOf"], {"required": ["symbols"]}]},
            "dimensions": field({"type": "array", "items": {"oneOf": dimensions}, "minItems": 1}, "The parameters, "
                                f"each of one type: {', '.join(DIMENSION_TYPES)}."),
            "element_constraints": mapping(
                {key: field({}, text) for key, text in zip(ELEMENT_KEYS, ("Element symbols a candidate may contain.",
                 "Element symbols it must not contain.", "Most distinct elements in a candidate."), strict=True)},
                "Which elements candidates may contain.",
            ),
            "structure_constraints": mapping(
                {key: field("integer", f"{key.split('_')[0].capitalize()}imum number of atoms in the cell.")
                 for key in STRUCTURE_KEYS},
                "Size of the candidates' cells.",
            ),
        },
        "The parameters searched and the structure they modify.",
        ("dimensions",),
    )  # fmt: skip
    evaluator = mapping(
        {
            "name": field("string", "Evaluator (entry point of the group nanoos.evaluators, e.g. band_gap)."),
            "code": field("string", "Code label, e.g. pw@localhost."),
            "protocol": field("string", "Protocol of the evaluator's work chain."),
            "electronic_type": ELECTRONIC_TYPE,
            "overrides": field("object", "Overrides of the protocol's inputs."),
            "options": field("object", "Scheduler options (resources, account, queue_name, ...)."),
        },
        "How candidates are evaluated.",
        ("name",),
    )
    properties = {
        "name": field("string", "Label of the campaign node."),
        "description": field("string", "Description of the campaign node."),
        "search_space": space,
        "objective": objective_schema(),
        "constraints": field("object", "Element, structure and property constraints on the candidates."),
        "config": campaign_config_schema(),
        "evaluator": evaluator,
        "model_training_code": field("string", "Code of nanoos.model.train (needed by property_model.training)."),
    }
    return mapping(properties, "A design campaign (aiida-nanoos campaign run).", ("search_space", "objective",
                                                                                   "evaluator"))  # fmt: skip
