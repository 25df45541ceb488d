"""The temporal score: do deeper layers best predict later MEG responses?

Per subject, every layer is mapped to every sensor × time point at once by the encoding
metric's cross-validated ridge (``Encoding.unit_scores``: the same features for all targets,
one solve; identical to one model per time point, since alphas are chosen per target).
Then, per layer ℓ (in the model's order, normalised depth dℓ = ℓ / (L − 1)):

- r(t): the encoding r at time t, averaged over sensors; the layer × time matrix of r(t) is
  kept in ``detail["r_time"]`` (with ``detail["times"]``, ms).
- T_max: with the normalised curve r̃(t) = r(t) / max r, ``peak="window"`` (default, the
  paper's "window" around the peak) takes the mean time of the contiguous run of time points
  around the maximum where r̃(t) ≥ ``threshold`` (default 0.95), so a second bump elsewhere
  does not pull it; ``peak="points"`` the mean of *every* time point with r̃(t) ≥ ``threshold``
  (this metric's rule before benchmark version 2); ``peak="argmax"`` the time of the maximum.
  A layer whose curve never rises above 0 has no T_max and is left out
  (``detail["excluded_layers"]``).
- onset: the first time point at which the layer predicts the sensors above chance.
  ``onset_test="fdr"``: at each time point a one-sided one-sample t-test of the sensors' r
  against 0, then Benjamini–Hochberg across the layer's time points
  (``scipy.stats.false_discovery_control``), significant when q < ``onset_alpha``.
  ``onset_test="cluster"``: MNE's cluster permutation test over time
  (``permutation_cluster_1samp_test``, one-sided, sensors as observations, sign flips), the
  first time point of the earliest cluster with p < ``onset_alpha``. Both treat sensors as
  independent samples, which neighbouring MEG sensors are not: read onsets as descriptive.
  ``None`` when nothing is significant.
- the peak-sensor map: every sensor's r at the layer's peak time (the argmax of r(t)), rounded
  to 4 decimals (``detail["sensor_map"]``), and the best sensor there (``detail["peak_sensor"]``).

With ``similarity="rsa"`` or ``"cka"``, r(t) is instead the layer's representational similarity
with the sensors at time t (:mod:`brainbench.plugins.metrics.similarity`, default options of that
metric, no noise ceiling); T_max follows the same rule, and the per-sensor outputs (onset,
sensor map) are None, since no per-sensor value exists.

Temporal score = Pearson r between dℓ and T_max over the layers that have one; p-value by
permuting T_max across layers (one-sided: deeper-later, ``n_permutations`` draws, seeded).
The subject's error is the Pearson standard error √((1 − r²) / (L − 2)); across subjects
mean ± SEM, with the layer × time matrices averaged. Works on any MEG dataset whose units are
labelled ``time`` (and, optionally, ``sensor``; without it every unit counts as a sensor).
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

import brainbench
from brainbench.core.contract.data import Dataset, Responses
from brainbench.core.errors import BrainbenchError
from brainbench.core.contract.metric import Metric, Score
from brainbench.core.contract.options import RIDGE_OPTIONS, Choice, Float, Int
from brainbench.plugins.metrics.encoding import PAPER_ALPHAS, Encoding, usable_units
from brainbench.plugins.metrics.similarity_choice import SIMILARITIES, check_similarity, similarity_metric


def unit_grid(r: np.ndarray, sensors: np.ndarray, times: np.ndarray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Arrange per-unit values as a sensor × time grid.

    Parameters
    ----------
    r, sensors, times : arrays of shape (n_units,): value, sensor label and time (ms) of each unit

    Returns
    -------
    sensor_names : list of n_sensors labels, in first-appearance order
    time_points : array of shape (n_times,), sorted
    grid : array of shape (n_sensors, n_times); NaN where no unit has that sensor and time
    """
    sensor_names = list(dict.fromkeys(str(s) for s in sensors))
    row = {name: i for i, name in enumerate(sensor_names)}
    time_points, col = np.unique(np.asarray(times, dtype=np.float64), return_inverse=True)
    grid = np.full((len(sensor_names), len(time_points)), np.nan)
    grid[[row[str(s)] for s in sensors], col] = r
    return sensor_names, time_points, grid


PEAKS = ("window", "points", "argmax")


def peak_time(curve: np.ndarray, times: np.ndarray, peak: str = "window", threshold: float = 0.95) -> float:
    """T_max (ms) of one layer's curve r(t).

    Parameters
    ----------
    curve, times : arrays of shape (n_times,); ``times`` sorted, ms
    peak : "window" (mean time of the contiguous run around the maximum with r ≥ threshold · max),
        "points" (mean time of every point with r ≥ threshold · max) or "argmax"

    Returns
    -------
    float, NaN when the curve never exceeds 0. A NaN time point ends the window.
    """
    if not np.isfinite(curve).any() or np.nanmax(curve) <= 0:
        return math.nan
    top = int(np.nanargmax(curve))
    if peak == "argmax":
        return float(times[top])
    with np.errstate(invalid="ignore"):
        above = curve / curve[top] >= threshold
    if peak == "points":
        return float(times[above].mean())
    start, stop = top, top + 1
    while start > 0 and above[start - 1]:
        start -= 1
    while stop < len(above) and above[stop]:
        stop += 1
    return float(times[start:stop].mean())


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r between ``x`` (n,) and each row of ``y`` (k, n) or ``y`` (n,)."""
    x = x - x.mean()
    y = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (y @ x) / np.sqrt((x @ x) * np.einsum("...i,...i->...", y, y))


def correlation_test(x: np.ndarray, y: np.ndarray, n_permutations: int, seed: int = 0) -> tuple[float, float]:
    """Pearson r of ``x`` and ``y`` (n,), and its one-sided (r > 0) permutation p-value."""
    r = float(_pearson(x, y))
    if not np.isfinite(r):
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    shuffled = y[np.argsort(rng.random((n_permutations, len(y))), axis=1)]
    null = _pearson(x, shuffled)
    return r, float((1 + np.sum(null >= r - 1e-12)) / (1 + n_permutations))


def sensor_t_test(grid: np.ndarray) -> np.ndarray:
    """One-sided p-values of a one-sample t-test (mean r > 0) across sensors, per time point.

    Parameters
    ----------
    grid : array of shape (n_sensors, n_times), NaN ignored

    Returns
    -------
    p : array of shape (n_times,); 1 where fewer than 3 sensors or no spread
    """
    from scipy.stats import t as student

    n = np.isfinite(grid).sum(axis=0)
    p = np.ones(grid.shape[1])
    ok = (n >= 3) & (np.nanstd(np.where(n >= 3, grid, 0.0), axis=0) > 0)
    if ok.any():
        values = grid[:, ok]
        sd = np.nanstd(values, axis=0, ddof=1)
        stat = np.nanmean(values, axis=0) / (sd / np.sqrt(n[ok]))
        p[ok] = student.sf(stat, n[ok] - 1)
    return p


def onset_time(grid: np.ndarray, times: np.ndarray, test: str = "fdr", alpha: float = 0.05,
               n_permutations: int = 1000, seed: int = 0) -> float | None:
    """First time (ms) at which the sensors' r is significantly above 0; None when never.

    Parameters
    ----------
    grid : array of shape (n_sensors, n_times), r per sensor and time (NaN allowed)
    times : array of shape (n_times,), ms
    test : "fdr" (t-test per time point, Benjamini–Hochberg) or "cluster" (cluster permutation over time)
    """
    if test == "fdr":
        from scipy.stats import false_discovery_control

        significant = false_discovery_control(sensor_t_test(grid)) < alpha
    else:
        from mne.stats import permutation_cluster_1samp_test

        complete = grid[np.isfinite(grid).all(axis=1)]
        if len(complete) < 3:
            return None
        _, clusters, cluster_p, _ = permutation_cluster_1samp_test(
            complete, tail=1, n_permutations=n_permutations, rng=seed, out_type="mask", verbose="error")
        significant = np.zeros(len(times), bool)
        for cluster, p in zip(clusters, cluster_p):
            if p < alpha:
                significant[cluster] = True  # a boolean mask, or a tuple of one slice
    hits = np.flatnonzero(significant)
    return float(times[hits[0]]) if len(hits) else None


def _none_if_nan(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


class Temporal(Metric):
    name = "temporal"
    modalities = ("meg",)
    defaults = {
        "alphas": PAPER_ALPHAS,
        "folds": 5,
        "alpha_selection": "loo",
        "peak": "window",
        "threshold": 0.95,
        "n_permutations": 10000,
        "onset_test": "fdr",
        "onset_alpha": 0.05,
        "cluster_permutations": 1000,
        "similarity": "encoding",
        "seed": 0,
    }

    option_types = {**RIDGE_OPTIONS, "peak": Choice(*PEAKS), "threshold": Float(above=0, maximum=1),
                    "onset_test": Choice("fdr", "cluster"), "onset_alpha": Float(above=0, below=1),
                    "cluster_permutations": Int(minimum=0), "similarity": Choice(*SIMILARITIES)}

    def __init__(self, **options: Any):
        super().__init__(**options)
        if self.options["peak"] not in PEAKS:
            raise BrainbenchError(f"metric 'temporal' option peak must be one of {', '.join(PEAKS)}, "
                                  f"got {self.options['peak']!r}")
        if self.options["onset_test"] not in ("fdr", "cluster"):
            raise BrainbenchError(f"metric 'temporal' option onset_test must be 'fdr' or 'cluster', "
                                  f"got {self.options['onset_test']!r}")
        check_similarity(self.name, self.options["similarity"])
        threshold = self.options["threshold"]
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not 0 < threshold <= 1:
            raise BrainbenchError(f"metric 'temporal' option threshold must be in (0, 1], "
                                  f"got {self.options['threshold']!r}")

    def _encoding(self) -> Encoding:
        return Encoding(**{k: self.options[k] for k in ("alphas", "folds", "alpha_selection")})

    def score(self, features: dict[str, np.ndarray], responses: Responses, dataset: Dataset) -> Score:
        if "time" not in responses.units:
            raise BrainbenchError(f"metric 'temporal' needs responses labelled by 'time', but {dataset.name!r} "
                                  f"labels {responses.subject}'s units by {', '.join(responses.units) or 'nothing'}")
        if len(features) < 3:
            raise BrainbenchError(f"metric 'temporal' needs at least 3 layers to correlate depth with peak time, "
                                  f"got {len(features)}")
        layers = list(features)
        depth = np.arange(len(layers)) / (len(layers) - 1)
        detail: dict[str, Any] = {"layers": layers, "depth": dict(zip(layers, depth.tolist())), "t_max": {},
                                  "peak_r": {}, "onset": {}, "peak_sensor": {}, "sensor_map": {}, "r_time": {}}
        if self.options["similarity"] == "encoding":
            per_layer, keep = self._encoding().unit_scores(features, responses)
            times = responses.units["time"][keep]
            sensors = responses.units.get("sensor", np.arange(responses.n_units).astype(str))[keep]
            for layer in layers:
                names, time_points, grid = unit_grid(per_layer[layer], sensors, times)
                self._describe_layer(detail, layer, names, time_points, grid)
        else:
            _, table = similarity_metric(self.options["similarity"]).similarities(features, responses)
            keys = sorted(table, key=float)
            time_points = np.array([float(k) for k in keys])
            keep = usable_units(responses.data)
            for layer in layers:
                self._describe_curve(detail, layer, time_points, np.array([table[k][layer] for k in keys]))
                detail["onset"][layer] = None
        detail["similarity"] = self.options["similarity"]
        detail["times"] = time_points.tolist()
        t_max = np.array([np.nan if detail["t_max"][l] is None else detail["t_max"][l] for l in layers])
        valid = np.isfinite(t_max)
        detail["excluded_layers"] = [l for l, ok in zip(layers, valid) if not ok]
        r, p = (correlation_test(depth[valid], t_max[valid], int(self.options["n_permutations"]),
                                 int(self.options["seed"])) if valid.sum() >= 3 else (math.nan, math.nan))
        detail.update(p_value=_none_if_nan(p), n_layers_scored=int(valid.sum()), peak=self.options["peak"],
                      threshold=float(self.options["threshold"]), onset_test=self.options["onset_test"])
        error = math.sqrt((1 - r * r) / (valid.sum() - 2)) if np.isfinite(r) else math.nan
        return Score(value=r, error=error, n_units=int(keep.sum()), detail=detail)

    def _describe_layer(self, detail: dict, layer: str, sensors: list[str], times: np.ndarray,
                        grid: np.ndarray) -> None:
        """Fill one layer's curve, T_max, peak r, onset and sensor map into ``detail``."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a time point without any usable sensor
            curve = np.nanmean(grid, axis=0)
        o = self.options
        self._describe_curve(detail, layer, times, curve)
        finite = np.isfinite(curve).any()
        detail["onset"][layer] = onset_time(grid, times, o["onset_test"], float(o["onset_alpha"]),
                                            int(o["cluster_permutations"]), int(o["seed"]))
        if finite:
            at_peak = grid[:, int(np.nanargmax(curve))]
            detail["sensor_map"][layer] = {s: _none_if_nan(round(float(v), 4)) for s, v in zip(sensors, at_peak)}
            detail["peak_sensor"][layer] = sensors[int(np.nanargmax(at_peak))] if np.isfinite(at_peak).any() else None

    def _describe_curve(self, detail: dict, layer: str, times: np.ndarray, curve: np.ndarray) -> None:
        """Fill one layer's curve r(t), T_max and peak r into ``detail``."""
        o = self.options
        detail["r_time"][layer] = [_none_if_nan(v) for v in curve]
        detail["t_max"][layer] = _none_if_nan(peak_time(curve, times, o["peak"], float(o["threshold"])))
        detail["peak_r"][layer] = _none_if_nan(np.nanmax(curve)) if np.isfinite(curve).any() else None

    def aggregate(self, scores: dict[str, Score]) -> Score:
        """Mean ± SEM of the subjects' temporal scores; T_max, onsets and r(t) averaged per layer."""
        total = super().aggregate(scores)
        details = [s.detail for s in scores.values()]
        layers = details[0]["layers"]
        if all(d["layers"] == layers and d["times"] == details[0]["times"] for d in details):
            total.detail["times"] = details[0]["times"]
            for key in ("t_max", "onset", "peak_r"):
                total.detail[key] = {l: _nanmean_or_none([d[key][l] for d in details]) for l in layers}
            total.detail["r_time"] = {l: [_nanmean_or_none(v) for v in zip(*(d["r_time"][l] for d in details))]
                                      for l in layers}
        return total


def _nanmean_or_none(values) -> float | None:
    v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
    return float(np.nanmean(v)) if np.isfinite(v).any() else None


@brainbench.hookimpl(trylast=True)
def register_metrics(register):
    register("temporal", Temporal,
             description="Temporal score: Pearson r between layer depth and the time each layer best predicts MEG",
             modality="meg", options=list(Temporal.defaults))
