"""Engine overhead of DFT labelling: one Si8 configuration through ``nanoos.dft.label`` vs pw.x's own wall time."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import click

from aiida_nanoos.benchmarks import options


@click.command()
@click.option("--rattle", default=0.05, show_default=True, help="Rattle amplitude (Å) of the Si8 cell.")
@click.option("--kpoints-distance", default=0.5, show_default=True)
@options.json_output
def command(rattle: float, kpoints_distance: float, as_json: bool) -> None:
    """Label one rattled Si8 cell (run in this process) and compare with pw.x alone on the same input file."""
    from aiida import load_profile, orm
    from aiida_quantumespresso.common.types import ElectronicType
    from ase.build import bulk

    from aiida_nanoos.cli.utils import run_in_foreground
    from aiida_nanoos.workflows.label import LabelWorkChain

    load_profile()
    builder = LabelWorkChain.get_builder_from_protocol(
        orm.load_code("pw@localhost"),
        structure=orm.StructureData(ase=bulk("Si", "diamond", a=5.43, cubic=True)),
        sampling={"count": 1, "rattle_std": rattle, "seed": int(time.time())},  # a new seed: never a cache hit
        protocol="fast",
        overrides={"base": {"kpoints_distance": kpoints_distance}},
        electronic_type=ElectronicType.INSULATOR,
    )
    start = time.perf_counter()
    node = run_in_foreground(builder)
    workchain_seconds = time.perf_counter() - start
    if not node.is_finished_ok:
        raise click.ClickException(f"labelling failed: {node.exit_message}")
    calculation = next(n for n in node.called_descendants if isinstance(n, orm.CalcJobNode))
    pw_reported = calculation.outputs.output_parameters["wall_time_seconds"]

    # the same input, run by hand in a fresh folder: what a user without AiiDA would wait for
    with tempfile.TemporaryDirectory() as folder:
        for name in calculation.base.repository.list_object_names():
            if name.endswith(".in"):
                Path(folder, name).write_bytes(calculation.base.repository.get_object_content(name, mode="rb"))
        pseudo_dir = Path(folder, "pseudo")
        pseudo_dir.mkdir()
        for pseudo in calculation.inputs.pseudos.values():
            Path(pseudo_dir, pseudo.filename).write_bytes(pseudo.get_content(mode="rb"))
        Path(folder, "out").mkdir()
        start = time.perf_counter()
        subprocess.run(
            [calculation.inputs.code.filepath_executable, "-in", "aiida.in"],
            cwd=folder,
            capture_output=True,
            check=True,
        )
        bare_seconds = time.perf_counter() - start
    figures = {
        "workchain_wall_s": round(workchain_seconds, 2),
        "pw_reported_wall_s": round(pw_reported, 2),
        "pw_bare_wall_s": round(bare_seconds, 2),
        "overhead_ratio_vs_bare": round(workchain_seconds / bare_seconds, 2),
        "overhead_s": round(workchain_seconds - bare_seconds, 2),
    }
    if as_json:
        click.echo(json.dumps(figures))
        return
    click.echo("One rattled Si8 configuration, fast protocol, serial pw.x")
    click.echo(f"  LabelWorkChain wall time          {figures['workchain_wall_s']:8.2f} s")
    click.echo(f"  pw.x wall time (its own report)   {figures['pw_reported_wall_s']:8.2f} s")
    click.echo(f"  pw.x run by hand, same input      {figures['pw_bare_wall_s']:8.2f} s")
    click.echo(f"  engine overhead ratio             {figures['overhead_ratio_vs_bare']:8.2f}x")
