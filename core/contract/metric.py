"""The contract a metric plugin's factory fulfils: :class:`Metric` returning a :class:`Score`."""
from __future__ import annotations

import abc
import difflib
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .data import Dataset, Responses
from ..errors import BrainbenchError
from ..compute.stats import sem


@dataclass
class Score:
    """A metric's result for one subject (or the aggregate over subjects).

    ``error`` is the SEM across units for one subject and across subjects for the
    aggregate; ``detail`` is JSON-able (per region / per layer / per time summaries).
    """

    value: float
    error: float = float("nan")
    n_units: int = 0
    detail: dict[str, Any] = field(default_factory=dict)


class Metric(abc.ABC):
    """Scores layer-wise activations against one subject's responses.

    Subclasses declare ``defaults`` (every option with its default value); the factory's
    keyword options are checked against it, so a typo is an error rather than ignored.
    """

    name: str = "metric"
    #: modalities this metric applies to
    modalities: tuple[str, ...] = ("fmri", "meg")
    defaults: Mapping[str, Any] = {}
    #: options that only say where to write extra outputs (files); they are not part of a result's key
    output_options: tuple[str, ...] = ()

    def __init__(self, **options: Any):
        unknown = [k for k in options if k not in self.defaults]
        if unknown:
            key = unknown[0]
            close = difflib.get_close_matches(key, self.defaults, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; options: {', '.join(self.defaults) or 'none'}"
            raise BrainbenchError(f"metric {self.name!r} has no option {key!r}{hint}")
        self.options: dict[str, Any] = {**self.defaults, **options}

    def scoring_options(self) -> dict[str, Any]:
        """The options that change the score (stored in each result's key)."""
        return {k: v for k, v in self.options.items() if k not in self.output_options}

    def check_dataset(self, dataset: Dataset) -> None:
        if dataset.modality not in self.modalities:
            raise BrainbenchError(
                f"metric {self.name!r} applies to {'/'.join(self.modalities)} data, "
                f"but dataset {dataset.name!r} is {dataset.modality}"
            )

    @abc.abstractmethod
    def score(self, features: dict[str, np.ndarray], responses: Responses, dataset: Dataset) -> Score:
        """Score one subject. ``features``: layer → (n_stimuli, n_features), rows aligned with ``responses.data``."""

    def aggregate(self, scores: dict[str, Score]) -> Score:
        """Combine per-subject scores: mean ± SEM across subjects; numeric detail tables averaged.

        Subjects whose score is NaN are left out of the mean, and said so: ``detail["n_subjects"]``
        counts the subjects used and ``detail["dropped_subjects"]`` names the others.
        """
        values = [s.value for s in scores.values()]
        detail: dict[str, Any] = {"subjects": {k: s.value for k, s in scores.items()}, **subjects_used(scores)}
        first = next(iter(scores.values())).detail
        for key, table in first.items():
            if isinstance(table, dict) and all(isinstance(v, (int, float)) for v in table.values()):
                keys = table.keys()
                detail[key] = {
                    k: _nanmean([s.detail.get(key, {}).get(k, math.nan) for s in scores.values()]) for k in keys
                }
        return Score(
            value=_nanmean(values),
            error=sem(values),
            n_units=sum(s.n_units for s in scores.values()),
            detail=detail,
        )


def _nanmean(values) -> float:
    v = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(v)) if np.isfinite(v).any() else float("nan")


def subjects_used(scores: Mapping[str, Score]) -> dict[str, Any]:
    """``n_subjects`` (subjects with a finite score) and ``dropped_subjects`` (subject → why left out)."""
    dropped = {k: "score is NaN" for k, s in scores.items() if not math.isfinite(s.value)}
    return {"n_subjects": len(scores) - len(dropped), "dropped_subjects": dropped}
