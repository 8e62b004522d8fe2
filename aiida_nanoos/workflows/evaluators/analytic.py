"""``nanoos.evaluators.analytic``: properties of group-IV alloys from an analytic model, in milliseconds.

Not DFT: it lets a campaign be tried, tested and timed without pw.x (see :mod:`aiida_nanoos.design.analytic_model`
for the model and its limits). It is a real process with a real calcfunction, so a campaign using it exercises the
whole engine: submission, checkpoints, provenance, failures (an element the model does not know).
"""

from __future__ import annotations

from aiida import orm
from aiida.common.links import LinkType
from aiida.engine import WorkChain

from aiida_nanoos.design.analytic_model import unsupported_elements
from aiida_nanoos.functions.model_properties import analytic_alloy_properties
from aiida_nanoos.workflows.common import ResumesWhenPlayed, launched_child


class AnalyticAlloyEvaluatorWorkChain(ResumesWhenPlayed, WorkChain):
    """Evaluate one candidate structure with the analytic group-IV alloy model."""

    #: Properties in the ``properties`` output (checked against the campaign objective before it runs).
    PROPERTIES = ("bandgap", "formation_energy", "stability_score", "volume_per_atom", "volumetric_strain", "density")

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("structure", valid_type=orm.StructureData, help="The candidate to evaluate.")
        spec.outline(cls.evaluate)
        spec.output("properties", valid_type=orm.Dict, help="Campaign properties of the candidate.")
        spec.exit_code(410, "ERROR_UNSUPPORTED_ELEMENT", message="The analytic model has no parameters for {elements}.")

    def evaluate(self):
        """One step (one checkpoint): refuse elements the model does not know, else compute the properties."""
        bad = unsupported_elements(sorted(self.inputs.structure.get_symbols_set()))
        if bad:
            return self.exit_codes.ERROR_UNSUPPORTED_ELEMENT.format(elements=bad)
        # the step replayed after a daemon worker died reuses a finished calculation instead of a second one
        done = launched_child(self.node, "analytic_properties", LinkType.CALL_CALC)
        if done is not None and done.is_finished_ok:
            self.out("properties", done.outputs.result)
            return None
        link = {"call_link_label": "analytic_properties"}
        self.out("properties", analytic_alloy_properties(self.inputs.structure, metadata=link))
        return None
