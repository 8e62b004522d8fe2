"""A tiny reader for UPF v2 pseudopotential files: enough to validate a file before it enters a family.

ld1.x can print an error and still leave a (partial) UPF behind, and a file on disk can be truncated; both must
be caught before aiida-pseudo installs the file, because pw.x would only fail much later on a remote computer.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["UpfError", "UpfHeader", "md5sum", "read_upf_header", "validate_upf"]

_HEADER_RE = re.compile(r"<PP_HEADER\b(.*?)/?>", re.S)
_ATTR_RE = re.compile(r'([A-Za-z_]+)\s*=\s*"([^"]*)"')
#: sections without which pw.x cannot use the file (PP_NONLOCAL may be empty for a purely local potential).
_REQUIRED_SECTIONS = ("PP_MESH", "PP_R", "PP_RAB", "PP_LOCAL", "PP_NONLOCAL", "PP_RHOATOM")
#: the functional spellings QE writes for PBE: short name, or the four-part Exchange-correlation label.
_PBE_NAMES = {"PBE", "SLA PW PBE PBE", "SLA PW PBX PBC", "SLA+PW+PBE+PBE", "SLA+PW+PBX+PBC"}


class UpfError(ValueError):
    """The file is not a complete, usable UPF v2 pseudopotential."""


@dataclass(frozen=True)
class UpfHeader:
    """What a family needs to know about one pseudopotential, read from its PP_HEADER."""

    element: str
    functional: str
    pseudo_type: str  # "US", "PAW" or "NC", normalised from QE's USPP/US/PAW/NC/SL
    relativistic: str  # "scalar", "full" or "no"
    z_valence: float
    core_correction: bool
    wfc_cutoff: float  # the generator's suggestion (Ry), informative only
    rho_cutoff: float
    mesh_size: int

    @property
    def is_pbe(self) -> bool:
        """True for every spelling of PBE that QE writes (not PBEsol, not revPBE)."""
        return " ".join(self.functional.upper().split()) in _PBE_NAMES


def md5sum(path: Path) -> str:
    """The md5 of a file: aiida-pseudo identifies pseudopotentials by it."""
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def _normalise_type(raw: str, attrs: dict[str, str]) -> str:
    raw = raw.strip().upper()
    if raw == "PAW" or attrs.get("is_paw", "").lower() in {"t", "true", ".true."}:
        return "PAW"
    if raw in {"US", "USPP"} or attrs.get("is_ultrasoft", "").lower() in {"t", "true", ".true."}:
        return "US"
    return "NC"


def _bool(value: str) -> bool:
    return value.strip().lower() in {"t", "true", ".true."}


def read_upf_header(path: Path) -> UpfHeader:
    """Parse the PP_HEADER of a UPF v2 file; raises UpfError when it is absent or malformed."""
    text = Path(path).read_text(errors="replace")
    return _parse_header(text, Path(path))


def _parse_header(text: str, path: Path) -> UpfHeader:
    if not text.lstrip().startswith("<UPF"):
        raise UpfError(f"{path}: not a UPF v2 file (no <UPF ...> root element)")
    match = _HEADER_RE.search(text)
    if match is None:
        raise UpfError(f"{path}: no PP_HEADER")
    attrs = dict(_ATTR_RE.findall(match.group(1)))
    try:
        return UpfHeader(
            element=attrs["element"].strip(),
            functional=attrs["functional"].strip(),
            pseudo_type=_normalise_type(attrs["pseudo_type"], attrs),
            relativistic=attrs.get("relativistic", "no").strip().lower(),
            z_valence=float(attrs["z_valence"]),
            core_correction=_bool(attrs.get("core_correction", "false")),
            wfc_cutoff=float(attrs.get("wfc_cutoff", "0") or 0),
            rho_cutoff=float(attrs.get("rho_cutoff", "0") or 0),
            mesh_size=int(attrs["mesh_size"]),
        )
    except (KeyError, ValueError) as exc:
        raise UpfError(f"{path}: malformed PP_HEADER ({exc!r})") from exc


def _section_numbers(text: str, tag: str) -> list[float]:
    match = re.search(rf"<{tag}\b[^>]*>(.*?)</{tag}>", text, re.S)
    if match is None:
        return []
    return [float(tok.replace("D", "E").replace("d", "e")) for tok in match.group(1).split()]


def validate_upf(path: Path, element: str | None = None, *, require_pbe: bool = True) -> UpfHeader:
    """Check that ``path`` is a complete UPF for ``element``: header, required sections, a finite local potential.

    Returns the header. A truncated file (no closing ``</UPF>``), a wrong element or functional, or a local
    potential with the wrong number of points or a NaN all raise UpfError.
    """
    path = Path(path)
    if not path.is_file():
        raise UpfError(f"{path}: no such file")
    text = path.read_text(errors="replace")
    header = _parse_header(text, path)
    if not text.rstrip().endswith("</UPF>"):
        raise UpfError(f"{path}: truncated (no closing </UPF>)")
    for section in _REQUIRED_SECTIONS:
        if f"<{section}" not in text:
            raise UpfError(f"{path}: section {section} missing")
    if element is not None and header.element != element:
        raise UpfError(f"{path}: holds element {header.element!r}, expected {element!r}")
    if require_pbe and not header.is_pbe:
        raise UpfError(f"{path}: functional {header.functional!r} is not PBE")
    try:
        vloc = _section_numbers(text, "PP_LOCAL")
    except ValueError as exc:
        raise UpfError(f"{path}: PP_LOCAL is not numeric ({exc})") from exc
    if len(vloc) != header.mesh_size or not all(math.isfinite(v) for v in vloc):
        raise UpfError(f"{path}: PP_LOCAL has {len(vloc)} finite values of {header.mesh_size} expected")
    if header.z_valence <= 0:
        raise UpfError(f"{path}: z_valence {header.z_valence} is not positive")
    return header
