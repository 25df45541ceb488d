"""The fast cross-validated ridge engine against scikit-learn and brute-force references."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import KFold, ShuffleSplit
from threadpoolctl import threadpool_limits

from brainbench.core.compute.ridge import DEFAULT_ALPHAS, CVResult, cv_permutation_null, cv_predict
from brainbench.core.compute.stats import pearson

ALPHAS = np.logspace(-1, 6, 10)


@pytest.fixture(autouse=True)
def one_blas_thread():
    """Small products on a shared 2-core machine: threaded BLAS only contends (10-30x slower)."""
    with threadpool_limits(1):
        yield


def make_data(n, d, m, *, seed=0, rank=None, offset=5.0, dtype=np.float64):
    """X (n, d) and Y (n, m) = X W (per-target signal strength from 0 to 1) + noise + offset."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    if rank is not None:
        X = rng.standard_normal((n, rank)) @ rng.standard_normal((rank, d))
    W = rng.standard_normal((d, m)) / np.sqrt(d) * np.linspace(0, 1, m)
    Y = X @ W + rng.standard_normal((n, m)) + offset
    return X.astype(dtype), Y.astype(dtype)


def sklearn_cv(X, Y, alphas, folds, fit_intercept=True):
    """RidgeCV(alpha_per_target=True) fitted on each training fold: (predictions, alphas)."""
    P = np.full(Y.shape, np.nan)
    chosen = []
    for tr, te in folds:
        model = RidgeCV(alphas=alphas, alpha_per_target=True, fit_intercept=fit_intercept).fit(X[tr], Y[tr])
        P[te] = model.predict(X[te]).reshape(len(te), -1)
        chosen.append(np.broadcast_to(model.alpha_, (Y.shape[1],)))
    return P, np.array(chosen)


def assert_matches_sklearn(X, Y, folds=5, fit_intercept=True, tie_columns=(), **kwargs):
    splits = list(KFold(folds).split(X)) if isinstance(folds, int) else list(folds)
    P_ref, A_ref = sklearn_cv(X, Y, ALPHAS, splits, fit_intercept)
    res = cv_predict(X, Y, alphas=ALPHAS, folds=splits, fit_intercept=fit_intercept, backend="numpy", **kwargs)
    assert isinstance(res, CVResult)
    assert res.predictions.shape == Y.shape and res.alphas.shape == (len(splits), Y.shape[1])
    scale = np.nanmax(np.abs(P_ref))
    np.testing.assert_allclose(res.predictions, P_ref, rtol=1e-6, atol=1e-6 * scale)
    np.testing.assert_allclose(pearson(Y, res.predictions), pearson(Y, P_ref), rtol=1e-6, atol=1e-9)
    keep = np.setdiff1d(np.arange(Y.shape[1]), tie_columns)
    np.testing.assert_array_equal(res.alphas[:, keep], A_ref[:, keep])
    return res


@pytest.mark.parametrize(
    "n, d, m",
    [
        (60, 100, 6),  # n < d: Gram path
        (120, 30, 7),  # n > d: covariance path
        (80, 40, 1),  # a single target
        (60, 100, 400),  # many targets: the triangular (Cholesky) leave-one-out path
        (150, 20, 300),  # many targets on the covariance path
    ],
)
def test_loo_matches_sklearn(n, d, m):
    X, Y = make_data(n, d, m)
    assert_matches_sklearn(X, Y)


@pytest.mark.parametrize("n, d, m", [(60, 100, 8), (100, 50, 8), (60, 100, 300)])
def test_loo_matches_sklearn_rank_deficient(n, d, m):
    X, Y = make_data(n, d, m, rank=12)
    assert_matches_sklearn(X, Y)


def test_loo_matches_sklearn_with_an_outlier_sample():
    """A sample of huge norm spreads the leave-one-out weights: the triangular path then gives
    way to the direct one for the small alphas (both paths in one fit)."""
    X, Y = make_data(60, 100, 300)
    X[30] *= 1e3
    assert_matches_sklearn(X, Y)


def test_loo_matches_sklearn_constant_feature_and_target():
    X, Y = make_data(70, 30, 5)
    X[:, 3] = 2.5
    Y[:, 1] = 3.0
    res = assert_matches_sklearn(X, Y, tie_columns=[1])  # a constant target ties every alpha
    np.testing.assert_allclose(res.predictions[:, 1], 3.0)
    assert np.isnan(pearson(Y, res.predictions)[1])


def test_loo_matches_sklearn_without_intercept_and_custom_folds():
    X, Y = make_data(90, 40, 6, offset=0.0)
    assert_matches_sklearn(X, Y, fit_intercept=False)
    splits = list(ShuffleSplit(4, test_size=0.25, random_state=0).split(X))
    assert_matches_sklearn(X, Y, folds=splits)
    X, Y = make_data(50, 80, 4, offset=0.0)
    assert_matches_sklearn(X, Y, folds=3, fit_intercept=False)


def test_chunks_and_torch_backend_give_the_same_result():
    X, Y = make_data(60, 100, 300)
    ref = cv_predict(X, Y, alphas=ALPHAS, backend="numpy")
    for kwargs in ({"target_chunk": 7}, {"backend": "torch"}, {"backend": "torch", "alpha_selection": "loo"}):
        res = cv_predict(X, Y, alphas=ALPHAS, **{"backend": "numpy", **kwargs})
        np.testing.assert_allclose(res.predictions, ref.predictions, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(res.alphas, ref.alphas)
    for selection in ("gcv", "kfold"):
        a = cv_predict(X, Y[:, :20], alphas=ALPHAS, alpha_selection=selection, backend="numpy")
        b = cv_predict(X, Y[:, :20], alphas=ALPHAS, alpha_selection=selection, backend="torch", target_chunk=6)
        np.testing.assert_allclose(b.predictions, a.predictions, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(b.alphas, a.alphas)


def test_float32_agrees_with_float64_despite_a_large_offset():
    X, Y = make_data(200, 64, 50, offset=1000.0)
    r64 = pearson(Y, cv_predict(X, Y, alphas=ALPHAS, backend="numpy").predictions)
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    for backend in ("numpy", "torch"):
        res = cv_predict(X32, Y32, alphas=ALPHAS, backend=backend)
        assert res.predictions.dtype == np.float32
        np.testing.assert_allclose(pearson(Y32, res.predictions), r64, atol=1e-4)
    res = cv_predict(X, Y, alphas=ALPHAS, dtype=np.float32, backend="numpy")  # float64 in, float32 products
    np.testing.assert_allclose(pearson(Y, res.predictions), r64, atol=1e-4)


def brute_force_cv(X, Y, alphas, selection, n_folds=5):
    """Reference GCV (explicit hat matrix) or inner 5-fold (sklearn Ridge per alpha), refit per target."""
    P = np.empty_like(Y)
    chosen = []
    for tr, te in KFold(n_folds).split(X):
        Xtr, Ytr = X[tr], Y[tr]
        scores = []
        for alpha in alphas:
            if selection == "gcv":
                Xc, Yc = Xtr - Xtr.mean(0), Ytr - Ytr.mean(0)
                H = Xc @ np.linalg.solve(Xc.T @ Xc + alpha * np.eye(X.shape[1]), Xc.T)
                scores.append(((Yc - H @ Yc) ** 2).sum(0) / (1 - (np.trace(H) + 1) / len(tr)) ** 2)
            else:
                mse = [((Ridge(alpha=alpha).fit(Xtr[a], Ytr[a]).predict(Xtr[b]) - Ytr[b]) ** 2).mean(0)
                       for a, b in KFold(5).split(Xtr)]
                scores.append(np.mean(mse, axis=0))
        best = alphas[np.argmin(scores, axis=0)]
        chosen.append(best)
        for j, alpha in enumerate(best):
            P[te, j] = Ridge(alpha=alpha).fit(Xtr, Ytr[:, j]).predict(X[te])
    return P, np.array(chosen)


@pytest.mark.parametrize("selection", ["gcv", "kfold"])
@pytest.mark.parametrize("n, d", [(60, 100), (120, 30)])
def test_gcv_and_inner_kfold_match_brute_force(selection, n, d):
    X, Y = make_data(n, d, 6, seed=1)
    P_ref, A_ref = brute_force_cv(X, Y, ALPHAS, selection)
    res = cv_predict(X, Y, alphas=ALPHAS, alpha_selection=selection, backend="numpy")
    np.testing.assert_array_equal(res.alphas, A_ref)
    np.testing.assert_allclose(res.predictions, P_ref, rtol=1e-6, atol=1e-6 * np.abs(P_ref).max())


def test_gcv_mostly_agrees_with_loo_and_kfold_with_himalaya():
    X, Y = make_data(300, 64, 200, seed=2)
    loo = cv_predict(X, Y, alphas=ALPHAS, alpha_selection="loo", backend="numpy")
    gcv = cv_predict(X, Y, alphas=ALPHAS, alpha_selection="gcv", backend="numpy")
    assert (loo.alphas == gcv.alphas).mean() > 0.8
    assert np.abs(pearson(Y, gcv.predictions) - pearson(Y, loo.predictions)).mean() < 0.01
    himalaya = pytest.importorskip("himalaya.ridge")
    kfold = cv_predict(X, Y, alphas=ALPHAS, alpha_selection="kfold", backend="numpy")
    for f, (tr, te) in enumerate(KFold(5).split(X)):
        model = himalaya.RidgeCV(alphas=ALPHAS, fit_intercept=True, cv=5).fit(X[tr], Y[tr])
        np.testing.assert_allclose(kfold.alphas[f], model.best_alphas_, rtol=1e-6)
        np.testing.assert_allclose(kfold.predictions[te], model.predict(X[te]), rtol=1e-5, atol=1e-6)


def test_planted_signal_is_recovered():
    rng = np.random.default_rng(3)
    n, d, m = 400, 50, 40
    X = rng.standard_normal((n, d)).astype(np.float32)
    W = rng.standard_normal((d, m)) / np.sqrt(d)
    signal = np.r_[np.ones(m // 2), np.zeros(m // 2)]  # half the targets carry signal
    Y = (X @ W * signal * 2 + rng.standard_normal((n, m))).astype(np.float32)
    r = pearson(Y, cv_predict(X, Y, alphas=ALPHAS).predictions)
    ceiling = 2 / np.sqrt(5)  # corr(signal, signal + noise) with var(signal) = 4, var(noise) = 1
    assert np.all((r[: m // 2] > ceiling - 0.1) & (r[: m // 2] < ceiling + 0.03))
    assert np.all(np.abs(r[m // 2:]) < 0.25)


def test_one_dimensional_target_and_default_alphas():
    X, Y = make_data(50, 20, 1)
    res = cv_predict(X, Y[:, 0], alphas=DEFAULT_ALPHAS, backend="numpy")
    ref = cv_predict(X, Y, alphas=DEFAULT_ALPHAS, backend="numpy")
    assert res.predictions.shape == (50,) and res.alphas.shape == (5,)
    np.testing.assert_allclose(res.predictions, ref.predictions[:, 0])


def test_memory_stays_bounded_with_many_targets():
    X, Y = make_data(200, 16, 6000, dtype=np.float32)  # 12 chunks of targets
    cv_predict(X[:, :4], Y[:, :10], alphas=ALPHAS, backend="numpy")  # warm up imports and caches
    tracemalloc.start()
    res = cv_predict(X, Y, alphas=ALPHAS, backend="numpy")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= 2 * (X.nbytes + Y.nbytes), peak / (X.nbytes + Y.nbytes)
    assert np.isfinite(res.predictions).all()


def ridge_predictions(X, Y, alphas, fit_intercept=True):
    """Out-of-fold predictions with fixed alphas (n_folds, m), by scikit-learn's Ridge."""
    P = np.empty_like(Y)
    for f, (tr, te) in enumerate(KFold(5).split(X)):
        for j in range(Y.shape[1]):
            P[te, j] = Ridge(alpha=alphas[f, j], fit_intercept=fit_intercept).fit(X[tr], Y[tr, j]).predict(X[te])
    return P


@pytest.mark.parametrize(
    "n, d, backend, fit_intercept",
    [(60, 100, "numpy", True), (120, 30, "numpy", True), (60, 100, "torch", True), (120, 30, "numpy", False)],
)
def test_permutation_null_matches_refits_on_permuted_rows(n, d, backend, fit_intercept):
    X, Y = make_data(n, d, 5, seed=4)
    Y[:, 2] = 1.0  # a constant target: NaN
    kwargs = dict(alphas=ALPHAS, fit_intercept=fit_intercept)
    alphas = cv_predict(X, Y, backend="numpy", **kwargs).alphas
    null = cv_permutation_null(X, Y, n_permutations=3, seed=7, backend=backend, **kwargs)
    assert null.shape == (3, 5)
    rng = np.random.default_rng(7)
    for p in range(3):
        Yp = Y[rng.permutation(n)]
        expected = pearson(Yp, ridge_predictions(X, Yp, alphas, fit_intercept))
        np.testing.assert_allclose(null[p], expected, atol=1e-9)
    assert np.isnan(null[:, 2]).all()


def test_permutation_null_matches_pure_noise_targets_and_rejects_a_planted_signal():
    rng = np.random.default_rng(5)
    n, d, m = 200, 20, 60
    X = rng.standard_normal((n, d)).astype(np.float32)
    Y = rng.standard_normal((n, m)).astype(np.float32)
    Y[:, 0] += X @ rng.standard_normal(d).astype(np.float32) * 0.3
    null = cv_permutation_null(X, Y, alphas=ALPHAS, n_permutations=100, seed=0)
    assert null.shape == (100, m) and null.dtype == np.float64
    observed = pearson(Y, cv_predict(X, Y, alphas=ALPHAS).predictions)
    # Out-of-fold r is biased below 0 without signal; the null reproduces the noise targets' r.
    assert abs(null.mean() - observed[1:].mean()) < 0.03
    assert abs(null.std() - observed[1:].std()) < 0.03
    p_value = (1 + (null >= observed).sum(axis=0)) / (1 + len(null))
    assert p_value[0] < 0.02
    assert cv_permutation_null(X, Y[:, 0], alphas=ALPHAS, n_permutations=4).shape == (4,)


def test_invalid_arguments_raise():
    X, Y = make_data(30, 5, 2)
    with pytest.raises(ValueError, match="alpha_selection"):
        cv_predict(X, Y, alphas=ALPHAS, alpha_selection="bogus")
    with pytest.raises(ValueError, match="positive"):
        cv_predict(X, Y, alphas=[0.0, 1.0])
    with pytest.raises(ValueError, match="need X"):
        cv_predict(X, Y[:-1], alphas=ALPHAS)
    with pytest.raises(ValueError, match="backend"):
        cv_predict(X, Y, alphas=ALPHAS, backend="jax")
    with pytest.raises(ValueError, match="dtype"):
        cv_predict(X, Y, alphas=ALPHAS, dtype=np.float16)
    with pytest.raises(ValueError, match="partition"):
        cv_permutation_null(X, Y, alphas=ALPHAS, folds=ShuffleSplit(3, test_size=0.2, random_state=0))
