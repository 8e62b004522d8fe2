"""Shared test fixtures: a temporary AiiDA profile (aiida-core's fixtures) and the public benchmark data."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# AiiDA reads AIIDA_PATH when it is first imported: keep tests out of the user's ~/.aiida.
os.environ.setdefault("AIIDA_PATH", tempfile.mkdtemp(prefix="nanoos-test-aiida-"))

pytest_plugins = ["aiida.tools.pytest_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
#: ../shared next to the checkout holds public benchmark data sets (never copied into the repository).
SHARED = Path(os.environ.get("NANOOS_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_benchmarks() -> Path:
    """Folder of the public benchmark data sets; skips the test where it is absent."""
    path = SHARED / "benchmarks"
    if not path.is_dir():
        pytest.skip(f"public benchmark data not found at {path} (set NANOOS_SHARED to the folder holding benchmarks/)")
    return path
