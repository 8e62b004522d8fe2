"""``aiida-nanoos benchmark bo-pool``: the pool-based protocol of Liang et al. 2021 on any CSV of that shape, or on a
suite of pools (CSV files and synthetic landscapes) with the ratio of our evaluations to the best established method's.

The protocol lives in :mod:`aiida_nanoos.benchmarks.pool_protocol`, the suite in :mod:`.bo_suite`, the established
methods in :mod:`.pool_baselines`; this command only reads options and prints.
"""

from __future__ import annotations

import json

import click

from aiida_nanoos.benchmarks import options

#: Methods run when ``--methods`` is not given: ours, Liang et al.'s GP + LCB, BoTorch LogEI and BayBE.
DEFAULT_METHODS = ("nanoos", "gp_lcb", "botorch_logei", "baybe")


def _available(methods: tuple[str, ...]) -> tuple[str, ...]:
    """The methods whose packages are installed (BoTorch and BayBE come with the optional ``bench`` extra)."""
    from importlib.util import find_spec

    need = {"botorch_logei": "botorch", "baybe": "baybe"}
    return tuple(m for m in methods if m not in need or find_spec(need[m]) is not None)


@click.command("bo-pool")
@click.option("--csv", "csv_path", type=click.Path(exists=True, dir_okay=False), help="Data set (one pool).")
@click.option("--objective", help="Column to optimise (with --csv; default: its last column).")
@click.option("--direction", type=click.Choice(["max", "min"]), default="max", show_default=True)
@click.option("--inputs", multiple=True, help="Input column (repeat); default: every column except the objective.")
@click.option(
    "--pools",
    multiple=True,
    help="A pool of a suite (repeat): PATH.csv[:OBJECTIVE[:max|min]] or NAME[DIMS]:SIZE[:noiseF][:cat], e.g. "
    "hartmann6:500:noise0.05. Prints the ratio of our evaluations to the best established method's per pool.",
)
@click.option("--suite", type=click.Choice(["synthetic"]), help="Add the synthetic suite (10 pools) to --pools.")
@click.option(
    "--methods",
    default=",".join(DEFAULT_METHODS),
    show_default=True,
    help="Comma-separated methods: nanoos, gp_lcb, botorch_logei, baybe (the last two need the bench extra).",
)
@click.option("--runs", default=10, show_default=True, help="Independent runs (different 2-point starts).")
@click.option("--seed", default=0, show_default=True, help="Seed of run 0; run r uses seed + r.")
@click.option("--pool-seed", default=0, show_default=True, help="Seed of the synthetic pools' samples.")
@click.option(
    "--target",
    default="50%",
    show_default=True,
    help="Suite: the fraction of the top 5 % whose evaluations-to-find are compared (runs stop there).",
)
@click.option(
    "--refit-growth",
    default=0.1,
    show_default=True,
    help="Re-optimise GP hyper-parameters when the data grew by this fraction since the last time.",
)
@click.option("--max-evaluations", type=int, default=None, help="Cap on evaluations per run (default: the pool).")
@options.json_output
@options.quiet
def command(
    csv_path: str | None,
    objective: str | None,
    direction: str,
    inputs: tuple[str, ...],
    pools: tuple[str, ...],
    suite: str | None,
    methods: str,
    runs: int,
    seed: int,
    pool_seed: int,
    target: str,
    refit_growth: float,
    max_evaluations: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Evaluations to the top 5% (median, mean, percentiles, every run) and enhancement factors for our BO, the
    Liang et al. GP + LCB, BoTorch LogEI, BayBE and random sampling; with --pools/--suite, the ratio table."""
    from threadpoolctl import threadpool_limits

    from aiida_nanoos.benchmarks.pool_baselines import METHODS
    from aiida_nanoos.benchmarks.pool_protocol import format_table, load_pool, run_benchmark

    requested = tuple(m.strip() for m in methods.split(",") if m.strip())
    unknown = [m for m in requested if m not in METHODS]
    if unknown or not requested:
        problem = f"unknown {unknown}" if unknown else "no method given"
        raise click.BadParameter(f"{problem}; choose from {list(METHODS)}", param_hint="--methods")
    chosen = _available(requested)
    skipped = [m for m in requested if m not in chosen]
    if skipped:
        click.echo(f"skipped {', '.join(skipped)}: {options.BENCH_EXTRA_MISSING}", err=True)
    progress = None if quiet else (lambda msg: click.echo(msg, err=True))
    specs = list(pools)
    if suite == "synthetic":
        from aiida_nanoos.benchmarks.bo_suite import SYNTHETIC_SUITE

        specs += SYNTHETIC_SUITE
    if specs:
        if csv_path:
            raise click.UsageError("give either --csv (one pool) or --pools/--suite (a suite), not both")
        _run_suite(specs, chosen, runs, seed, pool_seed, target, refit_growth, as_json, progress)
        return
    if not csv_path:
        raise click.UsageError("give --csv (one pool), or --pools/--suite")
    try:
        pool = load_pool(csv_path, objective, inputs=list(inputs) or None, maximize=direction == "max")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    with threadpool_limits(limits=1), _one_torch_thread():
        result = run_benchmark(
            pool,
            runs=runs,
            seed=seed,
            strategies=chosen,
            refit_growth=refit_growth,
            max_evaluations=max_evaluations,
            progress=progress,
            factories=METHODS,
        )
    result["csv"] = csv_path
    click.echo(json.dumps(result, indent=2) if as_json else format_table(result))


def _run_suite(specs, methods, runs, seed, pool_seed, target, refit_growth, as_json, progress) -> None:
    from threadpoolctl import threadpool_limits

    from aiida_nanoos.benchmarks.bo_suite import format_suite, run_suite
    from aiida_nanoos.benchmarks.pool_protocol import format_table

    try:
        with threadpool_limits(limits=1), _one_torch_thread():
            report = run_suite(
                specs,
                runs=runs,
                seed=seed,
                pool_seed=pool_seed,
                methods=methods,
                target=target,
                refit_growth=refit_growth,
                progress=progress,
            )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for spec, result in report["pools"].items():
        click.echo(f"== {spec}\n{format_table(result)}\n")
    click.echo(format_suite(report))


class _one_torch_thread:
    """Torch (BoTorch, BayBE) on one thread while the benchmark runs: more were slower on a shared 2-core machine."""

    def __enter__(self) -> None:
        from importlib.util import find_spec

        self.previous = None
        if find_spec("torch") is not None:
            import torch

            self.previous = torch.get_num_threads()
            torch.set_num_threads(1)

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            import torch

            torch.set_num_threads(self.previous)
