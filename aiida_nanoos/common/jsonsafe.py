"""Values as plain JSON for a database node or a metrics file."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

import numpy as np


def json_safe(value: Any) -> Any:
    """Plain JSON: numpy scalars and arrays as Python values, paths as file names, NaN and infinities as ``None``.

    AiiDA ``Dict`` nodes and ``json.dumps(allow_nan=False)`` hold no NaN; ``None`` says "no value" in both.
    """
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, PurePath):
        return value.name
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
