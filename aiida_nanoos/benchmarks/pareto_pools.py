"""Pools for the many-objective benchmark (``benchmark bo-pareto``): ZDT1/ZDT2/DTLZ2 sampled in the unit cube, and
pools built from any table with several objective columns (inputs from columns or a formula's composition)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SYNTHETIC = ("zdt1", "zdt2", "dtlz2")
#: Fraction of each objective's pool range added beyond its worst value to make the reference point.
REFERENCE_MARGIN = 0.1


# ------------------------------------------------------------------------------------------------------- pools
@dataclass
class ParetoPool:
    """A discrete pool: unit-cube inputs ``X`` (n, d) and objectives ``Y`` (n, m) in their own units."""

    name: str
    X: np.ndarray
    Y: np.ndarray
    objectives: list[str]
    directions: list[str]
    input_names: list[str] = field(default_factory=list)
    reference: np.ndarray = field(init=False)
    max_hypervolume: float = field(init=False)

    def __post_init__(self) -> None:
        from aiida_nanoos.acquisition.hypervolume import hypervolume

        sign = self.sign
        oriented = self.Y * sign  # larger is better
        span = np.ptp(oriented, axis=0)
        self.reference = (oriented.min(axis=0) - REFERENCE_MARGIN * np.where(span > 0, span, 1.0)) * sign
        self.max_hypervolume = hypervolume(self.Y, self.reference, self.directions)

    @property
    def sign(self) -> np.ndarray:
        """+1 for maximised objectives, -1 for minimised ones: ``Y * sign`` is larger-is-better."""
        return np.array([1.0 if d == "max" else -1.0 for d in self.directions])

    def describe(self) -> dict[str, Any]:
        from aiida_nanoos.design.pareto import pareto_mask

        return {
            "name": self.name,
            "n_points": len(self.Y),
            "n_inputs": self.X.shape[1],
            "objectives": [f"{o}:{d}" for o, d in zip(self.objectives, self.directions, strict=True)],
            "reference_point": self.reference.tolist(),
            "pareto_front_size": int(pareto_mask(self.Y, self.directions).sum()),
            "max_hypervolume": self.max_hypervolume,
        }


def zdt(X: np.ndarray, kind: str) -> np.ndarray:
    """ZDT1 / ZDT2 (Zitzler, Deb & Thiele 2000), both objectives minimised; the front is g = 1."""
    f1 = X[:, 0]
    g = 1.0 + 9.0 * X[:, 1:].mean(axis=1)
    ratio = f1 / g
    f2 = g * (1.0 - (np.sqrt(ratio) if kind == "zdt1" else ratio**2))
    return np.column_stack([f1, f2])


def dtlz2(X: np.ndarray, n_objectives: int = 3) -> np.ndarray:
    """DTLZ2 (Deb, Thiele, Laumanns & Zitzler 2002), all minimised; the front is the unit sphere's positive octant."""
    m = n_objectives
    g = np.sum((X[:, m - 1 :] - 0.5) ** 2, axis=1)
    angles = X[:, : m - 1] * np.pi / 2.0
    F = np.tile((1.0 + g)[:, None], (1, m))
    for i in range(m):
        F[:, i] *= np.prod(np.cos(angles[:, : m - 1 - i]), axis=1)
        if i > 0:
            F[:, i] *= np.sin(angles[:, m - 1 - i])
    return F


def synthetic_pool(name: str, n_points: int, n_dims: int, seed: int) -> ParetoPool:
    """``n_points`` uniform draws in [0, 1]^n_dims of a test problem (the same pool for every method and run)."""
    if name not in SYNTHETIC:
        raise ValueError(f"unknown problem {name!r}, choose from {SYNTHETIC}")
    X = np.random.default_rng(seed).random((n_points, n_dims))
    Y = dtlz2(X) if name == "dtlz2" else zdt(X, name)
    return ParetoPool(
        name=f"{name} (d={n_dims}, {n_points} points)",
        X=X,
        Y=Y,
        objectives=[f"f{i + 1}" for i in range(Y.shape[1])],
        directions=["min"] * Y.shape[1],
        input_names=[f"x{i + 1}" for i in range(n_dims)],
    )


def parse_objectives(text: str) -> list[tuple[str, str]]:
    """``"heat_all:min,dir_gap:max"`` -> [("heat_all", "min"), ("dir_gap", "max")]."""
    parsed = []
    for item in text.split(","):
        column, _, direction = item.strip().rpartition(":")
        if not column or direction not in ("min", "max"):
            raise ValueError(f"objective {item.strip()!r}: expected COLUMN:min or COLUMN:max")
        parsed.append((column, direction))
    if len(parsed) < 2:
        raise ValueError("a Pareto benchmark needs at least two objectives")
    if len({c for c, _ in parsed}) != len(parsed):
        raise ValueError("an objective column is named twice")
    return parsed


def composition_features(formulas: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Fraction-weighted mean, minimum and maximum over the elements of each formula of the raw element properties
    of :func:`aiida_nanoos.models.graph.element_properties` (electronegativity, radius, valence...): a descriptor a
    GP can use for compositions it has not seen, unlike a one-hot formula."""
    from ase.data import atomic_numbers
    from ase.formula import Formula

    from aiida_nanoos.models.graph import ELEMENT_PROPERTY_NAMES, element_properties

    table: dict[str, np.ndarray] = {}
    rows = []
    for text in formulas:
        counts = Formula(str(text)).count()
        if not counts:
            raise ValueError(f"formula {text!r} has no elements")
        for symbol in counts:
            if symbol not in table:
                if symbol not in atomic_numbers:
                    raise ValueError(f"formula {text!r}: unknown element {symbol!r}")
                props = element_properties(atomic_numbers[symbol])
                table[symbol] = np.array([props[p] for p in ELEMENT_PROPERTY_NAMES])
        values = np.array([table[s] for s in counts])
        weights = np.array(list(counts.values()), dtype=float)
        weights /= weights.sum()
        rows.append(np.concatenate([weights @ values, values.min(axis=0), values.max(axis=0)]))
    names = [f"{stat}_{p}" for stat in ("mean", "min", "max") for p in ELEMENT_PROPERTY_NAMES]
    return np.array(rows), names


def csv_pool(
    csv_path: str | Path,
    objectives: Sequence[tuple[str, str]],
    *,
    inputs: Sequence[str] = (),
    formula: str | None = None,
    pool_size: int | None = None,
    seed: int = 0,
) -> ParetoPool:
    """A pool from a table: rows with every objective and input present, optionally a seeded subsample of
    ``pool_size`` rows. Inputs: the ``inputs`` columns (numeric, or one-hot for text) and composition features of
    the ``formula`` column; without either, every numeric column that is not an objective."""
    import pandas as pd

    frame = pd.read_csv(csv_path)
    names = [c for c, _ in objectives]
    inputs = list(inputs)
    missing = [c for c in [*names, *inputs, *([formula] if formula else [])] if c not in frame.columns]
    if missing:
        raise ValueError(f"columns {missing} not in {list(frame.columns)}")
    if set(inputs) & set(names) or formula in names:
        raise ValueError("an objective column cannot also be an input")
    if not inputs and formula is None:
        inputs = [c for c in frame.columns if c not in names and pd.api.types.is_numeric_dtype(frame[c])]
        if not inputs:
            raise ValueError("no numeric input column: pass --inputs or --formula")
    used = [*names, *inputs, *([formula] if formula else [])]
    frame = frame[used].dropna()
    for column in names:
        frame[column] = pd.to_numeric(frame[column], errors="raise")
    if pool_size is not None and pool_size < len(frame):
        frame = frame.sample(n=pool_size, random_state=seed)
    blocks, input_names = [], []
    for column in inputs:
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            blocks.append(values.to_numpy(dtype=float)[:, None])
            input_names.append(column)
        else:
            dummies = pd.get_dummies(values.astype(str), prefix=column, prefix_sep="=")
            blocks.append(dummies.to_numpy(dtype=float))
            input_names.extend(dummies.columns)
    if formula is not None:
        features, feature_names = composition_features(frame[formula].tolist())
        blocks.append(features)
        input_names.extend(feature_names)
    X = np.hstack(blocks)
    low, span = X.min(axis=0), np.ptp(X, axis=0)
    varying = span > 0  # constant columns say nothing
    X = (X[:, varying] - low[varying]) / span[varying]
    directions = [d for _, d in objectives]
    label = ",".join(f"{c}:{d}" for c, d in objectives)
    return ParetoPool(
        name=f"{Path(csv_path).name} [{label}] ({len(frame)} rows)",
        X=X,
        Y=frame[names].to_numpy(dtype=float),
        objectives=names,
        directions=directions,
        input_names=[n for n, keep in zip(input_names, varying, strict=True) if keep],
    )
