"""The one answer every model gives about a set of candidates: a :class:`Posterior`.

A Gaussian process (:meth:`GaussianProcess.posterior`) and the crystal-graph network
(:meth:`CrystalGraphModel.posterior`, MC dropout or ensemble) both return one, so that acquisition
(:mod:`aiida_nanoos.acquisition`) is written once, on a posterior, whatever model produced it.

``mean`` and ``std`` are the marginal posterior (in the property's units); ``samples`` (n_samples, n), where the
model has them (ensemble members, dropout passes), are draws whose spread is the epistemic part of ``std``;
``embeddings`` (n, d) place the candidates in a learned feature space (for diverse batches).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Posterior:
    """Marginal posterior of a scalar property at ``n`` candidates."""

    mean: np.ndarray  #: (n,)
    std: np.ndarray  #: (n,), >= 0
    samples: np.ndarray | None = None  #: (n_samples, n) draws (members, dropout passes), if the model has them
    embeddings: np.ndarray | None = None  #: (n, d) learned features, if the model has them

    def __post_init__(self) -> None:
        mean = np.asarray(self.mean, dtype=float).ravel()
        std = np.asarray(self.std, dtype=float).ravel()
        if mean.shape != std.shape:
            raise ValueError(f"{mean.size} means but {std.size} standard deviations")
        if np.any(std < 0):
            raise ValueError("standard deviations must be non-negative")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)
        if self.samples is not None:
            samples = np.atleast_2d(np.asarray(self.samples, dtype=float))
            if samples.shape[1] != mean.size:
                raise ValueError(f"samples must have shape (n_samples, {mean.size}), got {samples.shape}")
            object.__setattr__(self, "samples", samples)
        if self.embeddings is not None:
            embeddings = np.asarray(self.embeddings, dtype=float)
            if embeddings.ndim != 2 or len(embeddings) != mean.size:
                raise ValueError(f"embeddings must have shape ({mean.size}, d), got {embeddings.shape}")
            object.__setattr__(self, "embeddings", embeddings)

    def __len__(self) -> int:
        return self.mean.size

    @property
    def n_samples(self) -> int:
        """Number of draws held (0 without samples)."""
        return 0 if self.samples is None else len(self.samples)

    def subset(self, indices: np.ndarray | list[int]) -> Posterior:
        """The posterior at a subset of the candidates (samples and embeddings follow)."""
        idx = np.asarray(indices, dtype=np.int64)
        return Posterior(
            mean=self.mean[idx],
            std=self.std[idx],
            samples=None if self.samples is None else self.samples[:, idx],
            embeddings=None if self.embeddings is None else self.embeddings[idx],
        )


__all__ = ["Posterior"]
