"""Design campaigns read back from the provenance graph: per-iteration results, the candidates as a table, the best
candidates of all campaigns for a property, and the arrays the convergence and Pareto plots draw.

Read-only: every function runs queries and loads nodes, none stores anything. The ``QueryBuilder`` each one runs
is written out in its docstring, so the same question can be asked in ``verdi shell`` or adapted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from aiida import orm
from aiida.common.links import LinkType

from aiida_nanoos.design import campaign as cp
from aiida_nanoos.design.pareto import pareto_mask
from aiida_nanoos.design.state import CampaignState
from aiida_nanoos.functions.campaign import load_campaign
from aiida_nanoos.query.identifiers import load_identified, single_with_label

#: ``process_label`` of the campaign work chain.
CAMPAIGN_LABEL = "CampaignWorkChain"


def load_campaign_node(identifier: int | str | orm.Node) -> orm.WorkChainNode:
    """The campaign with this PK, UUID or label (``ValueError`` when it is another kind of node or unknown)."""
    by_label = single_with_label(orm.WorkChainNode, "campaign", **{"attributes.process_label": CAMPAIGN_LABEL})
    node = load_identified(identifier, by_label)
    if getattr(node, "process_label", None) != CAMPAIGN_LABEL:
        raise ValueError(
            f"node {node.pk} is a {getattr(node, 'process_label', None) or type(node).__name__}, not a campaign"
        )
    return node


def iteration_outputs(campaign: orm.WorkChainNode, label: str) -> list[orm.Data]:
    """The ``label`` output (``summary``, a Dict, or ``state``, a ``nanoos.campaign_state``) of every finished
    ``record_iteration``, oldest first.

    QueryBuilder::

        qb = QueryBuilder()
        qb.append(WorkChainNode, filters={"id": campaign.pk}, tag="campaign")
        qb.append(CalcFunctionNode, with_incoming="campaign", tag="record",
                  edge_filters={"type": "call_calc"},
                  filters={"attributes.process_label": "record_iteration", "attributes.exit_status": 0})
        qb.append(Data, with_incoming="record", edge_filters={"label": label}, project="*")
        qb.order_by({"record": {"ctime": "asc"}})
    """
    query = orm.QueryBuilder()
    query.append(orm.WorkChainNode, filters={"id": campaign.pk}, tag="campaign")
    query.append(
        orm.CalcFunctionNode,
        with_incoming="campaign",
        edge_filters={"type": LinkType.CALL_CALC.value},
        filters={"attributes.process_label": "record_iteration", "attributes.exit_status": 0},
        tag="record",
    )
    query.append(orm.Data, with_incoming="record", edge_filters={"label": label}, project="*")
    query.order_by({"record": {"ctime": "asc"}})
    return query.all(flat=True)


def _initialisation(campaign: orm.WorkChainNode) -> orm.CalcFunctionNode:
    """The campaign's finished ``initialize_campaign`` (its ``definition`` and first ``state`` outputs)."""
    query = orm.QueryBuilder()
    query.append(orm.WorkChainNode, filters={"id": campaign.pk}, tag="campaign")
    query.append(
        orm.CalcFunctionNode,
        with_incoming="campaign",
        filters={"attributes.process_label": "initialize_campaign", "attributes.exit_status": 0},
        project="*",
    )
    found = query.all(flat=True)
    if not found:
        raise ValueError(f"campaign {campaign.pk} has not started yet (no initialize_campaign)")
    return found[0]


@dataclass
class CampaignView:
    """What a campaign knows now (running or finished): its definition node, objective, config and latest state."""

    node: orm.WorkChainNode
    definition: orm.Dict
    objective: cp.CampaignObjective
    config: cp.CampaignConfig
    state: CampaignState
    summaries: list[dict[str, Any]]


def campaign_view(campaign: int | str | orm.Node) -> CampaignView:
    """The latest state of a campaign: its ``state`` output when finished, else the last recorded iteration's."""
    node = load_campaign_node(campaign)
    init = _initialisation(node)
    states = iteration_outputs(node, "state")
    state = node.outputs.state if "state" in node.outputs else (states[-1] if states else init.outputs.state)
    _, objective, config = load_campaign(init.outputs.definition)
    summaries = [summary.get_dict() for summary in iteration_outputs(node, "summary")]
    return CampaignView(node, init.outputs.definition, objective, config, cp.load_state(state.get_dict()), summaries)


def _flat(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    """``{"strain": {"iso": 0.02}}`` -> ``{"parameters.strain.iso": 0.02}``: one column per number."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out.update(_flat(f"{prefix}.{key}", value))
        else:
            out[f"{prefix}.{key}"] = value
    return out


def campaign_dataframe(campaign: int | str | orm.Node) -> pd.DataFrame:
    """One row per candidate of the campaign: ``id``, ``iteration`` (from 1), ``generation_method``, ``formula``,
    ``status`` (ok / failed / pending), ``source`` (dft / ml), ``value`` (first objective), ``feasible``,
    ``uncertainty`` (σ of a property-model prediction), ``error``, ``structure`` (UUID), then one column per
    parameter (``parameters.<name>``, nested ones as ``parameters.strain.iso``) and per property
    (``properties.<name>``).

    Read from the latest campaign state (see :func:`iteration_outputs` for the QueryBuilder that finds it).
    """
    view = campaign_view(campaign)
    rows = []
    for record in [*view.state.candidates, *view.state.pending]:
        row = {
            "id": record.id,
            "iteration": record.iteration + 1,
            "generation_method": record.generation_method,
            "formula": record.formula,
            "status": record.status,
            "source": record.source,
            "value": record.value,
            "feasible": record.feasible,
            "uncertainty": (record.prediction or {}).get("uncertainty"),
            "error": record.error,
            "structure": record.uuid,
        }
        row.update(_flat("parameters", record.parameters or {}))
        row.update(_flat("properties", record.properties or {}))
        rows.append(row)
    return pd.DataFrame(rows)


def best_candidates(
    prop: str,
    low: float | None = None,
    high: float | None = None,
    limit: int = 20,
    largest: bool = True,
    campaigns: list[int] | None = None,
) -> pd.DataFrame:
    """Candidates of every campaign whose evaluated ``prop`` lies in [low, high], the largest first (``largest``
    False: the smallest first), at most ``limit``, among all campaigns (or those whose PK is in ``campaigns``):
    ``campaign``, ``campaign_label``, ``candidate``, ``prop``,
    ``structure`` (UUID of the candidate StructureData), ``evaluation`` (PK of the evaluator work chain).

    The values are the evaluators' ``properties`` outputs (DFT or the analytic model), so predictions of an ML-only
    campaign do not appear. QueryBuilder::

        qb = QueryBuilder()
        qb.append(WorkChainNode, tag="campaign", project=["id", "label"],
                  filters={"attributes.process_label": "CampaignWorkChain"})  # and "id": {"in": campaigns}
        qb.append(WorkflowNode, with_incoming="campaign", tag="evaluation", project=["id"],
                  edge_filters={"type": "call_work", "label": {"like": "evaluate_%"}}, edge_project=["label"])
        qb.append(Dict, with_incoming="evaluation", edge_filters={"label": "properties"}, tag="properties",
                  filters={f"attributes.{prop}": {"and": [{">=": low}, {"<=": high}]}},
                  project=[f"attributes.{prop}"])
        qb.append(StructureData, with_outgoing="evaluation", edge_filters={"label": "structure"}, project=["uuid"])
        qb.order_by({"properties": {f"attributes.{prop}": {"order": "desc", "cast": "f"}}})
    """
    bounds = [{">=": float(low)}] if low is not None else []
    bounds += [{"<=": float(high)}] if high is not None else []
    value_filter = {f"attributes.{prop}": {"and": bounds}} if bounds else {"attributes": {"has_key": prop}}
    query = orm.QueryBuilder()
    campaign_filter: dict[str, Any] = {"attributes.process_label": CAMPAIGN_LABEL}
    if campaigns is not None:
        campaign_filter["id"] = {"in": [int(pk) for pk in campaigns]}
    query.append(orm.WorkChainNode, tag="campaign", project=["id", "label"], filters=campaign_filter)
    query.append(
        orm.WorkflowNode,
        with_incoming="campaign",
        tag="evaluation",
        project=["id"],
        edge_filters={"type": LinkType.CALL_WORK.value, "label": {"like": "evaluate_%"}},
        edge_project=["label"],
        edge_tag="call",
    )
    query.append(
        orm.Dict,
        with_incoming="evaluation",
        edge_filters={"label": "properties"},
        tag="properties",
        filters=value_filter,
        project=[f"attributes.{prop}"],
    )
    query.append(
        orm.StructureData, with_outgoing="evaluation", edge_filters={"label": "structure"}, project=["uuid"], tag="cell"
    )
    query.order_by({"properties": {f"attributes.{prop}": {"order": "desc" if largest else "asc", "cast": "f"}}})
    query.limit(int(limit))
    columns = ["campaign", "campaign_label", "evaluation", "candidate", prop, "structure"]
    rows = [
        (
            row["campaign"]["id"],
            row["campaign"]["label"],
            row["evaluation"]["id"],
            row["call"]["label"].removeprefix("evaluate_"),
            float(row["properties"][f"attributes.{prop}"]),
            row["cell"]["uuid"],
        )
        for row in query.dict()
    ]
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------------------------- plot data
def convergence_data(campaign: int | str | orm.Node, baseline: int | str | orm.Node | None = None) -> dict[str, Any]:
    """The arguments of :func:`aiida_nanoos.plots.convergence_figure`: best so far and DFT evaluations paid per
    iteration (from the ``record_iteration`` summaries), every DFT-evaluated value, and the random baseline.

    The baseline samples are the values of another stored campaign (``baseline``, e.g. a random search of the same
    space), else the campaign's own randomly generated candidates (its random start), else none. Several objectives:
    the hypervolume, without baseline.
    """
    view = campaign_view(campaign)
    objective = view.objective
    primary = objective.primary
    evaluated, n = [], 0
    for record in view.state.candidates:
        if record.simulated:
            n += 1
            if record.good and not objective.multi:
                evaluated.append((n, float(record.objectives[0])))
    samples, source = [], None
    if not objective.multi:
        if baseline is not None:
            other = campaign_view(baseline)
            samples = [r.objectives[0] for r in other.state.candidates if r.good and r.simulated]
            source = f"campaign {other.node.pk}, {len(samples)} evaluations"
        else:
            samples = [
                r.objectives[0]
                for r in view.state.candidates
                if r.good and r.simulated and str(r.generation_method).startswith("random")
            ]
            source = f"{len(samples)} random candidates of this campaign"
    return {
        "best_so_far": [s.get("best_so_far") for s in view.summaries],
        "evaluations": [int(s.get("budget_used") or 0) for s in view.summaries],
        "metric": "hypervolume" if objective.multi else primary.name,
        "units": "" if objective.multi else primary.units,
        "maximize": objective.maximize,
        "evaluated": evaluated,
        "samples": [float(v) for v in samples],
        "sample_source": source,
        "title": f"Campaign {view.node.pk} {view.node.label or ''}".strip(),
    }


def pareto_data(campaign: int | str | orm.Node) -> dict[str, Any]:
    """The arguments of :func:`aiida_nanoos.plots.pareto_figure`: the objectives of the feasible candidates, which
    are on the front (the ``pareto_front`` output when the campaign has one, else computed), the infeasible ones,
    the reference point and the hypervolume."""
    view = campaign_view(campaign)
    objective = view.objective
    if not objective.multi:
        raise ValueError(f"campaign {view.node.pk} has one objective ({objective.primary.name}): no Pareto front")
    good = [r for r in view.state.candidates if r.good]
    points = np.asarray([r.objectives for r in good], float).reshape(len(good), len(objective.objectives))
    if "pareto_front" in view.node.outputs:
        front = view.node.outputs.pareto_front.get_dict()
        members = {m["id"] for m in front["members"]}
        on_front = [r.id in members for r in good]
    else:
        front = cp.pareto_records(view.state.candidates, objective, view.config, view.state.reference_point)
        on_front = list(pareto_mask(points, objective.directions)) if len(points) else []
    return {
        "objectives": points,
        "on_front": on_front,
        "names": [o.name for o in objective.objectives],
        "units": [o.units for o in objective.objectives],
        "directions": objective.directions,
        "infeasible": [r.objectives for r in view.state.candidates if r.ok and not r.feasible],
        "reference_point": front.get("reference_point"),
        "hypervolume": front.get("hypervolume"),
        "title": f"Campaign {view.node.pk} {view.node.label or ''}".strip(),
    }
