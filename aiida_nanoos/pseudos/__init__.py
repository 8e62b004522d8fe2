"""Offline PBE pseudopotentials for the ``nanoos/PBE/US`` family (pure Python, no AiiDA import).

Every pseudopotential is PBE, scalar-relativistic and ultrasoft (RRKJ), so one family serves all covered
elements with one set of conventions. Where Debian's ``quantum-espresso-data`` already ships exactly such a
file (pslibrary 1.0.0 for B, N, Si) it is used as is; every other element is generated with QE's ``ld1.x`` from
the inputs in ``inputs/`` (pslibrary style, written for this package). Debian's PBE files for H, C, O and Ge are
*not* used: for H and Ge Debian has only PAW data sets (H non-relativistic, Ge without the 3d shell that Ga keeps
here), for C and O only non-relativistic ultrasoft files without their generation input, or PAW. Mixing them in
would break the family's rule: all ultrasoft, all scalar-relativistic, every file reproducible from its input.

``prepare_pseudopotentials`` writes exactly one UPF per element into a directory, which is what
``aiida-pseudo install family`` wants; ``recommended_cutoffs`` gives the cutoffs measured with pw.x (see
``cutoffs.json``) and ``family_provenance`` a JSON-serialisable record of where each file came from.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .ld1 import Ld1Error, find_executable, run_ld1
from .upf import UpfError, UpfHeader, md5sum, read_upf_header, validate_upf

__all__ = [
    "COVERED_ELEMENTS",
    "DEBIAN_PSEUDO_DIR",
    "FAMILY_LABEL",
    "FAMILY_VERSION",
    "PseudoRecord",
    "PseudoSourceError",
    "embedded_input",
    "family_provenance",
    "input_md5",
    "input_text",
    "prepare_pseudopotentials",
    "recommended_cutoffs",
    "write_cutoffs_json",
]

#: label of the aiida-pseudo cutoffs family built from these files; FAMILY_VERSION changes with any input.
FAMILY_LABEL = "nanoos/PBE/US"
FAMILY_VERSION = "0.1"
#: where Debian's quantum-espresso-data puts its UPF files.
DEBIAN_PSEUDO_DIR = Path(os.environ.get("NANOOS_DEBIAN_PSEUDO_DIR", "/usr/share/espresso/pseudo"))

#: element -> Debian file used as is (pslibrary 1.0.0, PBE, scalar-relativistic, ultrasoft).
_DEBIAN_FILES: dict[str, str] = {
    "B": "B.pbe-n-rrkjus_psl.1.0.0.UPF",
    "N": "N.pbe-n-rrkjus_psl.1.0.0.UPF",
    "Si": "Si.pbe-nl-rrkjus_psl.1.0.0.UPF",
}
#: elements generated with ld1.x from inputs/<El>.in.
_GENERATED = ("H", "C", "O", "Al", "P", "S", "Ga", "Ge", "As", "Se", "Mo", "Te", "W")

#: covered elements in periodic-table order.
COVERED_ELEMENTS: tuple[str, ...] = tuple("H B C N O Al Si P S Ga Ge As Se Mo Te W".split())
assert set(COVERED_ELEMENTS) == {*_DEBIAN_FILES, *_GENERATED}

#: the largest |e_AE - e_PS| (Ry) of the reference configuration that a freshly generated file may show.
_MAX_EIGENVALUE_ERROR = 2.0e-3


class PseudoSourceError(RuntimeError):
    """A pseudopotential can be neither taken from Debian nor generated on this machine."""


@dataclass(frozen=True)
class PseudoRecord:
    """One pseudopotential of the family: the file and where it came from."""

    element: str
    path: Path
    source: str  # "debian:/usr/share/espresso/pseudo/<file>" or "generated:ld1.x (QE x.y) from aiida_nanoos/..."
    md5: str
    functional: str
    pseudo_type: str  # "US", "PAW" or "NC"
    relativistic: str
    z_valence: float
    cutoff_wfc: float  # recommended, Ry
    cutoff_rho: float  # recommended, Ry
    reused: bool  # True when an existing file was kept instead of being copied or generated again

    @property
    def filename(self) -> str:
        """File name inside the family directory."""
        return self.path.name

    def as_dict(self) -> dict[str, object]:
        """JSON-serialisable form (path as a string)."""
        data = asdict(self)
        data["path"] = str(self.path)
        data["filename"] = self.filename
        return data


# -- package data ------------------------------------------------------------------------------------------------


def _package_file(*parts: str) -> Path:
    return Path(str(resources.files(__name__).joinpath(*parts)))


def input_text(element: str) -> str:
    """The shipped ld1.x input for a generated element."""
    if element not in _GENERATED:
        raise KeyError(f"{element} is not generated with ld1.x (covered by Debian or not covered)")
    return _package_file("inputs", f"{element}.in").read_text()


def input_md5(element: str) -> str:
    """md5 of a generated element's input as ld1.x embeds it: ties a measurement to the input it was made with."""
    return hashlib.md5("\n".join(_normalise_input(input_text(element))).encode()).hexdigest()


def _input_filename(element: str) -> str:
    """The UPF file name that the input's ``file_pseudopw`` asks ld1.x to write."""
    match = re.search(r"file_pseudopw\s*=\s*'([^']+)'", input_text(element))
    if match is None:
        raise ValueError(f"inputs/{element}.in has no file_pseudopw")
    return match.group(1)


@lru_cache(maxsize=1)
def _cutoff_table() -> dict[str, object]:
    return json.loads(_package_file("cutoffs.json").read_text())


def recommended_cutoffs(elements: Iterable[str] | None = None, stringency: str = "normal") -> dict[str, dict]:
    """Recommended cutoffs in aiida-pseudo's format: ``{element: {"cutoff_wfc": Ry, "cutoff_rho": Ry}}``.

    Stringencies are ``low``, ``normal`` and ``high``: total energy converged to 2, 1 and 0.2 mRy/atom, and
    lattice constant or bond length (as implied by the pressure or force error) to 0.3, 0.1 and 0.07 %;
    ``cutoffs.json`` records how and on which systems this was measured.
    """
    table = _cutoff_table()
    if stringency not in table["stringencies"]:
        raise KeyError(f"unknown stringency {stringency!r}; have {sorted(table['stringencies'])}")
    per_element = table["stringencies"][stringency]
    selected = COVERED_ELEMENTS if elements is None else _check_elements(elements)
    return {
        el: {"cutoff_wfc": per_element[el]["cutoff_wfc"], "cutoff_rho": per_element[el]["cutoff_rho"]}
        for el in selected
    }


def write_cutoffs_json(path: Path, elements: Iterable[str] | None = None, stringency: str = "normal") -> Path:
    """Write the cutoffs for ``aiida-pseudo family cutoffs set LABEL FILE -s normal -u Ry``."""
    path = Path(path)
    path.write_text(json.dumps(recommended_cutoffs(elements, stringency), indent=2, sort_keys=True) + "\n")
    return path


# -- validation helpers ------------------------------------------------------------------------------------------


def _check_elements(elements: Iterable[str]) -> tuple[str, ...]:
    selected = tuple(dict.fromkeys(elements))
    unknown = [el for el in selected if el not in COVERED_ELEMENTS]
    if unknown:
        raise ValueError(f"no pseudopotential for {unknown}; covered: {', '.join(COVERED_ELEMENTS)}")
    return selected


def _normalise_input(text: str) -> list[str]:
    """Input lines as ld1.x embeds them (stripped, ``&`` written as ``@``), for comparing file and input."""
    lines = []
    for line in text.splitlines():
        line = line.strip()
        if line:
            lines.append("&" + line[1:] if line.startswith("@") else line)
    return lines


def embedded_input(path: Path) -> str | None:
    """The generation input that ld1.x embedded in a UPF (PP_INPUTFILE), or None."""
    match = re.search(r"<PP_INPUTFILE>\s*\n(.*?)</PP_INPUTFILE>", Path(path).read_text(errors="replace"), re.S)
    return None if match is None else "\n".join(_normalise_input(match.group(1))) + "\n"


def _generator_version(path: Path) -> str:
    match = re.search(r'generated="[^"]*?v\.\s*([^"\s]+)', Path(path).read_text(errors="replace")[:20000])
    return match.group(1) if match else "unknown"


def _check_header(header: UpfHeader, path: Path) -> None:
    """The family's rule: PBE, ultrasoft, scalar-relativistic."""
    if header.pseudo_type != "US" or header.relativistic != "scalar":
        raise UpfError(f"{path}: {header.pseudo_type}/{header.relativistic}, the family needs US/scalar")


def _is_good_generated(path: Path, element: str) -> bool:
    try:
        _check_header(validate_upf(path, element), path)
    except UpfError:
        return False
    return embedded_input(path) == "\n".join(_normalise_input(input_text(element))) + "\n"


def _is_good_copy(path: Path, element: str, original: Path) -> bool:
    try:
        validate_upf(path, element)
    except UpfError:
        return False
    return original.is_file() and md5sum(path) == md5sum(original)


# -- preparing the family directory -----------------------------------------------------------------------------


def _target_name(element: str) -> str:
    return _DEBIAN_FILES[element] if element in _DEBIAN_FILES else _input_filename(element)


def _is_own_file(name: str, element: str) -> bool:
    """True for a UPF this module writes for ``element`` (any version), which it may replace."""
    return re.fullmatch(rf"{element}\.pbe-[\w-]*rrkjus_nanoos\.[\d.]+\.UPF", name) is not None


def _clear_stale(directory: Path, wanted: Mapping[str, str]) -> None:
    """Remove our own outdated UPFs (an element's file of another version); refuse anything else."""
    stale, foreign = [], []
    for entry in sorted(directory.iterdir()):
        if entry.name in wanted.values():
            continue
        name = entry.name.removeprefix(".").removesuffix(".partial")  # leftovers of an interrupted copy too
        own = entry.is_file() and (any(_is_own_file(name, el) for el in wanted) or name in wanted.values())
        (stale if own else foreign).append(entry)
    if foreign:
        raise ValueError(
            f"{directory} must hold only the family's UPF files (aiida-pseudo installs every file in it); "
            f"found {[p.name for p in foreign]}. Use an empty or dedicated directory."
        )
    for entry in stale:
        entry.unlink()


def _install_atomically(source: Path, target: Path) -> None:
    tmp = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def _generate(element: str, target: Path, ld1: str) -> None:
    """Run ld1.x on the shipped input in a temporary directory, check its output and the UPF, then install."""
    text = input_text(element)
    result, workdir = run_ld1(text, ld1=ld1)
    produced = workdir / _input_filename(element)
    header = validate_upf(produced, element)  # on any failure the work directory is kept for inspection
    _check_header(header, produced)
    if not result.tests or not result.tests[0]:
        raise Ld1Error(f"ld1.x printed no pseudo-atom test for {element} (work directory {workdir})")
    error = result.max_eigenvalue_error
    if not error <= _MAX_EIGENVALUE_ERROR:
        raise Ld1Error(
            f"{element}: pseudo eigenvalues differ from all-electron ones by {error:.2e} Ry "
            f"(> {_MAX_EIGENVALUE_ERROR:.0e}); output in {workdir}"
        )
    _install_atomically(produced, target)
    shutil.rmtree(workdir, ignore_errors=True)


def _prepare_files(
    directory: Path, selected: tuple[str, ...], ld1: str, debian_dir: Path
) -> dict[str, tuple[Path, str, bool]]:
    """Materialise the UPF files; returns element -> (path, source, reused)."""
    wanted = {el: _target_name(el) for el in selected}
    directory.mkdir(parents=True, exist_ok=True)
    _clear_stale(directory, wanted)
    missing_debian = [el for el in selected if el in _DEBIAN_FILES and not (debian_dir / _DEBIAN_FILES[el]).is_file()]
    if missing_debian:
        raise PseudoSourceError(
            f"Debian's pseudopotentials for {missing_debian} are not in {debian_dir}: install the Debian package "
            f"'quantum-espresso-data' (apt-get install quantum-espresso-data)"
        )
    needs_ld1 = [el for el in selected if el in _GENERATED and not _is_good_generated(directory / wanted[el], el)]
    if needs_ld1 and find_executable(ld1) is None:
        raise PseudoSourceError(
            f"ld1.x ({ld1!r}) is not available to generate {needs_ld1}, which Debian's quantum-espresso-data does "
            f"not ship in PBE: install the Debian package 'quantum-espresso' (apt-get install quantum-espresso), "
            f"or pass ld1= the path of QE's ld1.x"
        )
    files: dict[str, tuple[Path, str, bool]] = {}
    for el in selected:
        target = directory / wanted[el]
        if el in _DEBIAN_FILES:
            original = debian_dir / _DEBIAN_FILES[el]
            reused = _is_good_copy(target, el, original)
            if not reused:
                _install_atomically(original, target)
            source = f"debian:{original}"
        else:
            reused = el not in needs_ld1
            if not reused:
                _generate(el, target, ld1)
            source = f"generated:ld1.x (QE {_generator_version(target)}) from aiida_nanoos/pseudos/inputs/{el}.in"
        _check_header(validate_upf(target, el), target)
        files[el] = (target, source, reused)
    return files


def prepare_pseudopotentials(
    directory: Path,
    elements: Iterable[str] | None = None,
    ld1: str = "ld1.x",
    *,
    debian_dir: Path | None = None,
    stringency: str = "normal",
) -> dict[str, PseudoRecord]:
    """Write exactly one UPF per element into ``directory`` and return what each one is.

    Files already present are kept when they are valid and identical to what would be produced (same md5 as the
    Debian file; for generated files, the same embedded ld1.x input), so a second call is fast and changes
    nothing. Older versions of our own files are replaced; any other file in ``directory`` is an error, because
    aiida-pseudo would install it as part of the family. Raises PseudoSourceError when a needed Debian file or
    ld1.x is missing, and Ld1Error when generation fails.
    """
    selected = COVERED_ELEMENTS if elements is None else _check_elements(elements)
    cutoffs = recommended_cutoffs(selected, stringency)
    debian_dir = DEBIAN_PSEUDO_DIR if debian_dir is None else Path(debian_dir)
    records: dict[str, PseudoRecord] = {}
    for el, (path, source, reused) in _prepare_files(Path(directory), selected, ld1, debian_dir).items():
        header = read_upf_header(path)
        records[el] = PseudoRecord(
            element=el,
            path=path,
            source=source,
            md5=md5sum(path),
            functional=header.functional,
            pseudo_type=header.pseudo_type,
            relativistic=header.relativistic,
            z_valence=header.z_valence,
            cutoff_wfc=cutoffs[el]["cutoff_wfc"],
            cutoff_rho=cutoffs[el]["cutoff_rho"],
            reused=reused,
        )
    return records


def family_provenance(records: Mapping[str, PseudoRecord]) -> dict[str, object]:
    """JSON-serialisable provenance of a prepared family, to store next to it (Dict node or extras).

    Per element: file, source, md5, type and cutoffs (plus the md5 of the ld1.x input for generated files), the
    systems its cutoffs were measured on, and the physical checks (``verification.json``) it took part in.
    """
    table = _cutoff_table()
    verification = json.loads(_package_file("verification.json").read_text())["checks"]
    elements: dict[str, dict[str, object]] = {}
    for el, rec in sorted(records.items(), key=lambda item: COVERED_ELEMENTS.index(item[0])):
        entry = {k: v for k, v in rec.as_dict().items() if k not in {"path", "reused"}}
        if el in _GENERATED:
            entry["input_md5"] = input_md5(el)
        entry["cutoffs_measured_on"] = table["measurements"][el]["system"]
        entry["checks"] = {
            name: {
                key: check[key]
                for key in ("quantity", "value", "experiment", "pbe_reference", "deviation_vs_experiment_pct", "passed")
            }
            for name, check in verification.items()
            if el in check["pseudopotentials"]
        }
        elements[el] = entry
    return {
        "family_label": FAMILY_LABEL,
        "family_version": FAMILY_VERSION,
        "functional": "PBE",
        "pseudo_type": "US",
        "relativistic": "scalar",
        "cutoff_units": "Ry",
        "cutoffs_method": table["method"],
        "elements": elements,
        "cutoffs": {name: {el: dict(values[el]) for el in elements} for name, values in table["stringencies"].items()},
    }
