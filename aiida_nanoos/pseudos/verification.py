"""Physical checks of the family with pw.x: equilibrium lattice constants and bond lengths against known values.

Each check computes E at five or more geometries around the expected minimum with the family's ``normal``
cutoffs, fits the minimum (Birch-Murnaghan in the volume for cubic crystals, a cubic polynomial in the bond
length or in-plane lattice constant otherwise) and compares it with experiment and with published PBE values.
A pseudopotential passes when the PBE result is within ``TOLERANCE_PBE`` of the published PBE value and within
``TOLERANCE_EXP`` of experiment.

``python -m aiida_nanoos.pseudos.verification [NAMES...]`` runs the checks (all by default, roughly an hour in
serial) and records the results in ``verification.json`` next to this file; the test-suite runs a fast one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _DEBIAN_FILES, COVERED_ELEMENTS, input_md5, prepare_pseudopotentials, recommended_cutoffs
from .pwscf import (
    bcc_cell,
    birch_murnaghan_fit,
    diamond_cell,
    dimer_cell,
    fcc_cell,
    hexagonal_mx2_cell,
    pw_version,
    run_pw,
)

TOLERANCE_PBE = 0.01  # relative, against published PBE values
TOLERANCE_EXP = 0.03  # relative, against experiment (PBE itself overestimates lattice constants by 1-2 %)
DIMER_BOX = 8.0  # Angstrom
RY_PER_A3_IN_GPA = 13.605693122994 * 160.21766208  # 1 Ry/Angstrom^3 in GPa
VERIFICATION_JSON = Path(__file__).with_name("verification.json")


@dataclass(frozen=True)
class Check:
    """One reference system and the quantity compared."""

    name: str
    elements: tuple[str, ...]
    quantity: str  # "a" (cubic lattice constant), "d" (bond length), "a_2d" (in-plane lattice constant), Angstrom
    kind: str  # fcc, bcc, diamond, dimer, mx2
    guess: float  # centre of the scan, Angstrom
    experiment: float
    pbe: float | None
    references: str
    kpoints: tuple[int, int, int] | None = None
    spin: int = 0  # total magnetisation (Bohr magnetons) for a fixed-spin molecule, 0 = unpolarised
    step: float | None = None  # relative step of the scan; default 2 % for dimers, 1 % otherwise
    points: int | None = None  # default 5 for dimers and relaxed monolayers (expensive), 7 for bulk crystals
    extra: Mapping[str, float] = field(default_factory=dict)


#: Experimental values: lattice constants at low temperature where available, gas-phase equilibrium bond lengths
#: r_e (Huber and Herzberg). PBE values: rounded literature values (crystals: e.g. Haas, Tran, Blaha,
#: PRB 79, 085104 (2009); monolayers: C2DB, Haastrup et al., 2D Mater. 5, 042002 (2018)); None where no
#: published value is at hand, then only experiment is compared.
_HH = "exp: Huber-Herzberg r_e"
_HAAS = "exp; PBE ~ e.g. Haas et al. PRB 79, 085104 (2009)"
_C2DB = "exp: bulk 2H; PBE monolayer ~ C2DB (Haastrup et al. 2018)"
CHECKS: dict[str, Check] = {
    c.name: c
    for c in (
        Check("H2", ("H",), "d", "dimer", 0.75, 0.741, 0.750, f"{_HH}; PBE ~0.75"),
        Check("N2", ("N",), "d", "dimer", 1.10, 1.098, 1.103, f"{_HH}; PBE ~1.10"),
        Check("O2", ("O",), "d", "dimer", 1.22, 1.208, 1.218, f"{_HH}; PBE (triplet) ~1.22", spin=2),
        Check("S2", ("S",), "d", "dimer", 1.91, 1.889, None, f"{_HH}; triplet", spin=2),
        Check("Se2", ("Se",), "d", "dimer", 2.18, 2.166, None, f"{_HH}; triplet", spin=2),
        Check("Te2", ("Te",), "d", "dimer", 2.59, 2.557, None, f"{_HH}; triplet", spin=2),
        Check("C-diamond", ("C",), "a", "diamond", 3.57, 3.567, 3.57, _HAAS, (8, 8, 8)),
        Check("BN-zincblende", ("B", "N"), "a", "diamond", 3.62, 3.615, 3.62, _HAAS, (8, 8, 8)),
        Check("Al-fcc", ("Al",), "a", "fcc", 4.04, 4.032, 4.04, _HAAS, (14, 14, 14)),
        Check("Si-diamond", ("Si",), "a", "diamond", 5.47, 5.431, 5.47, _HAAS, (6, 6, 6)),
        Check("AlP-zincblende", ("Al", "P"), "a", "diamond", 5.51, 5.463, 5.51, _HAAS, (6, 6, 6)),
        Check("Ge-diamond", ("Ge",), "a", "diamond", 5.76, 5.658, 5.76, _HAAS, (6, 6, 6)),
        Check("GaAs-zincblende", ("Ga", "As"), "a", "diamond", 5.75, 5.653, 5.75, _HAAS, (6, 6, 6)),
        Check("Mo-bcc", ("Mo",), "a", "bcc", 3.16, 3.147, 3.16, _HAAS, (14, 14, 14)),
        Check("W-bcc", ("W",), "a", "bcc", 3.18, 3.165, 3.18, _HAAS, (14, 14, 14)),
        Check("MoS2-1H", ("Mo", "S"), "a_2d", "mx2", 3.18, 3.160, 3.18, _C2DB, (9, 9, 1), extra={"thickness": 3.13}),
        Check("WS2-1H", ("W", "S"), "a_2d", "mx2", 3.18, 3.153, 3.18, _C2DB, (9, 9, 1), extra={"thickness": 3.14}),
        Check("MoSe2-1H", ("Mo", "Se"), "a_2d", "mx2", 3.32, 3.288, 3.32, _C2DB, (9, 9, 1), extra={"thickness": 3.34}),
        Check("MoTe2-1H", ("Mo", "Te"), "a_2d", "mx2", 3.55, 3.519, 3.55, _C2DB, (9, 9, 1), extra={"thickness": 3.60}),
    )
}


def _symbols(check: Check, n: int) -> list[str]:
    if check.kind == "mx2":
        return [check.elements[0], check.elements[1], check.elements[1]]
    return [check.elements[i % len(check.elements)] for i in range(n)]


def run_check(
    check: Check,
    pseudos: Mapping[str, Path],
    *,
    cutoffs: Mapping[str, Mapping[str, float]] | None = None,
    pw: str = "pw.x",
    points: int | None = None,
    step: float | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, object]:
    """Scan the geometry of one check with pw.x, fit the minimum and compare it with the references."""
    cutoffs = recommended_cutoffs(check.elements) if cutoffs is None else cutoffs
    ecutwfc = max(cutoffs[el]["cutoff_wfc"] for el in check.elements)
    ecutrho = max(cutoffs[el]["cutoff_rho"] for el in check.elements)
    n = points or check.points or (5 if check.kind in ("dimer", "mx2") else 7)
    rel_step = step or check.step or (0.02 if check.kind == "dimer" else 0.01)
    sizes = check.guess * (1.0 + rel_step * (np.arange(n) - (n - 1) / 2))
    energies, volumes, forces, runtime = [], [], [], 0.0
    for size in sizes:
        kwargs: dict[str, object] = {}
        if check.kind == "dimer":
            cell, pos = dimer_cell(size, box=DIMER_BOX)
            # fixed occupations: a molecule (also the spin triplets) has a gap in each spin channel, and
            # smearing could let some geometries of the scan settle in another orbital occupation
            system: dict[str, object] = {"occupations": "fixed"}
            if check.spin:
                system.update(nspin=2, tot_magnetization=check.spin)
            kwargs["system"] = system
        elif check.kind == "mx2":
            cell, pos = hexagonal_mx2_cell(size, check.extra["thickness"], vacuum=14.0)
            kwargs = {
                "control": {"calculation": "relax", "forc_conv_thr": 2.0e-4, "etot_conv_thr": 1.0e-6},
                "if_pos": [(0, 0, 0), (0, 0, 1), (0, 0, 1)],
            }
        else:
            cell, pos = {"fcc": fcc_cell, "bcc": bcc_cell, "diamond": diamond_cell}[check.kind](size)
        res = run_pw(
            cell,
            _symbols(check, len(pos)),
            pos,
            pseudos,
            ecutwfc=ecutwfc,
            ecutrho=ecutrho,
            kpoints=check.kpoints,
            pw=pw,
            **kwargs,
        )
        runtime += res.walltime
        energies.append(res.energy)
        volumes.append(abs(np.linalg.det(cell)))
        # the derivative that the fit must agree with: pressure (kbar) or the force along the dimer (Ry/bohr)
        forces.append(res.forces[1, 2] if check.kind == "dimer" else res.pressure)
        log(
            f"  {check.name} {check.quantity}={size:.4f} E={res.energy:.6f} Ry"
            f" force/pressure={forces[-1]} ({res.walltime:.1f} s)"
        )
    if check.quantity == "a":
        fit = birch_murnaghan_fit(volumes, energies)
        factor = {"fcc": 4.0, "bcc": 2.0, "diamond": 4.0}[check.kind]  # conventional cubic / primitive volume
        value = (fit["V0"] * factor) ** (1.0 / 3.0)
        extra = {"bulk_modulus_gpa": round(fit["B0"] * RY_PER_A3_IN_GPA, 1)}
    else:
        coeffs = np.polyfit(sizes, energies, 3)
        roots = [r.real for r in np.roots(np.polyder(coeffs)) if abs(r.imag) < 1e-12]
        minima = [r for r in roots if np.polyval(np.polyder(coeffs, 2), r) > 0 and sizes[0] <= r <= sizes[-1]]
        if not minima:
            raise ValueError(f"{check.name}: no minimum inside the scanned range {sizes[0]:.3f}-{sizes[-1]:.3f}")
        value = float(minima[0])
        extra = {}
    if check.kind in ("dimer", "fcc", "bcc", "diamond"):
        # independent estimate: where the force (pressure) changes sign, by linear interpolation
        sign_change = [i for i in range(n - 1) if forces[i] * forces[i + 1] <= 0]
        if sign_change:
            i = sign_change[0]
            crossing = sizes[i] + (sizes[i + 1] - sizes[i]) * forces[i] / (forces[i] - forces[i + 1])
            extra["zero_force_or_pressure_estimate"] = round(float(crossing), 4)
    result = {
        "system": check.name,
        "quantity": check.quantity,
        "value": round(value, 4),
        "experiment": check.experiment,
        "pbe_reference": check.pbe,
        "deviation_vs_experiment_pct": round(100.0 * (value - check.experiment) / check.experiment, 2),
        "deviation_vs_pbe_pct": None if check.pbe is None else round(100.0 * (value - check.pbe) / check.pbe, 2),
        "references": check.references,
        "ecutwfc": ecutwfc,
        "ecutrho": ecutrho,
        "kpoints": list(check.kpoints) if check.kpoints else "gamma",
        "scan": {
            "sizes": [round(float(s), 5) for s in sizes],
            "energies_ry": energies,
            "force_ry_per_bohr" if check.kind == "dimer" else "pressure_kbar": [float(f) for f in forces],
        },
        "runtime_s": round(runtime, 1),
        **extra,
    }
    result["passed"] = bool(
        abs(result["deviation_vs_experiment_pct"]) <= 100 * TOLERANCE_EXP
        and (check.pbe is None or abs(result["deviation_vs_pbe_pct"]) <= 100 * TOLERANCE_PBE)
    )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=list(CHECKS))
    parser.add_argument("--pw", default="pw.x")
    parser.add_argument("--output", type=Path, default=VERIFICATION_JSON)
    args = parser.parse_args(argv)
    existing = json.loads(args.output.read_text()) if args.output.is_file() else {}
    results = existing.get("checks", {})
    version = pw_version(args.pw) or "(version unknown)"
    with tempfile.TemporaryDirectory(prefix="nanoos-verify-") as tmp:
        records = prepare_pseudopotentials(Path(tmp))
        pseudos = {el: rec.path for el, rec in records.items()}
        for name in args.names:
            start = time.perf_counter()
            result = run_check(CHECKS[name], pseudos, pw=args.pw, log=lambda m: print(m, flush=True))
            # generated files differ only in their date stamp between runs: identify them by their input
            result["pseudopotentials"] = {
                el: records[el].md5 if el in _DEBIAN_FILES else input_md5(el) for el in CHECKS[name].elements
            }
            result["wall_s"] = round(time.perf_counter() - start, 1)
            results[name] = result
            pbe = result["deviation_vs_pbe_pct"]
            print(
                f"{name}: {result['quantity']}={result['value']} exp {result['experiment']} "
                f"({result['deviation_vs_experiment_pct']:+.2f} %), PBE ref {result['pbe_reference']} "
                f"({'n/a' if pbe is None else f'{pbe:+.2f} %'}) {'PASS' if result['passed'] else 'FAIL'}",
                flush=True,
            )
            ordered = {k: results[k] for k in CHECKS if k in results}
            covered = sorted({el for k in ordered for el in CHECKS[k].elements}, key=COVERED_ELEMENTS.index)
            payload = {
                "method": __doc__.split("\n\n")[1].replace("\n", " "),
                "tolerances": {"vs_pbe": TOLERANCE_PBE, "vs_experiment": TOLERANCE_EXP},
                "program": f"pw.x {version} (Quantum ESPRESSO), serial",
                "elements_checked": covered,
                "checks": ordered,
            }
            args.output.write_text(json.dumps(payload, indent=1) + "\n")


if __name__ == "__main__":
    main()
