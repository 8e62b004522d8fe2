"""``aiida-nanoos benchmark transfer``: does a warm start from an earlier, related campaign save evaluations?

Protocol. Each problem is a synthetic landscape (:mod:`.synthetic`) sampled into a pool of candidates (the new
campaign, task 0) and an earlier campaign's evaluations at other random points of a *source* task, either related
(the same landscape seen through another method: rescaled, offset, slightly shifted and with a smooth error of its
own, as an ML model or another functional would see it) or unrelated (another landscape of the same dimension). Each
seeded run counts the evaluations needed to find half of the pool's best 5 % (:mod:`.pool_protocol`), initial points
included: a cold start begins with 2 random pool points (a GP needs two), the warm starts pick their first candidate
with the model of the earlier data, as a warm-started campaign picks its first batch. Methods: ``cold`` (the
campaign's BO, no earlier data), ``warm`` (:func:`aiida_nanoos.design.transfer.fit_transfer_model`: the earlier data
as a task of their own) and ``pooled`` (the earlier values thrown in with the new ones as if they were the same
task, the naive warm start). The figure is the ratio of medians warm / cold per problem; goals: <= 0.6 on related
tasks and <= 1.1 on unrelated ones.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
import numpy as np

from aiida_nanoos.benchmarks.options import RATIO_RUNS
from aiida_nanoos.benchmarks.pool_protocol import (
    PoolDataset,
    Strategy,
    median_ratio_interval,
    nanoos_strategy,
    percentiles,
    run_pool_campaign,
)
from aiida_nanoos.benchmarks.synthetic import Landscape, landscape, sample_pool
from aiida_nanoos.design.bo import BOSettings
from aiida_nanoos.design.transfer import EarlierTask, fit_transfer_model

#: (target, unrelated partner of the same dimension): smooth, multi-modal and ridge-shaped landscapes in 2-6 inputs.
PROBLEMS = {
    "branin": (("branin", None), ("levy", 2)),
    "hartmann3": (("hartmann3", None), ("rosenbrock", 3)),
    "levy4": (("levy", 4), ("ackley", 4)),
    "hartmann6": (("hartmann6", None), ("ackley", 6)),
}
RELATIONS = ("related", "unrelated")
METHODS = ("cold", "warm", "pooled")
#: Random pool points before the first model-based pick: a cold start needs two to fit a GP; a warm start has the
#: earlier campaign's data, so its first pick is already the model's (as a warm-started campaign's first batch is).
INITIAL_POINTS = {"cold": 2, "warm": 0, "pooled": 0}


def related_task(function: Landscape, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """The landscape as another method sees it: 1.3x its values plus an offset, inputs shifted by 2 % of the range,
    and a smooth error of 15 % of the values' spread along a fixed random direction."""
    rng = np.random.default_rng(10_000 + seed)
    spread = float(function(rng.random((2000, function.dims))).std())
    direction = rng.normal(size=function.dims)
    direction /= np.linalg.norm(direction)

    def source(u: np.ndarray) -> np.ndarray:
        shifted = np.clip(u + 0.02, 0.0, 1.0)
        error = 0.15 * spread * np.sin(2 * np.pi * (u @ direction))
        return 1.3 * function(shifted) + 0.5 * spread + error

    return source


@dataclass
class Problem:
    name: str
    relation: str
    pool: PoolDataset
    earlier: EarlierTask


def make_problem(name: str, relation: str, seed: int, pool_size: int, n_earlier: int) -> Problem:
    """The pool of run ``seed`` (new random candidates each run) and the earlier campaign's random evaluations."""
    (target_name, target_dims), (other_name, other_dims) = PROBLEMS[name]
    target = landscape(target_name, target_dims)
    X, y = sample_pool(target, pool_size, seed)
    pool = PoolDataset(X=X, y=y, input_names=[f"u{i}" for i in range(target.dims)], objective=name, maximize=False)
    source = related_task(target, seed) if relation == "related" else landscape(other_name, other_dims)
    X_earlier = np.random.default_rng(20_000 + seed).random((n_earlier, target.dims))
    return Problem(name, relation, pool, EarlierTask(X_earlier, source(X_earlier), label=f"{relation} source"))


def warm_strategy(earlier: EarlierTask, seed: int, settings: BOSettings) -> Strategy:
    state: dict[str, Any] = {"model": None}

    def score(X_obs: np.ndarray, y_obs: np.ndarray, X_cand: np.ndarray, refit: bool) -> np.ndarray:
        model = fit_transfer_model(
            X_obs, y_obs, [earlier], maximize=False, model=state["model"], optimize=refit, seed=seed
        )
        state["model"] = model.gp
        return model.scores(X_cand, settings)

    return Strategy("warm: multi-task GP (shared + own components)", score)


def pooled_strategy(pool: PoolDataset, earlier: EarlierTask, seed: int) -> Strategy:
    cold = nanoos_strategy(pool.X, maximize=False, seed=seed)

    def score(X_obs: np.ndarray, y_obs: np.ndarray, X_cand: np.ndarray, refit: bool) -> np.ndarray:
        return cold.score(np.vstack([X_obs, earlier.X_unit]), np.concatenate([y_obs, earlier.y]), X_cand, refit)

    return Strategy("pooled: earlier values taken as the new task's", score)


def strategy_for(method: str, problem: Problem, seed: int) -> Strategy:
    if method == "cold":
        return nanoos_strategy(problem.pool.X, maximize=False, seed=seed)
    if method == "warm":
        return warm_strategy(problem.earlier, seed, BOSettings())
    return pooled_strategy(problem.pool, problem.earlier, seed)


def run(
    problems: list[str],
    relations: list[str],
    methods: list[str],
    runs: int,
    pool_size: int,
    n_earlier: int,
    seed: int = 0,
) -> dict[str, Any]:
    """Every (problem, relation, method) over ``runs`` seeded runs; evaluations to find half of the top 5 %."""
    results: dict[str, Any] = {}
    for name in problems:
        for relation in relations:
            entry: dict[str, Any] = {"evaluations": {}, "seconds": {}}
            for method in methods:
                counts, started = [], time.perf_counter()
                for run_seed in range(seed, seed + runs):
                    problem = make_problem(name, relation, run_seed, pool_size, n_earlier)
                    needed = math.ceil(problem.pool.n_top / 2)
                    order = run_pool_campaign(
                        problem.pool,
                        strategy_for(method, problem, run_seed),
                        seed=run_seed,
                        n_initial=INITIAL_POINTS[method],
                        n_needed=needed,
                    )
                    counts.append(len(order))
                entry["evaluations"][method] = {"runs": counts, **percentiles(counts)}
                entry["seconds"][method] = round(time.perf_counter() - started, 1)
            if "cold" in methods:
                cold = entry["evaluations"]["cold"]["median"]
                entry["ratio_to_cold"] = {
                    m: round(entry["evaluations"][m]["median"] / cold, 3) for m in methods if m != "cold"
                }
                entry["ratio_interval"] = {
                    m: median_ratio_interval(entry["evaluations"][m]["runs"], entry["evaluations"]["cold"]["runs"])
                    for m in methods
                    if m != "cold"
                }
            results[f"{name}/{relation}"] = entry
    return {
        "protocol": {
            "pool_size": pool_size,
            "earlier_evaluations": n_earlier,
            "runs": runs,
            "first_seed": seed,
            "initial_points": dict(INITIAL_POINTS),
            "figure": "evaluations (initial points included) to find half of the pool's best 5 %",
            "goal": "warm/cold median ratio <= 0.6 on related tasks, <= 1.1 on unrelated ones",
            "interval": "ratio_interval: 90 % paired bootstrap interval of the ratio over the runs",
            "acquisition": BOSettings().acquisition + f"(beta={BOSettings().beta:g}) on each method's own model",
        },
        "results": results,
    }


def format_table(report: dict[str, Any]) -> str:
    from tabulate import tabulate

    rows = []
    for key, entry in report["results"].items():
        evaluations = entry["evaluations"]
        row = [key]
        for method in METHODS:
            if method in evaluations:
                e = evaluations[method]
                row.append(f"{e['median']:.0f} [{e['p10']:.0f}, {e['p90']:.0f}]")
            else:
                row.append("-")
        ratios, intervals = entry.get("ratio_to_cold", {}), entry.get("ratio_interval", {})
        for method in ("warm", "pooled"):
            low_high = intervals.get(method)
            row.append(f"{ratios[method]} [{low_high[0]}, {low_high[1]}]" if low_high else "-")
        rows.append(row)
    headers = ["problem/source", "cold", "warm", "pooled", "warm/cold", "pooled/cold"]
    protocol = report["protocol"]
    head = (
        f"Evaluations to find half of the best 5 % of a {protocol['pool_size']}-candidate pool, median [p10, p90] "
        f"over {protocol['runs']} runs; the earlier campaign has {protocol['earlier_evaluations']} evaluations; "
        "ratios of medians [their 90 % paired bootstrap interval]."
    )
    return head + "\n" + tabulate(rows, headers=headers)


@click.command("transfer")
@click.option("--problem", "problems", multiple=True, type=click.Choice(sorted(PROBLEMS)), help="Default: all.")
@click.option("--relation", "relations", multiple=True, type=click.Choice(RELATIONS), help="Default: both.")
@click.option("--method", "methods", multiple=True, type=click.Choice(METHODS), help="Default: all three.")
@click.option("--runs", default=RATIO_RUNS, show_default=True, type=click.IntRange(1), help="Seeded runs per method.")
@click.option("--pool-size", default=400, show_default=True, type=click.IntRange(40))
@click.option("--earlier", "n_earlier", default=100, show_default=True, type=click.IntRange(1))
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
def command(problems, relations, methods, runs, pool_size, n_earlier, seed, as_json) -> None:
    """Warm start from an earlier campaign against a cold start, on related and unrelated synthetic tasks."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # small matrices: BLAS threads only contend (as in bo-pool)
        report = run(
            list(problems) or list(PROBLEMS),
            list(relations) or list(RELATIONS),
            list(methods) or list(METHODS),
            runs,
            pool_size,
            n_earlier,
            seed,
        )
    click.echo(json.dumps(report, indent=2) if as_json else format_table(report))
