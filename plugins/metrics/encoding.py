"""The encoding score: how well cross-validated ridge on a layer predicts each brain unit.

Per subject and layer: features are z-scored across stimuli (unsupervised, no response
information), then ``brainbench.core.compute.ridge.cv_predict`` gives out-of-fold predictions
(``folds``-fold contiguous CV, alpha chosen per unit from ``alphas`` by ``alpha_selection``);
the unit's score is the Pearson r between its responses and the out-of-fold
predictions, over all stimuli. Units whose responses contain NaN or are constant are
dropped and counted (``detail["n_dropped"]``).

The subject's score is the mean r over units at the layer chosen by ``layer_selection``
(:mod:`brainbench.plugins.metrics.layer_selection`): ``"nested"`` (default) chooses the layer
in every outer fold on that fold's training part, from the leave-one-out / GCV errors of the
alpha selection, and predicts the fold's held-out stimuli with it (no layer-selection optimism);
``"best"`` takes the layer with the highest mean r over the same out-of-fold predictions (the
paper's per-model reading, optimistic); ``"fixed"`` a named layer (``layer=NAME``; giving
``layer`` alone implies ``fixed``). The option is part of each row's key, so rows of different
rules never mix.

Detail: ``layer_selection``; ``layer`` (the chosen layer; for nested, the one chosen in most
folds) and, for nested, ``fold_layers`` (the layer of each outer fold); ``per_layer`` (mean r of
every layer over its own out-of-fold predictions); per region (fMRI) or per time point (MEG),
``per_region`` / ``per_time`` (means at the headline layer choice), ``per_region_layer`` /
``per_time_layer`` (region → layer → mean r), ``per_region_own_layer`` / ``per_time_own_layer``
(each region's mean r at its *own* layer, chosen by the same rule on its units: per fold for
nested, the argmax of its row for best) and ``region_layers`` / ``time_layers`` (that layer: a
name, or for nested the list per fold); and, when the dataset gives a noise ceiling, the
*ceiled* score = mean r / mean ceiling, labelled as such. Across subjects: mean ± SEM.

Chance level (``n_permutations`` > 0, default 0 because it multiplies the cost): at the
chosen layer (for nested: the layer chosen in most folds, an approximation, since the null does
not repeat the per-fold choice), the rows of the responses are shuffled ``n_permutations`` times
and the out-of-fold r recomputed with the same folds and alphas (``cv_permutation_null``); the
p-value of each region's (or time point's) mean r, and of the overall mean, is
(1 + #null ≥ observed) / (1 + n_permutations).

Maps: ``maps_dir`` (a folder) writes each subject's per-unit r at the chosen layer as an
image in the subject's space through the dataset (NSD: a NIfTI,
``<dataset>_<subject>_<layer>_r.nii.gz``, ``<layer>`` = ``nested`` for the nested rule; units dropped as NaN/constant are NaN);
``detail["map"]`` names the file.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import brainbench
from brainbench.core.contract.data import Dataset, Responses
from brainbench.core.errors import BrainbenchError
from brainbench.core.contract.metric import Metric, Score
from brainbench.core.contract.options import RIDGE_OPTIONS, Choice, PathOption, Text
from brainbench.core.compute.ridge import cv_permutation_null, cv_predict
from brainbench.core.compute.stats import pearson, sem
from brainbench.plugins.metrics.layer_selection import (LAYER_SELECTIONS, NestedSelection, average_layer_tables,
                                                        modal_layer, outer_splits)

#: the paper's grid: 10 values log-spaced over 1e0…1e8
PAPER_ALPHAS = [float(a) for a in np.logspace(0, 8, 10)]
#: unit labels whose groups get per-group tables (fMRI regions, MEG time points)
GROUP_LABELS = ("region", "time")


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
        "layer_selection": "nested",
        "layer": None,
        "n_permutations": 0,
        "seed": 0,
        "maps_dir": None,
    }
    output_options = ("maps_dir",)
    option_types = {**RIDGE_OPTIONS, "layer_selection": Choice(*LAYER_SELECTIONS),
                    "layer": Text(nullable=True, help="a layer name (layer_selection=fixed)"),
                    "maps_dir": PathOption(help="folder to write per-unit maps to")}

    def __init__(self, **options):
        super().__init__(**options)
        rule, layer = self.options["layer_selection"], self.options["layer"]
        if layer == "best":  # the former spelling of layer_selection=best
            layer, rule = None, options.get("layer_selection", "best")
        elif layer is not None and "layer_selection" not in options:
            rule = "fixed"
        if rule not in LAYER_SELECTIONS:
            raise BrainbenchError(f"metric {self.name!r} option layer_selection={rule!r} is not one of "
                                  f"{', '.join(LAYER_SELECTIONS)}")
        if rule == "fixed" and not layer:
            raise BrainbenchError(f"metric {self.name!r} option layer_selection=fixed needs layer=NAME")
        if rule != "fixed" and layer:
            raise BrainbenchError(f"metric {self.name!r} option layer={layer!r} fixes the layer, which goes with "
                                  f"layer_selection=fixed, not {rule}")
        self.options.update(layer_selection=rule, layer=layer)

    def unit_scores(self, features: dict[str, np.ndarray], responses: Responses) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Per layer, Pearson r of every usable unit; and the usable-unit mask."""
        per_layer, keep, _ = self.fit_layers(features, responses)
        return per_layer, keep

    def fit_layers(self, features: dict[str, np.ndarray], responses: Responses, nested: bool = False):
        """Cross-validated ridge of every layer.

        Returns
        -------
        per_layer : layer → (n_usable_units,) Pearson r of the out-of-fold predictions
        keep : (n_units,) bool, the usable units
        selection : :class:`NestedSelection` fed with every layer (grouped by region or time), or None
        """
        keep = usable_units(responses.data)
        if not keep.any():
            raise BrainbenchError(f"every unit of subject {responses.subject} is NaN or constant; nothing to score")
        Y = responses.data[:, keep]
        selection = None
        if nested:
            label = next((g for g in GROUP_LABELS if g in responses.units), None)
            groups = responses.units[label][keep] if label else None
            selection = NestedSelection(Y, outer_splits(len(Y), self.options["folds"]), groups)
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
            if selection is not None:
                selection.add(layer, result.predictions, result.errors)
        return per_layer, keep, selection

    def score(self, features: dict[str, np.ndarray], responses: Responses, dataset: Dataset) -> Score:
        rule = self.options["layer_selection"]
        if rule == "fixed":
            wanted = self.options["layer"]
            if wanted not in features:
                raise BrainbenchError(f"no layer {wanted!r}; layers: {', '.join(features)}")
            features = {wanted: features[wanted]}
        per_layer, keep, nested = self.fit_layers(features, responses, nested=rule == "nested")
        order = list(per_layer)
        means = {layer: float(np.nanmean(r)) for layer, r in per_layer.items()}
        detail = {"layer_selection": rule}
        if nested is not None:
            Y = responses.data[:, keep]
            r = pearson(Y, nested.overall)
            value = float(np.nanmean(r))
            layer = modal_layer(nested.fold_layers(), order)
            detail.update(layer=layer, fold_layers=nested.fold_layers())
        else:
            layer = max(means, key=lambda k: -np.inf if np.isnan(means[k]) else means[k])
            r, value = per_layer[layer], means[layer]
            detail["layer"] = layer
        detail.update(per_layer=means, n_dropped=int((~keep).sum()))
        if "region" in responses.units:  # a region every unit of which was dropped is said, not just absent
            kept = set(responses.units["region"][keep].tolist())
            lost = [str(g) for g in dict.fromkeys(responses.units["region"].tolist()) if g not in kept]
            if lost:
                detail["regions_without_usable_units"] = lost
        for label, values in responses.units.items():
            if label in GROUP_LABELS:
                detail.update(self._group_tables(label, values[keep], r, per_layer, nested))
        if self.options["maps_dir"]:
            values = np.full(responses.n_units, np.nan)
            values[keep] = r
            tag = "nested" if rule == "nested" else layer
            path = Path(self.options["maps_dir"]).expanduser() / f"{dataset.name}_{responses.subject}_{tag}_r.nii.gz"
            path.parent.mkdir(parents=True, exist_ok=True)
            detail["map"] = dataset.write_unit_map(responses.subject, values, responses.units, path)
        if self.options["n_permutations"] > 0:
            detail.update(self.permutation_p_values(features[layer], responses, keep, r))
        if responses.noise_ceiling is not None:
            ceiling = float(np.nanmean(responses.noise_ceiling[keep]))
            detail["noise_ceiling"] = ceiling
            detail["ceiled_score"] = value / ceiling if ceiling > 0 else None
            if "region" in responses.units:
                detail["per_region_noise_ceiling"] = group_means(responses.noise_ceiling[keep],
                                                                 responses.units["region"][keep])
        return Score(value=value, error=sem(r), n_units=int(keep.sum()), detail=detail)

    def _group_tables(self, label: str, labels: np.ndarray, r: np.ndarray, per_layer: dict[str, np.ndarray],
                      nested: NestedSelection | None) -> dict:
        """Per region (time point): mean r at the headline choice, at every layer, and at its own layer."""
        by_layer = {layer: group_means(values, labels) for layer, values in per_layer.items()}
        groups = list(dict.fromkeys(str(g) for g in labels.tolist()))
        table = {g: {layer: by_layer[layer][g] for layer in per_layer} for g in groups}
        if nested is not None and nested.labels:
            own = group_means(pearson(nested.Y, nested.grouped), labels)
            chosen = {g: nested.fold_layers(g) for g in groups}
        else:
            chosen = {g: _argmax(row) for g, row in table.items()}
            own = {g: table[g][chosen[g]] if chosen[g] else float("nan") for g in groups}
        return {f"per_{label}": group_means(r, labels), f"per_{label}_layer": table,
                f"per_{label}_own_layer": own, f"{label}_layers": chosen}

    def aggregate(self, scores: dict[str, Score]) -> Score:
        """Mean ± SEM across subjects, the per-region (time) × layer tables averaged, with the chosen
        layer, noise ceiling and ceiled score of the aggregate.

        ``layer``: the layer most subjects chose (ties: the higher mean r across subjects), and
        ``subject_layers`` every subject's; ``noise_ceiling``: the subjects' mean ceiling;
        ``ceiled_score``: the mean of the subjects' ceiled scores (absent without a ceiling).
        """
        total = average_layer_tables(super().aggregate(scores), scores)
        chosen = {subject: s.detail.get("layer") for subject, s in scores.items()}
        per_layer = total.detail.get("per_layer", {})
        votes = [layer for layer in chosen.values() if isinstance(layer, str)]
        if votes:
            total.detail["layer"] = max(dict.fromkeys(votes), key=lambda l: (votes.count(l), per_layer.get(l, -np.inf)))
            total.detail["subject_layers"] = chosen
        for key in ("noise_ceiling", "ceiled_score"):
            values = [s.detail.get(key) for s in scores.values()]
            values = [v for v in values if isinstance(v, (int, float)) and np.isfinite(v)]
            if values:
                total.detail[key] = float(np.mean(values))
        return total

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


def _argmax(row: dict[str, float]) -> str | None:
    finite = {k: v for k, v in row.items() if np.isfinite(v)}
    return max(finite, key=finite.get) if finite else None


@brainbench.hookimpl(trylast=True)
def register_metrics(register):
    register("encoding", Encoding,
             description="Cross-validated ridge encoding: mean Pearson r of predicted vs held-out responses",
             modality="fmri, meg", options=list(Encoding.defaults))
