"""ML potentials in the provenance graph: the DFT calculations that trained one, the potentials a DFT calculation
helped train, the MD runs that used one, and its parity data (DFT vs potential) for the parity plot.

Read-only; the ``QueryBuilder`` each function runs is in its docstring.
"""

from __future__ import annotations

from typing import Any

from aiida import orm

from aiida_nanoos.data.potential import PotentialData
from aiida_nanoos.data.training_set import TrainingSetData

#: ``process_type`` of the CalcJobs that fit a potential and that run LAMMPS MD with one.
TRAIN_PROCESS_TYPE = "aiida.calculations:nanoos.potential.train"
MD_PROCESS_TYPE = "aiida.calculations:nanoos.md"
#: ``process_label`` of the calcfunctions that validate a potential (and store a copy) and run ASE MD with one.
VALIDATE_LABEL = "validate_potential"
ASE_MD_LABEL = "run_ase_md"


def load_potential(identifier: int | str | orm.Node) -> PotentialData:
    """The potential with this PK or UUID (``ValueError`` for another kind of node)."""
    node = identifier if isinstance(identifier, orm.Node) else orm.load_node(identifier)
    if not isinstance(node, PotentialData):
        raise ValueError(f"node {node.pk} is a {type(node).__name__}, not a potential (nanoos.potential)")
    return node


def fit_of(potential: PotentialData) -> orm.CalcJobNode | None:
    """The ``nanoos.potential.train`` CalcJob that made this potential or the one it is a validated copy of (None
    for a potential stored by hand).

    QueryBuilder (the latest fit among the potential's ancestors: a validated copy descends from its fit too)::

        qb = QueryBuilder()
        qb.append(PotentialData, filters={"id": potential.pk}, tag="potential")
        qb.append(CalcJobNode, with_descendants="potential", project="*",
                  filters={"process_type": "aiida.calculations:nanoos.potential.train"})
        qb.order_by({CalcJobNode: {"ctime": "desc"}}).limit(1)
    """
    query = orm.QueryBuilder()
    query.append(PotentialData, filters={"id": potential.pk}, tag="potential")
    query.append(
        orm.CalcJobNode,
        with_descendants="potential",
        filters={"process_type": TRAIN_PROCESS_TYPE},
        project="*",
        tag="fit",
    )
    query.order_by({"fit": {"ctime": "desc"}}).limit(1)
    found = query.all(flat=True)
    return found[0] if found else None


def _frame_sources(training_sets: list[TrainingSetData]) -> set[str] | None:
    """UUIDs of the calculations that labelled the frames (None when a frame does not say, e.g. an imported file)."""
    sources = {frame.info.get("source_uuid") for ts in training_sets for frame in ts.get_frames()}
    return None if None in sources else sources


def training_calculations(potential: int | str | PotentialData) -> list[orm.CalcJobNode]:
    """The DFT calculations whose labels the potential was fitted on, PK order.

    Two queries: the training sets the fit read, then the calculations among their ancestors that labelled one of
    their frames (each frame records its calculation's UUID; a split links both halves to every parent frame, so the
    ancestry alone would also return the held-out frames' calculations). QueryBuilder::

        qb = QueryBuilder()
        qb.append(CalcJobNode, filters={"id": fit.pk}, tag="fit")            # fit_of(potential)
        qb.append(TrainingSetData, with_outgoing="fit", project="*")          # -> training_sets
        qb = QueryBuilder()
        qb.append(TrainingSetData, filters={"id": {"in": training_set_pks}}, tag="training_set")
        qb.append(CalcJobNode, with_descendants="training_set", project="*",
                  filters={"uuid": {"in": frame_source_uuids}})
        qb.distinct().order_by({CalcJobNode: {"id": "asc"}})

    When a frame has no ``source_uuid``, the second query keeps every ancestor CalcJob that is not one of this
    plugin's own (fits, MD, model training).
    """
    potential = load_potential(potential)
    fit = fit_of(potential)
    if fit is None:
        return []
    query = orm.QueryBuilder()
    query.append(orm.CalcJobNode, filters={"id": fit.pk}, tag="fit")
    query.append(TrainingSetData, with_outgoing="fit", project="*")
    training_sets = query.all(flat=True)
    if not training_sets:
        return []
    sources = _frame_sources(training_sets)
    if sources is not None:
        filters: dict[str, Any] = {"uuid": {"in": sorted(sources)}}
    else:
        filters = {
            "process_type": {"!in": [TRAIN_PROCESS_TYPE, MD_PROCESS_TYPE, "aiida.calculations:nanoos.model.train"]}
        }
    query = orm.QueryBuilder()
    query.append(TrainingSetData, filters={"id": {"in": [ts.pk for ts in training_sets]}}, tag="training_set")
    query.append(orm.CalcJobNode, with_descendants="training_set", filters=filters, project="*", tag="calculation")
    query.distinct().order_by({"calculation": {"id": "asc"}})
    return query.all(flat=True)


def potentials_trained_from(calculation: int | str | orm.CalcJobNode) -> list[PotentialData]:
    """The potentials fitted (directly, not only validated) on labels of this DFT calculation, PK order; validated
    copies of such a fit count as well (they are the same potential with a verdict).

    Candidates are the potentials descending from the calculation; a potential stays when the calculation is among
    its :func:`training_calculations`. QueryBuilder (the candidates)::

        qb = QueryBuilder()
        qb.append(CalcJobNode, filters={"id": calculation.pk}, tag="calculation")
        qb.append(PotentialData, with_ancestors="calculation", project="*")
        qb.distinct().order_by({PotentialData: {"id": "asc"}})
    """
    node = calculation if isinstance(calculation, orm.Node) else orm.load_node(calculation)
    query = orm.QueryBuilder()
    query.append(orm.CalcJobNode, filters={"id": node.pk}, tag="calculation")
    query.append(PotentialData, with_ancestors="calculation", project="*", tag="potential")
    query.distinct().order_by({"potential": {"id": "asc"}})
    return [p for p in query.all(flat=True) if node.pk in {c.pk for c in training_calculations(p)}]


def same_potential(potential: PotentialData) -> list[PotentialData]:
    """The potential, the one it is a validated copy of, and its validated copies (same files, other verdicts).

    QueryBuilder (copies of a potential)::

        qb = QueryBuilder()
        qb.append(PotentialData, filters={"id": original.pk}, tag="original")
        qb.append(CalcFunctionNode, with_incoming="original", tag="validation",
                  filters={"attributes.process_label": "validate_potential"})
        qb.append(PotentialData, with_incoming="validation", project="*")
    """
    original = potential
    creator = potential.creator
    if creator is not None and creator.process_label == VALIDATE_LABEL and "potential" in creator.inputs:
        original = creator.inputs.potential
    query = orm.QueryBuilder()
    query.append(PotentialData, filters={"id": original.pk}, tag="original")
    query.append(
        orm.CalcFunctionNode,
        with_incoming="original",
        tag="validation",
        filters={"attributes.process_label": VALIDATE_LABEL},
    )
    query.append(PotentialData, with_incoming="validation", project="*")
    nodes = {n.pk: n for n in [original, *query.all(flat=True)]}
    return [nodes[pk] for pk in sorted(nodes)]


def md_runs(potential: int | str | PotentialData, include_copies: bool = True) -> list[orm.ProcessNode]:
    """The MD runs (``nanoos.md`` CalcJobs, ``run_ase_md`` calcfunctions) that took the potential as input, PK
    order; with ``include_copies`` also those run with its validated copy or the potential it was copied from.

    QueryBuilder::

        qb = QueryBuilder()
        qb.append(PotentialData, filters={"id": {"in": potential_pks}}, tag="potential")
        qb.append(ProcessNode, with_incoming="potential", edge_filters={"label": "potential"}, project="*",
                  filters={"or": [{"process_type": "aiida.calculations:nanoos.md"},
                                  {"attributes.process_label": "run_ase_md"}]})
        qb.distinct().order_by({ProcessNode: {"id": "asc"}})
    """
    potential = load_potential(potential)
    pks = [p.pk for p in (same_potential(potential) if include_copies else [potential])]
    query = orm.QueryBuilder()
    query.append(PotentialData, filters={"id": {"in": pks}}, tag="potential")
    query.append(
        orm.ProcessNode,
        with_incoming="potential",
        edge_filters={"label": "potential"},
        filters={"or": [{"process_type": MD_PROCESS_TYPE}, {"attributes.process_label": ASE_MD_LABEL}]},
        project="*",
        tag="md",
    )
    query.distinct().order_by({"md": {"id": "asc"}})
    return query.all(flat=True)


def parity_data(potential: int | str | PotentialData) -> dict[str, Any]:
    """The arguments of :func:`aiida_nanoos.plots.parity_figure`: DFT vs potential values per quantity.

    The ``parity`` output of the ``validate_potential`` that checked this potential (or made it, for a validated
    copy) on held-out frames, the latest one. Without a validation, the potential is evaluated again on the frames it
    was fitted on (:func:`aiida_nanoos.potentials.validation.validate_predictions`, the helper validation uses):
    in-sample errors, said in the figure. QueryBuilder (the validations of a potential)::

        qb = QueryBuilder()
        qb.append(PotentialData, filters={"id": {"in": [p.pk for p in same_potential(potential)]}}, tag="potential")
        qb.append(CalcFunctionNode, with_incoming="potential", edge_filters={"label": "potential"}, tag="validation",
                  filters={"attributes.process_label": "validate_potential", "attributes.exit_status": 0})
        qb.append(ArrayData, with_incoming="validation", edge_filters={"label": "parity"}, project="*")
        qb.append(TrainingSetData, with_outgoing="validation", edge_filters={"label": "validation_set"}, project="*")
        qb.order_by({"validation": {"ctime": "desc"}}).limit(1)
    """
    potential = load_potential(potential)
    stored = stored_parity(potential)
    return stored if stored is not None else training_parity(potential)


def _title(potential: PotentialData) -> str:
    return f"Potential {potential.pk}: {potential.name} v{potential.version} ({potential.descriptor_type}) vs DFT"


def stored_parity(potential: PotentialData) -> dict[str, Any] | None:
    """The parity data of the latest validation of the potential (or of its original / copies); None without one.
    The QueryBuilder is in :func:`parity_data`."""
    query = orm.QueryBuilder()
    query.append(PotentialData, filters={"id": {"in": [p.pk for p in same_potential(potential)]}}, tag="potential")
    query.append(
        orm.CalcFunctionNode,
        with_incoming="potential",
        edge_filters={"label": "potential"},
        filters={"attributes.process_label": VALIDATE_LABEL, "attributes.exit_status": 0},
        tag="validation",
    )
    query.append(orm.ArrayData, with_incoming="validation", edge_filters={"label": "parity"}, project="*")
    query.append(TrainingSetData, with_outgoing="validation", edge_filters={"label": "validation_set"}, project="*")
    query.order_by({"validation": {"ctime": "desc"}}).limit(1)
    found = query.all()
    if not found:
        return None
    parity, frames = found[0]
    names = parity.get_arraynames()
    data = {
        q: (parity.get_array(f"{q}_reference"), parity.get_array(f"{q}_predicted"))
        for q in ("energy", "force", "stress")
        if f"{q}_reference" in names
    }
    subset = f"{frames.num_frames} held-out frames, ArrayData<{parity.pk}>"
    return {"parity": data, "title": _title(potential), "subset": subset}


def training_parity(potential: PotentialData) -> dict[str, Any]:
    """The potential evaluated again on the frames its fit read (in-sample errors), with the helper validation uses
    (:func:`aiida_nanoos.potentials.validation.validate_predictions`)."""
    from aiida_nanoos.potentials.validation import validate_predictions

    fit = fit_of(potential)
    incoming = [] if fit is None else fit.base.links.get_incoming().all_nodes()
    training_sets = [node for node in incoming if isinstance(node, TrainingSetData)]
    if not training_sets:
        raise ValueError(f"potential {potential.pk} has neither a validation nor a training set to compare with")
    frames = [frame for ts in training_sets for frame in ts.get_frames()]
    report = validate_predictions(frames, potential.predict(frames))
    subset = f"{len(frames)} training frames, in-sample: no held-out validation stored"
    return {"parity": report["parity"], "title": _title(potential), "subset": subset}
