"""Train a crystal-graph property model from a CSV: the work of the ``nanoos-train-model`` script (no AiiDA).

The script (:mod:`aiida_nanoos.scripts.train_model`) runs wherever the ``nanoos.model.train`` CalcJob runs (this
workstation or an HPC node with only the package installed), so it reads and writes plain files:

* input: a CSV with a ``cif`` column (one structure per row) and a target column, and ``config.json`` (see
  :func:`parse_model_config`);
* output folder: ``model.pt`` + ``model.json`` (:meth:`CrystalGraphModel.save`) and ``metrics.json`` (validation
  MAE, calibration report, training time, n_train / n_validation, elements, the parsed config).

The uncertainty is recalibrated on the validation split (:func:`aiida_nanoos.models.cgcnn.train_model` does it), so
the calibration figures in ``metrics.json`` are measured on the data the recalibration was fitted on: a check that
the fit worked, not a held-out estimate (``aiida-nanoos benchmark gnn`` gives that).

A bad config raises :class:`ValueError` naming the field, the same function the CalcJob uses to refuse bad input
before anything is submitted.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from aiida_nanoos.common.checks import Bound
from aiida_nanoos.common.jsonsafe import json_safe
from aiida_nanoos.models.calibration import RECALIBRATION_METHODS, calibration_report
from aiida_nanoos.models.graph import ELEMENT_TABLES

METRICS_FILENAME = "metrics.json"
UNCERTAINTY_METHODS = ("ensemble", "mc_dropout")

#: Config keys, their types and defaults (None: no default / optional).
CONFIG_KEYS: dict[str, tuple[type | tuple[type, ...], Any]] = {
    "target": (str, None),  # the target column (required)
    "name": (str, None),  # model name (the CalcJob names the output node with it)
    "version": (int, None),
    "method": (str, "ensemble"),
    "n_models": (int, None),  # members: default 3 for ensemble, 1 for mc_dropout
    "epochs": (int, 80),
    "time_budget": ((int, float), None),  # seconds for all members together
    "patience": (int, 60),
    "batch_size": (int, 64),
    "learning_rate": ((int, float), 2.0e-3),
    "weight_decay": ((int, float), 1.0e-4),
    "validation_fraction": ((int, float), 0.1),
    "seed": (int, 0),
    "recalibration": (str, "auto"),
    "n_samples": (int, 30),  # MC-dropout passes for the validation report
    "threads": (int, 1),
    "cif_column": (str, "cif"),
    "id_column": (str, None),
    "max_rows": (int, None),  # train on the first max_rows rows only
    "architecture": (dict, None),  # overrides of cgcnn.Architecture fields
    "graph_settings": (dict, None),  # overrides of graph.GraphSettings fields
}
#: Allowed ranges of the numbers of a config (checked by :func:`parse_model_config`, stated by the JSON schema).
MODEL_BOUNDS = {
    "version": Bound(int, 1),
    "n_models": Bound(int, 1),  # at least 2 for an ensemble
    "epochs": Bound(int, 1),
    "time_budget": Bound(float, 0.0, low_open=True),
    "patience": Bound(int, 1),
    "batch_size": Bound(int, 1),
    "learning_rate": Bound(float, 0.0, low_open=True),
    "weight_decay": Bound(float, 0.0),
    "validation_fraction": Bound(float, 0.0, 1.0, low_open=True, high_open=True),
    "seed": Bound(int, 0),
    "n_samples": Bound(int, 1),  # at least 2 for mc_dropout
    "threads": Bound(int, 1),
    "max_rows": Bound(int, 4),
}
#: The fields of ``architecture`` (:class:`~aiida_nanoos.models.cgcnn_network.Architecture`) and ``graph_settings``
#: (:class:`~aiida_nanoos.models.graph.GraphSettings`) a config may override: their ranges, ``bool``, or the tuple of
#: allowed names.
ARCHITECTURE_BOUNDS: dict[str, Bound | type | tuple[str, ...]] = {
    "hidden": Bound(int, 1),
    "n_conv": Bound(int, 1),
    "head_hidden": Bound(int, 1),
    "dropout": Bound(float, 0.0, 1.0, high_open=True),
    "gaussian_spacing": Bound(float, 0.0, low_open=True),
    "learned_embedding": bool,
    "aleatoric": bool,
    "bond_ratio_bins": Bound(int, 0),
    "element_table": ELEMENT_TABLES,
}
GRAPH_BOUNDS: dict[str, Bound | type] = {
    "cutoff": Bound(float, 0.0, low_open=True),
    "max_neighbours": Bound(int, 1),
    "tie_tolerance": Bound(float, 0.0),
}


def _check_overrides(overrides: Any, key: str, rules: dict[str, Bound | type | tuple[str, ...]]) -> None:
    """The values of ``config.architecture`` / ``config.graph_settings``, each named in the error."""
    unknown = sorted(set(overrides) - set(rules))
    if unknown:
        raise ValueError(f"config.{key}: unknown field(s) {unknown}; known: {sorted(rules)}")
    for name, value in overrides.items():
        rule = rules[name]
        if isinstance(rule, Bound):
            problem = rule.problem(value)
        elif isinstance(rule, tuple):
            problem = None if value in rule else f"must be one of {list(rule)}, got {value!r}"
        else:
            problem = None if isinstance(value, bool) else f"must be true or false, got {value!r}"
        if problem:
            raise ValueError(f"config.{key}.{name} {problem}")


def parse_model_config(config: dict) -> dict:
    """Validated config with defaults filled in; a ``ValueError`` names the offending field."""
    if not isinstance(config, dict):
        raise ValueError("the config must be a JSON object")
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise ValueError(f"config: unknown key(s) {unknown}; known: {sorted(CONFIG_KEYS)}")
    parsed: dict[str, Any] = {}
    for key, (kind, default) in CONFIG_KEYS.items():
        value = config.get(key, default)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            raise ValueError(f"config.{key} must be a {names}, got {value!r}")
        parsed[key] = value
    if not parsed["target"]:
        raise ValueError("config.target (the target column of the CSV) is required")
    if parsed["method"] not in UNCERTAINTY_METHODS:
        raise ValueError(f"config.method must be one of {UNCERTAINTY_METHODS}, got {parsed['method']!r}")
    if parsed["n_models"] is None:
        parsed["n_models"] = 3 if parsed["method"] == "ensemble" else 1
    if parsed["method"] == "ensemble" and parsed["n_models"] < 2:
        raise ValueError("config.n_models must be at least 2 for the 'ensemble' method (or use 'mc_dropout')")
    for key, bound in MODEL_BOUNDS.items():  # the types are checked above
        value = parsed[key]
        if value is not None and bound.kind is int and value < bound.low:
            raise ValueError(f"config.{key} must be at least {bound.low}, got {value!r}")
        problem = None if value is None else bound.problem(value)
        if problem:
            raise ValueError(f"config.{key} {problem}")
    if parsed["method"] == "mc_dropout" and parsed["n_samples"] < 2:
        raise ValueError("config.n_samples must be at least 2 for mc_dropout")
    if parsed["recalibration"] not in RECALIBRATION_METHODS:
        raise ValueError(f"config.recalibration must be one of {RECALIBRATION_METHODS}")
    for key, rules in (("architecture", ARCHITECTURE_BOUNDS), ("graph_settings", GRAPH_BOUNDS)):
        _check_overrides(parsed[key] or {}, key, rules)
    architecture = _architecture(parsed)
    if parsed["method"] == "mc_dropout" and architecture.dropout <= 0:
        raise ValueError("config.architecture.dropout must be > 0 for mc_dropout")
    return parsed


def _architecture(config: dict):
    from aiida_nanoos.models.cgcnn import Architecture, default_architecture

    return Architecture(**{**asdict(default_architecture(config["method"])), **(config["architecture"] or {})})


def train_from_table(table, config: dict, output: str | Path, log=None) -> dict:
    """Train on a :class:`StructureTable` with a parsed config; writes the model and ``metrics.json``."""
    from aiida_nanoos.models.cgcnn import TrainingSettings, train_model
    from aiida_nanoos.models.graph import GraphSettings, check_structures

    output = Path(output)
    started = time.perf_counter()
    check_structures(table.structures)
    architecture = _architecture(config)
    settings = GraphSettings(**(config["graph_settings"] or {}))
    training = TrainingSettings(
        epochs=config["epochs"],
        time_budget=config["time_budget"],
        batch_size=config["batch_size"],
        learning_rate=float(config["learning_rate"]),
        weight_decay=float(config["weight_decay"]),
        patience=config["patience"],
        threads=config["threads"],
    )
    model = train_model(
        table.structures,
        table.targets,
        config["target"],
        n_members=config["n_models"],
        validation_fraction=float(config["validation_fraction"]),
        architecture=architecture,
        graph_settings=settings,
        training=training,
        recalibration=config["recalibration"],
        seed=config["seed"],
        log=log,
    )
    model.info["method"] = config["method"]
    validation = np.asarray(model.info["validation_indices"], int)
    result = model.predict_with_uncertainty(
        [table.structures[i] for i in validation], method=config["method"], n_samples=config["n_samples"]
    )
    errors = table.targets[validation] - result.prediction
    model.save(output)
    from ase.data import chemical_symbols

    description = {
        "name": config["name"],
        "version": config["version"],
        "target": config["target"],
        "method": config["method"],
        "n_members": config["n_models"],
        "n_rows": len(table),
        "n_train": model.info["n_train"],
        "n_validation": model.info["n_validation"],
        "mae": float(np.mean(np.abs(errors))),
        "target_mean_absolute_deviation": float(np.mean(np.abs(table.targets - table.targets.mean()))),
        "calibration": calibration_report(errors, result.uncertainty),
        "calibration_uncalibrated": calibration_report(errors, result.raw_uncertainty),
        "calibration_note": "measured on the validation split the recalibration was fitted on",
        "recalibration": model.recalibration.get(config["method"]),
        "training_seconds": model.info["training_seconds"],
        "total_seconds": time.perf_counter() - started,
        "epochs_per_member": [m["epochs"] for m in model.info["members"]],
        "elements": [chemical_symbols[z] for z in model.training_elements],
        "config": config,
    }
    (output / METRICS_FILENAME).write_text(json.dumps(json_safe(description), indent=1))
    return description


def with_smaller_batch(config: dict) -> tuple[dict | None, str]:
    """The config with ``batch_size`` halved, and what changed; ``(None, why)`` when it is already 1.

    For a restart after the training ran out of memory: graph batches dominate the memory of the network's training.
    """
    old = parse_model_config(config)["batch_size"]
    if old <= 1:
        return None, "batch_size is already 1"
    return {**config, "batch_size": old // 2}, f"batch_size {old} -> {old // 2}"


def with_shorter_time_budget(config: dict, factor: float) -> tuple[dict | None, str]:
    """The config with its ``time_budget`` times ``factor`` (< 1), and what changed; ``(None, why)`` without one.

    For a restart after the job ran out of walltime: the trainer stops itself when the budget is spent.
    """
    budget = parse_model_config(config)["time_budget"]
    if budget is None:
        return None, "the config sets no time_budget"
    return {**config, "time_budget": budget * factor}, f"time_budget {budget:.4g} -> {budget * factor:.4g} s"
