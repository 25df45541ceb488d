"""The spatial score: does a region's best-predicting layer deepen with its distance from V1?

Per subject (Raugel et al. 2026, "spatial score"):

1. Encoding r of every unit for every layer, exactly as the ``encoding`` metric computes
   it (``Encoding(...).unit_scores``: z-scored features, cross-validated ridge, options
   ``alphas``, ``folds``, ``alpha_selection``); NaN or constant units are dropped and counted.
2. Per region (``Responses.units["region"]``): the *profile*, mean r over the region's
   units at each layer (with ``similarity="rsa"`` or ``"cka"``: the region's representational
   similarity with each layer instead, :mod:`brainbench.plugins.metrics.similarity`), and the
   best layer k*. ``layer_estimate="argmax"`` (default, the
   paper's k*) takes the highest mean r; ``"weighted"`` is a smooth estimate, the
   profile-weighted mean layer Σ wₗ·ℓ / Σ wₗ with wₗ = rₗ − minₗ rₗ (subtracting the
   minimum keeps a flat offset from pulling every region to the middle layer).
   Depth = k* / (L − 1), in 0..1.
3. Per region, the Euclidean distance (mm) between its centroid and its reference
   region's centroid (``dataset.region_positions`` and ``dataset.reference_for``: V1 of
   the same hemisphere for NSD). Reference regions (distance 0) are kept by default
   (``include_reference=True``: V1 is one of the paper's regions); set it False to
   drop them. Regions without a position are skipped and listed in ``detail["skipped"]``.
4. Score = Pearson r across regions between depth and distance (Spearman ρ in detail),
   with permutation p-values: distances are shuffled across regions ``permutations``
   times (seeded, ``seed``), p = (1 + #{|r_perm| ≥ |r|}) / (1 + permutations) for
   ``alternative="two-sided"`` (``"greater"``: r_perm ≥ r). Regions are treated as
   exchangeable: left and right homologues enter as separate regions, and no spatial
   autocorrelation null is attempted. ``error`` is the classical standard error of r,
   √((1 − r²)/(n − 2)). Fewer than 3 regions, or a constant depth, gives NaN.

Across subjects (:meth:`Spatial.aggregate`): mean ± SEM of the per-subject r (as the paper
reports scores) over the subjects whose r is defined — the others (fewer than 3 regions, constant
depth) are named in ``detail["dropped_subjects"]`` and ``detail["n_subjects"]`` counts those used
(the ``n`` column of the printed table); the detail also keeps, per region, the subjects' mean depth, distance and
profile, and the *pooled* r between those means (``detail["pooled"]``), which is what a
leaderboard scatter of regions shows.

Detail (per subject): ``regions`` → {best_layer, layer_index, depth, distance_mm, profile
(mean r per layer), n_units}; flat tables ``per_region_depth`` / ``per_region_distance``;
``layers`` (names in depth order).
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

import brainbench
from brainbench.core.contract.data import Dataset, Responses
from brainbench.core.errors import BrainbenchError
from brainbench.core.contract.metric import Metric, Score, subjects_used
from brainbench.core.contract.options import RIDGE_OPTIONS, Choice
from brainbench.core.compute.stats import sem
from brainbench.plugins.metrics.encoding import PAPER_ALPHAS, Encoding, usable_units
from brainbench.plugins.metrics.similarity_choice import SIMILARITIES, check_similarity, similarity_metric

LAYER_ESTIMATES = ("argmax", "weighted")
ALTERNATIVES = ("two-sided", "greater")


class Spatial(Metric):
    name = "spatial"
    modalities = ("fmri",)
    defaults = {
        "alphas": PAPER_ALPHAS,
        "folds": 5,
        "alpha_selection": "loo",
        "layer_estimate": "argmax",
        "include_reference": True,
        "n_permutations": 10000,
        "alternative": "two-sided",
        "similarity": "encoding",
        "seed": 0,
    }

    option_types = {**RIDGE_OPTIONS, "layer_estimate": Choice(*LAYER_ESTIMATES), "alternative": Choice(*ALTERNATIVES),
                    "similarity": Choice(*SIMILARITIES)}

    def __init__(self, **options: Any):
        super().__init__(**options)
        for key, allowed in (("layer_estimate", LAYER_ESTIMATES), ("alternative", ALTERNATIVES)):
            if self.options[key] not in allowed:
                raise BrainbenchError(f"metric 'spatial' option {key}={self.options[key]!r} is not one of "
                                      f"{', '.join(allowed)}")
        if int(self.options["n_permutations"]) < 0:
            raise BrainbenchError("metric 'spatial' option n_permutations must be 0 or more")
        self.options["include_reference"] = _flag(self.options["include_reference"])
        check_similarity(self.name, self.options["similarity"])

    def check_dataset(self, dataset: Dataset) -> None:
        super().check_dataset(dataset)
        if dataset.subjects and dataset.region_positions(dataset.subjects[0]) is None:
            raise BrainbenchError(f"metric 'spatial' needs region positions, but dataset {dataset.name!r} "
                                  "gives none (it has no region geometry)")

    def score(self, features: dict[str, np.ndarray], responses: Responses, dataset: Dataset) -> Score:
        if "region" not in responses.units:
            raise BrainbenchError(f"metric 'spatial' needs region labels, but the responses of "
                                  f"{responses.subject} have none")
        positions = dataset.region_positions(responses.subject)
        if positions is None:
            raise BrainbenchError(f"metric 'spatial' needs region positions, but dataset {dataset.name!r} gives none")
        if self.options["similarity"] == "encoding":
            encoding = Encoding(**{k: self.options[k] for k in ("alphas", "folds", "alpha_selection")})
            per_layer, keep = encoding.unit_scores(features, responses)
            profiles, counts = region_profiles(per_layer, responses.units["region"][keep])
        else:
            _, table = similarity_metric(self.options["similarity"]).similarities(features, responses)
            keep = usable_units(responses.data)
            profiles = {r: np.array([row[l] for l in features]) for r, row in table.items()}
            counts = {r: int(n) for r, n in zip(*np.unique(responses.units["region"][keep].astype(str),
                                                              return_counts=True))}
        layers = list(features)
        table, skipped = self._region_table(profiles, counts, positions, dataset, layers)
        if len(table) < 3 and skipped:  # nothing meaningful remains: refuse rather than store an undefined score
            reasons = "; ".join(f"{r}: {why}" for r, why in list(skipped.items())[:3])
            raise BrainbenchError(f"metric 'spatial' has {len(table)} usable regions for {responses.subject} (a "
                                  f"correlation needs 3); {len(skipped)} were skipped ({reasons})")
        depth = np.array([row["depth"] for row in table.values()])
        distance = np.array([row["distance_mm"] for row in table.values()])
        stats = spatial_correlation(depth, distance, int(self.options["n_permutations"]),
                                    self.options["alternative"], int(self.options["seed"]))
        detail = {**stats, "n_regions": len(table), "layers": layers, "regions": table, "skipped": skipped,
                  "per_region_depth": {r: row["depth"] for r, row in table.items()},
                  "per_region_distance": {r: row["distance_mm"] for r, row in table.items()},
                  "layer_estimate": self.options["layer_estimate"],
                  "include_reference": self.options["include_reference"], "n_dropped": int((~keep).sum()),
                  "similarity": self.options["similarity"]}
        return Score(value=stats["pearson_r"], error=_r_standard_error(stats["pearson_r"], len(table)),
                     n_units=int(keep.sum()), detail=detail)

    def _region_table(self, profiles: dict[str, np.ndarray], counts: dict[str, int],
                      positions: dict[str, np.ndarray], dataset: Dataset, layers: list[str]):
        """Per usable region: best layer, depth, distance, profile; and why the others were skipped."""
        table, skipped = {}, {}
        for region, profile in profiles.items():
            reference = dataset.reference_for(region)
            if region == reference and not self.options["include_reference"]:
                skipped[region] = "reference region (include_reference=False)"
            elif region not in positions or reference not in positions:
                skipped[region] = f"no position for {region if region not in positions else reference}"
            elif not np.isfinite(profile).all():
                skipped[region] = "no usable units"
            else:
                k = best_layer(profile, self.options["layer_estimate"])
                table[region] = {
                    "best_layer": layers[int(round(k))], "layer_index": k,
                    "depth": k / (len(layers) - 1) if len(layers) > 1 else 0.0,
                    "distance_mm": float(np.linalg.norm(np.asarray(positions[region]) - np.asarray(positions[reference]))),
                    "profile": [float(v) for v in profile], "n_units": counts[region]}
        return table, skipped

    def aggregate(self, scores: dict[str, Score]) -> Score:
        """Mean ± SEM of the subjects' r; per-region means and their pooled correlation in detail."""
        values = [s.value for s in scores.values()]
        regions: dict[str, list[dict]] = {}
        for score in scores.values():
            for region, row in score.detail.get("regions", {}).items():
                regions.setdefault(region, []).append(row)
        table = {r: {"depth": float(np.mean([x["depth"] for x in rows])),
                     "distance_mm": float(np.mean([x["distance_mm"] for x in rows])),
                     "profile": [float(v) for v in np.mean([x["profile"] for x in rows], axis=0)],
                     "n_subjects": len(rows)} for r, rows in regions.items()}
        depth = np.array([row["depth"] for row in table.values()])
        distance = np.array([row["distance_mm"] for row in table.values()])
        pooled = spatial_correlation(depth, distance, int(self.options["n_permutations"]),
                                     self.options["alternative"], int(self.options["seed"]))
        finite = [v for v in values if math.isfinite(v)]
        detail = {"subjects": {k: s.value for k, s in scores.items()}, **subjects_used(scores),
                  "spearman_r": _mean([s.detail.get("spearman_r", math.nan) for s in scores.values()]),
                  "pooled": pooled, "regions": table,
                  "per_region_depth": {r: row["depth"] for r, row in table.items()},
                  "per_region_distance": {r: row["distance_mm"] for r, row in table.items()},
                  "layers": next(iter(scores.values())).detail.get("layers", [])}
        return Score(value=float(np.mean(finite)) if finite else math.nan, error=sem(values),
                     n_units=sum(s.n_units for s in scores.values()), detail=detail)


def region_profiles(per_layer: dict[str, np.ndarray], labels: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Mean r per region at each layer.

    Parameters
    ----------
    per_layer : layer → (n_units,) r of the usable units
    labels : (n_units,) region of each usable unit

    Returns
    -------
    profiles : region → (n_layers,) mean r (regions in first-appearance order)
    counts : region → number of units
    """
    stacked = np.stack([np.asarray(r, dtype=np.float64) for r in per_layer.values()])  # (L, n_units)
    profiles, counts = {}, {}
    for region in dict.fromkeys(labels.tolist()):
        mask = labels == region
        with warnings.catch_warnings():  # a region whose units are all NaN gives NaN, silently
            warnings.simplefilter("ignore", RuntimeWarning)
            profiles[str(region)] = np.nanmean(stacked[:, mask], axis=1)
        counts[str(region)] = int(mask.sum())
    return profiles, counts


def best_layer(profile: np.ndarray, estimate: str = "argmax") -> float:
    """k*: the argmax layer, or the profile-weighted mean layer with weights r − min r."""
    profile = np.asarray(profile, dtype=np.float64)
    if estimate == "weighted":
        weights = profile - profile.min()
        if weights.sum() > 0:
            return float(np.dot(weights, np.arange(len(profile))) / weights.sum())
    return float(np.argmax(profile))


def spatial_correlation(depth: np.ndarray, distance: np.ndarray, permutations: int = 10000,
                        alternative: str = "two-sided", seed: int = 0) -> dict[str, float]:
    """Pearson and Spearman r between depth and distance, each with a permutation p-value.

    Parameters
    ----------
    depth, distance : (n_regions,)

    Returns
    -------
    {"pearson_r", "p_value", "spearman_r", "p_value_spearman"}; NaN when n < 3 or either is constant.
    """
    from scipy.stats import rankdata

    out = {}
    for name, transform in (("pearson", lambda v: v), ("spearman", rankdata)):
        r, p = _permutation_r(transform(np.asarray(depth, float)), transform(np.asarray(distance, float)),
                              permutations, alternative, seed)
        out[f"{name}_r"], out["p_value" if name == "pearson" else "p_value_spearman"] = r, p
    return out


def _permutation_r(x: np.ndarray, y: np.ndarray, permutations: int, alternative: str, seed: int) -> tuple[float, float]:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan, math.nan
    zx = (x - x.mean()) / x.std()
    zy = (y - y.mean()) / y.std()
    r = float(np.clip(zx @ zy / len(x), -1, 1))
    if permutations == 0:
        return r, math.nan
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.broadcast_to(zy, (permutations, len(zy))), axis=1)
    null = shuffled @ zx / len(x)
    tol = 1e-12
    hits = (null >= r - tol) if alternative == "greater" else (np.abs(null) >= abs(r) - tol)
    return r, float((1 + hits.sum()) / (1 + permutations))


def _r_standard_error(r: float, n: int) -> float:
    return math.sqrt(max(0.0, 1 - r * r) / (n - 2)) if n > 2 and math.isfinite(r) else math.nan


def _mean(values) -> float:
    finite = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def _flag(value) -> bool:
    return value if isinstance(value, bool) else str(value).lower() not in ("0", "false", "no", "off")


@brainbench.hookimpl(trylast=True)
def register_metrics(register):
    register("spatial", Spatial,
             description="Spatial score: Pearson r across regions between best layer (depth) and distance from V1",
             modality="fmri", options=list(Spatial.defaults))
