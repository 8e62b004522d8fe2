"""Figure and file helpers shared by every plot: one look, written as PNG or SVG by the file's suffix.

Figures are :class:`matplotlib.figure.Figure` objects drawn on the Agg canvas, never through ``pyplot``: no global
state, no window, safe in a daemon worker, a test or a notebook (where a Figure displays itself).
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: File suffixes a plot can be written as.
FORMATS = (".png", ".svg")
#: Resolution of PNG files (dots per inch): sharp on a screen and in a slide, a few hundred kB at most.
PNG_DPI = 150
TITLE_SIZE = 13
LABEL_SIZE = 11
LEGEND_SIZE = 9
#: Colours (colour-blind safe, Okabe-Ito) for the roles that recur across the plots.
COLORS = {
    "main": "#0072B2",
    "second": "#D55E00",
    "third": "#009E73",
    "fourth": "#CC79A7",
    "muted": "#999999",
    "band": "#E69F00",
}


def new_figure(n_rows: int = 1, n_cols: int = 1, width: float = 6.0, height: float = 4.5) -> tuple[Figure, list[Axes]]:
    """A Figure on the Agg canvas with a grid of axes (flat list, row by row); ``width``/``height`` per panel, inch."""
    figure = Figure(figsize=(width * n_cols, height * n_rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(n_rows, n_cols, squeeze=False)
    return figure, [ax for row in axes for ax in row]


def label_axes(ax: Axes, xlabel: str, ylabel: str, title: str | None = None) -> None:
    """Axis labels (with units) and an optional panel title, in the shared sizes, with a light grid."""
    ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    if title:
        ax.set_title(title, fontsize=LABEL_SIZE + 1)
    ax.grid(True, alpha=0.3)


def note(ax: Axes, text: str) -> None:
    """A grey message in the middle of a panel that has no data to show (says why, instead of an empty frame)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=COLORS["muted"], wrap=True)


def with_unit(name: str, unit: str | None) -> str:
    """``"band gap (eV)"``; the bare name when there is no unit."""
    return f"{name} ({unit})" if unit else name


def save_figure(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as PNG or SVG, chosen by the suffix of ``path`` (parent folders are created)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path.name}: the file must end in one of {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format=suffix[1:], dpi=PNG_DPI if suffix == ".png" else None)
    return path
