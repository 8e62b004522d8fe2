"""Gaussian-process regression for design campaigns: ARD Matérn 5/2 or RBF kernel, float64, numpy/scipy only.

Why not ``sklearn.gaussian_process``: a campaign refits the GP every iteration and scores 10^4 candidates,
and needs hyper-parameters it can store in a node and re-create the model from. This implementation keeps the
latency under a second for 1000 observations (subset-of-data hyper-parameter search, one Cholesky on all the data,
chunked prediction) and never fails on ill-conditioned data (noise floor, jitter escalation, duplicate inputs).

Conventions. Inputs are optionally standardised (``input_scaling='standard'``) and outputs always are; the kernel
hyper-parameters (lengthscales, signal variance, noise variance) live on those standardised scales. Fitting
maximises the log marginal likelihood, plus log priors when ``priors`` is given (MAP), with multi-start L-BFGS-B and
analytic gradients in log-parameter space.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla
from scipy.optimize import minimize

from aiida_nanoos.models.posterior import Posterior

KERNELS = ("matern52", "rbf")
_SQRT5 = np.sqrt(5.0)
_LOG_2PI = np.log(2.0 * np.pi)
#: Rows of candidates per block in prediction: keeps temporaries below ~10 MB so memory is reused, not re-faulted.
_CHUNK_ELEMENTS = 1_000_000


@dataclass(frozen=True)
class LogNormalPrior:
    """A normal prior on the natural log of a positive hyper-parameter (``log p ~ N(mu, sigma^2)``)."""

    mu: float
    sigma: float

    def logpdf_and_grad(self, log_value: np.ndarray) -> tuple[float, np.ndarray]:
        z = (log_value - self.mu) / self.sigma
        return float(-0.5 * np.sum(z * z)), -z / self.sigma


def default_priors(n_dims: int, input_scaling: str = "none") -> dict[str, LogNormalPrior]:
    """Weak priors that keep small-data fits sane on standardised outputs.

    Lengthscales: log-normal with median 0.5 of the unit-cube range and a factor e (sigma = 1) of spread, about
    the Gamma(3, 6) prior that was BoTorch's default for low-dimensional problems: a priori the property changes
    over half of each input's range, and a few points cannot make the model either a constant or a set of needles.
    With ``input_scaling='standard'`` the median is shifted by log(sqrt(12)), the ratio of a unit range to the
    standard deviation of a uniform variable. Signal variance is centred on 1 (outputs are standardised), the noise
    on 1e-2 of the output variance, both wide. ``n_dims`` is accepted for priors that depend on the dimension.
    """
    shift = 0.5 * np.log(12.0) if input_scaling == "standard" else 0.0
    return {
        "lengthscale": LogNormalPrior(mu=float(np.log(0.5) + shift), sigma=1.0),
        "signal_variance": LogNormalPrior(mu=0.0, sigma=1.5),
        "noise_variance": LogNormalPrior(mu=float(np.log(1e-2)), sigma=2.5),
    }


def dimension_scaled_priors(n_dims: int, input_scaling: str = "none") -> dict[str, LogNormalPrior]:
    """The dimension-scaled priors of Hvarfner et al. 2024 (BoTorch's and BayBE's defaults), on unit-cube inputs.

    BoTorch puts LogNormal(sqrt(2) + log(d) / 2, 3) on each lengthscale: in more dimensions a point has more neighbours
    far away, so the a-priori lengthscale grows like sqrt(d) and a 6-D model does not start as a set of needles. Here
    the prior is on the log of the lengthscale (the space the fit works in), so its density carries the Jacobian of
    the log: the mean of the normal is sqrt(2) - 3 + log(d) / 2 (mode 0.21 sqrt(d) of the range), the mode that
    BoTorch's MAP fit finds. The noise prior is BoTorch's LogNormal(-4, 1) likewise (mode e^-5 of the output
    variance); the signal variance, which BoTorch fixes by standardising, is held near 1.
    """
    shift = 0.5 * np.log(12.0) if input_scaling == "standard" else 0.0
    return {
        "lengthscale": LogNormalPrior(mu=float(np.sqrt(2.0) - 3.0 + 0.5 * np.log(max(n_dims, 1)) + shift), sigma=1.732),
        "signal_variance": LogNormalPrior(mu=0.0, sigma=1.0),
        "noise_variance": LogNormalPrior(mu=-5.0, sigma=1.0),
    }


#: Named prior sets a :class:`GaussianProcess` accepts as ``priors``.
PRIOR_SETS = {"default": default_priors, "dimension_scaled": dimension_scaled_priors}


def _sq_dist_scaled(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between rows of already lengthscale-divided arrays, clipped at 0."""
    d = np.einsum("ij,ij->i", a, a)[:, None] + np.einsum("ij,ij->i", b, b)[None, :]
    d -= 2.0 * (a @ b.T)
    np.maximum(d, 0.0, out=d)
    return d


def _kernel_from_sq(sq: np.ndarray, kernel: str, signal_variance: float) -> np.ndarray:
    """Kernel values from squared scaled distances (in place on ``sq``)."""
    if kernel == "rbf":
        sq *= -0.5
        np.exp(sq, out=sq)
    else:
        r = np.sqrt(sq)
        poly = 1.0 + _SQRT5 * r + (5.0 / 3.0) * sq
        np.multiply(r, -_SQRT5, out=r)
        np.exp(r, out=r)
        np.multiply(poly, r, out=sq)
    sq *= signal_variance
    return sq


class GaussianProcess:
    """Exact GP regressor with an ARD (one lengthscale per input) or isotropic stationary kernel.

    Typical use::

        gp = GaussianProcess(kernel="matern52").fit(X, y)
        mean, std = gp.predict(X_candidates)
        record = gp.get_hyperparameters()           # JSON-serialisable
        same = GaussianProcess.from_hyperparameters(record, X, y)

    ``priors``: ``"default"`` (:func:`default_priors`, MAP fit), ``"dimension_scaled"``
    (:func:`dimension_scaled_priors`, BoTorch's), ``None`` (maximum likelihood) or a mapping with keys
    ``lengthscale``, ``signal_variance``, ``noise_variance``. ``noise_floor`` is the smallest noise variance (on the
    standardised scale) the model may use, which keeps the kernel matrix invertible. ``n_restarts`` random
    starts (drawn from the priors, or uniformly in the log-bounds) are added to the previous optimum and the prior
    mode. ``max_hyperopt_points`` caps the observations used by the hyper-parameter search (see :meth:`fit`).
    """

    def __init__(
        self,
        kernel: str = "matern52",
        ard: bool = True,
        *,
        input_scaling: str = "standard",
        noise_floor: float = 1e-6,
        n_restarts: int = 1,
        max_hyperopt_points: int = 200,
        priors: Mapping[str, LogNormalPrior] | str | None = "default",
        lengthscale_bounds: tuple[float, float] = (1e-3, 1e3),
        signal_variance_bounds: tuple[float, float] = (1e-3, 1e2),
        noise_variance_bounds: tuple[float, float] = (1e-6, 1.0),
        seed: int = 0,
    ) -> None:
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
        if input_scaling not in ("standard", "none"):
            raise ValueError(f"input_scaling must be 'standard' or 'none', got {input_scaling!r}")
        if noise_floor <= 0:
            raise ValueError(f"noise_floor must be positive, got {noise_floor}")
        if isinstance(priors, str) and priors not in PRIOR_SETS:
            raise ValueError(f"priors must be one of {list(PRIOR_SETS)}, None or a mapping, got {priors!r}")
        for name, (lo, hi) in {
            "lengthscale_bounds": lengthscale_bounds,
            "signal_variance_bounds": signal_variance_bounds,
            "noise_variance_bounds": noise_variance_bounds,
        }.items():
            if not 0 < lo < hi:
                raise ValueError(f"{name} must satisfy 0 < low < high, got {(lo, hi)}")
        self.kernel = kernel
        self.ard = ard
        self.input_scaling = input_scaling
        self.noise_floor = float(noise_floor)
        self.n_restarts = int(n_restarts)
        self.max_hyperopt_points = int(max_hyperopt_points)
        self.priors = priors
        self.lengthscale_bounds = tuple(map(float, lengthscale_bounds))
        self.signal_variance_bounds = tuple(map(float, signal_variance_bounds))
        self.noise_variance_bounds = (
            max(float(noise_variance_bounds[0]), self.noise_floor),
            float(noise_variance_bounds[1]),
        )
        self.seed = int(seed)
        # set by fit()
        self.lengthscales: np.ndarray | None = None
        self.signal_variance: float = 1.0
        self.noise_variance: float = 1e-2
        self.jitter: float = 0.0
        self.log_marginal_likelihood_value: float | None = None
        self.n_hyperopt_points: int = 0
        self.n_hyperopt_starts: int = 0

    # ------------------------------------------------------------------ scaling
    def _set_scaling(self, X: np.ndarray, y: np.ndarray) -> None:
        if self.input_scaling == "standard":
            self.x_offset = X.mean(axis=0)
            scale = X.std(axis=0)
            self.x_scale = np.where(scale > 0, scale, 1.0)
        else:
            self.x_offset = np.zeros(X.shape[1])
            self.x_scale = np.ones(X.shape[1])
        self.y_mean = float(y.mean())
        y_std = float(y.std())
        self.y_std = y_std if y_std > 0 else 1.0

    def _scale_x(self, X: np.ndarray) -> np.ndarray:
        return (X - self.x_offset) / self.x_scale

    # ------------------------------------------------------------------ parameters
    def _n_lengthscales(self, n_dims: int) -> int:
        return n_dims if self.ard else 1

    def _bounds(self, n_dims: int) -> list[tuple[float, float]]:
        ls = [tuple(np.log(self.lengthscale_bounds))] * self._n_lengthscales(n_dims)
        return [*ls, tuple(np.log(self.signal_variance_bounds)), tuple(np.log(self.noise_variance_bounds))]

    def _resolved_priors(self, n_dims: int) -> Mapping[str, LogNormalPrior]:
        if self.priors is None:
            return {}
        if isinstance(self.priors, str):
            return PRIOR_SETS[self.priors](n_dims, self.input_scaling)
        return self.priors

    def _pack(self) -> np.ndarray:
        assert self.lengthscales is not None
        return np.concatenate([np.log(self.lengthscales), [np.log(self.signal_variance), np.log(self.noise_variance)]])

    def _unpack(self, theta: np.ndarray, n_dims: int) -> None:
        n_ls = self._n_lengthscales(n_dims)
        ls = np.exp(theta[:n_ls])
        self.lengthscales = np.full(n_dims, ls[0]) if n_ls == 1 else ls.copy()
        self.signal_variance = float(np.exp(theta[n_ls]))
        self.noise_variance = float(max(np.exp(theta[n_ls + 1]), self.noise_floor))

    # ------------------------------------------------------------------ linear algebra
    def _cholesky(self, K: np.ndarray) -> tuple[np.ndarray, float]:
        """Lower Cholesky factor of K, adding jitter (escalated 10x per failure) only when it is needed."""
        scale = float(np.mean(np.diag(K)))
        jitter = 0.0
        for _ in range(12):
            try:
                if jitter:
                    Kj = K.copy()
                    Kj[np.diag_indices_from(Kj)] += jitter
                else:
                    Kj = K
                return sla.cholesky(Kj, lower=True, check_finite=False), jitter
            except np.linalg.LinAlgError:
                jitter = scale * 1e-10 if jitter == 0.0 else jitter * 10.0
        raise np.linalg.LinAlgError("kernel matrix not positive definite even with jitter of 10% of its diagonal")

    def _neg_log_posterior(self, theta: np.ndarray, Xs: np.ndarray, ys: np.ndarray, priors) -> tuple[float, np.ndarray]:
        """Negative log marginal likelihood (minus log prior) and its gradient in log-parameter space."""
        n, d = Xs.shape
        n_ls = self._n_lengthscales(d)
        ls = np.exp(theta[:n_ls])
        s2 = float(np.exp(theta[n_ls]))
        noise = float(np.exp(theta[n_ls + 1]))
        ls_full = np.full(d, ls[0]) if n_ls == 1 else ls
        A = Xs / ls_full
        sq = _sq_dist_scaled(A, A)
        if self.kernel == "rbf":
            Kf = s2 * np.exp(-0.5 * sq)
            G = Kf  # dK/dlog l_k = Kf * D_k
        else:
            r = np.sqrt(sq)
            e = np.exp(-_SQRT5 * r)
            Kf = s2 * (1.0 + _SQRT5 * r + (5.0 / 3.0) * sq) * e
            G = s2 * (5.0 / 3.0) * (1.0 + _SQRT5 * r) * e  # dK/dlog l_k = G * D_k
        K = Kf.copy()
        K[np.diag_indices(n)] += noise
        try:
            L, jitter = self._cholesky(K)
        except np.linalg.LinAlgError:
            return 1e25, np.zeros_like(theta)
        alpha = sla.cho_solve((L, True), ys, check_finite=False)
        lml = -0.5 * ys @ alpha - np.sum(np.log(np.diag(L))) - 0.5 * n * _LOG_2PI
        Kinv, info = sla.lapack.dpotri(L, lower=1)
        if info != 0:
            return 1e25, np.zeros_like(theta)
        Kinv += np.tril(Kinv, -1).T  # dpotri fills the lower triangle; the upper one is zero (from L)
        W = np.outer(alpha, alpha) - Kinv
        grad = np.empty_like(theta)
        M = W * G
        m = M.sum(axis=1)
        # sum_ij M_ij (a_ik - a_jk)^2 = 2 sum_i a_ik^2 m_i - 2 a_k^T M a_k  (M symmetric)
        per_dim = 2.0 * (A * A).T @ m - 2.0 * np.einsum("ik,ik->k", A, M @ A)
        if n_ls == 1:
            grad[0] = 0.5 * per_dim.sum()
        else:
            grad[:n_ls] = 0.5 * per_dim
        grad[n_ls] = 0.5 * np.sum(W * Kf)
        grad[n_ls + 1] = 0.5 * noise * np.trace(W)
        if priors:
            lp, g = priors["lengthscale"].logpdf_and_grad(theta[:n_ls])
            lml += lp
            grad[:n_ls] += g
            for i, key in ((n_ls, "signal_variance"), (n_ls + 1, "noise_variance")):
                lp, g = priors[key].logpdf_and_grad(theta[i : i + 1])
                lml += lp
                grad[i] += g[0]
        return -float(lml), -grad

    # ------------------------------------------------------------------ public API
    def fit(self, X: np.ndarray, y: np.ndarray, *, optimize: bool = True) -> GaussianProcess:
        """Fit to observations. ``optimize=False`` keeps the current kernel hyper-parameters (cheap refit).

        The hyper-parameter search uses at most ``max_hyperopt_points`` observations (a seeded random subset):
        the likelihood of a few hundred points already pins the lengthscales, and it keeps the cost O(m^3) instead
        of O(n^3) per L-BFGS-B step. The final factorisation always uses all the data.
        """
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        y = np.asarray(y, dtype=np.float64).ravel()
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} values")
        if X.shape[0] == 0:
            raise ValueError("cannot fit a Gaussian process to zero observations")
        if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
            raise ValueError("X and y must be finite")
        n, d = X.shape
        self._set_scaling(X, y)
        Xs = self._scale_x(X)
        ys = (y - self.y_mean) / self.y_std
        if self.lengthscales is None or len(self.lengthscales) != d:
            self._unpack(self._initial_theta(d), d)
            optimize = True
        if optimize and n >= 2:
            self._optimize(Xs, ys)
        self._factorize(Xs, ys)
        return self

    def _initial_theta(self, d: int) -> np.ndarray:
        priors = self._resolved_priors(d)
        lo, hi = np.array(self._bounds(d)).T
        if priors:
            theta = [priors["lengthscale"].mu] * self._n_lengthscales(d)
            theta += [priors["signal_variance"].mu, priors["noise_variance"].mu]
        else:
            theta = [0.0] * self._n_lengthscales(d) + [0.0, np.log(1e-2)]
        return np.clip(np.array(theta, dtype=float), lo, hi)

    def _optimize(self, Xs: np.ndarray, ys: np.ndarray) -> None:
        n, d = Xs.shape
        rng = np.random.default_rng(self.seed + 7919 * n)
        if n > self.max_hyperopt_points:
            idx = np.sort(rng.choice(n, self.max_hyperopt_points, replace=False))
            Xs, ys = Xs[idx], ys[idx]
        self.n_hyperopt_points = len(ys)
        bounds = self._bounds(d)
        lo, hi = np.array(bounds).T
        priors = self._resolved_priors(d)
        starts = [np.clip(self._pack(), lo, hi)]
        init = self._initial_theta(d)
        if not np.allclose(init, starts[0]):
            starts.append(init)
        for _ in range(self.n_restarts):
            if priors:
                p = [priors["lengthscale"], priors["signal_variance"], priors["noise_variance"]]
                mus = np.array([p[0].mu] * self._n_lengthscales(d) + [p[1].mu, p[2].mu])
                sds = np.array([p[0].sigma] * self._n_lengthscales(d) + [p[1].sigma, p[2].sigma])
                starts.append(np.clip(rng.normal(mus, 0.5 * sds), lo, hi))
            else:
                starts.append(rng.uniform(lo, hi))
        best_f, best_theta = np.inf, starts[0]
        self.n_hyperopt_starts = len(starts)
        for theta0 in starts:
            try:
                res = minimize(
                    self._neg_log_posterior,
                    theta0,
                    args=(Xs, ys, priors),
                    jac=True,
                    method="L-BFGS-B",
                    bounds=bounds,
                    options={"maxiter": 200, "ftol": 1e-7},
                )
            except (ValueError, FloatingPointError):  # pragma: no cover - defensive
                continue
            if np.isfinite(res.fun) and res.fun < best_f:
                best_f, best_theta = float(res.fun), res.x
        self._unpack(best_theta, d)

    def _factorize(self, Xs: np.ndarray, ys: np.ndarray) -> None:
        self.X_train_ = Xs
        self.y_train_ = ys
        K = self._kernel_scaled(Xs, Xs)
        K[np.diag_indices_from(K)] += self.noise_variance
        self.L_, self.jitter = self._cholesky(K)
        self.alpha_ = sla.cho_solve((self.L_, True), ys, check_finite=False)
        n = len(ys)
        self.log_marginal_likelihood_value = float(
            -0.5 * ys @ self.alpha_ - np.sum(np.log(np.diag(self.L_))) - 0.5 * n * _LOG_2PI
        )

    def _kernel_scaled(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        assert self.lengthscales is not None
        sq = _sq_dist_scaled(A / self.lengthscales, B / self.lengthscales)
        return _kernel_from_sq(sq, self.kernel, self.signal_variance)

    def predict(
        self, X: np.ndarray, *, return_std: bool = True, return_cov: bool = False, include_noise: bool = False
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Posterior mean (and std or joint covariance) of the latent function, in the units of y.

        ``include_noise`` adds the fitted observation noise (predictive distribution of a new measurement).
        """
        if not hasattr(self, "L_"):
            raise RuntimeError("fit() the Gaussian process before predicting")
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        Xs = self._scale_x(X)
        m, n = Xs.shape[0], self.L_.shape[0]
        mean = np.empty(m)
        var = np.empty(m) if (return_std and not return_cov) else None
        V_all = np.empty((n, m)) if return_cov else None
        chunk = max(1, _CHUNK_ELEMENTS // max(n, 1))
        for start in range(0, m, chunk):
            stop = min(m, start + chunk)
            Ks = self._kernel_scaled(Xs[start:stop], self.X_train_)
            mean[start:stop] = Ks @ self.alpha_
            if var is not None or V_all is not None:
                V = sla.blas.dtrsm(1.0, self.L_, Ks, side=1, lower=1, trans_a=1)  # Ks L^{-T}
                if var is not None:
                    var[start:stop] = self.signal_variance - np.einsum("ij,ij->i", V, V)
                else:
                    V_all[:, start:stop] = V.T
        mean = self.y_mean + self.y_std * mean
        if return_cov:
            cov = self._kernel_scaled(Xs, Xs) - V_all.T @ V_all
            if include_noise:
                cov[np.diag_indices_from(cov)] += self.noise_variance
            cov = 0.5 * (cov + cov.T) * self.y_std**2
            return mean, cov
        if not return_std:
            return mean
        var = np.maximum(var, 1e-12 * self.signal_variance)
        if include_noise:
            var = var + self.noise_variance
        return mean, self.y_std * np.sqrt(var)

    def posterior(self, X: np.ndarray, *, include_noise: bool = False, n_samples: int = 0, seed: int = 0) -> Posterior:
        """Marginal posterior at ``X`` (mean and std, as :meth:`predict`); with ``n_samples`` > 0 also joint draws
        from the full posterior covariance (for Monte-Carlo acquisitions), reproducible through ``seed``."""
        if n_samples <= 0:
            mean, std = self.predict(X, include_noise=include_noise)
            return Posterior(mean=mean, std=std)
        mean, cov = self.predict(X, return_cov=True, include_noise=include_noise)
        std = np.sqrt(np.maximum(np.diag(cov), 1e-12 * self.signal_variance * self.y_std**2))
        samples = np.random.default_rng(seed).multivariate_normal(mean, cov, size=n_samples, method="eigh")
        return Posterior(mean=mean, std=std, samples=samples)

    def predict_mean_and_std_bound(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact posterior mean and a cheap *upper bound* on the posterior std, in O(n m) instead of O(n^2 m).

        Conditioning on more data never increases a Gaussian posterior variance, so the variance given all
        observations is at most the variance given the single most correlated one: s2 - max_i k_i^2 / (s2 + noise).
        Acquisitions that grow with the std (EI, UCB) can then skip most of a large pool exactly.
        """
        if not hasattr(self, "L_"):
            raise RuntimeError("fit() the Gaussian process before predicting")
        Xs = self._scale_x(np.atleast_2d(np.asarray(X, dtype=np.float64)))
        m, n = Xs.shape[0], self.L_.shape[0]
        mean, k_max = np.empty(m), np.empty(m)
        chunk = max(1, _CHUNK_ELEMENTS // max(n, 1))
        for start in range(0, m, chunk):
            Ks = self._kernel_scaled(Xs[start : start + chunk], self.X_train_)
            mean[start : start + chunk] = Ks @ self.alpha_
            k_max[start : start + chunk] = Ks.max(axis=1)
        s2 = self.signal_variance
        var = np.maximum(s2 - k_max**2 / (s2 + self.noise_variance + self.jitter), 1e-12 * s2)
        return self.y_mean + self.y_std * mean, self.y_std * np.sqrt(var)

    def condition_on(self, X_new: np.ndarray, y_new: np.ndarray) -> GaussianProcess:
        """A copy with extra observations and the same hyper-parameters and scaling (for batch selection)."""
        X_all = np.vstack([self.X_train_ * self.x_scale + self.x_offset, np.atleast_2d(X_new)])
        y_all = np.concatenate([self.y_train_ * self.y_std + self.y_mean, np.ravel(y_new)])
        return GaussianProcess.from_hyperparameters(self.get_hyperparameters(), X_all, y_all)

    def get_hyperparameters(self) -> dict[str, Any]:
        """Everything needed to re-create the fitted model from the same data, as plain JSON types."""
        if self.lengthscales is None:
            raise RuntimeError("fit() the Gaussian process first")
        return {
            "kernel": self.kernel,
            "ard": self.ard,
            "input_scaling": self.input_scaling,
            "lengthscales": [float(v) for v in self.lengthscales],
            "signal_variance": self.signal_variance,
            "noise_variance": self.noise_variance,
            "noise_floor": self.noise_floor,
            "x_offset": [float(v) for v in self.x_offset],
            "x_scale": [float(v) for v in self.x_scale],
            "y_mean": self.y_mean,
            "y_std": self.y_std,
            "jitter": self.jitter,
            "log_marginal_likelihood": self.log_marginal_likelihood_value,
            "n_hyperopt_points": self.n_hyperopt_points,
        }

    @classmethod
    def from_hyperparameters(cls, hyperparameters: Mapping[str, Any], X: np.ndarray, y: np.ndarray) -> GaussianProcess:
        """Re-create a fitted model from :meth:`get_hyperparameters` output and the training data (no optimisation)."""
        hp = hyperparameters
        gp = cls(kernel=hp["kernel"], ard=hp["ard"], input_scaling=hp["input_scaling"], noise_floor=hp["noise_floor"])
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        y = np.asarray(y, dtype=np.float64).ravel()
        gp.lengthscales = np.asarray(hp["lengthscales"], dtype=float)
        if gp.lengthscales.shape != (X.shape[1],):
            raise ValueError(f"{len(gp.lengthscales)} lengthscales for {X.shape[1]} input columns")
        gp.signal_variance = float(hp["signal_variance"])
        gp.noise_variance = float(hp["noise_variance"])
        gp.x_offset = np.asarray(hp["x_offset"], dtype=float)
        gp.x_scale = np.asarray(hp["x_scale"], dtype=float)
        gp.y_mean = float(hp["y_mean"])
        gp.y_std = float(hp["y_std"])
        gp._factorize(gp._scale_x(X), (y - gp.y_mean) / gp.y_std)
        return gp

    def relevance(self) -> np.ndarray:
        """Inverse lengthscales in the original input units: larger means the property varies faster along it."""
        if self.lengthscales is None:
            raise RuntimeError("fit() the Gaussian process first")
        return 1.0 / (self.lengthscales * self.x_scale)
