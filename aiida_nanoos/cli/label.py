"""``aiida-nanoos label run CONFIG.yaml``: DFT-label sampled or given configurations into a training set."""

from __future__ import annotations

from pathlib import Path

import click
from aiida.cmdline.utils.decorators import with_dbenv

from .examples import example_option
from .params import group
from .progress import LabelProgress
from .utils import launch, read_config, structure_from_spec

#: Top-level keys of a label config; those in PROTOCOL_KEYS become protocol overrides.
PROTOCOL_KEYS = {"pseudo_family", "config_type", "max_concurrent", "max_failure_fraction"}
CONFIG_KEYS = {"code", "structure", "sampling", "configurations", "protocol", "electronic_type", "overrides"}


def builder_from_config(config: dict, base_dir: Path):
    """Turn a label config (see ``examples/label_si.yaml``) into a LabelWorkChain builder."""
    from aiida import orm
    from aiida_quantumespresso.common.types import ElectronicType

    from aiida_nanoos.workflows.label import LabelWorkChain

    unknown = sorted(set(config) - CONFIG_KEYS - PROTOCOL_KEYS)
    if unknown:
        raise click.BadParameter(f"unknown key(s) {unknown}; allowed: {sorted(CONFIG_KEYS | PROTOCOL_KEYS)}")
    for key, kind in (("overrides", dict), ("sampling", dict), ("code", str), ("electronic_type", str)):
        if config.get(key) is not None and not isinstance(config[key], kind):
            raise click.BadParameter(f"{key}: must be a {kind.__name__}, got {config[key]!r}"[:300], param_hint=key)
    try:
        code = orm.load_code(config.get("code", "pw@localhost"))
    except Exception as error:  # noqa: BLE001 (NotExistent, MultipleObjectsError, a malformed label)
        raise click.BadParameter(f"{error} (run `aiida-nanoos setup`)", param_hint="code") from error
    structure = configurations = None
    if "configurations" in config:
        import ase.io

        try:
            path = (base_dir / config["configurations"]).resolve()
            configurations = [orm.StructureData(ase=atoms) for atoms in ase.io.read(path, index=":")]
        except Exception as error:  # noqa: BLE001 (missing file, unknown format, a path of the wrong type)
            message = f"cannot read {config['configurations']!r}: {type(error).__name__}: {error}"[:400]
            raise click.BadParameter(message, param_hint="configurations") from error
    if "structure" in config:
        structure = structure_from_spec(config["structure"], base_dir)
    electronic_type = config.get("electronic_type", "metal").upper()
    if electronic_type not in ElectronicType.__members__:
        raise click.BadParameter(f"electronic_type must be metal or insulator, got {config['electronic_type']!r}")
    overrides = dict(config.get("overrides") or {})
    overrides.update({key: config[key] for key in PROTOCOL_KEYS if key in config})
    try:
        return LabelWorkChain.get_builder_from_protocol(
            code,
            structure=structure,
            sampling=config.get("sampling"),
            configurations=configurations,
            protocol=config.get("protocol"),
            overrides=overrides,
            electronic_type=ElectronicType[electronic_type],
        )
    except Exception as error:  # noqa: BLE001 (a wrong type deep in the overrides: refused, never a traceback)
        raise click.BadParameter(f"{type(error).__name__}: {error}"[:500]) from error


@group()
def label() -> None:
    """Label atomic configurations with DFT (pw.x energies, forces, stress)."""


@label.command("run")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--submit", is_flag=True, help="Submit to the daemon instead of running here.")
@example_option("label")
@with_dbenv()
def label_run(config_file: Path, submit: bool) -> None:
    """Run the labelling work chain described by CONFIG_FILE (YAML); here, it shows how many configurations are
    labelled (`-v info`: the reports)."""
    builder = builder_from_config(read_config(config_file), config_file.parent)
    node = launch(builder, submit, progress=LabelProgress)
    if submit:
        return
    from .training_set import echo_summary

    click.echo(f"{node.process_label}<{node.pk}> finished with exit status {node.exit_status}")
    if "training_set" in node.outputs:
        echo_summary(node.outputs.training_set)
        pk = node.outputs.training_set.pk
        click.echo(f"Export it with: aiida-nanoos trainingset export {pk} --format extxyz -o training_set.extxyz")
    if node.exit_status:
        raise SystemExit(node.exit_status)
