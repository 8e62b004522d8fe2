"""``nanoos.campaign``: a design campaign as one WorkChain — propose, evaluate, rank, update, repeat.

Per iteration::

    fit_gp (BO) ─► suggest_candidates ─► evaluator × batch (submitted together) ─► record_iteration
                    │ candidate StructureData                                    │ state, summary
                    └ new state                                                  └ convergence check

All decisions are calcfunctions (:mod:`aiida_nanoos.functions.campaign`), so the provenance graph holds every GP fit,
proposal and ranking; the algorithm state is a ``Dict`` node whose UUID lives in the context, so a campaign survives
a daemon restart and can be paused, played and killed with ``verdi process pause|play|kill``. A failed evaluation
is recorded as failed and the campaign goes on.

The evaluator is any WorkChain registered in the ``nanoos.evaluators`` entry point group that takes a ``structure``
and returns ``properties``. It is named by ``evaluator`` and its inputs (the same for every candidate) go in the
dynamic namespace ``evaluator_inputs`` (nodes) plus ``evaluator_metadata`` (the non-stored part, e.g.
``scf.pw.metadata.options``); both are checked against the evaluator's own spec before the campaign starts.
:meth:`CampaignWorkChain.get_builder_from_evaluator` fills them from an evaluator builder.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_, while_
from aiida.plugins import WorkflowFactory

from aiida_nanoos.functions.campaign import (
    EXTERNAL_PROPOSER_FAILED,
    fit_gp,
    initialize_campaign,
    pareto_front,
    record_iteration,
    suggest_candidates,
    summarize_campaign,
)
from aiida_nanoos.ml import campaign as cp
from aiida_nanoos.ml.proposers import n_trainable, population_ids
from aiida_nanoos.workflows.evaluators import load_evaluator


# ---------------------------------------------------------------------------------------------- inputs helpers
def _python(node: orm.Data) -> Any:
    return node.get_dict() if isinstance(node, orm.Dict) else node.value


def _plain(value: Any) -> Any:
    """Nested mappings (frozen port namespaces, builders) as plain dicts; leaves unchanged."""
    if hasattr(value, "_inputs"):
        value = value._inputs(prune=True)
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


def split_inputs(inputs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split nested process inputs into the nodes and the non-stored values (``metadata`` and friends)."""
    nodes: dict[str, Any] = {}
    other: dict[str, Any] = {}
    for key, value in _plain(inputs).items():
        if isinstance(value, orm.Node):
            nodes[key] = value
        elif isinstance(value, Mapping) and key != "metadata":
            sub_nodes, sub_other = split_inputs(value)
            if sub_nodes:
                nodes[key] = sub_nodes
            if sub_other:
                other[key] = sub_other
        elif value is not None and value != {}:
            other[key] = value
    return nodes, other


def merge_inputs(nodes: Mapping[str, Any], other: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`split_inputs`."""
    out = {key: (dict(value) if isinstance(value, Mapping) else value) for key, value in nodes.items()}
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_inputs(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def evaluator_builder(
    name: str,
    space_spec: Mapping[str, Any],
    *,
    code: orm.AbstractCode | str | None = None,
    protocol: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    constraints: Mapping[str, Any] | None = None,
    **kwargs: Any,
):
    """The evaluator's builder for every element a candidate of the space can contain (one set of cutoffs for all,
    so energies compare), from its protocol when it has one (DFT evaluators need ``code``)."""
    evaluator = load_evaluator(name)
    if not hasattr(evaluator, "get_builder_from_protocol"):
        return evaluator.get_builder()
    if code is None:
        raise ValueError(f"evaluator {name!r}: needs a code (e.g. pw@localhost)")
    space = cp.load_space(space_spec, constraints)
    template = orm.StructureData(ase=space.base_structure)
    return evaluator.get_builder_from_protocol(
        code,
        elements=cp.space_elements(space),
        template=template,
        protocol=protocol,
        overrides=dict(overrides or {}),
        **kwargs,
    )


# ---------------------------------------------------------------------------------------------- validators
def _validated(call, *args) -> str | None:
    try:
        call(*args)
    except ValueError as error:
        return str(error)
    return None


def validate_search_space(value: orm.Dict | None, _) -> str | None:
    return None if value is None else _validated(cp.load_space, value.get_dict())


def validate_objective(value: orm.Data | None, _) -> str | None:
    return None if value is None else _validated(cp.CampaignObjective.from_spec, _python(value))


def validate_config(value: orm.Dict | None, _) -> str | None:
    return None if value is None else _validated(cp.CampaignConfig.from_dict, value.get_dict())


def validate_constraints(value: orm.Dict | None, _) -> str | None:
    if value is None:
        return None
    constraints = value.get_dict()
    return _validated(cp.apply_constraints, {}, constraints) or _validated(
        cp.CampaignObjective.from_spec, "maximize_bandgap", constraints.get("properties") or ()
    )


def validate_evaluator(value: orm.Str | None, _) -> str | None:
    if value is None:
        return None
    try:
        load_evaluator(value.value)
    except ValueError as error:
        return f"evaluator: {error}"
    return None


def validate_restart(value: orm.Dict | None, _) -> str | None:
    if value is None:
        return None
    try:
        state = cp.load_state(value.get_dict())
    except (ValueError, TypeError) as error:
        return f"restart_from: not a campaign state ({error})"
    if "candidates" not in state.extra:
        return "restart_from: not a campaign state (no candidate history)"
    return None


def validate_inputs(inputs: dict, _) -> str | None:
    """The whole campaign before anything runs: space, objective and config together (batch vs pool, algorithm vs
    objectives), the evaluator's inputs against its own spec, and the properties the objective needs."""
    required = ("search_space", "objective", "evaluator")
    if any(key not in inputs for key in required):
        return None
    constraints = inputs["constraints"].get_dict() if "constraints" in inputs else None
    config = inputs["config"].get_dict() if "config" in inputs else {}
    try:
        space, objective, _ = cp.validate_campaign(
            inputs["search_space"].get_dict(), _python(inputs["objective"]), config, constraints
        )
        placeholder = orm.StructureData(ase=cp.placeholder_atoms(space))
    except ValueError as error:
        return str(error)
    name = inputs["evaluator"].value
    evaluator = load_evaluator(name)
    provided = getattr(evaluator, "PROPERTIES", None)
    if provided is not None:
        missing = sorted(objective.properties - set(provided))
        if missing:
            return f"objective: needs {missing}, which evaluator {name!r} does not compute (it gives {list(provided)})"
    merged = merge_inputs(
        _plain(inputs.get("evaluator_inputs", {})),
        inputs["evaluator_metadata"].get_dict() if "evaluator_metadata" in inputs else {},
    )
    merged.pop("structure", None)
    merged["structure"] = placeholder
    error = evaluator.spec().inputs.validate(merged)
    if error is not None:
        return f"evaluator_inputs: not valid for evaluator {name!r}: {error}"
    if "restart_from" in inputs:
        state = cp.load_state(inputs["restart_from"].get_dict())
        if state.points and len(state.points[0]) != space.n_encoded:
            return "restart_from: the state belongs to a campaign with a different search space"
    return None


# ---------------------------------------------------------------------------------------------- the work chain
class CampaignWorkChain(WorkChain):
    """Search a space of candidate materials for the best value of an objective, evaluating each with DFT (or any
    registered evaluator), by random search, a genetic algorithm, Bayesian optimisation or an external proposer."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input(
            "search_space",
            valid_type=orm.Dict,
            validator=validate_search_space,
            help="Dimensions, base_structure and element/structure constraints (ParameterSpace.to_dict form).",
        )
        spec.input(
            "objective",
            valid_type=(orm.Dict, orm.Str),
            validator=validate_objective,
            help="A name (maximize_bandgap, ...), a custom/target_range spec, or {objectives: [...]} for several.",
        )
        spec.input(
            "constraints",
            valid_type=orm.Dict,
            required=False,
            validator=validate_constraints,
            help="Element, structure and property constraints added to those of the space and the objective.",
        )
        spec.input(
            "config",
            valid_type=orm.Dict,
            default=lambda: orm.Dict({}),
            validator=validate_config,
            help="Algorithm, batch_size, evaluation_method, budget, max_iterations, patience, seed, top_n, ...",
        )
        spec.input(
            "evaluator",
            valid_type=orm.Str,
            validator=validate_evaluator,
            help="Entry point name in `nanoos.evaluators` (band_gap, formation_energy, analytic, ...).",
        )
        spec.input_namespace(
            "evaluator_inputs",
            dynamic=True,
            valid_type=orm.Data,
            required=False,
            help="Inputs of the evaluator (nodes, nested like its spec) shared by every candidate.",
        )
        spec.input(
            "evaluator_metadata",
            valid_type=orm.Dict,
            required=False,
            help="The evaluator's non-stored inputs (e.g. {scf: {pw: {metadata: {options: {...}}}}}).",
        )
        spec.input(
            "restart_from",
            valid_type=orm.Dict,
            required=False,
            validator=validate_restart,
            help="The `state` output of an earlier campaign on the same space, to continue its history "
            "(max_iterations and budget count the whole history).",
        )
        spec.inputs.validator = validate_inputs
        spec.outline(
            cls.setup,
            if_(cls.needs_references)(cls.run_references, cls.inspect_references),
            while_(cls.should_continue)(
                cls.propose_candidates,
                if_(cls.has_candidates)(cls.evaluate_candidates, cls.record_results),
            ),
            cls.finalize,
        )
        spec.output_namespace(
            "iterations", dynamic=True, help="Per iteration: summary, algorithm state and the candidates."
        )
        spec.output("state", valid_type=orm.Dict, help="Final algorithm state and history (input of restart_from).")
        spec.output("best_candidates", valid_type=orm.Dict, help="Top N candidates with their properties.")
        spec.output_namespace("best_structures", valid_type=orm.StructureData, dynamic=True, help="rank_1, ...")
        spec.output("statistics", valid_type=orm.Dict, help="Budget, failures, convergence trend and reason.")
        spec.output("pareto_front", valid_type=orm.Dict, required=False, help="Non-dominated candidates (several)")
        spec.output("reference_energies", valid_type=orm.Dict, required=False, help="Elemental references used.")
        spec.exit_code(401, "ERROR_REFERENCES_FAILED", message="The elemental reference calculations failed.")
        spec.exit_code(402, "ERROR_PROPOSER_FAILED", message="The external proposer failed: {message}")
        spec.exit_code(
            403, "ERROR_NO_VALID_CANDIDATES", message="The external proposer returned no candidate valid in the space."
        )
        spec.exit_code(404, "ERROR_ALL_EVALUATIONS_FAILED", message="All {count} evaluations failed.")

    @classmethod
    def get_builder_from_evaluator(
        cls,
        search_space: Mapping[str, Any],
        objective: str | Mapping[str, Any],
        evaluator: str,
        evaluator_inputs: Any = None,
        config: Mapping[str, Any] | None = None,
        constraints: Mapping[str, Any] | None = None,
    ):
        """A campaign builder; ``evaluator_inputs`` is the evaluator's builder (or nested inputs), split into the
        stored inputs and their metadata."""
        builder = cls.get_builder()
        builder.search_space = orm.Dict(dict(search_space))
        builder.objective = orm.Str(objective) if isinstance(objective, str) else orm.Dict(dict(objective))
        builder.config = orm.Dict(dict(config or {}))
        builder.evaluator = orm.Str(evaluator)
        if constraints:
            builder.constraints = orm.Dict(dict(constraints))
        nodes, other = split_inputs(evaluator_inputs or {})
        nodes.pop("structure", None)
        other.pop("metadata", None)  # the campaign labels each evaluation itself
        if nodes:
            builder.evaluator_inputs = nodes
        if other:
            builder.evaluator_metadata = orm.Dict(other)
        return builder

    # ------------------------------------------------------------------ helpers
    def _definition(self) -> dict[str, orm.Data]:
        """The decision calcfunctions' common input: the campaign definition node."""
        return {"definition": orm.load_node(self.ctx.definition)}

    def _campaign(self):
        constraints = self.inputs.constraints.get_dict() if "constraints" in self.inputs else None
        return cp.validate_campaign(
            self.inputs.search_space.get_dict(),
            _python(self.inputs.objective),
            self.inputs.config.get_dict(),
            constraints,
        )

    def _state_node(self) -> orm.Dict:
        return orm.load_node(self.ctx.state)

    def _evaluator_inputs(self) -> dict[str, Any]:
        metadata = self.inputs.evaluator_metadata.get_dict() if "evaluator_metadata" in self.inputs else {}
        return merge_inputs(_plain(self.inputs.get("evaluator_inputs", {})), metadata)

    # ------------------------------------------------------------------ outline
    def setup(self):
        """Start a new history (or continue ``restart_from``)."""
        space, objective, config = self._campaign()
        self.ctx.timing = []
        self.ctx.batch = {}
        self.ctx.failure = None
        inputs = {
            key: self.inputs[key]
            for key in ("search_space", "objective", "config", "constraints", "restart_from")
            if key in self.inputs
        }
        initial = initialize_campaign(**inputs)
        self.ctx.definition = initial["definition"].uuid
        self.ctx.state = initial["state"].uuid
        if "restart_from" in self.inputs:
            self.report(f"continuing a campaign after its iteration {initial['state']['iteration']}")
        kind = f"{len(objective.objectives)} objectives" if objective.multi else objective.primary.name
        self.report(
            f"campaign: {config.algorithm}, batch {config.batch_size}, {kind}, evaluator "
            f"{self.inputs.evaluator.value}, at most {config.max_iterations} iterations"
            + (f" / {config.budget} evaluations" if config.budget else "")
        )

    def needs_references(self) -> bool:
        """Formation-energy evaluators get elemental references computed once, up front, for every element."""
        evaluator = load_evaluator(self.inputs.evaluator.value)
        if "reference_energies" not in evaluator.spec().inputs:
            return False
        return "reference_energies" not in self.inputs.get("evaluator_inputs", {})

    def run_references(self):
        space, _, _ = self._campaign()
        inputs = self._evaluator_inputs()
        references = {
            "scf": inputs["scf"],
            "elements": orm.List(cp.space_elements(space)),
            "metadata": {"call_link_label": "elemental_references"},
        }
        if "pseudo_family" in inputs:
            references["pseudo_family"] = inputs["pseudo_family"]
        self.report(f"computing elemental references for {cp.space_elements(space)}")
        return ToContext(references=self.submit(WorkflowFactory("nanoos.references"), **references))

    def inspect_references(self):
        node = self.ctx.references
        if not node.is_finished_ok:
            self.report(f"{node.process_label}<{node.pk}> failed ({node.exit_status})")
            return self.exit_codes.ERROR_REFERENCES_FAILED
        self.ctx.reference_energies = node.outputs.reference_energies.uuid
        self.out("reference_energies", node.outputs.reference_energies)
        return None

    def should_continue(self) -> bool:
        return self.ctx.failure is None and self._state_node()["extra"].get("converged") is None

    def propose_candidates(self):
        """Fit the GP (BO), then propose the batch: candidate structures and the new state."""
        _, _, config = self._campaign()
        state = self._state_node()
        extra: dict[str, Any] = {}
        if config.algorithm == "bayesian_optimization" and n_trainable(state.get_dict()) >= 2:
            extra["hyperparameters"] = fit_gp(**self._definition(), state=state)
        for cid in population_ids(state.get_dict()):
            uuid = next(r["uuid"] for r in state["extra"]["candidates"] if r["id"] == cid)
            extra[f"parent_{cid}"] = orm.load_node(uuid)
        results, node = suggest_candidates.run_get_node(**self._definition(), state=state, **extra)
        if not node.is_finished_ok:
            if node.exit_status != EXTERNAL_PROPOSER_FAILED:
                raise RuntimeError(f"suggest_candidates<{node.pk}> failed: {node.exit_message}")
            self.report(f"the external proposer failed: {node.exit_message}; the state is kept")
            self.ctx.failure = node.exit_message
            self.ctx.batch = {}
            return None
        self.ctx.state = results["state"].uuid
        self.ctx.batch = {
            key.removeprefix("candidate_"): n.uuid for key, n in results.items() if key.startswith("candidate_")
        }
        self.ctx.batch_start = node.ctime.isoformat()
        report = results["proposals"]["report"]
        if report.get("rejected"):
            self.report(f"{len(report['rejected'])} proposed candidates were rejected: {report['rejected'][:3]}")
        return None

    def has_candidates(self) -> bool:
        return bool(self.ctx.batch)

    def evaluate_candidates(self):
        """Evaluate the batch the configured way (``config.evaluation_method``; the ML-only and hybrid methods of
        the GNN surrogate plug in as ``_evaluate_<method>`` / ``_collect_<method>``)."""
        _, _, config = self._campaign()
        return getattr(self, f"_evaluate_{config.evaluation_method}")()

    def _evaluate_dft(self):
        """Submit the evaluator for every candidate of the batch at once."""
        evaluator = load_evaluator(self.inputs.evaluator.value)
        shared = self._evaluator_inputs()
        running = {}
        for cid, uuid in sorted(self.ctx.batch.items()):
            inputs = merge_inputs(shared, {})
            inputs["structure"] = orm.load_node(uuid)
            if "reference_energies" in self.ctx:
                inputs["reference_energies"] = orm.load_node(self.ctx.reference_energies)
            inputs["metadata"] = {**inputs.get("metadata", {}), "call_link_label": f"evaluate_{cid}"}
            running[f"evaluation_{cid}"] = self.submit(evaluator, **inputs)
        return ToContext(**running)

    def _collect_dft(self) -> tuple[dict[str, orm.Dict], dict[str, str]]:
        """``properties_<id>`` outputs of the finished evaluations, and why the others failed."""
        properties, failures = {}, {}
        for cid in sorted(self.ctx.batch):
            node = self.ctx[f"evaluation_{cid}"]
            if node.is_finished_ok and "properties" in node.outputs:
                properties[f"properties_{cid}"] = node.outputs.properties
            else:
                failures[cid] = f"{node.process_label}<{node.pk}> {node.process_state.value} {node.exit_status}: " + (
                    node.exit_message or ""
                )
                self.report(f"candidate {cid}: evaluation {failures[cid]}; recorded as failed")
        return properties, failures

    def record_results(self):
        """Rank the batch, update the state and check convergence (a calcfunction); expose the iteration."""
        _, _, config = self._campaign()
        properties, failures = getattr(self, f"_collect_{config.evaluation_method}")()
        results, node = record_iteration.run_get_node(
            **self._definition(), state=self._state_node(), failures=orm.Dict(failures), **properties
        )
        self.ctx.state = results["state"].uuid
        self.ctx.timing.append([self.ctx.batch_start, node.ctime.isoformat()])
        summary = results["summary"]
        label = f"iterations.iteration_{summary['iteration']:03d}"
        self.out(f"{label}.summary", summary)
        self.out(f"{label}.state", results["state"])
        for cid, uuid in sorted(self.ctx.batch.items()):
            self.out(f"{label}.candidates.{cid}", orm.load_node(uuid))
        best = summary["best_objective_value"]
        self.report(
            f"iteration {summary['iteration']}: {summary['candidates_evaluated']} evaluated, "
            f"{summary['failed']} failed, best {best}, so far {summary['best_so_far']} ({summary['metric']})"
            + (f"; stopping: {summary['converged']}" if summary["converged"] else "")
        )
        self.ctx.batch = {}

    def finalize(self):
        """Best candidates, statistics (and the Pareto front); the state is an output even when the campaign fails,
        so it can be continued with ``restart_from``."""
        _, objective, _ = self._campaign()
        state = self._state_node()
        results = summarize_campaign(**self._definition(), state=state, timing=orm.List(self.ctx.timing))
        self.out("state", state)
        self.out("best_candidates", results["best_candidates"])
        self.out("statistics", results["statistics"])
        for entry in results["best_candidates"]["candidates"]:
            self.out(f"best_structures.rank_{entry['rank']}", orm.load_node(entry["uuid"]))
        if objective.multi:
            self.out("pareto_front", pareto_front(**self._definition(), state=state))
        statistics = results["statistics"]
        if self.ctx.failure is not None:
            return self.exit_codes.ERROR_PROPOSER_FAILED.format(message=self.ctx.failure)
        if statistics["convergence_reason"] == "no_valid_candidates":
            return self.exit_codes.ERROR_NO_VALID_CANDIDATES
        evaluated = statistics["total_candidates_evaluated"]
        if evaluated and statistics["failed_evaluations"] == evaluated:
            return self.exit_codes.ERROR_ALL_EVALUATIONS_FAILED.format(count=evaluated)
        self.report(f"finished: {statistics['convergence_reason']}, best {statistics['best_objective_value']}")
        return None
