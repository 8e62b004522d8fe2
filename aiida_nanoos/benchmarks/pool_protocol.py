"""Pool-based Bayesian-optimisation benchmark of Liang et al. 2021 (npj Comput. Mater. 7, 188), no AiiDA.

Protocol (as in the PV-Lab/Benchmarking notebooks): replicates are grouped by the input columns and replaced by the
mean of their *unique* objective values; the pool is the set of unique inputs (N points); each run starts from 2
random pool points and then picks one point per cycle; the "top set" is the ceil(0.05 N) best pool points;
Top%(i) is the fraction of the top set found after i evaluations (the 2 initial points included); random sampling
without replacement has Top%_rand(i) = i / N exactly, and EF(i) = Top%_BO(i) / Top%_rand(i).

Two differences from the notebooks, both deliberate: the GP is scored at the same scaled inputs it was
trained on (the notebooks score raw inputs with a model trained on standardised ones), and a run stops once the whole
top set is found, since none of the reported figures can change after that. Runs are summarised by their mean and
5th/95th percentiles (the notebooks use fold averages; with few runs those are not meaningful).

Methods: ``nanoos`` is the campaign's own recipe (:mod:`aiida_nanoos.design.bo` defaults: MAP GP with weak priors on
unit-cube inputs, Yeo-Johnson power-transformed objective, UCB/LCB with beta 1); ``gp_lcb`` is the
GP example of the notebooks (maximum likelihood, standardised inputs, LCB ratio 2); random sampling is analytic.
Both GP methods share the same code, initial points and hyper-parameter schedule, so only the recipe differs.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import hypergeom

from aiida_nanoos.acquisition.analytic import posterior_scores
from aiida_nanoos.acquisition.portfolio import Hedge
from aiida_nanoos.design.bo import BOSettings, fit_gp_model, hedge_argmax
from aiida_nanoos.models.gp import GaussianProcess


@dataclass
class PoolDataset:
    """The grouped pool: ``X`` numeric inputs (one-hot for text columns), ``y`` the objective, best = ``maximize``."""

    X: np.ndarray
    y: np.ndarray
    input_names: list[str]
    objective: str
    maximize: bool
    n_rows: int = 0

    @property
    def n_pool(self) -> int:
        return len(self.y)

    @property
    def n_top(self) -> int:
        return math.ceil(0.05 * self.n_pool)

    @property
    def top_mask(self) -> np.ndarray:
        """True for the ceil(0.05 N) best pool points (ties broken by pool order, as a stable sort does)."""
        order = np.argsort(-self.y if self.maximize else self.y, kind="stable")
        mask = np.zeros(self.n_pool, dtype=bool)
        mask[order[: self.n_top]] = True
        return mask


def load_pool(
    csv_path: str | Path, objective: str | None = None, *, inputs: Sequence[str] | None = None, maximize: bool = True
) -> PoolDataset:
    """Read a Liang-style CSV and build the pool (group by inputs, mean of unique objective values per group).

    ``objective`` defaults to the last column, where the Liang et al. data sets keep it."""
    import pandas as pd

    frame = pd.read_csv(csv_path)
    if objective is None:
        objective = str(frame.columns[-1])
    if objective not in frame.columns:
        raise ValueError(f"objective column {objective!r} not in {list(frame.columns)}")
    inputs = [c for c in frame.columns if c != objective] if not inputs else list(inputs)
    missing = [c for c in inputs if c not in frame.columns]
    if missing:
        raise ValueError(f"input columns {missing} not in {list(frame.columns)}")
    if objective in inputs:
        raise ValueError(f"objective column {objective!r} cannot also be an input")
    if not inputs:
        raise ValueError("need at least one input column")
    frame = frame[[*inputs, objective]].dropna()
    frame[objective] = pd.to_numeric(frame[objective], errors="raise")
    grouped = frame.groupby(inputs, sort=True)[objective].agg(lambda x: x.unique().mean()).reset_index()
    numeric_cols, names, blocks = [], [], []
    for col in inputs:
        values = grouped[col]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            numeric_cols.append(col)
            blocks.append(values.to_numpy(dtype=float)[:, None])
            names.append(col)
        else:
            dummies = pd.get_dummies(values.astype(str), prefix=col, prefix_sep="=")
            blocks.append(dummies.to_numpy(dtype=float))
            names.extend(dummies.columns)
    X = np.hstack(blocks)
    return PoolDataset(
        X=X,
        y=grouped[objective].to_numpy(dtype=float),
        input_names=names,
        objective=objective,
        maximize=maximize,
        n_rows=len(frame),
    )


# ---------------------------------------------------------------------------------------------- strategies
@dataclass
class Strategy:
    """A pool-based picker: ``score(X_obs, y_obs, X_candidates, refit)`` returns higher-is-better scores.

    ``y_obs`` is the objective in its own units and sign; ``refit`` says whether to re-optimise hyper-parameters
    this cycle (otherwise the GP is only re-conditioned on the data with the previous ones).
    """

    name: str
    score: Callable[[np.ndarray, np.ndarray, np.ndarray, bool], np.ndarray]
    description: str = ""
    #: What an established method runs (package versions, model, acquisition), printed with its results.
    configuration: dict[str, str] = field(default_factory=dict)


def unit_scale(X_pool: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Map inputs onto the pool's unit cube (each column by its range in the pool; constant columns to 0)."""
    lo, hi = X_pool.min(axis=0), X_pool.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return lambda X: (X - lo) / span


def nanoos_strategy(
    X_pool: np.ndarray, maximize: bool, seed: int = 0, settings: BOSettings | Mapping[str, Any] | None = None
) -> Strategy:
    """Our campaign recipe (:func:`aiida_nanoos.design.bo.fit_gp_model` + :class:`~aiida_nanoos.design.bo.BOSettings`
    defaults) applied to the pool: inputs scaled to the unit cube by the pool's range."""
    settings = BOSettings() if settings is None else settings
    settings = settings if isinstance(settings, BOSettings) else BOSettings.from_dict(settings)
    scale = unit_scale(X_pool)
    state: dict[str, Any] = {"hyperparameters": None}
    hedge, rng = Hedge(), np.random.default_rng(seed + 104729)

    def score(X_obs: np.ndarray, y_obs: np.ndarray, X_cand: np.ndarray, refit: bool) -> np.ndarray:
        fit = functools.partial(
            fit_gp_model,
            scale(X_obs),
            y_obs,
            maximize=maximize,
            kernel=settings.kernel,
            priors=settings.gp_priors,
            hyperparameters=state["hyperparameters"],
            seed=seed,
        )
        model = fit(transform=settings.output_transform, optimize=refit)
        if model.transform != state.get("transform") and not refit:  # new output scale: old hyper-parameters moot
            model = fit(transform=model.transform, optimize=True)
        state["hyperparameters"] = model.gp.get_hyperparameters()
        state["transform"] = model.transform
        if settings.acquisition.upper() == "HEDGE":
            pick, _ = hedge_argmax(model, scale(X_cand), settings, hedge, rng)
            return np.eye(len(X_cand))[pick]
        return model.scores(scale(X_cand), settings)

    acq = settings.acquisition.upper()
    if acq in ("UCB", "LCB"):
        acq = f"{'UCB' if maximize else 'LCB'}({settings.beta:g})"
    transform = settings.output_transform
    label = f"nanoos: GP-ARD Matern52 MAP ({settings.gp_priors} priors) + {acq}, output {transform}"
    return Strategy(label, score, "bo.fit_gp_model on unit-cube inputs with the default BOSettings")


def gp_lcb_strategy(X_pool: np.ndarray, maximize: bool, seed: int = 0, beta: float = 2.0) -> Strategy:
    """The Liang et al. GP example: ARD Matérn 5/2 by maximum likelihood on standardised inputs and outputs,
    lower confidence bound with ratio 2 on the objective negated to be minimised (here: mean + 2 std of the
    oriented objective, the same ranking)."""
    mu, sd = X_pool.mean(axis=0), X_pool.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    sign = 1.0 if maximize else -1.0
    gp = GaussianProcess(
        "matern52", ard=True, input_scaling="none", priors=None, noise_variance_bounds=(1e-6, 10.0), seed=seed
    )

    def score(X_obs: np.ndarray, y_obs: np.ndarray, X_cand: np.ndarray, refit: bool) -> np.ndarray:
        gp.fit((X_obs - mu) / sd, sign * y_obs, optimize=refit)
        return posterior_scores(gp.posterior((X_cand - mu) / sd), "UCB", beta=beta, maximize=True)

    return Strategy(f"GP-ARD Matern52 MLE + LCB({beta:g})", score, "Liang et al. 2021 GP example")


STRATEGIES: dict[str, Callable[..., Strategy]] = {"nanoos": nanoos_strategy, "gp_lcb": gp_lcb_strategy}


# ---------------------------------------------------------------------------------------------- runs
def refit_due(n_observed: int, n_at_last_refit: int, growth: float, always_below: int = 10) -> bool:
    """Hyper-parameters are re-optimised every cycle while data are few, then whenever the number of observations
    has grown by the fraction ``growth`` since the last optimisation (a geometric schedule: a few dozen
    optimisations per run, however long it is). In between, the GP is re-conditioned on all data every cycle."""
    return n_observed <= always_below or n_observed >= (1.0 + growth) * n_at_last_refit


def run_pool_campaign(
    pool: PoolDataset,
    strategy: Strategy,
    *,
    seed: int,
    n_initial: int = 2,
    refit_growth: float = 0.1,
    max_evaluations: int | None = None,
    n_needed: int | None = None,
) -> np.ndarray:
    """Pool indices in the order they were evaluated; stops when ``n_needed`` top-set points (default: the whole top
    set) are found, the pool is empty or ``max_evaluations`` is reached."""
    rng = np.random.default_rng(seed)
    N = pool.n_pool
    top = pool.top_mask
    cap = N if max_evaluations is None else min(N, max_evaluations)
    order = list(rng.choice(N, size=min(n_initial, N), replace=False))
    remaining = np.ones(N, dtype=bool)
    remaining[order] = False
    found = int(top[order].sum())
    needed = pool.n_top if n_needed is None else min(int(n_needed), pool.n_top)
    last_refit = 0
    while len(order) < cap and found < needed and remaining.any():
        cand = np.flatnonzero(remaining)
        obs = np.asarray(order, dtype=int)
        refit = refit_due(len(obs), last_refit, refit_growth)
        if refit:
            last_refit = len(obs)
        scores = strategy.score(pool.X[obs], pool.y[obs], pool.X[cand], refit)
        best = scores.max()
        ties = cand[scores >= best - 1e-12 * max(1.0, abs(best))]
        pick = int(ties[0] if len(ties) == 1 else rng.choice(ties))
        order.append(pick)
        remaining[pick] = False
        found += int(top[pick])
    return np.asarray(order)


def found_curve(pool: PoolDataset, order: np.ndarray) -> np.ndarray:
    """found[i-1] = top-set points found after i evaluations, for i = 1..N (flat after a run stops early)."""
    top = pool.top_mask
    curve = np.cumsum(top[order])
    out = np.full(pool.n_pool, curve[-1] if len(curve) else 0, dtype=int)
    out[: len(curve)] = curve
    return out


def evaluations_to_find(curve: np.ndarray, n_needed: int) -> int | None:
    """Smallest number of evaluations i with at least ``n_needed`` top-set points found (None if never)."""
    hits = np.flatnonzero(curve >= n_needed)
    return int(hits[0] + 1) if len(hits) else None


def random_evaluations_quantiles(N: int, K: int, k: int, qs: Sequence[float]) -> tuple[float, list[int]]:
    """Random sampling without replacement: mean and quantiles of the evaluations needed to find k of K top points.

    P(T_k <= i) = P(Hypergeom(N, K, i) >= k); the mean of that negative hypergeometric is k (N + 1) / (K + 1).
    """
    i = np.arange(1, N + 1)
    cdf = hypergeom.sf(k - 1, N, K, i)
    quants = [int(i[np.searchsorted(cdf, q - 1e-12)]) for q in qs]
    return k * (N + 1) / (K + 1), quants


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """Median, mean and 10th / 90th percentiles of a benchmark's runs (the summary of bo-pareto, transfer and
    cost-aware)."""
    arr = np.asarray(values, dtype=float)
    return {
        "median": float(np.median(arr)),
        "mean": float(arr.mean()),
        "p10": float(np.percentile(arr, 10)),
        "p90": float(np.percentile(arr, 90)),
    }


def median_ratio_interval(
    numerator: Sequence[float], denominator: Sequence[float], level: float = 0.9, resamples: int = 2000, seed: int = 0
) -> list[float]:
    """The ``level`` interval of median(numerator) / median(denominator) by a paired bootstrap over the runs.

    Why: the figures of ``transfer`` and ``cost-aware`` are ratios of medians of a few dozen runs whose values are
    often bimodal (the best candidates in cheap cells in some pools, in expensive ones in others), so the median
    jumps between the two groups; the interval says how far the ratio would move on other seeds. Run ``i`` of both
    lists shares its pool (the same seed), so the runs are resampled in pairs."""
    top = np.asarray(numerator, dtype=float)
    bottom = np.asarray(denominator, dtype=float)
    if top.shape != bottom.shape or not len(top):
        raise ValueError(f"paired runs needed, got {top.shape} and {bottom.shape}")
    picks = np.random.default_rng(seed).integers(len(top), size=(resamples, len(top)))
    ratios = np.median(top[picks], axis=1) / np.median(bottom[picks], axis=1)
    tail = 50.0 * (1.0 - level)
    return [round(float(np.percentile(ratios, tail)), 3), round(float(np.percentile(ratios, 100.0 - tail)), 3)]


def run_summary(values: Sequence[float]) -> dict[str, Any]:
    """Median, mean, 5th/95th percentiles and every run's value (NaN for a run that never got there)."""
    arr = np.asarray(values, dtype=float)
    ok = arr[np.isfinite(arr)] if np.isfinite(arr).any() else np.array([np.nan])
    return {
        "median": float(np.median(ok)),
        "mean": float(ok.mean()),
        "p5": float(np.percentile(ok, 5)),
        "p95": float(np.percentile(ok, 95)),
        "runs": [float(v) for v in arr],
    }


def run_benchmark(
    pool: PoolDataset,
    *,
    runs: int = 10,
    seed: int = 0,
    strategies: Sequence[str] = ("nanoos", "gp_lcb"),
    refit_growth: float = 0.1,
    max_evaluations: int | None = None,
    progress: Callable[[str], None] | None = None,
    targets: Sequence[str] = ("50%", "100%"),
    settings: BOSettings | Mapping[str, Any] | None = None,
    factories: Mapping[str, Callable[..., Strategy]] | None = None,
) -> dict[str, Any]:
    """Run every strategy ``runs`` times (same initial points per run index) and summarise Liang's figures.

    ``targets``: fractions of the top set whose evaluations-to-find are reported; a run stops once the largest is
    reached (``("50%",)`` for a quick comparison). Enhancement factors are reported only for runs that go to 100%.
    ``settings``: :class:`~aiida_nanoos.design.bo.BOSettings` of ``nanoos`` (default: the campaign defaults).
    ``factories``: where method names are looked up (default :data:`STRATEGIES`; the established baselines are in
    :data:`aiida_nanoos.benchmarks.pool_baselines.METHODS`).
    """
    import time

    N, K = pool.n_pool, pool.n_top
    at = {"10%": math.ceil(0.10 * N), "25%": math.ceil(0.25 * N)} if "100%" in targets else {}
    needed = {name: math.ceil(float(name.rstrip("%")) / 100 * K) for name in targets}
    result: dict[str, Any] = {
        "objective": pool.objective,
        "direction": "max" if pool.maximize else "min",
        "inputs": pool.input_names,
        "n_rows": pool.n_rows,
        "n_pool": N,
        "n_top": K,
        "runs": runs,
        "seed": seed,
        "evaluations_at": at,
        "top_needed": needed,
        "refit_growth": refit_growth,
        "methods": {},
    }
    for key in strategies:
        known = STRATEGIES if factories is None else factories
        if key not in known:
            raise ValueError(f"unknown method {key!r}; known: {list(known)}")
        make = known[key]
        ef = {name: [] for name in at}
        evals = {name: [] for name in needed}
        af = {name: [] for name in needed}
        t0, picks = time.perf_counter(), 0
        label, configuration = "", {}
        for r in range(runs):
            extra = {"settings": settings} if key == "nanoos" and settings is not None else {}
            strategy = make(pool.X, pool.maximize, seed=seed + r, **extra)
            label, configuration = strategy.name, strategy.configuration
            order = run_pool_campaign(
                pool,
                strategy,
                seed=seed + r,
                refit_growth=refit_growth,
                max_evaluations=max_evaluations,
                n_needed=max(needed.values()),
            )
            picks += max(0, len(order) - 2)
            curve = found_curve(pool, order)
            for name, i in at.items():
                ef[name].append((curve[i - 1] / K) / (i / N))
            for name, k in needed.items():
                e = evaluations_to_find(curve, k)
                evals[name].append(float(e) if e is not None else float("nan"))
                # AF(t) = i_rand(t) / i_BO(t), t = k/K the Top% reached; random reaches t at i = ceil(t N)
                af[name].append(math.ceil(k / K * N - 1e-9) / e if e else float("nan"))
            if progress:
                progress(f"{key} run {r + 1}/{runs}: {len(order)} evaluations")
        seconds = time.perf_counter() - t0
        result["methods"][key] = {
            "label": label,
            "ef": {name: run_summary(v) for name, v in ef.items()},
            "evaluations_to_top": {name: run_summary(v) for name, v in evals.items()},
            "af": {name: run_summary(v) for name, v in af.items()},
            "seconds": seconds,
            "seconds_per_pick": seconds / max(picks, 1),
        }
        if configuration:
            result["methods"][key]["configuration"] = configuration
    one = {"median": 1.0, "mean": 1.0, "p5": 1.0, "p95": 1.0}
    rand = {"label": "random (analytic)", "ef": {name: dict(one) for name in at}, "af": {n: dict(one) for n in needed}}
    rand["evaluations_to_top"] = {}
    for name, k in needed.items():
        mean, (p5, median, p95) = random_evaluations_quantiles(N, K, k, (0.05, 0.5, 0.95))
        rand["evaluations_to_top"][name] = {"median": float(median), "mean": mean, "p5": float(p5), "p95": float(p95)}
    result["methods"]["random"] = rand
    return result


def _cell(c: dict[str, Any], digits: int) -> str:
    return f"{c['median']:.{digits}f} / {c['mean']:.{digits}f} [{c['p5']:.{digits}f}, {c['p95']:.{digits}f}]"


def format_table(result: dict[str, Any], *, every_run: bool = True) -> str:
    """A plain-text table of the summary produced by :func:`run_benchmark`, then every run's evaluations and the
    configuration of each established method."""
    at, needed = result["evaluations_at"], result["top_needed"]
    lines = [
        f"objective {result['objective']} ({result['direction']}), {result['n_rows']} rows -> pool N = "
        f"{result['n_pool']}, top set = {result['n_top']}, {result['runs']} runs from seed {result['seed']}",
        f"hyper-parameters re-optimised every cycle up to 10 observations, then each time the data grew by "
        f"{100 * result['refit_growth']:.0f}%; GP re-conditioned every cycle",
        "AF@t = i_random(t) / i(t): how many times fewer evaluations than random to reach Top% = t",
        "median / mean [5th, 95th percentile] over runs",
    ]
    cols = [f"EF@{k} (i={v})" for k, v in at.items()] + [f"evals to {k} of top ({v})" for k, v in needed.items()]
    cols += [f"AF@{k}" for k in needed]
    width = max(len(m["label"]) for m in result["methods"].values())
    lines.append(f"{'method':<{width}}  " + "  ".join(f"{c:>28}" for c in cols))
    for method in result["methods"].values():
        txt = [_cell(method["ef"][k], 2) for k in at] + [_cell(method["evaluations_to_top"][k], 1) for k in needed]
        txt += [_cell(method["af"][k], 2) for k in needed]
        lines.append(f"{method['label']:<{width}}  " + "  ".join(f"{t:>28}" for t in txt))
    if every_run:
        for key, method in result["methods"].items():
            for name in needed:
                runs = method["evaluations_to_top"][name].get("runs")
                if runs is not None:
                    values = " ".join("-" if math.isnan(v) else f"{v:.0f}" for v in runs)
                    lines.append(f"  {key}: evaluations to {name} of top, every run: {values}")
            if "seconds_per_pick" in method:
                lines.append(f"  {key}: {method['seconds_per_pick']:.3f} s per pick")
            for item, text in method.get("configuration", {}).items():
                lines.append(f"  {key} {item}: {text}")
    return "\n".join(lines)
