"""The old name of :class:`~aiida_nanoos.calculations.model_training.ModelTrainingCalculation` (entry point
``nanoos.train_model``), kept only while ``workflows/campaign_property_model.py`` and ``cli/model.py`` still use it.

Remove this module and the ``nanoos.train_model`` entry point once they use ``nanoos.model.train``.
"""

from __future__ import annotations

from aiida_nanoos.calculations.model_training import ModelTrainingCalculation


class TrainModelCalculation(ModelTrainingCalculation):
    """Deprecated name of :class:`ModelTrainingCalculation` (same inputs, outputs, parser ``nanoos.model.train``)."""


__all__ = ["TrainModelCalculation"]
