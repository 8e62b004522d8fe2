"""A Gaussian process over several related tasks, for campaigns that start from earlier campaigns' data.

Why a model of its own: pooling an earlier campaign's evaluations with the new one's pretends the two tasks are the
same (another base structure, another functional, ML instead of DFT), and throwing them away ignores what they
teach. This model learns how much the tasks share, from the data, as BayBE's and BoTorch's task kernels do.

The kernel is a linear model of coregionalisation with one shared and one private component per task, and a constant
offset of the target (task 0) from its own mean::

    k((x, s), (x', t)) = a_s a_t k_shared(x, x') + [s = t] b_t^2 k_t(x, x') + [s = t = 0] c^2 + [same point] noise_t

``a_t`` is how strongly task ``t`` follows the shared landscape, ``b_t^2`` the variance of what is its own. The
shared lengthscales are those of a single-task GP on the earlier tasks' data (:meth:`_shared_kernel`), so the shared
component is the earlier landscape; with a related earlier task the target's ``a`` is large and that landscape
shapes its posterior from the first pick on (with no evaluation of its own, the target follows it through the
priors); with an unrelated one ``a_target`` goes to zero and the model falls back to an ordinary GP on the target's
own data with its own lengthscales (which a single shared kernel with a task-correlation matrix cannot do). The
correlation between the target and task ``t`` is reported as :meth:`task_correlations`.

Conventions follow :class:`~aiida_nanoos.models.gp.GaussianProcess`: Matérn 5/2 with one lengthscale per input on
inputs the caller scales (campaigns use the unit cube), each earlier task's outputs standardised on their own and the
target's on the earlier tasks' scale (:meth:`_standardise`), MAP with the same weak priors, multi-start L-BFGS-B with
analytic gradients in log-parameter space. Task 0 is the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from scipy.optimize import minimize

from aiida_nanoos.models.gp import _SQRT5, GaussianProcess, LogNormalPrior, _sq_dist_scaled, default_priors
from aiida_nanoos.models.posterior import Posterior

_LOG_2PI = np.log(2.0 * np.pi)
#: Bounds in log space for lengthscales, component variances and noise variances (standardised outputs, unit cube).
_LOG_LENGTHSCALE = (np.log(1e-2), np.log(1e2))
_LOG_VARIANCE = (np.log(1e-4), np.log(1e2))
_LOG_NOISE = (np.log(1e-6), np.log(1.0))
_LOADING = (-3.0, 3.0)
_EARLIER_PRIVATE_VARIANCE = LogNormalPrior(mu=float(np.log(0.05)), sigma=1.5)
#: Mean of the normal prior on every task's loading: a task the user calls related is expected to follow the shared
#: landscape with the same sign (unit loading on standardised outputs), until its own data say otherwise.
_LOADING_PRIOR_MEAN = 1.0
#: A priori share of the target's own variance against the shared kernel's (see ``_target_private_prior``).
_TARGET_PRIVATE_SHARE = 0.1
#: Variance of the target's constant offset from its own mean (standardised units): centring on the mean of a few
#: evaluations leaves the level of the landscape unknown, and a related task may differ by a constant (another
#: functional shifts band gaps).
_TARGET_OFFSET_VARIANCE = 1.0


def _matern52(A: np.ndarray, B: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matérn 5/2 values k, and G with dk/dlog(l_k) = G * (a_k - b_k)^2, for lengthscale-divided inputs."""
    sq = _sq_dist_scaled(A, B)
    r = np.sqrt(sq)
    e = np.exp(-_SQRT5 * r)
    k = (1.0 + _SQRT5 * r + (5.0 / 3.0) * sq) * e
    G = (5.0 / 3.0) * (1.0 + _SQRT5 * r) * e
    return k, G, sq


def _lengthscale_gradient(A: np.ndarray, M: np.ndarray) -> np.ndarray:
    """0.5 * sum_ij M_ij (a_ik - a_jk)^2 for each input k (M symmetric): the gradient over log lengthscales."""
    m = M.sum(axis=1)
    return (A * A).T @ m - np.einsum("ik,ik->k", A, M @ A)


@dataclass(frozen=True)
class _Layout:
    """Where each hyper-parameter sits in the flat vector the optimiser moves."""

    n_dims: int
    n_tasks: int

    @property
    def shared(self) -> slice:
        return slice(0, self.n_dims)

    def private(self, task: int) -> slice:
        start = self.n_dims * (1 + task)
        return slice(start, start + self.n_dims)

    @property
    def loadings(self) -> slice:
        start = self.n_dims * (1 + self.n_tasks)
        return slice(start, start + self.n_tasks)

    @property
    def private_variances(self) -> slice:
        start = self.n_dims * (1 + self.n_tasks) + self.n_tasks
        return slice(start, start + self.n_tasks)

    @property
    def noises(self) -> slice:
        start = self.n_dims * (1 + self.n_tasks) + 2 * self.n_tasks
        return slice(start, start + self.n_tasks)

    @property
    def size(self) -> int:
        return self.n_dims * (1 + self.n_tasks) + 3 * self.n_tasks


class TransferGaussianProcess:
    """Exact multi-task GP (shared + private Matérn 5/2 components); task 0 is the one predicted.

    Typical use::

        gp = TransferGaussianProcess().fit(X, y, task)      # task[i] = 0 for the new campaign, 1.. earlier ones
        posterior = gp.posterior(X_candidates)              # of task 0
        gp.task_correlations()                              # [shared share of task 0, rho_01, ...]
    """

    def __init__(self, *, n_restarts: int = 1, max_hyperopt_points: int = 150, seed: int = 0) -> None:
        self.n_restarts = int(n_restarts)
        self.max_hyperopt_points = int(max_hyperopt_points)
        self.seed = int(seed)
        self.theta: np.ndarray | None = None
        self.layout: _Layout | None = None
        #: The signal amplitude of the earlier tasks' own GP (see :meth:`_shared_kernel`), which scales the loadings'
        #: prior and bounds; None while no earlier task has two points.
        self.shared_amplitude: float | None = None
        #: The last earlier-task fit of :meth:`_shared_kernel`, keyed by its data: a campaign's earlier tasks do not
        #: change from one step to the next, so each refit would repeat the same (deterministic) fit.
        self._shared_fit: tuple[bytes, tuple[np.ndarray, float]] | None = None

    # ------------------------------------------------------------------ data handling
    def _standardise(self, y: np.ndarray, task: np.ndarray, n_tasks: int, same_scale: bool = True) -> np.ndarray:
        """Each earlier task centred on its own mean and divided by its own spread; the target centred on its own
        mean (its offset from that is the constant term of its kernel) and, with ``same_scale`` and earlier tasks,
        divided by their spread, not its own.

        Why not the target's own spread: a campaign's evaluations cluster where the objective is good, so their
        spread is far smaller than the landscape's, and on that scale the earlier landscape looks flat to the target
        (the fit then drops it). The earlier campaigns measured the same property (a warm start requires it), so
        their spread is the landscape's scale; the target's loading and own variance absorb any difference."""
        self.y_mean = np.zeros(n_tasks)
        self.y_std = np.ones(n_tasks)
        centred = y.copy()
        for t in range(n_tasks):
            rows = task == t
            if rows.any():
                self.y_mean[t] = y[rows].mean()
                centred[rows] -= self.y_mean[t]
        pooled = float(centred.std()) or 1.0
        for t in range(n_tasks):
            rows = task == t
            spread = float(y[rows].std()) if rows.sum() >= 3 else 0.0
            self.y_std[t] = spread if spread > 0 else pooled
        earlier = task != 0
        if same_scale and earlier.any():
            self.y_std[0] = float(centred[earlier].std()) or pooled
        return centred / self.y_std[task]

    # ------------------------------------------------------------------ likelihood
    def _unpack(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        lay = self.layout
        return {
            "shared": np.exp(theta[lay.shared]),
            "private": [np.exp(theta[lay.private(t)]) for t in range(lay.n_tasks)],
            "loadings": theta[lay.loadings],
            "private_variances": np.exp(theta[lay.private_variances]),
            "noises": np.exp(theta[lay.noises]),
        }

    def _components(self, p: dict, X: np.ndarray, task: np.ndarray):
        """Kernel matrix of the observations and the pieces its gradient needs."""
        A = X / p["shared"]
        k_shared, G_shared, _ = _matern52(A, A)
        loading = p["loadings"][task]
        P = np.outer(loading, loading)
        K = P * k_shared
        private = []
        for t in range(self.layout.n_tasks):
            rows = np.flatnonzero(task == t)
            if not len(rows):
                private.append(None)
                continue
            At = X[rows] / p["private"][t]
            k_t, G_t, _ = _matern52(At, At)
            K[np.ix_(rows, rows)] += p["private_variances"][t] * k_t
            private.append((rows, At, k_t, G_t))
        target = task == 0
        K[np.ix_(target, target)] += _TARGET_OFFSET_VARIANCE
        K[np.diag_indices_from(K)] += p["noises"][task]
        return K, A, k_shared, G_shared, P, loading, private

    def _neg_log_posterior(self, theta: np.ndarray, X: np.ndarray, ys: np.ndarray, task: np.ndarray):
        lay = self.layout
        p = self._unpack(theta)
        K, A, k_shared, G_shared, P, loading, private = self._components(p, X, task)
        try:
            L = sla.cholesky(K, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return 1e25, np.zeros_like(theta)
        alpha = sla.cho_solve((L, True), ys, check_finite=False)
        lml = -0.5 * ys @ alpha - np.sum(np.log(np.diag(L))) - 0.5 * len(ys) * _LOG_2PI
        Kinv, info = sla.lapack.dpotri(L, lower=1)
        if info != 0:
            return 1e25, np.zeros_like(theta)
        Kinv += np.tril(Kinv, -1).T
        W = np.outer(alpha, alpha) - Kinv
        grad = np.zeros_like(theta)
        grad[lay.shared] = _lengthscale_gradient(A, W * P * G_shared)
        Wk = W * k_shared
        per_row = Wk @ loading
        for t in range(lay.n_tasks):
            rows = task == t
            grad[lay.loadings.start + t] = per_row[rows].sum()
            grad[lay.noises.start + t] = 0.5 * p["noises"][t] * np.sum(np.diag(W)[rows])
            if private[t] is None:
                continue
            idx, At, k_t, G_t = private[t]
            W_tt = W[np.ix_(idx, idx)]
            variance = p["private_variances"][t]
            grad[lay.private(t)] = _lengthscale_gradient(At, W_tt * (variance * G_t))
            grad[lay.private_variances.start + t] = 0.5 * variance * np.sum(W_tt * k_t)
        lp, g = self._log_prior(theta)
        return -float(lml + lp), -(grad + g)

    def _log_prior(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The weak priors of :func:`~aiida_nanoos.models.gp.default_priors` on lengthscales, the target's own
        variance and the noises; a normal centred on the shared amplitude, as wide, on the loadings (a related task
        follows the shared landscape with the same sign). An earlier task's own variance is centred on 5 % of its
        spread: with one earlier task, what it shares and what it owns cannot be told apart from its own
        data, and the shared part is the one that can help the target (the target's data still decide whether it
        does, through the target's loading)."""
        lay = self.layout
        priors = default_priors(lay.n_dims)
        total, grad = 0.0, np.zeros_like(theta)
        lengthscales = np.r_[lay.shared.start : lay.private(lay.n_tasks - 1).stop]
        target_private = np.array([lay.private_variances.start])
        earlier_private = np.arange(lay.private_variances.start + 1, lay.private_variances.stop)
        for index, prior in (
            (lengthscales, priors["lengthscale"]),
            (target_private, self._target_private_prior()),
            (earlier_private, _EARLIER_PRIVATE_VARIANCE),
            (np.r_[lay.noises], priors["noise_variance"]),
        ):
            lp, g = prior.logpdf_and_grad(theta[index])
            total += lp
            grad[index] += g
        scale = self.shared_amplitude or 1.0
        offset = (theta[lay.loadings] - _LOADING_PRIOR_MEAN * scale) / scale
        total += float(-0.5 * offset @ offset)
        grad[lay.loadings] -= offset / scale
        return total, grad

    def _target_private_prior(self) -> LogNormalPrior:
        """The target's own variance: a priori a tenth of the shared kernel's (the task was called related), as wide
        as the single-task prior, so a few evaluations that do not follow the earlier landscape raise it."""
        if self.shared_amplitude is None:
            return default_priors(self.layout.n_dims)["signal_variance"]
        return LogNormalPrior(mu=float(np.log(_TARGET_PRIVATE_SHARE * self.shared_amplitude**2)), sigma=1.5)

    def _bounds(self) -> list[tuple[float, float]]:
        lay = self.layout
        scale = self.shared_amplitude or 1.0
        return (
            [_LOG_LENGTHSCALE] * (lay.n_dims * (1 + lay.n_tasks))
            + [(_LOADING[0] * scale, _LOADING[1] * scale)] * lay.n_tasks
            + [_LOG_VARIANCE] * lay.n_tasks
            + [_LOG_NOISE] * lay.n_tasks
        )

    def _initial_theta(self) -> np.ndarray:
        lay = self.layout
        priors = default_priors(lay.n_dims)
        theta = np.empty(lay.size)
        theta[: lay.n_dims * (1 + lay.n_tasks)] = priors["lengthscale"].mu
        theta[lay.loadings] = 1.0
        theta[lay.private_variances] = _EARLIER_PRIVATE_VARIANCE.mu
        theta[lay.private_variances.start] = np.log(0.3)
        theta[lay.noises] = priors["noise_variance"].mu
        return theta

    # ------------------------------------------------------------------ public API
    def fit(
        self, X: np.ndarray, y: np.ndarray, task: np.ndarray, *, optimize: bool = True, same_scale: bool = True
    ) -> TransferGaussianProcess:
        """Fit to observations of several tasks (``task[i]`` = 0 for the target, 1, 2, ... for earlier tasks).

        ``same_scale``: the target's values are on the earlier tasks' scale (the same property in the same units),
        so their spread standardises it (see :meth:`_standardise`); ``False`` standardises it on its own.

        ``optimize=False`` keeps the hyper-parameters of the previous fit (a cheap re-conditioning). The search uses
        every target point and a seeded subset of the earlier tasks' points up to ``max_hyperopt_points``. Without
        target observations (a campaign's first decision) the target's loading and own variance stay at their priors:
        the posterior follows the earlier tasks' shared landscape, on their standardised scale.
        """
        X = np.atleast_2d(np.asarray(X, dtype=float))
        y = np.asarray(y, dtype=float).ravel()
        task = np.asarray(task, dtype=np.int64).ravel()
        if not (len(X) == len(y) == len(task)):
            raise ValueError(f"X, y and task differ in length: {len(X)}, {len(y)}, {len(task)}")
        if not np.all(task >= 0) or not np.all(np.isfinite(X)) or not np.all(np.isfinite(y)):
            raise ValueError("tasks must be non-negative integers and X, y finite")
        layout = _Layout(X.shape[1], int(task.max()) + 1)
        if self.layout != layout or self.theta is None:
            self.layout = layout
            self.theta, optimize = self._initial_theta(), True
        ys = self._standardise(y, task, layout.n_tasks, same_scale)
        if optimize:
            self._optimize(X, ys, task)
        self._factorise(X, ys, task)
        return self

    def _optimize(self, X: np.ndarray, ys: np.ndarray, task: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed + 7919 * len(ys))
        target, earlier = np.flatnonzero(task == 0), np.flatnonzero(task != 0)
        room = max(self.max_hyperopt_points - len(target), 0)
        if len(earlier) > room:
            earlier = np.sort(rng.choice(earlier, room, replace=False))
        rows = np.concatenate([target, earlier])
        shared, self.shared_amplitude = None, None
        if len(earlier) >= 2:  # the shared kernel is the earlier tasks' own (see _shared_kernel)
            shared, self.shared_amplitude = self._shared_kernel(X[earlier], ys[earlier])
        bounds, initial = self._bounds(), self._initial_theta()
        if shared is not None:
            for index, value in zip(range(self.layout.shared.start, self.layout.shared.stop), shared, strict=True):
                bounds[index] = (value, value)
            initial[self.layout.loadings] = self.shared_amplitude
        lo, hi = np.array(bounds).T
        starts = [np.clip(self.theta, lo, hi), np.clip(initial, lo, hi)]
        for _ in range(self.n_restarts):
            start = initial + rng.normal(0.0, 0.5, self.layout.size)
            starts.append(np.clip(start, lo, hi))
        best_value, best_theta = np.inf, starts[0]
        for theta0 in starts:
            result = minimize(
                self._neg_log_posterior,
                theta0,
                args=(X[rows], ys[rows], task[rows]),
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": 150, "ftol": 1e-7},
            )
            if np.isfinite(result.fun) and result.fun < best_value:
                best_value, best_theta = float(result.fun), result.x
        self.theta = best_theta

    def _shared_kernel(self, X: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, float]:
        """Log lengthscales and signal amplitude of a single-task GP (the campaign's own recipe) on the earlier tasks'
        standardised data. The amplitude scales the loadings' prior: a lengthscale long against the unit cube comes
        with a large signal variance, and a loading of that size means "follows the earlier landscape".

        Why fixed: with one earlier task, what it shares with the target and what is its own cannot be told apart
        from its data, and a joint search often splits its landscape between the two components (a needle-like
        shared kernel and a private one that explains the rest), so the target learns little from it. Holding the
        shared lengthscales at the earlier tasks' own makes the shared component the earlier landscape; the target's
        loading, own variance and own lengthscales then say how much of it the target follows."""
        key = X.tobytes() + ys.tobytes()
        if self._shared_fit is None or self._shared_fit[0] != key:
            fitted = GaussianProcess(input_scaling="none", seed=self.seed).fit(X, ys)
            lo, hi = _LOG_LENGTHSCALE
            self._shared_fit = (
                key,
                (np.clip(np.log(fitted.lengthscales), lo, hi), float(np.sqrt(fitted.signal_variance))),
            )
        return self._shared_fit[1]

    def _factorise(self, X: np.ndarray, ys: np.ndarray, task: np.ndarray) -> None:
        self.X_train_, self.task_train_ = X, task
        p = self._unpack(self.theta)
        K = self._components(p, X, task)[0]
        jitter = 0.0
        for _ in range(10):
            try:
                self.L_ = sla.cholesky(K + jitter * np.eye(len(K)), lower=True, check_finite=False)
                break
            except np.linalg.LinAlgError:
                jitter = 1e-8 if jitter == 0.0 else 10.0 * jitter
        else:  # pragma: no cover - the noise floor keeps K positive definite
            raise np.linalg.LinAlgError("multi-task kernel matrix not positive definite")
        self.alpha_ = sla.cho_solve((self.L_, True), ys, check_finite=False)

    def posterior(self, X: np.ndarray) -> Posterior:
        """Posterior of the target task (task 0) at ``X``, in the target's units."""
        if not hasattr(self, "L_"):
            raise RuntimeError("fit() the model before predicting")
        X = np.atleast_2d(np.asarray(X, dtype=float))
        p = self._unpack(self.theta)
        a_target = p["loadings"][0]
        k_cross = (
            a_target * p["loadings"][self.task_train_] * _matern52(X / p["shared"], self.X_train_ / p["shared"])[0]
        )
        own = np.flatnonzero(self.task_train_ == 0)
        k_cross[:, own] += (
            p["private_variances"][0] * _matern52(X / p["private"][0], self.X_train_[own] / p["private"][0])[0]
            + _TARGET_OFFSET_VARIANCE
        )
        mean = k_cross @ self.alpha_
        V = sla.solve_triangular(self.L_, k_cross.T, lower=True, check_finite=False)
        prior_variance = a_target**2 + p["private_variances"][0] + _TARGET_OFFSET_VARIANCE
        variance = np.maximum(prior_variance - np.einsum("ij,ij->j", V, V), 1e-12 * prior_variance)
        return Posterior(mean=self.y_mean[0] + self.y_std[0] * mean, std=self.y_std[0] * np.sqrt(variance))

    def task_correlations(self) -> np.ndarray:
        """Prior correlation of each task's property with the target's at the same input; entry 0 (the target with
        itself through the shared component) is the share of the target's variance that the tasks have in common."""
        p = self._unpack(self.theta)
        a, b2 = p["loadings"], p["private_variances"]
        return a[0] * a / np.sqrt((a[0] ** 2 + b2[0]) * (a**2 + b2))

    def get_hyperparameters(self) -> dict[str, object]:
        """The fitted hyper-parameters as plain JSON (the flat log-space vector and its layout), so a campaign can
        record the fit as a node and re-condition on it later with :meth:`set_hyperparameters`."""
        if self.theta is None or self.layout is None:
            raise RuntimeError("fit() the model first")
        return {"n_dims": self.layout.n_dims, "n_tasks": self.layout.n_tasks, "theta": [float(v) for v in self.theta]}

    def set_hyperparameters(self, data: dict) -> TransferGaussianProcess:
        """Use recorded hyper-parameters: the next ``fit(..., optimize=False)`` on data of this layout keeps them."""
        layout = _Layout(int(data["n_dims"]), int(data["n_tasks"]))
        theta = np.asarray(data["theta"], dtype=float)
        if theta.shape != (layout.size,):
            raise ValueError(f"hyper-parameters: {theta.size} values, the layout needs {layout.size}")
        self.layout, self.theta = layout, theta
        return self
