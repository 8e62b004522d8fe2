"""The daemon side of the reliability benchmark (``benchmark reliability``): its workers, killed with SIGKILL and
replaced, and waiting for the run to move on."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class ReliabilityError(RuntimeError):
    """The run could not be carried out (services, cluster, daemon); the message says what failed."""


@dataclass
class KillEvent:
    """One round of SIGKILLs: which workers died and how new ones came."""

    at_seconds: float
    killed: list[int]
    replaced_by: list[int]
    how: str
    seconds_to_replace: float
    #: what the run's live processes were doing at the kill (``process_label: process_status``)
    interrupted: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ daemon
def worker_pids(client) -> list[int]:
    """PIDs of the daemon workers, from the daemon's own statistics (``get_worker_info``)."""
    return sorted(int(pid) for pid in client.get_worker_info(timeout=60).get("info", {}))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def restart_daemon(client, workers: int, timeout: int = 180) -> None:
    """A daemon with exactly ``workers`` fresh workers (stopped first when running: they re-read the config)."""
    if client.is_daemon_running:
        client.stop_daemon(wait=True, timeout=timeout)
    client.start_daemon(number_workers=workers, timeout=timeout)
    wait_until(lambda: len(worker_pids(client)) == workers, timeout, f"{workers} daemon workers")


def kill_workers(client, workers: int, start: float, grace: float = 20.0, timeout: float = 180.0) -> KillEvent:
    """SIGKILL every worker now; wait for ``workers`` new ones (circus respawns them; after ``grace`` seconds
    without, the client API adds the missing ones)."""
    killed = worker_pids(client)
    at = time.perf_counter() - start
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    how, incremented = "respawned by circus", False
    begin = time.perf_counter()
    while True:
        fresh = [pid for pid in worker_pids(client) if pid not in killed and _alive(pid)]
        if len(fresh) >= workers:
            return KillEvent(round(at, 2), killed, fresh, how, round(time.perf_counter() - begin, 2))
        waited = time.perf_counter() - begin
        if waited > grace and not incremented:
            client.increase_workers(workers - len(fresh), timeout=60)
            how, incremented = "added with increase_workers", True
        if waited > timeout:
            raise ReliabilityError(f"no new daemon workers {timeout:.0f} s after killing {killed}")
        time.sleep(0.3)


def wait_until(condition: Callable[[], bool], timeout: float, what: str, interval: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ReliabilityError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
