"""Helpers shared by the sub-commands: reading YAML configs, building structures, launching processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml


def load_profile(ctx: click.Context | None = None):
    """The profile loaded by ``-p NAME`` (anywhere on the command line), else the default one, with the fix when
    there is none. Commands use ``with_dbenv``; this is for the benchmark commands and scripts."""
    from aiida import get_profile
    from aiida import load_profile as _load
    from aiida.common.exceptions import ConfigurationError, ProfileConfigurationError

    if get_profile() is not None:
        return get_profile()
    try:
        return _load()
    except (ConfigurationError, ProfileConfigurationError) as error:
        raise click.ClickException(f"{error}\nRun `aiida-nanoos setup` first (or `make demo`).") from error


def read_config(path: Path) -> dict[str, Any]:
    """Read a YAML config file into a dictionary (never executed, only parsed)."""
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise click.BadParameter(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: expected a mapping of settings at the top level")
    return data


def structure_from_spec(spec: Any, base_dir: Path, field: str = "structure"):
    """A StructureData from a config entry: a file path (any format ASE reads), a PK/UUID, or ``{bulk: ...}``.

    ``{bulk: Si, crystalstructure: diamond, a: 5.43, cubic: true}`` is passed to ``ase.build.bulk``; ``repeat``
    makes a supercell.
    """
    from aiida import orm

    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        node = orm.load_node(int(spec))
        if not isinstance(node, orm.StructureData):
            raise click.BadParameter(f"node {spec} is a {type(node).__name__}, not a StructureData", param_hint=field)
        return node
    if isinstance(spec, str):
        import ase.io

        path = (base_dir / spec).resolve()
        if not path.is_file():
            raise click.BadParameter(f"no such file: {path}", param_hint=field)
        return orm.StructureData(ase=ase.io.read(path))
    if isinstance(spec, dict) and "bulk" in spec:
        from ase.build import bulk

        options = dict(spec)
        repeat = options.pop("repeat", None)
        name = options.pop("bulk")
        allowed = {"crystalstructure", "a", "b", "c", "alpha", "covera", "u", "orthorhombic", "cubic"}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise click.BadParameter(f"unknown bulk option(s) {unknown}; allowed: {sorted(allowed)}", param_hint=field)
        for key in ("a", "b", "c", "covera", "alpha", "u"):
            value = options.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or not value > 0):
                message = f"bulk option {key} must be a positive number, got {value!r}"
                raise click.BadParameter(message, param_hint=field)
        try:
            atoms = bulk(name, **options)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
            raise click.BadParameter(f"cannot build bulk {name!r}: {error}", param_hint=field) from error
        if repeat is not None:
            counts = [repeat] * 3 if isinstance(repeat, int) and not isinstance(repeat, bool) else repeat
            if (
                not isinstance(counts, list)
                or len(counts) != 3
                or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in counts)
            ):
                raise click.BadParameter(f"repeat must be three positive integers, got {repeat!r}", param_hint=field)
            atoms = atoms.repeat(counts)
        if not atoms.cell.volume > 1e-6:
            raise click.BadParameter(f"bulk {name!r}: the cell has no volume", param_hint=field)
        return orm.StructureData(ase=atoms)
    raise click.BadParameter("give a file path, a node PK or {bulk: ELEMENT, ...}", param_hint=field)


def check_inputs(builder) -> None:
    """Refuse what the process spec refuses before anything is stored or submitted: a usage error (exit code 2) with
    the spec's message, which names the port and the field, never a traceback."""
    from aiida_nanoos.workflows.campaign_inputs import plain

    inputs = plain(builder)
    where = _non_finite(inputs)
    if where:
        raise click.UsageError(f"invalid input: {where} is not a finite number (NaN and infinity cannot be stored)")
    spec = builder.process_class.spec()
    try:
        error = spec.inputs.validate(spec.inputs.pre_process(inputs))
    except Exception as exc:  # a validator that breaks on odd input must still refuse it, not print a traceback
        raise click.UsageError(f"the inputs cannot be validated: {type(exc).__name__}: {exc}") from exc
    if error is not None:
        raise click.UsageError(f"invalid input: {error}")


def _non_finite(value: Any, path: str = "") -> str | None:
    """The path of the first NaN or infinity in nested inputs (inside Dict, List and Float nodes too), else None."""
    import math

    from aiida import orm

    if isinstance(value, orm.Dict):
        value = value.get_dict()
    elif isinstance(value, orm.List):
        value = value.get_list()
    elif isinstance(value, orm.Float):
        value = value.value
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path} = {value}"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _non_finite(item, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def launch(builder, submit: bool, progress=None):
    """Check the inputs (:func:`check_inputs`), then submit to the daemon (returns at once) or run here until done,
    showing ``progress(node)`` steps (:mod:`.progress`) when given; returns the process node."""
    from aiida.engine import submit as submit_process

    check_inputs(builder)
    if submit:
        node = submit_process(builder)
        click.echo(f"Submitted {node.process_label}<{node.pk}>; follow it with `verdi process status {node.pk}`.")
        return node
    from .progress import run_in_foreground, run_with_progress

    if progress is not None:
        return run_with_progress(builder, progress)
    return run_in_foreground(builder)


def run_in_foreground(builder):
    """Run a process here until it is done, without progress (benchmarks time it); returns the process node."""
    from .progress import run_in_foreground as run

    return run(builder)
