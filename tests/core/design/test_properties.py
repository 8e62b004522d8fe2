"""Band gap, formation energy and stability score from DFT numbers."""

import numpy as np
import pytest

from aiida_nanoos.design import properties


def test_band_gap_counts_electrons_and_finds_an_indirect_gap():
    # 2 k-points, 4 bands, 4 electrons -> bands 0,1 filled; VBM at k0 (-1.0), CBM at k1 (0.5): indirect 1.5 eV
    eigenvalues = np.array([[-5.0, -1.0, 1.0, 3.0], [-4.0, -2.0, 0.5, 2.0]])
    gap = properties.band_gap(eigenvalues, number_of_electrons=4)
    assert gap["band_gap"] == pytest.approx(1.5)
    assert (gap["vbm"], gap["cbm"], gap["direct"], gap["metallic"]) == (-1.0, 0.5, False, False)


def test_band_gap_of_overlapping_bands_is_zero_and_odd_electrons_are_metallic():
    overlapping = np.array([[-5.0, 0.2, 1.0], [-4.0, -2.0, 0.1]])
    assert properties.band_gap(overlapping, number_of_electrons=4)["metallic"]
    assert properties.band_gap(overlapping, number_of_electrons=4)["band_gap"] == 0.0
    assert properties.band_gap(overlapping, number_of_electrons=3)["band_gap"] == 0.0


def test_spin_polarised_gap_uses_occupations():
    eigenvalues = np.array([[[-3.0, -1.0, 2.0]], [[-2.5, 0.5, 2.5]]])  # spin up / down, one k-point
    occupations = np.array([[[1.0, 1.0, 0.0]], [[1.0, 0.0, 0.0]]])
    gap = properties.band_gap(eigenvalues, number_of_electrons=3, occupations=occupations)
    assert gap["band_gap"] == pytest.approx(1.5)  # VBM -1.0 (up), CBM 0.5 (down)


def test_band_gap_needs_empty_bands():
    with pytest.raises(ValueError, match="need bands above"):
        properties.band_gap(np.array([[-1.0, 0.0]]), number_of_electrons=4)


def test_formation_energy_and_stability_score():
    # Si1Ge1 at -220.0 eV with references -108.0 (Si) and -111.9 (Ge): (-220 + 219.9)/2 = -0.05 eV/atom
    energy = properties.formation_energy_per_atom(-220.0, {"Si": 1, "Ge": 1}, {"Si": -108.0, "Ge": -111.9})
    assert energy == pytest.approx(-0.05)
    assert properties.stability_score(0.0) == pytest.approx(0.5)
    assert properties.stability_score(-0.1) == pytest.approx(1 / (1 + np.exp(-1)))
    assert properties.stability_score(-0.5) > properties.stability_score(-0.1) > properties.stability_score(0.3)
    with pytest.raises(ValueError, match=r"no reference energy for element\(s\) \['C'\]"):
        properties.formation_energy_per_atom(-1.0, {"C": 1}, {"Si": -108.0})
