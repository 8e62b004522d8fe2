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

With a surrogate (``config.surrogate``: algorithm ``active_learning`` and/or evaluation ``ml_only`` / ``hybrid``)
an iteration is::

    [train_model CalcJob ─► predict the last pool again ─► information_gain]   (when retraining is due)
    generate_pool ─► predict_with_uncertainty (pool) ─► select_for_simulation ─► suggest_candidates
    predict_with_uncertainty (batch) ─► surrogate_properties ─► [select_for_dft ─► evaluator × uncertain ones]
    ─► record_iteration (with where each value came from: per-iteration simulated / ML-only, budget, sigma)

The model in use is recorded in the state (``extra.surrogate``), so ``restart_from`` continues with it; the
training CalcJob needs ``surrogate_code``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import ToContext, WorkChain, if_, while_
from aiida.plugins import WorkflowFactory

from aiida_nanoos.design import campaign as cp
from aiida_nanoos.design.proposers.registry import n_trainable, population_ids
from aiida_nanoos.functions.campaign import (
    EXTERNAL_PROPOSER_FAILED,
    fit_gp,
    generate_pool,
    information_gain,
    initialize_campaign,
    pareto_front,
    record_iteration,
    suggest_candidates,
    summarize_campaign,
    surrogate_properties,
)
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
    return validate_surrogate_inputs(inputs, objective, cp.CampaignConfig.from_dict(config))


def validate_surrogate_inputs(inputs: dict, objective: cp.CampaignObjective, config: cp.CampaignConfig) -> str | None:
    """The surrogate's model exists and predicts the objective's property; training has a code."""
    settings = config.surrogate_settings()
    if settings is None:
        if "surrogate_code" in inputs:
            return "surrogate_code: only used by campaigns with a surrogate (config.surrogate.training)"
        return None
    target = cp.surrogate_target(objective, settings)
    if settings.model is not None:
        from aiida_nanoos.data.model import ModelData

        try:
            model = ModelData.find(settings.model, settings.version)
            model.check_target(target)
            if settings.uncertainty_method is not None:
                model.check_method(settings.uncertainty_method)
        except ValueError as error:
            return f"config.surrogate.model: {error}"
    if settings.trains and "surrogate_code" not in inputs:
        return (
            "surrogate_code: required by config.surrogate.training (the code of the nanoos.train_model CalcJob, "
            "e.g. nanoos-train-model@localhost)"
        )
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
            "surrogate_code",
            valid_type=orm.AbstractCode,
            required=False,
            help="Code of the `nanoos.train_model` CalcJob (nanoos-train-model@localhost); required when "
            "config.surrogate.training is set.",
        )
        spec.input(
            "surrogate_options",
            valid_type=orm.Dict,
            required=False,
            help="metadata.options of the surrogate's training CalcJobs (e.g. max_wallclock_seconds).",
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
                if_(cls.should_train_surrogate)(cls.train_surrogate, cls.inspect_surrogate_training),
                cls.propose_candidates,
                if_(cls.has_candidates)(cls.evaluate_candidates, cls.record_results),
            ),
            cls.finalize,
        )
        spec.output_namespace(
            "iterations",
            dynamic=True,
            help="Per iteration: summary (the candidates with their UUIDs; the structures are outputs of "
            "suggest_candidates) and the algorithm state.",
        )
        spec.output("state", valid_type=orm.Dict, help="Final algorithm state and history (input of restart_from).")
        spec.output("best_candidates", valid_type=orm.Dict, help="Top N candidates with their properties.")
        spec.output_namespace("best_structures", valid_type=orm.StructureData, dynamic=True, help="rank_1, ...")
        spec.output("statistics", valid_type=orm.Dict, help="Budget, failures, convergence trend and reason.")
        spec.output("pareto_front", valid_type=orm.Dict, required=False, help="Non-dominated candidates (several)")
        spec.output("reference_energies", valid_type=orm.Dict, required=False, help="Elemental references used.")
        spec.output("surrogate_model", valid_type=orm.Data, required=False, help="The final surrogate model")
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

    # ------------------------------------------------------------------ engine
    def update_outputs(self) -> None:
        """Link the outputs added since the last step, remembering which ones are linked already.

        aiida-core's version loads every output link of the node at every state change to find the new ones. A
        campaign adds outputs every iteration (summary and state), so that query grows with its length: 43 ms per step
        with 107 outputs. Here the labels are read from the database once per process instance (so a
        process reloaded from a checkpoint starts from what is stored) and then kept up to date in memory.
        """
        if self.metadata.store_provenance is False:
            return
        linked = getattr(self, "_linked_output_labels", None)
        if linked is None:
            outgoing = self.node.base.links.get_outgoing(link_type=(LinkType.CREATE, LinkType.RETURN))
            linked = self._linked_output_labels = set(outgoing.all_link_labels())
        for link_label, output in self._flat_outputs().items():
            if link_label in linked:
                continue
            output.base.links.add_incoming(self.node, LinkType.RETURN, link_label)
            output.store()
            linked.add(link_label)

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

    def _model(self):
        return orm.load_node(self.ctx.model) if self.ctx.get("model") else None

    def _predict_settings(self, embeddings: bool = False) -> orm.Dict:
        _, objective, config = self._campaign()
        settings = config.surrogate_settings()
        values = {
            "target": cp.surrogate_target(objective, settings),
            "n_samples": settings.n_samples,
            "seed": config.seed,
            "store_samples": False,
        }
        if settings.uncertainty_method is not None:
            values["method"] = settings.uncertainty_method
        if embeddings:
            values["store_embeddings"] = True
        return orm.Dict(values)

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
        self.ctx.model = None  # UUID of the surrogate (nanoos.model) in use
        self.ctx.reference_prediction = None  # the latest prediction of the pool (or batch) with that model
        self.ctx.iteration_surrogate = {}
        settings = config.surrogate_settings()
        if settings is not None:
            from aiida_nanoos.data.model import ModelData

            previous = (initial["state"]["extra"].get("surrogate") or {}).get("model_uuid")
            if previous:  # a continued campaign goes on with the model it had
                self.ctx.model = previous
            elif settings.model is not None:
                self.ctx.model = ModelData.find(settings.model, settings.version).uuid
            model = self._model()
            self.report(
                f"surrogate: {model.full_name if model else 'none yet'}"
                + (f", training after {settings.min_labels} DFT labels" if settings.trains and model is None else "")
                + (f", retraining every {settings.retrain_every} iterations" if settings.retrain_every else "")
            )
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

    # ------------------------------------------------------------------ surrogate training
    def should_train_surrogate(self) -> bool:
        """(Re)train before this iteration: the first model once enough DFT labels exist, then as configured."""
        _, objective, config = self._campaign()
        if not config.uses_surrogate:
            return False
        state = cp.load_state(self._state_node().get_dict())
        self.ctx.training_reason = cp.training_due(state, objective, config, self.ctx.model is not None)
        return self.ctx.training_reason is not None

    def train_surrogate(self):
        """Submit the ``nanoos.train_model`` CalcJob on every DFT-labelled candidate so far."""
        from aiida.plugins import CalculationFactory

        _, objective, config = self._campaign()
        settings = config.surrogate_settings()
        target = cp.surrogate_target(objective, settings)
        state = cp.load_state(self._state_node().get_dict())
        labels = cp.training_labels(state, target)
        current = self._model()
        name = cp.trained_model_name(settings, target, current.name if current is not None else None)
        n_trainings = int((state.extra.get("surrogate") or {}).get("n_trainings") or 0)
        builder = CalculationFactory("nanoos.train_model").get_builder()
        builder.code = self.inputs.surrogate_code
        builder.structures = {cid: orm.load_node(entry["uuid"]) for cid, entry in sorted(labels.items())}
        builder.targets = orm.Dict({cid: entry["value"] for cid, entry in labels.items()})
        builder.config = orm.Dict(settings.training_config(target, name, seed=config.seed + n_trainings))
        options = self.inputs.surrogate_options.get_dict() if "surrogate_options" in self.inputs else {}
        builder.metadata.options = options
        builder.metadata.call_link_label = f"train_surrogate_{n_trainings + 1:02d}"
        self.ctx.training_labels = len(labels)
        self.report(f"training the surrogate {name} on {len(labels)} DFT labels: {self.ctx.training_reason}")
        return ToContext(surrogate_training=self.submit(builder))

    def inspect_surrogate_training(self):
        """Use the new model from now on, and measure how much it lowered the uncertainty on the last pool."""
        node = self.ctx.surrogate_training
        if not node.is_finished_ok or "model" not in node.outputs:
            self.report(
                f"surrogate training {node.process_label}<{node.pk}> failed ({node.exit_status}: "
                f"{node.exit_message}); going on with the previous model"
            )
            return None
        model = node.outputs.model
        self.ctx.model = model.uuid
        info = {"retrained": True, "training_labels": self.ctx.training_labels, "training_calculation": node.uuid}
        if self.ctx.reference_prediction is not None:
            before = orm.load_node(self.ctx.reference_prediction)
            inputs = {
                link.link_label: link.node
                for link in before.creator.base.links.get_incoming(link_type=LinkType.INPUT_CALC).all()
                if link.link_label != "model"
            }
            inputs["metadata"] = {"call_link_label": "predict_reference_after_training"}
            after = self._predict(model, inputs)
            gain = information_gain(before=before, after=after, metadata={"call_link_label": "information_gain"})
            info["information_gain"] = gain.get_dict()
            self.report(
                f"new surrogate {model.full_name}: mean sigma on the last pool {gain['mean_uncertainty_before']:.4g} "
                f"-> {gain['mean_uncertainty_after']:.4g}"
            )
        self.ctx.iteration_surrogate.update(info)
        return None

    def _predict(self, model, inputs: dict[str, Any]) -> orm.ArrayData:
        from aiida_nanoos.functions.surrogate import predict_with_uncertainty

        return predict_with_uncertainty(model=model, **inputs)

    # ------------------------------------------------------------------ proposals
    def _score_pool(self, state: orm.Dict) -> dict[str, orm.Data]:
        """Active learning: a pool of candidates, the surrogate's prediction on it (one node) and the selection of
        the batch (one node, with a reason per chosen candidate); returns the inputs of the proposal."""
        from aiida_nanoos.functions.surrogate import select_for_simulation

        _, objective, config = self._campaign()
        settings = config.surrogate_settings()
        pool = generate_pool(**self._definition(), state=state, metadata={"call_link_label": "generate_pool"})
        if "structures" not in pool:
            return {"state": pool["state"]}
        prediction = self._predict(
            self._model(),
            {
                "structures": pool["structures"],
                "settings": self._predict_settings(embeddings=settings.strategy == "diverse_uncertainty"),
                "metadata": {"call_link_label": "predict_pool"},
            },
        )
        current = cp.load_state(pool["state"].get_dict())
        selection = select_for_simulation(
            prediction=prediction,
            settings=orm.Dict(cp.selection_settings(current, objective, config, config.batch_size)),
            metadata={"call_link_label": "select_from_pool"},
        )
        self.ctx.reference_prediction = prediction.uuid
        self.ctx.iteration_surrogate.update(
            pool_size=len(pool["pool"]["candidates"]),
            pool_mean_uncertainty=prediction.base.attributes.get("mean_uncertainty"),
        )
        return {"state": pool["state"], "pool": pool["pool"], "selection": selection}

    def propose_candidates(self):
        """Fit the GP (BO) or score a pool with the surrogate (active learning), then propose the batch: candidate
        structures and the new state."""
        _, _, config = self._campaign()
        state = self._state_node()
        extra: dict[str, Any] = {}
        if config.algorithm == "bayesian_optimization" and n_trainable(state.get_dict()) >= 2:
            extra["hyperparameters"] = fit_gp(**self._definition(), state=state)
        model = self._model() if config.uses_surrogate else None
        if model is not None:
            extra["model"] = model
            if config.algorithm == "active_learning":
                scored = self._score_pool(state)
                state = scored.pop("state")
                extra.update(scored)
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

    def _evaluate_dft(self, subset: list[str] | None = None):
        """Submit the evaluator for every candidate of the batch (or of ``subset``) at once."""
        evaluator = load_evaluator(self.inputs.evaluator.value)
        shared = self._evaluator_inputs()
        running = {}
        self.ctx.simulated = sorted(self.ctx.batch) if subset is None else sorted(subset)
        for cid, uuid in sorted(self.ctx.batch.items()):
            if cid not in self.ctx.simulated:
                continue
            inputs = merge_inputs(shared, {})
            inputs["structure"] = orm.load_node(uuid)
            if "reference_energies" in self.ctx:
                inputs["reference_energies"] = orm.load_node(self.ctx.reference_energies)
            inputs["metadata"] = {**inputs.get("metadata", {}), "call_link_label": f"evaluate_{cid}"}
            running[f"evaluation_{cid}"] = self.submit(evaluator, **inputs)
        return ToContext(**running)

    def _evaluate_ml_only(self):
        """The surrogate evaluates the whole batch (one prediction node); DFT only before a model exists."""
        return self._evaluate_surrogate(hybrid=False)

    def _evaluate_hybrid(self):
        """The surrogate predicts the whole batch; the uncertain candidates (or the most uncertain fraction) go to
        the DFT evaluator, the others keep the prediction. Everything to DFT before a model exists."""
        return self._evaluate_surrogate(hybrid=True)

    def _evaluate_surrogate(self, hybrid: bool):
        from aiida_nanoos.functions.surrogate import select_for_simulation

        _, _, config = self._campaign()
        model = self._model()
        self.ctx.ml_properties = {}
        self.ctx.predicted = {}
        if model is None:
            self.report("no surrogate model yet: the batch is evaluated with the evaluator (DFT)")
            return self._evaluate_dft()
        self.ctx.iteration_surrogate.update(model=model.full_name, model_uuid=model.uuid)
        candidates = {cid: orm.load_node(uuid) for cid, uuid in sorted(self.ctx.batch.items())}
        prediction = self._predict(
            model,
            {**candidates, "settings": self._predict_settings(), "metadata": {"call_link_label": "predict_batch"}},
        )
        if config.algorithm != "active_learning":  # the batch is what the next model is measured on
            self.ctx.reference_prediction = prediction.uuid
        properties = surrogate_properties(prediction=prediction, metadata={"call_link_label": "ml_properties"})
        self.ctx.ml_properties = {key.removeprefix("properties_"): node.uuid for key, node in properties.items()}
        labels = prediction.get_array("labels").tolist()
        values, sigmas = prediction.get_array("prediction"), prediction.get_array("uncertainty")
        self.ctx.predicted = {label: [float(values[i]), float(sigmas[i])] for i, label in enumerate(labels)}
        if not hybrid:
            self.ctx.simulated = []
            self.ctx.reasons = {}
            return None
        state = cp.load_state(self._state_node().get_dict())
        choice = select_for_simulation(
            prediction=prediction,
            settings=orm.Dict(cp.hybrid_settings(state, config, len(labels))),
            metadata={"call_link_label": "select_for_dft"},
        )
        self.ctx.reasons = {entry["identifier"]: entry["reason"] for entry in choice["selected"]}
        simulate = list(choice["selected_labels"])
        self.report(f"hybrid: {len(simulate)} of {len(labels)} candidates to DFT, the others keep the ML value")
        return self._evaluate_dft(simulate)

    def _collect_ml_only(self) -> tuple[dict[str, orm.Dict], dict[str, str]]:
        return self._collect_surrogate()

    def _collect_hybrid(self) -> tuple[dict[str, orm.Dict], dict[str, str]]:
        return self._collect_surrogate()

    def _collect_surrogate(self) -> tuple[dict[str, orm.Dict], dict[str, str]]:
        """DFT results of the simulated candidates, the surrogate's properties of the others, and where each
        value came from (for the iteration statistics)."""
        properties, failures = self._collect_dft()
        about = {}
        for cid in sorted(self.ctx.batch):
            predicted = self.ctx.predicted.get(cid)
            entry = {"source": "dft" if cid in self.ctx.simulated else "ml"}
            if predicted is not None:
                entry.update(prediction=predicted[0], uncertainty=predicted[1])
            if cid in self.ctx.get("reasons", {}):
                entry["reason"] = self.ctx.reasons[cid]
            about[cid] = entry
            if entry["source"] == "ml":
                properties[f"properties_{cid}"] = orm.load_node(self.ctx.ml_properties[cid])
        self.ctx.iteration_surrogate["candidates"] = about
        return properties, failures

    def _collect_dft(self) -> tuple[dict[str, orm.Dict], dict[str, str]]:
        """``properties_<id>`` outputs of the finished evaluations, and why the others failed."""
        properties, failures = {}, {}
        for cid in self.ctx.get("simulated", sorted(self.ctx.batch)):
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
        extra = {}
        if config.uses_surrogate:
            info = dict(self.ctx.iteration_surrogate)
            model = self._model()
            if model is not None:
                info.setdefault("model", model.full_name)
                info.setdefault("model_uuid", model.uuid)
            if "candidates" not in info:  # evaluated by DFT only (active learning with dft, or no model yet)
                info["candidates"] = {cid: {"source": "dft"} for cid in self.ctx.batch}
                selected = self._selected_predictions()
                for cid, entry in selected.items():
                    info["candidates"].setdefault(cid, {}).update(entry)
            extra["surrogate"] = orm.Dict(cp.json_safe(info))
        results, node = record_iteration.run_get_node(
            **self._definition(), state=self._state_node(), failures=orm.Dict(failures), **extra, **properties
        )
        self.ctx.state = results["state"].uuid
        self.ctx.timing.append([self.ctx.batch_start, node.ctime.isoformat()])
        summary = results["summary"]
        label = f"iterations.iteration_{summary['iteration']:03d}"
        self.out(f"{label}.summary", summary)
        self.out(f"{label}.state", results["state"])
        best = summary["best_objective_value"]
        self.report(
            f"iteration {summary['iteration']}: {summary['candidates_evaluated']} evaluated, "
            f"{summary['failed']} failed, best {best}, so far {summary['best_so_far']} ({summary['metric']})"
            + (
                f"; {summary['candidates_simulated']} simulated, {summary['candidates_ml_predicted']} ML only, "
                f"model {summary['model']}"
                if config.uses_surrogate
                else ""
            )
            + (f"; stopping: {summary['converged']}" if summary["converged"] else "")
        )
        self.ctx.batch = {}
        self.ctx.simulated = []
        self.ctx.iteration_surrogate = {}

    def _selected_predictions(self) -> dict[str, dict[str, Any]]:
        """Prediction, sigma and reason of each batch candidate chosen from the pool (active learning)."""
        out = {}
        for uuid in self.ctx.batch.values():
            candidate = orm.load_node(uuid).base.attributes.get("candidate", {})
            creator = orm.load_node(uuid).creator
            if "selection" not in creator.inputs:
                continue
            by_reason = {e["reason"]: e for e in creator.inputs.selection["selected"]}
            entry = by_reason.get(candidate.get("rationale"))
            if entry is not None:
                out[candidate["id"]] = {
                    "prediction": entry["predicted_value"],
                    "uncertainty": entry["uncertainty"],
                    "reason": entry["reason"],
                }
        return out

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
        if self.ctx.get("model"):
            self.out("surrogate_model", self._model())
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
