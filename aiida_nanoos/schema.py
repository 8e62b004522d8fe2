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
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import yaml

from aiida_nanoos.common.checks import Bound
from aiida_nanoos.design import bo, config
from aiida_nanoos.design.constraints import ELEMENT_KEYS, STRUCTURE_KEYS
from aiida_nanoos.design.dimensions import DIMENSION_TYPES
from aiida_nanoos.design.objectives import MAX_FORMULA_LENGTH, STANDARD_OBJECTIVES
from aiida_nanoos.models import training as model_training
from aiida_nanoos.models.calibration import RECALIBRATION_METHODS
from aiida_nanoos.potentials import md_settings
from aiida_nanoos.potentials import training_config as potential_training
from aiida_nanoos.potentials.sampling import SamplingSpec
from aiida_nanoos.potentials.validation import CRITERIA_UNITS

DRAFT = "http://json-schema.org/draft-07/schema#"
PROTOCOLS = Path(__file__).parent / "workflows" / "protocols"
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


# ---------------------------------------------------------------------------------------------- model training
def model_training_schema() -> dict:
    rules = model_training.MODEL_BOUNDS
    keys = model_training.CONFIG_KEYS
    text = {
        "target": "Column of the CSV holding the property to learn (required).",
        "name": "Name of the trained model node.",
        "version": "Version of the model of this name.",
        "method": "Uncertainty: an ensemble of networks, or MC dropout in one network.",
        "n_models": "Members of the ensemble (default 3; 1 for mc_dropout); at least 2 for an ensemble.",
        "epochs": "Training epochs per member.",
        "time_budget": "Seconds for all members together; training stops when they are spent.",
        "patience": "Epochs without improvement of the validation loss before a member stops.",
        "batch_size": "Structures per gradient step (halved by the restart handler after an out-of-memory).",
        "learning_rate": "Adam learning rate.",
        "weight_decay": "L2 weight decay.",
        "validation_fraction": "Fraction of the rows held out (early stopping and recalibration of sigma).",
        "seed": "Seed of the split and of the initial weights.",
        "recalibration": "How sigma is recalibrated on the validation rows.",
        "n_samples": "MC-dropout passes for the validation report (at least 2 for mc_dropout).",
        "threads": "CPU threads of torch.",
        "cif_column": "Column of the CSV holding the structures (CIF text).",
        "id_column": "Column of the CSV naming the rows.",
        "max_rows": "Train on the first max_rows rows only.",
        "architecture": "Overrides of the network's size and regularisation.",
        "graph_settings": "Overrides of how structures become graphs.",
    }
    choices = {"method": model_training.UNCERTAINTY_METHODS, "recalibration": tuple(RECALIBRATION_METHODS)}
    nested = {
        "architecture": model_training.ARCHITECTURE_BOUNDS,
        "graph_settings": model_training.GRAPH_BOUNDS,
    }
    properties = {}
    for key, (_, default) in keys.items():
        if key in nested:
            sub = {
                name: field(rule if isinstance(rule, Bound) else "boolean", name) for name, rule in nested[key].items()
            }
            properties[key] = mapping(sub, text[key])
        elif key in choices:
            properties[key] = field(choices[key], text[key], default)
        elif key in rules:
            properties[key] = field(rules[key], text[key], default)
        else:
            properties[key] = field({"type": "string", "minLength": 1}, text[key], default)
    return mapping(properties, "Training of a crystal-graph property model (nanoos.model.train).", ("target",))


# ---------------------------------------------------------------------------------------------- potential training
def potential_training_schema() -> dict:
    pt = potential_training
    snap = {name: field(rule, f"SNAP {name}") for name, rule in pt.SNAP_BOUNDS.items()}
    snap["twojmax"]["description"] = "Twice the largest angular momentum of the bispectrum (more descriptors above)."
    snap["rcutfac"]["description"] = "Cutoff scale (Å for radelem 0.5); default from the frames' neighbour distance."
    snap.update({name: numbers(None, f"SNAP {name}: one number per element.") for name in pt.SNAP_LISTS})
    snap.update(
        {name: field({"type": ["boolean", "integer"], "enum": [0, 1]}, f"SNAP {name}") for name in pt.SNAP_FLAGS}
    )
    weights = {name: field(rule, f"Weight of the {name} rows.") for name, rule in pt.WEIGHT_BOUNDS.items()}
    weights["groups"] = {
        "type": "object",
        "description": "Per configuration group: [energy, force, stress] weights (>= 0).",
        "additionalProperties": {
            "type": "array",
            "items": {"type": "number", "minimum": 0},
            "minItems": 3,
            "maxItems": 3,
        },
    }
    weights["use_frame_weights"] = field("boolean", "Multiply by the weight stored with each frame.")
    committee = {name: field(rule, f"Committee {name}") for name, rule in pt.COMMITTEE_BOUNDS.items()}
    committee["method"] = field(pt.COMMITTEE_METHODS, "How the members differ: resampled frames or SNAP settings.")
    member = mapping(snap, "SNAP overrides of one member.")
    committee["members"] = field({"type": "array", "minItems": 2, "items": member}, "One per member (hyperparameters).")
    zbl = {name: field(rule, f"ZBL switching {name} radius (Å).") for name, rule in pt.ZBL_BOUNDS.items()}
    zbl["type"] = {"const": "zbl"}
    lammps = {
        "pair_style": field("string", "LAMMPS pair_style"),
        "pair_coeff": field({"type": "array", "items": {"type": "string"}}, "LAMMPS pair_coeff lines"),
    }
    mace = {name: field(rule, f"MACE {name}", pt.MACE_DEFAULTS[name]) for name, rule in pt.MACE_BOUNDS.items()}
    properties = {
        "descriptor_type": field(pt.TRAINABLE_TYPES, "What to fit: linear SNAP, quadratic SNAP or MACE.", "SNAP"),
        "name": field({"type": "string", "minLength": 1}, "Name of the potential node.", "potential"),
        "version": field(pt.TOP_BOUNDS["version"], "Version of the potential of this name.", 1),
        "elements": {"type": "array", "items": {"type": "string"}, "minItems": 1, "uniqueItems": True,
                     "description": "Element symbols of the potential (default: those of the frames)."},
        "snap": mapping(snap, "SNAP hyper-parameters."),
        "weights": mapping(weights, "Row weights of the fit."),
        "solver": field(pt.SOLVERS, "Least-squares solver.", "svd"),
        "ridge_alpha": field(pt.TOP_BOUNDS["ridge_alpha"], "Ridge regularisation (solver ridge).", 1.0e-6),
        "reference": {"description": "A reference potential added to the fit: ZBL or LAMMPS lines.",
                      "anyOf": [mapping(zbl, "ZBL", ("type",)), mapping(lammps, "LAMMPS", ("pair_style",))]},
        "energy_shift": {"type": "object", "additionalProperties": {"type": "number"},
                         "description": "Per element, eV per atom subtracted from the DFT energies."},
        "committee": mapping(committee, "A committee of potentials for on-the-fly uncertainty."),
        "mace": mapping(mace, "MACE model and training settings."),
        "temperature_range": numbers(2, "[low, high] K the potential is meant for (recorded with it)."),
        "pressure_range": numbers(2, "[low, high] GPa the potential is meant for (recorded with it)."),
    }  # fmt: skip
    return mapping(properties, "Fit of a machine-learned potential (nanoos.potential.train).")


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
        "Bayesian optimisation picks the largest expected improvement per unit of predicted CPU cost (cells' atoms and "
        "k-points, then the costs the evaluations reported); UCB/LCB become EI.",
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
            "multi-task GP. Give campaigns or same_objective: true.",
        ),
        "type": ["object", "null"],
    }


def bo_schema() -> dict:
    own = defaults(bo.BOSettings)
    text = {
        "acquisition": "UCB (LCB when minimising), EI, PI, or RANGE (probability of landing in target_range).",
        "kernel": "GP kernel.",
        "gp_priors": "Weak log-normal priors on the GP hyper-parameters, or none.",
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
        "dft_fraction": "Fraction of a batch sent to DFT (at most, or exactly with dft_trigger fraction).",
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
        "dft_trigger": field(config.DFT_TRIGGERS, "Which candidates go to DFT (ml_then_dft).", own["dft_trigger"]),
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
        {"objectives": field({"type": "array", "items": single, "minItems": 1}, "The objectives."),
         "constraints": CONSTRAINTS},
        "Several objectives (Pareto front, hypervolume).",
        ("objectives",),
    )  # fmt: skip
    return {
        "description": "What the campaign optimises: a standard objective's name, one objective or several.",
        "anyOf": [field(tuple(STANDARD_OBJECTIVES), "A standard objective."), single, several],
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
