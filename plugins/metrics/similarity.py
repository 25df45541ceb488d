"""What the representational-similarity metrics (``rsa``, ``cka``) share: groups, layers, tables, ceiling.

A similarity metric compares, per layer and per *group* of response units, a representation of
the model (the layer's activations, (n_stimuli, n_features)) with one of the brain (the group's
responses, (n_stimuli, n_units_in_group)), without fitting anything. Groups are the fMRI regions
(``Responses.units["region"]``), or the MEG time points (``units["time"]``: the sensors at that
time), or all units together when the responses carry neither label.

Per subject the metric fills a layer × group table of similarities. Its score is the mean over
groups at the layer chosen by ``layer_selection``: ``"best"`` (default here: the layer with the
highest mean, the paper's reading of encoding, optimistic) or ``"fixed"`` (``layer=NAME``).
There is no ``"nested"`` rule for these metrics: nothing is fitted on training folds, so no
training-part error exists to choose a layer from.

The detail has the same tables as the encoding metric, so the half-time (per region / per
window) and the spatial / temporal summaries (option ``similarity``) read them alike:
``per_layer``, ``per_region`` / ``per_time`` (at the chosen layer), ``per_region_layer`` /
``per_time_layer`` (group → layer → similarity), ``per_region_own_layer`` / ``per_time_own_layer``
and ``region_layers`` / ``time_layers`` (each group at its own best layer).

Noise ceiling (``noise_ceiling="subjects"``, default; ``"none"`` skips it): from the other
subjects of the dataset, on the stimuli every subject saw (Nili et al. 2014, PLoS Comput Biol
10:e1003553): per group, the *lower* bound is the similarity of this subject's brain
representation with the mean of the other subjects' (leave-one-subject-out), the *upper* bound
with the mean of all subjects' including this one. Detail: ``noise_ceiling`` (mean lower bound),
``noise_ceiling_upper``, ``per_region_ceiling`` / ``per_time_ceiling`` ({group: [lower, upper]}),
``ceiled_score`` = score / mean lower bound (None when that bound is below ``MIN_CEILING`` = 0.05:
subjects that do not agree leave a ratio of noise). The aggregate averages the three. A ceiling from repeated presentations is not offered:
the dataset contract hands metrics responses averaged over repetitions.
"""
from __future__ import annotations

import abc
import math
from typing import Any

import numpy as np

from brainbench.core.contract.data import Dataset, Responses
from brainbench.core.errors import BrainbenchError
from brainbench.core.contract.metric import Metric, Score
from brainbench.core.contract.options import Choice, Text
from brainbench.core.compute.stats import sem
from brainbench.plugins.metrics.layer_selection import average_layer_tables

GROUP_LABELS = ("region", "time")
SELECTIONS = ("best", "fixed")
CEILINGS = ("subjects", "none")
#: fewest stimuli shared by every subject for a subject noise ceiling
MIN_SHARED_STIMULI = 5
#: lowest lower-bound ceiling a score is divided by
MIN_CEILING = 0.05


def unit_groups(responses: Responses) -> tuple[str | None, dict[str, np.ndarray]]:
    """The grouping label ("region", "time" or None) and group → column indices of finite, non-constant units."""
    data = responses.data
    keep = np.isfinite(data).all(axis=0)
    keep[keep] = data[:, keep].max(axis=0) > data[:, keep].min(axis=0)
    label = next((g for g in GROUP_LABELS if g in responses.units), None)
    if label is None:
        return None, {"all": np.flatnonzero(keep)}
    names = responses.units[label].astype(str)
    groups = {}
    for group in dict.fromkeys(names.tolist()):
        columns = np.flatnonzero((names == group) & keep)
        if len(columns):
            groups[group] = columns
    return label, groups


class SimilarityMetric(Metric, abc.ABC):
    """Per layer × group similarity of model and brain representations; see the module docstring."""

    defaults = {"layer_selection": "best", "layer": None, "noise_ceiling": "subjects"}
    option_types = {"layer_selection": Choice(*SELECTIONS),
                    "layer": Text(nullable=True, help="a layer name (layer_selection=fixed)"),
                    "noise_ceiling": Choice(*CEILINGS)}

    def __init__(self, **options: Any):
        super().__init__(**options)
        rule, layer = self.options["layer_selection"], self.options["layer"]
        if layer is not None and "layer_selection" not in options:
            rule = "fixed"
        if rule not in SELECTIONS:
            raise BrainbenchError(f"metric {self.name!r} option layer_selection={rule!r} is not one of "
                                  f"{', '.join(SELECTIONS)} (nested needs a fitted model, which {self.name} has not)")
        if (rule == "fixed") != (layer is not None):
            raise BrainbenchError(f"metric {self.name!r}: layer=NAME goes with layer_selection=fixed, and only with it")
        if self.options["noise_ceiling"] not in CEILINGS:
            raise BrainbenchError(f"metric {self.name!r} option noise_ceiling must be one of {', '.join(CEILINGS)}")
        self.options.update(layer_selection=rule, layer=layer)
        self._brain_cache: dict[tuple[int, str], tuple] = {}

    # -- what a concrete metric provides ---------------------------------------------------------
    @abc.abstractmethod
    def model_representation(self, X: np.ndarray):
        """The representation of one layer's activations (n_stimuli, n_features)."""

    @abc.abstractmethod
    def brain_representation(self, Y: np.ndarray):
        """The representation of one group's responses (n_stimuli, n_units)."""

    @abc.abstractmethod
    def compare(self, model: list, brain: list) -> np.ndarray:
        """Similarities, shape (len(model), len(brain)), of representations built on the same stimuli."""

    @abc.abstractmethod
    def mean_representation(self, representations: list):
        """The pooled representation of several subjects (for the noise ceiling)."""

    # -- the shared flow -------------------------------------------------------------------------
    def similarities(self, features: dict[str, np.ndarray], responses: Responses) -> tuple[str | None, dict[str, dict[str, float]]]:
        """The grouping label and the table group → layer → similarity."""
        label, groups = unit_groups(responses)
        if not groups:
            raise BrainbenchError(f"every unit of subject {responses.subject} is NaN or constant; nothing to score")
        n = responses.data.shape[0]
        if n < 4:
            raise BrainbenchError(f"metric {self.name!r} needs at least 4 stimuli, {responses.subject} has {n}")
        for layer, X in features.items():
            if X.shape[0] != n:
                raise BrainbenchError(f"layer {layer} has {X.shape[0]} stimuli but the responses have {n}")
        brain = [self.brain_representation(responses.data[:, cols]) for cols in groups.values()]
        model = [self.model_representation(np.asarray(X, np.float64)) for X in features.values()]
        values = self.compare(model, brain)  # (layers, groups)
        table = {g: {layer: float(values[i, j]) for i, layer in enumerate(features)} for j, g in enumerate(groups)}
        return label, table

    def score(self, features: dict[str, np.ndarray], responses: Responses, dataset: Dataset) -> Score:
        if self.options["layer_selection"] == "fixed":
            wanted = self.options["layer"]
            if wanted not in features:
                raise BrainbenchError(f"no layer {wanted!r}; layers: {', '.join(features)}")
            features = {wanted: features[wanted]}
        label, table = self.similarities(features, responses)
        layers = list(features)
        per_layer = {l: _nanmean([row[l] for row in table.values()]) for l in layers}
        layer = _argmax(per_layer) or layers[0]
        at_layer = {g: row[layer] for g, row in table.items()}
        own_layers = {g: _argmax(row) for g, row in table.items()}
        detail: dict[str, Any] = {"layer_selection": self.options["layer_selection"], "layer": layer,
                                  "per_layer": per_layer, "n_groups": len(table)}
        key = label or "group"
        detail.update({f"per_{key}": at_layer, f"per_{key}_layer": table,
                       f"per_{key}_own_layer": {g: (table[g][l] if l else math.nan) for g, l in own_layers.items()},
                       f"{key}_layers": own_layers})
        value = per_layer[layer]
        if self.options["noise_ceiling"] == "subjects" and dataset is not None:
            detail.update(self._subject_ceiling(responses, dataset, key, value))
        n_units = int(sum(len(c) for c in unit_groups(responses)[1].values()))
        return Score(value=value, error=sem(list(at_layer.values())), n_units=n_units, detail=detail)

    def aggregate(self, scores: dict[str, Score]) -> Score:
        """Mean ± SEM across subjects; the group × layer tables and the noise ceilings averaged."""
        total = average_layer_tables(super().aggregate(scores), scores)
        for key in ("noise_ceiling", "noise_ceiling_upper", "ceiled_score"):
            values = [s.detail.get(key) for s in scores.values()]
            if any(isinstance(v, (int, float)) for v in values):
                total.detail[key] = _nanmean([v if isinstance(v, (int, float)) else math.nan for v in values])
        return total

    # -- noise ceiling from the other subjects ---------------------------------------------------
    def _brain(self, dataset: Dataset, subject: str, responses: Responses | None = None):
        """(stimulus_index, group → columns, responses) of one subject, loaded once per metric instance."""
        key = (id(dataset), subject)
        if key not in self._brain_cache:
            responses = responses if responses is not None else dataset.responses(subject)
            self._brain_cache[key] = (responses.stimulus_index, unit_groups(responses)[1], responses.data)
        return self._brain_cache[key]

    def _subject_ceiling(self, responses: Responses, dataset: Dataset, key: str, value: float) -> dict:
        subjects = list(getattr(dataset, "subjects", []) or [])
        if responses.subject not in subjects or len(subjects) < 2:
            return {"noise_ceiling": None, "noise_ceiling_reason": "fewer than 2 subjects"}
        brains = {s: self._brain(dataset, s, responses if s == responses.subject else None) for s in subjects}
        shared = np.asarray(responses.stimulus_index)
        for index, _, _ in brains.values():
            shared = np.intersect1d(shared, index)
        if len(shared) < MIN_SHARED_STIMULI:
            return {"noise_ceiling": None, "noise_ceiling_reason": f"the subjects share {len(shared)} stimuli, "
                                                                   f"fewer than {MIN_SHARED_STIMULI}"}
        groups = [g for g in brains[responses.subject][1] if all(g in b[1] for b in brains.values())]
        bounds = {}
        for group in groups:
            reps = {}
            for s, (index, columns, data) in brains.items():
                rows = np.searchsorted(index, shared) if np.all(np.diff(index) > 0) else \
                    np.array([np.flatnonzero(index == i)[0] for i in shared])
                reps[s] = self.brain_representation(data[np.ix_(rows, columns[group])])
            mine = reps[responses.subject]
            others = [r for s, r in reps.items() if s != responses.subject]
            lower = float(self.compare([mine], [self.mean_representation(others)])[0, 0])
            upper = float(self.compare([mine], [self.mean_representation(list(reps.values()))])[0, 0])
            bounds[group] = [lower, upper]
        lower = _nanmean([b[0] for b in bounds.values()])
        upper = _nanmean([b[1] for b in bounds.values()])
        return {"noise_ceiling": lower, "noise_ceiling_upper": upper, f"per_{key}_ceiling": bounds,
                "n_shared_stimuli": int(len(shared)),
                "ceiled_score": value / lower if math.isfinite(lower) and lower >= MIN_CEILING else None}


#: the per-layer, per-group scores the spatial and temporal summaries can be built on
def _argmax(row: dict[str, float]) -> str | None:
    finite = {k: v for k, v in row.items() if math.isfinite(v)}
    return max(finite, key=finite.get) if finite else None


def _nanmean(values) -> float:
    v = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(v)) if np.isfinite(v).any() else math.nan
