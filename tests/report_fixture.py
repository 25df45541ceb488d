"""A stored training trajectory over Glasser regions with planted half-times, made by the real metrics.

Per-region encoding curves r(step) = final · step / (step + h) rise to half their final value at
about h steps, and h is planted to grow with the region's distance from V1 (distances from the
shipped fsaverage sphere centroids, 70 mm radius). The per-checkpoint rows are aggregated by
``Encoding.aggregate`` and the half-times computed by ``Halftime.score_trajectory``: the same code
that ``bench run -m NAME@all -x halftime`` runs, without extracting activations.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

import brainbench
from brainbench.core.compute.cortical import load_maps
from brainbench.core.contract.data import Dataset, Responses
from brainbench.core.contract.metric import Score
from brainbench.core.store.results import ResultRow, ResultStore, canonical_options
from brainbench.core.contract.checkpoints import step_name
from brainbench.plugins.metrics.encoding import Encoding
from brainbench.plugins.metrics.halftime import Halftime

REGIONS = ["V1", "V2", "V3", "V4", "V3A", "MT", "MST", "FFC", "PIT", "LO1", "7Pm", "IPS1", "FEF", "44", "45", "IFSa"]
STEPS = [0, 30, 100, 300, 1000, 3000, 10000]
SUBJECTS = ["sub-01", "sub-02", "sub-03"]
LAYERS = [f"layer{i:02d}" for i in range(6)]
MODEL = "toy-net"


class GlasserToy(Dataset):
    """Left-hemisphere Glasser regions placed at their fsaverage sphere centroids (70 mm radius)."""

    name, modality, subjects = "toy-fmri", "fmri", SUBJECTS

    def __init__(self):
        maps = load_maps()
        self.positions = {f"lh.{r}": 70 * maps.sphere[maps.parcels.index(r)] for r in REGIONS}

    def responses(self, subject: str) -> Responses:
        raise NotImplementedError("the toy dataset only gives region geometry")

    def region_positions(self, subject: str):
        return self.positions

    def reference_for(self, region: str) -> str:
        return "lh.V1"


def planted_half_times(dataset: GlasserToy) -> dict[str, float]:
    """Region → planted half-time (steps): 40 steps at V1, growing with distance."""
    v1 = dataset.positions["lh.V1"]
    return {r: 40 + 12 * float(np.linalg.norm(p - v1)) for r, p in dataset.positions.items()}


def _row(checkpoint: str, subject: str, metric: str, score: Score, options: dict) -> ResultRow:
    return ResultRow(model=MODEL, checkpoint=checkpoint, dataset="toy-fmri", subject=subject, metric=metric,
                     options=canonical_options(options), score=float(score.value), error=float(score.error),
                     n_units=score.n_units, detail=score.detail, brainbench_version=brainbench.__version__,
                     data_hash="toy", activations_key="toy")


def trajectory_database(path: Path) -> Path:
    """Store the toy trajectory (encoding at every step, then its half-times) in the database ``path``."""
    dataset = GlasserToy()
    half = planted_half_times(dataset)
    rng = np.random.default_rng(0)
    finals = {r: 0.3 + 0.2 * rng.random() for r in half}
    encoding = Encoding()
    options = {"metric": encoding.scoring_options(), "pooling": "mean", "model": {}, "dataset": {}}
    series: dict[str, list[Score]] = {s: [] for s in [*SUBJECTS, "all"]}
    with ResultStore(path) as store:
        for step in STEPS:
            scores = {}
            for k, subject in enumerate(SUBJECTS):
                gain = 1 + 0.05 * (k - 1)
                per_region = {r: gain * finals[r] * step / (step + half[r]) for r in half}
                mean = float(np.mean(list(per_region.values())))
                per_layer = {l: mean * (0.6 + 0.1 * i if i < 4 else 0.9 - 0.05 * i) for i, l in enumerate(LAYERS)}
                best = max(per_layer, key=per_layer.get)
                scores[subject] = Score(per_layer[best], 0.01, 400, {
                    "layer": best, "per_layer": per_layer, "per_region": {r: v * per_layer[best] / mean if mean else 0.0
                                                                          for r, v in per_region.items()},
                    "n_dropped": 0, "noise_ceiling": 0.6, "ceiled_score": per_layer[best] / 0.6})
            scores["all"] = encoding.aggregate(scores)
            checkpoint = "init" if step == 0 else step_name(step)
            for subject, score in scores.items():
                store.save(_row(checkpoint, subject, "encoding", score, options))
                series[subject].append(score)
        metric = Halftime(bootstrap=50, n_permutations=200)
        found = metric.score_trajectory("encoding", STEPS, series, dataset)
        halftime_options = {"metric": metric.row_options("encoding"), "pooling": "mean", "model": {}, "dataset": {}}
        for subject, score in found.items():
            store.save(_row("all", subject, "halftime", score, halftime_options))
    return path


def is_close_to_planted(detail: dict, dataset: GlasserToy) -> float:
    """Pearson r between the stored per-region half-times (%) and the planted ones."""
    planted = planted_half_times(dataset)
    found = detail["per_region_half_time"]
    keys = [k for k in found if k in planted and found[k] is not None and math.isfinite(found[k])]
    return float(np.corrcoef([found[k] for k in keys], [planted[k] for k in keys])[0, 1])
