"""Run QE's atomic code ``ld1.x`` and read what it reports.

ld1.x exits 0 after some failures and writes a UPF even when the pseudo-atom test fails, so success is judged
from its output: no ``Error in routine`` block, and pseudo eigenvalues that reproduce the all-electron ones of
the reference configuration.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Ld1Error",
    "Ld1Result",
    "find_executable",
    "ld1_version",
    "parse_ld1_output",
    "run_ld1",
]

#: an eigenvalue row of the pseudo-atom test: ``1 0     3S   1( 2.00)   -0.79473   -0.79473   0.00000``
_TEST_ROW = re.compile(
    r"^\s*\d+\s+\d+\s+(\d[SPDF])\s+\d\(\s*(-?[\d.]+)\)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s*$", re.M
)
_ESTIMATE = re.compile(r"Wfc-us\s+(\d[SPDF])\s+rcutus=\s*([\d.]+)\s+Estimated cut-off energy=\s*([\d.]+)")
_EXPECTED_RHO = re.compile(r"Expected ecutrho=\s*([\d.]+)")
_DETOT = re.compile(r"dEtot_ae =\s*(-?[\d.]+) Ry\s*\n\s*dEtot_ps =\s*(-?[\d.]+) Ry,\s*Delta E=\s*(-?[\d.]+) Ry")
_VERSION = re.compile(r"Program LD1 v\.(\S+)")


class Ld1Error(RuntimeError):
    """ld1.x failed, or its pseudopotential does not reproduce the all-electron atom."""


@dataclass
class Ld1Result:
    """What one ld1.x run reported."""

    output: str
    version: str | None
    errors: list[str]
    #: (label, occupation, e_AE, e_PS, e_AE - e_PS) in Ry for each pseudo-atom test configuration, in order.
    tests: list[list[tuple[str, float, float, float, float]]] = field(default_factory=list)
    #: generator estimate of the wavefunction cutoff for each projector (label, rcutus, Ry).
    estimated_cutoffs: list[tuple[str, float, float]] = field(default_factory=list)
    expected_ecutrho: float | None = None
    #: per test configuration after the first: (dEtot_AE, dEtot_PS, |difference|) in Ry, the transferability error.
    delta_etot: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def max_eigenvalue_error(self) -> float:
        """Largest |e_AE - e_PS| over the occupied or bound states of all test configurations (Ry)."""
        errors = [abs(row[4]) for config in self.tests for row in config if row[2] < 0.0]
        return max(errors, default=float("nan"))


def find_executable(name: str) -> str | None:
    """Full path of an executable given by name or path, or None."""
    candidate = Path(name)
    if candidate.is_absolute() or "/" in name:
        return str(candidate) if candidate.is_file() else None
    return shutil.which(name)


def parse_ld1_output(output: str) -> Ld1Result:
    """Extract errors, the pseudo-atom tests, cutoff estimates and transferability from ld1.x's stdout."""
    errors = [
        " ".join(block.split())
        for block in re.findall(r"Error in routine (.*?)\n\s*%{10,}", output, re.S)  # the message under the banner
    ]
    version = _VERSION.search(output)
    tests = [
        [
            (label, float(occ), float(e_ae), float(e_ps), float(diff))
            for label, occ, e_ae, e_ps, diff in _TEST_ROW.findall(block.split("End of pseudopotential test")[0])
        ]
        # each "Testing the pseudopotential" block holds the AE/PS table of one configuration
        for block in output.split("Testing the pseudopotential")[1:]
    ]
    expected = _EXPECTED_RHO.findall(output)
    return Ld1Result(
        output=output,
        version=version.group(1) if version else None,
        errors=errors,
        tests=tests,
        estimated_cutoffs=[(label, float(rc), float(ec)) for label, rc, ec in _ESTIMATE.findall(output)],
        expected_ecutrho=max(map(float, expected)) if expected else None,
        delta_etot=[(float(a), float(b), abs(float(c))) for a, b, c in _DETOT.findall(output)],
    )


def run_ld1(
    input_text: str,
    *,
    ld1: str = "ld1.x",
    workdir: Path | None = None,
    timeout: float = 120.0,
) -> tuple[Ld1Result, Path]:
    """Run ld1.x on ``input_text`` in ``workdir`` (a fresh temporary directory if None).

    Returns the parsed result and the directory (which holds the UPF named by ``file_pseudopw``); the caller
    removes a temporary directory. Raises Ld1Error when ld1.x is missing, times out or reports an error.
    """
    executable = find_executable(ld1)
    if executable is None:
        raise Ld1Error(f"ld1.x not found as {ld1!r}")
    workdir = Path(tempfile.mkdtemp(prefix="nanoos-ld1-")) if workdir is None else Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "ld1.in").write_text(input_text)
    try:
        proc = subprocess.run(
            [executable],
            input=input_text,
            capture_output=True,
            text=True,
            cwd=workdir,
            timeout=timeout,
            env=_serial_env(),
        )
    except subprocess.TimeoutExpired as exc:
        raise Ld1Error(f"ld1.x did not finish in {timeout} s (work directory {workdir})") from exc
    (workdir / "ld1.out").write_text(proc.stdout + proc.stderr)
    result = parse_ld1_output(proc.stdout)
    if result.errors:
        raise Ld1Error(f"ld1.x reported: {'; '.join(result.errors)} (work directory {workdir})")
    if proc.returncode != 0:
        raise Ld1Error(f"ld1.x exited with status {proc.returncode} (work directory {workdir}): {proc.stderr[-500:]}")
    return result, workdir


def _serial_env() -> dict[str, str]:
    """Environment for a serial run: one OpenMP thread, and Open MPI allowed to start as root (singleton)."""
    import os

    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def ld1_version(ld1: str = "ld1.x") -> str | None:
    """QE version of ld1.x (e.g. ``6.7MaX``), from a run on an empty input; None if it cannot be run."""
    executable = find_executable(ld1)
    if executable is None:
        return None
    with tempfile.TemporaryDirectory(prefix="nanoos-ld1v-") as tmp:
        try:
            proc = subprocess.run(
                [executable], input="", capture_output=True, text=True, cwd=tmp, timeout=30, env=_serial_env()
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
    match = _VERSION.search(proc.stdout)
    return match.group(1) if match else None
