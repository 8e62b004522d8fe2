"""GP-Hedge: a portfolio of acquisitions, one chosen per step by how well its past nominees turned out.

No single acquisition is best on every problem (EI exploits, UCB explores, PI is greedier still), and which one wins
on a new data set is not known in advance. Hoffman, Brochu and de Freitas (UAI 2011) let each acquisition nominate a
point, pick one nominee at random with probability proportional to exp(eta * gain), and after the model has been
updated add to each acquisition's gain the posterior mean at *its* nominee: acquisitions whose suggestions the model
now believes to be good are chosen more often. The state is a few numbers, kept as plain JSON so a campaign can store
it between iterations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The portfolio of Hoffman et al.: expected improvement (as its log, same arg-max), probability of improvement, UCB.
DEFAULT_PORTFOLIO = ("LOGEI", "PI", "UCB")


@dataclass
class Hedge:
    """Gains of each acquisition of ``portfolio`` and the nominees of the last step (awaiting their reward)."""

    portfolio: tuple[str, ...] = DEFAULT_PORTFOLIO
    eta: float = 1.0
    gains: list[float] = field(default_factory=list)
    nominees: list[list[float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.portfolio = tuple(a.upper() for a in self.portfolio)
        if not self.gains:
            self.gains = [0.0] * len(self.portfolio)
        if len(self.gains) != len(self.portfolio):
            raise ValueError(f"{len(self.gains)} gains for a portfolio of {len(self.portfolio)}")
        if self.eta <= 0:
            raise ValueError(f"eta must be positive, got {self.eta}")

    def probabilities(self) -> np.ndarray:
        """Softmax of eta * gains (shifted by the largest gain, so it never overflows)."""
        g = self.eta * np.asarray(self.gains, dtype=float)
        w = np.exp(g - g.max())
        return w / w.sum()

    def reward(self, mean_at_nominees: Sequence[float]) -> None:
        """Add the updated model's posterior mean (larger is better) at each acquisition's last nominee."""
        if len(mean_at_nominees) != len(self.portfolio):
            raise ValueError(f"{len(mean_at_nominees)} rewards for a portfolio of {len(self.portfolio)}")
        self.gains = [g + float(r) for g, r in zip(self.gains, mean_at_nominees, strict=True)]

    def choose(self, nominees: Sequence[np.ndarray], rng: np.random.Generator) -> int:
        """Remember this step's nominees (one point per acquisition) and draw the acquisition whose nominee to take."""
        if len(nominees) != len(self.portfolio):
            raise ValueError(f"{len(nominees)} nominees for a portfolio of {len(self.portfolio)}")
        self.nominees = [np.asarray(x, dtype=float).ravel().tolist() for x in nominees]
        return int(rng.choice(len(self.portfolio), p=self.probabilities()))

    def to_dict(self) -> dict[str, Any]:
        return {"portfolio": list(self.portfolio), "eta": self.eta, "gains": self.gains, "nominees": self.nominees}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Hedge:
        return cls(tuple(data["portfolio"]), float(data["eta"]), list(data["gains"]), list(data["nominees"]))
