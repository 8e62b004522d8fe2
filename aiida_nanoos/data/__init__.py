"""AiiDA data types of aiida-nanoos (entry points ``nanoos.*``)."""

from .training_set import TrainingSetData

__all__ = ["TrainingSetData"]
