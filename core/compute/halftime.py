"""Half-time of a training curve: the step at which a score first reaches half its final value.

Given scores s₀ … s_K at training steps t₀ < … < t_K (t₀ = 0 for ``init``):

- **threshold**: ``baseline="zero"`` (the paper's definition): T = f · s_K, with f = ``fraction``
  (0.5), defined only when s_K > 0. ``baseline="init"``: T = s₀ + f · (s_K − s₀), the point
  half-way from the first checkpoint's score to the last one's, in the direction of change
  (so a score that *falls* during training has a half-time too).
- **axis**: scores are interpolated against x = log₁₀(1 + t) (``axis="log"``, default: the
  checkpoints of a training run are usually log-spaced, and init's step 0 stays finite) or
  against t itself (``axis="linear"``).
- **interpolation**: ``"monotone"`` (default) is the piecewise-cubic Hermite interpolant of
  Fritsch & Carlson (``scipy.interpolate.PchipInterpolator``), monotone between consecutive
  checkpoints, so it never overshoots the data and the first crossing lies between the last
  checkpoint below T and the first one at or above it; ``"linear"`` joins checkpoints by
  straight lines (in the chosen axis); ``"sigmoid"`` fits a four-parameter logistic in x,
  s(x) = lo + (hi − lo) / (1 + exp(−(x − x₀) / w)) (``scipy.optimize.curve_fit``, at least 4
  checkpoints), and takes T from the fitted curve (its value at the last step, or at the first
  for ``baseline="init"``).
- **half-time**: the first x at which the curve reaches T, mapped back to a step (10ˣ − 1 on
  the log axis); 0 % when the first checkpoint is already at T. Also given as a percentage of
  the last checkpoint's step ("% of training").

Undefined cases give NaN with a one-sentence ``reason`` (final score not above 0, no change,
fewer than two checkpoints, a failed fit).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from ..errors import BrainbenchError

AXES = ("log", "linear")
INTERPOLATIONS = ("monotone", "linear", "sigmoid")
BASELINES = ("zero", "init")


@dataclass
class HalfTime:
    """A half-time: the step (NaN when undefined), its % of the last step, the threshold and the final score."""

    step: float
    percent: float
    threshold: float
    final: float
    reason: str | None = None

    def to_json(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}


def to_axis(steps, axis: str = "log") -> np.ndarray:
    """Steps on the interpolation axis: log₁₀(1 + step), or the step itself."""
    steps = np.asarray(steps, dtype=np.float64)
    return np.log10(1.0 + steps) if axis == "log" else steps


def from_axis(x, axis: str = "log"):
    """The inverse of :func:`to_axis`."""
    return 10.0 ** np.asarray(x, dtype=np.float64) - 1.0 if axis == "log" else np.asarray(x, dtype=np.float64)


def check_method(fraction: float, axis: str, interpolation: str, baseline: str) -> None:
    """Refuse, in one sentence, an unknown method option."""
    for name, value, allowed in (("axis", axis, AXES), ("interpolation", interpolation, INTERPOLATIONS),
                                 ("baseline", baseline, BASELINES)):
        if value not in allowed:
            raise BrainbenchError(f"half-time option {name}={value!r} is not one of {', '.join(allowed)}")
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 < fraction < 1:
        raise BrainbenchError(f"half-time option fraction must be between 0 and 1, got {fraction!r}")


def _undefined(reason: str, threshold: float = math.nan, final: float = math.nan) -> HalfTime:
    return HalfTime(math.nan, math.nan, threshold, final, reason)


def half_time(steps: Sequence[float], values: Sequence[float], *, fraction: float = 0.5, axis: str = "log",
              interpolation: str = "monotone", baseline: str = "zero") -> HalfTime:
    """The first step at which the curve ``values`` (over ``steps``) reaches ``fraction`` of its final value.

    Parameters
    ----------
    steps : (n,) training steps, increasing (0 for init)
    values : (n,) scores; non-finite ones are dropped
    fraction, axis, interpolation, baseline
        See the module docstring.

    Returns
    -------
    HalfTime
    """
    check_method(fraction, axis, interpolation, baseline)
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if steps.shape != values.shape:
        raise BrainbenchError(f"{len(steps)} steps for {len(values)} scores")
    keep = np.isfinite(values) & np.isfinite(steps)
    steps, values = steps[keep], values[keep]
    if len(steps) < 2:
        return _undefined("fewer than two checkpoints have a score")
    if np.any(np.diff(steps) <= 0):
        raise BrainbenchError("the checkpoints' steps must be strictly increasing")
    if interpolation == "sigmoid":
        return _sigmoid_half_time(steps, values, fraction, axis, baseline)
    final, start = float(values[-1]), float(values[0])
    threshold = _threshold(start, final, fraction, baseline, "the final score",
                           "the score does not change between the first and the last checkpoint")
    if isinstance(threshold, HalfTime):
        return threshold
    reference = 0.0 if baseline == "zero" else start
    sign = 1.0 if final > reference else -1.0
    x = _crossing(to_axis(steps, axis), sign * values, sign * threshold, interpolation)
    return _result(float(from_axis(x, axis)), steps, threshold, final)


def _threshold(start: float, final: float, fraction: float, baseline: str, final_name: str,
               flat_reason: str) -> float | HalfTime:
    """The score that marks the half-time (``fraction`` of the way from the baseline to ``final``),
    or an undefined :class:`HalfTime` saying why there is none."""
    reference = 0.0 if baseline == "zero" else start
    if baseline == "zero" and final <= 0:
        return _undefined(f"{final_name} is not above 0", final=final)
    if final == reference:
        return _undefined(flat_reason, final=final)
    return reference + fraction * (final - reference)


def _result(step: float, steps: np.ndarray, threshold: float, final: float) -> HalfTime:
    last = float(steps[-1])
    return HalfTime(step, 100.0 * step / last if last > 0 else math.nan, threshold, final)


def _crossing(x: np.ndarray, y: np.ndarray, threshold: float, interpolation: str) -> float:
    """First x where the increasing-direction curve y reaches ``threshold`` (y[-1] ≥ threshold)."""
    if y[0] >= threshold:
        return float(x[0])
    k = int(np.argmax(y >= threshold))
    x0, x1, y0, y1 = x[k - 1], x[k], y[k - 1], y[k]
    linear = float(x0 + (threshold - y0) / (y1 - y0) * (x1 - x0))
    if interpolation == "linear":
        return linear
    from scipy.interpolate import PchipInterpolator
    from scipy.optimize import brentq

    curve = PchipInterpolator(x, y)
    try:  # PCHIP is monotone on [x0, x1], where it goes from below to at-or-above the threshold
        return float(brentq(lambda v: float(curve(v)) - threshold, x0, x1, xtol=1e-12))
    except ValueError:
        return linear


def logistic(x, lo, hi, x0, width):
    """lo + (hi − lo) / (1 + exp(−(x − x0) / width))."""
    with np.errstate(over="ignore"):
        return lo + (hi - lo) / (1.0 + np.exp(-(np.asarray(x) - x0) / width))


def fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float, float] | None:
    """Least-squares fit of :func:`logistic` to (x, y) (``scipy.optimize.curve_fit``); None when it fails."""
    from scipy.optimize import curve_fit

    span = float(x[-1] - x[0]) or 1.0
    p0 = (float(y[0]), float(y[-1]), float(np.median(x)), span / 4)
    bounds = ([-np.inf, -np.inf, x[0] - span, span * 1e-3], [np.inf, np.inf, x[-1] + span, span * 10])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = curve_fit(logistic, x, y, p0=p0, bounds=bounds, maxfev=5000)
    except (RuntimeError, ValueError):
        return None
    return tuple(float(p) for p in params) if np.all(np.isfinite(params)) else None


def _sigmoid_half_time(steps: np.ndarray, values: np.ndarray, fraction: float, axis: str, baseline: str) -> HalfTime:
    if len(steps) < 4:
        return _undefined("a sigmoid fit needs at least 4 checkpoints")
    x = to_axis(steps, axis)
    params = fit_logistic(x, values)
    if params is None:
        return _undefined("the sigmoid fit did not converge")
    lo, hi, x0, width = params
    start, final = float(logistic(x[0], *params)), float(logistic(x[-1], *params))
    threshold = _threshold(start, final, fraction, baseline, "the fitted final score", "the fitted curve does not change")
    if isinstance(threshold, HalfTime):
        return threshold
    reference = 0.0 if baseline == "zero" else start
    if (threshold - start) * (final - reference) <= 0:  # already reached at the first checkpoint
        return _result(float(steps[0]), steps, threshold, final)
    ratio = (hi - lo) / (threshold - lo) - 1.0
    if ratio <= 0:
        return _undefined("the fitted curve never reaches the threshold", threshold, final)
    crossing = float(np.clip(x0 - width * math.log(ratio), x[0], x[-1]))
    return _result(float(from_axis(crossing, axis)), steps, threshold, final)


def bootstrap_half_times(steps: Sequence[float], curves: np.ndarray, n_boot: int, seed: int = 0, ci: float = 0.95,
                         **method) -> dict:
    """Percentile bootstrap CI of the half-time of the mean curve, resampling the rows of ``curves``.

    Parameters
    ----------
    steps : (n_checkpoints,)
    curves : (n_samples, n_checkpoints), one curve per subject (or per target); NaN ignored in the mean
    n_boot : resamples (0: no CI)
    method : fraction, axis, interpolation, baseline (see :func:`half_time`)

    Returns
    -------
    {"n_boot", "n_defined", "ci_step": [lo, hi] | None, "ci_percent": [lo, hi] | None}; the CI is None when
    fewer than half of the resamples give a defined half-time.
    """
    curves = np.atleast_2d(np.asarray(curves, dtype=np.float64))
    out = {"n_boot": int(n_boot), "n_defined": 0, "ci_step": None, "ci_percent": None}
    if n_boot <= 0 or len(curves) < 2:
        return out
    rng = np.random.default_rng(seed)
    found = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for _ in range(int(n_boot)):
            mean = np.nanmean(curves[rng.integers(0, len(curves), len(curves))], axis=0)
            found.append(half_time(steps, mean, **method).step)
    found = np.asarray(found)
    defined = found[np.isfinite(found)]
    out["n_defined"] = int(len(defined))
    if len(defined) * 2 >= n_boot:
        alpha = (1 - ci) / 2
        lo, hi = (float(v) for v in np.quantile(defined, [alpha, 1 - alpha]))
        last = float(steps[-1])
        out["ci_step"] = [lo, hi]
        out["ci_percent"] = [100 * lo / last, 100 * hi / last] if last > 0 else None
    return out
