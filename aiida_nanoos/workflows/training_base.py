"""``nanoos.potential.train.base`` and ``nanoos.model.train.base``: the training CalcJobs in aiida-core's restart loop.

As aiida-quantumespresso's ``PwBaseWorkChain`` does for pw.x, each runs its CalcJob again after a failure it knows:

- out of walltime (scheduler exit 120): again with ``max_wallclock_seconds`` x ``walltime_factor``; a model training
  whose config sets a ``time_budget`` gets a shorter budget instead (the trainer stops itself when it is spent);
- out of memory (scheduler exit 110, or 350 when the script caught the MemoryError itself): again with half the
  batch (MACE's ``mace.batch_size``, the network's ``batch_size``). A SNAP fit has no batch to shrink: the work
  chain says so and stops with 310.

Every change is reported, and at most ``max_iterations`` runs are made (then 401, as every restart work chain).
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import CalcJob, ProcessHandlerReport, process_handler, while_

from aiida_nanoos.calculations.model_training import ModelTrainingCalculation
from aiida_nanoos.calculations.potential_training import PotentialTrainingCalculation
from aiida_nanoos.models import training as model_training
from aiida_nanoos.potentials import training_config
from aiida_nanoos.workflows.common import allow_lost_remote_folder
from aiida_nanoos.workflows.md_base import JobRestartWorkChain

#: Factor on the model's ``time_budget`` after a run out of walltime.
TIME_BUDGET_REDUCTION = 0.5


def validate_walltime_factor(value: orm.Float | None, _) -> str | None:
    if value is not None and not value.value > 1.0:
        return f"walltime_factor must be larger than 1, got {value.value}"
    return None


class TrainingBaseWorkChain(JobRestartWorkChain):
    """What both training restart work chains share: the exposed CalcJob inputs (namespace ``train``) and handlers.

    A subclass sets ``_process_class`` and says how to shrink the batch (:meth:`smaller_batch`) and, if it can, how
    to shorten the work instead of asking for more walltime (:meth:`shorter_work`).
    """

    _process_class: type[CalcJob]

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.expose_inputs(cls._process_class, namespace="train")
        spec.input(
            "walltime_factor",
            valid_type=orm.Float,
            default=lambda: orm.Float(2.0),
            validator=validate_walltime_factor,
            help="Factor on max_wallclock_seconds of a run that ran out of walltime.",
        )
        spec.outline(
            cls.setup,
            while_(cls.should_run_process)(cls.run_process, cls.inspect_process),
            cls.results,
        )
        spec.expose_outputs(cls._process_class)
        allow_lost_remote_folder(spec)
        spec.exit_code(
            310,
            "ERROR_NO_SMALLER_BATCH",
            message="the training ran out of memory and cannot use less: {reason}.",
        )

    def setup(self) -> None:
        """The inputs of the first run as given: the first run's ``config`` is the very node the caller passed (in a
        campaign, the ``record_iteration`` decision); a handler replaces it by an edited plain dict."""
        super().setup()
        self.ctx.inputs = AttributeDict(self.exposed_inputs(self._process_class, namespace="train"))

    def _config(self) -> dict:
        """The config of the next run as a plain dict for a handler to edit."""
        config = self.ctx.inputs.config
        return config.get_dict() if isinstance(config, orm.Dict) else dict(config)

    def smaller_batch(self, config: dict) -> tuple[dict | None, str]:
        """The config with a smaller batch and what changed, or ``(None, why not)``."""
        raise NotImplementedError

    def shorter_work(self, config: dict) -> tuple[dict | None, str]:
        """The config asking for less time and what changed, or ``(None, why not)``: then the walltime is raised."""
        return None, "no time budget to shorten"

    @process_handler(priority=500, exit_codes=[CalcJob.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME])
    def handle_out_of_walltime(self, node: orm.CalcJobNode) -> ProcessHandlerReport:
        """Ask for less work if the config allows it, else for more walltime."""
        config, change = self.shorter_work(self._config())
        if config is not None:
            self.ctx.inputs.config = config
            self.report_handled(node, change)
            return ProcessHandlerReport(do_break=True)
        self.report_handled(node, self.raise_walltime(node, self.inputs.walltime_factor.value))
        return ProcessHandlerReport(do_break=True)

    @process_handler(
        priority=510,
        exit_codes=[
            CalcJob.exit_codes.ERROR_SCHEDULER_OUT_OF_MEMORY,
            PotentialTrainingCalculation.exit_codes.ERROR_OUT_OF_MEMORY,
            ModelTrainingCalculation.exit_codes.ERROR_OUT_OF_MEMORY,
        ],
    )
    def handle_out_of_memory(self, node: orm.CalcJobNode) -> ProcessHandlerReport:
        """Halve the batch; where there is none (or it is 1 already), say so and stop."""
        config, change = self.smaller_batch(self._config())
        if config is None:
            self.report_handled(node, f"cannot use less memory: {change}; stopping")
            return ProcessHandlerReport(
                do_break=True, exit_code=self.exit_codes.ERROR_NO_SMALLER_BATCH.format(reason=change)
            )
        self.ctx.inputs.config = config
        self.report_handled(node, change)
        return ProcessHandlerReport(do_break=True)


class PotentialTrainingBaseWorkChain(TrainingBaseWorkChain):
    """``nanoos.potential.train`` with restarts: more walltime; a smaller MACE batch when memory runs out."""

    _process_class = PotentialTrainingCalculation

    def smaller_batch(self, config: dict) -> tuple[dict | None, str]:
        return training_config.with_smaller_batch(config)


class ModelTrainingBaseWorkChain(TrainingBaseWorkChain):
    """``nanoos.model.train`` with restarts: a shorter time budget (or more walltime); a smaller batch."""

    _process_class = ModelTrainingCalculation

    def smaller_batch(self, config: dict) -> tuple[dict | None, str]:
        return model_training.with_smaller_batch(config)

    def shorter_work(self, config: dict) -> tuple[dict | None, str]:
        return model_training.with_shorter_time_budget(config, TIME_BUDGET_REDUCTION)
