"""Which layer a score is read at: ``layer_selection`` = nested | best | fixed.

- ``best``: the layer whose out-of-fold predictions give the highest mean r (the paper's reading
  of its per-model summaries). The same predictions choose the layer and score it, so the score
  is optimistically biased (more so with many layers and few stimuli).
- ``nested``: in every outer fold, the layer is chosen on that fold's *training part only*, from
  the alpha-selection errors the ridge engine already computes for every layer
  (:attr:`brainbench.core.compute.ridge.CVResult.errors`: leave-one-out, GCV or inner K-fold); the
  fold's held-out stimuli are then predicted by that layer. No extra fit: the layers' out-of-fold
  predictions are computed anyway, and nested only picks, per fold, whose rows to keep.
- ``fixed``: one named layer (``layer=NAME``).

The nested criterion of a group of units (all units, or a region's, or a time point's) in a fold
is the mean over its units of the chosen-alpha error divided by the unit's variance on that
fold's training part (1 − leave-one-out R²): a scale-free error, so that noisy high-variance
units do not outvote the others, lowest wins, ties to the earlier layer.
"""
from __future__ import annotations

from collections import Counter

import numpy as np

from brainbench.core.errors import BrainbenchError

LAYER_SELECTIONS = ("nested", "best", "fixed")


def outer_splits(n_samples: int, folds) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) index arrays of the engine's outer folds for an int ``folds`` (contiguous KFold)."""
    if not isinstance(folds, (int, np.integer)) or isinstance(folds, bool):
        raise BrainbenchError(f"metric option folds must be an integer number of folds, got {folds!r}")
    from sklearn.model_selection import KFold  # 0.9 s to import: not at `bench list`

    return [(tr, te) for tr, te in KFold(int(folds)).split(np.arange(n_samples))]


def training_variances(Y: np.ndarray, splits) -> np.ndarray:
    """Variance of every unit on each fold's training part, shape (n_folds, n_units); NaN where 0."""
    var = np.stack([Y[tr].var(axis=0) for tr, _ in splits])
    var[var <= 0] = np.nan
    return var


class NestedSelection:
    """Streams the layers one at a time and keeps, per outer fold and per group of units, the
    held-out predictions of the layer with the lowest training-part error.

    Memory: two (n_stimuli, n_units) arrays (the whole-set choice and the per-group choices,
    whose groups partition the units), whatever the number of layers.

    Parameters
    ----------
    Y : (n_stimuli, n_units) responses of the usable units
    splits : outer (train, test) index arrays, as the engine used them
    groups : (n_units,) label of every unit (region or time point), or None for none
    """

    def __init__(self, Y: np.ndarray, splits, groups: np.ndarray | None = None):
        self.Y, self.splits = Y, splits
        self.var = training_variances(Y, splits)
        self.overall = np.full(Y.shape, np.nan)
        self.labels = [] if groups is None else [str(g) for g in dict.fromkeys(groups.tolist())]
        names = None if groups is None else np.asarray(groups).astype(str)
        self.columns = {None: slice(None), **{g: np.flatnonzero(names == g) for g in self.labels}}
        self.grouped = np.full(Y.shape, np.nan) if self.labels else None
        n_folds = len(splits)
        self.best_error = {key: np.full(n_folds, np.inf) for key in [None, *self.labels]}
        self.chosen: dict = {key: [None] * n_folds for key in [None, *self.labels]}

    def add(self, layer: str, predictions: np.ndarray, errors: np.ndarray) -> None:
        """One layer's out-of-fold ``predictions`` (n_stimuli, n_units) and ``errors`` (n_folds, n_units)."""
        relative = errors / self.var
        for f, (_, test) in enumerate(self.splits):
            for key, columns in self.columns.items():
                values = relative[f, columns]
                error = float(np.nanmean(values)) if np.isfinite(values).any() else np.inf
                if error < self.best_error[key][f]:
                    self.best_error[key][f] = error
                    self.chosen[key][f] = layer
                    if key is None:
                        self.overall[test] = predictions[test]
                    else:
                        block = np.ix_(test, columns)
                        self.grouped[block] = predictions[block]

    def fold_layers(self, group: str | None = None) -> list[str | None]:
        """The layer chosen in each fold, for all units (``group=None``) or one group."""
        return list(self.chosen[group])


def modal_layer(fold_layers: list[str | None], order: list[str]) -> str | None:
    """The layer chosen in most folds (ties: the earlier layer in ``order``)."""
    counts = Counter(l for l in fold_layers if l is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(l for l in order if counts.get(l) == top)


def average_layer_tables(total, scores: dict):
    """Add to an aggregate :class:`Score` the subjects' mean of every group × layer table
    (``per_region_layer``, ``per_time_layer``: group → layer → value) and their ``layer_selection``."""
    details = [s.detail for s in scores.values()]
    for key, table in details[0].items():
        if key.endswith("_layer") and isinstance(table, dict) and table \
                and all(isinstance(v, dict) for v in table.values()):
            total.detail[key] = {g: {l: _nanmean([d.get(key, {}).get(g, {}).get(l, np.nan) for d in details])
                                     for l in row} for g, row in table.items()}
    total.detail["layer_selection"] = details[0].get("layer_selection")
    return total


def _nanmean(values) -> float:
    v = np.asarray([np.nan if x is None else x for x in values], dtype=np.float64)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")
