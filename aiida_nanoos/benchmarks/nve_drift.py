"""Energy conservation of a fitted SNAP potential: NVE MD through ``nanoos.md``, drift of the total energy.

A smooth, well-fitted potential integrated with a sensible timestep conserves the total energy up to small
oscillations; a systematic drift (meV/atom/ps) reveals discontinuities (cutoff, switching) or a timestep too long.
"""

from __future__ import annotations

import json

import click

from aiida_nanoos.benchmarks import options


@click.command()
@click.option("--potential", "potential_pk", type=int, default=None, help="PK of a SNAP potential (default: newest).")
@click.option("--atoms", default=216, show_default=True, help="Size of the Si cell (atoms, at least).")
@click.option("--steps", default=5000, show_default=True)
@click.option("--timestep-fs", default=1.0, show_default=True)
@click.option("--temperature", default=600.0, show_default=True, help="Initial velocities (K); settles near half.")
@options.json_output
def command(
    potential_pk: int | None, atoms: int, steps: int, timestep_fs: float, temperature: float, as_json: bool
) -> None:
    """NVE MD with a fitted Si SNAP; linear drift of the total energy in meV/atom/ps (goal < 1)."""
    import numpy as np
    from aiida import load_profile

    from aiida_nanoos.benchmarks.md_throughput import find_potential, md_builder
    from aiida_nanoos.cli.utils import run_in_foreground
    from aiida_nanoos.potentials.md_stability import energy_drift

    load_profile()
    potential = find_potential(potential_pk)
    builder, n_atoms = md_builder(potential, atoms, steps, temperature, "nve", timestep_fs, 10, steps)
    node = run_in_foreground(builder)
    if not node.is_finished_ok:
        raise click.ClickException(f"NVE MD failed ({node.exit_status}): {node.exit_message}")
    series = node.outputs.time_dependent_computes
    step = series.get_array("Step")
    total = series.get_array("TotEng")
    temperature_series = series.get_array("Temp")
    time_ps = step * timestep_fs / 1000.0
    drift = energy_drift(time_ps, total, n_atoms)
    fluctuation = float(np.std(total) / n_atoms * 1000.0)
    figures = {
        "potential_pk": potential.pk,
        "calculation_pk": node.pk,
        "atoms": n_atoms,
        "steps": steps,
        "timestep_fs": timestep_fs,
        "duration_ps": float(time_ps[-1] - time_ps[0]),
        "mean_temperature_K": float(np.mean(temperature_series[len(temperature_series) // 5 :])),
        "drift_meV_per_atom_per_ps": drift,
        "abs_drift_meV_per_atom_per_ps": abs(drift),
        "total_energy_std_meV_per_atom": fluctuation,
        "goal_abs_drift": 1.0,
    }
    if as_json:
        click.echo(json.dumps(figures))
        return
    click.echo(
        f"NVE, {n_atoms} Si atoms, SNAP PotentialData<{potential.pk}>, {steps} x {timestep_fs} fs "
        f"({figures['duration_ps']:.2f} ps), mean T {figures['mean_temperature_K']:.0f} K (CalcJob {node.pk})"
    )
    click.echo(
        f"  total-energy drift        {drift:+.2e} meV/atom/ps   (goal |drift| < 1: "
        f"{'met' if abs(drift) < 1 else 'MISSED'})"
    )
    click.echo(f"  total-energy fluctuation  {fluctuation:.4f} meV/atom (std)")
