"""``aiida-nanoos benchmark bo-pareto``: many-objective search on pools, hypervolume against evaluations.

Pools: ZDT1, ZDT2 (two objectives) and DTLZ2 (three), sampled uniformly in the unit cube (``--pool-size`` points,
``--dims`` inputs, seeded), and any CSV (``--csv FILE --objectives col:min,col:max,...``; inputs are ``--inputs``
columns and/or composition features of a ``--formula`` column). The reference point is the worst pool value of each
objective plus 10% of its range, and the figure of merit is the hypervolume of the points evaluated so far as a
fraction of the hypervolume of the whole pool (1.0 = the pool's Pareto front is found).

Methods, on the same initial points in each run (run r uses seed + r): ``nanoos`` is what a campaign does (one GP per
objective, :func:`aiida_nanoos.design.bo.fit_gp_model` with hyper-parameters re-optimised each batch, then a greedy
batch of exact EHVI with kriging-believer fantasies, :func:`aiida_nanoos.acquisition.batch.select_hypervolume_batch`);
``random`` draws without replacement; ``botorch_qnehvi`` is BoTorch's recipe (a ModelListGP of SingleTaskGPs with
standardised outputs, qNEHVI with 128 Sobol samples and pruned baseline, sequential greedy over the discrete pool by
``optimize_acqf_discrete``), run only when BoTorch is installed (extra ``bench``).

A materials pool: ``--csv ../shared/benchmarks/perov5/val.csv --objectives heat_all:min,dir_gap:max --formula formula
--pool-size 1000`` (stable *and* gapped perovskites; about 96% of the gaps are exactly zero, so the initial points
often see a constant band gap).

``--timing`` measures instead the cost of one multi-objective batch: the old pure-Python EHVI and the new exact one on
64 candidates with three objectives, and 4 picks from a 1000-point pool (with and without the GP fits).
"""

from __future__ import annotations

import json
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from aiida_nanoos.benchmarks import options
from aiida_nanoos.benchmarks.pareto_pools import (  # noqa: F401 (re-exported for the tests and docs)
    REFERENCE_MARGIN,
    SYNTHETIC,
    ParetoPool,
    composition_features,
    csv_pool,
    dtlz2,
    parse_objectives,
    synthetic_pool,
    zdt,
)
from aiida_nanoos.benchmarks.pool_protocol import percentiles

# ----------------------------------------------------------------------------------------------------- methods
#: A method: (pool, indices evaluated so far, how many to pick, seed) -> the next indices.
Picker = Callable[[ParetoPool, list[int], int, int], list[int]]

METHODS = ("nanoos", "random", "botorch_qnehvi")


class NanoosEHVI:
    """The campaign's recipe: one GP per objective (warm-started MAP fit each batch), greedy exact EHVI batch."""

    description = (
        "GP per objective (Matern 5/2 ARD, MAP with weak priors, re-fitted each batch, warm start), exact EHVI, "
        "greedy batch with kriging-believer fantasies"
    )

    def __init__(self) -> None:
        self.hyperparameters: list[dict[str, Any] | None] = []

    def __call__(self, pool: ParetoPool, observed: list[int], q: int, seed: int) -> list[int]:
        from aiida_nanoos.acquisition.batch import select_hypervolume_batch
        from aiida_nanoos.design.bo import fit_gp_model

        m = pool.Y.shape[1]
        if len(self.hyperparameters) != m:
            self.hyperparameters = [None] * m
        X, Y = pool.X[observed], pool.Y[observed]
        models = []
        for j in range(m):
            model = fit_gp_model(
                X,
                Y[:, j],
                maximize=pool.directions[j] == "max",
                transform="none",
                hyperparameters=self.hyperparameters[j],
                seed=seed + j,
            )
            self.hyperparameters[j] = model.gp.get_hyperparameters()
            models.append(model.gp)  # predicts the oriented (larger is better) objective
        sign = pool.sign
        picks, _ = select_hypervolume_batch(
            models, pool.X, q, Y * sign, pool.reference * sign, ["max"] * m, exclude=observed
        )
        return picks


def random_picker(pool: ParetoPool, observed: list[int], q: int, seed: int) -> list[int]:
    left = np.setdiff1d(np.arange(len(pool.Y)), observed)
    return [int(i) for i in np.random.default_rng(seed).choice(left, size=min(q, len(left)), replace=False)]


def botorch_available() -> bool:
    try:
        import botorch  # noqa: F401
    except ImportError:
        return False
    return True


class BoTorchQNEHVI:
    """BoTorch's multi-objective recipe on a discrete pool (its qNEHVI tutorial, with the pool as the choices)."""

    description = (
        "BoTorch ModelListGP of SingleTaskGP (Standardize), fit_gpytorch_mll, qNEHVI (128 Sobol samples, "
        "prune_baseline), optimize_acqf_discrete (sequential greedy)"
    )

    def __call__(self, pool: ParetoPool, observed: list[int], q: int, seed: int) -> list[int]:
        import torch
        from botorch.acquisition.multi_objective import qNoisyExpectedHypervolumeImprovement
        from botorch.exceptions.warnings import InputDataWarning, NumericsWarning
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import ModelListGP, SingleTaskGP
        from botorch.models.transforms.outcome import Standardize
        from botorch.optim import optimize_acqf_discrete
        from botorch.sampling.normal import SobolQMCNormalSampler
        from gpytorch.mlls import SumMarginalLogLikelihood
        from linear_operator.utils.warnings import NumericalWarning

        torch.manual_seed(seed)
        X = torch.tensor(pool.X[observed], dtype=torch.double)
        Y = torch.tensor(pool.Y[observed] * pool.sign, dtype=torch.double)  # BoTorch maximises
        left = np.setdiff1d(np.arange(len(pool.Y)), observed)
        choices = torch.tensor(pool.X[left], dtype=torch.double)
        with warnings.catch_warnings():
            # BoTorch advises its log variant (qLogNEHVI); qNEHVI is kept as the established baseline. Its warnings
            # on an objective observed constant so far (Standardize with std 0: a band gap that is zero in every
            # observed material) and on jitter are its normal behaviour there, printed once per batch otherwise.
            warnings.simplefilter("ignore", NumericsWarning)
            warnings.simplefilter("ignore", InputDataWarning)
            warnings.simplefilter("ignore", NumericalWarning)
            models = [SingleTaskGP(X, Y[:, j : j + 1], outcome_transform=Standardize(m=1)) for j in range(Y.shape[1])]
            model = ModelListGP(*models)
            fit_gpytorch_mll(SumMarginalLogLikelihood(model.likelihood, model))
            acquisition = qNoisyExpectedHypervolumeImprovement(
                model=model,
                ref_point=(pool.reference * pool.sign).tolist(),
                X_baseline=X,
                prune_baseline=True,
                sampler=SobolQMCNormalSampler(sample_shape=torch.Size([128]), seed=seed),
            )
            with torch.no_grad():
                picked, _ = optimize_acqf_discrete(
                    acquisition, q=min(q, len(left)), choices=choices, max_batch_size=256
                )
        # back to pool indices: the first not yet taken of the pool rows equal to each chosen row
        taken: list[int] = []
        for row in picked.numpy():
            same = left[np.all(pool.X[left] == row, axis=1)]
            taken.append(int(next(i for i in same if i not in taken)))
        return taken


# ---------------------------------------------------------------------------------------------------- protocol
def hypervolume_trace(pool: ParetoPool, order: Sequence[int]) -> list[float]:
    """Hypervolume of the first k evaluated points over that of the whole pool, for k = 1..len(order)."""
    from aiida_nanoos.acquisition.hypervolume import hypervolume

    return [
        hypervolume(pool.Y[list(order[:k])], pool.reference, pool.directions) / pool.max_hypervolume
        for k in range(1, len(order) + 1)
    ]


def run_method(
    pool: ParetoPool, picker: Picker, initial: list[int], evaluations: int, batch: int, seed: int
) -> dict[str, Any]:
    """One run: from ``initial``, batches of ``batch`` picks until ``evaluations`` points are evaluated."""
    order = list(initial)
    pick_times = []
    step = 0
    while len(order) < min(evaluations, len(pool.Y)):
        q = min(batch, evaluations - len(order))
        start = time.perf_counter()
        picks = picker(pool, order, q, seed + 1000 * step)
        pick_times.append((time.perf_counter() - start) / max(len(picks), 1))
        if not picks or set(picks) & set(order) or len(set(picks)) != len(picks):
            raise RuntimeError(f"picker returned invalid indices {picks}")
        order.extend(picks)
        step += 1
    return {"order": [int(i) for i in order], "trace": hypervolume_trace(pool, order), "seconds_per_pick": pick_times}


def run_benchmark(
    pool: ParetoPool,
    *,
    runs: int,
    seed: int,
    initial: int,
    evaluations: int,
    batch: int,
    methods: Sequence[str],
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every method on the same ``runs`` seeded initial designs; traces, summaries at checkpoints, pick times."""
    from threadpoolctl import threadpool_limits

    pickers: dict[str, Picker] = {"random": random_picker, "botorch_qnehvi": BoTorchQNEHVI()}
    evaluations = min(evaluations, len(pool.Y))
    per_method: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    with threadpool_limits(limits=1):
        if "botorch_qnehvi" in methods:
            import torch

            torch.set_num_threads(1)
        for r in range(runs):
            rng = np.random.default_rng(seed + r)
            start = [int(i) for i in rng.choice(len(pool.Y), size=min(initial, len(pool.Y)), replace=False)]
            for name in methods:
                picker = NanoosEHVI() if name == "nanoos" else pickers[name]  # fresh warm-start memory per run
                result = run_method(pool, picker, start, evaluations, batch, seed + r)
                per_method[name].append(result)
                if progress:
                    progress(
                        f"{pool.name} run {r + 1}/{runs} {name}: hypervolume fraction {result['trace'][-1]:.4f} "
                        f"after {len(result['order'])} evaluations"
                    )
    checkpoints = sorted({min(initial, evaluations), *np.linspace(initial, evaluations, 5).round().astype(int)})
    return {
        "pool": pool.describe(),
        "runs": runs,
        "seed": seed,
        "initial": initial,
        "evaluations": evaluations,
        "batch": batch,
        "checkpoints": [int(k) for k in checkpoints],
        "methods": {
            "nanoos": NanoosEHVI.description,
            "random": "uniform sampling without replacement",
            "botorch_qnehvi": BoTorchQNEHVI.description,
        },
        "summary": summarise(per_method, checkpoints),
        "per_run": {
            name: [{k: r[k] for k in ("trace", "order", "seconds_per_pick")} for r in res]
            for name, res in per_method.items()
        },
    }


def summarise(per_method: dict[str, list[dict[str, Any]]], checkpoints: Sequence[int]) -> dict[str, Any]:
    """Per method: hypervolume fraction percentiles over the runs at each checkpoint and at the end, pick times."""
    summary = {}
    for name, results in per_method.items():
        times = [t for res in results for t in res.get("seconds_per_pick", [])]
        summary[name] = {
            "hypervolume_fraction": {
                str(k): percentiles([res["trace"][k - 1] for res in results]) for k in checkpoints if k >= 1
            },
            "final": percentiles([res["trace"][-1] for res in results]),
            "seconds_per_pick": percentiles(times) if times else None,
        }
    return summary


def merge_results(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One result from several ``--json`` results of the same pool and protocol run with different seeds (one
    process per seed: ``--seed r --runs 1 --pool-seed P``), summarised over all their runs."""
    first = parts[0]
    protocol = ("pool", "initial", "evaluations", "batch", "checkpoints")
    for part in parts[1:]:
        different = [k for k in protocol if part[k] != first[k]]
        if different or set(part["per_run"]) != set(first["per_run"]):
            raise ValueError(f"cannot merge results that differ in {different or 'methods'}")
    merged = dict(first)
    merged["runs"] = sum(p["runs"] for p in parts)
    merged["seed"] = [p["seed"] for p in parts]
    merged["per_run"] = {m: [r for p in parts for r in p["per_run"][m]] for m in first["per_run"]}
    merged["summary"] = summarise(merged["per_run"], first["checkpoints"])
    return merged


def format_table(result: dict[str, Any]) -> str:
    from tabulate import tabulate

    pool = result["pool"]
    lines = [
        f"{pool['name']}: {', '.join(pool['objectives'])}; {pool['n_inputs']} inputs; pool front "
        f"{pool['pareto_front_size']} points; reference {np.round(pool['reference_point'], 4).tolist()}",
        f"hypervolume / pool's hypervolume, median [p10, p90] over {result['runs']} runs "
        f"(start {result['initial']} random points, batches of {result['batch']})",
    ]
    headers = ["method", *[f"n={k}" for k in result["checkpoints"]], "s/pick (median)"]
    rows = []
    for name, s in result["summary"].items():
        cells = [name]
        for k in result["checkpoints"]:
            p = s["hypervolume_fraction"][str(k)]
            cells.append(f"{p['median']:.3f} [{p['p10']:.3f}, {p['p90']:.3f}]")
        cells.append(f"{s['seconds_per_pick']['median']:.3g}" if s["seconds_per_pick"] else "-")
        rows.append(cells)
    lines.append(tabulate(rows, headers=headers))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------ timing
def _timed(function: Callable[[], Any], repeats: int = 1) -> dict[str, float]:
    """Median wall-clock and CPU seconds of this process over ``repeats`` calls. On a shared machine the wall clock
    also counts waiting for a core; the CPU time (one BLAS and one torch thread) is what the work costs."""
    wall, cpu = [], []
    for _ in range(repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        function()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return {"wall": statistics.median(wall), "cpu": statistics.median(cpu)}


def measure_timing(
    pool_size: int = 1000, observed: int = 40, q: int = 4, seed: int = 0, repeats: int = 5, n_candidates: int = 64
) -> dict:
    """Cost of one three-objective batch on DTLZ2 (d=5): EHVI before (WFG Monte Carlo, 128 draws) and after (exact,
    moocore and boxes) on ``n_candidates`` candidates; a ``q``-pick batch from a ``pool_size`` pool with and without
    the GP fits; BoTorch qNEHVI on the same batch when installed. One BLAS thread, one torch thread."""
    from threadpoolctl import threadpool_limits

    from aiida_nanoos.acquisition import hypervolume_wfg
    from aiida_nanoos.acquisition.batch import select_hypervolume_batch
    from aiida_nanoos.acquisition.hypervolume import expected_hypervolume_improvement, hypervolume
    from aiida_nanoos.design.bo import fit_gp_model
    from aiida_nanoos.design.pareto import pareto_mask

    pool = synthetic_pool("dtlz2", pool_size, 5, seed)
    start = [int(i) for i in np.random.default_rng(seed).choice(pool_size, observed, replace=False)]
    X, Y = pool.X[start], pool.Y[start]
    out: dict[str, Any] = {"pool_size": pool_size, "observed": observed, "front_size": int(pareto_mask(Y).sum())}
    out["picks"], out["n_candidates"] = q, n_candidates
    seconds: dict[str, dict[str, float]] = {}
    with threadpool_limits(limits=1):
        models: list = []
        seconds["gp_fits"] = _timed(
            lambda: models.extend(
                fit_gp_model(X, Y[:, j], maximize=False, transform="none", seed=j).gp for j in range(3)
            )
        )
        # the models predict the oriented objectives (larger is better), as in a campaign
        front, reference, directions = -Y, -pool.reference, ["max"] * 3
        candidates = pool.X[:n_candidates]
        means, stds = (np.column_stack(v) for v in zip(*(m.predict(candidates) for m in models), strict=True))
        old: list[np.ndarray] = []
        seconds["ehvi_before"] = _timed(
            lambda: old.append(
                hypervolume_wfg.expected_hypervolume_improvement(means, stds, front, reference, directions)
            )
        )
        seconds["ehvi_after"] = _timed(
            lambda: expected_hypervolume_improvement(means, stds, front, reference, directions), repeats
        )
        new = expected_hypervolume_improvement(means, stds, front, reference, directions)
        out["ehvi_largest_difference_relative"] = float(np.max(np.abs(new - old[0])) / max(new.max(), 1e-300))
        out["ehvi_same_best"] = bool(np.argmax(new) == np.argmax(old[0]))
        seconds["batch_before_estimated"] = {
            k: v / n_candidates * pool_size * q for k, v in seconds["ehvi_before"].items()
        }
        seconds["batch_after"] = _timed(
            lambda: select_hypervolume_batch(models, pool.X, q, front, reference, directions, exclude=start), repeats
        )
        seconds["batch_after_with_gp_fits"] = {k: v + seconds["gp_fits"][k] for k, v in seconds["batch_after"].items()}
        points = np.random.default_rng(seed).dirichlet(np.ones(4), size=200)
        seconds["hypervolume_4d_200_points_moocore"] = _timed(lambda: hypervolume(points, [1.1] * 4), 20)
        seconds["hypervolume_4d_200_points_wfg"] = _timed(lambda: hypervolume_wfg.hypervolume(points, [1.1] * 4))
        if botorch_available():
            import torch

            torch.set_num_threads(1)
            seconds["botorch_qnehvi_batch_with_gp_fits"] = _timed(lambda: BoTorchQNEHVI()(pool, start, q, seed))
    out["seconds"] = seconds
    return out


def format_timing(t: dict[str, Any]) -> str:
    from tabulate import tabulate

    where, n = f"{t['picks']} picks from {t['pool_size']}", t["n_candidates"]
    labels = {
        "ehvi_before": f"EHVI, {n} candidates, 3 objectives: before (WFG Monte Carlo, 128 draws)",
        "ehvi_after": f"EHVI, {n} candidates, 3 objectives: after (exact, boxes)",
        "batch_before_estimated": f"{where}: before (estimated from the {n})",
        "batch_after": f"{where}: after (GPs fitted)",
        "gp_fits": "the 3 GP fits (hyper-parameter search)",
        "batch_after_with_gp_fits": f"{where}: after, with the 3 GP fits",
        "hypervolume_4d_200_points_wfg": "hypervolume 4-D, 200 points: WFG (before)",
        "hypervolume_4d_200_points_moocore": "hypervolume 4-D, 200 points: moocore (after)",
        "botorch_qnehvi_batch_with_gp_fits": f"BoTorch qNEHVI, {where}, with its GP fits",
    }
    rows = [
        [label, f"{t['seconds'][k]['cpu']:.4g}", f"{t['seconds'][k]['wall']:.4g}"]
        for k, label in labels.items()
        if k in t["seconds"]
    ]
    head = (
        f"DTLZ2 (3 objectives, d=5), {t['observed']} observed ({t['front_size']} on the front), one BLAS thread; "
        f"EHVI after vs before: largest difference {t['ehvi_largest_difference_relative']:.3g} of the largest "
        f"(Monte-Carlo error of the old one), same best candidate: {t['ehvi_same_best']}"
    )
    return head + "\n" + tabulate(rows, headers=["what", "CPU s", "wall s"])


# ----------------------------------------------------------------------------------------------------- command
@click.command("bo-pareto")
@click.option(
    "--problem",
    "problems",
    multiple=True,
    type=click.Choice(SYNTHETIC),
    help="Synthetic pool (repeat); default: all three unless --csv is given.",
)
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False), help="A table to build a pool from.")
@click.option("--objectives", help="With --csv: COLUMN:min|max,COLUMN:min|max[,...].")
@click.option("--inputs", multiple=True, help="With --csv: input column (repeat).")
@click.option("--formula", help="With --csv: a chemical-formula column turned into composition features.")
@click.option("--pool-size", default=500, show_default=True, help="Points of a synthetic pool; rows kept of a CSV.")
@click.option("--dims", default=5, show_default=True, help="Inputs of a synthetic problem.")
@click.option("--runs", default=10, show_default=True, help="Independent runs (different initial points).")
@click.option("--seed", default=0, show_default=True, help="Seed of run 0; run r uses seed + r.")
@click.option(
    "--pool-seed",
    type=int,
    default=None,
    help="Seed of the pool sample (default: --seed); fixed, it lets runs be spread over processes (--seed r --runs 1).",
)
@click.option("--initial", default=10, show_default=True, help="Random initial points (shared by all methods).")
@click.option("--evaluations", default=50, show_default=True, help="Evaluations per run, the initial ones included.")
@click.option("--batch", default=4, show_default=True, help="Picks per batch.")
@click.option(
    "--method", "methods", multiple=True, type=click.Choice(METHODS), help="Method (repeat); default: all available."
)
@click.option(
    "--merge",
    "merge_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Only merge --json outputs (repeat) of the same pool run with different seeds, and print them as one.",
)
@click.option("--timing", is_flag=True, help="Only measure the cost of one 3-objective batch (EHVI before/after).")
@options.json_output
@options.quiet
def command(
    problems: tuple[str, ...],
    csv_path: str | None,
    objectives: str | None,
    inputs: tuple[str, ...],
    formula: str | None,
    pool_size: int,
    dims: int,
    runs: int,
    seed: int,
    pool_seed: int | None,
    initial: int,
    evaluations: int,
    batch: int,
    methods: tuple[str, ...],
    merge_files: tuple[str, ...],
    timing: bool,
    as_json: bool,
    quiet: bool,
) -> None:
    """Hypervolume against evaluations for our GP + EHVI, random sampling and BoTorch qNEHVI on Pareto pools."""
    if merge_files:
        loaded = [json.loads(Path(f).read_text())["pools"] for f in merge_files]
        if len({len(pools) for pools in loaded}) != 1:
            raise click.BadParameter("the files hold different numbers of pools", param_hint="--merge")
        try:
            merged = [merge_results(parts) for parts in zip(*loaded, strict=True)]
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--merge") from exc
        click.echo(json.dumps({"pools": merged}, indent=2) if as_json else "\n\n".join(map(format_table, merged)))
        return
    if timing:
        result = measure_timing(seed=seed)
        click.echo(json.dumps(result, indent=2) if as_json else format_timing(result))
        return
    if runs < 1 or initial < 1 or batch < 1 or evaluations <= initial:
        raise click.BadParameter("need runs >= 1, initial >= 1, batch >= 1 and evaluations > initial")
    pool_seed = seed if pool_seed is None else pool_seed
    methods = methods or METHODS
    notes = []
    if not botorch_available():  # requested or by default: dropped with a note either way
        methods = tuple(m for m in methods if m != "botorch_qnehvi")
        notes.append(f"BoTorch is missing, {options.BENCH_EXTRA_MISSING}: the qNEHVI baseline is skipped")
    pools = []
    try:
        if csv_path:
            if not objectives:
                raise click.BadParameter("--csv needs --objectives COLUMN:min|max,...")
            pools.append(
                csv_pool(
                    csv_path,
                    parse_objectives(objectives),
                    inputs=inputs,
                    formula=formula,
                    pool_size=pool_size,
                    seed=pool_seed,
                )
            )
        elif objectives or inputs or formula:
            raise click.BadParameter("--objectives, --inputs and --formula go with --csv")
        for name in problems or (() if csv_path else SYNTHETIC):
            pools.append(synthetic_pool(name, pool_size, dims, pool_seed))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    progress = None if quiet else (lambda msg: click.echo(msg, err=True))
    for note in notes:
        click.echo(note, err=True)
    results = [
        run_benchmark(
            pool,
            runs=runs,
            seed=seed,
            initial=initial,
            evaluations=evaluations,
            batch=batch,
            methods=methods,
            progress=progress,
        )
        for pool in pools
    ]
    if as_json:
        click.echo(json.dumps({"pools": results, "notes": notes}, indent=2))
        return
    click.echo("\n\n".join(format_table(r) for r in results))
    for note in notes:
        click.echo(note)
