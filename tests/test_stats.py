"""pearson (per column, NaN-safe) and sem."""
from __future__ import annotations

import numpy as np
import pytest

from brainbench.core.compute.stats import pearson, pearson_from_sums, sem


def test_pearson_matches_corrcoef_per_column():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((50, 7))
    b = a * rng.uniform(-1, 1, 7) + rng.standard_normal((50, 7))
    expected = [np.corrcoef(a[:, j], b[:, j])[0, 1] for j in range(7)]
    np.testing.assert_allclose(pearson(a, b), expected, rtol=1e-12)
    np.testing.assert_allclose(pearson(a[:, 0], b[:, 0]), [expected[0]], rtol=1e-12)  # 1-D: shape (1,)


def test_pearson_is_accurate_for_float32_with_a_large_offset_and_many_columns():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((300, 5000))
    b = a + rng.standard_normal((300, 5000))
    r = pearson((a + 1e4).astype(np.float32), (b - 1e4).astype(np.float32))  # spans several column blocks
    np.testing.assert_allclose(r, pearson(a, b), atol=2e-3)
    assert r.dtype == np.float64 and r.shape == (5000,)


def test_pearson_gives_nan_for_constant_or_nan_columns_without_warnings():
    a = np.array([[1.0, 2.0, 3.0], [2.0, 2.0, np.nan], [3.0, 2.0, 1.0]])
    b = np.array([[1.0, 5.0, 1.0], [2.0, 4.0, 2.0], [2.0, 3.0, 3.0]])
    with np.errstate(all="raise"):
        r = pearson(a, b)
    assert r[0] == pytest.approx(np.corrcoef(a[:, 0], b[:, 0])[0, 1])
    assert np.isnan(r[1]) and np.isnan(r[2])
    assert np.isnan(pearson(b, np.full_like(b, 0.1))).all()  # constant predictions
    c = np.full(4, 0.1 + 0.2)  # a constant column whose mean is inexact in binary
    assert np.isnan(pearson(c, np.arange(4.0))).all()


def test_pearson_clips_and_rejects_mismatched_shapes():
    x = np.arange(10.0)
    assert pearson(x, 3 * x + 1)[0] == 1.0 and pearson(x, -x)[0] == -1.0
    with pytest.raises(ValueError, match="shapes differ"):
        pearson(np.zeros((3, 2)), np.zeros((3, 3)))


def test_pearson_from_sums_matches_pearson():
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((40, 3)), rng.standard_normal((40, 3))
    r = pearson_from_sums(40, x.sum(0), y.sum(0), (x * x).sum(0), (y * y).sum(0), (x * y).sum(0))
    np.testing.assert_allclose(r, pearson(x, y), rtol=1e-10)
    assert np.isnan(pearson_from_sums(3, 3.0, 1.0, 3.0, 1.0, 1.0))  # zero variance


def test_sem():
    assert sem([1.0, 2.0, 3.0, 4.0]) == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert sem([1.0, np.nan, 3.0, np.inf]) == pytest.approx(np.std([1, 3], ddof=1) / np.sqrt(2))
    assert np.isnan(sem([1.0])) and np.isnan(sem([])) and np.isnan(sem([np.nan, 2.0]))
    assert isinstance(sem([1, 2]), float)
    v = np.array([[1.0, 5.0], [3.0, np.nan], [5.0, np.nan]])
    out = sem(v, axis=0)
    assert out[0] == pytest.approx(2 / np.sqrt(3)) and np.isnan(out[1])
