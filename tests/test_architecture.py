"""The layout is a rule, not a habit: the import contract holds, no module outgrows a reading, no private aiida-core
member is touched."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "aiida_nanoos"
#: A module a newcomer can read in one sitting.
MAX_MODULE_LINES = 600


def test_import_contract_holds():
    """cli -> workflows -> calculations/functions -> data -> core; the core imports no AiiDA; no cycles."""
    lint_imports = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint_imports is None:
        pytest.fail("lint-imports is missing: install the dev extra (pip install -e '.[dev]')")
    result = subprocess.run(
        [lint_imports, "--no-cache"],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)},
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "3 kept, 0 broken" in result.stdout


def test_no_module_is_longer_than_a_reading():
    lengths = {path: len(path.read_text().splitlines()) for path in PACKAGE.rglob("*.py")}
    too_long = {str(path.relative_to(PACKAGE)): n for path, n in lengths.items() if n > MAX_MODULE_LINES}
    assert not too_long, f"modules above {MAX_MODULE_LINES} lines: {too_long}"


def test_no_private_aiida_core_members():
    """Overriding or reading aiida-core's private members breaks silently on its next release."""
    private = re.compile(r"\._flat_outputs|\._inputs\(|from aiida(\.[\w.]+)? import _")
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in PACKAGE.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if private.search(line)
    ]
    assert not offenders, offenders
