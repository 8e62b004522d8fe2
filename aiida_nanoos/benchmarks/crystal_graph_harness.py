"""Benchmarks of the crystal-graph model (no AiiDA): accuracy and calibration on a held-out table,
active learning against random sampling on a structure pool, and screening throughput.

The ``aiida-nanoos benchmark gnn | al-pool | screening`` commands only parse options and print what these
functions return (JSON-serialisable dicts).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms

from aiida_nanoos.acquisition.selection import ActiveLearningConfig, information_gain, select_for_simulation
from aiida_nanoos.models.calibration import RECALIBRATION_METHODS, calibration_report, fit_recalibration
from aiida_nanoos.models.cgcnn import (
    Architecture,
    CrystalGraphModel,
    CrystalGraphNetwork,
    GraphDataset,
    TrainingSettings,
    default_architecture,
    train_model,
)
from aiida_nanoos.models.graph import GraphSettings, structures_to_graphs
from aiida_nanoos.models.structure_table import StructureTable

Log = Callable[[str], None] | None

#: Defaults of the gnn benchmark: what trains in about 9 minutes of wall time on 2 shared CPU cores.
DEFAULT_TIME_BUDGET = 540.0
DEFAULT_MEMBERS = 3


def machine_load() -> dict[str, Any]:
    """Load averages and CPU count, recorded with every timing (the machine may be shared)."""
    load = os.getloadavg()
    return {"load_average_1_5_15": [round(x, 2) for x in load], "cpu_count": os.cpu_count()}


# ------------------------------------------------------------------------------------------------ gnn
def gnn_benchmark(
    train: StructureTable,
    test: StructureTable,
    *,
    method: str = "ensemble",
    n_members: int | None = None,
    time_budget: float = DEFAULT_TIME_BUDGET,
    validation_fraction: float = 0.1,
    recalibration: str = "auto",
    n_samples: int = 50,
    seed: int = 0,
    threads: int | None = None,
    architecture: Architecture | None = None,
    graph_settings: GraphSettings | None = None,
    clock: str = "cpu",
    training: TrainingSettings | None = None,
    log: Log = None,
) -> dict[str, Any]:
    """Train on ``train`` (validation split taken from it), then score accuracy and calibration on ``test``.

    Every choice is made on the training table: the composition baseline and standardisation on its training
    part, the kept epoch of each member (best validation MAE) and the recalibration of sigma on its validation
    split. ``test`` is read only after the model is final, to score it; the uncalibrated figures are reported
    too. The ``time_budget`` is counted on ``clock``: 'cpu' (this process's CPU seconds) trains the same
    number of epochs however busy the machine is, 'wall' ends training after so many seconds of wall time.
    ``training`` replaces the budget-bound settings (a fixed number of epochs, for reproducible tests).
    """
    if threads:
        torch.set_num_threads(threads)
    if method not in ("ensemble", "mc_dropout"):
        raise ValueError(f"unknown method '{method}'")
    n_members = n_members or (DEFAULT_MEMBERS if method == "ensemble" else 1)
    architecture = architecture or default_architecture(method)
    graph_settings = graph_settings or GraphSettings()
    load_before = machine_load()
    started = time.perf_counter()
    train_graphs = structures_to_graphs(train.structures, graph_settings)
    featurisation_seconds = time.perf_counter() - started
    model = train_model(
        train.structures,
        train.targets,
        train.target,
        n_members=n_members,
        validation_fraction=validation_fraction,
        architecture=architecture,
        graph_settings=graph_settings,
        # the time budget, not an epoch count, ends training (cosine schedule over the budget); the last weights are
        # kept, so the validation errors sigma is recalibrated on were not made small by choosing an epoch on them
        training=training
        or TrainingSettings(time_budget=time_budget, epochs=100_000, patience=100_000, clock=clock, keep_best=False),
        seed=seed,
        graphs=train_graphs,
        calibrate=False,
        log=log,
    )
    training_seconds = model.info["training_seconds"]
    # ---- the model and its recalibration are final here; nothing below feeds back into them ----
    # recalibration on the validation split of the training table
    validation = np.asarray(model.info["validation_indices"])
    validation_data = GraphDataset([train_graphs[i] for i in validation])
    on_validation = model.predict_with_uncertainty(validation_data, method=method, n_samples=n_samples, seed=seed)
    validation_errors = train.targets[validation] - on_validation.prediction
    fitted = fit_recalibration(validation_errors, on_validation.raw_uncertainty, method=recalibration)
    model.recalibration[method] = fitted.to_dict()
    started = time.perf_counter()
    result = model.predict_with_uncertainty(test.structures, method=method, n_samples=n_samples, seed=seed + 1)
    prediction_seconds = time.perf_counter() - started
    errors = test.targets - result.prediction
    report = calibration_report(errors, result.uncertainty)
    uncalibrated = calibration_report(errors, result.raw_uncertainty)
    # every recalibration method, each fitted on the same validation errors, scored on the test set (for comparison)
    by_method = {}
    for name in RECALIBRATION_METHODS:
        alternative = fit_recalibration(validation_errors, on_validation.raw_uncertainty, method=name)
        scored = calibration_report(errors, alternative.apply(result.raw_uncertainty))
        by_method[name] = {
            "scale": alternative.scale,
            "floor": alternative.floor,
            **{key: scored[key] for key in ("coverage_1sigma", "coverage_2sigma", "miscalibration_area")},
        }
    member_maes = (
        [float(np.mean(np.abs(test.targets - row))) for row in result.predictions_raw] if method == "ensemble" else []
    )
    return {
        "target": train.target,
        "method": method,
        "n_members": n_members,
        "n_samples": n_samples if method == "mc_dropout" else n_members,
        "n_train": model.info["n_train"],
        "n_validation": model.info["n_validation"],
        "n_test": len(test),
        "test_mean_absolute_deviation": float(np.mean(np.abs(test.targets - test.targets.mean()))),
        **{key: report[key] for key in ("mae", "rmse", "coverage_1sigma", "coverage_2sigma", "miscalibration_area")},
        "spearman_error_uncertainty": report["spearman_error_uncertainty"],
        "negative_log_likelihood": report["negative_log_likelihood"],
        "mean_uncertainty": report["mean_uncertainty"],
        "recalibration": {
            **fitted.to_dict(),
            "fitted_on": f"validation split of the training table ({len(validation)} structures)",
            "validation_mae": float(np.mean(np.abs(validation_errors))),
        },
        "uncalibrated": {
            key: uncalibrated[key] for key in ("coverage_1sigma", "coverage_2sigma", "miscalibration_area")
        },
        "recalibration_methods": by_method,
        "member_test_mae": member_maes,
        "featurisation_seconds": featurisation_seconds,
        "training_seconds": training_seconds,
        "training_cpu_seconds": model.info["training_cpu_seconds"],
        "time_budget": time_budget,
        "clock": model.info["training_settings"]["clock"],
        "epochs_per_member": [m["epochs"] for m in model.info["members"]],
        "best_epoch_per_member": [m["best_epoch"] for m in model.info["members"]],
        "validation_mae": model.validation_mae,
        "test_prediction_seconds": prediction_seconds,
        "torch_threads": torch.get_num_threads(),
        "machine_before": load_before,
        "machine_after": machine_load(),
        "seed": seed,
        "graph_settings": graph_settings.to_dict(),
        "architecture": model.config()["architecture"],
    }


def format_gnn(result: dict[str, Any]) -> str:
    """Plain-text summary of :func:`gnn_benchmark`."""
    unit_note = (
        f"(target '{result['target']}', test mean absolute deviation {result['test_mean_absolute_deviation']:.3f})"
    )
    lines = [
        f"crystal-graph model, {result['method']} ({result['n_members']} member(s)), "
        f"train {result['n_train']} / validation {result['n_validation']} / test {result['n_test']} {unit_note}",
        f"  MAE                  {result['mae']:.4f}",
        f"  RMSE                 {result['rmse']:.4f}",
        f"  coverage 1 sigma     {result['coverage_1sigma']:.3f}   (ideal 0.683; uncalibrated "
        f"{result['uncalibrated']['coverage_1sigma']:.3f})",
        f"  coverage 2 sigma     {result['coverage_2sigma']:.3f}   (ideal 0.954; uncalibrated "
        f"{result['uncalibrated']['coverage_2sigma']:.3f})",
        f"  miscalibration area  {result['miscalibration_area']:.4f} (uncalibrated "
        f"{result['uncalibrated']['miscalibration_area']:.4f})",
        f"  Spearman |err|~sigma {result['spearman_error_uncertainty']:.3f}",
        f"  sigma recalibration  sqrt(({result['recalibration']['scale']:.3f} sigma)^2 + "
        f"{result['recalibration']['floor']:.4f}^2) ({result['recalibration']['method']}, "
        f"fitted on the {result['recalibration']['fitted_on']})",
        f"  training time        {result['training_seconds']:.0f} s (budget {result['time_budget']:.0f} "
        f"{result.get('clock', 'wall')} s, "
        f"epochs per member {result['epochs_per_member']}), featurisation {result['featurisation_seconds']:.1f} s, "
        f"{result['torch_threads']} torch thread(s)",
        f"  load average before / after: {result['machine_before']['load_average_1_5_15']} / "
        f"{result['machine_after']['load_average_1_5_15']}",
    ]
    if result["member_test_mae"]:
        lines.append("  member MAEs          " + ", ".join(f"{m:.4f}" for m in result["member_test_mae"]))
    if result.get("recalibration_methods"):
        lines.append("  every recalibration, fitted on the validation split (1s / 2s coverage, area on the test set):")
        lines += [
            f"    {name:11} {m['coverage_1sigma']:.3f} / {m['coverage_2sigma']:.3f}, {m['miscalibration_area']:.4f}"
            for name, m in result["recalibration_methods"].items()
        ]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ al-pool
def _pool_figures(targets: np.ndarray, order: Sequence[int], minimise: bool) -> dict[str, Any]:
    """Liang et al. figures of one run, computed with the BO helper's protocol functions (same definitions)."""
    from aiida_nanoos.benchmarks.pool_protocol import PoolDataset, evaluations_to_find, found_curve

    pool = PoolDataset(X=np.zeros((len(targets), 0)), y=np.asarray(targets, float), input_names=[], objective="",
                       maximize=not minimise)  # fmt: skip
    curve = found_curve(pool, np.asarray(order))
    n, k = pool.n_pool, pool.n_top
    at = {"10%": math.ceil(0.10 * n), "25%": math.ceil(0.25 * n)}
    needed = {"50%": math.ceil(0.5 * k), "100%": k}
    return {
        "ef": {name: float((curve[i - 1] / k) / (i / n)) for name, i in at.items()},
        "evaluations_to_top": {name: evaluations_to_find(curve, m) for name, m in needed.items()},
        "found_curve": curve.tolist(),
    }


def al_pool_benchmark(
    table: StructureTable,
    *,
    minimise: bool = True,
    runs: int = 3,
    pool_size: int | None = 1000,
    n_initial: int = 20,
    batch_size: int = 10,
    strategy: str = "greedy_uncertainty",
    exploration_weight: float = 1.0,
    max_fraction: float = 0.5,
    n_members: int = 3,
    full_retrain_growth: float = 0.5,
    epochs_full: int = 60,
    epochs_fine_tune: int = 8,
    bootstrap: bool = True,
    seed: int = 0,
    threads: int | None = None,
    log: Log = None,
) -> dict[str, Any]:
    """Active learning (crystal-graph ensemble + ``strategy``) against random sampling for the top 5 % of a pool.

    Each run starts from ``n_initial`` random labels and adds ``batch_size`` per cycle, until every top-set
    structure is found or ``max_fraction`` of the pool is labelled. The model is retrained from scratch
    whenever the labelled set has grown by ``full_retrain_growth`` since the last full training and
    fine-tuned (warm start, few epochs) otherwise. Members train on bootstrap resamples (``bootstrap``): with
    tens of labels, members trained on the same data agree on nearly everything and their spread says little.
    Random sampling is scored analytically (Top%(i) = i / N,
    hypergeometric evaluations-to-find), as in Liang et al. 2021.
    """
    from aiida_nanoos.benchmarks.pool_protocol import random_evaluations_quantiles

    if threads:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    indices = np.arange(len(table))
    if pool_size is not None and pool_size < len(table):
        indices = np.sort(rng.choice(len(table), size=pool_size, replace=False))
    structures = [table.structures[i] for i in indices]
    targets = table.targets[indices]
    n = len(targets)
    n_top = math.ceil(0.05 * n)
    started = time.perf_counter()
    architecture = Architecture(hidden=48, n_conv=3, head_hidden=64, dropout=0.0, aleatoric=False)
    settings = GraphSettings()
    graphs = structures_to_graphs(structures, settings)
    pool_data = GraphDataset(graphs)
    featurisation_seconds = time.perf_counter() - started
    max_evaluations = min(n, max(n_initial + batch_size, int(math.ceil(max_fraction * n))))
    sign = 1.0 if minimise else -1.0
    top_set = set(np.argsort(sign * targets, kind="stable")[:n_top].tolist())

    per_run = []
    for run in range(runs):
        run_started = time.perf_counter()
        run_rng = np.random.default_rng([seed, run])
        order = run_rng.choice(n, size=n_initial, replace=False).tolist()
        model: CrystalGraphModel | None = None
        last_full = 0
        cycles = 0
        mean_pool_uncertainty = []  # on the whole pool, after each retraining: how fast the model learns
        first_uncertainty = last_uncertainty = None
        while len(order) < max_evaluations and not top_set.issubset(order):
            labelled = np.array(order)
            full = model is None or len(labelled) >= (1 + full_retrain_growth) * last_full
            model = train_model(
                [structures[i] for i in labelled],
                targets[labelled],
                table.target,
                n_members=n_members,
                validation_fraction=0.15,
                architecture=architecture,
                graph_settings=settings,
                training=TrainingSettings(
                    epochs=epochs_full if full else epochs_fine_tune,
                    batch_size=32,
                    learning_rate=2e-3 if full else 5e-4,
                    patience=30,
                    bootstrap=bootstrap,
                ),
                seed=seed * 1000 + run * 100 + cycles,
                initial_model=None if full else model,
                graphs=[graphs[i] for i in labelled],
                calibrate=False,
            )
            if full:
                last_full = len(labelled)
            predicted = model.predict_with_uncertainty(pool_data, method="ensemble")
            # explore where the model is unsure (epistemic); label noise (aleatoric) is not reduced by labelling
            exploration_uncertainty = predicted.epistemic_uncertainty
            mean_pool_uncertainty.append(float(exploration_uncertainty.mean()))
            first_uncertainty = exploration_uncertainty if first_uncertainty is None else first_uncertainty
            last_uncertainty = exploration_uncertainty
            best = float(np.min(sign * targets[labelled]))
            config = ActiveLearningConfig(
                strategy=strategy,
                budget=min(batch_size, max_evaluations - len(order)),
                exploration_weight=exploration_weight,
                direction="min",
            )
            embeddings = model.embed(pool_data) if strategy == "diverse_uncertainty" else None
            selection = select_for_simulation(
                sign * predicted.prediction,
                exploration_uncertainty,
                config,
                best_observed=best,
                embeddings=embeddings,
                exclude=order,
            )
            order.extend(selection.indices)
            cycles += 1
        figures = _pool_figures(targets, order, minimise)
        figures.update({"evaluations": len(order), "cycles": cycles, "seconds": time.perf_counter() - run_started})
        figures["information_gain"] = (
            information_gain(first_uncertainty, last_uncertainty) if first_uncertainty is not None else None
        )
        figures["mean_pool_uncertainty"] = mean_pool_uncertainty
        figures["top_found"] = int(len(top_set.intersection(order)))
        per_run.append(figures)
        if log:
            log(
                f"run {run + 1}/{runs}: EF(10%) {figures['ef']['10%']:.2f}, EF(25%) {figures['ef']['25%']:.2f}, "
                f"{figures['top_found']}/{n_top} of the top set in {len(order)} evaluations, "
                f"{figures['seconds']:.0f} s"
            )

    def summary(values: list[float | None]) -> dict[str, float | None]:
        finite = np.array([v for v in values if v is not None], float)
        if len(finite) < len(values) or len(finite) == 0:  # some run stopped before reaching it
            return {"mean": None, "p5": None, "p95": None, "reached_in_runs": int(len(finite))}
        return {"mean": float(finite.mean()), "p5": float(np.percentile(finite, 5)),
                "p95": float(np.percentile(finite, 95)), "reached_in_runs": int(len(finite))}  # fmt: skip

    random_evaluations = {}
    for name, needed in {"50%": math.ceil(0.5 * n_top), "100%": n_top}.items():
        mean, (p5, p95) = random_evaluations_quantiles(n, n_top, needed, (0.05, 0.95))
        random_evaluations[name] = {"mean": mean, "p5": float(p5), "p95": float(p95)}
    return {
        "target": table.target,
        "direction": "min" if minimise else "max",
        "n_pool": n,
        "n_top": n_top,
        "runs": runs,
        "seed": seed,
        "strategy": strategy,
        "exploration_weight": exploration_weight,
        "n_initial": n_initial,
        "batch_size": batch_size,
        "max_evaluations": max_evaluations,
        "n_members": n_members,
        "bootstrap": bootstrap,
        "active_learning": {
            "ef": {name: summary([r["ef"][name] for r in per_run]) for name in ("10%", "25%")},
            "evaluations_to_top": {
                name: summary([r["evaluations_to_top"][name] for r in per_run]) for name in ("50%", "100%")
            },
        },
        "random": {"ef": {"10%": 1.0, "25%": 1.0}, "evaluations_to_top": random_evaluations},
        "per_run": [{key: value for key, value in r.items() if key != "found_curve"} for r in per_run],
        "featurisation_seconds": featurisation_seconds,
        "seconds": time.perf_counter() - started,
        "torch_threads": torch.get_num_threads(),
        "machine": machine_load(),
    }


def format_al_pool(result: dict[str, Any]) -> str:
    """Plain-text summary of :func:`al_pool_benchmark`."""

    def show(entry: dict) -> str:
        if entry.get("mean") is None:
            return f"not reached in every run ({entry.get('reached_in_runs')}/{result['runs']})"
        return f"{entry['mean']:.1f} [{entry['p5']:.1f}, {entry['p95']:.1f}]"

    al = result["active_learning"]
    rnd = result["random"]["evaluations_to_top"]
    return "\n".join(
        [
            f"pool of {result['n_pool']} structures, top 5 % = {result['n_top']} {result['direction']} "
            f"'{result['target']}', {result['runs']} runs, start {result['n_initial']} random, "
            f"batches of {result['batch_size']}, strategy {result['strategy']} (w={result['exploration_weight']}), "
            f"ensemble of {result['n_members']}",
            f"  EF at 10 % of the pool:  AL {show(al['ef']['10%'])}   random 1.0",
            f"  EF at 25 % of the pool:  AL {show(al['ef']['25%'])}   random 1.0",
            f"  evaluations to 50 % of the top set:  AL {show(al['evaluations_to_top']['50%'])}   "
            f"random {show(rnd['50%'])}",
            f"  evaluations to 100 % of the top set: AL {show(al['evaluations_to_top']['100%'])}   "
            f"random {show(rnd['100%'])}",
            f"  wall time {result['seconds']:.0f} s ({result['torch_threads']} torch threads), "
            f"load average {result['machine']['load_average_1_5_15']}",
        ]
    )


# ------------------------------------------------------------------------------------------------ screening
def generate_perovskite_candidates(n: int, seed: int = 0) -> list[Atoms]:
    """``n`` cubic ABX3 candidates with random cations and anion mixes, lattice constant from covalent radii.

    The candidates a design campaign would hand to the property model; the geometry is a plausible guess, not
    relaxed.
    """
    from ase.data import atomic_numbers, covalent_radii

    a_sites = ["Li", "Na", "K", "Rb", "Cs", "Mg", "Ca", "Sr", "Ba", "La", "Y", "Pb", "Bi", "Ag", "Cd", "Tl", "Sn"]
    b_sites = ["Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zr", "Nb", "Mo", "Ru", "Rh", "Sn", "Hf", "Ta", "W",
               "Re", "Os", "Ir", "Pt", "Al", "Ga", "In", "Ge", "Sb", "Sc"]  # fmt: skip
    anions = ["O", "N", "F", "S"]
    fractional = np.array([(0, 0, 0), (0.5, 0.5, 0.5), (0.5, 0.5, 0.0), (0.5, 0.0, 0.5), (0.0, 0.5, 0.5)])
    rng = np.random.default_rng(seed)
    candidates = []
    for _ in range(n):
        a, b = rng.choice(a_sites), rng.choice(b_sites)
        x = list(rng.choice(anions, size=3))
        radius_x = np.mean([covalent_radii[atomic_numbers[s]] for s in x])
        lattice = 2.0 * (covalent_radii[atomic_numbers[b]] + radius_x)
        candidates.append(Atoms([a, b, *x], scaled_positions=fractional, cell=np.eye(3) * lattice, pbc=True))
    return candidates


def random_weight_model(n_members: int = DEFAULT_MEMBERS, seed: int = 0) -> CrystalGraphModel:
    """An ensemble of the default architecture (dropout and aleatoric head, so both uncertainty methods run) with
    random weights: the cost of a prediction does not depend on the weights."""
    torch.manual_seed(seed)
    architecture, settings = default_architecture("mc_dropout"), GraphSettings()
    members = [CrystalGraphNetwork(architecture, settings.cutoff).eval() for _ in range(n_members)]
    return CrystalGraphModel("screening_target", members, architecture, settings, validation_mae=0.1)


def screening_benchmark(
    n: int = 10000,
    *,
    model: CrystalGraphModel | None = None,
    n_members: int = DEFAULT_MEMBERS,
    n_samples: int = 50,
    seed: int = 0,
    threads: int | None = None,
) -> dict[str, Any]:
    """Candidates per minute for featurisation plus prediction with uncertainty (ensemble and MC dropout).

    Without ``model``, an ensemble of ``n_members`` networks of the default architecture (with dropout and
    the aleatoric head, so both methods run) with random weights is used: the cost of a prediction does not
    depend on the weights.
    """
    if threads:
        torch.set_num_threads(threads)
    if model is None:
        model = random_weight_model(n_members, seed)
    load_before = machine_load()
    started = time.perf_counter()
    candidates = generate_perovskite_candidates(n, seed)
    generation_seconds = time.perf_counter() - started
    started = time.perf_counter()
    data = model.featurise(candidates)
    featurisation_seconds = time.perf_counter() - started
    timings: dict[str, Any] = {}
    for method in ("ensemble", "mc_dropout") if len(model.members) > 1 else ("mc_dropout",):
        started = time.perf_counter()
        result = model.predict_with_uncertainty(data, method=method, n_samples=n_samples)
        seconds = time.perf_counter() - started
        total = featurisation_seconds + seconds
        timings[method] = {
            "passes": int(result.predictions_raw.shape[0]),
            "prediction_seconds": seconds,
            "featurisation_plus_prediction_seconds": total,
            "candidates_per_minute": 60.0 * n / total,
        }
    return {
        "n_candidates": n,
        "n_members": len(model.members),
        "n_samples": n_samples,
        "mean_atoms": float(np.mean(data.n_atoms)),
        "mean_edges": float(np.mean(data.n_edges)),
        "generation_seconds": generation_seconds,
        "featurisation_seconds": featurisation_seconds,
        "featurisation_per_minute": 60.0 * n / featurisation_seconds,
        "methods": timings,
        "torch_threads": torch.get_num_threads(),
        "machine_before": load_before,
        "machine_after": machine_load(),
    }


def format_screening(result: dict[str, Any]) -> str:
    lines = [
        f"screening {result['n_candidates']} five-atom candidates ({result['mean_edges']:.0f} edges each), "
        f"{result['torch_threads']} torch thread(s), load average {result['machine_before']['load_average_1_5_15']}",
        f"  featurisation        {result['featurisation_seconds']:.2f} s "
        f"({result['featurisation_per_minute']:.0f} /min)",
    ]
    for method, timing in result["methods"].items():
        lines.append(
            f"  {method:<12} {timing['passes']:>3} passes: prediction {timing['prediction_seconds']:.2f} s, "
            f"featurisation + prediction {timing['candidates_per_minute']:.0f} candidates/min"
        )
    return "\n".join(lines)
