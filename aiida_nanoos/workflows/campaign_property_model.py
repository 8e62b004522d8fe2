"""The property model's steps of the campaign work chain (mixed into :class:`~.campaign.CampaignWorkChain`).

Each step runs what a calcfunction decided: the training due (``training_plan`` / ``training_targets`` /
``training_config``, outputs of ``initialize_campaign`` or ``record_iteration``), the pool selection's settings (an
output of ``generate_pool``), which candidates of an ``ml_then_dft`` batch go to DFT (``select_for_simulation``
with the ``dft_selection_settings`` of ``suggest_candidates``), the prediction settings (``initialize_campaign``).
"""

from __future__ import annotations

from typing import Any

from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import ToContext

from aiida_nanoos.design import campaign as cp
from aiida_nanoos.functions.campaign import generate_pool, information_gain, property_model_properties
from aiida_nanoos.workflows.campaign_errors import guarded


def _predict(model, inputs: dict[str, Any]) -> orm.ArrayData:
    from aiida_nanoos.functions.property_model import predict_with_uncertainty

    return predict_with_uncertainty(model=model, **inputs)


class PropertyModelSteps:
    """Training, pool scoring and the ML / DFT split of a campaign with a property model."""

    # ------------------------------------------------------------------ training
    def should_train_property_model(self) -> bool:
        """A training is due when the last decision node (``initialize_campaign`` or ``record_iteration``) said so."""
        return bool(self.ctx.get("training"))

    @guarded
    def train_property_model(self):
        """Submit ``nanoos.model.train.base`` (the training CalcJob with restarts after running out of walltime or
        memory) on the labels and with the settings the decision chose."""
        from aiida_nanoos.workflows.training_base import ModelTrainingBaseWorkChain

        nodes = {key: orm.load_node(uuid) for key, uuid in self.ctx.training.items()}
        plan = nodes["training_plan"]
        builder = ModelTrainingBaseWorkChain.get_builder()
        builder.train.code = self.inputs.model_training_code
        builder.train.structures = {cid: orm.load_node(uuid) for cid, uuid in plan["structures"].items()}
        builder.train.targets = nodes["training_targets"]
        builder.train.config = nodes["training_config"]
        builder.train.metadata.options = (
            self.inputs.model_training_options.get_dict() if "model_training_options" in self.inputs else {}
        )
        builder.metadata.call_link_label = f"train_property_model_{plan['index']:02d}"
        self.ctx.training_labels = len(plan["structures"])
        self.ctx.training = None
        self.report(
            f"training the property model {nodes['training_config']['name']} on {len(plan['structures'])} DFT "
            f"labels: {plan['reason']}"
        )
        return ToContext(property_model_training=self.submit(builder))

    @guarded
    def inspect_property_model_training(self):
        """Use the new model from now on, and measure how much it lowered the uncertainty on the last pool."""
        node = self.ctx.property_model_training
        if not node.is_finished_ok or "model" not in node.outputs:
            self.report(
                f"property model training {node.process_label}<{node.pk}> failed ({node.exit_status}: "
                f"{node.exit_message}); going on with the previous model"
            )
            return None
        model = node.outputs.model
        self.ctx.model = model.uuid
        # the CalcJob that made the model (the last run of the restart work chain), as before the restarts existed
        info = {
            "retrained": True,
            "training_labels": self.ctx.training_labels,
            "training_calculation": model.creator.uuid,
        }
        if self.ctx.reference_prediction is not None:
            before = orm.load_node(self.ctx.reference_prediction)
            inputs = {
                link.link_label: link.node
                for link in before.creator.base.links.get_incoming(link_type=LinkType.INPUT_CALC).all()
                if link.link_label != "model"
            }
            inputs["metadata"] = {"call_link_label": "predict_reference_after_training"}
            after = _predict(model, inputs)
            gain = information_gain(before=before, after=after, metadata={"call_link_label": "information_gain"})
            info["information_gain"] = gain.get_dict()
            self.report(
                f"new property model {model.full_name}: mean sigma on the last pool "
                f"{gain['mean_uncertainty_before']:.4g} -> {gain['mean_uncertainty_after']:.4g}"
            )
        self.ctx.iteration_property_model.update(info)
        return None

    # ------------------------------------------------------------------ active learning
    def _score_pool(self, state: orm.Dict) -> dict[str, orm.Data]:
        """Active learning: a pool of candidates, the model's prediction on it (one node) and the selection of the
        batch (one node, with a reason per chosen candidate, settings from ``generate_pool``)."""
        from aiida_nanoos.functions.property_model import select_for_simulation

        pool = self._decide(generate_pool, "generate_pool", **self._definition(), state=state)
        if "structures" not in pool:
            return {"state": pool["state"]}
        settings = self._settings_node("pool_prediction_settings") or self._settings_node("prediction_settings")
        prediction = _predict(
            self._model(),
            {"structures": pool["structures"], "settings": settings, "metadata": {"call_link_label": "predict_pool"}},
        )
        selection = select_for_simulation(
            prediction=prediction,
            settings=pool["selection_settings"],
            metadata={"call_link_label": "select_from_pool"},
        )
        self.ctx.reference_prediction = prediction.uuid
        self.ctx.iteration_property_model.update(
            pool_size=len(pool["pool"]["candidates"]),
            pool_mean_uncertainty=prediction.base.attributes.get("mean_uncertainty"),
        )
        return {"state": pool["state"], "pool": pool["pool"], "selection": selection}

    # ------------------------------------------------------------------ evaluation
    def _evaluate_ml_only(self):
        """The property model evaluates the whole batch (one prediction node); DFT only before a model exists."""
        return self._evaluate_with_model(then_dft=False)

    def _evaluate_ml_then_dft(self):
        """The model predicts the whole batch; the candidates ``select_for_simulation`` picks (settings from
        ``suggest_candidates``) go to the DFT evaluator, the others keep the prediction."""
        return self._evaluate_with_model(then_dft=True)

    def _evaluate_with_model(self, then_dft: bool):
        from aiida_nanoos.functions.property_model import select_for_simulation

        model = self._model()
        self.ctx.ml_properties = {}
        self.ctx.predicted = {}
        if model is None:
            self.report("no property model yet: the batch is evaluated with the evaluator (DFT)")
            return self._evaluate_dft()
        self.ctx.iteration_property_model.update(model=model.full_name, model_uuid=model.uuid, model_name=model.name)
        candidates = {cid: orm.load_node(uuid) for cid, uuid in sorted(self.ctx.batch.items())}
        prediction = _predict(
            model,
            {
                **candidates,
                "settings": self._settings_node("prediction_settings"),
                "metadata": {"call_link_label": "predict_batch"},
            },
        )
        if self._campaign()[2].algorithm != "active_learning":  # the batch is what the next model is measured on
            self.ctx.reference_prediction = prediction.uuid
        properties = property_model_properties(prediction=prediction, metadata={"call_link_label": "ml_properties"})
        self.ctx.ml_properties = {key.removeprefix("properties_"): node.uuid for key, node in properties.items()}
        labels = prediction.get_array("labels").tolist()
        values, sigmas = prediction.get_array("prediction"), prediction.get_array("uncertainty")
        self.ctx.predicted = {label: [float(values[i]), float(sigmas[i])] for i, label in enumerate(labels)}
        if not then_dft:
            self.ctx.simulated = []
            self.ctx.reasons = {}
            return None
        choice = select_for_simulation(
            prediction=prediction,
            settings=orm.load_node(self.ctx.dft_selection_settings),
            metadata={"call_link_label": "select_for_dft"},
        )
        self.ctx.reasons = {entry["identifier"]: entry["reason"] for entry in choice["selected"]}
        simulate = list(choice["selected_labels"])
        self.report(f"ml_then_dft: {len(simulate)} of {len(labels)} candidates to DFT, the others keep the ML value")
        return self._evaluate_dft(simulate)

    def _collect_ml_only(self) -> tuple[dict[str, orm.Dict], dict[str, str]]:
        return self._collect_with_model()

    def _collect_ml_then_dft(self) -> tuple[dict[str, orm.Dict], dict[str, str]]:
        return self._collect_with_model()

    def _collect_with_model(self) -> tuple[dict[str, orm.Dict], dict[str, str]]:
        """DFT results of the simulated candidates, the model's properties of the others, and where each value came
        from (for the iteration statistics)."""
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
        self.ctx.iteration_property_model["candidates"] = about
        return properties, failures

    def _property_model_info(self) -> orm.Dict:
        """What the property model did this iteration (the ``property_model`` input of ``record_iteration``)."""
        info = dict(self.ctx.iteration_property_model)
        model = self._model()
        if model is not None:
            info.setdefault("model", model.full_name)
            info.setdefault("model_uuid", model.uuid)
            info.setdefault("model_name", model.name)
        if "candidates" not in info:  # evaluated by DFT only (active learning with dft, or no model yet)
            info["candidates"] = {cid: {"source": "dft"} for cid in self.ctx.batch}
            for cid, entry in self._selected_predictions().items():
                info["candidates"].setdefault(cid, {}).update(entry)
        return orm.Dict(cp.json_safe(info))

    def _selected_predictions(self) -> dict[str, dict[str, Any]]:
        """Prediction, sigma and reason of each batch candidate chosen from the pool (active learning)."""
        out = {}
        for uuid in self.ctx.batch.values():
            node = orm.load_node(uuid)
            candidate = node.base.attributes.get("candidate", {})
            if "selection" not in node.creator.inputs:
                continue
            by_reason = {e["reason"]: e for e in node.creator.inputs.selection["selected"]}
            entry = by_reason.get(candidate.get("rationale"))
            if entry is not None:
                out[candidate["id"]] = {
                    "prediction": entry["predicted_value"],
                    "uncertainty": entry["uncertainty"],
                    "reason": entry["reason"],
                }
        return out
