"""Which earlier campaigns a campaign starts from (``config.warm_start``), found on the profile and checked before
anything runs: named ones must exist, be finished campaigns and optimise a function of the same property; the
provenance query form (``same_objective: true``) takes every such campaign whose candidates are points of this space.

The earlier campaigns' ``state`` and ``definition`` nodes become inputs of the new campaign's first decision
(``initialize_campaign``), so ``verdi node graph`` shows what was reused; the pure core
(:func:`aiida_nanoos.design.transfer.earlier_evaluations`) reads them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from aiida import orm
from aiida.common.exceptions import MultipleObjectsError, NotExistent

from aiida_nanoos.design import campaign as cp
from aiida_nanoos.design.config import WarmStartSettings
from aiida_nanoos.design.objectives import CampaignObjective
from aiida_nanoos.design.spaces import ParameterSpace
from aiida_nanoos.design.transfer import earlier_evaluations, objective_properties

#: Process label of the campaign work chain (what the provenance query looks for).
CAMPAIGN_LABEL = "CampaignWorkChain"


def _flat_nodes(value: Any, prefix: str = "") -> dict[str, orm.Node]:
    if isinstance(value, orm.Node):
        return {prefix: value}
    out: dict[str, orm.Node] = {}
    for key, item in (value or {}).items():
        out.update(_flat_nodes(item, f"{prefix}.{key}" if prefix else key))
    return out


def task_fingerprint(evaluator: str, evaluator_inputs: Mapping[str, Any]) -> dict[str, str]:
    """The evaluator and a hash of the content of its input nodes (code, parameters, pseudopotentials, ...): two
    campaigns with equal fingerprints and search spaces evaluate the same task."""
    hashes = {path: node.base.caching.get_hash() for path, node in sorted(_flat_nodes(evaluator_inputs).items())}
    digest = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:16]
    return {"evaluator": evaluator, "inputs": digest}


def campaign_definition(campaign: orm.WorkflowNode) -> orm.Dict:
    """The ``definition`` node a campaign's ``initialize_campaign`` made."""
    calls = campaign.base.links.get_outgoing(link_label_filter="initialize_campaign").all_nodes()
    if not calls or "definition" not in calls[0].outputs:
        raise ValueError(f"campaign {campaign.pk}: no campaign definition (not a campaign of this version)")
    return calls[0].outputs.definition


def _load_campaign(identifier: int | str) -> orm.WorkflowNode:
    """The campaign node named by PK or UUID; ``ValueError`` naming the identifier when it is none."""
    where = f"config.warm_start.campaigns: {identifier!r}"
    try:
        node = orm.load_node(identifier)
    except (NotExistent, MultipleObjectsError, ValueError) as error:
        raise ValueError(f"{where}: no such node on this profile ({error})") from error
    if not isinstance(node, orm.WorkflowNode) or node.process_label != CAMPAIGN_LABEL:
        raise ValueError(f"{where}: {type(node).__name__}<{node.pk}> is not a design campaign")
    if not node.is_finished_ok:
        state = node.process_state.value if node.process_state else "unknown"
        raise ValueError(
            f"{where}: campaign {node.pk} has not finished ok ({state}, exit status {node.exit_status}); "
            "only finished campaigns can seed another"
        )
    return node


def _evaluations(campaign: orm.WorkflowNode, space: ParameterSpace, objective: CampaignObjective, spec) -> None:
    """Raise ``ValueError`` naming the campaign when its evaluations cannot seed this campaign."""
    definition = campaign_definition(campaign)
    earlier_evaluations(
        space,
        objective,
        spec,
        None,
        f"config.warm_start: campaign {campaign.pk}",
        definition.get_dict(),
        cp.load_state(campaign.outputs.state.get_dict()),
    )


def find_warm_start(
    settings: WarmStartSettings, space: ParameterSpace, objective: CampaignObjective, search_space: Mapping[str, Any]
) -> list[orm.WorkflowNode]:
    """The earlier campaigns of ``settings``, oldest first. Named ones that cannot seed this campaign are refused
    (``ValueError`` naming the ID); the query form skips campaigns of other spaces or without usable evaluations."""
    if objective.multi:
        raise ValueError("config.warm_start: a warm start needs one objective (the multi-task model has one output)")
    if settings.campaigns:
        found = [_load_campaign(identifier) for identifier in settings.campaigns]
        for campaign in found:
            _evaluations(campaign, space, objective, search_space)
        return found
    query = orm.QueryBuilder().append(
        orm.WorkflowNode,
        filters={"attributes.process_label": CAMPAIGN_LABEL, "attributes.exit_status": 0},
        project="*",
    )
    wanted = objective_properties(objective)
    found = []
    for campaign in sorted(query.all(flat=True), key=lambda node: node.ctime):
        try:
            spec = campaign.inputs.objective
            earlier = CampaignObjective.from_spec(spec.get_dict() if isinstance(spec, orm.Dict) else spec.value)
            if objective_properties(earlier) != wanted:
                continue
            _evaluations(campaign, space, objective, search_space)
        except ValueError:  # another space, no usable evaluation, another version: not a campaign to start from
            continue
        found.append(campaign)
    return found


def warm_start_inputs(campaigns: list[orm.WorkflowNode]) -> dict[str, orm.Data]:
    """``campaign_<pk>_state`` and ``campaign_<pk>_definition`` of each earlier campaign (inputs of
    ``initialize_campaign``)."""
    out: dict[str, orm.Data] = {}
    for campaign in campaigns:
        out[f"campaign_{campaign.pk}_state"] = campaign.outputs.state
        out[f"campaign_{campaign.pk}_definition"] = campaign_definition(campaign)
    return out


def validate_warm_start(config: cp.CampaignConfig, space, objective, search_space: Mapping[str, Any]) -> str | None:
    """The message refusing ``config.warm_start`` (unknown IDs, unfinished campaigns, another objective property or
    space), or None."""
    settings = config.warm_start_settings()
    if settings is None:
        return None
    try:
        find_warm_start(settings, space, objective, search_space)
    except ValueError as error:
        return str(error)
    return None
