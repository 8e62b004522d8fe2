"""Why an evaluation failed, in one line a user can act on: what the scheduler, the operating system or the code
said, then which job and which work chain gave up.

``PwBaseWorkChain<12> 402`` says only that something failed. The reason is usually written somewhere the
calculation retrieved: SLURM's ``*** JOB 123 ON node CANCELLED AT ... DUE TO TIME LIMIT ***`` in the job's stderr,
the shell's ``Segmentation fault`` for a crashed executable, ``No space left on device`` from whatever wrote to a
full disk, pw.x's ``Error in routine ...``. :func:`evaluation_failure` finds the calculation that failed last under
an evaluation and puts what it said first, e.g. ``SLURM job 123 CANCELLED: PwCalculation<45> (job 123) exit 305 ...``.
"""

from __future__ import annotations

import re

from aiida import orm

#: How much of the end of a retrieved text file is read (the messages are at the end; outputs can be large).
TAIL_BYTES = 64 * 1024

_SLURM_CANCELLED = re.compile(r"\*\*\* JOB (\d+) ON (\S+) CANCELLED AT (\S+)(?: DUE TO ([A-Z ]+?))? \*\*\*")
_SIGNAL = re.compile(
    r"(Segmentation fault|Bus error|Killed|Aborted|Illegal instruction|Floating point exception)(?: \(core dumped\))?"
)
_NO_SPACE = re.compile(r"[^\n]*No space left on device[^\n]*", re.IGNORECASE)
_QE_ERROR = re.compile(r"Error in routine (\S+) \((-?\d+)\):\s*\n\s*([^\n]+)")


def diagnose_job_output(
    stderr: str, stdout: str = "", job_id: str | None = None, walltime: int | None = None, executable: str = ""
) -> str | None:
    """What the scheduler, the system or the code said about a failed job, from its stderr and stdout; None when
    neither holds a known message. ``job_id``, ``walltime`` (s) and ``executable`` only make the words precise."""
    text = f"{stderr}\n{stdout}"
    match = _SLURM_CANCELLED.search(stderr)
    if match:
        job = match.group(1) or job_id
        cause = (match.group(4) or "").strip()
        if cause == "TIME LIMIT":
            return f"SLURM job {job} TIMEOUT" + (f" (time limit {walltime} s)" if walltime else "")
        return f"SLURM job {job} CANCELLED" + (f" due to {cause.lower()}" if cause else "")
    match = _NO_SPACE.search(text)
    if match:
        return f"no space left on device ({match.group(0).strip()[:200]})"
    match = _SIGNAL.search(stderr)
    if match:
        return f"{executable or 'the executable'} crashed: {match.group(0)}"
    match = _QE_ERROR.search(stdout)
    if match:
        return f"{executable or 'pw.x'} stopped with an error in routine {match.group(1)}: {match.group(3).strip()}"
    return None


def _tail(node: orm.FolderData, name: str | None) -> str:
    if not name or name not in node.base.repository.list_object_names():
        return ""
    with node.base.repository.open(name, "rb") as handle:
        data = handle.read()
    return data[-TAIL_BYTES:].decode("utf-8", errors="replace")


def job_diagnosis(calcjob: orm.CalcJobNode) -> str | None:
    """:func:`diagnose_job_output` on the scheduler stderr and the main output file the calculation retrieved."""
    if "retrieved" not in calcjob.outputs:
        return None
    retrieved = calcjob.outputs.retrieved
    options = calcjob.get_options()
    stderr = _tail(retrieved, options.get("scheduler_stderr"))
    stdout = _tail(retrieved, options.get("output_filename"))
    executable = calcjob.inputs.code.label if "code" in calcjob.inputs else ""
    return diagnose_job_output(
        stderr, stdout, calcjob.get_job_id(), options.get("max_wallclock_seconds"), executable=executable
    )


def process_summary(node: orm.ProcessNode) -> str:
    """``PwCalculation<45> (job 123) exit 305: <message>``, or ``... excepted: <exception>`` / ``... killed``."""
    name = f"{node.process_label}<{node.pk}>"
    if isinstance(node, orm.CalcJobNode) and node.get_job_id():
        name += f" (job {node.get_job_id()})"
    if node.is_excepted:
        lines = (node.exception or "").strip().splitlines()
        return f"{name} excepted: {lines[-1] if lines else ''}"[:500]
    if node.is_killed:
        return f"{name} killed: {node.process_status or ''}"
    if not node.is_terminated:
        return f"{name} {node.process_state.value if node.process_state else 'not started'}"
    return f"{name} exit {node.exit_status}: {node.exit_message or ''}".rstrip(": ")


def evaluation_failure(node: orm.ProcessNode) -> str:
    """One line saying why an evaluation failed: the diagnosis of its last failed calculation (if any), that
    calculation, the restart work chain that gave up on it (with its number of runs) and the evaluation itself."""
    calcjobs = sorted(
        (n for n in node.called_descendants if isinstance(n, orm.CalcJobNode)), key=lambda n: (n.ctime, n.pk)
    )
    failed = [n for n in calcjobs if not n.is_finished_ok]
    parts = []
    if failed:
        last = failed[-1]
        diagnosis = job_diagnosis(last)
        caller = last.caller
        runs = sum(1 for n in calcjobs if caller is not None and n.caller is not None and n.caller.pk == caller.pk)
        head = process_summary(last) + (f" (the last of {runs} runs)" if runs > 1 else "")
        parts.append(f"{diagnosis}: {head}" if diagnosis else head)
        if caller is not None and caller.pk != node.pk and not caller.is_finished_ok:
            parts.append(process_summary(caller))
    parts.append(process_summary(node))
    return "; ".join(parts)
