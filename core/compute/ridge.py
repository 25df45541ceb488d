"""Cross-validated ridge regression: activations X → responses Y, out-of-fold predictions.

The engine decomposes each outer fold's centred training design once (an eigendecomposition of
the Gram matrix X Xᵀ when n_train ≤ d, else of Xᵀ X, in float64) and shares it between every
alpha and every target: with Z = Uᵀ Y_train the targets in that eigenbasis, the leave-one-out,
GCV or inner K-fold errors of all alphas and the held-out predictions are rescalings of Z followed
by matrix products (float32 or float64 products, chosen by ``dtype``). Targets are processed in
chunks: besides the returned predictions, memory is the decomposition's O(n·d + n²) and a chunk's
O(n × chunk), whatever the number of targets. Backends: NumPy (CPU) and PyTorch (CUDA, or CPU);
see :mod:`brainbench.core.compute._ridge_backends`. Measured speed: docs/performance.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._ridge_backends import get_backend
from .stats import pearson_from_sums

DEFAULT_ALPHAS = tuple(np.logspace(-1, 6, 10))
#: inner splits of ``alpha_selection="kfold"`` (himalaya's default ``cv=5``)
INNER_FOLDS = 5
#: rows of the triangular factors multiplied at once by the fast leave-one-out path
_TRI_BLOCK = 128
#: largest max/min ratio of the leave-one-out weights for which the triangular path is used
_TRI_MAX_SPREAD = 1e3


@dataclass
class CVResult:
    """``predictions`` (n, m): out-of-fold predictions; ``alphas`` (n_folds, m): alpha per target per fold;
    ``errors`` (n_folds, m): the alpha-selection criterion at the chosen alpha, per training sample
    (``"loo"``: mean squared leave-one-out error; ``"gcv"``: RSS / n / (1 - df/n)²; ``"kfold"``: mean
    inner validation MSE) — an estimate, from the training part only, of the squared prediction error."""

    predictions: np.ndarray
    alphas: np.ndarray
    errors: np.ndarray | None = None


def cv_predict(X, Y, *, alphas=DEFAULT_ALPHAS, folds=5, alpha_selection="loo", fit_intercept=True,
               backend="auto", dtype=None, target_chunk=None) -> CVResult:
    """Out-of-fold ridge predictions of every target, alpha chosen per target and per fold.

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
    Y : array of shape (n_samples, n_targets) or (n_samples,)
    alphas : sequence of positive floats, shape (n_alphas,)
        Candidate regularisation strengths; ties go to the earliest.
    folds : int, scikit-learn splitter or iterable of (train, test) index arrays
        An int is a contiguous ``KFold(folds)`` (no shuffling).
    alpha_selection : {"loo", "gcv", "kfold"}
        Criterion on the training fold: ``"loo"`` the exact efficient leave-one-out error of
        scikit-learn's ``RidgeCV(alpha_per_target=True)``; ``"gcv"`` generalised cross-validation
        (residual sum of squares / (1 - df/n)², df = tr(hat matrix) + intercept); ``"kfold"`` the
        mean squared error over an inner contiguous 5-fold split, as himalaya's ``RidgeCV``.
    fit_intercept : bool
        Centre X and Y with the training means (the intercept is not penalised).
    backend : {"auto", "numpy", "torch"}
        ``"auto"``: torch on CUDA when available, else numpy. ``"torch"`` runs on CPU without CUDA.
    dtype : None, float32 or float64
        Precision of the products on targets; None: float32 if X and Y are float32, else float64.
        Decompositions and leave-one-out denominators are always computed in float64.
    target_chunk : int, optional
        Targets per chunk; default: a cache-sized chunk on a CPU, bounded by free memory.

    Returns
    -------
    CVResult
        ``predictions`` with the shape of Y (rows outside every test fold are NaN; a row in
        several test folds keeps the last) and ``alphas`` of shape (n_folds, n_targets)
        ((n_folds,) for a 1-D Y).
    """
    eng = _Engine(X, Y, alphas, folds, alpha_selection, fit_intercept, backend, dtype, target_chunk)
    B = eng.B
    predictions = np.full(eng.Y.shape, np.nan, eng.dtype)
    chosen = np.empty((len(eng.splits), eng.Y.shape[1]))
    errors = np.empty_like(chosen)
    for f, (fold, selector) in enumerate(eng.folds()):
        for cols in eng.chunks():
            Ytr, mean = eng.load(fold.train, cols)
            Z = fold.basis.T @ Ytr
            scores = selector.scores(Ytr, Z)
            best = B.xp.argmin(scores, axis=0)
            P = fold.to_test @ (Z * fold.inv[best].T)
            if mean is not None:
                P += B.asarray(mean, eng.dtype)
            predictions[fold.test, cols] = B.to_numpy(P)
            best = B.to_numpy(best)
            chosen[f, cols] = eng.alphas[best]
            lowest = np.take_along_axis(B.to_numpy(scores), best[None], axis=0)[0]
            errors[f, cols] = lowest * selector.per_sample
    if eng.squeeze:
        return CVResult(predictions[:, 0], chosen[:, 0], errors[:, 0])
    return CVResult(predictions, chosen, errors)


def cv_permutation_null(X, Y, *, alphas=DEFAULT_ALPHAS, folds=5, n_permutations=200, seed=0,
                        alpha_selection="loo", fit_intercept=True, backend="auto", dtype=None,
                        target_chunk=None) -> np.ndarray:
    """Out-of-fold Pearson r of every target with the rows of Y shuffled (permuted image labels).

    Each permutation π reorders the rows of Y (``Y[π]``) and repeats :func:`cv_predict` with
    the same folds, then correlates the out-of-fold predictions with ``Y[π]``.

    Choice made: the alphas are **fixed to those selected on the unpermuted data** (per fold and
    per target, by ``alpha_selection``), not re-selected per permutation. A permutation then
    costs one (n_test, n_train) × (n_train, m) product per fold (the linear map from training
    targets to held-out predictions of each alpha, applied to the permuted rows) instead of a new
    alpha search (about 10× more for "loo"). Under the null, re-selection mostly changes the
    overall shrinkage, to which Pearson r is insensitive; the tests check that this null
    reproduces the distribution of the out-of-fold r of pure-noise targets whose alphas were
    selected on their own data (including its negative bias: held-out r without signal is
    below 0, since each test fold is predicted from training means that exclude it).

    Parameters
    ----------
    X, Y, alphas, folds, alpha_selection, fit_intercept, backend, dtype, target_chunk
        As :func:`cv_predict`; here the test folds must partition the samples.
    n_permutations : int
    seed : int or numpy Generator
        Permutation ``k`` is the ``k``-th ``rng.permutation(n_samples)`` of
        ``numpy.random.default_rng(seed)``.

    Returns
    -------
    r : array of shape (n_permutations, n_targets) ((n_permutations,) for a 1-D Y)
        NaN for a constant target.
    """
    eng = _Engine(X, Y, alphas, folds, alpha_selection, fit_intercept, backend, dtype, target_chunk)
    B = eng.B
    n, m = eng.Y.shape
    test_count = np.bincount(np.concatenate([te for _, te in eng.splits]), minlength=n)
    if not (test_count == 1).all():
        raise ValueError("cv_permutation_null needs test folds that partition the samples")
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(n) for _ in range(n_permutations)]
    # centring Y changes no prediction with an intercept (each prediction map reproduces constants)
    offset = eng.Y.mean(axis=0, dtype=np.float64) if eng.fit_intercept else np.zeros(m)
    y_sums = np.zeros((3, m))  # Σy, Σy², peak-to-peak (zero for a constant target)
    for cols in eng.chunks():
        Yg = eng.Y[:, cols] - offset[cols]
        y_sums[:, cols] = Yg.sum(axis=0), (Yg * Yg).sum(axis=0), np.ptp(eng.Y[:, cols], axis=0)
    sums = np.zeros((3, n_permutations, m))  # Σp, Σp², Σyp over the held-out rows
    for fold, selector in eng.folds():
        best = np.empty(m, np.intp)
        for cols in eng.chunks():
            Ytr, _ = eng.load(fold.train, cols)
            best[cols] = B.to_numpy(selector.select(Ytr, fold.basis.T @ Ytr))
        _add_permuted_sums(eng, fold, best, perms, offset, sums)
    r = pearson_from_sums(n, sums[0], y_sums[0], sums[1], y_sums[1], sums[2])
    r[:, y_sums[2] == 0] = np.nan
    return r[:, 0] if eng.squeeze else r


# --------------------------------------------------------------------------- implementation


def _add_permuted_sums(eng, fold, best, perms, offset, sums):
    """Add, for each permutation p, the held-out Σp, Σp² and Σyp of ``fold`` to ``sums[:, p]``
    (3, n_permutations, m); ``best`` (m,) indexes each target's alpha in this fold."""
    B, xp = eng.B, eng.B.xp
    smoother = {a: fold.smoother(a, eng.fit_intercept) for a in np.unique(best)}
    train = [B.asarray(p[fold.train]) for p in perms]
    test = [B.asarray(p[fold.test]) for p in perms]
    order = np.argsort(best, kind="stable")  # targets grouped by alpha
    for cols in eng.chunks(scale=4):  # wider: fewer, larger products per permutation
        targets = order[cols]
        groups = _runs(best[targets])
        Yg = B.asarray(eng.Y[:, targets] - offset[targets], eng.dtype)
        local = B.zeros((3, len(perms), len(targets)), np.float64)
        for p in range(len(perms)):
            Ytr, Yte = B.take(Yg, train[p]), B.take(Yg, test[p])
            if len(groups) == 1:
                P = smoother[groups[0][0]] @ Ytr
            else:
                P = xp.concatenate([smoother[a] @ Ytr[:, s] for a, s in groups], axis=1)
            local[0, p] = P.sum(axis=0)
            local[1, p] = xp.einsum("ij,ij->j", P, P)
            local[2, p] = xp.einsum("ij,ij->j", Yte, P)
        sums[:, :, targets] += B.to_numpy(local)


def _splits(folds, n):
    if isinstance(folds, (int, np.integer)):
        from sklearn.model_selection import KFold  # 0.9 s to import: not at `bench list`

        splits = KFold(int(folds)).split(np.arange(n))
    elif hasattr(folds, "split"):
        splits = folds.split(np.arange(n))
    else:
        splits = folds
    splits = [(np.asarray(tr, np.intp), np.asarray(te, np.intp)) for tr, te in splits]
    if not splits or any(len(tr) < 2 or len(te) == 0 for tr, te in splits):
        raise ValueError("every fold needs at least 2 training and 1 test samples")
    return splits


def _runs(values):
    """Maximal runs of equal values in a sorted 1-D array: list of (value, slice)."""
    edges = np.flatnonzero(np.diff(values)) + 1
    starts, stops = np.r_[0, edges], np.r_[edges, len(values)]
    return [(values[a], slice(a, b)) for a, b in zip(starts, stops)]


class _Engine:
    """Validated inputs, the backend, the folds and the target chunks of one call."""

    def __init__(self, X, Y, alphas, folds, alpha_selection, fit_intercept, backend, dtype, target_chunk):
        X, Y = np.asarray(X), np.asarray(Y)
        self.squeeze = Y.ndim == 1
        Y = Y[:, None] if self.squeeze else Y
        if X.ndim != 2 or Y.ndim != 2 or len(X) != len(Y):
            raise ValueError(f"need X (n, d) and Y (n, m) or (n,), got {X.shape} and {Y.shape}")
        self.Y = Y if Y.dtype.kind == "f" else Y.astype(np.float64)
        self.alphas = np.asarray(alphas, np.float64).ravel()
        if self.alphas.size == 0 or not (self.alphas > 0).all():
            raise ValueError("alphas must be positive")
        if alpha_selection not in _SELECTORS:
            raise ValueError(f"alpha_selection must be one of {sorted(_SELECTORS)}, not {alpha_selection!r}")
        self.Selector = _SELECTORS[alpha_selection]
        self.dtype = np.dtype(np.result_type(X.dtype, self.Y.dtype, np.float32) if dtype is None else dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, not {self.dtype}")
        self.fit_intercept = bool(fit_intercept)
        self.B = get_backend(backend)
        self.X = X
        self.splits = _splits(folds, len(X))
        n, m = Y.shape
        # Live blocks per target: Y rows, centred train rows, residuals, Z and its rescaling, test rows.
        per_target = 6 * n * self.dtype.itemsize
        fits = max(1, self.B.free_memory() // (4 * per_target))
        self.chunk = int(target_chunk) if target_chunk else min(m, self.B.chunk, fits)

    def chunks(self, scale=1):
        """Slices of ``scale`` × ``self.chunk`` targets covering all targets."""
        m, width = self.Y.shape[1], self.chunk * scale
        return [slice(j, min(j + width, m)) for j in range(0, m, width)]

    def folds(self):
        """Yield (fold decomposition, alpha selector) for each split, one fold alive at a time."""
        for train, test in self.splits:
            fold = _decompose(self.B, self.X, train, test, self.alphas, self.fit_intercept, self.dtype)
            yield fold, self.Selector(self, fold)

    def load(self, rows, cols):
        """Rows ``rows`` of targets ``cols`` on the backend, centred; returns (block, float64 mean or None)."""
        block = self.Y[rows, cols].astype(np.result_type(self.Y.dtype, self.dtype), copy=False)
        mean = None
        if self.fit_intercept:
            mean = block.mean(axis=0, dtype=np.float64)
            block -= mean.astype(block.dtype)
        return self.B.asarray(block, self.dtype), mean


@dataclass
class _Fold:
    """One split, decomposed: ``basis`` U (n_train, r) is orthonormal, orthogonal to ones when
    fitting an intercept, and diagonalises the centred training Gram matrix: X_c X_cᵀ U = U diag(lam).

    ``complete``: U spans every centred training vector (the Gram path), so a residual is U times
    its coordinates; otherwise (the covariance path, n_train > d) U spans only X_c's columns.
    ``to_test`` (n_test, r) = X_test,c X_cᵀ U maps eigenbasis coefficients to held-out predictions;
    ``inv`` (n_alphas, r) = 1 / (lam + alpha) so that the ridge prediction of Y is
    ``to_test @ (inv[a, :, None] * Uᵀ Y)``.
    """

    train: np.ndarray
    test: np.ndarray
    lam: Any  # (r,) float64
    basis64: Any  # (n_train, r) float64
    basis: Any  # (n_train, r) work dtype
    to_test: Any  # (n_test, r) work dtype
    inv: Any  # (n_alphas, r) work dtype
    complete: bool

    def smoother(self, a, fit_intercept):
        """(n_test, n_train) matrix mapping training targets to held-out predictions for alpha ``a``."""
        M = (self.to_test * self.inv[a]) @ self.basis.T
        return M + 1.0 / len(self.train) if fit_intercept else M


def _decompose(B, X, train, test, alphas, fit_intercept, dtype) -> _Fold:
    """Decompose the split ``train``/``test`` (index arrays) of the numpy array X (n, d), in float64."""
    xp = B.xp
    Xtr, Xte = B.asarray(X[train], np.float64), B.asarray(X[test], np.float64)
    if fit_intercept:
        mu = Xtr.mean(axis=0)
        Xtr, Xte = Xtr - mu, Xte - mu
    n, d = Xtr.shape
    if n <= d:  # Gram path: eigenvectors of X_c X_cᵀ in the complement of the intercept direction
        if fit_intercept:
            reflect = _OnesReflection(B, n)
            Xh = reflect.drop(Xtr)
            lam, V = xp.linalg.eigh(Xh @ Xh.T)
            U = reflect.lift(V)
        else:
            lam, U = xp.linalg.eigh(Xtr @ Xtr.T)
        lam = lam.clip(min=0)
        to_test = (Xte @ Xtr.T) @ U
    else:  # covariance path: U = X_c V / s over the non-null eigenpairs of X_cᵀ X_c
        lam, V = xp.linalg.eigh(Xtr.T @ Xtr)
        keep = lam > lam[-1] * max(n, d) * np.finfo(np.float64).eps
        lam, V = lam[keep], V[:, keep]
        s = xp.sqrt(lam)
        U, to_test = (Xtr @ V) / s, (Xte @ V) * s
    a = B.asarray(alphas, np.float64)[:, None]
    return _Fold(train, test, lam, U, B.asarray(U, dtype), B.asarray(to_test, dtype),
                 B.asarray(1.0 / (lam + a), dtype), complete=n <= d)


class _OnesReflection:
    """Householder reflection H mapping ones/√n to e₁: its columns 2..n, P (n, n-1), are an
    orthonormal basis of the vectors orthogonal to ones (the centred sample space)."""

    def __init__(self, B, n):
        self.u = B.zeros(n, np.float64) + n ** -0.5
        self.u[0] -= 1.0
        self.beta = 2.0 / (self.u @ self.u)

    def drop(self, M):
        """Pᵀ M, shape (n-1, k), for M of shape (n, k)."""
        return M[1:] - (self.beta * self.u[1:, None]) * (self.u @ M)

    def lift(self, V):
        """P V, shape (n, k), for V of shape (n-1, k)."""
        PV = self.u[:, None] * (-self.beta * (self.u[1:] @ V))
        PV[1:] += V
        return PV


class _LOO:
    """Efficient leave-one-out error, the criterion of scikit-learn's ``RidgeCV(alpha_per_target=True)``.

    With the hat matrix H = U diag(f) Uᵀ, f = lam / (lam + alpha), the leave-one-out error of
    training sample i is e_i = (y - H y)_i / den_i, den_i = 1 - H_ii - 1/n_train (the last term
    with an intercept, whose direction U excludes). On the complete (Gram) basis the residual is
    U (g ⊙ Uᵀ y), g = 1 - f = alpha / (lam + alpha), and den = (U ⊙ U) g; the score
    Σ_i e_i² = ‖W U G z‖² (W = diag(1/den), G = diag(g), z = Uᵀ y) then equals ‖Lᵀ G z‖² with
    L Lᵀ = Uᵀ W² U (a Cholesky factor): a triangular product, about half the flops of U G z.
    That path is taken when there are enough targets to pay for the factorisations and W is
    well conditioned (max/min ≤ ``_TRI_MAX_SPREAD``); otherwise the residual is formed.
    """

    def __init__(self, eng, fold):
        B, xp = eng.B, eng.B.xp
        a = B.asarray(eng.alphas, np.float64)[:, None]
        g = a / (fold.lam + a)  # (n_alphas, r)
        U2 = fold.basis64 * fold.basis64
        if fold.complete:
            den = U2 @ g.T
        else:
            den = 1.0 - U2 @ (1.0 - g).T - (1.0 / len(fold.train) if eng.fit_intercept else 0.0)
        self.B, self.xp, self.fold, self.dtype = B, xp, fold, eng.dtype
        self.shrink = B.asarray(g if fold.complete else 1.0 - g, eng.dtype)
        self.w2 = B.asarray((den ** -2.0).T, eng.dtype)  # (n_alphas, n_train)
        r = fold.lam.shape[0]
        triangular = fold.complete and eng.Y.shape[1] >= 4 * r
        den_host = B.to_numpy(den)
        spread = den_host.max(axis=0) / den_host.min(axis=0)
        self.factors = [None] * len(eng.alphas)
        for k in range(len(eng.alphas)):
            if triangular and spread[k] <= _TRI_MAX_SPREAD:
                Uw = fold.basis64 / den[:, k:k + 1]
                self.factors[k] = B.asarray(xp.linalg.cholesky(Uw.T @ Uw).T, eng.dtype)
        self.blocks = [(i, min(i + _TRI_BLOCK, r)) for i in range(0, r, _TRI_BLOCK)]
        self.per_sample = 1.0 / len(fold.train)

    def select(self, Ytr, Z):
        """Best alpha index per target, shape (c,), from Ytr (n_train, c) centred and Z = Uᵀ Ytr (r, c)."""
        return self.xp.argmin(self.scores(Ytr, Z), axis=0)

    def scores(self, Ytr, Z):
        """Σ_i e_i² per alpha and target, shape (n_alphas, c) (``per_sample`` scales it to a mean)."""
        xp, fold = self.xp, self.fold
        scores = self.B.empty((len(self.shrink), Z.shape[1]), self.dtype)
        T = xp.empty_like(Z)
        R = None
        for k, Lt in enumerate(self.factors):
            xp.multiply(Z, self.shrink[k][:, None], out=T)
            if Lt is not None:  # ‖Lᵀ G z‖², block row by block row of the upper-triangular Lᵀ
                scores[k] = 0
                for i, j in self.blocks:
                    E = Lt[i:j, i:] @ T[i:]
                    scores[k] += xp.einsum("ij,ij->j", E, E)
                continue
            R = xp.empty_like(Ytr) if R is None else R
            xp.matmul(fold.basis, T, out=R)  # complete: the residual; else H y
            if not fold.complete:
                R -= Ytr  # minus the residual: squared below
            xp.square(R, out=R)
            scores[k] = self.w2[k] @ R
        return scores


class _GCV:
    """Generalised cross-validation: ‖y - H y‖² / (1 - df / n_train)², df = Σ f + intercept.

    ‖y - H y‖² = Σ_k g_k² z_k² (+ ‖y‖² - ‖z‖² off the covariance basis): one small product."""

    def __init__(self, eng, fold):
        B = eng.B
        a = B.asarray(eng.alphas, np.float64)[:, None]
        g = a / (fold.lam + a)
        n = len(fold.train)
        df = (1.0 - g).sum(axis=1) + eng.fit_intercept
        self.xp, self.complete = B.xp, fold.complete
        self.g2 = B.asarray(g * g, eng.dtype)
        # df → n (interpolation) makes the criterion infinite: cap it to stay finite
        self.scale = B.asarray(((1.0 - df / n).clip(min=1e-12) ** -2)[:, None], eng.dtype)
        self.per_sample = 1.0 / n

    def select(self, Ytr, Z):
        return self.xp.argmin(self.scores(Ytr, Z), axis=0)

    def scores(self, Ytr, Z):
        """RSS / (1 - df/n)² per alpha and target, shape (n_alphas, c)."""
        Z2 = Z * Z
        rss = self.g2 @ Z2
        if not self.complete:
            rss += (Ytr * Ytr).sum(axis=0) - Z2.sum(axis=0)
        return rss * self.scale


class _KFold:
    """Inner contiguous K-fold on the training fold (himalaya's ``RidgeCV``): mean over the inner
    splits of the validation mean squared error, each inner split decomposed once."""

    def __init__(self, eng, fold):
        B = eng.B
        self.B, self.xp, self.fit_intercept = B, B.xp, eng.fit_intercept
        Xtr = eng.X[fold.train]
        from sklearn.model_selection import KFold

        splits = KFold(min(INNER_FOLDS, len(fold.train) // 2)).split(np.arange(len(fold.train)))
        self.inner = [_decompose(B, Xtr, tr, va, eng.alphas, eng.fit_intercept, eng.dtype) for tr, va in splits]
        self.index = [(B.asarray(f.train), B.asarray(f.test)) for f in self.inner]
        self.per_sample = 1.0 / len(self.inner)

    def select(self, Ytr, Z):
        return self.xp.argmin(self.scores(Ytr, Z), axis=0)

    def scores(self, Ytr, Z):
        """Σ over inner splits of the validation MSE, per alpha and target, shape (n_alphas, c)."""
        B, xp = self.B, self.xp
        scores = 0
        for f, (tr, va) in zip(self.inner, self.index):
            Y2, Yva = B.take(Ytr, tr), B.take(Ytr, va)
            if self.fit_intercept:
                mean = Y2.mean(axis=0)
                Y2, Yva = Y2 - mean, Yva - mean
            Z2 = f.basis.T @ Y2
            err = xp.stack([((f.to_test @ (Z2 * inv[:, None]) - Yva) ** 2).mean(axis=0) for inv in f.inv])
            scores = scores + err
        return scores


_SELECTORS = {"loo": _LOO, "gcv": _GCV, "kfold": _KFold}
