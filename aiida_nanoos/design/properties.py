"""Materials properties from DFT results: band gap from eigenvalues, formation energy, stability score. No AiiDA."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

#: Energy scale (eV/atom) of the stability score: a formation energy of -0.1 eV/atom scores 0.73, +0.1 scores 0.27.
STABILITY_SCALE = 0.1


def band_gap(eigenvalues: np.ndarray, number_of_electrons: float, occupations: np.ndarray | None = None) -> dict:
    """Band gap (eV) from eigenvalues on a k-point mesh: lowest unoccupied minus highest occupied level.

    ``eigenvalues`` has shape ``(n_kpoints, n_bands)`` (spin-unpolarised: each band holds two electrons) or
    ``(2, n_kpoints, n_bands)`` (collinear spin: then ``occupations`` of the same shape, in [0, 1], decide which
    levels are filled). A system whose highest occupied level lies above its lowest unoccupied one is a metal:
    gap 0. The gap is that of the mesh, so it is an upper bound of the true gap when the band edges lie between
    mesh points; ``direct`` says whether both edges sit at the same k-point.
    """
    eigenvalues = np.asarray(eigenvalues, float)
    if eigenvalues.ndim == 2:
        filled_bands = number_of_electrons / 2.0
        if abs(filled_bands - round(filled_bands)) > 1e-6:
            return {"band_gap": 0.0, "vbm": None, "cbm": None, "direct": False, "metallic": True}
        filled = int(round(filled_bands))
        if filled < 1 or filled >= eigenvalues.shape[1]:
            raise ValueError(
                f"need bands above the {filled} filled ones to see a gap, got {eigenvalues.shape[1]} bands"
            )
        occupied = np.zeros_like(eigenvalues, dtype=bool)
        occupied[:, :filled] = True
    elif eigenvalues.ndim == 3:
        if occupations is None:
            raise ValueError("spin-polarised eigenvalues need occupations to tell filled from empty levels")
        occupied = np.asarray(occupations, float) > 0.5
        eigenvalues = eigenvalues.reshape(-1, eigenvalues.shape[-1])
        occupied = occupied.reshape(eigenvalues.shape)
    else:
        raise ValueError(f"eigenvalues must have 2 or 3 dimensions, got shape {eigenvalues.shape}")
    if occupied.all() or not occupied.any():
        raise ValueError("need both occupied and empty levels to compute a gap")
    valence = np.where(occupied, eigenvalues, -np.inf)
    conduction = np.where(occupied, np.inf, eigenvalues)
    vbm_index = np.unravel_index(np.argmax(valence), valence.shape)
    cbm_index = np.unravel_index(np.argmin(conduction), conduction.shape)
    vbm, cbm = float(valence[vbm_index]), float(conduction[cbm_index])
    gap = max(0.0, cbm - vbm)
    n_k = eigenvalues.shape[0] // (2 if occupations is not None and np.ndim(occupations) == 3 else 1)
    return {
        "band_gap": gap,
        "vbm": vbm,
        "cbm": cbm,
        "direct": bool(gap > 0 and vbm_index[0] % n_k == cbm_index[0] % n_k),
        "metallic": gap == 0.0,
    }


def formation_energy_per_atom(
    total_energy: float, composition: Mapping[str, int], reference_energies: Mapping[str, float]
) -> float:
    """(E - Σ n_i μ_i) / N in eV/atom, with μ_i the energy per atom of element i in its reference crystal."""
    missing = sorted(set(composition) - set(reference_energies))
    if missing:
        raise ValueError(f"no reference energy for element(s) {missing}")
    count = sum(composition.values())
    if count <= 0:
        raise ValueError("composition has no atoms")
    reference = sum(n * reference_energies[element] for element, n in composition.items())
    return (total_energy - reference) / count


def stability_score(formation_energy: float, scale: float = STABILITY_SCALE) -> float:
    """A score in (0, 1) that rises as the formation energy (eV/atom) falls: 1 / (1 + exp(ΔH_f / scale))."""
    return float(1.0 / (1.0 + np.exp(np.clip(formation_energy / scale, -500, 500))))
