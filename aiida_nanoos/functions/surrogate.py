"""Former module path of :mod:`aiida_nanoos.functions.property_model`, kept while the campaign workflows
(``workflows/campaign.py``, ``workflows/evaluators/surrogate.py``) import from it. New code imports from
:mod:`~aiida_nanoos.functions.property_model`; the entry points ``nanoos.predict_with_uncertainty`` and
``nanoos.select_for_simulation`` point there.
"""

from aiida_nanoos.functions.property_model import predict_with_uncertainty, select_for_simulation

__all__ = ["predict_with_uncertainty", "select_for_simulation"]
