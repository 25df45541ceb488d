"""Workloads, memory sampling and the closing report of the ridge-engine benchmarks.

(No conftest.py here: a second ``conftest`` module would shadow ``tests/conftest.py`` for the
tests that import from it when both directories run in one pytest call.)
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import numpy as np

ALPHAS = np.logspace(-1, 6, 10)
N_FOLDS = 5
#: rows of the leave-one-out path's triangular blocks (brainbench.core.compute.ridge._TRI_BLOCK)
TRI_BLOCK = 128


@dataclass(frozen=True)
class Sizes:
    """W1 (NSD-sized) and W2 (MEG-sized) as (n_samples, n_features, n_targets)."""

    quick: bool
    w1: tuple
    w2: tuple
    w2_selection: str
    matmul: int


def sizes(benchmarks_disabled: bool) -> Sizes:
    """Full workloads, or quick ones (fewer targets) for a pass well under a minute.

    ``BRAINBENCH_BENCH_QUICK=1`` (or ``0``) decides; unset, quick exactly when timing is disabled
    (``--benchmark-disable``). W2 runs the default leave-one-out in full mode, GCV (the same
    memory structure, 10× faster) in quick mode.
    """
    env = os.environ.get("BRAINBENCH_BENCH_QUICK", "")
    quick = env not in ("", "0") if env else benchmarks_disabled
    if quick:
        return Sizes(True, (500, 512, 1000), (1800, 768, 271 * 60), "gcv", 2048)
    return Sizes(False, (1000, 1024, 15000), (1800, 768, 271 * 281), "loo", 4096)


def planted(n, d, m, seed=0):
    """float32 X (n, d) and Y = X W · snr + noise (n, m), per-target signal-to-noise from 0.01 to 3."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32)
    Y = X @ (rng.standard_normal((d, m), dtype=np.float32) / np.float32(np.sqrt(d)))
    Y *= np.geomspace(0.01, 3, m).astype(np.float32)
    Y += rng.standard_normal((n, m), dtype=np.float32)
    return X, Y


def loo_flops(n, d, m):
    """(nominal, executed) flops of the leave-one-out path with N_FOLDS contiguous folds.

    Nominal: (alphas + 1) products of (n_train, n_train) by (n_train, m) per fold (the issue's
    count). Executed: Z = Uᵀ Y, the held-out prediction, and per alpha either the triangular
    block products (Gram path with many targets) or the full (n_train, r) by (r, m) product.
    """
    n_test = n // N_FOLDS
    n_train = n - n_test
    nominal = N_FOLDS * (len(ALPHAS) + 1) * 2 * n_train**2 * m
    r = n_train - 1 if n_train <= d else d
    if n_train <= d and m >= 4 * r:
        per_alpha = sum(min(TRI_BLOCK, r - i) * (r - i) for i in range(0, r, TRI_BLOCK))
    else:
        per_alpha = n_train * r
    executed = N_FOLDS * 2 * m * (r * n_train + n_test * r + len(ALPHAS) * per_alpha)
    return float(nominal), float(executed)


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_increase(fn):
    """Run ``fn()``; returns (its result, the peak resident-memory increase over the call in bytes),
    sampling /proc/self/statm every 2 ms from a thread."""
    base, peak, done = rss_bytes(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        out = fn()
    finally:
        done.set()
        thread.join()
    return out, max(peak[0], rss_bytes()) - base


def report(records: dict, size: Sizes) -> list[str]:
    """Lines of the closing report: times, the ratios of this run, GFLOP/s, memory."""
    lines = [f"ridge engine benchmarks ({'quick' if size.quick else 'full'} mode, one BLAS thread); "
             "load average (1, 5, 15 min): %.2f %.2f %.2f" % os.getloadavg()]
    for name, rec in records.items():
        extra = "  ".join(f"{k}={v:.3g}" for k, v in rec.items() if k != "seconds" and "flops" not in k)
        lines.append(f"{name:<28} {rec['seconds']:9.3f} s  {extra}")
    if size.quick:
        return lines + ["quick mode: small workloads dominated by fixed costs; the targets apply to the full W1"]
    sk, hi, mm = (records.get(k) for k in ("W1 sklearn RidgeCV", "W1 himalaya RidgeCV", "matmul reference"))
    for name, (vs_sk, vs_hi) in {"W1 ours loo": (4, 2.5), "W1 ours gcv": (20, 10)}.items():
        ours = records.get(name)
        for clock in ("seconds", "cpu_seconds") if ours else ():
            parts = []
            for ref, label, target in ((sk, "sklearn", vs_sk), (hi, "himalaya", vs_hi)):
                if ref:
                    ratio = ref[clock] / ours[clock]
                    verdict = "met" if ratio >= target else "MISSED"
                    parts.append(f"{ratio:.1f}x faster than {label} (target {target}x: {verdict})")
            lines.append(f"{name} ({'wall' if clock == 'seconds' else 'CPU'} time): " + "; ".join(parts))
    loo = records.get("W1 ours loo")
    for clock in ("seconds", "cpu_seconds") if loo and mm else ():
        rate, ref = loo["flops"] / loo[clock] / 1e9, mm["flops"] / mm[clock] / 1e9
        lines.append(
            f"W1 ours loo ({'wall' if clock == 'seconds' else 'CPU'} time): {rate:.1f} nominal GFLOP/s "
            f"((alphas+1) n_train² m folds · 2 flop) = {rate / ref:.0%} of the {size.matmul}² float32 "
            f"matmul's {ref:.1f} GFLOP/s (target 70%: {'met' if rate >= 0.7 * ref else 'MISSED'}); "
            f"executed {loo['executed_flops'] / loo[clock] / 1e9:.1f} GFLOP/s")
    return lines
