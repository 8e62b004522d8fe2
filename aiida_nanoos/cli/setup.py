"""``aiida-nanoos setup`` and ``aiida-nanoos doctor``."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import click

from aiida_nanoos.pseudos import FAMILY_LABEL

from .params import JSON, NanoosCommand, echo_json


@click.command(cls=NanoosCommand)
@click.option("--postgres", is_flag=True, help="PostgreSQL storage + RabbitMQ broker (started if installed but down).")
@click.option("--profile-name", default=None, help="Profile name (default: nanoos, or nanoos-psql with --postgres).")
@click.option("--family", "family_label", default=FAMILY_LABEL, show_default=True, help="Pseudo family label.")
@click.option(
    "--computer",
    "computer_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A remote computer and its codes from a YAML file (templates: examples/computers/); repeatable.",
)
@click.option(
    "--test-cluster",
    is_flag=True,
    help="Set up the local single-node SLURM cluster over SSH (root: apt, munge, slurmctld/slurmd, sshd, the "
    "nanoos-hpc account) and its computer `slurm-test` with codes.",
)
def setup(
    postgres: bool, profile_name: str | None, family_label: str, computer_files: tuple[Path, ...], test_cluster: bool
) -> None:
    """Create or reuse the profile, the localhost computer, the pw and lmp codes and the pseudo family.

    With --computer FILE also a remote computer (SSH + SLURM / PBS Pro / direct) and its pw.x, lmp and training
    codes. Safe to rerun: whatever exists is reused and reported, nothing is replaced.
    """
    from aiida_nanoos.setup.cluster import ClusterError, ClusterUnavailable, ensure_test_cluster
    from aiida_nanoos.setup.computer import (
        ComputerConfigError,
        load_computer_config,
        setup_computer,
        test_cluster_config,
    )
    from aiida_nanoos.setup.profile import SetupError
    from aiida_nanoos.setup.profile import setup as run_setup
    from aiida_nanoos.setup.services import ServiceError

    start = time.perf_counter()
    try:
        configs = [load_computer_config(path) for path in computer_files]
    except ComputerConfigError as error:
        raise click.ClickException(str(error)) from error
    cluster_lines = []
    if test_cluster:
        try:
            info = ensure_test_cluster()
        except (ClusterUnavailable, ClusterError) as error:
            raise click.ClickException(f"SLURM test cluster: {error}") from error
        cluster_lines = info.lines
        configs.append(test_cluster_config(info))
    try:
        report = run_setup(postgres=postgres, profile_name=profile_name, family_label=family_label)
        report.lines[:0] = cluster_lines
        for config in configs:
            setup_computer(config, report)
    except (SetupError, ServiceError) as error:
        raise click.ClickException(str(error)) from error
    for line in report.lines:
        click.echo(f"  {line}")
    state = "set up" if report.changed else "already set up, nothing changed"
    click.echo(f"aiida-nanoos: {state} ({time.perf_counter() - start:.1f} s)")


@click.command(cls=NanoosCommand)
@click.option("--family", "family_label", default=FAMILY_LABEL, show_default=True, help="Pseudo family label.")
@JSON
@click.pass_context
def doctor(ctx: click.Context, family_label: str, as_json: bool) -> None:
    """Check every component, print versions, and for what is missing the fix; exit 1 if something required is."""
    import os

    from aiida_nanoos.setup.doctor import run_checks

    profile = getattr(ctx.obj, "profile", None)  # given with -p (loaded by it)
    if profile is not None:
        os.environ["AIIDA_PROFILE"] = profile.name
    checks = run_checks(family_label)
    failed_required = any(check.required and not check.ok for check in checks)
    if as_json:
        echo_json([dataclasses.asdict(check) for check in checks])
        sys.exit(1 if failed_required else 0)
    for check in checks:
        mark = "ok" if check.ok else ("MISSING" if check.required else "warning")
        click.echo(f"[{mark:>7}] {check.name}: {check.detail}")
        if not check.ok and check.fix:
            click.echo(f"          fix: {check.fix}")
    sys.exit(1 if failed_required else 0)
