"""The crystal-graph network itself: architecture, gated convolutions, one ensemble member, batched graphs.

See :mod:`aiida_nanoos.models.cgcnn` for the design and the measured choices. Pure torch + numpy (no AiiDA).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from ase.data import covalent_radii
from torch import nn

from aiida_nanoos.models.graph import MAX_ATOMIC_NUMBER, CrystalGraph, element_feature_table, gaussian_centres

UNCERTAINTY_METHODS = ("ensemble", "mc_dropout")
#: edge features below this are set to zero (see :meth:`CrystalGraphNetwork.edge_features`)
DENORMAL_GUARD = 1.0e-6


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
    element_table: str = "basic"  #: fixed element features: 'basic' or 'extended' (graph.ELEMENT_TABLES)


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
        # index_select, not [index]: its backward is an index_add, several times faster on CPU than advanced indexing
        message = self.centre(nodes).index_select(0, centre) + self.neighbour(nodes).index_select(0, neighbour)
        message = message + self.edge(edges)
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
        table = torch.from_numpy(element_feature_table(architecture.element_table))
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
        edges = edges * _envelope(distance, self.cutoff)[:, None]
        # far tails of the Gaussians underflow to denormal floats, which make CPU matrix products of the edge
        # maps (forward and weight gradient) 5-10x slower; below 1e-6 they carry nothing, so they become 0
        return edges.masked_fill_(edges < DENORMAL_GUARD, 0.0)

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
