"""How a step of the campaign work chain fails: with one of the work chain's exit codes (410 when a decision
calcfunction did not finish ok, 411 when a step raised), a message naming the step, and the state exposed as an
output so the campaign can be continued with ``restart_from`` — never with an exception."""

from __future__ import annotations

import functools

from aiida import orm


class StepFailed(Exception):
    """A campaign calcfunction did not finish ok."""

    def __init__(self, step: str, node: orm.ProcessNode) -> None:
        super().__init__(f"{node.process_label}<{node.pk}> exit {node.exit_status}: {node.exit_message or ''}")
        self.step = step


def guarded(method):
    """A step that fails with an exit code (and the state as output), never with an exception."""

    @functools.wraps(method)
    def step(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except StepFailed as error:
            self.report(f"{error.step} failed: {error}")
            self._expose_state()
            return self.exit_codes.ERROR_STEP_FAILED.format(step=error.step, message=str(error))
        except Exception as error:  # noqa: BLE001 - any bug or bad data of a step ends the campaign with a code
            self.report(f"{method.__name__} raised {type(error).__name__}: {error}")
            self._expose_state()
            return self.exit_codes.ERROR_STEP_EXCEPTED.format(
                step=method.__name__, message=f"{type(error).__name__}: {error}"
            )

    return step
