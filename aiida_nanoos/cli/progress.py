"""Live progress of a campaign or a potential pipeline, read from its node (never from the running process object).

A foreground run polls its node from a callback on the runner's own event loop (the same thread: no second
database session); ``campaign watch`` polls a submitted campaign from the command. On a terminal one line is redrawn;
otherwise (a pipe, a log file, the tests) a line is printed each time the progress moves on (a new iteration, a new
stage). ``-v info`` or ``-v debug`` also shows the processes' reports, which are hidden otherwise (they still go to
the database: ``verdi process report PK``).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import click

from .params import verbosity

#: Seconds between two looks at a running process's node in the foreground. One look at a campaign (the query of
#: its iteration summaries) took 30-130 ms on this 2-core machine at load 15, so a look a second costs the run at
#: most a few per cent.
POLL_SECONDS = 1.0


@dataclass
class Step:
    """What a progress line says: ``text`` is shown, ``key`` changes when the progress moves on (one printed line per
    key when the output is not a terminal)."""

    text: str
    key: Any


def clock(seconds: float | None) -> str:
    """``0:01:05`` (h:mm:ss); ``?`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _elapsed(node) -> float:
    end = node.mtime if node.is_terminated else datetime.now(timezone.utc)
    return max((end - node.ctime).total_seconds(), 0.0)


def number(value: Any) -> str:
    """A value as the progress line prints it: six significant digits (what ``campaign stats --json`` has, rounded)."""
    return "-" if value is None else f"{value:.6g}" if isinstance(value, float) else str(value)


# ---------------------------------------------------------------------------------------------------- campaigns
def iterations_left(done: int, max_iterations: int, summary: dict, budget: int | None) -> int:
    """Iterations until ``max_iterations`` or, at the evaluations per iteration so far, until the budget is spent,
    whichever comes first (``campaign stats`` gives the full estimate, CPU hours included)."""
    left = max(max_iterations - done, 0)
    used = summary.get("budget_used") or 0
    if budget and done and used:
        left = min(left, math.ceil(max(budget - used, 0) / (used / done)))
    return left


class CampaignProgress:
    """``iteration 2/5  best bandgap 1.234  budget used 6 of 15  elapsed 0:00:40  left ~0:01:00`` of a campaign."""

    def __init__(self, node):
        self.node = node
        self._limits: tuple[int, int | None] | None = None

    def limits(self) -> tuple[int, int | None] | None:
        """``(max_iterations, budget)`` from the campaign's validated definition (None before it is stored)."""
        if self._limits is None:
            from aiida_nanoos.design import campaign as cp

            init = next(
                (c for c in self.node.called if c.process_label == "initialize_campaign" and c.is_finished_ok), None
            )
            if init is None:
                return None
            definition = init.outputs.definition.get_dict()
            _, _, config = cp.validate_campaign(
                definition["search_space"], definition["objective"], definition["config"], definition.get("constraints")
            )
            self._limits = (config.max_iterations, config.budget)
        return self._limits

    def __call__(self) -> list[Step]:
        """One step per recorded iteration (its elapsed time when it was recorded), the last one live."""
        from aiida_nanoos.query import iteration_outputs

        limits = self.limits()
        now = _elapsed(self.node)
        if limits is None:
            return [Step(f"setting up  elapsed {clock(now)}", 0)]
        max_iterations, budget = limits
        summaries = iteration_outputs(self.node, "summary")
        if not summaries:
            return [Step(f"iteration 0/{max_iterations}  first batch running  elapsed {clock(now)}", 0)]
        steps = []
        for count, node in enumerate(summaries, start=1):
            summary = node.get_dict()
            done = summary["iteration"]
            elapsed = now if count == len(summaries) else (node.ctime - self.node.ctime).total_seconds()
            # the estimate uses the pace of this run (a restarted campaign's earlier iterations took no time here)
            remaining = 0 if summary.get("converged") else iterations_left(done, max_iterations, summary, budget)
            left = elapsed / count * remaining
            used = f"budget used {summary['budget_used']}" + (f" of {budget}" if budget else "")
            text = (
                f"iteration {done}/{max_iterations}  best {summary['metric']} {number(summary['best_so_far'])}  "
                f"{used}  elapsed {clock(elapsed)}  left ~{clock(left)}"
            )
            if summary.get("converged"):
                text += f"  converged: {summary['converged']}"
            steps.append(Step(text, done))
        return steps


# ---------------------------------------------------------------------------------------------------- pipelines
PIPELINE_STAGES = ("label", "split", "train", "validate", "md")
STAGE_NAMES = {
    "label": "DFT labelling",
    "split": "splitting train/held-out",
    "train": "training the potential",
    "validate": "validating on held-out DFT",
    "md": "MD with the potential",
}


def _called(node) -> dict[str, Any]:
    """Children by call-link label, for a work chain's stage."""
    from aiida.common.links import LinkType

    links = node.base.links.get_outgoing(link_type=(LinkType.CALL_CALC, LinkType.CALL_WORK)).all()
    return {link.link_label: link.node for link in links}


def _stage_of(link_label: str, child) -> str | None:
    if link_label in ("label", "train", "md"):
        return link_label
    name = child.process_label or ""
    if "split" in name:
        return "split"
    if "validate" in name:
        return "validate"
    return None


def label_counts(label_node) -> tuple[int, int | None]:
    """(DFT runs finished, configurations to label) of a ``nanoos.dft.label`` work chain."""
    children = list(label_node.called)
    done = sum(1 for c in children if c.process_label == "PwBaseWorkChain" and c.is_terminated)
    sampled = next((c for c in children if c.process_label == "sample_structures"), None)
    if sampled is not None:
        total = len(sampled.base.links.get_outgoing().all())
    elif "sampling" in label_node.inputs:
        total = None  # not sampled yet
    elif "configurations" in label_node.inputs:
        total = len(label_node.inputs.configurations)
    else:
        total = 1 if "structure" in label_node.inputs else None
    return done, total


class PipelineProgress:
    """``stage 1/5 DFT labelling: 3/10 done  elapsed 0:01:10`` of a ``nanoos.potential.pipeline`` work chain."""

    def __init__(self, node):
        self.node = node

    def __call__(self) -> list[Step]:
        return [self.current()]

    def current(self) -> Step:
        elapsed = _elapsed(self.node)
        stages = {}
        for link_label, child in _called(self.node).items():
            stage = _stage_of(link_label, child)
            if stage:
                stages[stage] = child
        if not stages:
            return Step(f"setting up  elapsed {clock(elapsed)}", ("setup",))
        current = max(stages, key=PIPELINE_STAGES.index)
        child = stages[current]
        index = PIPELINE_STAGES.index(current) + 1
        detail = "" if not child.is_terminated else " (done)"
        key: tuple = (current, child.is_terminated)
        if current == "label":
            done, total = label_counts(child)
            detail = f": {done}/{total if total is not None else '?'} done"
            key = (current, done)
        elif current == "md" and "md" in child.inputs and "structure" in child.inputs.md:
            detail = f": {len(child.inputs.md.structure.sites)} atoms" + detail
        return Step(
            f"stage {index}/{len(PIPELINE_STAGES)} {STAGE_NAMES[current]}{detail}  elapsed {clock(elapsed)}", key
        )


class LabelProgress:
    """``DFT labelling: 3/10 done  elapsed 0:00:40  left ~0:01:30`` of a ``nanoos.dft.label`` work chain."""

    def __init__(self, node):
        self.node = node

    def __call__(self) -> list[Step]:
        return [self.current()]

    def current(self) -> Step:
        elapsed = _elapsed(self.node)
        done, total = label_counts(self.node)
        left = elapsed / done * (total - done) if done and total else None
        return Step(
            f"DFT labelling: {done}/{total if total is not None else '?'} done  elapsed {clock(elapsed)}  "
            f"left ~{clock(left)}",
            done,
        )


# ---------------------------------------------------------------------------------------------------- display
class ProgressLine:
    """On a terminal the latest step, redrawn on one line; elsewhere each step once, on a line of its own (a
    campaign's iterations are all printed even when two were recorded between two looks)."""

    def __init__(self, tty: bool | None = None):
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.printed: list[Any] = []
        self.width = 0

    def show(self, steps: list[Step]) -> None:
        if self.tty:
            text = steps[-1].text
            click.echo("\r" + text + " " * max(self.width - len(text), 0), nl=False)
            self.width = len(text)
            return
        for step in steps:
            if step.key not in self.printed:
                click.echo(step.text)
                self.printed.append(step.key)

    def close(self, steps: list[Step] | None = None) -> None:
        """The last state of the progress, kept on screen (a line of its own after the redrawn one)."""
        if steps:
            self.show(steps)
        if self.tty and self.width:
            click.echo("")
        self.width = 0


class _Below(logging.Filter):
    """Lets through only records at or above ``level``."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


@contextmanager
def console_only_from(level: int, logger: str = "aiida") -> Iterator[None]:
    """Show on the terminal only ``logger``'s records at ``level`` or above; the database log handler is untouched,
    so ``verdi process report`` still has every report."""
    from aiida.orm.utils.log import DBLogHandler

    hidden = _Below(level)
    handlers = [h for h in logging.getLogger(logger).handlers if not isinstance(h, DBLogHandler)]
    for handler in handlers:
        handler.addFilter(hidden)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(hidden)


@contextmanager
def reports_hidden() -> Iterator[None]:
    """Hide process reports on the terminal unless ``-v info``/``-v debug`` was given (the progress replaces them)."""
    if verbosity() in ("INFO", "DEBUG", "NOTSET", "REPORT"):
        yield
        return
    with console_only_from(logging.WARNING):
        yield


@contextmanager
def messages_of(logger: str) -> Iterator[list[logging.LogRecord]]:
    """Collect what ``logger`` reports (instead of printing it), for the command to print it its own way."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    collector = Collect()
    with console_only_from(logging.CRITICAL + 1, logger):
        logging.getLogger(logger).addHandler(collector)
        try:
            yield records
        finally:
            logging.getLogger(logger).removeHandler(collector)


#: How often a process run in the foreground checks whether the sub-processes it waits for have finished.
FOREGROUND_POLL_SECONDS = 0.1


def keep_reports_in_database() -> None:
    """Make sure the processes run here write their reports to the database (``verdi process report``).

    aiida-core adds its database log handler when the profile's storage is loaded, and the ``--verbosity`` callback
    of every verdi-style command reconfigures the logging without it. Where the storage was loaded before that
    callback (a second command in the same Python process, as in a notebook or a test), the reports would be lost.
    """
    from aiida.common.log import configure_logging
    from aiida.manage import get_manager
    from aiida.orm.utils.log import DBLogHandler

    manager = get_manager()
    manager.get_profile_storage()  # loading it configures the handler the first time
    if any(isinstance(handler, DBLogHandler) for handler in logging.getLogger("aiida").handlers):
        return
    log_file = manager.get_config().filepaths(manager.get_profile())["profile"]["log"]
    configure_logging(with_orm=True, daemon_log_file=log_file)


def foreground_runner():
    """A runner for a process run here (see :func:`run_in_foreground` for its poll interval), whose reports reach
    the database (:func:`keep_reports_in_database`)."""
    from aiida.manage import get_manager

    keep_reports_in_database()
    # Not closed afterwards: closing a runner closes the event loop it shares with the next run (as aiida's own
    # ``run`` does, the runner is left to the garbage collector).
    return get_manager().create_runner(communicator=None, poll_interval=FOREGROUND_POLL_SECONDS)


def run_in_foreground(builder):
    """Run a process here until it is done; returns the process node.

    ``aiida.engine.run`` makes a runner without a broker connection, so a WorkChain learns that its sub-processes
    finished only by polling, at the profile's ``runner.poll.interval`` (an integer, 1 s here). Every WorkChain
    level then waits up to a second after its children are done: about 0.5 s per campaign iteration. One status
    query costs 0.7 ms, so polling ten times a second costs under 1 % of a core per waiting process.
    """
    _, node = foreground_runner().run_get_node(builder)
    return node


def run_with_progress(builder, describe: Callable[[Any], Callable[[], list[Step]]]):
    """Run ``builder`` here until it terminates, showing ``describe(node)()`` every :data:`POLL_SECONDS`; returns
    the process node. The polling is a callback on the runner's event loop, between the process's own steps."""
    runner = foreground_runner()
    process = runner.instantiate_process(builder)
    node = process.node
    progress = describe(node)
    line = ProgressLine()

    def tick() -> None:
        if node.is_terminated:
            return
        try:
            line.show(progress())
        except Exception as error:  # noqa: BLE001 (a half-written iteration: try again at the next tick)
            logging.getLogger(__name__).debug("progress not readable yet: %s", error)
        runner.loop.call_later(POLL_SECONDS, tick)

    runner.loop.call_soon(tick)
    with reports_hidden():
        runner.run_get_node(process)
    line.close(progress())
    return node


def watch(node, describe: Callable[[Any], Callable[[], list[Step]]], interval: float) -> None:
    """Show the progress of a process that runs elsewhere (the daemon) until it terminates."""
    progress = describe(node)
    line = ProgressLine()
    while True:
        end_read_transaction()
        if node.is_terminated:
            break
        line.show(progress())
        time.sleep(interval)
    line.close(progress())


def end_read_transaction() -> None:
    """See what the daemon committed since the last look: SQLite keeps a reading transaction on its snapshot (as
    ``aiida.engine.processes.control`` does after its requests)."""
    from aiida.manage import get_manager

    storage = get_manager().get_profile_storage()
    if hasattr(storage, "get_session"):
        storage.get_session().commit()
