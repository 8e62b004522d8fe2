"""Property evaluators of design campaigns: WorkChains that take a ``structure`` and return ``properties``.

An evaluator is registered under the entry point group ``nanoos.evaluators``; the campaign finds it by name
(``band_gap``, ``formation_energy``, ...), fills its inputs once from the campaign's ``evaluator`` namespace and
sets ``structure`` for every candidate. Its ``properties`` output is a Dict of the property names the campaign
objectives know (``bandgap`` eV, ``formation_energy`` eV/atom, ``stability_score``, ...).
"""

from __future__ import annotations

from importlib.metadata import entry_points

EVALUATOR_GROUP = "nanoos.evaluators"
#: Evaluator names of the previous version and their new names (refused with the new one).
RENAMED_EVALUATORS = {"ml": "property_model", "hybrid": "ml_then_dft"}


def available_evaluators() -> list[str]:
    return sorted(entry.name for entry in entry_points(group=EVALUATOR_GROUP))


def load_evaluator(name: str):
    """The evaluator WorkChain class registered as ``name``; ``ValueError`` listing the known ones otherwise."""
    if name in RENAMED_EVALUATORS:
        raise ValueError(f"evaluator {name!r} was renamed; use {RENAMED_EVALUATORS[name]!r}")
    for entry in entry_points(group=EVALUATOR_GROUP):
        if entry.name == name:
            return entry.load()
    raise ValueError(f"unknown evaluator {name!r}; available: {available_evaluators()}")
