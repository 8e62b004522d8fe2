"""``aiida-nanoos pipeline run CONFIG.yaml`` (also ``hybrid run``): DFT labels -> ML potential -> validation -> MD in
one work chain, with its progress when run here."""

from __future__ import annotations

from pathlib import Path

import click
from aiida.cmdline.utils.decorators import with_dbenv

from .examples import example_option
from .params import group
from .progress import PipelineProgress
from .utils import launch, read_config, structure_from_spec

#: Keys of a pipeline config (see ``examples/pipeline_si.yaml``).
CONFIG_KEYS = {"structure", "md_structure", "protocol", "electronic_type", "codes", "overrides"}
CODE_KEYS = {"pw": "pw@localhost", "lmp": "lmp@localhost", "train": "nanoos-train@localhost"}


def builder_from_config(config: dict, base_dir: Path):
    """A PotentialPipelineWorkChain builder from a pipeline config (bad keys and values refused, naming the field)."""
    from aiida import orm
    from aiida.common.exceptions import MultipleObjectsError, NotExistent
    from aiida_quantumespresso.common.types import ElectronicType

    from aiida_nanoos.workflows.pipeline import PotentialPipelineWorkChain

    unknown = sorted(set(config) - CONFIG_KEYS)
    if unknown:
        raise click.BadParameter(f"unknown key(s) {unknown}; allowed: {sorted(CONFIG_KEYS)}")
    if "structure" not in config:
        raise click.BadParameter("`structure` is required: the cell to sample and label with DFT")
    codes = dict(CODE_KEYS)
    given = config.get("codes") or {}
    if not isinstance(given, dict):
        raise click.BadParameter(f"codes: must map roles {sorted(CODE_KEYS)} to code labels, got {given!r}"[:300])
    unknown = sorted(set(given) - set(CODE_KEYS))
    if unknown:
        raise click.BadParameter(f"codes.{unknown[0]} is not a code role; known: {sorted(CODE_KEYS)}")
    codes.update(given)
    loaded = {}
    for role, label in codes.items():
        try:
            loaded[role] = orm.load_code(label)
        except (NotExistent, MultipleObjectsError, ValueError, TypeError) as error:
            raise click.BadParameter(f"codes.{role}: {error} (run `aiida-nanoos setup`)") from error
    electronic_type = str(config.get("electronic_type", "insulator")).upper()
    if electronic_type not in ElectronicType.__members__:
        raise click.BadParameter(f"electronic_type must be metal or insulator, got {config['electronic_type']!r}")
    protocol = config.get("protocol")
    if protocol is not None and (
        not isinstance(protocol, str) or protocol not in PotentialPipelineWorkChain.get_available_protocols()
    ):
        raise click.BadParameter(
            f"protocol must be one of {sorted(PotentialPipelineWorkChain.get_available_protocols())}, got {protocol!r}"
        )
    overrides = config.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise click.BadParameter(f"overrides: must be a mapping like the protocol's inputs, got {overrides!r}"[:300])
    structure = structure_from_spec(config["structure"], base_dir)
    md_structure = (
        structure_from_spec(config["md_structure"], base_dir, "md_structure") if "md_structure" in config else None
    )
    try:
        return PotentialPipelineWorkChain.get_builder_from_protocol(
            loaded["pw"],
            loaded["lmp"],
            structure,
            protocol=protocol,
            overrides=overrides,
            train_code=loaded["train"],
            electronic_type=ElectronicType[electronic_type],
            md_structure=md_structure,
        )
    except Exception as error:  # noqa: BLE001 (a wrong type deep in the overrides: refused, never a traceback)
        raise click.BadParameter(f"{type(error).__name__}: {error}"[:500], param_hint="overrides") from error


def echo_result(node) -> None:
    """Print the chain's outcome: frames, errors, MD, cost per atom-step."""
    from .potential import echo_summary

    outputs = node.outputs
    click.echo(
        f"{node.process_label}<{node.pk}> finished with exit status {node.exit_status}"
        + (f": {node.exit_message}" if node.exit_message else "")
    )
    if "training_set" in outputs:
        click.echo(
            f"  DFT frames: {outputs.training_set.num_frames} (fit {outputs.train_set.num_frames}, "
            f"held out {outputs.validation_set.num_frames})"
        )
    if "potential" in outputs:
        echo_summary(outputs.potential)
    if "md" in outputs and "results" in outputs.md:
        results = outputs.md.results.get_dict()
        atoms = len(outputs.md.structure.sites)
        click.echo(
            f"  MD: {atoms} atoms, {results.get('final_step')} steps, final T {results.get('final_temp', 0):.0f} K, "
            f"{results['compute_variables'].get('steps_per_second', 0):.3g} steps/s"
        )
    if "cost" in outputs:
        cost = outputs.cost.get_dict()
        click.echo(
            f"  cost per atom-step: DFT {cost['dft_seconds_per_atom_step']:.3g} s "
            f"({cost['dft_mean_atoms']:.0f}-atom cells) vs potential {cost['potential_seconds_per_atom_step']:.3g} s "
            f"-> {cost['speedup']:.3g}x cheaper"
        )


@group()
def pipeline() -> None:
    """DFT -> ML potential -> validation -> MD in one work chain (nanoos.potential.pipeline)."""


@group()
def hybrid() -> None:
    """The hybrid DFT -> ML potential -> MD chain: the same commands as `pipeline`."""


@pipeline.command("run")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--submit", is_flag=True, help="Submit to the daemon instead of running here.")
@example_option("pipeline")
@with_dbenv()
def pipeline_run(config_file: Path, submit: bool) -> None:
    """Run the potential pipeline described by CONFIG_FILE (YAML, see examples/pipeline_si.yaml); here, it shows the
    current stage (labelling 3/10 done, training, validation, MD) and the elapsed time (`-v info`: the reports)."""
    builder = builder_from_config(read_config(config_file), config_file.parent)
    node = launch(builder, submit, progress=PipelineProgress)
    if submit:
        return
    echo_result(node)
    if "potential" in node.outputs:
        pk = node.outputs.potential.pk
        click.echo(
            f"Inspect it with: aiida-nanoos potential show {pk}; export with: aiida-nanoos potential export {pk} -o DIR"
        )
    if node.exit_status:
        raise SystemExit(node.exit_status)


hybrid.add_command(pipeline_run)
