"""Cross-validated ridge regression: activations X → responses Y, out-of-fold predictions.

Reference implementation on scikit-learn (to be replaced by the fast exact engine
behind the same API).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import KFold

DEFAULT_ALPHAS = tuple(np.logspace(-1, 6, 10))


@dataclass
class CVResult:
    """``predictions`` (n, m): out-of-fold predictions; ``alphas`` (n_folds, m): alpha per target per fold."""

    predictions: np.ndarray
    alphas: np.ndarray


def _splits(folds, n):
    if isinstance(folds, int):
        return list(KFold(folds).split(np.arange(n)))
    if hasattr(folds, "split"):
        return list(folds.split(np.arange(n)))
    return [(np.asarray(tr), np.asarray(te)) for tr, te in folds]


def cv_predict(X, Y, *, alphas=DEFAULT_ALPHAS, folds=5, alpha_selection="loo", fit_intercept=True,
               backend="auto", dtype=None, target_chunk=None) -> CVResult:
    """Out-of-fold ridge predictions of Y (n, m) from X (n, d), alpha chosen per target."""
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    splits = _splits(folds, len(X))
    pred = np.empty_like(Y)
    chosen = np.empty((len(splits), Y.shape[1]))
    for f, (tr, te) in enumerate(splits):
        model = RidgeCV(alphas=alphas, alpha_per_target=True, fit_intercept=fit_intercept).fit(X[tr], Y[tr])
        pred[te] = model.predict(X[te]).reshape(len(te), -1)
        chosen[f] = model.alpha_
    return CVResult(pred, chosen)
