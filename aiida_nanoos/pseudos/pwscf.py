"""Minimal serial pw.x driver used to test the pseudopotentials (cutoff convergence, equations of state).

The AiiDA workflows use aiida-quantumespresso; this module exists so that the pseudopotential family can be
checked without a profile, in a test or from the command line, with nothing but pw.x on the PATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "PwError",
    "PwResult",
    "birch_murnaghan_fit",
    "dimer_cell",
    "fcc_cell",
    "bcc_cell",
    "diamond_cell",
    "hexagonal_mx2_cell",
    "pw_version",
    "run_pw",
]

RY_EV = 13.605693122994
BOHR_ANG = 0.529177210903


class PwError(RuntimeError):
    """pw.x failed or did not reach self-consistency."""


@dataclass
class PwResult:
    """The numbers a convergence or equation-of-state test needs from one pw.x run."""

    energy: float  # total energy, Ry
    pressure: float | None  # kbar, when tstress was on
    converged: bool
    n_atoms: int
    walltime: float  # s
    cell: np.ndarray  # final cell, Angstrom (rows are vectors)
    frac_positions: np.ndarray  # final crystal coordinates
    total_magnetization: float | None
    forces: np.ndarray | None  # Ry/bohr, last ionic step
    output: str

    @property
    def energy_per_atom(self) -> float:
        """Total energy per atom in Ry."""
        return self.energy / self.n_atoms


# -- structures (Angstrom, crystal coordinates) -----------------------------------------------------------------


def fcc_cell(a: float) -> tuple[np.ndarray, np.ndarray]:
    """Primitive fcc cell of cubic lattice constant ``a`` with one atom at the origin."""
    cell = 0.5 * a * np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    return cell, np.zeros((1, 3))


def bcc_cell(a: float) -> tuple[np.ndarray, np.ndarray]:
    """Primitive bcc cell of cubic lattice constant ``a`` with one atom at the origin."""
    cell = 0.5 * a * np.array([[-1.0, 1.0, 1.0], [1.0, -1.0, 1.0], [1.0, 1.0, -1.0]])
    return cell, np.zeros((1, 3))


def diamond_cell(a: float) -> tuple[np.ndarray, np.ndarray]:
    """Primitive diamond/zincblende cell: two atoms at (0,0,0) and (1/4,1/4,1/4) of the cube."""
    cell, _ = fcc_cell(a)
    return cell, np.array([[0.0, 0.0, 0.0], [0.25, 0.25, 0.25]])


def dimer_cell(bond: float, box: float) -> tuple[np.ndarray, np.ndarray]:
    """A dimer along z in an orthorhombic box (slightly anisotropic so that the ground state is not degenerate
    by symmetry with a different orbital occupation)."""
    cell = np.diag([box, box * 1.05, box * 1.1])
    return cell, np.array([[0.0, 0.0, 0.0], [0.0, 0.0, bond / cell[2, 2]]])


def hexagonal_mx2_cell(a: float, thickness: float, vacuum: float) -> tuple[np.ndarray, np.ndarray]:
    """A 1H (trigonal prismatic) MX2 monolayer: M at (0,0), X above and below at (1/3, 2/3).

    ``thickness`` is the X-X distance along z; the cell height is thickness + vacuum.
    """
    c = thickness + vacuum
    cell = np.array([[a, 0.0, 0.0], [-0.5 * a, 0.5 * np.sqrt(3.0) * a, 0.0], [0.0, 0.0, c]])
    dz = 0.5 * thickness / c
    positions = np.array([[0.0, 0.0, 0.5], [1.0 / 3.0, 2.0 / 3.0, 0.5 + dz], [1.0 / 3.0, 2.0 / 3.0, 0.5 - dz]])
    return cell, positions


# -- running pw.x ------------------------------------------------------------------------------------------------


def _fortran(value: object) -> str:
    if isinstance(value, bool):
        return ".true." if value else ".false."
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


def _namelist(name: str, values: Mapping[str, object]) -> str:
    body = "".join(f"  {key} = {_fortran(val)}\n" for key, val in values.items())
    return f"&{name}\n{body}/\n"


def write_pw_input(
    cell: np.ndarray,
    symbols: Sequence[str],
    frac_positions: np.ndarray,
    pseudos: Mapping[str, Path],
    *,
    ecutwfc: float,
    ecutrho: float,
    kpoints: Sequence[int] | None,
    control: Mapping[str, object] | None = None,
    system: Mapping[str, object] | None = None,
    electrons: Mapping[str, object] | None = None,
    ions: Mapping[str, object] | None = None,
    starting_magnetization: Mapping[str, float] | None = None,
    if_pos: Sequence[Sequence[int]] | None = None,
) -> str:
    """pw.x input text; ``kpoints=None`` means the Gamma point (Gamma tricks)."""
    species = list(dict.fromkeys(symbols))
    ctrl = {"calculation": "scf", "pseudo_dir": "./pseudo", "outdir": "./out", "tstress": True, "tprnfor": True}
    ctrl.update(control or {})
    sys_ = {
        "ibrav": 0,
        "nat": len(symbols),
        "ntyp": len(species),
        "ecutwfc": float(ecutwfc),
        "ecutrho": float(ecutrho),
        "occupations": "smearing",
        "smearing": "mv",
        "degauss": 0.02,
    }
    sys_.update(system or {})
    for i, el in enumerate(species, start=1):
        if starting_magnetization and el in starting_magnetization:
            sys_[f"starting_magnetization({i})"] = float(starting_magnetization[el])
    elec = {"conv_thr": 1.0e-9 * len(symbols), "mixing_beta": 0.4}
    elec.update(electrons or {})
    text = _namelist("CONTROL", ctrl) + _namelist("SYSTEM", sys_) + _namelist("ELECTRONS", elec)
    if ctrl["calculation"] in {"relax", "md", "vc-relax"}:
        text += _namelist("IONS", dict(ions or {}))
    text += "ATOMIC_SPECIES\n" + "".join(f"{el} 1.0 {Path(pseudos[el]).name}\n" for el in species)
    text += "CELL_PARAMETERS angstrom\n" + "".join(f"  {v[0]:.10f} {v[1]:.10f} {v[2]:.10f}\n" for v in cell)
    text += "ATOMIC_POSITIONS crystal\n"
    for i, (el, pos) in enumerate(zip(symbols, frac_positions, strict=True)):
        flags = "" if if_pos is None else " " + " ".join(str(int(f)) for f in if_pos[i])
        text += f"{el} {pos[0]:.10f} {pos[1]:.10f} {pos[2]:.10f}{flags}\n"
    if kpoints is None:
        text += "K_POINTS gamma\n"
    else:
        text += "K_POINTS automatic\n" + " ".join(str(int(k)) for k in kpoints) + " 0 0 0\n"
    return text


_ENERGY = re.compile(r"^!\s+total energy\s+=\s+(-?[\d.]+) Ry", re.M)
_PRESSURE = re.compile(r"P=\s*(-?[\d.]+)")
_MAG = re.compile(r"total magnetization\s+=\s+(-?[\d.]+) Bohr mag/cell")
_FORCE = re.compile(r"atom\s+\d+ type\s+\d+\s+force =\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)")


def _final_positions(output: str, n_atoms: int) -> np.ndarray | None:
    blocks = re.findall(r"ATOMIC_POSITIONS \(crystal\)\n((?:.*\n){" + str(n_atoms) + "})", output)
    if not blocks:
        return None
    return np.array([[float(x) for x in line.split()[1:4]] for line in blocks[-1].strip().splitlines()])


def run_pw(
    cell: np.ndarray,
    symbols: Sequence[str],
    frac_positions: np.ndarray,
    pseudos: Mapping[str, Path],
    *,
    ecutwfc: float,
    ecutrho: float,
    kpoints: Sequence[int] | None,
    pw: str = "pw.x",
    timeout: float = 1800.0,
    keep: Path | None = None,
    **kwargs: object,
) -> PwResult:
    """Run serial pw.x in a temporary directory and return energy, pressure and final geometry.

    Raises PwError if pw.x is absent, fails, or stops without reaching self-consistency.
    """
    executable = shutil.which(pw) if "/" not in pw else pw
    if executable is None or not Path(executable).is_file():
        raise PwError(f"pw.x not found as {pw!r}")
    text = write_pw_input(
        cell, symbols, frac_positions, pseudos, ecutwfc=ecutwfc, ecutrho=ecutrho, kpoints=kpoints, **kwargs
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    with tempfile.TemporaryDirectory(prefix="nanoos-pw-") as tmp:
        work = Path(tmp)
        (work / "pseudo").mkdir()
        for el in dict.fromkeys(symbols):
            shutil.copyfile(pseudos[el], work / "pseudo" / Path(pseudos[el]).name)
        (work / "pw.in").write_text(text)
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                [executable, "-in", "pw.in"], capture_output=True, text=True, cwd=work, timeout=timeout, env=env
            )
        except subprocess.TimeoutExpired as exc:
            raise PwError(f"pw.x did not finish in {timeout} s") from exc
        walltime = time.perf_counter() - start
        output = proc.stdout
        if keep is not None:
            Path(keep).mkdir(parents=True, exist_ok=True)
            (Path(keep) / "pw.in").write_text(text)
            (Path(keep) / "pw.out").write_text(output + proc.stderr)
    energies = _ENERGY.findall(output)
    if proc.returncode != 0 or not energies:
        tail = "\n".join((output + proc.stderr).strip().splitlines()[-15:])
        raise PwError(f"pw.x failed (status {proc.returncode}):\n{tail}")
    converged = "convergence NOT achieved" not in output
    if not converged:
        raise PwError("pw.x did not reach self-consistency")
    pressures = _PRESSURE.findall(output)
    mags = _MAG.findall(output)
    positions = _final_positions(output, len(symbols))
    # pw.x prints the total forces first and then their contributions; keep the first block of the last step
    force_blocks = output.split("Forces acting on atoms")
    forces = None
    if len(force_blocks) > 1:
        rows = _FORCE.findall(force_blocks[-1])[: len(symbols)]
        forces = np.array(rows, dtype=float) if len(rows) == len(symbols) else None
    return PwResult(
        energy=float(energies[-1]),
        pressure=float(pressures[-1]) if pressures else None,
        converged=converged,
        n_atoms=len(symbols),
        walltime=walltime,
        cell=np.asarray(cell, dtype=float),
        frac_positions=np.asarray(frac_positions if positions is None else positions, dtype=float),
        total_magnetization=float(mags[-1]) if mags else None,
        forces=forces,
        output=output,
    )


# -- fitting -----------------------------------------------------------------------------------------------------


def birch_murnaghan_fit(volumes: Sequence[float], energies: Sequence[float]) -> dict[str, float]:
    """Third-order Birch-Murnaghan fit of E(V) (any consistent units); returns V0, E0, B0 (energy/volume), B0'.

    Solved as a cubic polynomial in V^(-2/3), which is exactly the Birch-Murnaghan form, so no iterative fit
    (and no starting guess) is needed.
    """
    v = np.asarray(volumes, dtype=float)
    e = np.asarray(energies, dtype=float)
    if len(v) < 5:
        raise ValueError("need at least five points for a third-order Birch-Murnaghan fit")
    x = v ** (-2.0 / 3.0)
    coeffs = np.polyfit(x, e, 3)
    deriv = np.polyder(coeffs)
    roots = [r.real for r in np.roots(deriv) if abs(r.imag) < 1e-12 and r.real > 0]
    second = np.polyder(deriv)
    minima = [r for r in roots if np.polyval(second, r) > 0]
    if not minima:
        raise ValueError("E(V) has no minimum: the volume range misses the equilibrium")
    x0 = min(minima, key=lambda r: abs(r - x.mean()))
    v0 = x0 ** (-1.5)
    if not (v.min() <= v0 <= v.max()):
        raise ValueError(f"E(V) minimum at V={v0:.4f} lies outside the sampled range [{v.min():.4f}, {v.max():.4f}]")
    # B = V d2E/dV2 at V0; with x = V^(-2/3): dE/dV = E'(x) dx/dV, and E'(x0) = 0
    dxdv = -2.0 / 3.0 * v0 ** (-5.0 / 3.0)
    b0 = v0 * np.polyval(second, x0) * dxdv**2

    # B0' from a finite difference of B(V) = V E''(V) evaluated from the polynomial
    def bulk(vol: float) -> float:
        xx = vol ** (-2.0 / 3.0)
        dx = -2.0 / 3.0 * vol ** (-5.0 / 3.0)
        d2x = 10.0 / 9.0 * vol ** (-8.0 / 3.0)
        return vol * (np.polyval(second, xx) * dx**2 + np.polyval(deriv, xx) * d2x)

    h = 1e-3 * v0
    b0p = -(bulk(v0 + h) - bulk(v0 - h)) / (2 * h) * v0 / b0  # B' = dB/dP = -(V/B) dB/dV
    return {"V0": float(v0), "E0": float(np.polyval(coeffs, x0)), "B0": float(b0), "B0_prime": float(b0p)}


def pw_version(pw: str = "pw.x") -> str | None:
    """QE version of pw.x (e.g. ``6.7MaX``), read from the banner it prints on an empty input."""
    executable = shutil.which(pw) if "/" not in pw else pw
    if executable is None:
        return None
    env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    with tempfile.TemporaryDirectory(prefix="nanoos-pwv-") as tmp:
        try:
            proc = subprocess.run(
                [executable], input="\n", capture_output=True, text=True, cwd=tmp, timeout=30, env=env
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
    match = re.search(r"Program PWSCF v\.(\S+)", proc.stdout)
    return match.group(1) if match else None
