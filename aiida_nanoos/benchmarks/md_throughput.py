"""MD throughput through AiiDA (``nanoos.md``) vs the same LAMMPS input run by hand with ``lmp``.

Both runs use the same input files (written by the CalcJob), the same binary and one core. The AiiDA figure is
end to end as a user waits for it: from launching the CalcJob (here, in this process) until its outputs are parsed
and stored, so upload, scheduler polling, retrieval and parsing all count against it.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import click

from aiida_nanoos.benchmarks import options


def find_potential(pk: int | None, element: str = "Si"):
    """The potential to benchmark: the given PK, else the newest validated SNAP potential covering ``element``."""
    from aiida import orm

    from aiida_nanoos.data.potential import PotentialData

    if pk is not None:
        node = orm.load_node(pk)
        if not isinstance(node, PotentialData):
            raise click.BadParameter(f"node {pk} is a {type(node).__name__}, not a potential", param_hint="--potential")
        return node
    query = orm.QueryBuilder().append(
        PotentialData,
        tag="p",
        filters={"attributes.descriptor_type": {"in": ["SNAP", "qSNAP"]}, "attributes.validated": True},
    )
    query.order_by({"p": {"id": "desc"}})
    for (node,) in query.iterall():
        if element in node.elements:
            return node
    raise click.ClickException(
        f"no validated SNAP potential with {element} in this profile: run `aiida-nanoos pipeline run "
        "examples/pipeline_si.yaml` first, or pass --potential PK"
    )


def md_builder(
    potential,
    atoms: int,
    steps: int,
    temperature: float,
    ensemble: str,
    timestep_fs: float,
    thermo_every: int,
    dump_every: int,
    seed: int = 11,
):
    """An ``nanoos.md`` builder on a diamond Si cell of about ``atoms`` atoms."""
    from aiida import orm
    from ase.build import bulk

    from aiida_nanoos.calculations.md import MdCalculation, md_parameters
    from aiida_nanoos.potentials.md_setup import supercell_repetitions

    unit = bulk("Si", "diamond", a=5.43, cubic=True)
    cell = unit.repeat(supercell_repetitions(unit.cell.array, len(unit), atoms))
    builder = MdCalculation.get_builder()
    builder.code = orm.load_code("lmp@localhost")
    builder.potential = potential
    builder.structure = orm.StructureData(ase=cell)
    builder.parameters = orm.Dict(
        md_parameters(
            ensemble,
            temperature=temperature,
            steps=steps,
            timestep_fs=timestep_fs,
            seed=seed,
            thermo_every=thermo_every,
            dump_every=dump_every,
        )
    )
    return builder, len(cell)


def loop_seconds(screen: str) -> float:
    """LAMMPS' own ``Loop time of X on N procs`` (the MD loop alone), from its screen output."""
    for line in screen.splitlines():
        if line.startswith("Loop time of"):
            return float(line.split()[3])
    return float("nan")


def write_inputs(builder, folder: Path) -> None:
    """The exact input files ``nanoos.md`` would run (a dry run: nothing is executed or stored), into ``folder``."""
    import shutil

    from aiida_nanoos.cli.utils import run_in_foreground

    builder.metadata.dry_run = True
    builder.metadata.store_provenance = False
    node = run_in_foreground(builder)
    sandbox = Path(node.dry_run_info["folder"])
    for path in sandbox.iterdir():
        if path.is_file() and not path.name.startswith("_"):
            shutil.copy(path, folder / path.name)
    shutil.rmtree(sandbox, ignore_errors=True)
    if sandbox.parent.name == "submit_test" and not any(sandbox.parent.iterdir()):
        sandbox.parent.rmdir()  # aiida's dry-run parent folder in the working directory, if we made it empty
    builder.metadata.dry_run = False
    builder.metadata.store_provenance = True


def run_bare(folder: Path, executable: str) -> tuple[float, float]:
    """Run ``lmp -in input.in`` by hand in ``folder``; returns (wall, LAMMPS loop) seconds."""
    start = time.perf_counter()
    done = subprocess.run([executable, "-in", "input.in"], cwd=folder, capture_output=True, text=True, check=True)
    return time.perf_counter() - start, loop_seconds(done.stdout)


def run_aiida(builder) -> tuple[float, float, object]:
    """Run an ``nanoos.md`` builder here, end to end; returns (wall, LAMMPS loop) seconds and the node."""
    from aiida_nanoos.cli.utils import run_in_foreground

    start = time.perf_counter()
    node = run_in_foreground(builder)
    wall = time.perf_counter() - start
    if not node.is_finished_ok:
        raise click.ClickException(f"MD through AiiDA failed: {node.exit_message}")
    screen = node.outputs.retrieved.base.repository.get_object_content("lammps.out")
    return wall, loop_seconds(screen), node


@click.command()
@click.option("--potential", "potential_pk", type=int, default=None, help="PK of a SNAP potential (default: newest).")
@click.option("--atoms", default=1000, show_default=True, help="Size of the Si cell (atoms, at least).")
@click.option("--seconds", default=60.0, show_default=True, help="Target length of each run (s).")
@click.option("--repeats", default=2, show_default=True, help="Runs of each kind, interleaved; medians are reported.")
@click.option("--temperature", default=600.0, show_default=True)
@options.json_output
def command(
    potential_pk: int | None, atoms: int, seconds: float, repeats: int, temperature: float, as_json: bool
) -> None:
    """Same SNAP MD input through AiiDA and with bare lmp, ~SECONDS each: throughput ratio (goal >= 0.95).

    Runs alternate (bare, AiiDA, AiiDA, bare, ...) so that a change in machine load hits both alike; the ratio is
    taken between medians. LAMMPS' own loop time is printed for both, so engine overhead and slower MD are told apart.
    """
    import os
    import statistics

    from aiida import load_profile, orm

    load_profile()
    potential = find_potential(potential_pk)
    executable = str(orm.load_code("lmp@localhost").filepath_executable)
    # calibrate the number of steps with a short run by hand
    builder, n_atoms = md_builder(potential, atoms, 50, temperature, "nvt", 1.0, 50, 50)
    with tempfile.TemporaryDirectory() as folder:
        write_inputs(builder, Path(folder))
        probe_seconds, _ = run_bare(Path(folder), executable)
    steps = max(100, int(round(50 * seconds / max(probe_seconds, 1e-3) / 100.0)) * 100)

    builder, n_atoms = md_builder(potential, atoms, steps, temperature, "nvt", 1.0, 100, steps)
    aiida_runs, bare_runs = [], []
    with tempfile.TemporaryDirectory() as folder:
        write_inputs(builder, Path(folder))
        for index in range(repeats):
            for kind in ("bare", "aiida") if index % 2 == 0 else ("aiida", "bare"):
                if kind == "aiida":
                    wall, loop, _ = run_aiida(builder)
                    aiida_runs.append((wall, loop))
                else:
                    bare_runs.append(run_bare(Path(folder), executable))
    aiida_wall = statistics.median(w for w, _ in aiida_runs)
    bare_wall = statistics.median(w for w, _ in bare_runs)
    aiida_loop = statistics.median(loop for _, loop in aiida_runs)
    bare_loop = statistics.median(loop for _, loop in bare_runs)
    atom_steps = n_atoms * steps
    figures = {
        "potential_pk": potential.pk,
        "atoms": n_atoms,
        "steps": steps,
        "repeats": repeats,
        "aiida_wall_s": [round(w, 2) for w, _ in aiida_runs],
        "bare_wall_s": [round(w, 2) for w, _ in bare_runs],
        "aiida_lammps_loop_s": [round(loop, 2) for _, loop in aiida_runs],
        "bare_lammps_loop_s": [round(loop, 2) for _, loop in bare_runs],
        "aiida_atom_steps_per_s": atom_steps / aiida_wall,
        "bare_atom_steps_per_s": atom_steps / bare_wall,
        "throughput_ratio": bare_wall / aiida_wall,
        "engine_overhead_s": aiida_wall - aiida_loop,
        "bare_overhead_s": bare_wall - bare_loop,
        "loop_ratio": bare_loop / aiida_loop,
        # the same ratio if both LAMMPS loops had taken the bare median: what the engine alone costs
        "engine_only_ratio": bare_wall / (bare_wall + (aiida_wall - aiida_loop) - (bare_wall - bare_loop)),
        "goal_ratio": 0.95,
        "load_average": os.getloadavg()[0],
    }
    if as_json:
        click.echo(json.dumps(figures))
        return
    click.echo(
        f"SNAP MD ({potential.descriptor_type} PotentialData<{potential.pk}>), {n_atoms} Si atoms, {steps} NVT "
        f"steps, one core, {repeats} interleaved runs each (load average {figures['load_average']:.2f})"
    )
    click.echo(
        f"  through AiiDA (nanoos.md, end to end)  median {aiida_wall:8.2f} s  "
        f"{figures['aiida_atom_steps_per_s']:10.4g} atom-steps/s  (runs {figures['aiida_wall_s']}, "
        f"LAMMPS loop {figures['aiida_lammps_loop_s']})"
    )
    click.echo(
        f"  bare lmp, same input                   median {bare_wall:8.2f} s  "
        f"{figures['bare_atom_steps_per_s']:10.4g} atom-steps/s  (runs {figures['bare_wall_s']}, "
        f"LAMMPS loop {figures['bare_lammps_loop_s']})"
    )
    click.echo(
        f"  AiiDA time outside the LAMMPS loop      {figures['engine_overhead_s']:8.2f} s "
        f"(bare: {figures['bare_overhead_s']:.2f} s)"
    )
    click.echo(
        f"  throughput ratio AiiDA / bare           {figures['throughput_ratio']:8.3f}   (goal >= 0.95: "
        f"{'met' if figures['throughput_ratio'] >= 0.95 else 'MISSED'})"
    )
    click.echo(
        f"  LAMMPS loop ratio (bare / AiiDA)        {figures['loop_ratio']:8.3f}   (1 = the MD itself ran equally fast)"
    )
    click.echo(
        f"  engine-only ratio (loops equalised)     {figures['engine_only_ratio']:8.3f}   (the engine's own cost on a "
        f"{bare_wall:.0f} s run)"
    )
