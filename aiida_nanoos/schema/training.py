"""The schemas of the training configurations: a property model (``nanoos.model.train``) and a machine-learned
potential (``nanoos.potential.train``)."""

from __future__ import annotations

from aiida_nanoos.models import training as model_training
from aiida_nanoos.models.calibration import RECALIBRATION_METHODS
from aiida_nanoos.potentials import training_config as potential_training
from aiida_nanoos.schema.blocks import field, mapping, numbers


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
            sub = {name: field("boolean" if rule is bool else rule, name) for name, rule in nested[key].items()}
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
