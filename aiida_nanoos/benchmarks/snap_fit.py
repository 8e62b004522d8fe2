"""Train a SNAP potential on one set of DFT frames and measure it on another (``aiida-nanoos benchmark snap``).

Training errors are computed from the design matrix (FitSNAP's definition, so they compare with its
``*_metrics.md``); test errors from ``pair_style snap`` in LAMMPS, the path an MD run takes. When both sets are the
same, the two routes are also compared with each other as a self-consistency check of the written potential files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from aiida_nanoos.potentials import metrics as pm
from aiida_nanoos.potentials import snap
from aiida_nanoos.potentials.fitsnap_input import read_fitsnap_input
from aiida_nanoos.potentials.frames import read_frames

#: FitSNAP's metrics files print 6 significant digits; ratios are taken after rounding ours the same way.
_REFERENCE_DIGITS = 6


@dataclass
class SnapBenchmarkSettings:
    """What to fit; ``None`` means "from the FitSNAP input if given, else the package default"."""

    train: str
    test: str
    fitsnap_input: str | None = None
    reference_metrics: str | None = None
    twojmax: int | None = None
    rcutfac: float | None = None
    quadratic: bool | None = None
    zbl: bool | None = None
    zbl_inner: float = 4.0
    zbl_outer: float = 4.8
    solver: str | None = None
    ridge_alpha: float = 1.0e-6
    energy_weight: float | None = None
    force_weight: float | None = None
    stress_weight: float | None = None
    stress_unit: str = "auto"
    write_potential: str | None = None


def _round_significant(value: float, digits: int = _REFERENCE_DIGITS) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


def _summary(table: dict, group: str = pm.ALL_GROUPS) -> dict:
    out = {}
    for quantity in ("Energy", "Force", "Stress"):
        stats = table.get((group, "Unweighted", quantity))
        if stats is not None:
            out[quantity.lower()] = {"mae": stats.mae, "rmse": stats.rmse, "count": stats.count}
    return out


def read_train_test(train: str, test: str, stress_unit: str = "auto") -> tuple[list[Atoms], list[Atoms], bool, float]:
    """Training and test frames, whether they are the same file, and the seconds spent reading."""
    start = time.perf_counter()
    train_frames = read_frames(train, stress_unit=stress_unit)
    same = Path(train).resolve() == Path(test).resolve()
    test_frames = train_frames if same else read_frames(test, stress_unit=stress_unit)
    return train_frames, test_frames, same, time.perf_counter() - start


def elements_of(*frame_sets: Sequence[Atoms]) -> tuple[str, ...]:
    """Elements present in any frame, by atomic number (the LAMMPS type order of a fit)."""
    present = {s for frames in frame_sets for atoms in frames for s in atoms.get_chemical_symbols()}
    return tuple(sorted(present, key=lambda s: atomic_numbers[s]))


def snap_errors(design, potential: snap.SnapPotential, weights: snap.FitWeights, test: Sequence[Atoms]) -> tuple:
    """Training errors from the design matrix (FitSNAP's definition) and test errors through ``pair_style snap``:
    ``(train_table, test_table, test_predictions, predict_seconds)``."""
    linear = design.predict(potential.coefficients)
    train_table = pm.error_table(pm.parity_from_design(design, linear, design.row_weights(weights)))
    start = time.perf_counter()
    predictions = potential.predict(test)
    predict_seconds = time.perf_counter() - start
    return train_table, pm.error_table(pm.parity_from_frames(test, predictions, weights)), predictions, predict_seconds


def error_report(train_table: dict, test_table: dict) -> dict:
    """The error keys every potential benchmark reports (``train_errors``, ``test_errors`` and per group), in eV/atom,
    eV/Å and bar: ``{quantity: {mae, rmse, count}}``."""
    return {
        "train_errors": _summary(train_table),
        "test_errors": _summary(test_table),
        "train_errors_by_group": {group: _summary(train_table, group) for group in sorted({k[0] for k in train_table})},
        "test_errors_by_group": {group: _summary(test_table, group) for group in sorted({k[0] for k in test_table})},
    }


def run_snap_benchmark(settings: SnapBenchmarkSettings) -> dict:
    """Fit on ``settings.train``, evaluate on ``settings.test``; returns every figure as a JSON-able dict."""
    train, test, same, read_seconds = read_train_test(settings.train, settings.test, settings.stress_unit)
    present = set(elements_of(train, test))
    fitsnap = read_fitsnap_input(settings.fitsnap_input) if settings.fitsnap_input else None
    if fitsnap is not None:
        missing = present - set(fitsnap.params.elements)
        if missing:
            raise ValueError(f"elements {sorted(missing)} are not in the FitSNAP input's types")
        params, weights, reference = fitsnap.params, fitsnap.weights, fitsnap.reference
        energy_shift, solver = fitsnap.energy_shift, fitsnap.solver
    else:
        params = snap.SnapHyperparameters.for_elements(elements_of(train, test), rcutfac=snap.default_rcutfac(train))
        weights, reference, energy_shift, solver = snap.FitWeights(), None, {}, "svd"
    if settings.twojmax is not None:
        params = replace(params, twojmax=settings.twojmax)
    if settings.rcutfac is not None:
        params = replace(params, rcutfac=settings.rcutfac)
    if settings.quadratic is not None:
        params = replace(params, quadraticflag=settings.quadratic)
    if settings.zbl is True:
        reference = snap.ReferencePotential.zbl(params.elements, settings.zbl_inner, settings.zbl_outer)
    elif settings.zbl is False:
        reference = None
    solver = settings.solver or solver
    for name, attribute in (("energy_weight", "energy"), ("force_weight", "force"), ("stress_weight", "stress")):
        value = getattr(settings, name)
        if value is not None:
            weights = replace(weights, **{attribute: value})

    design = snap.compute_descriptors(train, params, reference=reference, energy_shift=energy_shift)
    potential = snap.fit_design(design, weights, solver=solver, ridge_alpha=settings.ridge_alpha, reference=reference)
    linear = design.predict(potential.coefficients)
    train_table, test_table, predictions, predict_seconds = snap_errors(design, potential, weights, test)

    results: dict = {
        "train": str(settings.train),
        "test": str(settings.test),
        "same_set": same,
        "n_train_frames": len(train),
        "n_test_frames": len(test),
        "n_train_atoms": int(sum(len(a) for a in train)),
        "elements": list(params.elements),
        "params": params.to_dict(),
        "reference_potential": None if reference is None else reference.to_dict(),
        "solver": solver,
        "fit_constant": potential.metadata["fit_constant"],
        "n_coefficients": int(potential.coefficients.size),
        "design_shape": list(design.A.shape),
        "group_weights_from": settings.fitsnap_input or "defaults",
        "timing_seconds": {
            "read": read_seconds,
            "descriptors": design.timing,
            "fit": potential.metadata["fit_seconds"],
            "predict_test_lammps": predict_seconds,
        },
        **error_report(train_table, test_table),
    }
    if same:  # the potential files in LAMMPS must reproduce the linear model exactly
        energies = design.frame_energies(linear) - np.array(
            [sum(energy_shift.get(s, 0.0) for s in atoms.get_chemical_symbols()) for atoms in train]
        )
        forces = design.frame_forces(linear)
        results["lammps_vs_linear"] = {
            "max_energy_per_atom_diff": float(
                max(abs(e - p.energy) / len(a) for e, p, a in zip(energies, predictions, train, strict=True))
            ),
            "max_force_diff": float(max(np.abs(f - p.forces).max() for f, p in zip(forces, predictions, strict=True))),
        }
    if settings.reference_metrics:
        reference_table = pm.read_fitsnap_metrics(settings.reference_metrics)
        ratios = {}
        for quantity in ("Energy", "Force"):
            key = (pm.ALL_GROUPS, "Unweighted", quantity)
            ours, theirs = train_table.get(key), reference_table.get(key)
            if ours is None or theirs is None:
                continue
            for measure in ("mae", "rmse"):
                value, ref = getattr(ours, measure), getattr(theirs, measure)
                ratios[f"{quantity.lower()}_{measure}"] = {
                    "ours": value,
                    "reference": ref,
                    "ratio": _round_significant(value) / ref,
                    "ratio_unrounded": value / ref,
                }
        results["reference_metrics"] = {"file": str(settings.reference_metrics), "ratios": ratios}
    if settings.write_potential:
        coeff, param = potential.write(settings.write_potential, "snap")
        results["potential_files"] = [str(coeff), str(param)]
        results["pair_commands"] = potential.lammps_commands(coeff.name, param.name)
    return results


def format_report(results: dict) -> str:
    """Human-readable summary of :func:`run_snap_benchmark`."""
    p = results["params"]
    lines = [
        f"SNAP benchmark: train {results['train']} ({results['n_train_frames']} frames, "
        f"{results['n_train_atoms']} atoms), test {results['test']} ({results['n_test_frames']} frames)"
        + (" [test = train: training errors]" if results["same_set"] else ""),
        f"  elements {', '.join(results['elements'])}; 2J={p['twojmax']} rcutfac={p['rcutfac']} "
        f"quadratic={int(p['quadraticflag'])} bzeroflag={int(p['bzeroflag'])}; "
        f"{results['n_coefficients']} coefficients; solver {results['solver']}; "
        f"reference {results['reference_potential']['pair_style'] if results['reference_potential'] else 'none'}; "
        f"weights from {results['group_weights_from']}",
        f"  time: descriptors {results['timing_seconds']['descriptors']:.2f} s (design {results['design_shape'][0]}"
        f" x {results['design_shape'][1]}), fit {results['timing_seconds']['fit']:.2f} s, "
        f"LAMMPS prediction of the test set {results['timing_seconds']['predict_test_lammps']:.2f} s",
    ]
    units = {"energy": "eV/atom", "force": "eV/Å", "stress": "bar"}
    for label in ("train", "test"):
        for quantity, stats in results[f"{label}_errors"].items():
            lines.append(
                f"  {label:5s} {quantity:6s} RMSE {stats['rmse']:.6g}  MAE {stats['mae']:.6g} {units[quantity]}"
                f"  (n={stats['count']})"
            )
    if "lammps_vs_linear" in results:
        check = results["lammps_vs_linear"]
        lines.append(
            f"  pair_style snap vs linear model: max |dE| {check['max_energy_per_atom_diff']:.2e} eV/atom, "
            f"max |dF| {check['max_force_diff']:.2e} eV/Å"
        )
    if "reference_metrics" in results:
        lines.append(
            f"  vs reference metrics {results['reference_metrics']['file']}"
            " (*ALL unweighted, goal ratio <= 1.00; 'equal' = within 1e-5):"
        )
        for name, r in results["reference_metrics"]["ratios"].items():
            verdict = "equal" if abs(r["ratio"] - 1.0) <= 1.0e-5 else ("better" if r["ratio"] < 1.0 else "WORSE")
            lines.append(
                f"    {name:12s} ours {r['ours']:.6g} ref {r['reference']:.6g} ratio {r['ratio']:.4f} "
                f"(unrounded {r['ratio_unrounded']:.7f}) {verdict}"
            )
    goal = results.get("goal_force_rmse")
    if goal is not None:
        value = results["train_errors" if results["same_set"] else "test_errors"]["force"]["rmse"]
        lines.append(f"  force RMSE {value:.6g} eV/Å vs goal <= {goal} eV/Å: {'ok' if value <= goal else 'MISSED'}")
    if "potential_files" in results:
        lines.append(f"  potential written: {', '.join(results['potential_files'])}")
    return "\n".join(lines)
