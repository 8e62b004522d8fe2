"""Cross-validated choice of SNAP hyper-parameters (potentials.snap.search) on Stillinger-Weber Si frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aiida_nanoos.potentials import snap
from aiida_nanoos.potentials.snap import search
from tests.core.potentials.si_sw_frames import stillinger_weber_si

GRID = search.SearchGrid(twojmax=(2, 4), rcutfac=(3.6, 4.2), energy_weight=(10.0, 300.0), ridge_alpha=(1.0e-8, 1.0e-2))


@pytest.fixture(scope="module")
def frames():
    return stillinger_weber_si(18, seed=3)


@pytest.fixture(scope="module")
def base():
    return snap.SnapHyperparameters.for_elements(("Si",))


@pytest.fixture(scope="module")
def result(frames, base):
    return search.cross_validate(frames, base, GRID, folds=3, seed=1, extend_cutoff=0)


def test_folds_are_balanced_seeded_and_bounded():
    fold = search.fold_of_frames(10, 3, seed=5)
    assert sorted(np.bincount(fold)) == [3, 3, 4]
    assert np.array_equal(fold, search.fold_of_frames(10, 3, seed=5))
    assert not np.array_equal(fold, search.fold_of_frames(10, 3, seed=6))
    with pytest.raises(ValueError, match="folds"):
        search.fold_of_frames(3, 4)


def test_table_is_sorted_by_score_and_the_best_is_its_minimum(result):
    assert len(result.table) == GRID.size == 16
    scores = [row["score"] for row in result.table]
    assert scores == sorted(scores) and result.best["score"] == min(scores)
    for row in result.table:
        assert row["score"] == pytest.approx(row["energy_mae"] / 2.2e-3 + row["force_mae"] / 0.06)
    # A strong ridge (1e-2 of each column's weight) underfits: every best-of-(2J, cutoff) uses the weak one.
    best_per_setting = {}
    for row in result.table:
        best_per_setting.setdefault((row["twojmax"], row["rcutfac"]), row)
    assert {row["ridge_alpha"] for row in best_per_setting.values()} == {1.0e-8}
    # SW acts within 3.77 Å: a 2J=4 basis beats 2J=2 at the same cutoff.
    for cutoff in GRID.rcutfac:
        assert best_per_setting[(4, cutoff)]["score"] < best_per_setting[(2, cutoff)]["score"]


def test_cv_errors_equal_explicit_refits_on_the_other_folds(frames, base, result):
    """The Gram-matrix shortcut gives exactly the held-out errors of fitting each fold's complement from scratch."""
    row = result.table[3]
    params = snap.SnapHyperparameters.for_elements(("Si",), twojmax=row["twojmax"], rcutfac=row["rcutfac"])
    design = snap.compute_descriptors(frames, params)
    weights = snap.FitWeights(energy=row["energy_weight"], force=1.0, stress=GRID.stress_weight)
    fold = search.fold_of_frames(len(frames), 3, seed=1)
    energy, force = [], []
    for f in range(3):
        train, held = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        potential = snap.fit_design(
            design.subset(train), weights, solver="scaled-ridge", ridge_alpha=row["ridge_alpha"]
        )
        part = design.subset(held)
        residual = part.predict(potential.coefficients) - part.truth
        energy.append(residual[part.kind == snap.ENERGY])
        force.append(residual[part.kind == snap.FORCE])
    assert row["energy_mae"] == pytest.approx(np.mean(np.abs(np.concatenate(energy))), rel=1e-6)
    assert row["force_mae"] == pytest.approx(np.mean(np.abs(np.concatenate(force))), rel=1e-6)


def test_final_fit_uses_the_chosen_setting_and_reuses_its_descriptors(frames, base, result):
    potential, design = search.fit_best(result, frames, base)
    best = result.best
    assert design is result.best_design
    assert (potential.params.twojmax, potential.params.rcutfac) == (best["twojmax"], best["rcutfac"])
    assert potential.metadata["solver"] == "scaled-ridge" and potential.metadata["ridge_alpha"] == best["ridge_alpha"]
    assert potential.metadata["weights"]["energy"] == best["energy_weight"]
    # Fitted to all frames it fits them at least as well as the held-out folds were predicted.
    residual = design.predict(potential.coefficients) - design.truth
    assert np.mean(np.abs(residual[design.kind == snap.FORCE])) <= best["force_mae"]


def test_scaled_ridge_normal_equations_match_the_least_squares_solver(frames, base):
    design = snap.compute_descriptors(frames[:6], base)
    w = design.row_weights(snap.FitWeights())
    a, b = design.A * w[:, None], design.b * w
    for alpha in (1.0e-9, 1.0e-3):
        direct = snap.solve_weighted_least_squares(design.A, design.b, w, "scaled-ridge", alpha, unpenalized=[0])
        normal = search.solve_scaled_ridge(a.T @ a, a.T @ b, alpha, unpenalized=[0])
        assert np.allclose(direct, normal, rtol=1e-6, atol=1e-8 * np.abs(direct).max())
    strong = snap.solve_weighted_least_squares(design.A, design.b, w, "scaled-ridge", 1.0e3, unpenalized=[0])
    assert np.abs(strong[1:]).max() < 1e-2 * np.abs(direct[1:]).max()  # shrunk towards zero except the constant


def test_cutoff_grid_is_extended_past_the_edge_that_wins(frames, base):
    """When the best cutoff is on an edge of the grid, one more cutoff beyond it (same ratio) is scored."""
    grid = search.SearchGrid(twojmax=(4,), rcutfac=(5.0, 6.0), energy_weight=(100.0,), ridge_alpha=(1.0e-8,))
    found = search.cross_validate(frames, base, grid, folds=3, extend_cutoff=1)
    initial = [row for row in found.table if row["rcutfac"] in grid.rcutfac]
    winner = min(initial, key=lambda row: row["score"])["rcutfac"]
    beyond = 7.2 if winner == 6.0 else round(5.0 * 5.0 / 6.0, 3)
    assert sorted(row["rcutfac"] for row in found.table) == sorted([5.0, 6.0, beyond])
    assert math.isfinite(found.best["score"]) and found.best["score"] <= min(row["score"] for row in initial)


def test_default_grid_follows_the_data_scale(frames):
    grid = search.default_grid(frames)
    base = snap.default_rcutfac(frames)
    assert grid.twojmax == (4, 6, 8) and grid.size == 3 * 3 * 5 * 4
    assert grid.rcutfac == pytest.approx((0.9 * base, base, 1.12 * base), abs=1e-3)
