"""The encoding score: how well cross-validated ridge on a layer predicts each brain unit.

Per subject and layer: features are z-scored across stimuli (unsupervised, no response
information), then ``brainbench.core.ridge.cv_predict`` gives out-of-fold predictions
(``folds``-fold contiguous CV, alpha chosen per unit from ``alphas`` by ``alpha_selection``);
the unit's score is the Pearson r between its responses and the out-of-fold
predictions, over all stimuli. Units whose responses contain NaN or are constant are
dropped and counted (``detail["n_dropped"]``).

The subject's score is the mean r over units at one layer: by default the best layer
(``layer="best"``, the layer with the highest mean r — an optimistic choice, as in the
paper's per-model summaries), or a named layer. Detail keeps the mean r of every layer,
the per-region (fMRI) or per-time (MEG) means at the chosen layer, and, when the dataset
gives a noise ceiling, the *ceiled* score = mean r / mean ceiling, labelled as such.
Across subjects: mean ± SEM.

Chance level (``n_permutations`` > 0, default 0 because it multiplies the cost): at the
chosen layer, the rows of the responses are shuffled ``n_permutations`` times and the
out-of-fold r recomputed with the same folds and alphas (``cv_permutation_null``); the
p-value of each region's (or time point's) mean r, and of the overall mean, is
(1 + #null ≥ observed) / (1 + n_permutations).

Maps: ``maps_dir`` (a folder) writes each subject's per-unit r at the chosen layer as an
image in the subject's space through the dataset (NSD: a NIfTI,
``<dataset>_<subject>_<layer>_r.nii.gz``; units dropped as NaN/constant are NaN);
``detail["map"]`` names the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import brainbench
from brainbench.core.data import Dataset, Responses
from brainbench.core.errors import BrainbenchError
from brainbench.core.metric import Metric, Score
from brainbench.core.options import RIDGE_OPTIONS, PathOption, Text
from brainbench.core.ridge import cv_permutation_null, cv_predict
from brainbench.core.stats import pearson, sem

#: the paper's grid: 10 values log-spaced over 1e0…1e8
PAPER_ALPHAS = [float(a) for a in np.logspace(0, 8, 10)]


def zscore(features: np.ndarray) -> np.ndarray:
    """Columns z-scored across rows; constant columns become 0."""
    features = np.asarray(features, dtype=np.float64)
    centred = features - features.mean(0)
    sd = centred.std(0)
    return np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)


def usable_units(data: np.ndarray) -> np.ndarray:
    """Mask of units with finite, non-constant responses."""
    keep = np.isfinite(data).all(0)
    keep[keep] = data[:, keep].max(0) > data[:, keep].min(0)
    return keep


def group_means(r: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Mean r per label value (labels as strings, in first-appearance order)."""
    keys = list(dict.fromkeys(labels.tolist()))
    return {str(k): float(np.nanmean(r[labels == k])) for k in keys}


class Encoding(Metric):
    name = "encoding"
    defaults = {
        "alphas": PAPER_ALPHAS,
        "folds": 5,
        "alpha_selection": "loo",
        "layer": "best",
        "n_permutations": 0,
        "seed": 0,
        "maps_dir": None,
    }
    output_options = ("maps_dir",)
    option_types = {**RIDGE_OPTIONS, "layer": Text(help="'best' or a layer name"),
                    "maps_dir": PathOption(help="folder to write per-unit maps to")}

    def unit_scores(self, features: dict[str, np.ndarray], responses: Responses) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Per layer, Pearson r of every usable unit; and the usable-unit mask."""
        keep = usable_units(responses.data)
        if not keep.any():
            raise BrainbenchError(f"every unit of subject {responses.subject} is NaN or constant; nothing to score")
        Y = responses.data[:, keep]
        per_layer = {}
        for layer, X in features.items():
            if X.shape[0] != Y.shape[0]:
                raise BrainbenchError(f"layer {layer} has {X.shape[0]} stimuli but the responses have {Y.shape[0]}")
            finite = np.isfinite(X)
            if not finite.all():  # z-scoring would silently turn these features into zeros
                bad_units = int((~finite).any(0).sum())
                raise BrainbenchError(f"layer {layer} has {int((~finite).sum())} non-finite activations (NaN or inf) "
                                      f"in {bad_units} of {X.shape[1]} features; the model overflowed or is broken "
                                      "(with --precision fp16/bf16, try fp32)")
            result = cv_predict(zscore(X), Y, alphas=self.options["alphas"], folds=self.options["folds"],
                                alpha_selection=self.options["alpha_selection"])
            per_layer[layer] = pearson(Y, result.predictions)
        return per_layer, keep

    def score(self, features: dict[str, np.ndarray], responses: Responses, dataset: Dataset) -> Score:
        wanted = self.options["layer"]
        if wanted != "best":
            if wanted not in features:
                raise BrainbenchError(f"no layer {wanted!r}; layers: {', '.join(features)}")
            features = {wanted: features[wanted]}
        per_layer, keep = self.unit_scores(features, responses)
        means = {layer: float(np.nanmean(r)) for layer, r in per_layer.items()}
        layer = max(means, key=lambda k: -np.inf if np.isnan(means[k]) else means[k])
        r = per_layer[layer]
        detail = {"layer": layer, "per_layer": means, "n_dropped": int((~keep).sum())}
        if "region" in responses.units:  # a region every unit of which was dropped is said, not just absent
            kept = set(responses.units["region"][keep].tolist())
            lost = [str(r) for r in dict.fromkeys(responses.units["region"].tolist()) if r not in kept]
            if lost:
                detail["regions_without_usable_units"] = lost
        for label, values in responses.units.items():
            if label in ("region", "time"):
                detail[f"per_{label}"] = group_means(r, values[keep])
        if self.options["maps_dir"]:
            values = np.full(responses.n_units, np.nan)
            values[keep] = r
            path = Path(self.options["maps_dir"]).expanduser() / f"{dataset.name}_{responses.subject}_{layer}_r.nii.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            detail["map"] = dataset.write_unit_map(responses.subject, values, responses.units, path)
        if self.options["n_permutations"] > 0:
            detail.update(self.permutation_p_values(features[layer], responses, keep, r))
        if responses.noise_ceiling is not None:
            ceiling = float(np.nanmean(responses.noise_ceiling[keep]))
            detail["noise_ceiling"] = ceiling
            detail["ceiled_score"] = means[layer] / ceiling if ceiling > 0 else None
        return Score(value=means[layer], error=sem(r), n_units=int(keep.sum()), detail=detail)


    def permutation_p_values(self, X: np.ndarray, responses: Responses, keep: np.ndarray, r: np.ndarray) -> dict:
        """Permutation p-values of the overall and per-group mean r at one layer (see the module docstring)."""
        null = cv_permutation_null(zscore(X), responses.data[:, keep], alphas=self.options["alphas"],
                                   folds=self.options["folds"], alpha_selection=self.options["alpha_selection"],
                                   n_permutations=self.options["n_permutations"], seed=self.options["seed"])

        def p_value(columns: np.ndarray) -> float:
            observed = np.nanmean(r[columns])
            chance = np.nanmean(null[:, columns], axis=1)
            return float((1 + np.sum(chance >= observed)) / (1 + len(chance)))

        out = {"p_value": p_value(np.ones(len(r), bool))}
        for label, values in responses.units.items():
            if label in ("region", "time"):
                values = values[keep]
                out[f"p_per_{label}"] = {str(k): p_value(values == k) for k in dict.fromkeys(values.tolist())}
        return out


@brainbench.hookimpl(trylast=True)
def register_metrics(register):
    register("encoding", Encoding,
             description="Cross-validated ridge encoding: mean Pearson r of predicted vs held-out responses",
             modality="fmri, meg", options=list(Encoding.defaults))
