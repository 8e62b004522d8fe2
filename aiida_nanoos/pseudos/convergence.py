"""Measure the recommended cutoffs of the family with pw.x and write ``cutoffs.json``.

For each element a small test system (elemental crystal, or the dimer for elements that form molecules) is
computed at increasing ``ecutwfc`` with ``ecutrho = 8 ecutwfc`` and compared with a 100 Ry reference. The
recommended ``ecutwfc`` of a stringency is the lowest grid value from which on every higher value stays within
the tolerances: the energy per atom, and the geometry error implied by the pressure error of a crystal
(dP / 3B, the relative error of its lattice constant) or the force error on a dimer atom (dF / k d, the
relative error of the bond length), with B and k measured by +-2 % strain. The density cutoff is then
checked: raising it to 12 ``ecutwfc`` must change the energy by less than 0.2 mRy/atom.

Run ``python -m aiida_nanoos.pseudos.convergence [ELEMENTS...]`` (serial pw.x; about an hour for all elements
on one free core, several under load). It rewrites ``cutoffs.json`` next to this file, keeping the entries of
elements not recomputed.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _DEBIAN_FILES, COVERED_ELEMENTS, DEBIAN_PSEUDO_DIR, _prepare_files, input_md5
from .pwscf import bcc_cell, diamond_cell, dimer_cell, fcc_cell, pw_version, run_pw
from .upf import md5sum

GRID = (20.0, 25.0, 30.0, 35.0, 40.0, 45.0, 50.0, 55.0, 60.0, 70.0, 80.0)
REFERENCE = 100.0
DUAL = 8.0
DUAL_CHECK = 12.0
#: stringency -> (energy error in mRy/atom, implied geometry error in %): the relative error of the lattice
#: constant that the pressure error causes (dP / 3B), or of the bond length that the force error causes (dF / kd)
TOLERANCES = {"low": (2.0, 0.3), "normal": (1.0, 0.1), "high": (0.2, 0.07)}
STIFFNESS_ECUT = 60.0
BOHR_ANG = 0.529177210903
MAX_DUAL_ERROR = 0.2  # mRy/atom


@dataclass(frozen=True)
class TestSystem:
    """A small structure that exercises one element's pseudopotential."""

    description: str
    kind: str  # "fcc", "bcc", "diamond" (cubic a in Angstrom) or "dimer" (bond in Angstrom)
    size: float
    kpoints: tuple[int, int, int] | None  # None: Gamma point

    def build(self, element: str, strain: float = 0.0) -> tuple[np.ndarray, list[str], np.ndarray]:
        """The structure; ``strain`` stretches the bond of a dimer, or the volume of a crystal, by (1 + strain)."""
        if self.kind == "dimer":
            cell, pos = dimer_cell(self.size * (1.0 + strain), box=6.0)
        else:
            cell, pos = {"fcc": fcc_cell, "bcc": bcc_cell, "diamond": diamond_cell}[self.kind](self.size)
            cell = cell * (1.0 + strain) ** (1.0 / 3.0)
        return cell, [element] * len(pos), pos


#: molecules for the gas-phase elements, the crystal (or, for B, P, Ga, As, a simple hypothetical one at a typical
#: bond length) otherwise; cutoff convergence is a property of the pseudopotential, the structure only has to
#: put neighbours at bonding distances.
SYSTEMS: dict[str, TestSystem] = {
    "H": TestSystem("H2 dimer, d=0.74 A, 6 A box", "dimer", 0.74, None),
    "B": TestSystem("diamond-structure B, a=3.93 A (B-B 1.70 A)", "diamond", 3.93, (6, 6, 6)),
    "C": TestSystem("diamond, a=3.567 A", "diamond", 3.567, (6, 6, 6)),
    "N": TestSystem("N2 dimer, d=1.10 A, 6 A box", "dimer", 1.10, None),
    "O": TestSystem("O2 dimer, d=1.21 A, 6 A box (spin-unpolarised)", "dimer", 1.21, None),
    "Al": TestSystem("fcc Al, a=4.04 A", "fcc", 4.04, (8, 8, 8)),
    "Si": TestSystem("diamond Si, a=5.43 A", "diamond", 5.43, (6, 6, 6)),
    "P": TestSystem("diamond-structure P, a=5.13 A (P-P 2.22 A)", "diamond", 5.13, (6, 6, 6)),
    "S": TestSystem("S2 dimer, d=1.89 A, 6 A box", "dimer", 1.89, None),
    "Ga": TestSystem("fcc Ga, a=4.20 A", "fcc", 4.20, (8, 8, 8)),
    "Ge": TestSystem("diamond Ge, a=5.66 A", "diamond", 5.66, (6, 6, 6)),
    "As": TestSystem("diamond-structure As, a=5.77 A (As-As 2.50 A)", "diamond", 5.77, (6, 6, 6)),
    "Se": TestSystem("Se2 dimer, d=2.17 A, 6 A box", "dimer", 2.17, None),
    "Mo": TestSystem("bcc Mo, a=3.147 A", "bcc", 3.147, (8, 8, 8)),
    "Te": TestSystem("Te2 dimer, d=2.56 A, 6 A box", "dimer", 2.56, None),
    "W": TestSystem("bcc W, a=3.165 A", "bcc", 3.165, (8, 8, 8)),
}

CUTOFFS_JSON = Path(__file__).with_name("cutoffs.json")


def _observables(result, kind: str) -> dict[str, float]:
    data = {"energy_per_atom": result.energy_per_atom}
    if kind == "dimer":
        data["force"] = float(result.forces[1, 2]) if result.forces is not None else float("nan")
    else:
        data["pressure"] = float(result.pressure)
    return data


def _calculator(element: str, pseudo: Path, pw: str, log: Callable[[str], None]):
    system = SYSTEMS[element]

    def calc(ecutwfc: float, dual: float = DUAL, strain: float = 0.0) -> dict[str, float]:
        """One pw.x run; ``strain`` stretches the bond (dimer) or the volume (crystal) by (1 + strain)."""
        cell, symbols, pos = system.build(element, strain)
        res = run_pw(
            cell,
            symbols,
            pos,
            {element: pseudo},
            ecutwfc=ecutwfc,
            ecutrho=dual * ecutwfc,
            kpoints=system.kpoints,
            pw=pw,
        )
        obs = _observables(res, system.kind)
        log(f"  {element} ecutwfc={ecutwfc:5.1f} dual={dual:4.1f} strain={strain:+.2f} {obs} ({res.walltime:.1f} s)")
        return obs

    return calc


def converge_element(
    element: str, pseudo: Path, pw: str = "pw.x", log: Callable[[str], None] = print
) -> dict[str, object]:
    """Run the cutoff scan of one element; returns the raw data and the cutoffs of every stringency."""
    system = SYSTEMS[element]
    calc = _calculator(element, pseudo, pw, log)
    reference = calc(REFERENCE)
    data: dict[str, object] = {
        "system": system.description,
        "kpoints": list(system.kpoints) if system.kpoints else "gamma",
        "reference_ecutwfc": REFERENCE,
        "reference": reference,
        "scan": {str(ec): calc(ec) for ec in GRID},
    }
    return finish_element(element, data, calc)


def finish_element(element: str, data: dict[str, object], calc) -> dict[str, object]:
    """Add the bulk modulus (crystals), the deviations, the stringencies and the density-cutoff check."""
    system = SYSTEMS[element]
    # force and pressure errors are judged by the geometry error they imply, which needs the stiffness:
    # B = -V dP/dV (crystals) or k = -dF/dd (dimers) from +-2 % strain at a well converged cutoff
    if system.kind != "dimer" and "bulk_modulus_kbar" not in data:
        plus, minus = calc(STIFFNESS_ECUT, strain=0.02), calc(STIFFNESS_ECUT, strain=-0.02)
        data["bulk_modulus_kbar"] = round(-(plus["pressure"] - minus["pressure"]) / 0.04, 1)
    if system.kind == "dimer" and "force_constant_ry_per_bohr2" not in data:
        plus, minus = calc(STIFFNESS_ECUT, strain=0.02), calc(STIFFNESS_ECUT, strain=-0.02)
        step = 0.04 * system.size / BOHR_ANG
        data["force_constant_ry_per_bohr2"] = round((minus["force"] - plus["force"]) / step, 4)
    reference = data["reference"]
    for obs in data["scan"].values():
        obs["energy_mry_per_atom"] = 1000.0 * abs(obs["energy_per_atom"] - reference["energy_per_atom"])
        if system.kind == "dimer":
            obs["force_mry_per_bohr"] = 1000.0 * abs(obs["force"] - reference["force"])
            bond = system.size / BOHR_ANG
            obs["length_error_pct"] = (
                100.0 * obs["force_mry_per_bohr"] / 1000.0 / data["force_constant_ry_per_bohr2"] / bond
            )
        else:
            obs["pressure_kbar"] = abs(obs["pressure"] - reference["pressure"])
            obs["length_error_pct"] = 100.0 * obs["pressure_kbar"] / data["bulk_modulus_kbar"] / 3.0
        obs.pop("volume_error_pct", None)

    def ok(ec: float, tol: tuple[float, float]) -> bool:
        dev = data["scan"][str(ec)]
        return dev["energy_mry_per_atom"] <= tol[0] and dev["length_error_pct"] <= tol[1]

    stringencies = {}
    for name, tol in TOLERANCES.items():
        passing = [ec for i, ec in enumerate(GRID) if all(ok(higher, tol) for higher in GRID[i:])]
        if not passing:
            raise RuntimeError(f"{element}: no cutoff up to {GRID[-1]} Ry meets the {name} tolerances {tol}")
        stringencies[name] = passing[0]
    data["cutoff_wfc"] = stringencies
    # the density cutoff: dual 8 against dual 12 at the normal wavefunction cutoff
    ec_normal = stringencies["normal"]
    if data.get("dual_check", {}).get("ecutwfc") != ec_normal:
        check = calc(ec_normal, DUAL_CHECK)
        change = 1000.0 * abs(check["energy_per_atom"] - data["scan"][str(ec_normal)]["energy_per_atom"])
        data["dual_check"] = {"ecutwfc": ec_normal, "dual": DUAL_CHECK, "energy_change_mry_per_atom": change}
    if data["dual_check"]["energy_change_mry_per_atom"] > MAX_DUAL_ERROR:
        raise RuntimeError(f"{element}: ecutrho = {DUAL} ecutwfc is off dual {DUAL_CHECK}: {data['dual_check']}")
    return data


def _method() -> dict[str, object]:
    return {
        "summary": (
            "pw.x (serial) total energy per atom, and the geometry error implied by the pressure (crystals, dP/3B) "
            "or the force on a dimer atom (dF/kd), "
            f"against a {REFERENCE:g} Ry reference, with ecutrho = {DUAL:g} ecutwfc; a stringency's ecutwfc is "
            "the lowest grid value from which on all higher grid values meet its tolerances; ecutrho = "
            f"{DUAL:g} ecutwfc, checked against {DUAL_CHECK:g} ecutwfc (< {MAX_DUAL_ERROR} mRy/atom)"
        ),
        "grid_ry": list(GRID),
        "tolerances": {name: {"energy_mry_per_atom": t[0], "length_error_pct": t[1]} for name, t in TOLERANCES.items()},
        "smearing": "Marzari-Vanderbilt, 0.02 Ry",
        "program": f"pw.x {pw_version() or '(version unknown)'} (Quantum ESPRESSO, Debian package quantum-espresso)",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("elements", nargs="*", default=list(COVERED_ELEMENTS))
    parser.add_argument("--pw", default="pw.x")
    parser.add_argument("--output", type=Path, default=CUTOFFS_JSON)
    parser.add_argument(
        "--rescore", action="store_true", help="reuse the stored scans; only add missing runs and re-apply the criteria"
    )
    args = parser.parse_args(argv)
    existing = json.loads(args.output.read_text()) if args.output.is_file() else {}
    data = existing.get("measurements", {})
    with tempfile.TemporaryDirectory(prefix="nanoos-conv-") as tmp:
        files = _prepare_files(Path(tmp), tuple(args.elements), "ld1.x", DEBIAN_PSEUDO_DIR)
        for el in args.elements:
            path, source = files[el][:2]
            start = time.perf_counter()
            print(f"{el}: {SYSTEMS[el].description} ({path.name})", flush=True)
            log = lambda m: print(m, flush=True)  # noqa: E731
            identity = {"file": path.name, "source": source, "md5": md5sum(path)}
            if el not in _DEBIAN_FILES:
                identity["input_md5"] = input_md5(el)
            if args.rescore and el in data:
                stored = data[el]["pseudopotential"]
                if stored.get("input_md5", stored["md5"]) != identity.get("input_md5", identity["md5"]):
                    raise RuntimeError(f"{el}: the stored scan was made with another pseudopotential; rerun it")
                data[el] = finish_element(el, data[el], _calculator(el, path, args.pw, log))
            else:
                data[el] = converge_element(el, path, pw=args.pw, log=log)
                data[el]["pseudopotential"] = identity
            data[el]["runtime_s"] = data[el].get("runtime_s", 0.0) + round(time.perf_counter() - start, 1)
            print(f"{el}: {data[el]['cutoff_wfc']}", flush=True)
            _write(args.output, data)


def _write(path: Path, data: dict[str, object]) -> None:
    ordered = {el: data[el] for el in COVERED_ELEMENTS if el in data}
    stringencies = {
        name: {
            el: {"cutoff_wfc": ordered[el]["cutoff_wfc"][name], "cutoff_rho": DUAL * ordered[el]["cutoff_wfc"][name]}
            for el in ordered
        }
        for name in TOLERANCES
    }
    payload = {"units": "Ry", "method": _method(), "stringencies": stringencies, "measurements": ordered}
    path.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
