"""Start the local PostgreSQL and RabbitMQ services when they are installed but down (no AiiDA import).

A daemon-backed profile needs both services; on a workstation they are often installed but not running. These
helpers start them the way ENVIRONMENT.md found to work on Debian (``pg_ctlcluster``, ``rabbitmq-server -detached``
with ``consumer_timeout`` disabled so long DFT jobs are not cut off by the broker).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

POSTGRES_PORT = 5432
RABBITMQ_PORT = 5672
RABBITMQ_ADVANCED_CONFIG = "[{rabbit,[{consumer_timeout,undefined}]}].\n"


class ServiceError(RuntimeError):
    """A service is missing or could not be started; the message says how to fix it."""


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def is_root() -> bool:
    return os.geteuid() == 0


def ensure_postgres(timeout: float = 60.0) -> str:
    """Make sure PostgreSQL listens on localhost; start the installed cluster if it is down. Returns a status line."""
    if port_open(POSTGRES_PORT):
        return "PostgreSQL: running on 127.0.0.1:5432"
    if shutil.which("pg_lsclusters") is None or shutil.which("pg_ctlcluster") is None:
        raise ServiceError(
            "PostgreSQL is not installed: install the Debian package `postgresql` (apt-get install postgresql)"
        )
    clusters = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=False).stdout
    if not clusters.strip():
        raise ServiceError("PostgreSQL has no cluster: create one with `pg_createcluster 15 main`")
    version, name = clusters.split()[:2]
    command = ["pg_ctlcluster", version, name, "start"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    deadline = time.monotonic() + timeout
    while not port_open(POSTGRES_PORT):
        if time.monotonic() > deadline:
            raise ServiceError(f"`{' '.join(command)}` did not start PostgreSQL: {result.stderr.strip()}")
        time.sleep(0.5)
    return f"PostgreSQL: started cluster {version}/{name}"


def ensure_rabbitmq(config_dir: Path, timeout: float = 120.0) -> str:
    """Make sure RabbitMQ listens on localhost; start it with ``consumer_timeout`` disabled if it is down."""
    if port_open(RABBITMQ_PORT):
        return "RabbitMQ: running on 127.0.0.1:5672"
    if shutil.which("rabbitmq-server") is None:
        raise ServiceError(
            "RabbitMQ is not installed: install the Debian package `rabbitmq-server` (apt-get install rabbitmq-server)"
        )
    config_dir.mkdir(parents=True, exist_ok=True)
    advanced = config_dir / "rabbitmq-advanced.config"
    advanced.write_text(RABBITMQ_ADVANCED_CONFIG)
    advanced.chmod(0o644)
    config_dir.chmod(config_dir.stat().st_mode | 0o055)
    env = dict(os.environ, RABBITMQ_ADVANCED_CONFIG_FILE=str(advanced))
    subprocess.run(["rabbitmq-server", "-detached"], env=env, capture_output=True, check=False)
    deadline = time.monotonic() + timeout
    while True:
        ready = subprocess.run(["rabbitmqctl", "await_startup"], capture_output=True, check=False, timeout=timeout)
        if ready.returncode == 0 and port_open(RABBITMQ_PORT):
            return "RabbitMQ: started with consumer_timeout disabled"
        if time.monotonic() > deadline:
            raise ServiceError("RabbitMQ did not start: see `rabbitmq-diagnostics status`")
        time.sleep(2)


def run_as_postgres(sql: str) -> str:
    """Run SQL as the ``postgres`` superuser through the local socket (needs root or the postgres user)."""
    if is_root():
        command = ["runuser", "-u", "postgres", "--", "psql", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql]
    else:
        command = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")
    if result.returncode != 0:
        raise ServiceError(f"PostgreSQL refused `{sql.split()[0]} ...`: {result.stderr.strip()}")
    return result.stdout.strip()


def ensure_postgres_database(name: str, user: str, password: str) -> bool:
    """Create the role and database for a profile unless they exist; returns whether anything was created.

    The database uses the C.UTF-8 locale the machine has (``verdi presto --use-postgres`` hard-codes en_US.UTF-8).
    """
    created = False
    if run_as_postgres(f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'") != "1":
        run_as_postgres(f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'")
        created = True
    else:
        run_as_postgres(f"ALTER ROLE \"{user}\" PASSWORD '{password}'")
    if run_as_postgres(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") != "1":
        run_as_postgres(
            f'CREATE DATABASE "{name}" OWNER "{user}" ENCODING \'UTF8\' '
            "LC_COLLATE='C.UTF-8' LC_CTYPE='C.UTF-8' TEMPLATE=template0"
        )
        created = True
    return created


def drop_postgres_database(name: str, user: str) -> None:
    """Remove a profile's database and role (as the postgres superuser, like their creation), connections or not."""
    run_as_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    run_as_postgres(f'DROP ROLE IF EXISTS "{user}"')
