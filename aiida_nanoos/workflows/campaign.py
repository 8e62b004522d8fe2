"""``nanoos.campaign``: a design campaign as one WorkChain — propose, evaluate, rank, update, repeat.

Per iteration::

    fit_gp (BO) ─► suggest_candidates ─► evaluator × batch (submitted together) ─► record_iteration
                    │ candidate StructureData                                    │ state, summary
                    └ new state                                                  └ convergence check

Every decision is a calcfunction (:mod:`aiida_nanoos.functions.campaign`), so the provenance graph holds every GP
fit, proposal, ranking, training decision and ML / DFT split; the work chain only orchestrates. The algorithm state
is a ``nanoos.campaign_state`` node (a typed :class:`~aiida_nanoos.design.state.CampaignState` as one JSON file)
whose UUID lives in the context, so a campaign survives a daemon restart and can be paused, played and killed with
``verdi process pause|play|kill``.
A failed evaluation is recorded as failed and the campaign goes on; a failing campaign step ends the work chain with
one of its exit codes (the state is still an output, for ``restart_from``).

Only the final ``state`` is an output; each iteration's ``summary`` (and state) are outputs of its
``record_iteration`` calcfunction, called ``record_iteration_<k>`` from the campaign (found through the links, see
``aiida-nanoos campaign show``).

The evaluator is any WorkChain registered in the ``nanoos.evaluators`` entry point group that takes a ``structure``
and returns ``properties``. It is named by ``evaluator`` and its inputs (the same for every candidate) go in the
dynamic namespace ``evaluator_inputs`` (nodes) plus ``evaluator_metadata`` (the non-stored part, e.g.
``scf.pw.metadata.options``); both are checked against the evaluator's own spec before the campaign starts.
:meth:`CampaignWorkChain.get_builder_from_evaluator` fills them from an evaluator builder.

With a property model (``config.property_model``: algorithm ``active_learning`` and/or evaluation ``ml_only`` /
``ml_then_dft``) an iteration is::

    [model.train CalcJob ─► predict the last pool again ─► information_gain]   (when record_iteration said so)
    generate_pool ─► predict_with_uncertainty (pool) ─► select_for_simulation ─► suggest_candidates
    predict_with_uncertainty (batch) ─► property_model_properties ─► [select_for_dft ─► evaluator × the chosen]
    ─► record_iteration (with where each value came from: per-iteration simulated / ML-only, budget, sigma)

The model in use is recorded in the state, so ``restart_from`` continues with it; training needs
``model_training_code``.

``config.warm_start`` (earlier campaigns by PK/UUID, or every finished one with the same objective property) is
resolved and checked before anything runs (:mod:`.campaign_warm_start`); the earlier campaigns' ``state`` and
``definition`` nodes are inputs of ``initialize_campaign``. Every evaluation's wall and CPU seconds are read from its
calculation nodes (:mod:`.evaluators.cost`) and passed to ``record_iteration`` as ``costs``: they feed
``config.cost_aware`` and ``config.budget_cpu_hours``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_, while_
from aiida.plugins import WorkflowFactory

from aiida_nanoos.data.campaign_state import CampaignStateData
from aiida_nanoos.design import campaign as cp
from aiida_nanoos.design.proposers.registry import n_trainable, population_ids
from aiida_nanoos.functions.campaign import (
    EXTERNAL_PROPOSER_FAILED,
    fit_gp,
    initialize_campaign,
    pareto_front,
    record_iteration,
    suggest_candidates,
    summarize_campaign,
)
from aiida_nanoos.workflows.campaign_errors import StepFailed, guarded
from aiida_nanoos.workflows.campaign_inputs import (
    evaluator_builder,
    merge_inputs,
    plain,
    split_inputs,
    validate_config,
    validate_constraints,
    validate_evaluator,
    validate_inputs,
    validate_objective,
    validate_restart,
    validate_search_space,
)
from aiida_nanoos.workflows.campaign_property_model import PropertyModelSteps
from aiida_nanoos.workflows.campaign_warm_start import find_warm_start, task_fingerprint, warm_start_inputs
from aiida_nanoos.workflows.common import ResumesWhenPlayed, launched_child
from aiida_nanoos.workflows.evaluators import load_evaluator
from aiida_nanoos.workflows.evaluators.cost import evaluation_cost
from aiida_nanoos.workflows.failure_reasons import evaluation_failure

__all__ = ["CampaignWorkChain", "evaluator_builder", "merge_inputs", "split_inputs"]

#: Outputs of a decision calcfunction that say a property-model training is due.
TRAINING_OUTPUTS = ("training_plan", "training_targets", "training_config")


def _python(node: orm.Data) -> Any:
    return node.get_dict() if isinstance(node, orm.Dict) else node.value


class CampaignWorkChain(ResumesWhenPlayed, PropertyModelSteps, WorkChain):
    """Search a space of candidate materials for the best value of an objective, evaluating each with DFT (or any
    registered evaluator), by random search, a genetic algorithm, Bayesian optimisation, active learning with a
    property model or an external proposer."""

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
            "model_training_code",
            valid_type=orm.AbstractCode,
            required=False,
            help="Code of the `nanoos.model.train` CalcJob (nanoos-train-model@localhost); required when "
            "config.property_model.training is set.",
        )
        spec.input(
            "model_training_options",
            valid_type=orm.Dict,
            required=False,
            help="metadata.options of the property model's training CalcJobs (e.g. max_wallclock_seconds).",
        )
        spec.input(
            "restart_from",
            valid_type=(CampaignStateData, orm.Dict),
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
                if_(cls.should_train_property_model)(cls.train_property_model, cls.inspect_property_model_training),
                cls.propose_candidates,
                if_(cls.has_candidates)(cls.evaluate_candidates, cls.record_results),
            ),
            cls.finalize,
        )
        spec.output(
            "state", valid_type=CampaignStateData, help="Final algorithm state and history (input of restart_from)."
        )
        spec.output("best_candidates", valid_type=orm.Dict, help="Top N candidates with their properties.")
        spec.output_namespace("best_structures", valid_type=orm.StructureData, dynamic=True, help="rank_1, ...")
        spec.output("statistics", valid_type=orm.Dict, help="Budget, failures, convergence trend and reason.")
        spec.output("pareto_front", valid_type=orm.Dict, required=False, help="Non-dominated candidates (several)")
        spec.output("reference_energies", valid_type=orm.Dict, required=False, help="Elemental references used.")
        spec.output("property_model", valid_type=orm.Data, required=False, help="The final property model")
        spec.exit_code(401, "ERROR_REFERENCES_FAILED", message="The elemental reference calculations failed.")
        spec.exit_code(402, "ERROR_PROPOSER_FAILED", message="The external proposer failed: {message}")
        spec.exit_code(
            403, "ERROR_NO_VALID_CANDIDATES", message="The external proposer returned no candidate valid in the space."
        )
        spec.exit_code(404, "ERROR_ALL_EVALUATIONS_FAILED", message="All {count} evaluations failed.")
        spec.exit_code(410, "ERROR_STEP_FAILED", message="The campaign step {step} failed: {message}")
        spec.exit_code(411, "ERROR_STEP_EXCEPTED", message="The campaign step {step} raised: {message}")

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
    def _decide(self, function, label: str, **inputs) -> Any:
        """Run a decision calcfunction (its outputs, or its one output node); :class:`StepFailed` when it does not
        finish ok."""
        results, node = function.run_get_node(**inputs, metadata={"call_link_label": label})
        if not node.is_finished_ok:
            raise StepFailed(label, node)
        return results

    def _expose_state(self) -> None:
        """The current state as the ``state`` output (once), so a failed campaign can be continued."""
        if self.ctx.get("state") and not self.ctx.get("state_exposed"):
            self.ctx.state_exposed = True
            self.out("state", self._state_node())

    def _definition(self) -> dict[str, orm.Data]:
        """The decision calcfunctions' common input: the campaign definition node."""
        return {"definition": orm.load_node(self.ctx.definition)}

    def _campaign(self):
        """(space, objective, config), validated once per process instance."""
        cached = getattr(self, "_validated_campaign", None)
        if cached is None:
            constraints = self.inputs.constraints.get_dict() if "constraints" in self.inputs else None
            cached = self._validated_campaign = cp.validate_campaign(
                self.inputs.search_space.get_dict(),
                _python(self.inputs.objective),
                self.inputs.config.get_dict(),
                constraints,
            )
        return cached

    def _state_node(self) -> CampaignStateData:
        return orm.load_node(self.ctx.state)

    def _load_state(self) -> cp.CampaignState:
        """The current state, parsed once per state node (a fresh copy each call: callers may modify it)."""
        cached = getattr(self, "_parsed_state", None)
        if cached is None or cached[0] != self.ctx.state:
            cached = self._parsed_state = (self.ctx.state, self._state_node().get_dict())
        return cp.load_state(cached[1])

    def _model(self):
        return orm.load_node(self.ctx.model) if self.ctx.get("model") else None

    def _settings_node(self, key: str) -> orm.Dict | None:
        uuid = self.ctx.settings.get(key)
        return orm.load_node(uuid) if uuid else None

    def _remember_training(self, results: Mapping[str, orm.Data]) -> None:
        """The training a decision node said is due (or none)."""
        due = all(key in results for key in TRAINING_OUTPUTS)
        self.ctx.training = {key: results[key].uuid for key in TRAINING_OUTPUTS} if due else None

    def _evaluator_inputs(self) -> dict[str, Any]:
        metadata = self.inputs.evaluator_metadata.get_dict() if "evaluator_metadata" in self.inputs else {}
        return merge_inputs(plain(self.inputs.get("evaluator_inputs", {})), metadata)

    # ------------------------------------------------------------------ outline
    @guarded
    def setup(self):
        """Start a new history (or continue ``restart_from``)."""
        _, objective, config = self._campaign()
        self.ctx.timing = []
        self.ctx.batch = {}
        self.ctx.failure = None
        self.ctx.iteration_property_model = {}
        self.ctx.reference_prediction = None  # the latest prediction of the pool (or batch) with the model in use
        inputs = {
            key: self.inputs[key]
            for key in ("search_space", "objective", "config", "constraints", "restart_from")
            if key in self.inputs
        }
        inputs["task"] = orm.Dict(
            task_fingerprint(self.inputs.evaluator.value, plain(self.inputs.get("evaluator_inputs", {})))
        )
        warm_start = config.warm_start_settings()
        if warm_start is not None:
            space, _, _ = self._campaign()
            earlier = find_warm_start(warm_start, space, objective, self.inputs.search_space.get_dict())
            inputs.update(warm_start_inputs(earlier))
            self.report(f"warm start from campaigns {[c.pk for c in earlier]}" if earlier else "warm start: none found")
        initial = self._decide(initialize_campaign, "initialize_campaign", **inputs)
        self.ctx.definition = initial["definition"].uuid
        self.ctx.state = initial["state"].uuid
        self.ctx.settings = {
            key: initial[key].uuid for key in ("prediction_settings", "pool_prediction_settings") if key in initial
        }
        self._remember_training(initial)
        state = self._load_state()
        self.ctx.model = state.property_model.model_uuid if state.property_model else None
        settings = config.property_model_settings()
        if settings is not None:
            self.report(
                f"property model: {state.property_model.model or 'none yet'}"
                + (
                    f", training after {settings.min_labels} DFT labels"
                    if settings.trains and not self.ctx.model
                    else ""
                )
                + (f", retraining every {settings.retrain_every} iterations" if settings.retrain_every else "")
            )
        if "restart_from" in self.inputs:
            self.report(f"continuing a campaign after its iteration {state.iteration}")
        kind = f"{len(objective.objectives)} objectives" if objective.multi else objective.primary.name
        self.report(
            f"campaign: {config.algorithm}, batch {config.batch_size}, {kind}, evaluator "
            f"{self.inputs.evaluator.value}, at most {config.max_iterations} iterations"
            + (f" / {config.budget} evaluations" if config.budget else "")
        )
        return None

    def needs_references(self) -> bool:
        """Formation-energy evaluators get elemental references computed once, up front, for every element."""
        evaluator = load_evaluator(self.inputs.evaluator.value)
        if "reference_energies" not in evaluator.spec().inputs:
            return False
        return "reference_energies" not in self.inputs.get("evaluator_inputs", {})

    @guarded
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
        return self.ctx.failure is None and self._load_state().converged is None

    # ------------------------------------------------------------------ proposals
    @guarded
    def propose_candidates(self):
        """Fit the GP (BO) or score a pool with the property model (active learning), then propose the batch:
        candidate structures and the new state."""
        _, _, config = self._campaign()
        state_node = self._state_node()
        state = self._load_state()
        extra: dict[str, Any] = {}
        if config.algorithm == "bayesian_optimization" and n_trainable(state) >= 2:
            extra["hyperparameters"] = self._decide(fit_gp, "fit_gp", **self._definition(), state=state_node)
        model = self._model() if config.uses_property_model else None
        if model is not None:
            extra["model"] = model
            if config.algorithm == "active_learning":
                scored = self._score_pool(state_node)
                state_node = scored.pop("state")
                extra.update(scored)
        uuids = {r.id: r.uuid for r in state.candidates}
        for cid in population_ids(state):
            extra[f"parent_{cid}"] = orm.load_node(uuids[cid])
        results, node = suggest_candidates.run_get_node(
            **self._definition(), state=state_node, **extra, metadata={"call_link_label": "suggest_candidates"}
        )
        if not node.is_finished_ok:
            if node.exit_status != EXTERNAL_PROPOSER_FAILED:
                raise StepFailed("suggest_candidates", node)
            self.report(f"the external proposer failed: {node.exit_message}; the state is kept")
            self.ctx.failure = node.exit_message
            self.ctx.batch = {}
            return None
        self.ctx.state = results["state"].uuid
        self.ctx.batch = {
            key.removeprefix("candidate_"): n.uuid for key, n in results.items() if key.startswith("candidate_")
        }
        self.ctx.dft_selection_settings = (
            results["dft_selection_settings"].uuid if "dft_selection_settings" in results else None
        )
        self.ctx.batch_start = node.ctime.isoformat()
        report = results["proposals"]["report"]
        if report.get("rejected"):
            self.report(f"{len(report['rejected'])} proposed candidates were rejected: {report['rejected'][:3]}")
        self.ctx.refused = sorted(report.get("refused", {}))
        for cid, reason in sorted(report.get("refused", {}).items()):
            self.report(f"candidate {cid} refused before evaluation: {reason}; recorded as failed")
        return None

    def has_candidates(self) -> bool:
        return bool(self.ctx.batch)

    @guarded
    def evaluate_candidates(self):
        """Evaluate the batch the configured way (``config.evaluation_method``: ``_evaluate_<method>`` and
        ``_collect_<method>``; the property model's in :class:`PropertyModelSteps`)."""
        _, _, config = self._campaign()
        return getattr(self, f"_evaluate_{config.evaluation_method}")()

    def _evaluate_dft(self, subset: list[str] | None = None):
        """Submit the evaluator for every candidate of the batch (or of ``subset``) at once."""
        evaluator = load_evaluator(self.inputs.evaluator.value)
        shared = self._evaluator_inputs()
        running = {}
        refused = set(self.ctx.get("refused", []))  # overlapping atoms etc.: recorded failed, never submitted
        self.ctx.simulated = sorted(set(self.ctx.batch if subset is None else subset) - refused)
        for cid, uuid in sorted(self.ctx.batch.items()):
            if cid not in self.ctx.simulated:
                continue
            launched = launched_child(self.node, f"evaluate_{cid}")  # this step replayed after a worker died
            if launched is not None:
                self.report(f"candidate {cid}: evaluation {launched.pk} already launched")
                running[f"evaluation_{cid}"] = launched
                continue
            inputs = merge_inputs(shared, {})
            inputs["structure"] = orm.load_node(uuid)
            if "reference_energies" in self.ctx:
                inputs["reference_energies"] = orm.load_node(self.ctx.reference_energies)
            inputs["metadata"] = {**inputs.get("metadata", {}), "call_link_label": f"evaluate_{cid}"}
            running[f"evaluation_{cid}"] = self.submit(evaluator, **inputs)
        return ToContext(**running)

    def _collect_dft(self) -> tuple[dict[str, orm.Dict], dict[str, str]]:
        """``properties_<id>`` outputs of the finished evaluations, and why the others failed. The evaluations leave
        the context (they stay linked as ``evaluate_<id>``): kept there, every checkpoint would serialise all the
        evaluations of the campaign so far, and the cost per iteration would grow with its length."""
        properties, failures = {}, {}
        for cid in self.ctx.get("simulated", sorted(self.ctx.batch)):
            node = self.ctx.pop(f"evaluation_{cid}")
            self.ctx.costs[cid] = evaluation_cost(node)
            if node.is_finished_ok and "properties" in node.outputs:
                properties[f"properties_{cid}"] = node.outputs.properties
            else:
                failures[cid] = evaluation_failure(node)
                self.report(f"candidate {cid}: evaluation {failures[cid]}; recorded as failed")
        return properties, failures

    @guarded
    def record_results(self):
        """Rank the batch, update the state, check convergence and decide on training (a calcfunction)."""
        _, _, config = self._campaign()
        self.ctx.costs = {}
        properties, failures = getattr(self, f"_collect_{config.evaluation_method}")()
        extra = {"property_model": self._property_model_info()} if config.uses_property_model else {}
        k = len(self.ctx.timing) + 1
        results, node = record_iteration.run_get_node(
            **self._definition(),
            state=self._state_node(),
            failures=orm.Dict(failures),
            costs=orm.Dict(self.ctx.costs),
            **extra,
            **properties,
            metadata={"call_link_label": f"record_iteration_{k:03d}"},
        )
        if not node.is_finished_ok:
            raise StepFailed(f"record_iteration_{k:03d}", node)
        self.ctx.state = results["state"].uuid
        self._remember_training(results)
        self.ctx.timing.append([self.ctx.batch_start, node.ctime.isoformat()])
        summary = results["summary"]
        best = summary["best_objective_value"]
        self.report(
            f"iteration {summary['iteration']}: {summary['candidates_evaluated']} evaluated, "
            f"{summary['failed']} failed, best {best}, so far {summary['best_so_far']} ({summary['metric']})"
            + (
                f"; {summary['candidates_simulated']} simulated, {summary['candidates_ml_predicted']} ML only, "
                f"model {summary['model']}"
                if config.uses_property_model
                else ""
            )
            + (f"; {summary['cpu_hours_used']:.3g} CPU hours used" if config.budget_cpu_hours else "")
            + (f"; stopping: {summary['converged']}" if summary["converged"] else "")
        )
        self.ctx.batch = {}
        self.ctx.simulated = []
        self.ctx.refused = []
        self.ctx.iteration_property_model = {}

    @guarded
    def finalize(self):
        """Best candidates, statistics (and the Pareto front); the state is an output even when the campaign fails,
        so it can be continued with ``restart_from``."""
        _, objective, _ = self._campaign()
        state = self._state_node()
        results = self._decide(
            summarize_campaign,
            "summarize_campaign",
            **self._definition(),
            state=state,
            timing=orm.List(self.ctx.timing),
        )
        self._expose_state()
        self.out("best_candidates", results["best_candidates"])
        self.out("statistics", results["statistics"])
        for entry in results["best_candidates"]["candidates"]:
            self.out(f"best_structures.rank_{entry['rank']}", orm.load_node(entry["uuid"]))
        if objective.multi:
            self.out("pareto_front", self._decide(pareto_front, "pareto_front", **self._definition(), state=state))
        if self.ctx.get("model"):
            self.out("property_model", self._model())
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
