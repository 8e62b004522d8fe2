"""Widgets the example notebooks share: a structure view and a campaign progress widget.

They live next to the notebooks (not in the package) because they are presentation for Jupyter / AiiDAlab only:
the package stays usable without ipywidgets. ``aiidalab_widgets_base`` draws the structure where it is installed
(AiiDAlab); elsewhere ASE draws it with matplotlib, so nothing here is a hard dependency beyond ipywidgets.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
from aiida import orm
from matplotlib.figure import Figure

from aiida_nanoos import query
from aiida_nanoos.plots.common import new_figure


def structure_view(structure: orm.StructureData, title: str | None = None) -> Any:
    """AiiDAlab's 3D structure viewer when ``aiidalab_widgets_base`` is importable, else a matplotlib drawing of the
    cell seen along two directions (ASE's ``plot_atoms``), so the notebook runs outside AiiDAlab too."""
    try:
        from aiidalab_widgets_base.viewers import StructureDataViewer
    except ImportError:  # not in AiiDAlab: draw it with ASE
        return structure_figure(structure, title)
    return StructureDataViewer(structure=structure)


def structure_figure(structure: orm.StructureData, title: str | None = None) -> Figure:
    """The cell drawn by ASE from two directions (front and rotated), atoms coloured by element."""
    from ase.visualize.plot import plot_atoms

    atoms = structure.get_ase()
    figure, axes = new_figure(1, 2, width=4.0, height=4.0)
    for ax, rotation, view in zip(axes, ("0x,0y,0z", "-70x,20y,0z"), ("along c", "rotated"), strict=True):
        plot_atoms(atoms, ax, rotation=rotation, radii=0.35)
        ax.set_title(view)
        ax.set_axis_off()
    node = f"StructureData<{structure.pk}>" if structure.is_stored else "not stored yet"
    figure.suptitle(title or f"{atoms.get_chemical_formula()} ({len(atoms)} atoms), {node}")
    return figure


def querybuilder_text(function: Callable) -> str:
    """The ``QueryBuilder`` a function of :mod:`aiida_nanoos.query` runs, as written in its docstring."""
    doc = inspect.getdoc(function) or ""
    start = doc.find("QueryBuilder")
    return doc[start:] if start >= 0 else doc


class CampaignProgress:
    """Iteration i/N, best value so far, DFT budget and process state of a campaign, read from its node.

    Everything comes from the provenance graph (the ``record_iteration`` summaries and the process state), so the
    widget follows a campaign run here, submitted to the daemon, or finished long ago; :meth:`refresh` reads it
    again, :meth:`watch` keeps reading until the campaign ends.
    """

    def __init__(self, campaign: int | str | orm.WorkChainNode):
        self.node = query.load_campaign_node(campaign)
        self.bar = widgets.IntProgress(value=0, min=0, max=1, description="iteration", bar_style="info")
        self.text = widgets.HTML()
        self.button = widgets.Button(description="Refresh", icon="refresh", tooltip="read the campaign node again")
        self.button.on_click(lambda _: self.refresh())
        self.widget = widgets.VBox([widgets.HBox([self.bar, self.button]), self.text])
        self.refresh()

    def status(self) -> dict[str, Any]:
        """What the widget shows, as numbers: iterations done and planned, best so far, evaluations used and allowed."""
        view = query.campaign_view(self.node)
        last = view.summaries[-1] if view.summaries else {}
        metric = view.objective.primary
        return {
            "iteration": len(view.summaries),
            "max_iterations": view.config.max_iterations,
            "best_so_far": last.get("best_so_far"),
            "metric": "hypervolume" if view.objective.multi else metric.name,
            "units": "" if view.objective.multi else metric.units,
            "budget_used": last.get("budget_used", 0),
            "budget": view.config.budget,
            "state": self.node.process_state.value if self.node.process_state else "created",
            "converged": view.state.converged,
            "exit_status": self.node.exit_status,
        }

    def refresh(self) -> dict[str, Any]:
        """Read the node again and update the bar and the text; returns :meth:`status`."""
        try:
            status = self.status()
        except ValueError as error:  # not started yet: no initialize_campaign
            self.text.value = f"<i>{error}</i>"
            return {}
        self.bar.max = max(status["max_iterations"], 1)
        self.bar.value = min(status["iteration"], self.bar.max)
        self.bar.description = f"{status['iteration']}/{status['max_iterations']}"
        best = status["best_so_far"]
        best_text = "none yet" if best is None else f"{best:.4g} {status['units']}".strip()
        budget = f"{status['budget_used']}" + (f" of {status['budget']}" if status["budget"] else "")
        ended = self.node.is_terminated
        if ended:
            self.bar.bar_style = "success" if self.node.is_finished_ok else "danger"
        why = f", stopped: {status['converged']}" if status["converged"] else ""
        exit_text = f" (exit status {status['exit_status']})" if ended else ""
        self.text.value = (
            f"<b>{self.node.label or 'campaign'}</b> &lt;{self.node.pk}&gt; · {status['state']}{exit_text}{why}<br>"
            f"iteration {status['iteration']}/{status['max_iterations']} · best {status['metric']} so far: "
            f"{best_text} · evaluations used: {budget}"
        )
        return status

    def watch(self, interval: float = 5.0, timeout: float | None = None) -> dict[str, Any]:
        """Refresh every ``interval`` seconds until the campaign has ended (or ``timeout`` seconds have passed)."""
        start = time.monotonic()
        while True:
            # read whether it has ended before reading the status: the campaign can end between the two, and a
            # status read before that would be returned as the last one (one iteration short)
            ended = self.node.is_terminated
            status = self.refresh()
            if ended or (timeout is not None and time.monotonic() - start >= timeout):
                return status
            time.sleep(interval)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)
