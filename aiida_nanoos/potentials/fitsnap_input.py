"""Read a FitSNAP input file (``Ta-example.in`` style) into this package's SNAP settings.

Only what changes the linear fit is taken: ``[BISPECTRUM]`` hyper-parameters, ``[CALCULATOR]`` energy/force/stress
switches, ``[ESHIFT]``, ``[REFERENCE]`` (the pair style subtracted before fitting), ``[GROUPS]`` weights and the
``[SOLVER]`` name. Train/test fractions of groups are reported but not applied: splits are the caller's business.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass, field
from pathlib import Path

from aiida_nanoos.potentials.snap import FitWeights, ReferencePotential, SnapHyperparameters

_SOLVERS = {"svd": "svd", "ridge": "ridge"}


@dataclass
class FitSnapInput:
    """Settings of a FitSNAP fit, as objects of :mod:`aiida_nanoos.potentials.snap`."""

    params: SnapHyperparameters
    weights: FitWeights
    reference: ReferencePotential | None = None
    energy_shift: dict[str, float] = field(default_factory=dict)
    solver: str = "svd"
    fit_energy: bool = True
    fit_force: bool = True
    fit_stress: bool = True
    data_path: str | None = None
    group_fractions: dict[str, tuple[float, float]] = field(default_factory=dict)


def read_fitsnap_input(path: str | Path) -> FitSnapInput:
    """Parse a FitSNAP ``.in`` file."""
    parser = configparser.ConfigParser(inline_comment_prefixes=("#",), interpolation=None)
    parser.optionxform = str  # group and element names are case-sensitive
    parser.read_string(Path(path).read_text())
    bispectrum = parser["BISPECTRUM"]
    elements = tuple(bispectrum.get("type", "").split())
    if not elements:
        raise ValueError(f"{path}: [BISPECTRUM] has no 'type' (element list)")

    def numbers(key: str) -> tuple[float, ...] | None:
        return tuple(float(v) for v in bispectrum[key].split()) if key in bispectrum else None

    def flag(section: configparser.SectionProxy, key: str, default: bool) -> bool:
        return bool(int(float(section.get(key, str(int(default))))))

    twojmax = numbers("twojmax") or (6.0,)
    settings = {
        "twojmax": int(max(twojmax)),
        "rcutfac": float(bispectrum.get("rcutfac", 4.67637)),
        "rfac0": float(bispectrum.get("rfac0", 0.99363)),
        "rmin0": float(bispectrum.get("rmin0", 0.0)),
    }
    for key in ("radelem", "wj"):
        values = numbers(key)
        if values is not None:
            settings[key] = values * len(elements) if len(values) == 1 else values
    for key, default in (
        ("bzeroflag", False),
        ("quadraticflag", False),
        ("chemflag", False),
        ("bnormflag", False),
        ("wselfallflag", False),
        ("switchflag", True),
    ):
        settings[key] = flag(bispectrum, key, default)
    params = SnapHyperparameters(elements=elements, **settings)

    calculator = parser["CALCULATOR"] if parser.has_section("CALCULATOR") else {}
    fit = {q: flag(calculator, q, True) if calculator else True for q in ("energy", "force", "stress")}

    energy_shift = {k: float(v) for k, v in parser["ESHIFT"].items()} if parser.has_section("ESHIFT") else {}

    reference = None
    if parser.has_section("REFERENCE") and "pair_style" in parser["REFERENCE"]:
        section = parser["REFERENCE"]
        coeff_keys = sorted((k for k in section if k.startswith("pair_coeff")), key=lambda k: (len(k), k))
        try:
            reference = ReferencePotential.from_lammps(
                section["pair_style"], [section[k] for k in coeff_keys], elements
            )
        except ValueError:  # only "zero": nothing to subtract
            reference = None

    weights, fractions = _read_groups(parser, fit)
    solver_name = parser.get("SOLVER", "solver", fallback="SVD").lower()
    if solver_name not in _SOLVERS:
        raise ValueError(f"{path}: FitSNAP solver {solver_name!r} is not supported (SVD or RIDGE)")
    return FitSnapInput(
        params=params,
        weights=weights,
        reference=reference,
        energy_shift=energy_shift,
        solver=_SOLVERS[solver_name],
        fit_energy=fit["energy"],
        fit_force=fit["force"],
        fit_stress=fit["stress"],
        data_path=parser.get("PATH", "dataPath", fallback=None),
        group_fractions=fractions,
    )


def _read_groups(
    parser: configparser.ConfigParser, fit: dict[str, bool]
) -> tuple[FitWeights, dict[str, tuple[float, float]]]:
    """Group weights from ``[GROUPS]``; columns follow its ``group_sections`` header."""
    if not parser.has_section("GROUPS"):
        return FitWeights(), {}
    section = parser["GROUPS"]
    columns = section.get("group_sections", "name training_size testing_size eweight fweight vweight").split()[1:]
    skip = {"group_sections", "group_types", "smartweights", "random_sampling", "random_seed", "BOLTZ"}
    groups, fractions = {}, {}
    for name, value in section.items():
        if name in skip or name.startswith("vasp_"):
            continue
        values = dict(zip(columns, (float(v) for v in value.split()), strict=False))
        groups[name] = (
            values.get("eweight", 1.0) * fit["energy"],
            values.get("fweight", 1.0) * fit["force"],
            values.get("vweight", 1.0) * fit["stress"],
        )
        fractions[name] = (values.get("training_size", values.get("size", 1.0)), values.get("testing_size", 0.0))
    defaults = FitWeights()
    return (
        FitWeights(
            energy=defaults.energy * fit["energy"],
            force=defaults.force * fit["force"],
            stress=defaults.stress * fit["stress"],
            groups=groups,
        ),
        fractions,
    )
