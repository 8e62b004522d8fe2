"""Weighted linear least-squares fits of SNAP coefficients (SVD as FitSNAP, or ridge) to a design matrix."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import scipy.linalg
from ase import Atoms

from aiida_nanoos.potentials.snap.descriptors import DesignMatrix, compute_descriptors
from aiida_nanoos.potentials.snap.hyperparameters import SnapHyperparameters
from aiida_nanoos.potentials.snap.potential import SnapPotential
from aiida_nanoos.potentials.snap.reference import ReferencePotential
from aiida_nanoos.potentials.snap.weights import FitWeights


def solve_weighted_least_squares(
    A: np.ndarray,
    b: np.ndarray,
    w: np.ndarray,
    solver: str = "svd",
    ridge_alpha: float = 1.0e-6,
    rcond: float = 1.0e-13,
    unpenalized: Sequence[int] = (),
) -> np.ndarray:
    """Minimise ``|w (A x - b)|²`` (``svd``: SVD least squares, relative singular-value cutoff ``rcond`` as FitSNAP)
    or ``|w (A x - b)|² + ridge_alpha |x|²`` (``ridge``, solved stably as an augmented least-squares problem; the
    columns in ``unpenalized``, e.g. per-element constants, are not shrunk). Rows with zero weight are dropped.

    ``scaled-ridge`` penalises each column by ``ridge_alpha`` times its own squared weighted norm ``|w A_j|²``: the
    ridge of standardised columns, so ``ridge_alpha`` is dimensionless and means the same for bispectrum components
    and their (much smaller or larger) quadratic products, whatever the row weights. The cross-validated search
    (:mod:`.search`) chooses it on this scale.
    """
    keep = (w != 0) & np.isfinite(b)
    aw = A[keep] * w[keep, None]
    bw = b[keep] * w[keep]
    if solver == "svd":
        return scipy.linalg.lstsq(aw, bw, cond=rcond, lapack_driver="gelsd")[0]
    if solver in ("ridge", "scaled-ridge"):
        penalty = np.full(A.shape[1], math.sqrt(ridge_alpha))
        if solver == "scaled-ridge":
            penalty *= np.linalg.norm(aw, axis=0)
        penalty[list(unpenalized)] = 0.0
        aw = np.vstack([aw, np.diag(penalty)])
        bw = np.concatenate([bw, np.zeros(A.shape[1])])
        return scipy.linalg.lstsq(aw, bw, cond=rcond, lapack_driver="gelsd")[0]
    raise ValueError(f"unknown solver {solver!r}: use 'svd', 'ridge' or 'scaled-ridge'")


def fit_design(
    design: DesignMatrix,
    weights: FitWeights | None = None,
    solver: str = "svd",
    ridge_alpha: float = 1.0e-6,
    reference: ReferencePotential | None = None,
    fit_constant: bool | None = None,
) -> SnapPotential:
    """Fit SNAP coefficients to a design matrix (rows without labels or with zero weight are ignored).

    ``fit_constant`` says whether the per-element constant ``β_e0`` is fitted; by default it is unless
    ``bzeroflag`` is set, as in FitSNAP (with ``bzeroflag`` an isolated atom then has zero energy, which is what
    energy shifts to isolated-atom references expect). A fixed constant is written as 0.
    """
    weights = weights or FitWeights()
    start = time.perf_counter()
    n_elements = len(design.params.elements)
    fit_constant = (not design.params.bzeroflag) if fit_constant is None else fit_constant
    w = np.where(design.labelled, weights.row_weights(design), 0.0)
    n_block = design.A.shape[1] // n_elements
    constants = [i * n_block for i in range(n_elements)]
    columns = np.arange(design.A.shape[1]) if fit_constant else np.setdiff1d(np.arange(design.A.shape[1]), constants)
    beta = np.zeros(design.A.shape[1])
    beta[columns] = solve_weighted_least_squares(
        design.A[:, columns],
        np.nan_to_num(design.b, nan=0.0),
        w,
        solver,
        ridge_alpha,
        unpenalized=[int(np.searchsorted(columns, c)) for c in constants if c in columns],
    )
    return SnapPotential(
        params=design.params,
        coefficients=beta.reshape(n_elements, n_block),
        reference=reference,
        energy_shift=dict(design.energy_shift),
        metadata={
            "solver": solver,
            "ridge_alpha": ridge_alpha if solver in ("ridge", "scaled-ridge") else None,
            "n_frames": design.n_frames,
            "n_rows": int(np.count_nonzero(w)),
            "fit_constant": fit_constant,
            "fit_seconds": time.perf_counter() - start,
            "descriptor_seconds": design.timing,
            "weights": weights.to_dict(),
        },
    )


def fit_snap(
    frames: Sequence[Atoms],
    params: SnapHyperparameters,
    weights: FitWeights | None = None,
    solver: str = "svd",
    reference: ReferencePotential | None = None,
    energy_shift: dict[str, float] | None = None,
    ridge_alpha: float = 1.0e-6,
    stress: bool = True,
    fit_constant: bool | None = None,
) -> SnapPotential:
    """Descriptors of ``frames`` then a weighted linear fit: the one-call way to train a SNAP potential."""
    design = compute_descriptors(frames, params, reference=reference, energy_shift=energy_shift, stress=stress)
    return fit_design(design, weights, solver, ridge_alpha, reference, fit_constant)
