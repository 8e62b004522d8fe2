"""What an evaluation cost, read from its calculation nodes: every evaluator reports it the same way.

A campaign pays for CPU time, not wall time: a pw.x run on 4 MPI ranks x 2 threads for 100 s uses 800 CPU seconds.
For a CalcJob the wall time is the code's own (``output_parameters.wall_time_seconds``, which pw.x reports; else the
time from submission to the end, queueing included, an upper bound), and the CPU seconds are the wall time times the
MPI processes (``resources`` when ``withmpi``, else one) times the threads per process (``num_cores_per_mpiproc`` or
``OMP_NUM_THREADS`` of the job's environment, else one). Every calculation the evaluation called counts, restarts
included (they were paid for). An evaluation that runs no CalcJob (the analytic evaluator) costs the wall time of its
calcfunctions, on one core.
"""

from __future__ import annotations

from typing import Any

from aiida import orm


def _threads(calc: orm.CalcJobNode, resources: dict[str, Any]) -> int:
    if resources.get("num_cores_per_mpiproc"):
        return int(resources["num_cores_per_mpiproc"])
    environment = calc.get_option("environment_variables") or {}
    try:
        return max(1, int(environment.get("OMP_NUM_THREADS", 1)))
    except (TypeError, ValueError):
        return 1


def mpi_processes(calc: orm.CalcJobNode) -> int:
    """MPI processes of a CalcJob: one unless it ran with MPI, then what its resources asked for."""
    if not calc.get_option("withmpi"):
        return 1
    resources = calc.get_option("resources") or {}
    if resources.get("tot_num_mpiprocs"):
        return int(resources["tot_num_mpiprocs"])
    return int(resources.get("num_machines", 1)) * int(resources.get("num_mpiprocs_per_machine", 1))


def calcjob_cost(calc: orm.CalcJobNode) -> dict[str, float]:
    """Wall and CPU seconds of one finished CalcJob (see the module)."""
    wall = None
    if "output_parameters" in calc.outputs:
        wall = calc.outputs.output_parameters.get("wall_time_seconds")
    if wall is None:
        wall = (calc.mtime - calc.ctime).total_seconds()
    resources = calc.get_option("resources") or {}
    processes = mpi_processes(calc) * _threads(calc, resources)
    return {"wall_seconds": float(wall), "cpu_seconds": float(wall) * processes}


def evaluation_cost(evaluation: orm.ProcessNode) -> dict[str, Any]:
    """Wall and CPU seconds an evaluation (a work chain and everything it called) used, and how many calculations
    were counted."""
    calculations = [evaluation, *evaluation.called_descendants]
    jobs = [node for node in calculations if isinstance(node, orm.CalcJobNode)]
    if jobs:
        parts = [calcjob_cost(job) for job in jobs]
        source = "calcjobs"
    else:
        functions = [node for node in calculations if isinstance(node, orm.CalcFunctionNode)]
        seconds = [(node.mtime - node.ctime).total_seconds() for node in functions]
        parts = [{"wall_seconds": s, "cpu_seconds": s} for s in seconds]
        source = "calcfunctions"
    return {
        "wall_seconds": sum(p["wall_seconds"] for p in parts),
        "cpu_seconds": sum(p["cpu_seconds"] for p in parts),
        "calculations": len(parts),
        "source": source,
    }
