"""Design-campaign figures: convergence (best value against iterations and against DFT evaluations, with a random
baseline band) and the Pareto front of a two-objective search with its dominated points."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from aiida_nanoos.plots.common import COLORS, LEGEND_SIZE, TITLE_SIZE, label_axes, new_figure, note, with_unit

#: Quantiles of the best-of-n random draw drawn as the baseline band (and its median line).
BAND_QUANTILES = (0.1, 0.5, 0.9)


@dataclass
class RandomBaseline:
    """What random sampling would have reached: quantiles of the best of n draws, n = 1 .. len(low)."""

    low: np.ndarray
    median: np.ndarray
    high: np.ndarray
    source: str  #: where the sampled values came from, shown in the legend

    @property
    def n(self) -> np.ndarray:
        return np.arange(1, len(self.median) + 1)


def random_baseline(values: Sequence[float], n_max: int, maximize: bool, source: str) -> RandomBaseline | None:
    """Quantiles of the best of n random draws from the empirical distribution of ``values`` (exact, no resampling).

    The best of n independent draws is below v with probability F(v)^n (maximising), so its q-quantile is the
    q^(1/n)-quantile of the values (1 - (1 - q)^(1/n) when minimising). With fewer than two values there is no
    distribution to speak of: None.
    """
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], float)
    if len(values) < 2 or n_max < 1:
        return None
    n = np.arange(1, n_max + 1)[:, None]
    q = np.asarray(BAND_QUANTILES)[None, :]
    levels = q ** (1.0 / n) if maximize else 1.0 - (1.0 - q) ** (1.0 / n)
    quantiles = np.quantile(values, levels.ravel()).reshape(levels.shape)
    return RandomBaseline(quantiles[:, 0], quantiles[:, 1], quantiles[:, 2], source)


def convergence_figure(
    best_so_far: Sequence[float | None],
    evaluations: Sequence[int],
    *,
    metric: str,
    units: str = "",
    maximize: bool = True,
    evaluated: Sequence[tuple[int, float]] = (),
    baseline: RandomBaseline | None = None,
    title: str = "Campaign convergence",
) -> Figure:
    """Best value so far after each iteration (left) and against the number of DFT evaluations paid (right).

    ``best_so_far[k]`` and ``evaluations[k]`` (cumulative DFT evaluations) belong to iteration k + 1 (None: nothing
    feasible yet); ``evaluated`` are (evaluation number, value) of every single evaluation, drawn as grey dots on
    the right; ``baseline`` is the random-sampling band (its absence is said in the title).
    """
    if len(best_so_far) != len(evaluations):
        raise ValueError(f"{len(best_so_far)} best values but {len(evaluations)} evaluation counts")
    best = np.asarray([np.nan if v is None else v for v in best_so_far], float)
    spent = np.asarray(evaluations, float)
    iterations = np.arange(1, len(best) + 1)
    ylabel = with_unit(f"best {metric} so far", units)
    figure, (by_iteration, by_cost) = new_figure(1, 2, width=5.5, height=4.2)
    direction = "higher is better" if maximize else "lower is better"
    if baseline is None:
        figure.suptitle(f"{title} ({direction}; no random baseline known)", fontsize=TITLE_SIZE)
    else:
        figure.suptitle(f"{title} ({direction})", fontsize=TITLE_SIZE)
    if not len(best):
        for ax in (by_iteration, by_cost):
            note(ax, "no iteration recorded yet")
    by_iteration.plot(iterations, best, "o-", color=COLORS["main"], lw=2, label="campaign")
    by_cost.step(spent, best, where="post", color=COLORS["main"], lw=2, label="campaign")
    by_cost.plot(spent, best, "o", color=COLORS["main"])
    if evaluated:
        x, y = np.asarray(evaluated, float).T
        by_cost.plot(x, y, ".", color=COLORS["muted"], ms=6, label="each evaluation")
    if baseline is not None:
        label = f"random sampling, best of n ({int(100 * BAND_QUANTILES[0])}-{int(100 * BAND_QUANTILES[2])} %)"
        n = baseline.n
        by_cost.fill_between(n, baseline.low, baseline.high, color=COLORS["band"], alpha=0.3, label=label)
        by_cost.plot(n, baseline.median, "--", color=COLORS["band"], label=f"random median ({baseline.source})")
        at = np.clip(spent.astype(int), 1, len(n)) - 1
        known = spent >= 1
        by_iteration.fill_between(
            iterations[known],
            baseline.low[at][known],
            baseline.high[at][known],
            color=COLORS["band"],
            alpha=0.3,
            label="random sampling, same evaluations",
        )
    label_axes(by_iteration, "iteration", ylabel, "per iteration")
    label_axes(by_cost, "DFT evaluations", ylabel, "per evaluation paid")
    by_iteration.set_xticks(iterations if len(iterations) <= 20 else np.linspace(1, len(iterations), 10).round())
    for ax in (by_iteration, by_cost):
        ax.legend(fontsize=LEGEND_SIZE, loc="best")
    return figure


def pareto_figure(
    objectives: Sequence[Sequence[float]],
    on_front: Sequence[bool],
    *,
    names: Sequence[str],
    units: Sequence[str] = ("", ""),
    directions: Sequence[str] = ("max", "max"),
    infeasible: Sequence[Sequence[float]] = (),
    reference_point: Sequence[float] | None = None,
    hypervolume: float | None = None,
    title: str = "Pareto front",
) -> Figure:
    """The first two objectives of every feasible candidate: non-dominated ones joined by the front's staircase,
    dominated ones grey, infeasible ones as crosses, and the hypervolume's reference point."""
    points = np.asarray(objectives, float).reshape(-1, len(names))
    front = np.asarray(on_front, bool)
    if len(front) != len(points):
        raise ValueError(f"{len(points)} points but {len(front)} front flags")
    if len(names) < 2:
        raise ValueError("a Pareto plot needs two objectives")
    figure, (ax,) = new_figure(1, 1, width=6.5, height=5.0)
    dominated = points[~front]
    ax.plot(
        dominated[:, 0],
        dominated[:, 1],
        "o",
        color=COLORS["muted"],
        ms=7,
        alpha=0.8,
        label=f"dominated ({len(dominated)})",
    )
    members = points[front]
    if len(members):
        order = np.argsort(members[:, 0])
        if directions[0] == "max":
            order = order[::-1]
        staircase = members[order]
        ax.step(
            staircase[:, 0],
            staircase[:, 1],
            where="post" if directions[1] == "max" else "pre",
            color=COLORS["second"],
            lw=1.5,
        )
        ax.plot(members[:, 0], members[:, 1], "D", color=COLORS["second"], ms=8, label=f"Pareto front ({len(members)})")
    if len(infeasible):
        bad = np.asarray(infeasible, float).reshape(-1, len(names))
        ax.plot(bad[:, 0], bad[:, 1], "x", color=COLORS["fourth"], ms=7, label=f"infeasible ({len(bad)})")
    if reference_point is not None:
        ax.plot([reference_point[0]], [reference_point[1]], "*", color="black", ms=12, label="reference point")
    arrows = " ".join(f"{n} {'↑' if d == 'max' else '↓'}" for n, d in zip(names[:2], directions[:2], strict=True))
    subtitle = f"better: {arrows}" + (f"\nhypervolume {hypervolume:.4g}" if hypervolume is not None else "")
    label_axes(ax, with_unit(names[0], units[0]), with_unit(names[1], units[1]), subtitle)
    if len(names) > 2:
        ax.annotate(
            f"{len(names) - 2} more objective(s) not shown",
            (0.01, 0.01),
            xycoords="axes fraction",
            fontsize=LEGEND_SIZE,
            color=COLORS["muted"],
        )
    figure.suptitle(title, fontsize=TITLE_SIZE)
    ax.legend(fontsize=LEGEND_SIZE, loc="best")
    return figure
