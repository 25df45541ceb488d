"""Small statistics shared by the metrics."""
from __future__ import annotations

import warnings

import numpy as np

#: columns per float64 block in :func:`pearson` (bounds its temporary memory)
_PEARSON_BLOCK = 4096


def pearson(Y_true: np.ndarray, Y_pred: np.ndarray) -> np.ndarray:
    """Pearson r per column, in float64, NaN-safe.

    Parameters
    ----------
    Y_true, Y_pred : arrays of shape (n_samples, n_targets) or (n_samples,)

    Returns
    -------
    r : array of shape (n_targets,) ((1,) for 1-D inputs), in [-1, 1];
        NaN where either column is constant (or has a NaN).
    """
    a, b = np.asarray(Y_true), np.asarray(Y_pred)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    n, m = a.shape
    r = np.empty(m)
    for j in range(0, m, _PEARSON_BLOCK):
        cols = slice(j, j + _PEARSON_BLOCK)
        x = np.asarray(a[:, cols], np.float64)
        y = np.asarray(b[:, cols], np.float64)
        constant = (np.ptp(x, axis=0) == 0) | (np.ptp(y, axis=0) == 0)
        x = x - x.mean(axis=0)
        y = y - y.mean(axis=0)
        r[cols] = pearson_from_sums(n, x.sum(0), y.sum(0), (x * x).sum(0), (y * y).sum(0), (x * y).sum(0))
        r[cols][constant] = np.nan
    return r


def pearson_from_sums(n, sx, sy, sxx, syy, sxy) -> np.ndarray:
    """Pearson r from the per-column sums Σx, Σy, Σx², Σy², Σxy over ``n`` samples (arrays broadcast).

    NaN where a variance is not positive; clipped to [-1, 1]. Accurate when x and y are roughly
    centred (as the callers ensure), since the variances are differences of sums.
    """
    sx, sy = np.asarray(sx, np.float64), np.asarray(sy, np.float64)
    vx = np.asarray(sxx, np.float64) - sx * sx / n
    vy = np.asarray(syy, np.float64) - sy * sy / n
    cov = np.asarray(sxy, np.float64) - sx * sy / n
    with np.errstate(invalid="ignore", divide="ignore"):
        r = cov / np.sqrt(vx * vy)
    r = np.where((vx > 0) & (vy > 0), r, np.nan)
    return np.clip(r, -1.0, 1.0)


def sem(values, axis=None):
    """Standard error of the mean, ignoring NaN (and infinite) values.

    Parameters
    ----------
    values : array-like
    axis : int or None
        None: over all values, returning a float; else along ``axis``, returning an array.

    Returns
    -------
    float or array: NaN where fewer than two finite values.
    """
    v = np.asarray(values, dtype=np.float64)
    v = np.where(np.isfinite(v), v, np.nan)
    n = np.sum(~np.isnan(v), axis=axis)
    with warnings.catch_warnings():  # all-NaN or single-value slices: NaN, handled below
        warnings.simplefilter("ignore", RuntimeWarning)
        sd = np.nanstd(v, ddof=1, axis=axis)
    out = np.where(n >= 2, sd / np.sqrt(np.maximum(n, 1)), np.nan)
    return float(out) if axis is None else out
