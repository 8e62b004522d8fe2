"""Calcfunctions of a design campaign: every decision (GP fit, proposal, ranking, Pareto front, whether and on what
the property model is retrained, how the active-learning batch is picked, which candidates go to DFT) is a node.

Each takes the campaign's ``definition`` (search space, objective, config and constraints in one node, made by
:func:`initialize_campaign` from the work chain's inputs) and the current state, and calls the pure core
(:mod:`aiida_nanoos.design.campaign`, :mod:`aiida_nanoos.design.proposers.registry`); nothing numerical happens
here. The state is a typed :class:`~aiida_nanoos.design.state.CampaignState` stored as its ``to_dict()`` in a
``nanoos.campaign_state`` node (one JSON file: cheap to store however long the campaign).
Candidates are ``StructureData`` outputs carrying an immutable ``candidate`` attribute (id, iteration, generation
method, parent ids and UUIDs, parameters, the seed that placed substituted sites).
"""

from __future__ import annotations

import datetime
from typing import Any

from aiida import orm
from aiida.engine import ExitCode, calcfunction
from threadpoolctl import threadpool_limits

from aiida_nanoos.data.campaign_state import CampaignStateData
from aiida_nanoos.design import campaign as cp
from aiida_nanoos.design.proposers import registry as proposers
from aiida_nanoos.design.transfer import earlier_evaluations

#: Attribute of a candidate StructureData holding its campaign record.
CANDIDATE_ATTRIBUTE = "candidate"
#: Exit status of ``suggest_candidates`` when the external proposer fails (the campaign maps it to its own code).
EXTERNAL_PROPOSER_FAILED = 402
#: Exit status of ``fit_gp`` with fewer than two successful evaluations.
FIT_GP_TOO_FEW = 410


def _python(node: orm.Data | None) -> Any:
    if node is None:
        return None
    if isinstance(node, orm.Dict):
        return node.get_dict()
    return node.value


def load_campaign(definition: orm.Dict) -> tuple[Any, cp.CampaignObjective, cp.CampaignConfig]:
    """The validated space, objective and configuration from a campaign ``definition`` node."""
    data = definition.get_dict()
    return cp.validate_campaign(data["search_space"], data["objective"], data["config"], data.get("constraints"))


@calcfunction
def initialize_campaign(
    search_space: orm.Dict,
    objective: orm.Dict | orm.Str,
    config: orm.Dict,
    constraints: orm.Dict | None = None,
    restart_from: orm.Dict | CampaignStateData | None = None,
    task: orm.Dict | None = None,
    **warm_start: orm.Dict,
) -> dict[str, orm.Data]:
    """The campaign ``definition`` (space, objective, config and constraints in one node, the input of every later
    decision) and the starting ``state``: empty (seeded random stream, no history), or the history of
    ``restart_from`` (also a state of the previous version) with its stopping reason re-checked against this
    configuration (e.g. more iterations). With a property model: the model in use (``config.property_model.model``
    unless the continued campaign had one), the ``prediction_settings`` of every prediction, and the training due
    before the first iteration (see :func:`_training_outputs`).

    ``task`` (evaluator and a fingerprint of its inputs) goes into the definition, so a later campaign can tell
    whether it repeats this one's task. ``warm_start`` holds, for each earlier campaign of ``config.warm_start``,
    its ``state`` and ``definition`` nodes (``campaign_<pk>_state``, ``campaign_<pk>_definition``): inputs of this
    first decision, so the graph shows which evaluations were reused; they go into the state (see
    :func:`aiida_nanoos.design.transfer.earlier_evaluations`)."""
    definition = {
        "search_space": search_space.get_dict(),
        "objective": _python(objective),
        "config": config.get_dict(),
        "constraints": _python(constraints),
    }
    if task is not None:
        definition["task"] = task.get_dict()
    space, obj, cfg = cp.validate_campaign(
        definition["search_space"], definition["objective"], definition["config"], definition["constraints"]
    )
    if restart_from is None:
        state = cp.new_state(cfg)
    else:
        state = cp.load_state(restart_from.get_dict())
        state.pending = []
        state.converged = cp.stopping_reason(state, obj, cfg) if state.iteration else None
    earlier = sorted(key.removesuffix("_state") for key in warm_start if key.endswith("_state"))
    if earlier:
        state.warm_start = [
            earlier_evaluations(
                space,
                obj,
                definition["search_space"],
                definition.get("task"),
                key.replace("_", " "),
                warm_start[f"{key}_definition"].get_dict(),
                cp.load_state(warm_start[f"{key}_state"].get_dict()),
            )
            for key in earlier
        ]
    outputs: dict[str, orm.Data] = {"definition": orm.Dict(definition)}
    settings = cfg.property_model_settings()
    if settings is not None:
        book = state.book()
        if book.model_uuid is None and settings.model is not None:  # a continued campaign goes on with its model
            from aiida_nanoos.data.model import ModelData

            model = ModelData.find(settings.model, settings.version)
            book.model_uuid, book.model, book.model_name = model.uuid, model.full_name, model.name
        outputs["prediction_settings"] = orm.Dict(cp.prediction_settings(obj, cfg))
        if cfg.algorithm == "active_learning" and settings.strategy == "diverse_uncertainty":
            outputs["pool_prediction_settings"] = orm.Dict(cp.prediction_settings(obj, cfg, embeddings=True))
        outputs.update(_training_outputs(state, obj, cfg))
    outputs["state"] = CampaignStateData(cp.dump_state(state))
    return outputs


def _training_outputs(state, obj, cfg) -> dict[str, orm.Dict]:
    """The property model's training due before the next iteration, if any: ``training_plan`` (reason, index, the
    UUIDs of the labelled structures), ``training_targets`` (candidate id -> DFT value), ``training_config``."""
    plan = cp.training_plan(state, obj, cfg)
    if plan is None:
        return {}
    return {
        "training_plan": orm.Dict({k: plan[k] for k in ("reason", "index", "structures")}),
        "training_targets": orm.Dict(plan["targets"]),
        "training_config": orm.Dict(plan["config"]),
    }


@calcfunction
def fit_gp(definition: orm.Dict, state: CampaignStateData) -> orm.Dict | ExitCode:
    """Gaussian-process hyper-parameters fitted to the campaign history (one model per objective)."""
    space, obj, cfg = load_campaign(definition)
    with threadpool_limits(limits=1):  # small matrices: BLAS threads only contend with the evaluations
        fitted = proposers.fit_models(space, obj, cfg, cp.load_state(state.get_dict()))
    if fitted is None:
        return ExitCode(FIT_GP_TOO_FEW, "fit_gp needs at least two successful evaluations")
    return orm.Dict(cp.json_safe(fitted))


@calcfunction
def suggest_candidates(
    definition: orm.Dict,
    state: CampaignStateData,
    hyperparameters: orm.Dict | None = None,
    model: orm.Data | None = None,
    pool: orm.Dict | None = None,
    selection: orm.Dict | None = None,
    **population: orm.StructureData,
) -> dict[str, orm.Data] | ExitCode:
    """The next batch: ``candidate_<id>`` structures, a ``proposals`` report and the new ``state``.

    ``population`` are the GA's current parents (inputs for provenance: the children's parents are among them).
    With a property model, ``model`` is the ``nanoos.model`` in use, and for active learning ``pool`` (from
    :func:`generate_pool`) and ``selection`` (``select_for_simulation`` over the pool's prediction) say which pool
    candidates become the batch and why (the reason is kept in each candidate's record). For ``ml_then_dft`` with a
    model, ``dft_selection_settings`` are the settings of the ``select_for_simulation`` that picks which candidates
    of this batch go to DFT (within what is left of the budget).
    A candidate with overlapping atoms is still an output (the proposal happened) but is refused: its record carries
    the reason, listed in ``proposals.report.refused``; the campaign evaluates it nowhere.
    An unreachable or misbehaving external proposer gives exit status 402 and no new state.
    """
    from aiida_nanoos.design.proposers.external import ExternalProposerError

    space, obj, cfg = load_campaign(definition)
    current = cp.load_state(state.get_dict())
    scored = None
    if model is not None:
        scored = {"model": model.base.attributes.get("name")}
        if pool is not None and selection is not None:
            scored.update(pool=pool["candidates"], selection=selection.get_dict())
    try:
        with threadpool_limits(limits=1):
            proposal = proposers.propose(space, obj, cfg, current, _python(hyperparameters), scored)
    except ExternalProposerError as error:
        return ExitCode(EXTERNAL_PROPOSER_FAILED, str(error))
    uuids = {r.id: r.uuid for r in current.candidates}
    outputs: dict[str, orm.Data] = {}
    table = []
    for record, atoms in proposal["candidates"]:
        if atoms is None:
            raise ValueError("a campaign evaluates structures: the search space needs a base_structure")
        structure = orm.StructureData(ase=atoms)
        record.uuid = structure.uuid
        structure.base.attributes.set(
            CANDIDATE_ATTRIBUTE,
            cp.json_safe(
                {
                    "id": record.id,
                    "iteration": record.iteration + 1,
                    "generation_method": record.generation_method,
                    "parents": record.parents,
                    "parent_uuids": [uuids.get(p) for p in record.parents],
                    "parameters": record.parameters,
                    "site_seed": record.site_seed,
                    "acquisition": record.acquisition,
                    "rationale": record.rationale,
                }
            ),
        )
        structure.label = f"{record.id} {record.formula}"
        structure.description = f"campaign candidate {record.id} ({record.generation_method})"
        outputs[f"candidate_{record.id}"] = structure
        table.append(
            {
                "id": record.id,
                "uuid": record.uuid,
                "formula": record.formula,
                "generation_method": record.generation_method,
                "parents": record.parents,
            }
        )
    refused = cp.refuse_unphysical(proposal["candidates"])
    report = {**proposal["report"], "refused": refused} if refused else proposal["report"]
    outputs["proposals"] = orm.Dict(cp.json_safe({"candidates": table, "report": report}))
    outputs["state"] = CampaignStateData(cp.dump_state(current))
    if cfg.evaluation_method == "ml_then_dft" and model is not None and table:
        cells = {record.id: atoms for record, atoms in proposal["candidates"]}
        settings = cp.ml_then_dft_settings(current, cfg, len(table), objective=obj, cells=cells)
        outputs["dft_selection_settings"] = orm.Dict(cp.json_safe(settings))
    return outputs


@calcfunction
def record_iteration(
    definition: orm.Dict,
    state: CampaignStateData,
    failures: orm.Dict,
    property_model: orm.Dict | None = None,
    costs: orm.Dict | None = None,
    **properties: orm.Dict,
) -> dict[str, orm.Dict]:
    """Rank the evaluated batch, update the history and check convergence: new ``state`` and the ``summary``; with
    a property model also the training due before the next iteration, if any (see :func:`_training_outputs`).

    ``properties_<id>`` are the evaluators' (or the property model's) outputs; candidates without one are recorded
    as failed with the reason in ``failures``. ``property_model`` says what the model did this iteration (see
    :func:`aiida_nanoos.design.campaign.record_results`). ``costs`` (id -> wall_seconds, cpu_seconds) is what each
    evaluation used, read from its calculation nodes (:mod:`aiida_nanoos.workflows.evaluators.cost`).
    """
    space, obj, cfg = load_campaign(definition)
    current = cp.load_state(state.get_dict())
    by_id = {key.removeprefix("properties_"): node.get_dict() for key, node in properties.items()}
    info = _python(property_model) if property_model is not None else None
    summary = cp.record_results(
        current, space, obj, cfg, by_id, failures.get_dict(), property_model=info, costs=_python(costs)
    )
    outputs = {"state": CampaignStateData(cp.dump_state(current)), "summary": orm.Dict(cp.json_safe(summary))}
    if cfg.uses_property_model and current.converged is None:
        outputs.update(_training_outputs(current, obj, cfg))
    return outputs


@calcfunction
def pareto_front(definition: orm.Dict, state: CampaignStateData) -> orm.Dict:
    """Feasible non-dominated candidates of a multi-objective campaign and their hypervolume."""
    _, obj, cfg = load_campaign(definition)
    current = cp.load_state(state.get_dict())
    return orm.Dict(cp.json_safe(cp.pareto_records(current.candidates, obj, cfg, current.reference_point)))


@calcfunction
def summarize_campaign(definition: orm.Dict, state: CampaignStateData, timing: orm.List) -> dict[str, orm.Dict]:
    """The campaign's result: ``best_candidates`` (top N with properties) and ``statistics`` (budget, failures,
    best per iteration, convergence trend and reason, iteration wall times from ``timing`` [[start, end], ...])."""
    _, obj, cfg = load_campaign(definition)
    current = cp.load_state(state.get_dict())
    times = [
        (datetime.datetime.fromisoformat(end) - datetime.datetime.fromisoformat(start)).total_seconds()
        for start, end in timing.get_list()
    ]
    return {
        "best_candidates": orm.Dict(
            cp.json_safe({"candidates": cp.best_candidates(current.candidates, obj, cfg.top_n)})
        ),
        "statistics": orm.Dict(cp.json_safe(cp.statistics(current, obj, cfg, times))),
    }


# ---------------------------------------------------------------------------------------------- property model
@calcfunction
def generate_pool(definition: orm.Dict, state: CampaignStateData) -> dict[str, orm.Data]:
    """The candidates an active-learning iteration scores: ``structures`` (one StructureBatchData, labels
    ``p000``...), ``pool`` (label, parameters and site seed of each), the ``state`` with its random stream
    advanced, and the ``selection_settings`` of the ``select_for_simulation`` that picks the batch from the pool."""
    from aiida_nanoos.data.structure_batch import StructureBatchData

    space, obj, cfg = load_campaign(definition)
    current = cp.load_state(state.get_dict())
    pool, cells = proposers.generate_pool(space, cfg, current)
    outputs: dict[str, orm.Data] = {
        "pool": orm.Dict(cp.json_safe({"candidates": pool})),
        "state": CampaignStateData(cp.dump_state(current)),
    }
    if cells:
        outputs["structures"] = StructureBatchData(cells, [entry["label"] for entry in pool])
        outputs["selection_settings"] = orm.Dict(cp.selection_settings(current, obj, cfg, cfg.batch_size))
    return outputs


@calcfunction
def property_model_properties(prediction: orm.ArrayData) -> dict[str, orm.Dict]:
    """``properties_<label>`` of every candidate of a prediction: the predicted property, its uncertainty (the
    recalibrated sigma), ``source: ml`` and the model, recorded like an evaluator's properties."""
    attributes = prediction.base.attributes.all
    labels = prediction.get_array("labels").tolist()
    values, sigmas = prediction.get_array("prediction"), prediction.get_array("uncertainty")
    return {
        f"properties_{label}": orm.Dict(
            cp.ml_properties(attributes["target"], float(values[i]), float(sigmas[i]), attributes.get("model"))
        )
        for i, label in enumerate(labels)
    }


@calcfunction
def information_gain(before: orm.ArrayData, after: orm.ArrayData) -> orm.Dict:
    """How much the property model's (epistemic) sigma on the same candidates fell after retraining."""
    from aiida_nanoos.acquisition.selection import information_gain as gain

    key = "epistemic_uncertainty" if "epistemic_uncertainty" in before.get_arraynames() else "uncertainty"
    result = gain(before.get_array(key), after.get_array(key))
    result["uncertainty"] = key
    result["model_before"] = before.base.attributes.get("model", None)
    result["model_after"] = after.base.attributes.get("model", None)
    return orm.Dict(cp.json_safe(result))
