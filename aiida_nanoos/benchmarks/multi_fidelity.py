"""``aiida-nanoos benchmark multi-fidelity``: which candidates of a batch the property model valued should go to DFT?

Protocol. The pools and costs of ``benchmark cost-aware`` (:class:`~aiida_nanoos.benchmarks.cost_aware.CostedPool`:
a synthetic landscape, cells of 4-32 atoms whose CPU cost grows as atoms^2.2, a 50x spread). Each seeded run is an
``ml_then_dft`` campaign: 4 random candidates are labelled by DFT; then every iteration the property model (the
campaign's GP, fitted to the DFT labels so far: the cheap fidelity) values the unevaluated pool, active learning
picks a batch of ``--batch`` by the upper confidence bound (``greedy_uncertainty``, the campaign's default), and the
trigger decides which of the batch go to DFT; the others keep the model's value and leave the pool, as in a
campaign. A run ends when half of the pool's best 5 % are **confirmed by DFT** (a value only the model gave is not a
result a scientist reports) or the pool is used up; the figure is the DFT cost paid until then (units of an 8-atom
cell), and the fraction of runs that got there.

Triggers (``config.property_model.dft_trigger``): ``dft`` sends the whole batch (``evaluation_method: dft``);
``fraction`` the ``--share`` most uncertain; ``uncertainty`` those whose sigma exceeds a quarter of the pool's
spread, at most ``--share`` of the batch; ``value_per_cost`` the rule of :mod:`aiida_nanoos.acquisition.fidelity`
(value of a DFT label per predicted cost^a within ``--share`` of the batch's predicted DFT cost; the cost model is
refitted to the costs paid, starting from the DFT prior; a cools from 1 to 0 over a notional budget of
``--budget-fraction`` of the pool's cost).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import click
import numpy as np

from aiida_nanoos.acquisition.analytic import upper_confidence_bound
from aiida_nanoos.acquisition.fidelity import choose_dft_labels, reference_value, value_of_dft_label
from aiida_nanoos.benchmarks.cost_aware import PROBLEMS, CostedPool, costed_pool_options
from aiida_nanoos.benchmarks.pool_protocol import percentiles, refit_due
from aiida_nanoos.design.bo import fit_gp_model
from aiida_nanoos.design.cost import cooling_exponent

TRIGGERS = ("dft", "fraction", "uncertainty", "value_per_cost")
N_INITIAL = 4
TOP_N = 5  #: the campaign's ``top_n``: a DFT label is worth most when it may enter the reported top


def _choose(
    trigger: str,
    batch: np.ndarray,
    mean: np.ndarray,
    sigma: np.ndarray,
    costed: CostedPool,
    labelled: list[int],
    share: float,
    exponent: float,
) -> np.ndarray:
    """Pool indices of the batch that go to DFT under ``trigger``."""
    count = max(1, math.ceil(share * len(batch) - 1e-9))
    if trigger == "dft":
        return batch
    if trigger == "fraction":
        return batch[np.argsort(-sigma, kind="stable")[:count]]
    if trigger == "uncertainty":
        uncertain = np.flatnonzero(sigma > 0.25 * float(costed.pool.y.std()))
        return batch[uncertain[np.argsort(-sigma[uncertain], kind="stable")][:count]]
    y = costed.pool.y[labelled]
    value = value_of_dft_label(mean, sigma, maximize=False, reference=reference_value(y, TOP_N, maximize=False))
    predicted = costed.predicted_cost(np.asarray(labelled), batch)
    choice = choose_dft_labels(value, predicted, cost_share=share, exponent=exponent)
    return batch[choice.indices]


def run_campaign(costed: CostedPool, trigger: str, seed: int, batch_size: int, share: float, budget: float) -> dict:
    """One ``ml_then_dft`` campaign (see the module): DFT cost and labels until half the best 5 % are confirmed."""
    rng = np.random.default_rng(seed)
    pool, n = costed.pool, len(costed.pool.y)
    top = pool.top_mask
    needed = math.ceil(pool.n_top / 2)
    labelled = [int(i) for i in rng.choice(n, size=N_INITIAL, replace=False)]
    open_ = np.ones(n, dtype=bool)
    open_[labelled] = False
    initial_cost = float(costed.cost[labelled].sum())
    hyper, last_refit, kept_by_model = None, 0, 0
    while int(top[labelled].sum()) < needed and open_.any():
        refit = refit_due(len(labelled), last_refit, 0.1)
        last_refit = len(labelled) if refit else last_refit
        model = fit_gp_model(
            pool.X[labelled], pool.y[labelled], maximize=False, transform="none",
            hyperparameters=hyper, optimize=refit or hyper is None, seed=seed,
        )  # fmt: skip
        hyper = model.gp.get_hyperparameters()
        candidates = np.flatnonzero(open_)
        posterior = model.gp.posterior(pool.X[candidates])
        mean, sigma = -posterior.mean, posterior.std  # the GP models -y (larger is better)
        order = np.argsort(-upper_confidence_bound(posterior.mean, sigma, 1.0), kind="stable")[:batch_size]
        batch = candidates[order]
        paid = float(costed.cost[labelled].sum())
        exponent = cooling_exponent(paid, budget, initial_cost)
        chosen = _choose(trigger, batch, mean[order], sigma[order], costed, labelled, share, exponent)
        open_[batch] = False
        labelled.extend(int(i) for i in chosen)
        kept_by_model += len(batch) - len(chosen)
    reached = int(top[labelled].sum()) >= needed
    return {
        "cost": round(float(costed.cost[labelled].sum()), 3),
        "dft_labels": len(labelled),
        "kept_by_model": kept_by_model,
        "reached": reached,
    }


def run(
    problems: list[str],
    triggers: list[str],
    runs: int,
    pool_size: int,
    batch_size: int,
    share: float,
    budget_fraction: float,
    seed: int = 0,
    cell_size: str = "extra",
) -> dict[str, Any]:
    """Every (problem, trigger) over ``runs`` seeded runs; an unfinished run counts at the cost it paid."""
    results: dict[str, Any] = {}
    for name in problems:
        entry: dict[str, Any] = {"cost": {}, "dft_labels": {}, "reached": {}, "seconds": {}}
        for trigger in triggers:
            outcomes, started = [], time.perf_counter()
            for run_seed in range(seed, seed + runs):
                costed = CostedPool(name, run_seed, pool_size, cell_size)
                budget = budget_fraction * float(costed.cost.sum())
                outcomes.append(run_campaign(costed, trigger, run_seed, batch_size, share, budget))
            costs = [o["cost"] for o in outcomes]
            entry["cost"][trigger] = {"runs": costs, **percentiles(costs)}
            entry["dft_labels"][trigger] = percentiles([o["dft_labels"] for o in outcomes])
            entry["reached"][trigger] = round(float(np.mean([o["reached"] for o in outcomes])), 3)
            entry["seconds"][trigger] = round(time.perf_counter() - started, 1)
        if "dft" in triggers:
            base = entry["cost"]["dft"]["median"]
            entry["cost_ratio_to_dft"] = {t: round(entry["cost"][t]["median"] / base, 3) for t in triggers}
        results[name] = entry
    return {
        "protocol": {
            "pool_size": pool_size,
            "runs": runs,
            "first_seed": seed,
            "initial_dft_labels": N_INITIAL,
            "batch_size": batch_size,
            "share": share,
            "cell_size": cell_size,
            "budget": f"{budget_fraction:g} x the pool's total cost (sets the cooling of the cost exponent)",
            "figure": "DFT cost until half of the pool's best 5 % are confirmed by DFT (units of an 8-atom cell)",
        },
        "results": results,
    }


def format_table(report: dict[str, Any]) -> str:
    from tabulate import tabulate

    rows = []
    for name, entry in report["results"].items():
        row = [name]
        for trigger in TRIGGERS:
            if trigger in entry["cost"]:
                c = entry["cost"][trigger]
                row.append(f"{c['median']:.1f} [{c['p10']:.1f}, {c['p90']:.1f}] {entry['reached'][trigger]:.0%}")
            else:
                row.append("-")
        row.append(entry.get("cost_ratio_to_dft", {}).get("value_per_cost", "-"))
        rows.append(row)
    protocol = report["protocol"]
    head = (
        f"DFT cost until half of the best 5 % of a {protocol['pool_size']}-candidate pool are confirmed by DFT "
        f"(units of an 8-atom cell), median [p10, p90] and the share of runs that got there, {protocol['runs']} runs."
    )
    return head + "\n" + tabulate(rows, headers=["problem", *TRIGGERS, "value_per_cost/dft"])


@click.command("multi-fidelity")
@click.option("--trigger", "triggers", multiple=True, type=click.Choice(TRIGGERS), help="Default: all.")
@click.option("--batch", "batch_size", default=8, show_default=True, type=click.IntRange(1))
@click.option(
    "--share",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0, 1, min_open=True),
    help="dft_fraction: the share of the batch (of its predicted DFT cost for value_per_cost) that goes to DFT.",
)
@costed_pool_options(cell_size="extra", runs=10)
def command(problems, triggers, runs, pool_size, batch_size, share, budget_fraction, seed, cell_size, as_json):
    """Which of a batch the property model valued go to DFT: value per cost against sigma rules and all-DFT."""
    problems, triggers = list(problems) or list(PROBLEMS), list(triggers) or list(TRIGGERS)
    report = run(problems, triggers, runs, pool_size, batch_size, share, budget_fraction, seed, cell_size)
    click.echo(json.dumps(report, indent=2) if as_json else format_table(report))
