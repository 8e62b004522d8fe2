"""Training a crystal-graph ensemble: composition baseline, standardisation, members, calibration of sigma.

See :mod:`aiida_nanoos.models.cgcnn` for the design and the measured choices. Pure torch + numpy (no AiiDA).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from ase import Atoms
from torch import nn

from aiida_nanoos.models.calibration import fit_recalibration
from aiida_nanoos.models.cgcnn_network import Architecture, CrystalGraphNetwork, GraphDataset
from aiida_nanoos.models.ensemble import CrystalGraphModel
from aiida_nanoos.models.graph import (
    MAX_ATOMIC_NUMBER,
    CrystalGraph,
    GraphSettings,
    composition_matrix,
    structures_to_graphs,
)


@dataclass
class TrainingSettings:
    """How members are trained; the wall-time budget bounds the whole ensemble."""

    epochs: int = 80  #: epochs per member (cosine schedule over them; a time budget may stop earlier)
    time_budget: float | None = None  #: seconds for all members together, on ``clock``
    #: 'wall' (a job's walltime) or 'cpu' (this process's CPU time: the same work whatever else runs on the machine)
    clock: str = "wall"
    batch_size: int = 64
    learning_rate: float = 2.0e-3
    weight_decay: float = 1.0e-4
    patience: int = 60  #: epochs without validation improvement before a member stops
    #: keep each member's weights of its best validation epoch (True) or of its last epoch (False). A schedule that
    #: decays to the end of a time budget ends near its best anyway, and the last weights leave the validation
    #: errors unselected: sigma recalibrated on them is not fitted to errors made small by picking the best epoch
    keep_best: bool = True
    loss: str = "l1"  #: 'l1' (the metric is an MAE) or 'mse'
    bootstrap: bool = False  #: resample each member's training set (with replacement)
    baseline_ridge: float = 1.0e-3  #: ridge penalty of the composition baseline (in target units squared)
    #: torch threads (process-wide); the graph operations are small, so more threads mostly contend: on a
    #: shared 2-core machine a training step took 0.04 s with 1 thread and 0.26-0.45 s with 2. None: keep.
    threads: int | None = 1


def budget_clock(training: TrainingSettings) -> Callable[[], float]:
    """The clock a time budget is counted on: wall time, or this process's CPU time (all its threads)."""
    if training.clock not in ("wall", "cpu"):
        raise ValueError(f"unknown clock '{training.clock}': 'wall' or 'cpu'")
    return time.process_time if training.clock == "cpu" else time.perf_counter


def decide_extensive(structures: Sequence[Atoms] | Sequence[CrystalGraph], targets: np.ndarray) -> bool:
    """Whether a target scales with the cell (eV per cell) or not (per atom, band gap).

    Fits the target linearly on element counts (extensive) and on element fractions (intensive) and
    keeps the better fit; with a single cell size both fit equally and the answer (extensive) is immaterial.
    """
    sizes = np.array([len(s.atomic_numbers) if isinstance(s, CrystalGraph) else len(s) for s in structures])
    if np.all(sizes == sizes[0]):
        return True
    residuals = []
    for fractions in (False, True):
        matrix = composition_matrix(structures, fractions=fractions)
        coefficients, *_ = np.linalg.lstsq(matrix, targets, rcond=None)
        residuals.append(float(np.mean((matrix @ coefficients - targets) ** 2)))
    return residuals[0] <= residuals[1]


def fit_composition_baseline(
    structures: Sequence[Atoms] | Sequence[CrystalGraph], targets: np.ndarray, extensive: bool, ridge: float
) -> np.ndarray:
    """Per-element reference values indexed by atomic number: a common value plus a ridge-shrunk element term.

    target ~ sum_atoms (c + mu_element) (extensive; divided by the atom count if intensive). Only the
    element terms are penalised, so an element absent from training falls back on the common value c.
    """
    matrix = composition_matrix(structures, fractions=not extensive)
    present = matrix.any(axis=0)
    design = np.column_stack([matrix.sum(axis=1), matrix[:, present]])  # first column: the common value
    penalty = ridge * len(targets) * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    coefficients = np.linalg.solve(design.T @ design + penalty, design.T @ targets)
    baseline = np.full(MAX_ATOMIC_NUMBER + 1, coefficients[0])
    baseline[present] += coefficients[1:]
    return baseline


def train_model(
    structures: Sequence[Atoms],
    targets: Sequence[float],
    target: str,
    *,
    n_members: int = 3,
    validation_fraction: float = 0.1,
    validation_indices: Sequence[int] | None = None,
    architecture: Architecture | None = None,
    graph_settings: GraphSettings | None = None,
    training: TrainingSettings | None = None,
    extensive: bool | None = None,
    calibrate: bool = True,
    recalibration: str = "auto",
    seed: int = 0,
    initial_model: CrystalGraphModel | None = None,
    graphs: Sequence[CrystalGraph] | None = None,
    log: Callable[[str], None] | None = None,
) -> CrystalGraphModel:
    """Train an ensemble on labelled structures, keeping a validation split for early stopping and calibration.

    The validation split (``validation_indices`` or a random ``validation_fraction``) is shared by all
    members, so the recalibration of sigma (``recalibration``, see :func:`calibration.fit_recalibration`) is
    fitted on predictions no member was trained on. With
    ``initial_model`` the members start from its weights, normaliser and baseline (fine-tuning for active
    learning). ``graphs`` may pass already featurised structures (same settings) to skip featurisation.
    """
    started = time.perf_counter()
    clock = budget_clock(training or TrainingSettings())
    budget_started, cpu_started = clock(), time.process_time()
    targets = np.asarray(targets, float)
    architecture = architecture or (initial_model.architecture if initial_model else Architecture())
    graph_settings = graph_settings or (initial_model.graph_settings if initial_model else GraphSettings())
    training = training or TrainingSettings()
    if training.threads:
        torch.set_num_threads(training.threads)
    if len(structures) != len(targets):
        raise ValueError(f"{len(structures)} structures but {len(targets)} target values")
    if len(structures) < 4:
        raise ValueError("need at least 4 labelled structures to train (training and validation)")
    if not np.all(np.isfinite(targets)):
        raise ValueError("targets contain NaN or infinite values")
    if initial_model is not None:
        initial_model.check_target(target)
    if graphs is None:
        graphs = structures_to_graphs(structures, graph_settings)
    elif len(graphs) != len(structures):
        raise ValueError("graphs and structures differ in length")
    data = GraphDataset(graphs)
    rng = np.random.default_rng(seed)
    if validation_indices is None:
        n_validation = max(1, int(round(validation_fraction * len(targets))))
        permutation = rng.permutation(len(targets))
        validation = np.sort(permutation[:n_validation])
    else:
        validation = np.unique(np.asarray(validation_indices, np.int64))
    train = np.setdiff1d(np.arange(len(targets)), validation)
    if len(train) < 2 or len(validation) < 1:
        raise ValueError("the split leaves too few structures for training or validation")

    if initial_model is not None:
        extensive, baseline = initial_model.extensive, np.asarray(initial_model.baseline)
        mean, std = initial_model.target_mean, initial_model.target_std
    else:
        if extensive is None:
            extensive = decide_extensive([graphs[i] for i in train], targets[train])
        baseline = fit_composition_baseline(
            [graphs[i] for i in train], targets[train], extensive, training.baseline_ridge
        )
    model = CrystalGraphModel(
        target=target,
        members=[],
        architecture=architecture,
        graph_settings=graph_settings,
        extensive=extensive,
        baseline=list(map(float, baseline)),
    )
    residual = (targets - model._baseline_values(data)) / (data.n_atoms if extensive else 1.0)
    if initial_model is None:
        mean, std = float(residual[train].mean()), float(residual[train].std() or 1.0)
    model.target_mean, model.target_std = mean, std
    standardised = torch.from_numpy(((residual - mean) / std).astype(np.float32))

    histories = []
    for k in range(n_members):
        remaining = None
        if training.time_budget is not None:
            remaining = max(training.time_budget - (clock() - budget_started), 1.0) / (n_members - k)
        torch.manual_seed(seed * 1000 + k)
        member_rng = np.random.default_rng([seed, k])
        member_train = member_rng.choice(train, size=len(train), replace=True) if training.bootstrap else train
        if initial_model is not None:
            member = copy.deepcopy(initial_model.members[k % len(initial_model.members)])
        else:
            member = CrystalGraphNetwork(architecture, graph_settings.cutoff)
        history = _train_member(member, data, standardised, member_train, validation, training, remaining, member_rng)
        if log:
            log(
                f"member {k + 1}/{n_members}: {history['epochs']} epochs in {history['seconds']:.0f} s, "
                f"best validation MAE (standardised) {history['best_validation_mae']:.4f}"
            )
        histories.append(history)
        model.members.append(member)

    validation_data_graphs = [graphs[i] for i in validation]
    validation_set = GraphDataset(validation_data_graphs)
    point = model.predict(validation_set)
    model.validation_mae = float(np.mean(np.abs(point - targets[validation])))
    model.training_elements = sorted({int(z) for i in train for z in graphs[i].atomic_numbers})
    if calibrate:
        methods = (["mc_dropout"] if architecture.dropout > 0 else []) + (["ensemble"] if n_members >= 2 else [])
        for method in methods:
            result = model.predict_with_uncertainty(validation_set, method=method, n_samples=30)
            model.recalibration[method] = fit_recalibration(
                targets[validation] - result.prediction, result.raw_uncertainty, recalibration
            ).to_dict()
    model.info = {
        "n_train": int(len(train)),
        "n_validation": int(len(validation)),
        "validation_indices": validation.tolist(),
        "training_seconds": time.perf_counter() - started,
        "training_cpu_seconds": time.process_time() - cpu_started,
        "members": histories,
        "training_settings": asdict(training),
        "seed": seed,
        "fine_tuned": initial_model is not None,
    }
    return model


def _train_member(
    member: CrystalGraphNetwork,
    data: GraphDataset,
    standardised: torch.Tensor,
    train: np.ndarray,
    validation: np.ndarray,
    training: TrainingSettings,
    time_budget: float | None,
    rng: np.random.Generator,
) -> dict:
    """AdamW with a cosine learning-rate decay over the epochs that fit the budget; keeps the best weights."""
    clock = budget_clock(training)
    started = clock()
    optimiser = torch.optim.AdamW(member.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay)
    loss_function = nn.functional.l1_loss if training.loss == "l1" else nn.functional.mse_loss

    def loss_of(output: tuple[torch.Tensor, torch.Tensor | None], target: torch.Tensor) -> torch.Tensor:
        location, laplace_scale = output
        if laplace_scale is None:
            return loss_function(location, target)
        # Laplace negative log-likelihood: the location is still fitted by absolute error
        return torch.mean(torch.abs(location - target) / laplace_scale + torch.log(laplace_scale))

    validation_batch = data.batch(validation)
    validation_target = standardised[validation]
    best_mae, best_state, best_epoch, epoch = math.inf, None, 0, 0
    for epoch in range(1, training.epochs + 1):
        member.train()
        order = rng.permutation(train)
        for indices in data.batches(training.batch_size, order):
            if len(indices) < 2:  # batch norm needs two samples
                continue
            # cosine decay over whichever runs out first, the epochs or the wall-time budget
            progress = (epoch - 1) / training.epochs
            if time_budget is not None:
                progress = max(progress, (clock() - started) / time_budget)
            for group in optimiser.param_groups:
                group["lr"] = training.learning_rate * (0.02 + 0.49 * (1 + math.cos(math.pi * min(progress, 1.0))))
            optimiser.zero_grad(set_to_none=True)
            loss = loss_of(member(data.batch(indices)), standardised[indices])
            loss.backward()
            optimiser.step()
        member.eval()
        with torch.no_grad():
            mae = float((member(validation_batch)[0] - validation_target).abs().mean())
        if mae < best_mae:
            best_mae, best_state, best_epoch = mae, copy.deepcopy(member.state_dict()), epoch
        if epoch - best_epoch >= training.patience:
            break
        if time_budget is not None and clock() - started > time_budget:
            break
    if best_state is not None and training.keep_best:
        member.load_state_dict(best_state)
    member.eval()
    return {
        "epochs": epoch,
        "best_epoch": best_epoch,
        "best_validation_mae": best_mae,
        "kept": "best" if training.keep_best else "last",
        "seconds": clock() - started,
    }
