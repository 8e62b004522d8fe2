"""``aiida-nanoos setup --computer cluster.yaml``: a remote computer and its codes from one YAML file, idempotently.

The file has three sections whose keys are those of aiida-core's own commands, so each section saved on its own is
also a ``--config`` file for them:

* ``computer``: ``verdi computer setup`` (label, hostname, transport, scheduler, work_dir, mpirun_command, ...);
* ``configure``: ``verdi computer configure <transport>`` (username, port, key_filename, key_policy, ...);
* ``codes``: ``{label: {filepath_executable, default_calc_job_plugin, with_mpi, prepend_text, ...}}`` as for
  ``verdi code create core.code.installed`` (the computer is the one above);

plus an optional ``settings`` section (``minimum_job_poll_interval`` seconds, ``default_mpiprocs_per_machine``).
Templates: ``examples/computers/{slurm,pbspro,direct}.yaml``. Only paths and names are stored: a key file is referred
to by its path, never read.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from aiida_nanoos.setup.profile import SetupError, SetupReport

COMPUTER_KEYS = {
    "label": str,
    "hostname": str,
    "description": str,
    "transport": str,
    "scheduler": str,
    "shebang": str,
    "work_dir": str,
    "mpirun_command": str,
    "mpiprocs_per_machine": int,
    "default_memory_per_machine": int,
    "use_double_quotes": bool,
    "prepend_text": str,
    "append_text": str,
}
REQUIRED_COMPUTER_KEYS = ("label", "hostname", "transport", "scheduler", "work_dir")
CODE_KEYS = {
    "filepath_executable": str,
    "default_calc_job_plugin": str,
    "description": str,
    "with_mpi": bool,
    "use_double_quotes": bool,
    "prepend_text": str,
    "append_text": str,
}
SETTINGS_KEYS = {"minimum_job_poll_interval": (int, float), "default_mpiprocs_per_machine": int}
SECTIONS = ("computer", "configure", "codes", "settings")


class ComputerConfigError(ValueError):
    """The computer YAML is invalid; the message names the field (``computer.scheduler``, ``codes.pw.with_mpi``)."""


def _entry_point_names(group: str) -> list[str]:
    return sorted(entry.name for entry in entry_points(group=group))


def _check_types(section: Mapping, allowed: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(section) - set(allowed))
    if unknown:
        raise ComputerConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
    for key, value in section.items():
        expected = allowed[key]
        if value is None:
            continue
        if expected is int and isinstance(value, bool) or not isinstance(value, expected):
            names = " or ".join(t.__name__ for t in expected) if isinstance(expected, tuple) else expected.__name__
            raise ComputerConfigError(f"{where}.{key}: expected {names}, got {value!r}")


def validate_computer_config(config: Any) -> dict:
    """The config with defaults filled in; :class:`ComputerConfigError` naming the field for anything wrong."""
    if not isinstance(config, Mapping):
        raise ComputerConfigError(f"a computer file is a mapping with sections {', '.join(SECTIONS)}")
    unknown = sorted(set(config) - set(SECTIONS))
    if unknown:
        raise ComputerConfigError(f"unknown section(s) {', '.join(unknown)}; allowed: {', '.join(SECTIONS)}")
    computer = dict(config.get("computer") or {})
    _check_types(computer, COMPUTER_KEYS, "computer")
    for key in REQUIRED_COMPUTER_KEYS:
        if not computer.get(key):
            raise ComputerConfigError(f"computer.{key}: required")
    transports = _entry_point_names("aiida.transports")
    if computer["transport"] not in transports:
        raise ComputerConfigError(
            f"computer.transport: {computer['transport']!r} is not one of {', '.join(transports)}"
        )
    schedulers = _entry_point_names("aiida.schedulers")
    if computer["scheduler"] not in schedulers:
        raise ComputerConfigError(
            f"computer.scheduler: {computer['scheduler']!r} is not one of {', '.join(schedulers)}"
        )
    if not PurePosixPath(computer["work_dir"].replace("{username}", "user")).is_absolute():
        raise ComputerConfigError(f"computer.work_dir: must be an absolute path, got {computer['work_dir']!r}")
    mpirun = computer.get("mpirun_command")
    if mpirun is not None and "{tot_num_mpiprocs}" not in mpirun and "{num_machines}" not in mpirun:
        raise ComputerConfigError(
            f"computer.mpirun_command: {mpirun!r} names no process count; use e.g. 'srun -n {{tot_num_mpiprocs}}'"
        )
    for key in ("mpiprocs_per_machine", "default_memory_per_machine"):
        if computer.get(key) is not None and computer[key] < 1:
            raise ComputerConfigError(f"computer.{key}: must be a positive integer, got {computer[key]}")

    from aiida.plugins import TransportFactory

    configure = dict(config.get("configure") or {})
    auth_options = dict.fromkeys(TransportFactory(computer["transport"]).auth_options, object)
    _check_types(configure, auth_options, f"configure ({computer['transport']})")
    if configure.get("port") is not None and not (isinstance(configure["port"], int) and 0 < configure["port"] < 65536):
        raise ComputerConfigError(f"configure.port: must be an integer in 1..65535, got {configure['port']!r}")
    if configure.get("key_policy") not in (None, "RejectPolicy", "WarningPolicy", "AutoAddPolicy"):
        raise ComputerConfigError(
            f"configure.key_policy: {configure['key_policy']!r} is not RejectPolicy, WarningPolicy or AutoAddPolicy"
        )

    codes = config.get("codes") or {}
    if not isinstance(codes, Mapping):
        raise ComputerConfigError(
            "codes: a mapping of code label to {filepath_executable, default_calc_job_plugin, ...}"
        )
    plugins = set(_entry_point_names("aiida.calculations"))
    checked_codes = {}
    for label, code in codes.items():
        where = f"codes.{label}"
        if not isinstance(code, Mapping):
            raise ComputerConfigError(f"{where}: a mapping with filepath_executable and default_calc_job_plugin")
        _check_types(code, CODE_KEYS, where)
        for key in ("filepath_executable", "default_calc_job_plugin"):
            if not code.get(key):
                raise ComputerConfigError(f"{where}.{key}: required")
        if not PurePosixPath(code["filepath_executable"]).is_absolute():
            raise ComputerConfigError(f"{where}.filepath_executable: must be an absolute path on the remote side")
        if code["default_calc_job_plugin"] not in plugins:
            raise ComputerConfigError(
                f"{where}.default_calc_job_plugin: {code['default_calc_job_plugin']!r} is not an installed CalcJob "
                f"(e.g. quantumespresso.pw, lammps.base, nanoos.potential.train, nanoos.model.train)"
            )
        checked_codes[str(label)] = dict(code)

    settings = dict(config.get("settings") or {})
    _check_types(settings, SETTINGS_KEYS, "settings")
    return {"computer": computer, "configure": configure, "codes": checked_codes, "settings": settings}


def load_computer_config(path: Path | str) -> dict:
    """Read and validate a computer YAML file."""
    try:
        config = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ComputerConfigError(f"cannot read {path}: {error}") from error
    return validate_computer_config(config)


def _ensure_computer(report: SetupReport, spec: dict, settings: dict):
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    label = spec["label"]
    fields = {
        "hostname": spec["hostname"],
        "transport_type": spec["transport"],
        "scheduler_type": spec["scheduler"],
        "workdir": spec["work_dir"],
    }
    try:
        computer = orm.load_computer(label)
    except NotExistent:
        computer = orm.Computer(label=label, description=spec.get("description") or "", **fields).store()
        report.add(f"computer `{label}`: created ({spec['transport']}, {spec['scheduler']}, {spec['hostname']})", True)
    else:
        current = {
            "hostname": computer.hostname,
            "transport_type": computer.transport_type,
            "scheduler_type": computer.scheduler_type,
            "workdir": computer.get_workdir(),
        }
        differing = [name for name, value in fields.items() if current[name] != value]
        note = f"; differs in {', '.join(differing)}: `verdi computer delete {label}` to re-create" if differing else ""
        report.add(f"computer `{label}`: exists ({computer.transport_type}, {computer.scheduler_type}{note})")
    updates = {
        "shebang": ("get_shebang", "set_shebang"),
        "mpirun_command": ("get_mpirun_command", "set_mpirun_command"),
        "mpiprocs_per_machine": ("get_default_mpiprocs_per_machine", "set_default_mpiprocs_per_machine"),
        "default_memory_per_machine": ("get_default_memory_per_machine", "set_default_memory_per_machine"),
        "use_double_quotes": ("get_use_double_quotes", "set_use_double_quotes"),
        "prepend_text": ("get_prepend_text", "set_prepend_text"),
        "append_text": ("get_append_text", "set_append_text"),
    }
    if "default_mpiprocs_per_machine" in settings:
        spec = {**spec, "mpiprocs_per_machine": settings["default_mpiprocs_per_machine"]}
    for key, (getter, setter) in updates.items():
        if key not in spec:
            continue
        value = spec[key].split() if key == "mpirun_command" else spec[key]
        if getattr(computer, getter)() != value:
            getattr(computer, setter)(value)
            report.add(f"computer `{label}`: {key} set", True)
    interval = settings.get("minimum_job_poll_interval")
    if interval is not None and computer.get_minimum_job_poll_interval() != interval:
        computer.set_minimum_job_poll_interval(interval)
        report.add(f"computer `{label}`: minimum_job_poll_interval {interval} s", True)
    return computer


def _ensure_configured(report: SetupReport, computer, configure: dict) -> None:
    from aiida import orm

    user = orm.User.collection.get_default()
    if configure.get("key_filename"):
        configure = {**configure, "key_filename": str(Path(configure["key_filename"]).expanduser())}
    if not computer.is_user_configured(user):
        computer.configure(user=user, **configure)
        report.add(f"computer `{computer.label}`: configured for {user.email}", True)
        return
    authinfo = computer.get_authinfo(user)
    current = authinfo.get_auth_params()
    if any(current.get(key) != value for key, value in configure.items()):
        authinfo.set_auth_params({**current, **configure})
        report.add(f"computer `{computer.label}`: configuration updated", True)
    else:
        report.add(f"computer `{computer.label}`: configured")


def _ensure_remote_code(report: SetupReport, computer, label: str, spec: dict):
    from aiida import orm
    from aiida.common.exceptions import NotExistent

    full_label = f"{label}@{computer.label}"
    try:
        code = orm.load_code(full_label)
    except NotExistent:
        code = orm.InstalledCode(
            computer=computer,
            filepath_executable=spec["filepath_executable"],
            label=label,
            default_calc_job_plugin=spec["default_calc_job_plugin"],
            description=spec.get("description") or f"{spec['default_calc_job_plugin']} on {computer.label}",
            with_mpi=spec.get("with_mpi"),
            use_double_quotes=spec.get("use_double_quotes", False),
            prepend_text=spec.get("prepend_text") or "",
            append_text=spec.get("append_text") or "",
        ).store()
        report.add(f"code `{full_label}`: created ({spec['filepath_executable']})", True)
        return code
    differing = [
        key
        for key, current in (
            ("filepath_executable", str(code.filepath_executable)),
            ("default_calc_job_plugin", code.default_calc_job_plugin),
            ("with_mpi", code.with_mpi),
            ("prepend_text", code.prepend_text),
        )
        if key in spec and spec[key] != current and not (key == "prepend_text" and not spec[key] and not current)
    ]
    note = f"; differs in {', '.join(differing)}: `verdi code delete {full_label}` to re-create" if differing else ""
    report.add(f"code `{full_label}`: exists ({code.filepath_executable}{note})")
    return code


def setup_computer(config: Mapping, report: SetupReport | None = None) -> SetupReport:
    """Create or reuse the computer, its configuration and its codes in the loaded profile."""
    report = report or SetupReport()
    try:
        checked = validate_computer_config(config)
    except ComputerConfigError as error:
        raise SetupError(f"computer config: {error}") from error
    computer = _ensure_computer(report, checked["computer"], checked["settings"])
    _ensure_configured(report, computer, checked["configure"])
    for label, spec in checked["codes"].items():
        _ensure_remote_code(report, computer, label, spec)
    return report


def test_cluster_config(info, label: str = "slurm-test") -> dict:
    """The computer YAML of the local SLURM test cluster (``setup.cluster.ensure_test_cluster``'s ``ClusterInfo``)."""
    venv = PurePosixPath(info.venv_bin)
    return {
        "computer": {
            "label": label,
            "hostname": info.hostname,
            "description": f"single-node SLURM test cluster as {info.username}, set up by aiida-nanoos",
            "transport": "core.ssh",
            "scheduler": "nanoos.slurm",
            "shebang": "#!/bin/bash",
            "work_dir": info.work_dir,
            "mpirun_command": f"{venv / 'mpirun'} -np {{tot_num_mpiprocs}}",
            "mpiprocs_per_machine": info.cpus,
            # Open MPI's session directory per job: two jobs of one user that start at the same instant on this
            # node both create /tmp/ompi.<host>.<uid>, and one of them fails ("File exists", pw.x never starts)
            "prepend_text": "export OMP_NUM_THREADS=1\n"
            'export OMPI_MCA_orte_tmpdir_base="/tmp/nanoos-ompi-${SLURM_JOB_ID:-$$}"\n'
            'mkdir -p "$OMPI_MCA_orte_tmpdir_base"',
        },
        "configure": {
            "username": info.username,
            "port": info.port,
            "key_filename": info.key_filename,
            "look_for_keys": False,
            "allow_agent": False,
            "key_policy": "AutoAddPolicy",
            "timeout": 30,
            "safe_interval": 0.2,
            "use_login_shell": False,
        },
        "settings": {"minimum_job_poll_interval": 1},
        "codes": {
            "pw": {"filepath_executable": "/usr/bin/pw.x", "default_calc_job_plugin": "quantumespresso.pw"},
            "lmp": {"filepath_executable": str(venv / "lmp"), "default_calc_job_plugin": "lammps.base"},
            "nanoos-train": {
                "filepath_executable": str(venv / "nanoos-train"),
                "default_calc_job_plugin": "nanoos.potential.train",
            },
            "nanoos-train-model": {
                "filepath_executable": str(venv / "nanoos-train-model"),
                "default_calc_job_plugin": "nanoos.model.train",
            },
        },
    }


test_cluster_config.__test__ = False  # not a pytest test despite its name
