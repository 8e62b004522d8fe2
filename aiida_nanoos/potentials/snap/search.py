"""Choose SNAP hyper-parameters by K-fold cross-validation on the training frames only.

What is searched: the band limit 2J and the radial cutoff (they change the descriptors), the energy/force row-weight
ratio and a dimensionless ridge strength (they change only the least-squares problem). The expensive part, LAMMPS'
``compute snap``, runs once per (2J, cutoff); every weight, ridge strength and fold then reuses the same rows. The
fit is linear, so each fold's problem is assembled from per-fold, per-row-kind Gram matrices ``A^T A`` and
right-hand sides ``A^T b``: refitting for a new weight ratio or fold costs one small linear solve, not a new pass
over the rows. Frames, not rows, are split into folds (the rows of a frame are correlated).

The score that ranks settings puts energy and force errors on one scale, in units of the accuracy of a
moment-tensor potential on Si (2.2 meV/atom, 0.06 eV/Å; Zuo et al., J. Phys. Chem. A 124, 731 (2020)):
``score = energy MAE / 2.2 meV/atom + force MAE / 0.06 eV/Å`` (a term is dropped when the data have no such label).
The test set never enters: :func:`cross_validate` sees only the frames it is given.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import scipy.linalg
from ase import Atoms

from aiida_nanoos.potentials.snap.descriptors import ENERGY, FORCE, STRESS, DesignMatrix, compute_descriptors
from aiida_nanoos.potentials.snap.fit import fit_design
from aiida_nanoos.potentials.snap.hyperparameters import SnapHyperparameters, default_rcutfac
from aiida_nanoos.potentials.snap.potential import SnapPotential
from aiida_nanoos.potentials.snap.reference import ReferencePotential
from aiida_nanoos.potentials.snap.weights import FitWeights

#: Errors that count as one unit of the score: eV/atom and eV/Å (moment-tensor potential accuracy on Si).
SCORE_SCALES = {"energy": 2.2e-3, "force": 0.06}
#: The solver of every fit made here (ridge on standardised columns, see :func:`.fit.solve_weighted_least_squares`).
SOLVER = "scaled-ridge"
_KINDS = (ENERGY, FORCE, STRESS)
_NAMES = {ENERGY: "energy", FORCE: "force", STRESS: "stress"}


@dataclass(frozen=True)
class SearchGrid:
    """The values tried: 2J, cutoff scale ``rcutfac`` (Å for radelem 0.5), energy/force weight ratio, ridge."""

    twojmax: tuple[int, ...]
    rcutfac: tuple[float, ...]
    energy_weight: tuple[float, ...] = (10.0, 30.0, 100.0, 300.0, 1000.0)
    ridge_alpha: tuple[float, ...] = (1.0e-10, 1.0e-8, 1.0e-6, 1.0e-4)
    stress_weight: float = FitWeights.stress

    @property
    def size(self) -> int:
        return len(self.twojmax) * len(self.rcutfac) * len(self.energy_weight) * len(self.ridge_alpha)

    def to_dict(self) -> dict:
        return {
            "twojmax": list(self.twojmax),
            "rcutfac": list(self.rcutfac),
            "energy_weight": list(self.energy_weight),
            "ridge_alpha": list(self.ridge_alpha),
            "stress_weight": self.stress_weight,
            "force_weight": 1.0,
        }


def default_grid(frames: Sequence[Atoms]) -> SearchGrid:
    """2J in {4, 6, 8} and cutoffs at 0.9, 1.0 and 1.12 times :func:`default_rcutfac` (the second-neighbour scale of
    the data), so the grid follows any material. Quadratic SNAP at 2J=8 has 1596 columns; the ridge and the held-out
    folds decide whether they pay (on Stillinger-Weber Si they do: CV score 0.14 against 0.24 at 2J=6)."""
    base = default_rcutfac(frames)
    return SearchGrid(twojmax=(4, 6, 8), rcutfac=tuple(round(base * factor, 3) for factor in (0.9, 1.0, 1.12)))


def fold_of_frames(n_frames: int, folds: int, seed: int = 0) -> np.ndarray:
    """Fold index (0..folds-1) of each frame: a seeded shuffle dealt round-robin, so fold sizes differ by one."""
    if folds < 2 or folds > n_frames:
        raise ValueError(f"cross-validation needs 2 <= folds <= number of training frames ({n_frames}), got {folds}")
    order = np.random.default_rng(seed).permutation(n_frames)
    fold = np.empty(n_frames, dtype=int)
    fold[order] = np.arange(n_frames) % folds
    return fold


@dataclass
class _FoldSystems:
    """Per fold and row kind: ``A^T diag(c²) A`` and ``A^T diag(c²) b`` (``c`` the frame weight), labelled rows only."""

    gram: np.ndarray  # (folds, kinds, n, n)
    rhs: np.ndarray  # (folds, kinds, n)
    held_out: list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per fold: labelled rows' A, truth - reference, kind


def _fold_systems(design: DesignMatrix, fold: np.ndarray, columns: np.ndarray) -> _FoldSystems:
    n_folds = int(fold.max()) + 1
    a = design.A[:, columns]
    b = np.nan_to_num(design.b, nan=0.0)
    c = np.where(design.labelled, design.frame_weights[design.frame], 0.0)
    row_fold = fold[design.frame]
    gram = np.zeros((n_folds, len(_KINDS), len(columns), len(columns)))
    rhs = np.zeros((n_folds, len(_KINDS), len(columns)))
    for f in range(n_folds):
        for k, kind in enumerate(_KINDS):
            rows = (row_fold == f) & (design.kind == kind) & (c != 0)
            if np.any(rows):
                weighted = a[rows] * c[rows, None]
                gram[f, k] = weighted.T @ weighted
                rhs[f, k] = weighted.T @ (b[rows] * c[rows])
    held_out = []
    for f in range(n_folds):
        rows = np.flatnonzero((row_fold == f) & design.labelled)
        held_out.append((a[rows], design.truth[rows] - design.reference[rows], design.kind[rows]))
    return _FoldSystems(gram, rhs, held_out)


def solve_scaled_ridge(gram: np.ndarray, rhs: np.ndarray, alpha: float, unpenalized: Sequence[int]) -> np.ndarray:
    """Minimiser of ``|w(Ax - b)|² + alpha Σ_j G_jj x_j²`` from ``G = (wA)ᵀwA`` and ``(wA)ᵀwb`` (the normal equations
    of the ``scaled-ridge`` solver), solved in standardised columns for conditioning."""
    diag = np.diag(gram).copy()
    scale = np.sqrt(np.where(diag > 0, diag, 1.0))
    scaled = gram / scale[:, None] / scale[None, :]
    penalty = np.full(len(diag), alpha)
    penalty[list(unpenalized)] = 0.0
    scaled[np.diag_indices_from(scaled)] += penalty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        try:
            x = scipy.linalg.solve(scaled, rhs / scale, assume_a="pos")
        except (np.linalg.LinAlgError, ValueError):
            x = scipy.linalg.lstsq(scaled, rhs / scale)[0]
    return x / scale


@dataclass
class SearchResult:
    """The cross-validation table (one row per setting, best score first) and the chosen setting."""

    table: list[dict]
    folds: int
    seed: int
    grid: SearchGrid
    descriptor_seconds: float
    solve_seconds: float
    best_design: DesignMatrix | None = field(default=None, repr=False)

    @property
    def best(self) -> dict:
        return self.table[0]

    def params(self, base: SnapHyperparameters) -> SnapHyperparameters:
        return replace(base, twojmax=int(self.best["twojmax"]), rcutfac=float(self.best["rcutfac"]))

    def weights(self) -> FitWeights:
        return FitWeights(energy=float(self.best["energy_weight"]), force=1.0, stress=self.grid.stress_weight)

    def to_dict(self) -> dict:
        return {
            "folds": self.folds,
            "seed": self.seed,
            "grid": self.grid.to_dict(),
            "score": "energy_mae / 2.2 meV/atom + force_mae / 0.06 eV/Å (mean over held-out folds' rows)",
            "descriptor_seconds": self.descriptor_seconds,
            "solve_seconds": self.solve_seconds,
            "best": self.best,
            "table": self.table,
        }


def score(errors: dict[str, float]) -> float:
    """Energy and force MAE in units of :data:`SCORE_SCALES`, summed over the quantities present."""
    terms = [errors[f"{q}_mae"] / s for q, s in SCORE_SCALES.items() if math.isfinite(errors.get(f"{q}_mae", math.nan))]
    return float(sum(terms)) if terms else math.inf


def _cv_errors(systems: _FoldSystems, constants: list[int], weights: np.ndarray, alpha: float) -> dict[str, float]:
    """Held-out errors pooled over folds: each fold predicted by the fit to the others."""
    weighted_gram = np.tensordot(systems.gram, weights**2, axes=([1], [0]))  # (folds, n, n)
    weighted_rhs = np.einsum("fkn,k->fn", systems.rhs, weights**2)
    total_gram, total_rhs = weighted_gram.sum(axis=0), weighted_rhs.sum(axis=0)
    residuals: dict[int, list[np.ndarray]] = {kind: [] for kind in _KINDS}
    for f, (a, target, kind_of_row) in enumerate(systems.held_out):
        beta = solve_scaled_ridge(total_gram - weighted_gram[f], total_rhs - weighted_rhs[f], alpha, constants)
        residual = a @ beta - target
        for kind in _KINDS:
            residuals[kind].append(residual[kind_of_row == kind])
    out: dict[str, float] = {}
    for kind, parts in residuals.items():
        values = np.concatenate(parts)
        name = _NAMES[kind]
        out[f"{name}_mae"] = float(np.mean(np.abs(values))) if values.size else math.nan
        out[f"{name}_rmse"] = float(np.sqrt(np.mean(values**2))) if values.size else math.nan
    return out


def cross_validate(
    frames: Sequence[Atoms],
    base: SnapHyperparameters,
    grid: SearchGrid,
    folds: int = 5,
    seed: int = 0,
    reference: ReferencePotential | None = None,
    energy_shift: dict[str, float] | None = None,
    extend_cutoff: int = 2,
    progress: Callable[[str], None] | None = None,
) -> SearchResult:
    """Score every setting of ``grid`` by K-fold cross-validation over ``frames``; the table is sorted by score.

    Descriptors are computed once per (2J, cutoff) for all frames (a frame's rows do not depend on the others).
    When the best cutoff lies on the edge of the grid, the grid is extended past that edge (by the ratio of the two
    outermost cutoffs), at the best 2J, up to ``extend_cutoff`` times: the optimum is bracketed, not assumed. The
    design of the best (2J, cutoff) is kept in the result so the final fit does not recompute it.
    """
    fold = fold_of_frames(len(frames), folds, seed)
    table: list[dict] = []
    timing = {"descriptors": 0.0, "solve": 0.0}
    best: dict = {"score": math.inf, "design": None, "twojmax": None, "rcutfac": None}

    def evaluate(twojmax: int, rcutfac: float) -> None:
        params = replace(base, twojmax=int(twojmax), rcutfac=float(rcutfac))
        start = time.perf_counter()
        design = compute_descriptors(frames, params, reference=reference, energy_shift=energy_shift)
        timing["descriptors"] += time.perf_counter() - start
        start = time.perf_counter()
        n_elements = len(params.elements)
        n_block = design.A.shape[1] // n_elements
        constants = [i * n_block for i in range(n_elements)]
        columns = np.arange(design.A.shape[1])
        if params.bzeroflag:  # as fit_design: no per-element constant with bzeroflag
            columns = np.setdiff1d(columns, constants)
        kept_constants = [int(np.searchsorted(columns, c)) for c in constants if c in columns]
        systems = _fold_systems(design, fold, columns)
        local_best = math.inf
        for energy_weight in grid.energy_weight:
            weights = np.array([energy_weight, 1.0, grid.stress_weight])
            for alpha in grid.ridge_alpha:
                errors = _cv_errors(systems, kept_constants, weights, alpha)
                row = {
                    "twojmax": int(twojmax),
                    "rcutfac": float(rcutfac),
                    "energy_weight": float(energy_weight),
                    "ridge_alpha": float(alpha),
                    "n_coefficients": int(design.A.shape[1]),
                    **errors,
                }
                row["score"] = score(errors)
                table.append(row)
                local_best = min(local_best, row["score"])
        timing["solve"] += time.perf_counter() - start
        if local_best < best["score"]:
            best.update(score=local_best, design=design, twojmax=int(twojmax), rcutfac=float(rcutfac))
        if progress:
            progress(
                f"2J={twojmax} rcutfac={rcutfac}: best CV score {local_best:.3f} "
                f"({design.A.shape[0]} x {design.A.shape[1]} rows, {design.timing:.1f} s descriptors)"
            )

    for twojmax in grid.twojmax:
        for rcutfac in grid.rcutfac:
            evaluate(twojmax, rcutfac)
    cutoffs = sorted(grid.rcutfac)
    for _ in range(extend_cutoff if len(cutoffs) > 1 else 0):
        if best["rcutfac"] == cutoffs[0]:
            cutoffs.insert(0, round(cutoffs[0] * cutoffs[0] / cutoffs[1], 3))
            evaluate(best["twojmax"], cutoffs[0])
        elif best["rcutfac"] == cutoffs[-1]:
            cutoffs.append(round(cutoffs[-1] * cutoffs[-1] / cutoffs[-2], 3))
            evaluate(best["twojmax"], cutoffs[-1])
        else:
            break
    table.sort(key=lambda row: row["score"])
    return SearchResult(table, folds, seed, grid, timing["descriptors"], timing["solve"], best["design"])


def fit_best(
    result: SearchResult,
    frames: Sequence[Atoms],
    base: SnapHyperparameters,
    reference: ReferencePotential | None = None,
    energy_shift: dict[str, float] | None = None,
) -> tuple[SnapPotential, DesignMatrix]:
    """Refit the chosen setting on all training frames (the descriptors of the search are reused when kept)."""
    params = result.params(base)
    design = result.best_design
    if design is None or design.params != params:
        design = compute_descriptors(frames, params, reference=reference, energy_shift=energy_shift)
    potential = fit_design(
        design, result.weights(), solver=SOLVER, ridge_alpha=float(result.best["ridge_alpha"]), reference=reference
    )
    return potential, design
