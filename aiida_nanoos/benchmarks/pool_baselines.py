"""Established Bayesian-optimisation methods as pool strategies, so ``bo-pool`` measures ours against them in one run.

* ``botorch_logei``: BoTorch's own recipe, as its tutorials write it: ``SingleTaskGP`` with its defaults (Matérn-5/2
  or RBF kernel with the dimension-scaled log-normal lengthscale prior of Hvarfner et al. 2024, log-normal noise
  prior, standardised outcome) on unit-cube inputs, fitted by ``fit_gpytorch_mll``, and analytic
  ``LogExpectedImprovement`` scored on every remaining pool point.
* ``baybe``: BayBE's ``Campaign`` with every default (two-phase recommender, BoTorch GP with BayBE's priors, qLogEI)
  on the pool given as a discrete search space of numerical parameters, with already measured points excluded (the
  pool protocol never measures a point twice).

Both need the optional ``bench`` extra (``pip install -c constraints.txt -e '.[bench]'`` after the pinned CPU torch);
they are imported only when used. The configuration each run used is returned by :func:`baseline_configuration` so
the benchmark can print it next to the figures.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from aiida_nanoos.benchmarks.pool_protocol import STRATEGIES, Strategy, unit_scale


def _installed_version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def baseline_configuration(key: str) -> dict[str, Any]:
    """What a baseline runs, with the versions installed: printed with the results so a reader can reproduce them."""
    if key == "botorch_logei":
        return {
            "package": f"botorch {_installed_version('botorch')}, gpytorch {_installed_version('gpytorch')}",
            "model": "SingleTaskGP defaults (dimension-scaled LogNormal lengthscale prior, LogNormal noise prior), "
            "Standardize(1) outcome, inputs scaled to the pool's unit cube, float64",
            "fit": "fit_gpytorch_mll(ExactMarginalLogLikelihood) every cycle (BoTorch's loop; not the refit "
            "schedule of the numpy GPs)",
            "acquisition": "LogExpectedImprovement(best_f = best observed), argmax over the remaining pool",
        }
    if key == "baybe":
        return {
            "package": f"baybe {_installed_version('baybe')}",
            "campaign": "Campaign defaults: TwoPhaseMetaRecommender -> BotorchRecommender, GaussianProcessSurrogate "
            "(BayBE kernel/noise priors), qLogEI",
            "searchspace": "SearchSpace.from_dataframe of the pool, one NumericalDiscreteParameter per non-constant "
            "column",
            "options": "allow_recommending_already_measured=False (a pool point is measured once)",
        }
    raise ValueError(f"no baseline {key!r}")


def botorch_logei_strategy(X_pool: np.ndarray, maximize: bool, seed: int = 0) -> Strategy:
    """BoTorch ``SingleTaskGP`` + ``LogExpectedImprovement`` with BoTorch's defaults, refitted every cycle."""
    import torch
    from botorch.acquisition import LogExpectedImprovement
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.transforms.outcome import Standardize
    from gpytorch.mlls import ExactMarginalLogLikelihood

    scale = unit_scale(X_pool)
    sign = 1.0 if maximize else -1.0

    def score(X_obs: np.ndarray, y_obs: np.ndarray, X_cand: np.ndarray, refit: bool) -> np.ndarray:
        torch.manual_seed(seed + len(y_obs))
        train_x = torch.as_tensor(scale(X_obs), dtype=torch.float64)
        train_y = torch.as_tensor(sign * np.asarray(y_obs, dtype=float)[:, None], dtype=torch.float64)
        model = SingleTaskGP(train_x, train_y, outcome_transform=Standardize(m=1))
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))  # every cycle, as BoTorch's loop does
        model.eval()
        acq = LogExpectedImprovement(model, best_f=train_y.max())
        cand = torch.as_tensor(scale(X_cand), dtype=torch.float64)
        with torch.no_grad():
            values = torch.cat([acq(chunk[:, None, :]) for chunk in torch.split(cand, 2048)])
        return values.numpy().astype(float)

    return Strategy("BoTorch SingleTaskGP + LogEI", score, "BoTorch defaults", baseline_configuration("botorch_logei"))


def baybe_strategy(X_pool: np.ndarray, maximize: bool, seed: int = 0) -> Strategy:
    """A BayBE ``Campaign`` with its defaults on the pool; its one recommendation is returned as a one-hot score."""
    import pandas as pd
    from baybe import Campaign
    from baybe.parameters import NumericalDiscreteParameter
    from baybe.searchspace import SearchSpace
    from baybe.targets import NumericalTarget
    from baybe.utils.random import set_random_seed

    set_random_seed(seed)
    varying = [j for j in range(X_pool.shape[1]) if np.ptp(X_pool[:, j]) > 0]
    names = [f"x{j}" for j in varying]
    frame = pd.DataFrame(X_pool[:, varying], columns=names)
    parameters = [NumericalDiscreteParameter(name, values=np.unique(frame[name]).tolist()) for name in names]
    campaign = Campaign(
        searchspace=SearchSpace.from_dataframe(frame, parameters),
        objective=NumericalTarget("y", minimize=not maximize).to_objective(),
        allow_recommending_already_measured=False,
    )
    added = {"n": 0}

    def score(X_obs: np.ndarray, y_obs: np.ndarray, X_cand: np.ndarray, refit: bool) -> np.ndarray:
        new = pd.DataFrame(X_obs[added["n"] :, varying], columns=names)
        new["y"] = np.asarray(y_obs[added["n"] :], dtype=float)
        campaign.add_measurements(new)
        added["n"] = len(y_obs)
        picked = campaign.recommend(batch_size=1)[names].to_numpy(dtype=float)[0]
        distance = np.abs(X_cand[:, varying] - picked).sum(axis=1)
        scores = np.zeros(len(X_cand))
        scores[int(np.argmin(distance))] = 1.0
        return scores

    return Strategy("BayBE Campaign defaults (GP + qLogEI)", score, "BayBE defaults", baseline_configuration("baybe"))


BASELINES: dict[str, Callable[..., Strategy]] = {"botorch_logei": botorch_logei_strategy, "baybe": baybe_strategy}
#: Every method ``bo-pool`` knows: ours and Liang et al.'s GP + LCB (:mod:`.pool_protocol`), and the baselines.
METHODS: dict[str, Callable[..., Strategy]] = {**STRATEGIES, **BASELINES}
