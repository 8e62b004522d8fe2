"""Tell a molecular-dynamics run that blew up from one that merely ran hot, from LAMMPS' screen output (no AiiDA).

An ML potential pushed outside its training data can turn repulsive walls into holes: atoms collide, forces
diverge, and LAMMPS either stops (lost atoms, non-numeric coordinates) or keeps printing NaN or absurd
temperatures. The active-learning loop needs to know which, to retry with a smaller timestep and a new seed.
"""

from __future__ import annotations

import math
import re

#: LAMMPS error messages that mean the dynamics became unphysical (not an input mistake).
INSTABILITY_ERRORS = (
    "Lost atoms",
    "Non-numeric atom coords",
    "Non-numeric pressure",
    "Non-numeric box dimensions",
    "Out of range atoms",
    "Too many neighbor bins",
    "Neighbor list overflow",
    "Too many atoms",
)
_NON_FINITE = re.compile(r"^[-+]?(nan|inf|infinity)$", re.IGNORECASE)


def thermo_tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """The thermo blocks of a LAMMPS log: ``(header words, rows of words)`` for each ``Step ...`` header."""
    tables: list[tuple[list[str], list[list[str]]]] = []
    header: list[str] | None = None
    rows: list[list[str]] = []
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == "Step":
            if header is not None:
                tables.append((header, rows))
            header, rows = words, []
            continue
        if header is None:
            continue
        if len(words) == len(header) and _is_number_like(words[0]):
            rows.append(words)
        elif words:
            tables.append((header, rows))
            header, rows = None, []
    if header is not None:
        tables.append((header, rows))
    return tables


def _is_number_like(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return bool(_NON_FINITE.match(word))
    return True


def detect_instability(text: str, max_temperature: float = 1.0e4) -> str | None:
    """Why the run blew up (LAMMPS error, non-finite thermo value, temperature above ``max_temperature`` K), or None."""
    for line in text.splitlines():
        if "ERROR" in line and any(marker in line for marker in INSTABILITY_ERRORS):
            return line.strip()
    for header, rows in thermo_tables(text):
        temperature_column = header.index("Temp") if "Temp" in header else None
        for row in rows:
            for name, word in zip(header, row, strict=True):
                try:
                    value = float(word)
                except ValueError:
                    value = math.nan
                if not math.isfinite(value):
                    return f"non-finite {name} ({word}) at step {row[0]}"
            if temperature_column is not None and float(row[temperature_column]) > max_temperature:
                return (
                    f"temperature {float(row[temperature_column]):.4g} K above {max_temperature:.4g} K at step {row[0]}"
                )
    return None


def energy_drift(time_ps, total_energy, n_atoms: int) -> float:
    """Linear drift of the total energy (meV/atom/ps) from a least-squares line through an NVE run's energies."""
    import numpy as np

    time_ps = np.asarray(time_ps, float)
    total_energy = np.asarray(total_energy, float)
    if len(time_ps) < 2 or np.ptp(time_ps) == 0:
        raise ValueError("need at least two energies at different times to measure a drift")
    slope = np.polyfit(time_ps, total_energy, 1)[0]
    return float(slope / n_atoms * 1000.0)
