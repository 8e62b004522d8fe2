"""Client of an external candidate proposer (the original design's "AGI agent"): an HTTP endpoint that receives the
campaign's objective, search space and history and answers with candidates.

Protocol (JSON over one POST)::

    request  {"objective": {...}, "search_space": {...}, "history": [...], "batch_size": 4, "iteration": 3}
    response {"candidates": [{"parameters": {...}} | {"cif": "..."} | {"poscar": "..."} | {"structure": {...}},
                             ...],                      # optional per candidate: "generation_method", "rationale"
              "message": "..."}                         # optional

The API key is read from the environment variable *named* in the settings (``api_key_env``) at the moment of the
call and sent as a header; it is never returned, logged, or put in an error message, so nothing the campaign stores
can contain it. Only ``http`` and ``https`` URLs are accepted. Standard library only (urllib).
"""

from __future__ import annotations

import io
import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from ase import Atoms

from aiida_nanoos.design.config import ExternalSettings
from aiida_nanoos.design.spaces import ParameterSpace, atoms_from_dict

#: Longest free-text note of the agent kept with a candidate.
MAX_RATIONALE = 500


class ExternalProposerError(RuntimeError):
    """The endpoint could not be reached, timed out, or answered with something that is not a proposal."""


def _api_key(settings: ExternalSettings) -> str | None:
    if settings.api_key_env is None:
        return None
    key = os.environ.get(settings.api_key_env)
    if not key:
        raise ExternalProposerError(
            f"the environment variable {settings.api_key_env!r} named by config.external.api_key_env is not set "
            "where the campaign runs (for the daemon: set it before `verdi daemon start`)"
        )
    if not all(" " <= char <= "~" for char in key):  # http.client would put the whole header in its error message
        raise ExternalProposerError(
            f"the environment variable {settings.api_key_env!r} holds characters a header cannot carry (a newline, "
            "a control or non-ASCII character); its value is not shown"
        )
    return key


def _scrubbed(value: Any, key: str | None) -> Any:
    """``value`` (decoded JSON or text) with every occurrence of the key replaced, however the agent escaped it."""
    if not key:
        return value
    if isinstance(value, str):
        return value.replace(key, "[redacted]")
    if isinstance(value, list):
        return [_scrubbed(item, key) for item in value]
    if isinstance(value, dict):
        return {_scrubbed(k, key): _scrubbed(v, key) for k, v in value.items()}
    return value


def request_candidates(settings: ExternalSettings, payload: Mapping[str, Any]) -> dict[str, Any]:
    """POST ``payload`` and return the decoded JSON answer; :class:`ExternalProposerError` on any failure."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    key = _api_key(settings)
    if key is not None:
        headers[settings.api_key_header] = f"{settings.api_key_prefix}{key}"
    request = urllib.request.Request(settings.url, data=body, headers=headers, method="POST")
    where = f"proposer at {settings.url}"
    try:
        with urllib.request.urlopen(request, timeout=float(settings.timeout)) as response:  # noqa: S310 (scheme checked)
            raw = response.read(settings.max_response_bytes + 1)
    except urllib.error.HTTPError as exc:
        reason = _scrubbed(str(exc.reason), key)  # server text, may echo it
        raise ExternalProposerError(f"{where} answered HTTP {exc.code} {reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise ExternalProposerError(f"{where} did not answer within {settings.timeout} s") from None
        raise ExternalProposerError(f"{where} is unreachable: {exc.reason}") from None
    except TimeoutError:
        raise ExternalProposerError(f"{where} did not answer within {settings.timeout} s") from None
    except OSError as exc:
        raise ExternalProposerError(f"{where} failed: {exc.strerror or type(exc).__name__}") from None
    except Exception as exc:  # http.client errors quote the headers or the server's bytes: only the type is kept
        raise ExternalProposerError(f"{where} failed: {type(exc).__name__}") from None
    if len(raw) > settings.max_response_bytes:
        raise ExternalProposerError(f"{where} answered more than {settings.max_response_bytes} bytes")
    try:
        # an agent that echoes the key back (verbatim or JSON-escaped) must not get it stored with its answer
        data = _scrubbed(json.loads(_scrubbed(raw.decode(), key)), key)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ExternalProposerError(f"{where} did not answer JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("candidates"), list):
        raise ExternalProposerError(f"{where} answered JSON without a 'candidates' list")
    return data


def _parse_structure(entry: Mapping[str, Any]) -> Atoms:
    import ase.io

    if "cif" in entry:
        text, fmt = entry["cif"], "cif"
    elif "poscar" in entry:
        text, fmt = entry["poscar"], "vasp"
    else:
        return atoms_from_dict(entry["structure"])
    if not isinstance(text, str):
        raise ValueError(f"'{fmt}' must be text")
    atoms = ase.io.read(io.StringIO(text), format=fmt)
    if isinstance(atoms, list):
        atoms = atoms[0]
    return atoms


def parse_candidates(
    space: ParameterSpace, data: Mapping[str, Any], limit: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Valid candidates (``{"parameters" | "atoms", "generation_method", "rationale"}``) and rejections
    (``{"index", "reason"}``) of a proposer's answer, checked against the space (points in range, structures
    meeting the element and size constraints). At most ``limit`` are kept."""
    accepted: list[dict[str, Any]] = []
    rejected: list[dict[str, Any]] = []
    for index, entry in enumerate(data.get("candidates") or []):
        if len(accepted) >= limit:
            rejected.append({"index": index, "reason": f"more than the batch size {limit}"})
            continue
        if not isinstance(entry, Mapping):
            rejected.append({"index": index, "reason": "not an object"})
            continue
        kinds = [k for k in ("parameters", "cif", "poscar", "structure") if k in entry]
        if len(kinds) != 1:
            rejected.append({"index": index, "reason": "needs exactly one of parameters, cif, poscar, structure"})
            continue
        try:
            if kinds[0] == "parameters":
                point = dict(entry["parameters"])
                space.validate_point(point)
                point = space.decode(space.encode(point))[0]  # normalise (e.g. whole numbers of sites)
                violations = space.violations(point)
                atoms = None
            else:
                point = None
                atoms = _parse_structure(entry)
                if len(atoms) == 0 or not all(math.isfinite(x) for x in atoms.positions.ravel()):
                    raise ValueError("empty structure or non-finite positions")
                if abs(atoms.get_volume()) < 1e-6:
                    raise ValueError("cell has no volume")
                violations = space.violations(atoms)
        except Exception as exc:  # anything an untrusted answer can break is a rejection, never a crash
            rejected.append({"index": index, "reason": f"{kinds[0]}: {type(exc).__name__}: {str(exc)[:200]}"})
            continue
        if violations:
            rejected.append({"index": index, "reason": "; ".join(violations)})
            continue
        method = entry.get("generation_method")
        rationale = entry.get("rationale")
        accepted.append(
            {
                "parameters": point,
                "atoms": atoms,
                "generation_method": f"external:{method}" if isinstance(method, str) and method else "external",
                "rationale": rationale[:MAX_RATIONALE] if isinstance(rationale, str) else None,
            }
        )
    return accepted, rejected


__all__ = ["ExternalProposerError", "ExternalSettings", "parse_candidates", "request_candidates"]
