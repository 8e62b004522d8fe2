"""What the plugin's work chains share: the pseudo family and PwBase inputs of every work chain that runs pw.x on
varying structures, and the engine's fault tolerance (replayed steps, ``verdi process pause|play``)."""

from __future__ import annotations

from collections.abc import Iterable

from aiida import orm
from aiida.common import AttributeDict
from aiida.common.exceptions import NotExistent
from aiida.common.links import LinkType
from aiida.engine import Awaitable, ProcessState, ToContext, append_
from aiida.plugins import GroupFactory
from aiida_quantumespresso.common.types import ElectronicType, SpinType
from aiida_quantumespresso.workflows.protocols.utils import recursive_merge
from aiida_quantumespresso.workflows.pw.base import PwBaseWorkChain as QePwBaseWorkChain


def fraction_validator(*, low_inclusive: bool = True, high_inclusive: bool = True):
    """Port validator for a fraction in [0, 1]; an excluded end is open (a validation split of 0 or 1 is no split)."""

    def validate(value: orm.Float | None, port) -> str | None:
        if value is None:
            return None
        low_ok = value.value >= 0.0 if low_inclusive else value.value > 0.0
        high_ok = value.value <= 1.0 if high_inclusive else value.value < 1.0
        if low_ok and high_ok:
            return None
        interval = f"{'[' if low_inclusive else '('}0, 1{']' if high_inclusive else ')'}"
        return f"{port.name} must lie in {interval}, got {value.value}"

    return validate


def as_code(code: orm.AbstractCode | str) -> orm.AbstractCode:
    """A code given as a node or by its label (``lmp@localhost``), as the protocol builders accept both."""
    return orm.load_code(code) if isinstance(code, str) else code


def load_pseudo_family(label: str):
    """The installed pseudopotential family called ``label``; ``ValueError`` saying how to install it otherwise."""
    try:
        family = orm.load_group(label=label)
    except NotExistent:
        family = None
    if not isinstance(family, GroupFactory("pseudo.family")):
        raise ValueError(f"pseudo family `{label}` is not installed (run `aiida-nanoos setup`)")
    return family


def elements_of(structures: Iterable[orm.StructureData]) -> list[str]:
    return sorted({symbol for structure in structures for kind in structure.kinds for symbol in kind.symbols})


def check_pseudopotentials(family_label: str, elements: Iterable[str]) -> str | None:
    """Error message when the family is missing or lacks one of ``elements``, else ``None``."""
    try:
        family = load_pseudo_family(family_label)
    except ValueError as error:
        return str(error)
    missing = sorted(set(elements) - set(family.elements))
    if missing:
        return f"no pseudopotential for element(s) {', '.join(missing)} in family `{family_label}`"
    return None


def pw_base_builder(
    code: orm.AbstractCode | str,
    template: orm.StructureData,
    elements: Iterable[str],
    family_label: str,
    protocol: str,
    overrides: dict | None = None,
    electronic_type: ElectronicType = ElectronicType.METAL,
    spin_type: SpinType = SpinType.NONE,
    options: dict | None = None,
):
    """PwBaseWorkChain inputs for structures made of ``elements``, without structure and pseudos.

    The cutoffs are the family's recommendation for all ``elements`` together, so every structure run with these
    inputs is computed at the same cutoffs and their energies can be compared.
    """
    elements = sorted(set(elements))
    error = check_pseudopotentials(family_label, elements)
    if error:
        raise ValueError(error)
    family = load_pseudo_family(family_label)
    ecutwfc, ecutrho = family.get_recommended_cutoffs(elements=tuple(elements), unit="Ry")
    base_overrides = recursive_merge(
        {"pseudo_family": family_label, "pw": {"parameters": {"SYSTEM": {"ecutwfc": ecutwfc, "ecutrho": ecutrho}}}},
        overrides or {},
    )
    builder = PwBaseWorkChain.get_builder_from_protocol(
        code,
        template,
        protocol=protocol,
        overrides=base_overrides,
        electronic_type=electronic_type,
        spin_type=spin_type,
        options=options,
    )
    builder.pw.pop("structure", None)
    builder.pw.pop("pseudos", None)
    return builder


def pw_inputs_for(exposed: dict, structure: orm.StructureData, family_label: str, link_label: str) -> AttributeDict:
    """Exposed PwBaseWorkChain inputs completed with a structure and its pseudopotentials."""
    inputs = AttributeDict(exposed)
    inputs.pw = AttributeDict(inputs.pw)
    inputs.pw.structure = structure
    inputs.pw.pseudos = load_pseudo_family(family_label).get_pseudos(structure=structure)
    inputs.metadata = AttributeDict(inputs.get("metadata", {}))
    inputs.metadata.call_link_label = link_label
    return inputs


#: aiida-core's persister, when a process it is asked to continue never saved a checkpoint.
NO_CHECKPOINT = "does not have a saved checkpoint"


def never_started(child: orm.ProcessNode) -> bool:
    """Whether ``child`` was stored by a daemon worker that died inside ``submit``, before the process's checkpoint was
    saved: it is ``created`` (or has no state yet) with no checkpoint, or the daemon excepted it for that reason when
    ``verdi process repair`` sent it a task. Such a process can never run."""
    if child.process_state is None:
        return True
    if child.process_state is ProcessState.CREATED and child.checkpoint is None:
        return True
    return child.is_excepted and NO_CHECKPOINT in (child.exception or "")


def close_never_started(child: orm.ProcessNode, parent: orm.ProcessNode) -> None:
    """Mark an orphan :func:`never_started` child excepted and seal it, as aiida-core's process launcher does with a
    process it cannot continue, so ``verdi process list`` does not show it ``created`` for ever."""
    if child.is_sealed:
        return
    child.set_exception(
        f"never started: the daemon worker that submitted it died before saving its checkpoint; "
        f"{parent.process_label}<{parent.pk}> launched it again"
    )
    child.set_process_state(ProcessState.EXCEPTED)
    child.seal()


def launched_child(parent: orm.ProcessNode, link_label: str, link_type: LinkType = LinkType.CALL_WORK):
    """The child process ``parent`` already launched under ``link_label``, or None.

    A daemon worker killed after a step launched its children but before the step's checkpoint makes the step run
    again; the step must then wait for what it launched instead of running the same DFT twice. A child that never
    started (:func:`never_started`: the worker died inside ``submit``) does not count and is closed; the step launches
    it again.
    """
    launched = None
    for link in parent.base.links.get_outgoing(link_type=link_type, link_label_filter=link_label).all():
        if never_started(link.node):
            close_never_started(link.node, parent)
        elif launched is None or link.node.pk > launched.pk:
            launched = link.node
    return launched


def allow_lost_remote_folder(spec) -> None:
    """Make the exposed ``remote_folder`` output optional: aiida-core (2.9) marks a CalcJob's upload done before the
    engine links its ``remote_folder``, so a daemon worker killed in between leaves a job that runs, parses and
    finishes ok without one (``benchmark reliability``, seed 7: PwCalculation<607>). Nothing in the plugin reads
    it; requiring it lost that evaluation. Call after ``expose_outputs``."""
    if "remote_folder" in spec.outputs:
        spec.outputs["remote_folder"].required = False


def awaits_a_child(context) -> bool:
    """Whether a work chain's context still holds a child it waits for (aiida-core puts an :class:`Awaitable` where the
    child's node will go and replaces it when the child has terminated)."""
    if isinstance(context, Awaitable):
        return True
    if isinstance(context, dict):
        return any(awaits_a_child(value) for value in context.values())
    if isinstance(context, list | tuple):
        return any(awaits_a_child(value) for value in context)
    return False


class ResumesWhenPlayed:
    """For every work chain of the plugin: ``verdi process play`` goes on with a work chain whose children all
    terminated while it was being paused.

    plumpy 0.26 pauses a waiting process by failing the future it waits on. When the callback of its last child runs
    after that but before the process has handled the pause, aiida-core's ``resume()`` finds the future done and is
    lost: played again, the work chain waited for ever with every child finished (a campaign in CI, and 1 in ~20
    pause/play cycles of a campaign on the daemon here). When played, a work chain that waits for no child any more is
    resumed again; when the engine's own resume was not lost this does nothing.
    """

    def on_playing(self) -> None:
        super().on_playing()
        if self.state == ProcessState.WAITING and not awaits_a_child(self.ctx):
            self.resume()


class ReplaySafeRestart:
    """For restart work chains (``BaseRestartWorkChain``): never submit the same iteration twice, never fail for outputs
    attached before a kill or lost by one (:func:`allow_lost_remote_folder`).

    A daemon worker killed after ``run_process`` submitted its CalcJob but before the step's checkpoint makes the step
    run again after the restart; it then waits for the iteration already launched (the same ``iteration_NN`` call
    link) instead of running the same job a second time (found by ``aiida-nanoos benchmark reliability``).

    A worker killed inside ``results`` leaves the outputs it attached in the database but not in the checkpoint. The
    replayed ``results`` of aiida-core skips an output whose link exists, so the work chain finished with exit status
    11 (required output missing) and its evaluation was lost although pw.x had succeeded (``benchmark reliability``,
    seed 101: PwBaseWorkChain with four outputs attached, ``results`` reported twice). The outputs already attached are
    registered again here; the database keeps its one link each.
    """

    def run_process(self):
        launched = launched_child(self.node, f"iteration_{self.ctx.iteration + 1:02d}", LinkType.CALL_CALC)
        if launched is None:
            return super().run_process()
        self.ctx.iteration += 1
        self.report(f"{launched.process_label}<{launched.pk}> iteration #{self.ctx.iteration} was already launched")
        return ToContext(children=append_(launched))

    def results(self):
        last = self.ctx.children[self.ctx.iteration - 1]
        if last.is_finished_ok and "remote_folder" not in last.outputs:
            self.report(
                f"{last.process_label}<{last.pk}> finished ok without remote_folder (its daemon worker died between "
                f"upload and submission); its working directory: {last.get_remote_workdir()}"
            )
        exit_code = super().results()
        attached = {
            link.link_label: link.node for link in self.node.base.links.get_outgoing(link_type=LinkType.RETURN).all()
        }
        for name in self.spec().outputs:
            if name in attached and name not in self.outputs:
                self.out(name, attached[name])  # aiida-core links only outputs not linked yet
        return exit_code


class PwBaseWorkChain(ResumesWhenPlayed, ReplaySafeRestart, QePwBaseWorkChain):
    """aiida-quantumespresso's ``PwBaseWorkChain`` (same inputs, outputs, protocols, handlers and process label)
    that never submits one pw.x iteration twice when its daemon worker dies (:class:`ReplaySafeRestart`). Every work
    chain of the plugin that runs pw.x runs this one. Its ``remote_folder`` is optional
    (:func:`allow_lost_remote_folder`)."""

    @classmethod
    def define(cls, spec):
        super().define(spec)
        allow_lost_remote_folder(spec)
