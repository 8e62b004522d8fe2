"""``nanoos.slurm``: aiida-core's SLURM scheduler, but a calculation's job is submitted at most once.

A daemon worker killed after ``sbatch`` returned but before the job id was saved in the calculation's checkpoint runs
the CalcJob's submit task again when the calculation is continued: the same pw.x input then runs twice on the cluster
(found by ``aiida-nanoos benchmark reliability``: SLURM jobs 391 and 392 in one working directory). Here ``sbatch``
writes its answer into the working directory on the cluster in the same remote shell, so a repeated submission of
that directory returns the job already submitted instead of a second one.
"""

from __future__ import annotations

import re

from aiida.common.escaping import escape_for_bash
from aiida.engine import ExitCode
from aiida.schedulers import SchedulerError
from aiida.schedulers.plugins.slurm import SlurmScheduler

#: In the working directory on the cluster: what ``sbatch`` printed for this calculation's job.
SUBMITTED = ".nanoos_submitted"
SUBMITTED_LINE = re.compile(r"^Submitted batch job (?P<job_id>\d+)")


def submit_once_command(submit: str) -> str:
    """A shell command for the working directory: print what the first submission printed if there was one, else run
    ``submit`` and keep its output (written before anything is printed, so a lost connection cannot lose it)."""
    return (
        f"if [ -s {SUBMITTED} ]; then cat {SUBMITTED}; echo 'submitted before: not again' >&2; "
        f"else {submit} > {SUBMITTED}.part; status=$?; "
        f"if [ $status -eq 0 ]; then mv {SUBMITTED}.part {SUBMITTED}; fi; "
        f"cat {SUBMITTED}.part {SUBMITTED} 2>/dev/null; rm -f {SUBMITTED}.part; exit $status; fi"
    )


class SubmitOnceSlurmScheduler(SlurmScheduler):
    """``core.slurm`` (same resources, job states and exit codes) whose ``submit_job`` never submits the same working
    directory twice."""

    def submit_job(self, working_directory: str, filename: str) -> str | ExitCode:
        """Submit ``filename`` in ``working_directory`` unless this directory's job was submitted already; returns the
        job id (the earlier one on a repeated call)."""
        from aiida.engine import CalcJob

        command = submit_once_command(f"sbatch {escape_for_bash(filename)}")
        status, stdout, stderr = self.transport.exec_command_wait(command, workdir=working_directory)
        if status != 0:
            if "Invalid account" in stderr:
                return CalcJob.exit_codes.ERROR_SCHEDULER_INVALID_ACCOUNT
            raise SchedulerError(f"sbatch failed (exit {status}) in {working_directory}: {stderr.strip() or stdout}")
        for line in stdout.splitlines():
            match = SUBMITTED_LINE.match(line.strip())
            if match:
                if "submitted before" in stderr:
                    self.logger.warning(f"job {match['job_id']} of {working_directory} was submitted before: not again")
                return match["job_id"]
        raise SchedulerError(f"sbatch printed no job id in {working_directory}: {stdout!r} {stderr!r}")
