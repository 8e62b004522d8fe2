"""Crystal-graph convolutional network (CGCNN-like) with honest uncertainty: MC dropout and deep ensembles.

Pure torch + numpy (no AiiDA). A :class:`CrystalGraphModel` is an ensemble of ``n_members`` independently
initialised networks (one member for plain MC dropout) plus everything needed to reproduce its predictions:
the graph settings, the target name, its standardisation, a composition baseline and the uncertainty
recalibration factors. It saves to two files, a torch weights file and a JSON config, so the AiiDA layer
can store both in one Data node.

Network (Xie & Grossman, PRL 120, 145301 (2018), with a few data-efficiency changes):

* node input: a fixed table of physical element features (``graph.element_feature_table``) mapped by a
  linear layer, plus a learned per-element correction;
* edge input: Gaussian expansions of the distance and of the distance over the sum of covalent radii
  (how stretched a bond is), times a smooth cosine envelope, so an atom entering or leaving the cutoff
  changes the output continuously;
* ``n_conv`` gated convolutions h_i <- softplus(h_i + BN(sum_j sigmoid(z_ij W_f) * softplus(z_ij W_s))),
  z_ij = [h_i, h_j, e_ij], each followed by dropout (which MC dropout keeps on at prediction time);
* mean pooling, a two-layer head; for an extensive target (eV per cell) the head predicts a per-atom value
  that is multiplied by the number of atoms, so a supercell gets the same per-atom prediction;
* optionally (``Architecture.aleatoric``) a second output, the scale b of a Laplace error distribution,
  trained by its likelihood (the location is still fitted by absolute error): sigma^2 reported =
  spread of the samples^2 (epistemic) + 2 b^2 (aleatoric).

The network learns the residual of a ridge-regression composition baseline (a common per-atom value plus
per-element terms, as the atom reference energies of interatomic potentials), standardised, so it spends
its capacity on what composition alone does not explain (on perov5 the baseline takes the MAE from 0.54
to 0.42 eV/cell; site occupation and geometry carry the rest).

Measured choices (perov5 val.csv, deterministic 80/20 split, shared 2-core machine): dropout 0.1 costs
~12 % MAE, so ensembles train without it; 60 -> 120 epochs of one member only 0.073 -> 0.071 eV/cell;
three members in 540 s reach 0.067.

Speed and reproducibility: the far tails of the Gaussian edge expansions underflowed to denormal floats, which
made the CPU matrix products of the edge maps 5-10x slower (a training step of 64 perov5 cells took 0.20 CPU s,
0.043 s once tails below 1e-6 are zero). A time budget can be counted in CPU seconds of the process
(``TrainingSettings.clock = 'cpu'``, the default of ``benchmark gnn``): on a shared machine a wall-time budget
trained 1-14 epochs per member instead of ~150 and the test MAE went from ~0.07 to 0.14-0.29 eV/cell.

Layout: :mod:`~aiida_nanoos.models.cgcnn_network` (architecture, convolutions, one member, batched graphs),
:mod:`~aiida_nanoos.models.ensemble` (the trained model, its uncertainty and :class:`Posterior`, persistence) and
:mod:`~aiida_nanoos.models.cgcnn_training` (baseline, members, calibration). This module gathers their public names.
"""

from __future__ import annotations

from aiida_nanoos.models.cgcnn_network import (
    UNCERTAINTY_METHODS,
    Architecture,
    CrystalGraphNetwork,
    GraphDataset,
    default_architecture,
)
from aiida_nanoos.models.cgcnn_training import (
    TrainingSettings,
    decide_extensive,
    fit_composition_baseline,
    train_model,
)
from aiida_nanoos.models.ensemble import (
    CONFIG_FILENAME,
    FORMAT_VERSION,
    WEIGHTS_FILENAME,
    CrystalGraphModel,
    UncertainPrediction,
)

__all__ = [
    "CONFIG_FILENAME",
    "FORMAT_VERSION",
    "UNCERTAINTY_METHODS",
    "WEIGHTS_FILENAME",
    "Architecture",
    "CrystalGraphModel",
    "CrystalGraphNetwork",
    "GraphDataset",
    "TrainingSettings",
    "UncertainPrediction",
    "decide_extensive",
    "default_architecture",
    "fit_composition_baseline",
    "train_model",
]
