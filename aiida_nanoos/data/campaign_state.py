"""``nanoos.campaign_state``: the state of a design campaign as one JSON file in the node's repository.

A campaign stores its state (:class:`~aiida_nanoos.design.state.CampaignState`: every candidate record, the history,
the GA population, ...) after each step, and the state grows with every candidate. As database attributes (a
``Dict``), each store walked and hashed the whole tree in Python: 0.14 s for a 300-iteration state, growing with the
campaign. As a repository file it is written and hashed as bytes (about 8x cheaper, and nearly flat), while what one
queries on (iteration, number of candidates, algorithm, stopping reason, schema version) stays an attribute.
:meth:`get_dict` answers like ``Dict.get_dict``, so code reading a state does not care which of the two it got
(campaigns stored before this type keep their ``Dict`` states, and those still load).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiida import orm

#: Significant digits AiiDA keeps of a float in attributes (``aiida.orm.implementation.utils.clean_value``).
ATTRIBUTE_FLOAT_DIGITS = 14


def _as_attribute_floats(value: Any) -> Any:
    """Floats rounded as AiiDA rounds them in attributes, so a number in the state equals the same number stored
    anywhere else in the graph (a candidate's parameters, an iteration summary)."""
    if isinstance(value, float):
        return float(f"{value:.{ATTRIBUTE_FLOAT_DIGITS}g}")
    if isinstance(value, dict):
        return {key: _as_attribute_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_attribute_floats(item) for item in value]
    return value


class CampaignStateData(orm.Data):
    """A campaign state (the plain-JSON form of ``CampaignState.to_dict``) in ``state.json``.

    Attributes: ``schema_version``, ``iteration``, ``n_candidates``, ``n_pending``, ``algorithm``, ``converged``.
    """

    FILENAME = "state.json"

    def __init__(self, state: Mapping[str, Any] | None = None, **kwargs):
        super().__init__(**kwargs)
        if state is None:  # an empty node, e.g. while loading from the database
            return
        state = _as_attribute_floats(dict(state))
        text = json.dumps(state, allow_nan=False, separators=(",", ":"))
        self.base.repository.put_object_from_bytes(text.encode(), self.FILENAME)
        self.base.attributes.set_many(
            {
                "schema_version": state.get("schema_version"),
                "iteration": int(state.get("iteration") or 0),
                "n_candidates": len(state.get("candidates") or ()),
                "n_pending": len(state.get("pending") or ()),
                "algorithm": state.get("algorithm"),
                "converged": state.get("converged"),
            }
        )

    def get_dict(self) -> dict[str, Any]:
        """The state as plain JSON types (as ``orm.Dict.get_dict``)."""
        return json.loads(self.base.repository.get_object_content(self.FILENAME, mode="rb"))

    def __getitem__(self, key: str) -> Any:
        """One field of the state (``state["candidates"]``, as on a ``Dict``); reads the file each time."""
        return self.get_dict()[key]

    @property
    def iteration(self) -> int:
        return int(self.base.attributes.get("iteration"))

    @property
    def n_candidates(self) -> int:
        return int(self.base.attributes.get("n_candidates"))
