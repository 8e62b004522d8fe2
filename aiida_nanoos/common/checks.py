"""Checks of one configuration value that name the field: written once for every parser of the package.

Users write configurations in YAML, where ``true``, ``.nan``, ``.inf``, ``"3"`` and ``[300]`` all parse; each check
refuses them with a message that says which field is wrong and what it must be. A :class:`Bound` is the allowed
range of one number: the parser checks a value with it and the JSON schema of the configuration
(:mod:`aiida_nanoos.common.schema`) states it, so the two cannot disagree. ``number_problem`` and
``integer_problem`` return the message (or ``None``) for parsers with their own phrasing (``config.x must be ...``);
``number`` and ``positive_int`` raise it as ``where: must be ...``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def is_number(value: Any) -> bool:
    """A finite int or float, not a boolean (YAML's ``true`` is an int to Python)."""
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def number_problem(
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> str | None:
    """Why ``value`` is not a finite number between ``low`` and ``high`` (excluded when open); None when it is."""
    if not is_number(value):
        return f"must be a number, got {value!r}"
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not (below or above):
        return None
    if high is None:
        return f"must be {'>' if low_open else '>='} {low}, got {value!r}"
    if low is None:
        return f"must be {'<' if high_open else '<='} {high}, got {value!r}"
    return f"must lie in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}, got {value!r}"


def integer_problem(value: Any, low: int | None = 1, high: int | None = None) -> str | None:
    """Why ``value`` is not an integer in [low, high] (a float such as 3.0 counts; 3.5, NaN and inf do not)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())
        or (low is not None and value < low)
        or (high is not None and value > high)
    ):
        named = {1: "a positive integer", 0: "a non-negative integer", None: "an integer"}
        kind = named.get(low, f"an integer >= {low}")
        if high is not None:
            kind = f"an integer in [{low if low is not None else '-inf'}, {high}]"
        return f"must be {kind}, got {value!r}"
    return None


def number(value: Any, where: str, low: float | None = None, high: float | None = None) -> float:
    """``value`` as a float in [low, high], or ``ValueError('where: must ...')``."""
    problem = number_problem(value, low, high)
    if problem:
        raise ValueError(f"{where}: {problem}")
    return float(value)


def positive_int(value: Any, where: str, *, allow_none: bool = False, low: int = 1) -> int | None:
    """``value`` as an int >= ``low`` (None passes with ``allow_none``), or ``ValueError('where: must ...')``."""
    if value is None and allow_none:
        return None
    problem = integer_problem(value, low)
    if problem:
        raise ValueError(f"{where}: {problem}")
    return int(value)


@dataclass(frozen=True)
class Bound:
    """The allowed values of one numeric field: an integer or a number, with optional (open) limits.

    ``Bound(int, 1)`` is a positive integer, ``Bound(float, 0.0, 1.0, low_open=True)`` a number in (0, 1].
    """

    kind: type = float
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, value: Any) -> str | None:
        if self.kind is int:
            low = None if self.low is None else int(self.low)
            return integer_problem(value, low, None if self.high is None else int(self.high))
        return number_problem(value, self.low, self.high, low_open=self.low_open, high_open=self.high_open)

    def check(self, value: Any, where: str, *, allow_none: bool = False) -> Any:
        """``value`` as the bound's kind, or ``ValueError('where: must ...')`` (None passes with ``allow_none``)."""
        if value is None and allow_none:
            return None
        problem = self.problem(value)
        if problem:
            raise ValueError(f"{where}: {problem}")
        return self.kind(value)

    def json_schema(self) -> dict[str, Any]:
        """The same rule as JSON Schema (draft 7) keywords."""
        out: dict[str, Any] = {"type": "integer" if self.kind is int else "number"}
        for limit, open_, key in ((self.low, self.low_open, "Minimum"), (self.high, self.high_open, "Maximum")):
            if limit is not None:
                out[f"exclusive{key}" if open_ else key.lower()] = limit
        return out
