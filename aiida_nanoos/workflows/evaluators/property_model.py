"""Property-model evaluators (``nanoos.evaluators``): ``property_model`` (the crystal-graph model's prediction) and
``ml_then_dft`` (the prediction, then DFT when its uncertainty is too large); also registered as the work chains
``nanoos.evaluators.property_model`` and ``nanoos.evaluators.ml_then_dft``.

They evaluate one structure, for use outside the batched campaign path (a campaign with ``evaluation_method:
ml_only`` / ``ml_then_dft`` predicts its whole batch in one node instead). Both are thin: the prediction is the
``predict_with_uncertainty`` calcfunction and the properties Dict is made by ``property_model_properties``, so a value
and its sigma are always traceable to the model node that produced them.
"""

from __future__ import annotations

from aiida import orm
from aiida.engine import ToContext, WorkChain, if_

from aiida_nanoos.data.model import ModelData
from aiida_nanoos.functions.campaign import property_model_properties
from aiida_nanoos.functions.property_model import predict_with_uncertainty
from aiida_nanoos.workflows.common import ResumesWhenPlayed
from aiida_nanoos.workflows.evaluators.dft import BandGapWorkChain, FormationEnergyWorkChain, _DftEvaluator

#: DFT evaluators the ml_then_dft evaluator can fall back on.
DFT_EVALUATORS = {"band_gap": BandGapWorkChain, "formation_energy": FormationEnergyWorkChain}


def _predict(workchain: WorkChain) -> orm.Dict:
    """The model's prediction of the structure (one calcfunction) turned into a properties Dict."""
    settings = workchain.inputs.settings if "settings" in workchain.inputs else orm.Dict({})
    prediction = predict_with_uncertainty(
        model=workchain.inputs.model,
        settings=settings,
        structure=workchain.inputs.structure,
        metadata={"call_link_label": "predict"},
    )
    workchain.ctx.sigma = float(prediction.get_array("uncertainty")[0])
    return property_model_properties(prediction=prediction, metadata={"call_link_label": "ml_properties"})[
        "properties_structure"
    ]


class PropertyModelEvaluatorWorkChain(ResumesWhenPlayed, WorkChain):
    """One structure evaluated by a stored property model: ``properties`` = {target: value, uncertainty, source: ml}."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structure", valid_type=orm.StructureData, help="The candidate to evaluate.")
        spec.input("model", valid_type=ModelData, help="The property model (a nanoos.model).")
        spec.input(
            "settings", valid_type=orm.Dict, required=False, help="Settings of predict_with_uncertainty (method, ...)."
        )
        spec.outline(cls.predict)
        spec.output("properties", valid_type=orm.Dict, help="Predicted property, its uncertainty and source 'ml'.")

    def predict(self):
        self.out("properties", _predict(self))


class MlThenDftEvaluatorWorkChain(ResumesWhenPlayed, WorkChain):
    """The property model's prediction of one structure; DFT (the ``dft_evaluator``, band_gap or formation_energy) when
    its uncertainty exceeds ``uncertainty_threshold``. ``properties`` says which (``source``: ml or dft)."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structure", valid_type=orm.StructureData, help="The candidate to evaluate.")
        spec.input("model", valid_type=ModelData, help="The property model (a nanoos.model).")
        spec.input(
            "settings", valid_type=orm.Dict, required=False, help="Settings of predict_with_uncertainty (method, ...)."
        )
        spec.input(
            "uncertainty_threshold",
            valid_type=orm.Float,
            help="Run DFT when the predicted sigma (recalibrated) is larger than this.",
        )
        spec.input(
            "dft_evaluator",
            valid_type=orm.Str,
            default=lambda: orm.Str("band_gap"),
            validator=lambda value, _: (
                None
                if value is None or value.value in DFT_EVALUATORS
                else f"dft_evaluator: one of {sorted(DFT_EVALUATORS)}, got {value.value!r}"
            ),
            help="The DFT evaluator for uncertain predictions: band_gap or formation_energy.",
        )
        spec.expose_inputs(
            _DftEvaluator,
            namespace="dft",
            exclude=("structure",),
            namespace_options={"help": "Inputs of the DFT evaluator (pseudo family and SCF settings)."},
        )
        spec.input(
            "reference_energies", valid_type=orm.Dict, required=False, help="Elemental references (formation_energy)."
        )
        spec.outline(cls.predict, if_(cls.too_uncertain)(cls.run_dft, cls.inspect_dft), cls.finalize)
        spec.output("properties", valid_type=orm.Dict, help="Properties from ML or DFT, with their source.")
        spec.output("ml_properties", valid_type=orm.Dict, help="The property model's prediction (always made).")
        spec.exit_code(401, "ERROR_DFT_FAILED", message="The DFT evaluation of an uncertain prediction failed.")

    def predict(self):
        self.ctx.ml = _predict(self)
        self.out("ml_properties", self.ctx.ml)

    def too_uncertain(self) -> bool:
        threshold = self.inputs.uncertainty_threshold.value
        uncertain = self.ctx.sigma > threshold
        self.report(
            f"sigma {self.ctx.sigma:.4g} {'>' if uncertain else '<='} threshold {threshold}"
            + ("; running DFT" if uncertain else "; keeping the prediction")
        )
        return uncertain

    def run_dft(self):
        evaluator = DFT_EVALUATORS[self.inputs.dft_evaluator.value]
        inputs = self.exposed_inputs(_DftEvaluator, namespace="dft")
        inputs["structure"] = self.inputs.structure
        if "reference_energies" in self.inputs and evaluator is FormationEnergyWorkChain:
            inputs["reference_energies"] = self.inputs.reference_energies
        inputs["metadata"] = {"call_link_label": "dft"}
        return ToContext(dft=self.submit(evaluator, **inputs))

    def inspect_dft(self):
        if not self.ctx.dft.is_finished_ok:
            return self.exit_codes.ERROR_DFT_FAILED
        self.ctx.properties = self.ctx.dft.outputs.properties
        return None

    def finalize(self):
        self.out("properties", self.ctx.get("properties", self.ctx.ml))
