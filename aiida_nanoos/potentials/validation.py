"""Held-out validation of a potential, committee-based frame selection and cost per atom-step (no AiiDA here)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from ase import Atoms

from aiida_nanoos.potentials import metrics as pm
from aiida_nanoos.potentials.lammps_engine import Prediction

#: Criteria a validation can be held to: the largest acceptable RMSE of each quantity.
CRITERIA_UNITS = {"energy_rmse": "eV/atom", "force_rmse": "eV/Å", "stress_rmse": "bar"}


def check_criteria(criteria: dict) -> dict:
    """``{energy_rmse, force_rmse, stress_rmse}`` maxima, each positive (``ValueError`` names the bad field)."""
    unknown = sorted(set(criteria) - set(CRITERIA_UNITS))
    if unknown:
        raise ValueError(f"criteria.{unknown[0]} is not a criterion; known: {sorted(CRITERIA_UNITS)}")
    out = {}
    for key, value in criteria.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"criteria.{key} must be a positive number ({CRITERIA_UNITS[key]}), got {value!r}")
        out[key] = float(value)
    return out


def validate_predictions(
    frames: Sequence[Atoms], predictions: Sequence[Prediction], criteria: dict | None = None
) -> dict:
    """Errors of predictions against held-out DFT frames, parity arrays, and whether ``criteria`` are met.

    Returns ``{"errors": {energy_rmse, energy_mae (eV/atom), force_rmse, force_mae (eV/Å), stress_rmse,
    stress_mae (bar), ..._max_abs, ..._count}, "parity": {quantity: (reference, predicted)}, "passed": bool,
    "failed_criteria": [...]}``.
    """
    if not frames:
        raise ValueError("no validation frames")
    parity = pm.parity_from_frames(frames, predictions)
    errors = pm.error_summary(parity)
    criteria = check_criteria(criteria or {})
    failed = [
        f"{key} {errors.get(key, math.nan):.4g} > {limit:.4g} {CRITERIA_UNITS[key]}"
        for key, limit in criteria.items()
        if not errors.get(key, math.inf) <= limit
    ]
    return {
        "errors": errors,
        "parity": {quantity: (data.reference, data.predicted) for quantity, data in parity.items()},
        "passed": not failed,
        "failed_criteria": failed,
        "criteria": criteria,
        "n_frames": len(frames),
        "n_atoms": int(sum(len(a) for a in frames)),
    }


def select_uncertain(disagreement: Sequence[float], threshold: float, max_count: int) -> list[int]:
    """Indices of the frames whose committee disagreement exceeds ``threshold``, most uncertain first, at most
    ``max_count`` (the DP-GEN/FLARE rule: label what the committee disagrees on, not what it already knows)."""
    if threshold < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    if max_count < 0:
        raise ValueError(f"max_count must be >= 0, got {max_count}")
    values = np.asarray(disagreement, float)
    above = np.flatnonzero(values > threshold)
    order = above[np.argsort(-values[above], kind="stable")]
    return [int(i) for i in order[:max_count]]


def cost_per_atom_step(dft_runs: Sequence[tuple[float, int]], md_seconds: float, md_atoms: int, md_steps: int) -> dict:
    """Seconds per atom and force evaluation of DFT (``(wall seconds, atoms)`` per SCF) vs MD with the potential.

    DFT cost grows faster than linearly with the cell (≈ N³ for plane waves), so the DFT figure is the one of the
    labelled cells, reported with their mean size.
    """
    if not dft_runs:
        raise ValueError("no DFT runs to measure")
    if md_seconds <= 0 or md_atoms <= 0 or md_steps <= 0:
        raise ValueError("MD seconds, atoms and steps must be positive")
    dft_seconds = float(sum(seconds for seconds, _ in dft_runs))
    dft_atom_steps = float(sum(atoms for _, atoms in dft_runs))
    dft = dft_seconds / dft_atom_steps
    md = md_seconds / (md_atoms * md_steps)
    return {
        "dft_seconds_per_atom_step": dft,
        "potential_seconds_per_atom_step": md,
        "speedup": dft / md,
        "dft_runs": len(dft_runs),
        "dft_wall_seconds": dft_seconds,
        "dft_mean_atoms": dft_atom_steps / len(dft_runs),
        "md_wall_seconds": float(md_seconds),
        "md_atoms": int(md_atoms),
        "md_steps": int(md_steps),
    }
