"""The half-time metric: how early in training a score reaches half its final value.

``halftime`` is a *trajectory metric*: it does not score one checkpoint but a model's
checkpoint series (``bench run -m tiny-dino@all -x halftime``). The runner
(:mod:`brainbench.core.pipeline.runner`) scores every checkpoint with the *base* metrics (option
``metrics``, default ``encoding,spatial,temporal``: each on the datasets it applies to —
spatial needs fMRI with region positions, temporal MEG), stores those rows as usual
(reused on a second run), then calls :meth:`Halftime.score_trajectory` once per (dataset,
base metric) with the per-checkpoint scores, and stores its result as rows with checkpoint
``all`` (or the selection given) and metric ``halftime``; the base metric is in the row's
options (``base``).

Per subject: the half-time of that subject's curve (:func:`brainbench.core.compute.halftime.half_time`:
method options ``fraction``, ``axis``, ``interpolation``, ``baseline``), as % of training
(score) and in steps (detail). Aggregate (``subject = all``): the score is the half-time *of
the mean curve* (the base metric's aggregate rows; ``half_time_of_mean_curve_percent``), and its
``error`` the SEM *of the subjects' half-times* (``sem_of_subject_half_times_percent``; their mean
is ``mean_of_subject_half_times_percent``). The two differ: the half-time of a mean of sigmoids is
not the mean of their half-times, and the SEM describes the spread of the subjects, not the
uncertainty of the mean curve's half-time, for which the percentile bootstrap CI is given
(``bootstrap`` resamples, ``ci`` level) resampling subjects (``resample = "subjects"``) or
targets (``"targets"``: regions or MEG windows of the encoding tables).

For a base metric with per-region or per-time tables (``encoding``, ``rsa``, ``cka``), also:

- **per region** (fMRI): the half-time of every region's curve, its distance from the region's
  reference (``dataset.region_positions`` and
  ``dataset.reference_for``, as the spatial metric; mean over subjects), and the Pearson r
  (and Spearman ρ) across regions between half-time and distance, with a permutation p-value
  (``n_permutations``, regions exchangeable: no spatial-autocorrelation null here; see
  ``bench analyze cortical-maps`` for a spin test against cortical maps) and a bootstrap CI
  over subjects. The paper reports R = 0.91.
- **per MEG window**: time points grouped into ``window_ms`` windows (0: each time point), the
  half-time of every window's mean curve, and its correlation with the window's centre time
  (paper: R = 0.84).

A region's curve is read at the region's *own* layer: ``region_layer="own"`` (default) takes, at
every checkpoint, the region's value at the layer the base metric's ``layer_selection`` rule
chooses for that region alone (``per_region_own_layer``: per fold for nested, the region's argmax
for best), so the curve never switches to another region's layer when the globally best layer
moves during training; ``region_layer="final"`` holds fixed the layer the region chose at the
last checkpoint (for nested: the layer chosen in most folds) and reads that layer's value
(``per_region_layer``) at every checkpoint. The aggregate curve of a region is the mean of the
subjects' curves. The same holds for MEG time points (``per_time_own_layer`` /
``per_time_layer``), which are then averaged within each window. Rows without these tables
(stored before them) fall back to ``per_region`` / ``per_time``, the values at the headline layer.

Regions or windows whose final score is below ``min_final`` (default 0.05 r: noise) are skipped
and listed. The aggregate detail also has ``order``: every base metric's half-time, earliest
first, to compare with the paper's Temporal (~0.7 %) → Encoding (~2 %) → Spatial (~4 %).

Detail of the aggregate: ``base``, ``half_time_step``, ``half_time_percent`` (=
``half_time_of_mean_curve_percent``), ``mean_of_subject_half_times_percent``,
``sem_of_subject_half_times_percent``, ``region_layer``, ``threshold``,
``final``, ``reason`` (why undefined), ``steps``, ``curve``, ``subject_curves``, ``subjects``
(their half-times, %), ``method``, ``bootstrap``, ``ci_percent``; ``regions`` (region → step,
percent, threshold, final, distance_mm), ``per_region_half_time`` (region → %),
``skipped_regions``, ``distance_correlation`` (``pearson_r``, ``p_value``, ``spearman_r``,
``p_value_spearman``, ``n``, ``ci_r``, ``null``); for MEG the same with ``windows``,
``per_window_half_time``, ``skipped_windows``, ``time_correlation``; ``order``.
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Mapping, Sequence

import numpy as np

import brainbench
from brainbench.core.contract.data import Dataset, Responses
from brainbench.core.errors import BrainbenchError
from brainbench.core.compute.halftime import (bootstrap_half_times, check_method, half_time, AXES, BASELINES,
                                              INTERPOLATIONS)
from brainbench.core.contract.metric import Metric, Score
from brainbench.core.contract.options import Choice, Float, Int, Texts
from brainbench.core.compute.stats import sem

#: the paper's order of half-times, earliest first
PAPER_ORDER = ("temporal", "encoding", "spatial")
RESAMPLING = ("subjects", "targets")
REGION_LAYERS = ("own", "final")


def _as_list(value) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    raise BrainbenchError(f"metric 'halftime' option metrics must be names such as 'encoding,spatial', got {value!r}")


class Halftime(Metric):
    name = "halftime"
    #: scored over a checkpoint series by the runner (``score_trajectory``), not per checkpoint
    trajectory = True
    defaults = {
        "metrics": ["encoding", "spatial", "temporal"],
        "fraction": 0.5,
        "axis": "log",
        "interpolation": "monotone",
        "baseline": "zero",
        "bootstrap": 1000,
        "resample": "subjects",
        "ci": 0.95,
        "n_permutations": 10000,
        "window_ms": 100,
        "min_final": 0.05,
        "region_layer": "own",
        "seed": 0,
    }
    option_types = {"metrics": Texts(help="the base metrics scored at every checkpoint"),
                    "fraction": Float(above=0, below=1), "axis": Choice(*AXES),
                    "interpolation": Choice(*INTERPOLATIONS), "baseline": Choice(*BASELINES),
                    "bootstrap": Int(minimum=0), "resample": Choice(*RESAMPLING), "ci": Float(above=0, below=1),
                    "n_permutations": Int(minimum=0), "window_ms": Float(above=0), "min_final": Float(minimum=0),
                    "region_layer": Choice(*REGION_LAYERS), "seed": Int(minimum=0)}

    def __init__(self, **options: Any):
        super().__init__(**options)
        o = self.options
        o["metrics"] = _as_list(o["metrics"])
        if not o["metrics"] or "halftime" in o["metrics"]:
            raise BrainbenchError("metric 'halftime' option metrics must name other metrics, e.g. encoding,spatial")
        check_method(o["fraction"], o["axis"], o["interpolation"], o["baseline"])
        if o["region_layer"] not in REGION_LAYERS:
            raise BrainbenchError(f"metric 'halftime' option region_layer must be one of {', '.join(REGION_LAYERS)}")
        if o["resample"] not in RESAMPLING:
            raise BrainbenchError(f"metric 'halftime' option resample must be one of {', '.join(RESAMPLING)}")
        for key in ("bootstrap", "n_permutations"):
            if int(o[key]) < 0:
                raise BrainbenchError(f"metric 'halftime' option {key} must be 0 or more")
        if not 0 < float(o["ci"]) < 1:
            raise BrainbenchError("metric 'halftime' option ci must be between 0 and 1, e.g. 0.95")

    def base_metrics(self) -> list[str]:
        """The metrics scored at every checkpoint (option ``metrics``)."""
        return list(self.options["metrics"])

    def row_options(self, base: str) -> dict:
        """The options stored in the rows of ``base``'s half-times (the list of bases is left out)."""
        return {**{k: v for k, v in self.options.items() if k != "metrics"}, "base": base}

    def summarize(self, aggregates: Mapping[tuple[str, str], Score]) -> tuple[dict, str]:
        """The half-times of every (dataset, base metric), earliest first, and a one-line report."""
        summary = order_summary(aggregates)
        return summary, "\n".join([format_order(summary), *format_targets(aggregates)])

    def conformance_check(self) -> tuple[str, str]:
        """``bench check``'s probe for this trajectory metric: planted logistic curves with a known half-time.

        Returns ("pass" | "fail", one sentence).
        """
        from brainbench.core.compute.halftime import logistic, to_axis

        steps = np.array([0, 1, 3, 10, 30, 100, 300, 1000, 3000, 10000])
        curve = logistic(to_axis(steps), 0.0, 0.3, np.log10(1 + 500), 0.2)
        truth = 10 ** (np.log10(501) - 0.2 * np.log(2 * 0.3 / curve[-1] - 1)) - 1
        scores = {s: [Score(float(v * (1 + 0.02 * k)), math.nan, 1) for v in curve] for k, s in enumerate("abc")}
        scores["all"] = [Score(float(np.mean([scores[s][i].value for s in "abc"])), math.nan, 3)
                         for i in range(len(steps))]
        found = self.score_trajectory("probe", steps, scores, _NoGeometry())["all"].detail["half_time_step"]
        if found is None or abs(found - truth) > 0.25 * truth:
            return "fail", f"a planted curve with half-time {truth:.0f} steps gave {found}"
        return "pass", f"a planted curve with half-time {truth:.0f} steps gives {found:.0f} steps"

    @property
    def method(self) -> dict:
        return {k: self.options[k] for k in ("fraction", "axis", "interpolation", "baseline")}

    def score(self, features: dict[str, np.ndarray], responses: Responses, dataset: Dataset) -> Score:
        raise BrainbenchError("metric 'halftime' scores a training trajectory, not one checkpoint: give a checkpoint "
                              "series such as --model tiny-dino@all (or --checkpoints all)")

    def score_trajectory(self, base: str, steps: Sequence[int], scores: Mapping[str, Sequence[Score]],
                         dataset: Dataset, aggregate: str = "all") -> dict[str, Score]:
        """Half-times of one base metric over a trajectory.

        Parameters
        ----------
        base
            The base metric's name.
        steps
            Training step of every checkpoint, increasing (0 = init).
        scores
            Subject → the base metric's :class:`Score` at every checkpoint (same order as ``steps``);
            ``aggregate`` → the aggregate scores.
        dataset
            The dataset (region geometry for per-region half-times).

        Returns
        -------
        dict
            Subject → half-time :class:`Score` (% of training), and ``aggregate`` → the aggregate.
        """
        steps = [int(s) for s in steps]
        subjects = [s for s in scores if s != aggregate]
        out: dict[str, Score] = {}
        for subject in subjects:
            curve = [s.value for s in scores[subject]]
            found = half_time(steps, curve, **self.method)
            out[subject] = Score(found.percent, math.nan, scores[subject][-1].n_units,
                                 {"base": base, **found.to_json(), "steps": steps, "curve": _json(curve)})
        out[aggregate] = self._aggregate(base, steps, scores, subjects, dataset, aggregate)
        return out

    def _aggregate(self, base, steps, scores, subjects, dataset, aggregate) -> Score:
        curve = [s.value for s in scores[aggregate]]
        found = half_time(steps, curve, **self.method).to_json()
        percents = [half_time(steps, [s.value for s in scores[k]], **self.method).percent for k in subjects]
        detail: dict[str, Any] = {
            "base": base, "half_time_step": found["step"], "half_time_percent": found["percent"],
            "threshold": found["threshold"], "final": found["final"], "reason": found["reason"], "steps": steps,
            "curve": _json(curve), "subject_curves": {k: _json([s.value for s in scores[k]]) for k in subjects},
            "subjects": dict(zip(subjects, _json(percents))), "method": self.method,
            "half_time_of_mean_curve_percent": found["percent"],
            "mean_of_subject_half_times_percent": _json([_finite_mean(percents)])[0],
            "sem_of_subject_half_times_percent": _json([sem(percents)])[0],
            "region_layer": self.options["region_layer"],
        }
        boot = dict(n_boot=int(self.options["bootstrap"]), seed=int(self.options["seed"]),
                    ci=float(self.options["ci"]), **self.method)
        tables = self._tables(scores, subjects, aggregate, dataset)
        if self.options["resample"] == "targets":
            key = next(iter(tables), None)
            curves = np.array(list(tables[key]["aggregate"].values())) if key else np.empty((0, len(steps)))
            detail["bootstrap"] = {"resample": f"targets ({key})" if key else "targets (none: no CI)",
                                   **bootstrap_half_times(steps, curves, **boot)}
        else:
            curves = np.array([[s.value for s in scores[k]] for k in subjects])
            detail["bootstrap"] = {"resample": "subjects", **bootstrap_half_times(steps, curves, **boot)}
        detail["ci_percent"] = detail["bootstrap"]["ci_percent"]
        for name, table in tables.items():
            detail.update(self._per_target(name, table, steps, subjects))
        value = math.nan if found["percent"] is None else found["percent"]
        return Score(value, sem(percents), scores[aggregate][-1].n_units, detail)

    # -- per region / per MEG window --------------------------------------------------------------
    def _tables(self, scores, subjects, aggregate, dataset) -> dict[str, dict]:
        """Per-target curves of the per-region / per-time tables: {"region" | "window": {"aggregate":
        {target: curve}, "subjects": {subject: {target: curve}}, "position": {target: distance or time}}}."""
        last = scores[aggregate][-1].detail
        rule = self.options["region_layer"]
        out = {}
        if isinstance(last.get("per_region"), dict) and last["per_region"]:
            regions = list(last["per_region"])
            distances = _distances(dataset, subjects, regions)
            if distances:
                curves = {k: target_curves(scores[k], "region", regions, rule) for k in subjects}
                mean = _mean_curves(curves, regions) if curves else target_curves(scores[aggregate], "region",
                                                                                  regions, rule)
                out["region"] = {"aggregate": mean, "subjects": curves,
                                 "position": distances, "unit": "distance_mm"}
        if isinstance(last.get("per_time"), dict) and last["per_time"]:
            times = list(last["per_time"])
            windows = _windows(times, float(self.options["window_ms"]))
            curves = {k: _window_curves(target_curves(scores[k], "time", times, rule), windows) for k in subjects}
            mean = _mean_curves(curves, list(windows)) if curves else \
                _window_curves(target_curves(scores[aggregate], "time", times, rule), windows)
            out["window"] = {"aggregate": mean, "subjects": curves,
                             "position": {w: centre for w, (centre, _) in windows.items()}, "unit": "time_ms"}
        return out

    def _per_target(self, name: str, table: dict, steps, subjects) -> dict:
        """Half-time of every region (window) and its correlation with distance (time)."""
        from brainbench.plugins.metrics.spatial import spatial_correlation

        rows, skipped, kept = {}, {}, []
        for target, curve in table["aggregate"].items():
            found = half_time(steps, curve, **self.method)
            rows[target] = {**found.to_json(), table["unit"]: table["position"].get(target)}
            if target not in table["position"]:
                skipped[target] = "no position"
            elif not np.isfinite(found.final) or found.final < float(self.options["min_final"]):
                skipped[target] = f"final score below min_final={self.options['min_final']}"
            elif not np.isfinite(found.step):
                skipped[target] = found.reason
            else:
                kept.append(target)
        x = np.array([rows[t]["percent"] for t in kept])
        y = np.array([table["position"][t] for t in kept])
        stats = spatial_correlation(x, y, int(self.options["n_permutations"]), "two-sided", int(self.options["seed"]))
        stats.update(n=len(kept), ci_r=self._r_interval(table, steps, subjects, kept), null="permutation")
        label = "distance" if name == "region" else "time"
        return {f"{name}s": rows, f"per_{name}_half_time": {t: rows[t]["percent"] for t in kept},
                f"skipped_{name}s": skipped, f"{label}_correlation": _json_dict(stats)}

    def _r_interval(self, table, steps, subjects, kept) -> list[float] | None:
        """Bootstrap CI (over subjects) of the Pearson r between the targets' half-times and positions."""
        n_boot = int(self.options["bootstrap"])
        if n_boot <= 0 or len(subjects) < 2 or len(kept) < 3:
            return None
        rng = np.random.default_rng(int(self.options["seed"]))
        stack = np.array([[table["subjects"][k][t] for t in kept] for k in subjects])  # subjects × targets × steps
        position = np.array([table["position"][t] for t in kept])
        values = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            for _ in range(n_boot):
                mean = np.nanmean(stack[rng.integers(0, len(subjects), len(subjects))], axis=0)
                found = np.array([half_time(steps, c, **self.method).step for c in mean])
                ok = np.isfinite(found)
                if ok.sum() >= 3 and np.ptp(found[ok]) > 0:
                    values.append(np.corrcoef(found[ok], position[ok])[0, 1])
        if len(values) * 2 < n_boot:
            return None
        alpha = (1 - float(self.options["ci"])) / 2
        return [float(v) for v in np.quantile(values, [alpha, 1 - alpha])]


class _NoGeometry(Dataset):
    """A dataset without regions, for :meth:`Halftime.conformance_check`."""

    name, modality, subjects = "probe", "fmri", ["a", "b", "c"]

    def responses(self, subject: str) -> Responses:
        raise BrainbenchError("the half-time probe has no responses")


def target_curves(series: Sequence[Score], label: str, targets: list[str], rule: str = "own") -> dict[str, list[float]]:
    """One subject's curve per region (``label="region"``) or time point (``"time"``) over the checkpoints.

    ``rule="own"``: at each checkpoint the target's value at its own layer (``per_<label>_own_layer``);
    ``"final"``: the value, at each checkpoint, of the layer the target chose at the last checkpoint
    (``<label>_layers``; for a per-fold list, the layer chosen in most folds) in ``per_<label>_layer``.
    Rows without those tables give ``per_<label>`` (the values at the headline layer).
    """
    last = series[-1].detail
    table = last.get(f"per_{label}_layer")
    if rule == "final" and isinstance(table, dict) and isinstance(last.get(f"{label}_layers"), dict):
        layers = {t: _modal(last[f"{label}_layers"].get(t), list(table.get(t, {}))) for t in targets}
        return {t: [float(s.detail.get(f"per_{label}_layer", {}).get(t, {}).get(layers[t], math.nan))
                    for s in series] for t in targets}
    key = f"per_{label}_own_layer" if isinstance(last.get(f"per_{label}_own_layer"), dict) else f"per_{label}"
    return {t: [float(s.detail.get(key, {}).get(t, math.nan)) for s in series] for t in targets}


def _modal(chosen, order: list[str]):
    """A layer name, or the one in most folds of a per-fold list (ties: the earlier layer in ``order``)."""
    if not isinstance(chosen, list):
        return chosen
    counts = {l: chosen.count(l) for l in chosen if l is not None}
    return max(sorted(counts, key=lambda l: order.index(l) if l in order else len(order)),
               key=counts.get, default=None)


def _mean_curves(curves: dict[str, dict[str, list[float]]], targets: list[str]) -> dict[str, list[float]]:
    """Mean over subjects of each target's curve (NaN ignored)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {t: [float(v) for v in np.nanmean([c[t] for c in curves.values()], axis=0)] for t in targets}


def _windows(times: list[str], width: float) -> dict[str, tuple[float, list[str]]]:
    """MEG time points (keys of ``per_time``) grouped into windows of ``width`` ms: label → (centre, keys)."""
    values = sorted((float(t), t) for t in times)
    if width <= 0:
        return {key: (value, [key]) for value, key in values}
    start = values[0][0]
    groups: dict[int, list[tuple[float, str]]] = {}
    for value, key in values:
        groups.setdefault(int((value - start) // width), []).append((value, key))
    return {f"{start + i * width:g}..{start + (i + 1) * width:g}":
            (float(np.mean([v for v, _ in g])), [k for _, k in g]) for i, g in sorted(groups.items())}


def _window_curves(curves: dict[str, list[float]], windows: dict) -> dict[str, list[float]]:
    """Time points' curves averaged within each window."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return {label: [float(v) for v in np.nanmean([curves[k] for k in keys], axis=0)]
                for label, (_, keys) in windows.items()}


def _finite_mean(values) -> float:
    v = np.asarray(values, dtype=np.float64)
    return float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else math.nan


def _distances(dataset: Dataset, subjects: list[str], regions: list[str]) -> dict[str, float]:
    """Mean over subjects of each region's distance (mm) from its reference region; {} without geometry."""
    found: dict[str, list[float]] = {}
    for subject in subjects:
        positions = dataset.region_positions(subject)
        if positions is None:
            return {}
        for region in regions:
            reference = dataset.reference_for(region)
            if region in positions and reference in positions:
                found.setdefault(region, []).append(float(np.linalg.norm(np.asarray(positions[region])
                                                                         - np.asarray(positions[reference]))))
    return {r: float(np.mean(v)) for r, v in found.items()}


def _json(values) -> list:
    return [None if v is None or not np.isfinite(v) else float(v) for v in values]


def _json_dict(values: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()}


def order_summary(aggregates: Mapping[tuple[str, str], Score]) -> dict:
    """Half-times of every (dataset, base metric), earliest first, and whether they follow the paper's order.

    For the comparison each base metric counts once, at its first dataset in ``aggregates``' order
    (encoding on fMRI when the fMRI dataset comes first). ``matches_paper``: True when the half-times
    strictly increase along temporal → encoding → spatial (for those defined), False when two are
    inverted, None with ties only or fewer than two defined.
    """
    ranked = sorted(({"metric": base, "dataset": dataset, "percent": s.value}
                     for (dataset, base), s in aggregates.items() if math.isfinite(s.value)),
                    key=lambda r: r["percent"])
    first: dict[str, float] = {}
    for (dataset, base), s in aggregates.items():
        if base not in first and math.isfinite(s.value):
            first[base] = s.value
    paper = [first[m] for m in PAPER_ORDER if m in first]
    pairs = list(zip(paper, paper[1:]))
    verdict = None if not pairs or (any(a == b for a, b in pairs) and not any(a > b for a, b in pairs)) \
        else all(a < b for a, b in pairs)
    return {"ranked": ranked, "paper_order": " → ".join(PAPER_ORDER), "matches_paper": verdict}


def format_order(summary: dict) -> str:
    """One line: ``temporal 0.7% (synthetic-meg) → encoding 2.1% (synthetic-fmri) → …``."""
    if not summary["ranked"]:
        return "no half-time is defined"
    text = " → ".join(f"{r['metric']} {r['percent']:.1f}% ({r['dataset']})" for r in summary["ranked"])
    verdict = {True: "the paper's order", False: "not the paper's order",
               None: "ties or too few half-times to compare with the paper's order"}
    return f"{text}; {verdict[summary['matches_paper']]} ({summary['paper_order']})"


def format_targets(aggregates: Mapping[tuple[str, str], Score]) -> list[str]:
    """One line per aggregate with per-region (per-window) half-times: each one, and their correlation with
    distance from V1 (time), r and p — what ``bench run`` prints after the order."""
    lines = []
    for (dataset, base), score in aggregates.items():
        for kind, table, label in (("region", "per_region_half_time", "distance"),
                                   ("window", "per_window_half_time", "time")):
            values = score.detail.get(table)
            if not isinstance(values, dict) or not values:
                continue
            stats = score.detail.get(f"{label}_correlation") or {}
            r, p = stats.get("pearson_r"), stats.get("p_value")
            against = "distance from V1" if kind == "region" else "window time"
            correlation = ("r n/a" if r is None else f"r = {r:.2f}, p = " + ("n/a" if p is None else f"{p:.3g}")) \
                + f", n = {stats.get('n', 0)}"
            each = ", ".join(f"{k} {v:.1f}%" for k, v in values.items() if isinstance(v, (int, float)))
            lines.append(f"  per {kind} ({base}, {dataset}): {each}; half-time vs {against}: {correlation}")
    return lines


@brainbench.hookimpl(trylast=True)
def register_metrics(register):
    register("halftime", Halftime,
             description="Half-time: training step (% of training) at which a score first reaches half its final "
                         "value, over a checkpoint series (NAME@all)",
             modality="fmri, meg", options=list(Halftime.defaults))
