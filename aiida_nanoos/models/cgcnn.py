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
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from ase.data import covalent_radii
from torch import nn

from aiida_nanoos.models.calibration import Recalibration, fit_recalibration
from aiida_nanoos.models.graph import (
    MAX_ATOMIC_NUMBER,
    CrystalGraph,
    GraphSettings,
    composition_matrix,
    element_feature_table,
    gaussian_centres,
    structures_to_graphs,
)

FORMAT_VERSION = 1
WEIGHTS_FILENAME = "model.pt"
CONFIG_FILENAME = "model.json"
UNCERTAINTY_METHODS = ("ensemble", "mc_dropout")


@dataclass
class Architecture:
    """Network size and regularisation; stored in the model config."""

    hidden: int = 64  #: node feature width
    n_conv: int = 3  #: graph convolutions
    head_hidden: int = 128  #: width of the hidden layer of the head
    dropout: float = 0.1  #: dropout after each convolution and in the head (needed for MC dropout)
    gaussian_spacing: float = 0.2  #: Å between centres of the distance expansion (also its width)
    learned_embedding: bool = True  #: add a learned per-element vector to the physical features
    aleatoric: bool = True  #: also predict a per-structure error scale (Laplace), trained by its likelihood
    bond_ratio_bins: int = 16  #: Gaussians of d / (r_cov,i + r_cov,j) over 0.5..2 added to each edge (0: none)


def default_architecture(method: str = "ensemble") -> Architecture:
    """The architecture for an uncertainty method: dropout only where MC dropout needs it.

    Dropout costs accuracy (on perov5, 80/20 split, one member of 60 epochs: test MAE 0.073 without dropout,
    0.082 with 0.1), so ensembles train without it; MC dropout cannot sample without it. Both predict an
    aleatoric error scale: with it the Spearman correlation of |error| and sigma rose from 0.07 to 0.23 for a
    three-member ensemble at unchanged MAE (0.067).
    """
    if method not in UNCERTAINTY_METHODS:
        raise ValueError(f"unknown uncertainty method '{method}', choose from {UNCERTAINTY_METHODS}")
    return Architecture(dropout=0.0 if method == "ensemble" else 0.1, aleatoric=True)


@dataclass
class TrainingSettings:
    """How members are trained; the wall-time budget bounds the whole ensemble."""

    epochs: int = 80  #: epochs per member (cosine schedule over them; a time budget may stop earlier)
    time_budget: float | None = None  #: seconds of wall time for all members together
    batch_size: int = 64
    learning_rate: float = 2.0e-3
    weight_decay: float = 1.0e-4
    patience: int = 60  #: epochs without validation improvement before a member stops
    loss: str = "l1"  #: 'l1' (the metric is an MAE) or 'mse'
    bootstrap: bool = False  #: resample each member's training set (with replacement)
    baseline_ridge: float = 1.0e-3  #: ridge penalty of the composition baseline (in target units squared)
    #: torch threads (process-wide); the graph operations are small, so more threads mostly contend: on a
    #: shared 2-core machine a training step took 0.04 s with 1 thread and 0.26-0.45 s with 2. None: keep.
    threads: int | None = 1


def _envelope(distance: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Cosine cutoff: 1 at d = 0, 0 with zero slope at the cutoff."""
    return 0.5 * (torch.cos(math.pi * distance.clamp(max=cutoff) / cutoff) + 1.0)


class _Convolution(nn.Module):
    """CGCNN gated convolution; the linear map of [h_i, h_j, e_ij] is split so node parts run per atom."""

    def __init__(self, hidden: int, n_edge_features: int):
        super().__init__()
        self.centre = nn.Linear(hidden, 2 * hidden)
        self.neighbour = nn.Linear(hidden, 2 * hidden, bias=False)
        self.edge = nn.Linear(n_edge_features, 2 * hidden, bias=False)
        self.norm_message = nn.BatchNorm1d(2 * hidden)
        self.norm_sum = nn.BatchNorm1d(hidden)

    def forward(self, nodes: torch.Tensor, centre: torch.Tensor, neighbour: torch.Tensor, edges: torch.Tensor):
        if not self.training and not torch.is_grad_enabled():
            return self._inference(nodes, centre, neighbour, edges)
        message = self.centre(nodes)[centre] + self.neighbour(nodes)[neighbour] + self.edge(edges)
        gate, core = self.norm_message(message).chunk(2, dim=1)
        message = torch.sigmoid(gate) * nn.functional.softplus(core)
        summed = torch.zeros_like(nodes).index_add_(0, centre, message)
        return nn.functional.softplus(nodes + self.norm_sum(summed))

    def _inference(self, nodes: torch.Tensor, centre: torch.Tensor, neighbour: torch.Tensor, edges: torch.Tensor):
        """Same result with the message batch norm folded into the linear maps and in-place edge operations:
        the per-edge tensors dominate the cost of screening, so each pass over them counts."""
        norm = self.norm_message
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        shift = norm.bias - norm.running_mean * scale
        centre_part = torch.addmm(self.centre.bias * scale + shift, nodes, (self.centre.weight * scale[:, None]).T)
        neighbour_part = nodes @ (self.neighbour.weight * scale[:, None]).T
        message = centre_part.index_select(0, centre)
        message += neighbour_part.index_select(0, neighbour)
        message.addmm_(edges, (self.edge.weight * scale[:, None]).T)
        gate, core = message.chunk(2, dim=1)
        core = nn.functional.softplus(core)
        gate = gate.sigmoid_().mul_(core)
        summed = torch.zeros_like(nodes).index_add_(0, centre, gate)
        return nn.functional.softplus(nodes + self.norm_sum(summed))


class CrystalGraphNetwork(nn.Module):
    """One ensemble member: graph -> (per-atom or per-structure) standardised value and pooled embedding."""

    def __init__(self, architecture: Architecture, cutoff: float):
        super().__init__()
        self.architecture = architecture
        self.cutoff = cutoff
        table = torch.from_numpy(element_feature_table())
        self.register_buffer("element_features", table)
        centres = gaussian_centres(cutoff, architecture.gaussian_spacing).astype(np.float32)
        self.register_buffer("centres", torch.from_numpy(centres))
        hidden = architecture.hidden
        self.node_input = nn.Linear(table.shape[1], hidden)
        self.element_embedding = nn.Embedding(MAX_ATOMIC_NUMBER + 1, hidden) if architecture.learned_embedding else None
        if self.element_embedding is not None:
            nn.init.zeros_(self.element_embedding.weight)
        n_edge_features = len(centres) + architecture.bond_ratio_bins
        if architecture.bond_ratio_bins:
            radii = torch.from_numpy(np.asarray(covalent_radii[: MAX_ATOMIC_NUMBER + 1], np.float32))
            self.register_buffer("covalent_radii", radii)
            ratios = np.linspace(0.5, 2.0, architecture.bond_ratio_bins).astype(np.float32)
            self.register_buffer("ratio_centres", torch.from_numpy(ratios))
        self.convolutions = nn.ModuleList(_Convolution(hidden, n_edge_features) for _ in range(architecture.n_conv))
        self.dropouts = nn.ModuleList(nn.Dropout(architecture.dropout) for _ in range(architecture.n_conv))
        self.head = nn.Sequential(
            nn.Linear(hidden, architecture.head_hidden),
            nn.Softplus(),
            nn.Dropout(architecture.dropout),
            nn.Linear(architecture.head_hidden, 2 if architecture.aleatoric else 1),
        )

    def edge_features(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Gaussian expansion of the distance (and of the distance over the sum of covalent radii, which says
        how stretched or compressed a bond is, whatever the elements), times the cosine envelope."""
        distance = batch["distance"]
        width = self.architecture.gaussian_spacing
        edges = torch.exp(-(((distance[:, None] - self.centres[None, :]) / width) ** 2))
        if self.architecture.bond_ratio_bins:
            numbers = batch["atomic_numbers"]
            bond = self.covalent_radii[numbers[batch["centre"]]] + self.covalent_radii[numbers[batch["neighbour"]]]
            ratio = distance / bond
            ratio_width = float(self.ratio_centres[1] - self.ratio_centres[0])
            ratio_features = torch.exp(-(((ratio[:, None] - self.ratio_centres[None, :]) / ratio_width) ** 2))
            edges = torch.cat([edges, ratio_features], dim=1)
        return edges * _envelope(distance, self.cutoff)[:, None]

    def first_convolution(self, batch: dict[str, torch.Tensor], edges: torch.Tensor) -> torch.Tensor:
        """Node features after the first convolution, before its dropout (shared by all MC-dropout passes)."""
        numbers = batch["atomic_numbers"]
        nodes = self.node_input(self.element_features[numbers])
        if self.element_embedding is not None:
            nodes = nodes + self.element_embedding(numbers)
        return self.convolutions[0](nodes, batch["centre"], batch["neighbour"], edges)

    def embed(
        self, batch: dict[str, torch.Tensor], edges: torch.Tensor | None = None, first: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean-pooled node features after the convolutions: (n_structures, hidden).

        ``edges`` and ``first`` (from :meth:`edge_features`, :meth:`first_convolution`) may be passed to reuse
        work between passes over the same batch.
        """
        if edges is None:
            edges = self.edge_features(batch)
        if first is None:
            first = self.first_convolution(batch, edges)
        nodes = self.dropouts[0](first)
        for convolution, dropout in zip(self.convolutions[1:], self.dropouts[1:], strict=True):
            nodes = dropout(convolution(nodes, batch["centre"], batch["neighbour"], edges))
        n_structures = batch["n_atoms"].shape[0]
        pooled = torch.zeros(n_structures, nodes.shape[1], dtype=nodes.dtype).index_add_(
            0, batch["structure_of_atom"], nodes
        )
        return pooled / batch["n_atoms"][:, None].to(nodes.dtype)

    def forward(
        self, batch: dict[str, torch.Tensor], edges: torch.Tensor | None = None, first: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Standardised prediction and, for an aleatoric head, the Laplace error scale b (else None)."""
        out = self.head(self.embed(batch, edges, first))
        if not self.architecture.aleatoric:
            return out.squeeze(-1), None
        return out[:, 0], nn.functional.softplus(out[:, 1]) + 1e-3


class GraphDataset:
    """Many crystal graphs concatenated once, so a mini-batch is assembled with a few numpy operations."""

    def __init__(self, graphs: Sequence[CrystalGraph]):
        if len(graphs) == 0:
            raise ValueError("empty batch: no structures given")
        self.n_atoms = np.array([g.n_atoms for g in graphs], np.int64)
        self.n_edges = np.array([len(g.centre) for g in graphs], np.int64)
        self.atom_offsets = np.concatenate([[0], np.cumsum(self.n_atoms)])
        self.edge_offsets = np.concatenate([[0], np.cumsum(self.n_edges)])
        self.atomic_numbers = np.concatenate([g.atomic_numbers for g in graphs])
        self.centre = np.concatenate([g.centre for g in graphs])  # local to each structure
        self.neighbour = np.concatenate([g.neighbour for g in graphs])
        self.distance = np.concatenate([g.distance for g in graphs]).astype(np.float32)

    def __len__(self) -> int:
        return len(self.n_atoms)

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        """Tensors of the graphs ``indices`` joined into one disconnected graph."""
        indices = np.asarray(indices, np.int64)
        n_atoms, n_edges = self.n_atoms[indices], self.n_edges[indices]
        atom_index = _ranges(self.atom_offsets[indices], n_atoms)
        edge_index = _ranges(self.edge_offsets[indices], n_edges)
        batch_offsets = np.repeat(np.concatenate([[0], np.cumsum(n_atoms)[:-1]]), n_edges)
        return {
            "atomic_numbers": torch.from_numpy(self.atomic_numbers[atom_index]),
            "centre": torch.from_numpy(self.centre[edge_index] + batch_offsets),
            "neighbour": torch.from_numpy(self.neighbour[edge_index] + batch_offsets),
            "distance": torch.from_numpy(self.distance[edge_index]),
            "structure_of_atom": torch.from_numpy(np.repeat(np.arange(len(indices)), n_atoms)),
            "n_atoms": torch.from_numpy(n_atoms),
        }

    def batches(self, batch_size: int, order: np.ndarray | None = None):
        order = np.arange(len(self)) if order is None else order
        for start in range(0, len(order), batch_size):
            yield order[start : start + batch_size]


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(start, start + length) for each pair, without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    shifts = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    return np.arange(total) + shifts


@dataclass
class UncertainPrediction:
    """Predictions with uncertainty for a batch of structures (arrays over structures unless noted).

    ``uncertainty`` is the recalibrated standard deviation: ``raw_uncertainty`` (the spread of the samples)
    passed through the model's recalibration for the method, sqrt((scale sigma)^2 + floor^2), fitted on
    validation data (identity if the model was not calibrated). ``model_agreement`` is the fraction
    of samples (ensemble members or dropout passes) within ``agreement_tolerance`` of the mean prediction,
    the tolerance being the model's validation MAE: 1 when every sample agrees with the consensus to
    within the model's typical error, near 0 when they scatter far more widely.
    """

    prediction: np.ndarray
    uncertainty: np.ndarray
    raw_uncertainty: np.ndarray  #: sqrt(epistemic^2 + aleatoric^2), before recalibration
    epistemic_uncertainty: np.ndarray  #: spread of the samples (members or dropout passes)
    aleatoric_uncertainty: np.ndarray  #: error scale predicted by an aleatoric head (zeros without one)
    predictions_raw: np.ndarray  #: (n_samples, n_structures)
    model_agreement: np.ndarray
    agreement_tolerance: float
    method: str
    target: str
    recalibration: dict

    def to_dict(self) -> dict:
        """JSON-serialisable form (lists of floats)."""
        return {
            "prediction": self.prediction.tolist(),
            "uncertainty": self.uncertainty.tolist(),
            "raw_uncertainty": self.raw_uncertainty.tolist(),
            "epistemic_uncertainty": self.epistemic_uncertainty.tolist(),
            "aleatoric_uncertainty": self.aleatoric_uncertainty.tolist(),
            "predictions_raw": self.predictions_raw.tolist(),
            "model_agreement": self.model_agreement.tolist(),
            "agreement_tolerance": self.agreement_tolerance,
            "method": self.method,
            "target": self.target,
            "recalibration": dict(self.recalibration),
        }


@dataclass
class CrystalGraphModel:
    """A trained property surrogate: ensemble members plus the config that reproduces their predictions."""

    target: str
    members: list[CrystalGraphNetwork]
    architecture: Architecture = field(default_factory=Architecture)
    graph_settings: GraphSettings = field(default_factory=GraphSettings)
    extensive: bool = True  #: target scales with cell size (eV per cell) rather than per atom
    target_mean: float = 0.0  #: of the (per-atom, if extensive) baseline residual
    target_std: float = 1.0
    baseline: list[float] = field(default_factory=lambda: [0.0] * (MAX_ATOMIC_NUMBER + 1))
    #: per uncertainty method, the :class:`Recalibration` fitted on validation data (as a dict)
    recalibration: dict[str, dict] = field(default_factory=dict)
    validation_mae: float | None = None
    training_elements: list[int] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    # ------------------------------------------------------------------------------------------ checks
    def check_target(self, target: str | None) -> None:
        """Refuse a request for a property the model was not trained on."""
        if target is not None and target != self.target:
            raise ValueError(f"this model predicts '{self.target}', not '{target}'")

    def featurise(self, structures: Sequence[Atoms]) -> GraphDataset:
        """Graphs of ``structures`` with this model's settings (checks elements and emptiness first)."""
        return GraphDataset(structures_to_graphs(structures, self.graph_settings))

    # ------------------------------------------------------------------------------------------ inference
    def _baseline_values(self, data: GraphDataset) -> np.ndarray:
        baseline = np.asarray(self.baseline)
        contributions = baseline[data.atomic_numbers]
        per_structure = np.add.reduceat(contributions, data.atom_offsets[:-1])
        return per_structure if self.extensive else per_structure / data.n_atoms

    def _to_target(self, standardised: np.ndarray, data: GraphDataset, baseline: np.ndarray) -> np.ndarray:
        value = standardised * self.target_std + self.target_mean
        if self.extensive:
            value = value * data.n_atoms
        return value + baseline

    def _forward_all(
        self, data: GraphDataset, passes: Sequence[tuple[int, bool]], batch_size: int, seed: int = 0
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Standardised outputs (len(passes), n), one row per (member index, dropout on) pass, and the
        Laplace error scales of an aleatoric head (same shape) or None."""
        out = np.empty((len(passes), len(data)), np.float64)
        spread = np.empty_like(out) if self.architecture.aleatoric else None
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            with torch.no_grad():
                for indices in data.batches(batch_size):
                    batch = data.batch(indices)
                    edges = self.members[0].edge_features(batch)  # same for all members
                    first: dict[int, torch.Tensor] = {}  # deterministic first convolution, per member
                    for row, (member_index, dropout_on) in enumerate(passes):
                        member = self.members[member_index]
                        _set_mode(member, dropout_on)
                        if member_index not in first:
                            first[member_index] = member.first_convolution(batch, edges)
                        location, scale = member(batch, edges, first[member_index])
                        out[row, indices] = location.numpy()
                        if spread is not None:
                            spread[row, indices] = scale.numpy()
        finally:
            torch.random.set_rng_state(generator_state)
            for member in self.members:
                member.eval()
        return out, spread

    def predict(self, structures: Sequence[Atoms] | GraphDataset, target: str | None = None, batch_size: int = 256):
        """Mean prediction of the ensemble with dropout off."""
        self.check_target(target)
        data = structures if isinstance(structures, GraphDataset) else self.featurise(structures)
        raw, _ = self._forward_all(data, [(k, False) for k in range(len(self.members))], batch_size)
        return self._to_target(raw, data, self._baseline_values(data)).mean(axis=0)

    def predict_with_uncertainty(
        self,
        structures: Sequence[Atoms] | GraphDataset,
        method: str = "ensemble",
        n_samples: int = 50,
        target: str | None = None,
        batch_size: int = 256,
        seed: int = 0,
    ) -> UncertainPrediction:
        """Prediction, recalibrated standard deviation, raw samples and model agreement.

        ``ensemble``: one deterministic pass per member (needs >= 2 members). ``mc_dropout``: ``n_samples``
        passes with dropout on, spread round-robin over the members (plain MC dropout for one member).
        """
        self.check_target(target)
        if method not in UNCERTAINTY_METHODS:
            raise ValueError(f"unknown uncertainty method '{method}', choose from {UNCERTAINTY_METHODS}")
        if method == "ensemble" and len(self.members) < 2:
            raise ValueError("the 'ensemble' method needs a model with at least two members; use 'mc_dropout'")
        if method == "mc_dropout" and n_samples < 2:
            raise ValueError("mc_dropout needs n_samples >= 2")
        if method == "mc_dropout" and self.architecture.dropout <= 0:
            raise ValueError("this model was trained without dropout, so mc_dropout cannot sample; use 'ensemble'")
        data = structures if isinstance(structures, GraphDataset) else self.featurise(structures)
        if method == "ensemble":
            passes = [(k, False) for k in range(len(self.members))]
        else:
            passes = [(k % len(self.members), True) for k in range(n_samples)]
        standardised, laplace_scale = self._forward_all(data, passes, batch_size, seed)
        raw = self._to_target(standardised, data, self._baseline_values(data))
        prediction = raw.mean(axis=0)
        epistemic = raw.std(axis=0, ddof=1)
        if laplace_scale is not None:  # a Laplace distribution of scale b has variance 2 b^2
            unit = self.target_std * (data.n_atoms if self.extensive else 1.0)
            aleatoric = np.sqrt(np.mean(2.0 * laplace_scale**2, axis=0)) * unit
        else:
            aleatoric = np.zeros_like(epistemic)
        raw_uncertainty = np.sqrt(epistemic**2 + aleatoric**2)
        recalibration = Recalibration.from_dict(self.recalibration.get(method, Recalibration().to_dict()))
        tolerance = float(self.validation_mae) if self.validation_mae else float(np.median(raw_uncertainty))
        agreement = (np.abs(raw - prediction[None, :]) <= tolerance).mean(axis=0)
        return UncertainPrediction(
            prediction=prediction,
            uncertainty=recalibration.apply(raw_uncertainty),
            raw_uncertainty=raw_uncertainty,
            epistemic_uncertainty=epistemic,
            aleatoric_uncertainty=aleatoric,
            predictions_raw=raw,
            model_agreement=agreement,
            agreement_tolerance=tolerance,
            method=method,
            target=self.target,
            recalibration=recalibration.to_dict(),
        )

    def embed(self, structures: Sequence[Atoms] | GraphDataset, batch_size: int = 256) -> np.ndarray:
        """Pooled graph embeddings averaged over members (dropout off): a learned feature space for diversity."""
        data = structures if isinstance(structures, GraphDataset) else self.featurise(structures)
        out = np.zeros((len(data), self.architecture.hidden))
        with torch.no_grad():
            for indices in data.batches(batch_size):
                batch = data.batch(indices)
                for member in self.members:
                    member.eval()
                    out[indices] += member.embed(batch).numpy() / len(self.members)
        return out

    # ------------------------------------------------------------------------------------------ persistence
    def config(self) -> dict:
        """JSON-serialisable architecture, featurisation, normaliser, baseline and calibration."""
        return {
            "format_version": FORMAT_VERSION,
            "target": self.target,
            "extensive": self.extensive,
            "n_members": len(self.members),
            "architecture": asdict(self.architecture),
            "graph_settings": self.graph_settings.to_dict(),
            "normaliser": {"mean": self.target_mean, "std": self.target_std},
            "baseline": {"kind": "element_reference_values", "values": list(map(float, self.baseline))},
            "recalibration": {method: dict(values) for method, values in self.recalibration.items()},
            "validation_mae": self.validation_mae,
            "training_elements": list(map(int, self.training_elements)),
            "info": self.info,
        }

    def save(self, directory: str | Path) -> tuple[Path, Path]:
        """Write ``model.pt`` (weights of all members) and ``model.json`` (config) into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        weights_path, config_path = directory / WEIGHTS_FILENAME, directory / CONFIG_FILENAME
        torch.save({f"member_{k}": m.state_dict() for k, m in enumerate(self.members)}, weights_path)
        config_path.write_text(json.dumps(self.config(), indent=1))
        return weights_path, config_path

    @classmethod
    def load(cls, weights: str | Path, config: str | Path | dict | None = None) -> CrystalGraphModel:
        """Load from a directory written by :meth:`save`, or from a weights file and a config (path or dict)."""
        weights = Path(weights)
        if weights.is_dir():
            config = weights / CONFIG_FILENAME if config is None else config
            weights = weights / WEIGHTS_FILENAME
        if config is None:
            raise ValueError("a config (path or dict) is needed with a weights file")
        data = config if isinstance(config, dict) else json.loads(Path(config).read_text())
        if data.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"unsupported model format version {data.get('format_version')}")
        architecture = Architecture(**data["architecture"])
        settings = GraphSettings.from_dict(data["graph_settings"])
        state = torch.load(weights, map_location="cpu", weights_only=True)
        members = []
        for k in range(data["n_members"]):
            member = CrystalGraphNetwork(architecture, settings.cutoff)
            member.load_state_dict(state[f"member_{k}"])
            member.eval()
            members.append(member)
        return cls(
            target=data["target"],
            members=members,
            architecture=architecture,
            graph_settings=settings,
            extensive=data["extensive"],
            target_mean=data["normaliser"]["mean"],
            target_std=data["normaliser"]["std"],
            baseline=data["baseline"]["values"],
            recalibration=data["recalibration"],
            validation_mae=data["validation_mae"],
            training_elements=data["training_elements"],
            info=data.get("info", {}),
        )


def _set_mode(member: nn.Module, dropout_on: bool) -> None:
    """Batch norm always in inference mode; dropout on only for MC-dropout passes."""
    member.eval()
    if dropout_on:
        for module in member.modules():
            if isinstance(module, nn.Dropout):
                module.train()


# ---------------------------------------------------------------------------------------------- training
def decide_extensive(structures: Sequence[Atoms] | Sequence[CrystalGraph], targets: np.ndarray) -> bool:
    """Whether a target scales with the cell (eV per cell) or not (per atom, band gap).

    Fits the target linearly on element counts (extensive) and on element fractions (intensive) and
    keeps the better fit; with a single cell size both fit equally and the answer (extensive) is immaterial.
    """
    sizes = np.array([len(s.atomic_numbers) if isinstance(s, CrystalGraph) else len(s) for s in structures])
    if np.all(sizes == sizes[0]):
        return True
    residuals = []
    for fractions in (False, True):
        matrix = composition_matrix(structures, fractions=fractions)
        coefficients, *_ = np.linalg.lstsq(matrix, targets, rcond=None)
        residuals.append(float(np.mean((matrix @ coefficients - targets) ** 2)))
    return residuals[0] <= residuals[1]


def fit_composition_baseline(
    structures: Sequence[Atoms] | Sequence[CrystalGraph], targets: np.ndarray, extensive: bool, ridge: float
) -> np.ndarray:
    """Per-element reference values indexed by atomic number: a common value plus a ridge-shrunk element term.

    target ~ sum_atoms (c + mu_element) (extensive; divided by the atom count if intensive). Only the
    element terms are penalised, so an element absent from training falls back on the common value c.
    """
    matrix = composition_matrix(structures, fractions=not extensive)
    present = matrix.any(axis=0)
    design = np.column_stack([matrix.sum(axis=1), matrix[:, present]])  # first column: the common value
    penalty = ridge * len(targets) * np.eye(design.shape[1])
    penalty[0, 0] = 0.0
    coefficients = np.linalg.solve(design.T @ design + penalty, design.T @ targets)
    baseline = np.full(MAX_ATOMIC_NUMBER + 1, coefficients[0])
    baseline[present] += coefficients[1:]
    return baseline


def train_model(
    structures: Sequence[Atoms],
    targets: Sequence[float],
    target: str,
    *,
    n_members: int = 3,
    validation_fraction: float = 0.1,
    validation_indices: Sequence[int] | None = None,
    architecture: Architecture | None = None,
    graph_settings: GraphSettings | None = None,
    training: TrainingSettings | None = None,
    extensive: bool | None = None,
    calibrate: bool = True,
    recalibration: str = "auto",
    seed: int = 0,
    initial_model: CrystalGraphModel | None = None,
    graphs: Sequence[CrystalGraph] | None = None,
    log: Callable[[str], None] | None = None,
) -> CrystalGraphModel:
    """Train an ensemble on labelled structures, keeping a validation split for early stopping and calibration.

    The validation split (``validation_indices`` or a random ``validation_fraction``) is shared by all
    members, so the recalibration of sigma (``recalibration``, see :func:`calibration.fit_recalibration`) is
    fitted on predictions no member was trained on. With
    ``initial_model`` the members start from its weights, normaliser and baseline (fine-tuning for active
    learning). ``graphs`` may pass already featurised structures (same settings) to skip featurisation.
    """
    started = time.perf_counter()
    targets = np.asarray(targets, float)
    architecture = architecture or (initial_model.architecture if initial_model else Architecture())
    graph_settings = graph_settings or (initial_model.graph_settings if initial_model else GraphSettings())
    training = training or TrainingSettings()
    if training.threads:
        torch.set_num_threads(training.threads)
    if len(structures) != len(targets):
        raise ValueError(f"{len(structures)} structures but {len(targets)} target values")
    if len(structures) < 4:
        raise ValueError("need at least 4 labelled structures to train (training and validation)")
    if not np.all(np.isfinite(targets)):
        raise ValueError("targets contain NaN or infinite values")
    if initial_model is not None:
        initial_model.check_target(target)
    if graphs is None:
        graphs = structures_to_graphs(structures, graph_settings)
    elif len(graphs) != len(structures):
        raise ValueError("graphs and structures differ in length")
    data = GraphDataset(graphs)
    rng = np.random.default_rng(seed)
    if validation_indices is None:
        n_validation = max(1, int(round(validation_fraction * len(targets))))
        permutation = rng.permutation(len(targets))
        validation = np.sort(permutation[:n_validation])
    else:
        validation = np.unique(np.asarray(validation_indices, np.int64))
    train = np.setdiff1d(np.arange(len(targets)), validation)
    if len(train) < 2 or len(validation) < 1:
        raise ValueError("the split leaves too few structures for training or validation")

    if initial_model is not None:
        extensive, baseline = initial_model.extensive, np.asarray(initial_model.baseline)
        mean, std = initial_model.target_mean, initial_model.target_std
    else:
        if extensive is None:
            extensive = decide_extensive([graphs[i] for i in train], targets[train])
        baseline = fit_composition_baseline(
            [graphs[i] for i in train], targets[train], extensive, training.baseline_ridge
        )
    model = CrystalGraphModel(
        target=target,
        members=[],
        architecture=architecture,
        graph_settings=graph_settings,
        extensive=extensive,
        baseline=list(map(float, baseline)),
    )
    residual = (targets - model._baseline_values(data)) / (data.n_atoms if extensive else 1.0)
    if initial_model is None:
        mean, std = float(residual[train].mean()), float(residual[train].std() or 1.0)
    model.target_mean, model.target_std = mean, std
    standardised = torch.from_numpy(((residual - mean) / std).astype(np.float32))

    histories = []
    for k in range(n_members):
        remaining = None
        if training.time_budget is not None:
            remaining = max(training.time_budget - (time.perf_counter() - started), 1.0) / (n_members - k)
        torch.manual_seed(seed * 1000 + k)
        member_rng = np.random.default_rng([seed, k])
        member_train = member_rng.choice(train, size=len(train), replace=True) if training.bootstrap else train
        if initial_model is not None:
            member = copy.deepcopy(initial_model.members[k % len(initial_model.members)])
        else:
            member = CrystalGraphNetwork(architecture, graph_settings.cutoff)
        history = _train_member(member, data, standardised, member_train, validation, training, remaining, member_rng)
        if log:
            log(
                f"member {k + 1}/{n_members}: {history['epochs']} epochs in {history['seconds']:.0f} s, "
                f"best validation MAE (standardised) {history['best_validation_mae']:.4f}"
            )
        histories.append(history)
        model.members.append(member)

    validation_data_graphs = [graphs[i] for i in validation]
    validation_set = GraphDataset(validation_data_graphs)
    point = model.predict(validation_set)
    model.validation_mae = float(np.mean(np.abs(point - targets[validation])))
    model.training_elements = sorted({int(z) for i in train for z in graphs[i].atomic_numbers})
    if calibrate:
        methods = (["mc_dropout"] if architecture.dropout > 0 else []) + (["ensemble"] if n_members >= 2 else [])
        for method in methods:
            result = model.predict_with_uncertainty(validation_set, method=method, n_samples=30)
            model.recalibration[method] = fit_recalibration(
                targets[validation] - result.prediction, result.raw_uncertainty, recalibration
            ).to_dict()
    model.info = {
        "n_train": int(len(train)),
        "n_validation": int(len(validation)),
        "validation_indices": validation.tolist(),
        "training_seconds": time.perf_counter() - started,
        "members": histories,
        "training_settings": asdict(training),
        "seed": seed,
        "fine_tuned": initial_model is not None,
    }
    return model


def _train_member(
    member: CrystalGraphNetwork,
    data: GraphDataset,
    standardised: torch.Tensor,
    train: np.ndarray,
    validation: np.ndarray,
    training: TrainingSettings,
    time_budget: float | None,
    rng: np.random.Generator,
) -> dict:
    """AdamW with a cosine learning-rate decay over the epochs that fit the budget; keeps the best weights."""
    started = time.perf_counter()
    optimiser = torch.optim.AdamW(member.parameters(), lr=training.learning_rate, weight_decay=training.weight_decay)
    loss_function = nn.functional.l1_loss if training.loss == "l1" else nn.functional.mse_loss

    def loss_of(output: tuple[torch.Tensor, torch.Tensor | None], target: torch.Tensor) -> torch.Tensor:
        location, laplace_scale = output
        if laplace_scale is None:
            return loss_function(location, target)
        # Laplace negative log-likelihood: the location is still fitted by absolute error
        return torch.mean(torch.abs(location - target) / laplace_scale + torch.log(laplace_scale))

    validation_batch = data.batch(validation)
    validation_target = standardised[validation]
    best_mae, best_state, best_epoch, epoch = math.inf, None, 0, 0
    for epoch in range(1, training.epochs + 1):
        member.train()
        order = rng.permutation(train)
        for indices in data.batches(training.batch_size, order):
            if len(indices) < 2:  # batch norm needs two samples
                continue
            # cosine decay over whichever runs out first, the epochs or the wall-time budget
            progress = (epoch - 1) / training.epochs
            if time_budget is not None:
                progress = max(progress, (time.perf_counter() - started) / time_budget)
            for group in optimiser.param_groups:
                group["lr"] = training.learning_rate * (0.02 + 0.49 * (1 + math.cos(math.pi * min(progress, 1.0))))
            optimiser.zero_grad(set_to_none=True)
            loss = loss_of(member(data.batch(indices)), standardised[indices])
            loss.backward()
            optimiser.step()
        member.eval()
        with torch.no_grad():
            mae = float((member(validation_batch)[0] - validation_target).abs().mean())
        if mae < best_mae:
            best_mae, best_state, best_epoch = mae, copy.deepcopy(member.state_dict()), epoch
        if epoch - best_epoch >= training.patience:
            break
        if time_budget is not None and time.perf_counter() - started > time_budget:
            break
    if best_state is not None:
        member.load_state_dict(best_state)
    member.eval()
    return {
        "epochs": epoch,
        "best_epoch": best_epoch,
        "best_validation_mae": best_mae,
        "seconds": time.perf_counter() - started,
    }
