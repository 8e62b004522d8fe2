"""``aiida-nanoos benchmark cost-aware``: does weighing improvement against cost reach good candidates cheaper?

Protocol. Each problem is a synthetic landscape (:mod:`.synthetic`) sampled into a pool; each candidate has a cell
of 4 to 32 atoms whose CPU cost grows as atoms^2.2 with a 15 % scatter, a 50x spread like pw.x's between 4- and
32-atom cells. The cell size either follows one of the landscape's own inputs (``--cell-size landscape``, as a
supercell follows a dopant concentration: the best candidates then share a size) or is an input of its own with a
small finite-size effect (``--cell-size extra``, one composition in cells of several sizes). The cost-aware method
does not know the cost law: it starts from the DFT prior (:func:`aiida_nanoos.design.cost.dft_cost_prior`, exponent
1.9) and refits a :class:`~aiida_nanoos.design.cost.CostModel` to the costs it has paid. Each seeded run starts from
the same 2 random pool points for every method and adds up the cost until half of the pool's best 5 % is found.
Methods: ``blind`` (the campaign's default BO, UCB), ``blind_ei`` (expected improvement, no cost) and ``aware``
(the campaign's ``cost_aware``: the cheapest candidate whose UCB is at most 0.3 a of the UCB's spread over the pool
below the largest, a cooling from 1 to 0 as a notional budget, a fraction of the pool's total cost, is spent). Goal:
aware/blind median cost ratio <= 0.7.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
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
from aiida_nanoos.benchmarks.synthetic import landscape, sample_pool
from aiida_nanoos.design.bo import BOSettings
from aiida_nanoos.design.cost import COST_TOLERANCE, PRIOR_EXPONENTS, CostModel, cooling_exponent, cost_aware_scores

PROBLEMS = {"branin": ("branin", None), "hartmann3": ("hartmann3", None), "levy4": ("levy", 4),
            "ackley3": ("ackley", 3), "hartmann6": ("hartmann6", None)}  # fmt: skip
METHODS = ("blind", "blind_ei", "aware")
TRUE_EXPONENT = 2.2


class CostedPool:
    """The pool and what each candidate costs: the cell size (4-32 atoms) and a CPU cost ~ atoms^2.2 x scatter.

    ``cell_size='landscape'``: the size follows one of the landscape's own inputs (chosen per run), as the supercell
    follows the dopant concentration, so the best candidates share a size and only the search's detours can be
    cheaper. ``cell_size='extra'``: the size is an input of its own with a small finite-size effect on the property
    (5 % of its spread), as when one composition can be modelled in several cells.
    """

    def __init__(self, name: str, seed: int, pool_size: int, cell_size: str = "landscape") -> None:
        function = landscape(*PROBLEMS[name])
        X, y = sample_pool(function, pool_size, seed)
        rng = np.random.default_rng(30_000 + seed)
        if cell_size == "landscape":
            self.size_input = int(rng.integers(function.dims))
        else:
            size = rng.random(pool_size)
            y = y + 0.05 * float(y.std()) * (size - 0.5)
            X, self.size_input = np.column_stack([X, size]), function.dims
        names = [f"u{i}" for i in range(X.shape[1])]
        self.pool = PoolDataset(X=X, y=y, input_names=names, objective=name, maximize=False)
        self.atoms = np.round(4.0 * 8.0 ** X[:, self.size_input])
        self.cost = (self.atoms / 8.0) ** TRUE_EXPONENT * np.exp(rng.normal(0.0, 0.15, pool_size))
        self._index = {row.tobytes(): i for i, row in enumerate(X)}

    def predicted_cost(self, paid: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """What a campaign that does not know the cost law predicts for the pool ``rows``: a cost model on the cell
        size starting from the DFT prior's exponent, fitted to the costs of the ``paid`` rows."""
        model = CostModel(prior_exponents=[PRIOR_EXPONENTS["atoms"]]).fit(self.atoms[paid, None], self.cost[paid])
        return model.predict(self.atoms[rows, None])

    def rows(self, X: np.ndarray) -> np.ndarray:
        return np.array([self._index[row.tobytes()] for row in np.atleast_2d(X)])


def aware_strategy(costed: CostedPool, seed: int, budget: float) -> Strategy:
    """The campaign's ``cost_aware``: the cheapest candidate (by the cost model refitted to the paid costs each step)
    whose UCB is within a share of the UCB's spread over the pool below the largest, the share cooling with the
    budget (:func:`~aiida_nanoos.design.cost.cost_aware_scores`)."""
    acquisition = nanoos_strategy(costed.pool.X, maximize=False, seed=seed).score  # the campaign's UCB

    def score(X_obs: np.ndarray, y_obs: np.ndarray, X_cand: np.ndarray, refit: bool) -> np.ndarray:
        observed, candidates = costed.rows(X_obs), costed.rows(X_cand)
        exponent = cooling_exponent(costed.cost[observed].sum(), budget, costed.cost[observed[:2]].sum())
        predicted = costed.predicted_cost(observed, candidates)
        return cost_aware_scores(acquisition(X_obs, y_obs, X_cand, refit), predicted, exponent)

    near = f"UCB >= largest - {COST_TOLERANCE:g} a x (largest - smallest)"
    return Strategy(f"aware: the cheapest by predicted cost with {near} (a cools 1 -> 0 over the budget)", score)


def blind_ei_strategy(X_pool: np.ndarray, seed: int) -> Strategy:
    ei = nanoos_strategy(X_pool, maximize=False, seed=seed, settings=BOSettings(acquisition="EI"))
    return Strategy("blind_ei: EI, cost ignored", ei.score)


def strategy_for(method: str, costed: CostedPool, seed: int, budget: float) -> Strategy:
    if method == "blind":
        return nanoos_strategy(costed.pool.X, maximize=False, seed=seed)
    if method == "blind_ei":
        return blind_ei_strategy(costed.pool.X, seed)
    return aware_strategy(costed, seed, budget)


def run(
    problems: list[str],
    methods: list[str],
    runs: int,
    pool_size: int,
    budget_fraction: float,
    seed: int = 0,
    cell_size: str = "landscape",
):
    """Every (problem, method) over ``runs`` seeded runs: cost and evaluations to find half of the best 5 %."""
    results: dict[str, Any] = {}
    for name in problems:
        entry: dict[str, Any] = {"cost": {}, "evaluations": {}, "seconds": {}}
        for method in methods:
            costs, counts, started = [], [], time.perf_counter()
            for run_seed in range(seed, seed + runs):
                costed = CostedPool(name, run_seed, pool_size, cell_size)
                budget = budget_fraction * float(costed.cost.sum())
                order = run_pool_campaign(
                    costed.pool,
                    strategy_for(method, costed, run_seed, budget),
                    seed=run_seed,
                    n_needed=math.ceil(costed.pool.n_top / 2),
                )
                costs.append(round(float(costed.cost[order].sum()), 3))
                counts.append(len(order))
            entry["cost"][method] = {"runs": costs, **percentiles(costs)}
            entry["evaluations"][method] = {"runs": counts, **percentiles(counts)}
            entry["seconds"][method] = round(time.perf_counter() - started, 1)
        if "blind" in methods:
            blind = entry["cost"]["blind"]["median"]
            entry["cost_ratio_to_blind"] = {m: round(entry["cost"][m]["median"] / blind, 3) for m in methods}
            entry["cost_ratio_interval"] = {
                m: median_ratio_interval(entry["cost"][m]["runs"], entry["cost"]["blind"]["runs"])
                for m in methods
                if m != "blind"
            }
        results[name] = entry
    return {
        "protocol": {
            "pool_size": pool_size,
            "runs": runs,
            "first_seed": seed,
            "initial_points": 2,
            "cost": f"(atoms/8)^{TRUE_EXPONENT} x lognormal(0.15), atoms 4-32",
            "cell_size": cell_size,
            "budget": f"{budget_fraction:g} x the pool's total cost (sets the cooling of the cost exponent)",
            "figure": "cost (and evaluations) to find half of the pool's best 5 %, initial points included",
            "goal": "aware/blind median cost ratio <= 0.7",
            "interval": "cost_ratio_interval: 90 % paired bootstrap interval of the ratio over the runs",
        },
        "results": results,
    }


def format_table(report: dict[str, Any]) -> str:
    from tabulate import tabulate

    rows = []
    for name, entry in report["results"].items():
        row = [name]
        for method in METHODS:
            if method in entry["cost"]:
                c, e = entry["cost"][method], entry["evaluations"][method]
                row.append(f"{c['median']:.1f} [{c['p10']:.1f}, {c['p90']:.1f}] / {e['median']:.0f}")
            else:
                row.append("-")
        ratio, interval = entry.get("cost_ratio_to_blind", {}), entry.get("cost_ratio_interval", {})
        row.append(f"{ratio['aware']} [{interval['aware'][0]}, {interval['aware'][1]}]" if "aware" in interval else "-")
        rows.append(row)
    protocol = report["protocol"]
    head = (
        f"Cost to find half of the best 5 % of a {protocol['pool_size']}-candidate pool (units of an 8-atom cell), "
        f"median [p10, p90] / median evaluations, over {protocol['runs']} runs; aware/blind: the ratio of medians "
        "[its 90 % paired bootstrap interval]."
    )
    return head + "\n" + tabulate(rows, headers=["problem", *METHODS, "aware/blind"])


def costed_pool_options(cell_size: str, runs: int) -> Callable[[Callable], Callable]:
    """The options of a benchmark on :class:`CostedPool` runs (problems, runs, pool, budget, seed, cell size, JSON),
    declared once for ``cost-aware`` and ``multi-fidelity``; ``runs`` is the default of ``--runs``."""
    decorators = [
        click.option("--problem", "problems", multiple=True, type=click.Choice(sorted(PROBLEMS)), help="Default: all."),
        click.option("--runs", default=runs, show_default=True, type=click.IntRange(1), help="Seeded runs per method."),
        click.option("--pool-size", default=400, show_default=True, type=click.IntRange(40)),
        click.option(
            "--budget-fraction",
            default=0.1,
            show_default=True,
            type=click.FloatRange(0, 1, min_open=True),
            help="The notional budget, a fraction of the pool's total cost, over which the cost exponent cools.",
        ),
        click.option("--seed", default=0, show_default=True, type=int),
        click.option(
            "--cell-size",
            type=click.Choice(["landscape", "extra"]),
            default=cell_size,
            show_default=True,
            help="Cell size set by one of the landscape's inputs, or an input of its own with a small finite-size "
            "effect.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON."),
    ]

    def apply(function: Callable) -> Callable:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


@click.command("cost-aware")
@click.option("--method", "methods", multiple=True, type=click.Choice(METHODS), help="Default: all three.")
@costed_pool_options(cell_size="landscape", runs=RATIO_RUNS)
def command(problems, methods, runs, pool_size, budget_fraction, seed, cell_size, as_json) -> None:
    """Cost-aware against cost-blind selection on pools whose candidates cost 1-50x each other."""
    from threadpoolctl import threadpool_limits

    problems, methods = list(problems) or list(PROBLEMS), list(methods) or list(METHODS)
    with threadpool_limits(limits=1):  # small matrices: BLAS threads only contend (as in bo-pool)
        report = run(problems, methods, runs, pool_size, budget_fraction, seed, cell_size)
    click.echo(json.dumps(report, indent=2) if as_json else format_table(report))
