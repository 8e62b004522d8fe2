"""``aiida-nanoos benchmark gp-latency``: time of one BO step on one core (GP fit with hyper-parameter search, then
the expected-improvement arg-max over a candidate pool). Goal: <= 1 s for 1000 observations, 10^4 candidates.

Two acquisition timings are printed: ``argmax`` (what a campaign does: the exact best candidate, with the posterior
std computed only where a cheap upper bound says it can matter, :func:`~aiida_nanoos.acquisition.optimize.
argmax_acquisition`) and ``full`` (EI of every candidate, for reference); both pick the same candidate."""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

import click
import numpy as np

from aiida_nanoos.benchmarks import options


def measure(n_obs: int, n_candidates: int, dims: int, repeats: int, seed: int) -> dict[str, Any]:
    """Fresh model each repeat (no warm start), so every timing includes the full hyper-parameter optimisation."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from aiida_nanoos.acquisition.analytic import expected_improvement
    from aiida_nanoos.acquisition.optimize import argmax_acquisition
    from aiida_nanoos.models.gp import GaussianProcess

    rng = np.random.default_rng(seed)
    X = rng.random((n_obs, dims))
    weights = np.linspace(1.0, 0.1, dims)
    y = np.sin(3.0 * X @ weights) + 0.5 * np.cos(5.0 * X[:, 0]) + 0.05 * rng.standard_normal(n_obs)
    candidates = rng.random((n_candidates, dims))
    timings = []
    with threadpool_limits(limits=1):
        blas = [(i.get("internal_api"), i.get("num_threads")) for i in threadpool_info()]
        for r in range(repeats + 1):  # the first is reported separately as the cold run
            gp = GaussianProcess("matern52", ard=True, seed=seed + r)
            t0 = time.perf_counter()
            gp.fit(X, y)
            t1 = time.perf_counter()
            best, _ = argmax_acquisition(gp, candidates, "EI", best=float(y.max()))
            t2 = time.perf_counter()
            mean, std = gp.predict(candidates)
            best_full = int(np.argmax(expected_improvement(mean, std, float(y.max()))))
            t3 = time.perf_counter()
            if best != best_full:
                raise RuntimeError(f"pruned arg-max {best} differs from the full one {best_full}")
            timings.append(
                {"fit": t1 - t0, "argmax": t2 - t1, "total": t2 - t0, "full_acquisition": t3 - t2, "best_index": best}
            )
    warm = timings[1:] or timings
    return {
        "n_obs": n_obs,
        "n_candidates": n_candidates,
        "dims": dims,
        "repeats": repeats,
        "kernel": "matern52 ARD",
        "n_hyperopt_starts": gp.n_hyperopt_starts,
        "n_hyperopt_points": gp.n_hyperopt_points,
        "blas_threads": blas,
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "cold": timings[0],
        "median": {k: statistics.median(t[k] for t in warm) for k in ("fit", "argmax", "total", "full_acquisition")},
        "max": {k: max(t[k] for t in warm) for k in ("fit", "argmax", "total", "full_acquisition")},
        "goal_seconds": 1.0,
    }


@click.command("gp-latency")
@click.option("--n-obs", default=1000, show_default=True, help="Observations the GP is fitted to.")
@click.option("--n-candidates", default=10000, show_default=True, help="Candidates scored by expected improvement.")
@click.option("--dims", default=6, show_default=True, help="Input dimensions.")
@click.option("--repeats", default=3, show_default=True, help="Timed repeats after one cold run.")
@click.option("--seed", default=0, show_default=True)
@options.json_output
def command(n_obs: int, n_candidates: int, dims: int, repeats: int, seed: int, as_json: bool) -> None:
    """Latency of one GP fit + acquisition over a candidate pool, on one core."""
    result = measure(n_obs, n_candidates, dims, repeats, seed)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    med, cold = result["median"], result["cold"]
    click.echo(
        f"GP latency: {n_obs} observations, {n_candidates} candidates, {dims} dims, one BLAS thread "
        f"({result['blas_threads']}), load average {result['load_average']}"
    )
    click.echo(
        f"hyper-parameters: ARD Matern 5/2, MAP by L-BFGS-B from {result['n_hyperopt_starts']} starts on "
        f"{result['n_hyperopt_points']} of {n_obs} observations; final Cholesky on all of them"
    )
    click.echo(f"{'':8}{'fit (s)':>10}{'EI arg-max (s)':>16}{'total (s)':>11}{'   [EI of all candidates (s)]':>30}")
    for name, t in (("cold", cold), ("median", med)):
        click.echo(f"{name:8}{t['fit']:10.3f}{t['argmax']:16.3f}{t['total']:11.3f}{t['full_acquisition']:30.3f}")
    verdict = "meets" if med["total"] <= result["goal_seconds"] else "misses"
    click.echo(f"median total {med['total']:.3f} s {verdict} the {result['goal_seconds']:.0f} s goal")
