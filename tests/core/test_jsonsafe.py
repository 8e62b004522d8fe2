import json
import math
from pathlib import Path

import numpy as np

from aiida_nanoos.common.jsonsafe import json_safe


def test_json_safe_gives_plain_json_without_nan():
    value = {
        1: np.float64(2.5),
        "nan": float("nan"),
        "inf": np.float32("inf"),
        "ints": (np.int64(3), 4),
        "array": np.array([[1.0, math.nan]]),
        "path": Path("/tmp/run/Si.snapcoeff"),
        "nested": [{"x": -math.inf}],
    }
    safe = json_safe(value)
    assert safe == {
        "1": 2.5,
        "nan": None,
        "inf": None,
        "ints": [3, 4],
        "array": [[1.0, None]],
        "path": "Si.snapcoeff",
        "nested": [{"x": None}],
    }
    assert type(safe["ints"][0]) is int
    json.dumps(safe, allow_nan=False)
