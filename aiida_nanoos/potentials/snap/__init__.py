"""SNAP machine-learned potentials: bispectrum descriptors from LAMMPS, weighted linear fits, potential files.

The model (Thompson et al., J. Comput. Phys. 285, 316 (2015)) writes the energy of atom *i* of element *e* as
``E_i = β_e0 + Σ_k β_ek B_ik`` (plus ``½ Σ_kl α_ekl B_ik B_il`` for quadratic SNAP), so energies, forces and
stresses are all linear in the coefficients and a fit is a weighted least-squares problem ``min |W (A β - b)|²``.

Conventions follow FitSNAP so its inputs, weights and reference results carry over unchanged:

* one *energy row* per frame holding the bispectrum sums divided by the number of atoms (target: energy per atom),
  preceded per element by a constant column ``N_e / N`` for ``β_e0``;
* ``3N`` *force rows* (``-dE/dr``, eV/Å) and 6 *stress rows* (``xx yy zz yz xz xy``, in **bar**, positive under
  compression as LAMMPS' pressure) per frame;
* a reference potential (e.g. ZBL) is evaluated in the same LAMMPS run (last column of ``compute snap``) and
  subtracted from the targets; the fitted SNAP is run on top of it with ``pair_style hybrid/overlay``.

Rows of one frame are contiguous (energy, forces atom by atom, stress) and are expressed in the frame's own axes,
so frames can be resampled (bootstrap committees) and predictions compared with the DFT labels directly.

Where things are:

* :mod:`.hyperparameters`: the bispectrum settings (``SnapHyperparameters``, the default cutoff);
* :mod:`.reference`: a baseline such as ZBL that the fit is made on top of (``ReferencePotential``);
* :mod:`.descriptors`: ``compute snap`` in LAMMPS -> the rows of a fit (``DesignMatrix``, ``compute_descriptors``);
* :mod:`.weights`: energy / force / stress row weights (``FitWeights``);
* :mod:`.fit`: the weighted least-squares fit (``fit_design``, ``fit_snap``);
* :mod:`.potential`: the fitted potential, its ``.snapcoeff`` / ``.snapparam`` files, LAMMPS lines (``SnapPotential``);
* :mod:`.committee`: committees for on-the-fly training (``SnapCommittee``, ``fit_committee``).

Everything public is importable from ``aiida_nanoos.potentials.snap`` itself.
"""

from aiida_nanoos.potentials.snap.committee import SnapCommittee, fit_committee, fit_hyperparameter_committee
from aiida_nanoos.potentials.snap.descriptors import (
    ENERGY,
    FORCE,
    ROW_KINDS,
    ROW_UNITS,
    STRESS,
    DesignMatrix,
    compute_descriptors,
)
from aiida_nanoos.potentials.snap.fit import fit_design, fit_snap, solve_weighted_least_squares
from aiida_nanoos.potentials.snap.hyperparameters import SnapHyperparameters, bispectrum_indices, default_rcutfac
from aiida_nanoos.potentials.snap.potential import SnapPotential, read_snapcoeff, read_snapparam
from aiida_nanoos.potentials.snap.reference import ReferencePotential
from aiida_nanoos.potentials.snap.weights import FitWeights

__all__ = [
    "ENERGY",
    "FORCE",
    "ROW_KINDS",
    "ROW_UNITS",
    "STRESS",
    "DesignMatrix",
    "FitWeights",
    "ReferencePotential",
    "SnapCommittee",
    "SnapHyperparameters",
    "SnapPotential",
    "bispectrum_indices",
    "compute_descriptors",
    "default_rcutfac",
    "fit_committee",
    "fit_design",
    "fit_hyperparameter_committee",
    "fit_snap",
    "read_snapcoeff",
    "read_snapparam",
    "solve_weighted_least_squares",
]
