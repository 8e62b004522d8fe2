"""``aiida-nanoos setup`` / ``doctor``: real profiles, idempotent, and clear about what is missing."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiida import orm

from aiida_nanoos.setup.profile import SetupReport, configure_resources

BIN = Path(sys.executable).parent


def nanoos(*args, aiida_path: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the installed ``aiida-nanoos`` command as a user would, with its own AiiDA folder."""
    environment = dict(os.environ, AIIDA_PATH=str(aiida_path), **(env or {}))
    return subprocess.run(
        [str(BIN / "aiida-nanoos"), *args], env=environment, capture_output=True, text=True, timeout=timeout
    )


def count_entities() -> dict[str, int]:
    return {
        entity.__name__: orm.QueryBuilder().append(entity).count()
        for entity in (orm.Node, orm.Group, orm.Computer, orm.AuthInfo)
    }


def test_configure_resources_twice_changes_nothing(nanoos_resources):
    assert nanoos_resources["report"].lines  # the session fixture already ran it once
    before = count_entities()
    report = configure_resources(SetupReport())
    assert not report.changed, report.lines
    assert count_entities() == before
    family = orm.load_group("nanoos/PBE/US")
    sources = family.base.extras.get("nanoos_sources")["elements"]
    assert set(family.elements) >= set("H B C N O Al Si P Ga Ge As Mo W S Se Te".split())  # the list
    assert all(sources[element]["source"] for element in family.elements)  # where every file came from
    assert family.get_recommended_cutoffs(elements=("Si",), unit="Ry")[0] > 0
    localhost = orm.load_computer("localhost")  # no login shell (user start-up files) per transport command
    assert localhost.get_authinfo(orm.User.collection.get_default()).get_auth_params()["use_login_shell"] is False


def test_setup_command_from_scratch_then_again(tmp_path):
    start = time.perf_counter()
    first = nanoos("setup", aiida_path=tmp_path)
    elapsed = time.perf_counter() - start
    assert first.returncode == 0, first.stderr
    assert "profile `nanoos`: created (core.sqlite_dos, broker core.zeromq)" in first.stdout
    assert "code `pw@localhost`: created" in first.stdout
    print(f"setup from scratch: {elapsed:.1f} s")
    second = nanoos("setup", aiida_path=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "already set up, nothing changed" in second.stdout
    assert "created" not in second.stdout
    doctor = nanoos("doctor", aiida_path=tmp_path)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "[     ok] pw.x: /usr/bin/pw.x (QE 6.7" in doctor.stdout
    assert "ML-SNAP" in doctor.stdout
    assert "[     ok] pseudo family nanoos/PBE/US" in doctor.stdout


def test_missing_pw_is_named_with_its_fix(tmp_path):
    """Fault injection: a PATH without Quantum ESPRESSO."""
    no_qe = tmp_path / "bin"
    no_qe.mkdir()
    for tool in ("bash", "sh", "env"):
        os.symlink(shutil.which(tool), no_qe / tool)
    env = {"PATH": f"{BIN}:{no_qe}"}
    setup = nanoos("setup", aiida_path=tmp_path / "aiida", env=env)
    assert setup.returncode != 0
    assert "`pw.x` not found: install Quantum ESPRESSO (Debian: apt-get install quantum-espresso)" in setup.stderr
    assert not (tmp_path / "aiida").exists() or not any((tmp_path / "aiida").rglob("*.sqlite*"))
    doctor = nanoos("doctor", aiida_path=tmp_path / "aiida", env=env)
    assert doctor.returncode == 1
    assert "[MISSING] pw.x: not found" in doctor.stdout
    assert "[MISSING] ld1.x: not found" in doctor.stdout
    as_json = nanoos("doctor", "--json", aiida_path=tmp_path / "aiida", env=env)
    assert as_json.returncode == 1
    checks = {check["name"]: check for check in json.loads(as_json.stdout)}
    assert checks["pw.x"]["ok"] is False and checks["pw.x"]["required"] is True
    assert "apt-get install quantum-espresso" in checks["pw.x"]["fix"]


def postgres_and_rabbitmq_available() -> str | None:
    missing = [tool for tool in ("pg_ctlcluster", "rabbitmq-server") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (make test installs them when run as root)"
    if os.geteuid() != 0 and shutil.which("runuser") is None:
        return "needs root to create the PostgreSQL role"
    return None


@pytest.mark.skipif(postgres_and_rabbitmq_available() is not None, reason=str(postgres_and_rabbitmq_available()))
def test_postgres_rabbitmq_profile_labels_through_the_daemon(tmp_path):
    """The daemon profile: PostgreSQL storage + RabbitMQ broker, services started if down, pw.x via the daemon."""
    aiida_path = tmp_path / "aiida"
    profile = f"nanoos-psql-test-{os.getpid()}"
    setup = nanoos("setup", "--postgres", "--profile-name", profile, aiida_path=aiida_path)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert f"profile `{profile}`: created (core.psql_dos, broker core.rabbitmq)" in setup.stdout
    again = nanoos("setup", "--postgres", "--profile-name", profile, aiida_path=aiida_path)
    assert "already set up, nothing changed" in again.stdout, again.stdout + again.stderr

    env = dict(os.environ, AIIDA_PATH=str(aiida_path))
    verdi = str(BIN / "verdi")
    subprocess.run([verdi, "-p", profile, "daemon", "start", "1"], env=env, check=True, capture_output=True)
    try:
        config = tmp_path / "label.yaml"
        config.write_text(
            "configurations: si.extxyz\nprotocol: fast\nelectronic_type: insulator\n"
            "overrides: {base: {kpoints_distance: 0.6, pw: {parameters: {SYSTEM: {ecutwfc: 20, ecutrho: 160}}}}}\n"
        )
        import ase.io

        ase.io.write(tmp_path / "si.extxyz", [bulk_si(5.40), bulk_si(5.46)])
        submitted = nanoos("-p", profile, "label", "run", str(config), "--submit", aiida_path=aiida_path)
        assert submitted.returncode == 0, submitted.stdout + submitted.stderr
        pk = submitted.stdout.split("<")[1].split(">")[0]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            state = subprocess.run(
                [verdi, "-p", profile, "process", "show", pk], env=env, capture_output=True, text=True
            ).stdout
            if "Finished" in state or "Excepted" in state or "Killed" in state:
                break
            time.sleep(2)
        assert "Finished [0]" in state, state
        listing = nanoos("-p", profile, "trainingset", "list", aiida_path=aiida_path)
        assert "      2  " in listing.stdout and "Si" in listing.stdout, listing.stdout
    finally:
        subprocess.run([verdi, "-p", profile, "daemon", "stop"], env=env, capture_output=True)
        subprocess.run(
            [verdi, "profile", "delete", "--force", "--delete-data", profile],
            env=env,
            capture_output=True,
        )


def bulk_si(a: float):
    from ase.build import bulk

    return bulk("Si", "diamond", a=a)


# ------------------------------------------------------------------------------------------- remote computers
COMPUTER_TEMPLATES = sorted((Path(__file__).resolve().parent.parent / "examples" / "computers").glob("*.yaml"))


def test_computer_templates_cover_slurm_pbspro_direct_with_the_four_codes():
    from aiida_nanoos.setup.computer import load_computer_config

    schedulers = set()
    for path in COMPUTER_TEMPLATES:
        config = load_computer_config(path)
        schedulers.add(config["computer"]["scheduler"])
        plugins = {code["default_calc_job_plugin"] for code in config["codes"].values()}
        assert plugins == {"quantumespresso.pw", "lammps.base", "nanoos.potential.train", "nanoos.model.train"}, path
    assert schedulers == {"nanoos.slurm", "core.pbspro", "core.direct"}


def test_computer_template_sections_are_verdi_config_files():
    """`computer` and `configure` use the option names of `verdi computer setup` / `configure core.ssh`."""
    import yaml
    from aiida.cmdline.commands.cmd_computer import computer_setup
    from aiida.plugins import TransportFactory

    setup_options = {param.name for param in computer_setup.params}
    for path in COMPUTER_TEMPLATES:
        raw = yaml.safe_load(path.read_text())
        assert set(raw["computer"]) <= setup_options, path
        assert set(raw["configure"]) <= set(TransportFactory(raw["computer"]["transport"]).auth_options), path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"computer": {"scheduler": "core.slurmm"}}, "computer.scheduler: 'core.slurmm' is not one of"),
        ({"computer": {"work_dir": "scratch/aiida"}}, "computer.work_dir: must be an absolute path"),
        ({"computer": {"hostname": None}}, "computer.hostname: required"),
        ({"computer": {"mpirun_command": "srun"}}, "computer.mpirun_command"),
        ({"computer": {"mpiprocs_per_machine": "48"}}, "computer.mpiprocs_per_machine: expected int"),
        ({"configure": {"port": 0}}, "configure.port: must be an integer in 1..65535"),
        ({"configure": {"pasword": "x"}}, "configure (core.ssh): unknown key(s) pasword"),
        ({"configure": {"key_policy": "Trust"}}, "configure.key_policy"),
        ({"codes": {"pw": {"filepath_executable": "pw.x"}}}, "codes.pw.filepath_executable: must be an absolute"),
        ({"codes": {"pw": {"default_calc_job_plugin": "qe.pw"}}}, "codes.pw.default_calc_job_plugin: 'qe.pw'"),
        ({"codes": {"lmp": {"with_mpi": "yes"}}}, "codes.lmp.with_mpi: expected bool"),
        ({"nodes": {}}, "unknown section(s) nodes"),
    ],
)
def test_computer_config_errors_name_the_field(change, message):
    import copy

    import yaml

    from aiida_nanoos.setup.computer import ComputerConfigError, validate_computer_config

    config = yaml.safe_load((COMPUTER_TEMPLATES[0].parent / "slurm.yaml").read_text())
    for section, values in change.items():
        if section not in config:
            config[section] = values
            continue
        for key, value in values.items():
            if isinstance(value, dict):
                config[section][key] = {**copy.deepcopy(config[section][key]), **value}
            else:
                config[section][key] = value
    with pytest.raises(ComputerConfigError) as error:
        validate_computer_config(config)
    assert message in str(error.value)


def test_setup_computer_twice_changes_nothing(aiida_profile):
    from aiida_nanoos.setup.computer import load_computer_config, setup_computer

    config = load_computer_config(COMPUTER_TEMPLATES[0].parent / "pbspro.yaml")
    first = setup_computer(config)
    assert first.changed
    before = count_entities()
    second = setup_computer(config)
    assert not second.changed, second.lines
    assert count_entities() == before
    computer = orm.load_computer("my-pbs")
    assert (computer.transport_type, computer.scheduler_type) == ("core.ssh", "core.pbspro")
    assert computer.get_mpirun_command() == ["mpiexec", "-n", "{tot_num_mpiprocs}"]
    auth = computer.get_authinfo(orm.User.collection.get_default()).get_auth_params()
    assert auth["username"] == "myname" and auth["key_filename"] == str(Path("~/.ssh/id_ed25519").expanduser())
    pw = orm.load_code("pw@my-pbs")
    assert pw.with_mpi is True and "module load quantum-espresso/7.2" in pw.prepend_text
    assert str(pw.filepath_executable) == "/opt/apps/qe/7.2/bin/pw.x"


def test_setup_command_refuses_a_bad_computer_file(tmp_path):
    bad = tmp_path / "cluster.yaml"
    bad.write_text(
        "computer:\n  label: x\n  hostname: h\n  transport: core.ssh\n  scheduler: core.sge2\n  work_dir: /w\n"
    )
    result = nanoos("setup", "--computer", str(bad), aiida_path=tmp_path / "aiida", timeout=120)
    assert result.returncode != 0
    assert "computer.scheduler: 'core.sge2' is not one of" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "aiida" / ".aiida" / "config.json").exists()  # refused before any profile was made
