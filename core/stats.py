"""Small statistics shared by the metrics."""
from __future__ import annotations

import numpy as np


def pearson(Y_true: np.ndarray, Y_pred: np.ndarray) -> np.ndarray:
    """Pearson r per column.

    Parameters
    ----------
    Y_true, Y_pred : arrays of shape (n_samples, n_targets) (or (n_samples,))

    Returns
    -------
    r : array of shape (n_targets,); NaN where either column is constant.
    """
    a = np.asarray(Y_true, dtype=np.float64)
    b = np.asarray(Y_pred, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    num = np.einsum("ij,ij->j", a, b)
    den = np.sqrt(np.einsum("ij,ij->j", a, a) * np.einsum("ij,ij->j", b, b))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    r[~(den > 0)] = np.nan
    return np.clip(r, -1.0, 1.0)


def sem(values, axis=None) -> float:
    """Standard error of the mean, ignoring NaN; NaN when fewer than two values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)] if axis is None else v
    n = v.size if axis is None else v.shape[axis]
    if n < 2:
        return float("nan")
    return float(np.nanstd(v, ddof=1, axis=axis) / np.sqrt(n))
