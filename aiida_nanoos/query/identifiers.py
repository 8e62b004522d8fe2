"""One way to turn what a user typed (a PK, a UUID, a label or a name) into a node."""

from __future__ import annotations

from collections.abc import Callable

from aiida import orm


def load_identified(identifier: int | str | orm.Node, by_name: Callable[[str], orm.Node]) -> orm.Node:
    """The node itself, the node with this PK or UUID, or else ``by_name(text)`` (a label or a model name), which
    raises ``ValueError`` naming what it looked for when there is not exactly one."""
    if isinstance(identifier, orm.Node):
        return identifier
    text = str(identifier)
    try:
        node = orm.load_node(int(text) if text.isdigit() else text)
    except Exception:  # noqa: BLE001 (NotExistent, MultipleObjectsError): a label or a name then
        node = None
    return node if node is not None else by_name(text)  # outside the except: no chained traceback


def single_with_label(node_class: type[orm.Node], what: str, **filters) -> Callable[[str], orm.Node]:
    """A ``by_name`` for :func:`load_identified`: the one ``node_class`` node with this label (and ``filters``)."""

    def find(text: str) -> orm.Node:
        found = orm.QueryBuilder().append(node_class, filters={"label": text, **filters}, project="*").all(flat=True)
        if len(found) != 1:
            raise ValueError(f"no single {what} with PK, UUID or label {text!r} ({len(found)} found)")
        return found[0]

    return find
