"""A trained crystal-graph property model: an ensemble of networks with uncertainty (MC dropout or members).

:class:`CrystalGraphModel` holds the members plus everything needed to reproduce their predictions (graph
settings, target, standardisation, composition baseline, recalibration of sigma) and answers the one
:class:`~aiida_nanoos.models.posterior.Posterior` interface (:meth:`CrystalGraphModel.posterior`). See
:mod:`aiida_nanoos.models.cgcnn` for the design. Pure torch + numpy (no AiiDA).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from ase import Atoms
from torch import nn

from aiida_nanoos.models.calibration import Recalibration
from aiida_nanoos.models.cgcnn_network import UNCERTAINTY_METHODS, Architecture, CrystalGraphNetwork, GraphDataset
from aiida_nanoos.models.graph import MAX_ATOMIC_NUMBER, GraphSettings, structures_to_graphs
from aiida_nanoos.models.posterior import Posterior

FORMAT_VERSION = 1
WEIGHTS_FILENAME = "model.pt"
CONFIG_FILENAME = "model.json"


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

    def posterior(self, uncertainty: str = "total", embeddings: np.ndarray | None = None) -> Posterior:
        """This prediction as a :class:`Posterior`: the recalibrated (``'total'``) or the ``'epistemic'`` sigma,
        the raw samples and, if given, embeddings."""
        std = self.uncertainty if uncertainty == "total" else self.epistemic_uncertainty
        return Posterior(mean=self.prediction, std=std, samples=self.predictions_raw, embeddings=embeddings)

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
    """A trained property model: ensemble members plus the config that reproduces their predictions."""

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

    def posterior(
        self,
        structures: Sequence[Atoms] | GraphDataset,
        method: str = "ensemble",
        n_samples: int = 50,
        *,
        uncertainty: str = "total",
        embeddings: bool = False,
        target: str | None = None,
        batch_size: int = 256,
        seed: int = 0,
    ) -> Posterior:
        """The :class:`Posterior` of the property at ``structures`` (see :meth:`predict_with_uncertainty`).

        ``std`` is the recalibrated total uncertainty (``uncertainty='total'``) or the spread of the samples only
        (``'epistemic'``: what labelling a candidate can reduce, the one to explore with); ``samples`` are the
        member or dropout-pass predictions; ``embeddings=True`` adds the pooled graph embeddings (:meth:`embed`).
        """
        if uncertainty not in ("total", "epistemic"):
            raise ValueError(f"uncertainty must be 'total' or 'epistemic', not {uncertainty!r}")
        data = structures if isinstance(structures, GraphDataset) else self.featurise(structures)
        result = self.predict_with_uncertainty(data, method, n_samples, target, batch_size, seed)
        return result.posterior(
            uncertainty=uncertainty, embeddings=self.embed(data, batch_size) if embeddings else None
        )

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
        # models saved before the element table was a choice used the basic one
        architecture = Architecture(**{"element_table": "basic", **data["architecture"]})
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
