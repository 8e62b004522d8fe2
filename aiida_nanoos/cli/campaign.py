"""``aiida-nanoos campaign run|show|stats|list|watch|pause|play|kill``: design campaigns from a YAML config, what they
found, and their control (campaigns are given by PK, UUID or label)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click
from aiida.cmdline.utils.decorators import with_dbenv

from .campaign_pace import fmt as _fmt
from .campaign_pace import hypervolume_data, pace_data, pace_lines
from .campaign_template import campaign_template
from .examples import example_option
from .params import CAMPAIGN, JSON, echo_json, echo_table, group, process_state
from .progress import CampaignProgress, messages_of, watch
from .utils import launch, read_config, structure_from_spec

CONFIG_KEYS = {
    "name",
    "description",
    "search_space",
    "objective",
    "constraints",
    "config",
    "evaluator",
    "model_training_code",
}
#: Code of the property model's training CalcJob when ``config.property_model.training`` is set and none is named.
DEFAULT_MODEL_TRAINING_CODE = "nanoos-train-model@localhost"
EVALUATOR_KEYS = {"name", "code", "protocol", "overrides", "electronic_type", "options"}


def space_from_config(spec: Any, base_dir: Path) -> dict[str, Any]:
    """The search space of a config, with ``base_structure`` given as a file, a node PK or ``{bulk: ...}``."""
    from aiida_nanoos.design.spaces import atoms_to_dict

    if not isinstance(spec, dict):
        raise click.BadParameter("search_space: expected a mapping with dimensions and a base_structure")
    space = dict(spec)
    base = space.get("base_structure")
    if base is not None and not (isinstance(base, dict) and "symbols" in base):
        space["base_structure"] = atoms_to_dict(
            structure_from_spec(base, base_dir, field="search_space.base_structure").get_ase()
        )
    return space


def builder_from_config(config: dict[str, Any], base_dir: Path):
    """A CampaignWorkChain builder from a campaign config (see ``examples/campaign_group_iv.yaml``)."""
    from aiida import orm
    from aiida_quantumespresso.common.types import ElectronicType

    from aiida_nanoos.workflows.campaign import CampaignWorkChain, evaluator_builder

    if "surrogate_code" in config:
        raise click.BadParameter("surrogate_code: renamed; use model_training_code (the same code label)")
    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise click.BadParameter(f"unknown key(s) {unknown}; allowed: {sorted(CONFIG_KEYS)}")
    for key in ("search_space", "objective", "evaluator"):
        if key not in config:
            raise click.BadParameter(f"{key}: required")
    from aiida_nanoos.design.campaign import renamed_config_keys
    from aiida_nanoos.workflows.evaluators import RENAMED_EVALUATORS

    refused = renamed_config_keys(config.get("config") or {})
    if refused:
        raise click.BadParameter(refused)
    evaluator = config["evaluator"]
    if isinstance(evaluator, str):
        evaluator = {"name": evaluator}
    if isinstance(evaluator, dict) and evaluator.get("name") in RENAMED_EVALUATORS:
        raise click.BadParameter(
            f"evaluator: {evaluator['name']!r} was renamed; use {RENAMED_EVALUATORS[evaluator['name']]!r}"
        )
    space = space_from_config(config["search_space"], base_dir)
    unknown = sorted(set(evaluator) - EVALUATOR_KEYS)
    if unknown:
        raise click.BadParameter(f"evaluator: unknown key(s) {unknown}; allowed: {sorted(EVALUATOR_KEYS)}")
    kwargs: dict[str, Any] = {}
    if "electronic_type" in evaluator:
        kind = str(evaluator["electronic_type"]).upper()
        if kind not in ElectronicType.__members__:
            raise click.BadParameter(
                f"evaluator.electronic_type: metal or insulator, got {evaluator['electronic_type']!r}"
            )
        kwargs["electronic_type"] = ElectronicType[kind]
    if "options" in evaluator:
        kwargs["options"] = evaluator["options"]
    try:
        inputs = evaluator_builder(
            evaluator.get("name", ""),
            space,
            code=orm.load_code(evaluator["code"]) if evaluator.get("code") else None,
            protocol=evaluator.get("protocol"),
            overrides=evaluator.get("overrides"),
            constraints=config.get("constraints"),
            **kwargs,
        )
        builder = CampaignWorkChain.get_builder_from_evaluator(
            space,
            config["objective"],
            evaluator["name"],
            evaluator_inputs=inputs,
            config=config.get("config"),
            constraints=config.get("constraints"),
        )
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    property_model = (config.get("config") or {}).get("property_model") or {}
    if config.get("model_training_code") or (
        isinstance(property_model, dict) and property_model.get("training") is not None
    ):
        label = config.get("model_training_code") or DEFAULT_MODEL_TRAINING_CODE
        try:
            builder.model_training_code = orm.load_code(label)
        except Exception as error:  # noqa: BLE001 (NotExistent, MultipleObjectsError)
            raise click.BadParameter(
                f"model_training_code: no code {label!r} (run `aiida-nanoos setup`): {error}",
                param_hint="model_training_code",
            ) from error
    metadata = {}
    if config.get("name"):
        metadata["label"] = str(config["name"])
    if config.get("description"):
        metadata["description"] = str(config["description"])
    builder.metadata = metadata
    return builder


def campaign_snapshot(node) -> dict[str, Any]:
    """What a campaign knows now (running or finished): definition, latest state, summaries, statistics."""
    from aiida import orm

    from aiida_nanoos.design import campaign as cp
    from aiida_nanoos.query import iteration_outputs

    calls = sorted(node.called, key=lambda n: n.ctime)
    init = next((c for c in calls if c.process_label == "initialize_campaign" and c.is_finished_ok), None)
    if init is None:
        raise click.ClickException(f"campaign {node.pk} has not started yet")
    definition = init.outputs.definition.get_dict()
    states = iteration_outputs(node, "state")
    if "state" in node.outputs:
        state_node = node.outputs.state
    elif states:
        state_node = states[-1]
    else:
        state_node = init.outputs.state
    summaries = [summary.get_dict() for summary in iteration_outputs(node, "summary")]
    _, objective, config = cp.validate_campaign(
        definition["search_space"], definition["objective"], definition["config"], definition.get("constraints")
    )
    state = cp.load_state(state_node.get_dict())
    suggests = [c for c in calls if c.process_label == "suggest_candidates"]
    records = [c for c in calls if c.process_label == "record_iteration" and c.is_finished_ok]
    times = [(r.ctime - s.ctime).total_seconds() for s, r in zip(suggests, records, strict=False)]
    statistics = (
        node.outputs.statistics.get_dict()
        if "statistics" in node.outputs
        else cp.json_safe(cp.statistics(state, objective, config, times))
    )
    best = (
        node.outputs.best_candidates["candidates"]
        if "best_candidates" in node.outputs
        else cp.json_safe(cp.best_candidates(state.candidates, objective, config.top_n))
    )
    evaluations = [
        link.node for link in node.base.links.get_outgoing().all() if link.link_label.startswith("evaluate_")
    ]
    return {
        "node": node,
        "definition": definition,
        "objective": objective,
        "config": config,
        "state": state,
        "state_node": orm.load_node(state_node.pk),
        "summaries": summaries,
        "statistics": statistics,
        "best": best,
        "evaluations": evaluations,
        "gp_fits": [c for c in calls if c.process_label == "fit_gp" and c.is_finished_ok],
    }


def _transform_text(model: dict) -> str:
    """'power (lambda 0.31)', 'log', ... as recorded by fit_gp (older records have no transform)."""
    transform = model.get("output_transform", "none")
    lam = model.get("power_lambda")
    return f"{transform} (lambda {lam:.2f})" if lam is not None else transform


@group()
def campaign() -> None:
    """Design campaigns: search a space of candidates with BO, a GA, random search or an external proposer."""


@campaign.command("run")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--submit", is_flag=True, help="Submit to the daemon instead of running here.")
@example_option("campaign")
@with_dbenv()
def campaign_run(config_file: Path, submit: bool) -> None:
    """Run the campaign described by CONFIG_FILE (YAML); here, it shows its progress (iteration i/N, best so far,
    budget used, elapsed and estimated time left; `-v info` for the processes' reports)."""
    builder = builder_from_config(read_config(config_file), config_file.parent)
    node = launch(builder, submit, progress=CampaignProgress)
    if submit:
        click.echo(
            f"Follow it with `aiida-nanoos campaign watch {node.pk}` (or `campaign show` / `campaign stats`); "
            f"control it with `aiida-nanoos campaign pause|play|kill {node.pk}`."
        )
        return
    click.echo(f"{node.process_label}<{node.pk}> finished with exit status {node.exit_status}")
    echo_show(node)
    if node.exit_status:
        raise SystemExit(node.exit_status)


def show_data(snap: dict[str, Any]) -> dict[str, Any]:
    """``campaign show --json``: what the report shows, as plain JSON."""
    node, config, state = snap["node"], snap["config"], snap["state"]
    return {
        "pk": node.pk,
        "uuid": node.uuid,
        "label": node.label,
        "state": node.process_state.value if node.process_state else None,
        "exit_status": node.exit_status,
        "algorithm": config.algorithm,
        "batch_size": config.batch_size,
        "objectives": [o.name for o in snap["objective"].objectives],
        "evaluator": node.inputs.evaluator.value,
        "iterations": state.iteration,
        "max_iterations": config.max_iterations,
        "summaries": [{k: v for k, v in s.items() if k != "candidates"} for s in snap["summaries"]],
        "best_candidates": snap["best"],
        "state_node": snap["state_node"].pk,
        "convergence": state.converged,
    }


def echo_show(node) -> None:
    snap = campaign_snapshot(node)
    objective, config, state = snap["objective"], snap["config"], snap["state"]
    names = ", ".join(o.name for o in objective.objectives)
    click.echo(f"Campaign {node.pk} [{process_state(node)}]  {node.label or ''}")
    click.echo(
        f"  algorithm {config.algorithm}, batch {config.batch_size}, objective {names}, "
        f"evaluator {node.inputs.evaluator.value}, iterations {state.iteration}/{config.max_iterations}"
    )
    click.echo("\nIterations")
    rows = [
        [
            s["iteration"],
            s["candidates_evaluated"],
            s["failed"],
            _fmt(s["best_objective_value"]),
            _fmt(s["best_so_far"]),
        ]
        for s in snap["summaries"]
    ]
    echo_table(rows, ["it", "evaluated", "failed", "best", "best so far"], plain=True, indent="  ")
    click.echo("\nBest candidates")
    props = sorted(objective.properties) or []
    # with a property model some values are predictions: say which, with their sigma
    with_source = any(c["properties"].get("source") for c in snap["best"])
    from aiida import orm

    rows = []
    for c in snap["best"]:
        row = [c["rank"], c["id"], c["formula"], _fmt(c["objectives"]), *(_fmt(c["properties"].get(p)) for p in props)]
        if with_source:
            sigma = c["properties"].get("uncertainty")
            row.append(c["properties"].get("source", "dft") + (f" ±{sigma:.3g}" if sigma is not None else ""))
        pk = orm.load_node(c["uuid"]).pk if c.get("uuid") else "-"
        row.append(f"{pk}" + ("" if c.get("feasible", True) else " (infeasible)"))
        rows.append(row)
    headers = ["rank", "id", "formula", "objective", *props, *(["source"] if with_source else []), "structure"]
    echo_table(rows, headers, plain=True, indent="  ")
    click.echo("\nState")
    click.echo(
        f"  {type(snap['state_node']).__name__}<{snap['state_node'].pk}>: {len(state.values)} evaluations, "
        f"random stream at {state.counter}"
    )
    if snap["gp_fits"]:
        fit = snap["gp_fits"][-1].outputs.result.get_dict()["models"]
        for m in fit:
            ls = ", ".join(f"{v:.3g}" for v in m["lengthscales"])
            click.echo(
                f"  GP ({m['objective']}): {m['kernel']}, lengthscales [{ls}], noise {m['noise_variance']:.3g}, "
                f"output {_transform_text(m)}, {m['n_observed']} observations"
            )
    if state.ga:
        click.echo(f"  GA: {state.ga['kind']}, population {len(state.ga['fitness'])}")
    click.echo(f"  convergence: {state.converged or 'running'}")


@campaign.command("show")
@click.argument("campaign", type=CAMPAIGN)
@JSON
@with_dbenv()
def campaign_show(campaign, as_json: bool) -> None:
    """Iterations, best candidates and algorithm state of CAMPAIGN (PK, UUID or label; running or finished)."""
    if as_json:
        echo_json(show_data(campaign_snapshot(campaign)))
        return
    echo_show(campaign)


@campaign.command("stats")
@click.argument("campaign", type=CAMPAIGN)
@JSON
@with_dbenv()
def campaign_stats(campaign, as_json: bool) -> None:
    """Budget used, evaluations, failures, best per iteration, convergence, the pace (seconds per iteration,
    evaluations per hour), the estimated time left to the budget or max_iterations and, for Pareto campaigns, the
    hypervolume after each iteration, of CAMPAIGN (PK, UUID or label)."""
    node = campaign
    snap = campaign_snapshot(node)
    stats = dict(snap["statistics"])
    durations = [(e.mtime - e.ctime).total_seconds() for e in snap["evaluations"] if e.is_terminated]
    stats["evaluation_wall_time_total"] = sum(durations)
    stats["campaign_wall_time"] = (node.mtime - node.ctime).total_seconds()
    stats["pace"] = pace_data(snap)
    hypervolume = hypervolume_data(snap)
    if hypervolume is not None:
        stats["hypervolume"] = hypervolume
    if as_json:
        click.echo(json.dumps(stats, indent=2))
        return
    budget = stats["budget"]
    click.echo(
        f"Campaign {node.pk}: {stats['iterations']} iterations, convergence: {stats['convergence_reason'] or 'running'}"
    )
    click.echo(f"  budget used       {stats['budget_used']}" + (f" of {budget}" if budget else " (no budget)"))
    click.echo(
        f"  evaluations       {stats['total_candidates_evaluated']}, failed {stats['failed_evaluations']}, "
        f"infeasible {stats['infeasible_candidates']}"
    )
    click.echo(f"  best {stats['metric']}: {_fmt(stats['best_objective_value'])}")
    click.echo(f"  best per iteration  {_fmt(stats['best_per_iteration'])}")
    click.echo(f"  convergence trend   {_fmt(stats['convergence_trend'])}")
    click.echo(f"  iteration times (s) {_fmt(stats['iteration_times'])}")
    click.echo(f"  generation methods  {stats['generation_methods']}")
    click.echo(
        f"  wall time {stats['campaign_wall_time']:.1f} s, of which evaluations (summed) "
        f"{stats['evaluation_wall_time_total']:.1f} s"
    )
    click.echo("\nPace")
    for line in pace_lines(stats["pace"]):
        click.echo(line)
    if hypervolume is not None:
        names = ", ".join(hypervolume["objectives"])
        click.echo(f"\nHypervolume ({names}; reference point {_fmt(hypervolume['reference_point'])})")
        click.echo(f"  after each iteration  {_fmt(hypervolume['trend'])}")


@campaign.command("list")
@click.option("--past-days", "-d", type=int, default=None, help="Only campaigns created in the past N days.")
@JSON
@with_dbenv()
def campaign_list(past_days: int | None, as_json: bool) -> None:
    """Campaigns in the profile, newest last (as `verdi process list` shows processes)."""
    from datetime import timedelta

    from aiida import orm
    from aiida.common import timezone

    from aiida_nanoos.query import iteration_outputs

    filters: dict[str, Any] = {"attributes.process_label": "CampaignWorkChain"}
    if past_days is not None:
        filters["ctime"] = {">": timezone.now() - timedelta(days=past_days)}
    query = orm.QueryBuilder().append(orm.WorkChainNode, filters=filters, project=["*"], tag="campaign")
    query.order_by({"campaign": {"ctime": "asc"}})
    rows = [
        {
            "PK": node.pk,
            "Created": f"{node.ctime:%Y-%m-%d %H:%M:%S}",
            "Process State": process_state(node),
            "Iterations": len(iteration_outputs(node, "summary")),
            "Label": node.label,
        }
        for node in query.all(flat=True)
    ]
    if as_json:
        echo_json(rows)
    elif rows:
        echo_table(rows)
        click.echo(f"\nTotal results: {len(rows)}")
    else:
        click.echo("No campaigns yet: run one with `aiida-nanoos campaign run CONFIG.yaml`.")


@campaign.command("watch")
@click.argument("campaign", type=CAMPAIGN)
@click.option(
    "--interval", type=click.FloatRange(min=0.05), default=2.0, show_default=True, help="Seconds between looks."
)
@with_dbenv()
def campaign_watch(campaign, interval: float) -> None:
    """Follow CAMPAIGN (submitted to the daemon) until it terminates: iteration i/N, best so far, budget used,
    elapsed and estimated time left; then its state."""
    watch(campaign, CampaignProgress, interval)
    click.echo(f"{campaign.process_label}<{campaign.pk}> {process_state(campaign)}")
    if not campaign.is_finished_ok:
        raise SystemExit(campaign.exit_status or 1)


TIMEOUT = click.option(
    "-t",
    "--timeout",
    type=click.FloatRange(0, float("inf")),
    default=5.0,
    show_default=True,
    help="Seconds to wait for the daemon to answer (0: send and return at once).",
)


def _control(action: str, campaigns: tuple, timeout: float, **kwargs: Any) -> None:
    """``verdi process pause|play|kill`` on campaigns: aiida's process control, with verdi's messages."""
    from aiida.cmdline.utils import echo
    from aiida.engine.processes import control

    function = {"pause": control.pause_processes, "play": control.play_processes, "kill": control.kill_processes}
    active = []
    for node in campaigns:
        if node.is_terminated:  # verdi's message, without asking a broker that may not run
            echo.echo_error(f"Process<{node.pk}> is already terminated.")
        else:
            active.append(node)
    if not active:
        return
    with messages_of("aiida") as records:
        try:
            function[action](active, timeout=timeout, **kwargs)
        except control.ProcessTimeoutException as exception:
            echo.echo_critical(f"{exception}\n{REPAIR_INSTRUCTIONS}")
        except ConnectionError as exception:
            echo.echo_critical(f"{exception}\nIs the daemon running? Start it with `verdi daemon start`.")
    for record in records:
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            echo.echo_error(message)
        elif record.levelno >= logging.WARNING:
            echo.echo_warning(message)
        else:
            echo.echo_report(message)
    if any("unreachable" in record.getMessage() for record in records):
        echo.echo_report(REPAIR_INSTRUCTIONS)


REPAIR_INSTRUCTIONS = """\
If one or more processes are unreachable, you can run the following commands to try and repair them:

    verdi daemon stop
    verdi process repair
    verdi daemon start
"""


@campaign.command("pause")
@click.argument("campaigns", nargs=-1, required=True, type=CAMPAIGN)
@TIMEOUT
@with_dbenv()
def campaign_pause(campaigns: tuple, timeout: float) -> None:
    """Pause running CAMPAIGNS (`verdi process pause`); `campaign play` continues them where they stopped."""
    _control("pause", campaigns, timeout, msg_text="Paused through `aiida-nanoos campaign pause`")


@campaign.command("play")
@click.argument("campaigns", nargs=-1, required=True, type=CAMPAIGN)
@TIMEOUT
@with_dbenv()
def campaign_play(campaigns: tuple, timeout: float) -> None:
    """Continue paused CAMPAIGNS (`verdi process play`)."""
    _control("play", campaigns, timeout)


@campaign.command("kill")
@click.argument("campaigns", nargs=-1, required=True, type=CAMPAIGN)
@TIMEOUT
@with_dbenv()
def campaign_kill(campaigns: tuple, timeout: float) -> None:
    """Kill CAMPAIGNS (`verdi process kill`); the state of the last finished iteration stays in the graph
    (`restart_from` continues from it)."""
    _control("kill", campaigns, timeout, msg_text="Killed through `aiida-nanoos campaign kill`")


campaign.add_command(campaign_template)
