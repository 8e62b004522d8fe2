"""``verdi process play`` goes on with a work chain whose last child terminated while the pause was arriving.

The race (plumpy 0.26): a pause fails the future a waiting work chain waits on; when the callback of its last child
runs before the work chain has handled that pause, aiida-core's ``resume()`` is dropped and the played work chain
waited for ever (``test_pause_play_and_kill_through_verdi`` timed out in CI). The fault is injected by letting the
pause land just before the engine's resume, on the real engine in this process.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil

import pytest
from aiida import orm
from aiida.engine import ToContext, WorkChain, calcfunction
from aiida.manage import get_manager

import aiida_nanoos.workflows as workflows
from aiida_nanoos.workflows.common import ResumesWhenPlayed, awaits_a_child


@calcfunction
def add_one(x: orm.Int) -> orm.Int:
    return orm.Int(x.value + 1)


class AddOneWorkChain(WorkChain):
    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("x", valid_type=orm.Int)
        spec.output("y", valid_type=orm.Int)
        spec.outline(cls.add)

    def add(self):
        self.out("y", add_one(self.inputs.x))


class WaitsForOneChild(ResumesWhenPlayed, WorkChain):
    """Submits one child, waits for it, and returns its output."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        spec.input("x", valid_type=orm.Int)
        spec.output("y", valid_type=orm.Int)
        spec.outline(cls.launch, cls.collect)

    def launch(self):
        return ToContext(child=self.submit(AddOneWorkChain, x=self.inputs.x))

    def collect(self):
        self.out("y", self.ctx.child.outputs.y)


def pause_lands_just_before_the_engine_resumes(process) -> list[str]:
    """Fault injection: the first ``resume()`` of the engine (the child has terminated) comes right after a pause, as
    when ``verdi process pause`` and the child's callback are handled in the same turn of the event loop; once the
    process is paused, it is played. Returns what happened, in order."""
    events: list[str] = []
    engine_resume = process.resume

    def play_once_paused():
        if process.paused:
            events.append("played")
            process.play()
        else:
            process.loop.call_later(0.05, play_once_paused)

    def resume(*args):
        process.resume = engine_resume  # one fault only
        events.append("pause")
        process.pause()
        events.append("engine resume")
        engine_resume(*args)
        process.loop.call_soon(play_once_paused)

    process.resume = resume
    return events


def test_a_work_chain_played_after_a_pause_that_raced_its_last_child_finishes(aiida_profile):
    runner = get_manager().get_runner()
    process = WaitsForOneChild(inputs={"x": orm.Int(41)}, runner=runner)
    events = pause_lands_just_before_the_engine_resumes(process)
    runner.loop.run_until_complete(asyncio.wait_for(process.step_until_terminated(), timeout=60))
    assert events == ["pause", "engine resume", "played"]
    assert process.node.is_finished_ok
    assert process.node.outputs.y.value == 42


def test_awaits_a_child_sees_the_placeholders_aiida_core_puts_in_the_context():
    from aiida.engine import Awaitable

    waiting = Awaitable(pk=1)
    assert awaits_a_child({"children": [orm.Int(1), waiting]})
    assert awaits_a_child({"nested": {"child": waiting}})
    assert not awaits_a_child({"children": [orm.Int(1)], "iteration": 2})


def workflow_modules() -> list[str]:
    return [info.name for info in pkgutil.walk_packages(workflows.__path__, prefix="aiida_nanoos.workflows.")]


@pytest.mark.parametrize(
    "work_chain",
    [
        member
        for module in map(importlib.import_module, workflow_modules())
        for _, member in inspect.getmembers(module, inspect.isclass)
        if issubclass(member, WorkChain) and member.__module__.startswith("aiida_nanoos.")
    ],
    ids=lambda work_chain: work_chain.__name__,
)
def test_every_work_chain_of_the_plugin_resumes_when_played(work_chain):
    assert issubclass(work_chain, ResumesWhenPlayed)
