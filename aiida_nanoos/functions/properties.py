"""Calcfunctions that turn DFT outputs into campaign properties (band gap, formation energy, stability score)."""

from __future__ import annotations

from aiida import orm
from aiida.engine import calcfunction

from aiida_nanoos.design import properties


@calcfunction
def band_gap_properties(bands: orm.BandsData, parameters: orm.Dict) -> orm.Dict:
    """Band gap from the SCF eigenvalues (pw.x's k-point mesh) with the total energy of the same run."""
    eigenvalues, occupations = bands.get_bands(also_occupations=True)
    if eigenvalues.ndim == 3:  # collinear spin: occupations per spin channel in [0, 1]
        gap = properties.band_gap(eigenvalues, parameters["number_of_electrons"], occupations=occupations)
    else:
        gap = properties.band_gap(eigenvalues, parameters["number_of_electrons"])
    atoms = parameters["number_of_atoms"]
    return orm.Dict(
        {
            "bandgap": gap["band_gap"],
            "vbm": gap["vbm"],
            "cbm": gap["cbm"],
            "direct_gap": gap["direct"],
            "metallic": gap["metallic"],
            "total_energy": parameters["energy"],
            "energy_per_atom": parameters["energy"] / atoms,
        }
    )


@calcfunction
def formation_energy_properties(
    structure: orm.StructureData, parameters: orm.Dict, reference_energies: orm.Dict
) -> orm.Dict:
    """Formation energy per atom against elemental references computed with the same settings, and its score."""
    composition: dict[str, int] = {}
    for site in structure.sites:
        symbol = structure.get_kind(site.kind_name).symbol
        composition[symbol] = composition.get(symbol, 0) + 1
    formation_energy = properties.formation_energy_per_atom(
        parameters["energy"], composition, reference_energies.get_dict()
    )
    return orm.Dict(
        {
            "formation_energy": formation_energy,
            "stability_score": properties.stability_score(formation_energy),
            "total_energy": parameters["energy"],
            "energy_per_atom": parameters["energy"] / len(structure.sites),
        }
    )


@calcfunction
def collect_reference_energies(**energies: orm.Dict) -> orm.Dict:
    """Energy per atom of each element's reference crystal, from the ``output_parameters`` of its SCF."""
    return orm.Dict({element: node["energy"] / node["number_of_atoms"] for element, node in energies.items()})
