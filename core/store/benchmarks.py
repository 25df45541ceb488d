"""Benchmark definitions: what a score measures, and under which version of its scoring.

A *benchmark* is a dataset scored with a metric under given options. Its **id** is
``<dataset>/<metric>@<hash>``, where ``<hash>`` is the first 8 hex digits of the SHA-256 of the
canonical JSON of the options that define what is measured: the metric's options (all of
them, defaults included, as rows store them) and the dataset options given. How the model
was run (pooling, precision, model options) is part of a row's key but not of the benchmark.

Its **version** is an integer that is bumped whenever the scoring of a (dataset, metric)
changes in a way that changes scores (a new noise-ceiling rule, a different fold split, a
fixed bug). Scores of different versions are never compared: ``bench results import`` refuses
a file of another version, and the leaderboard shows each version in its own column. The
version of a (dataset, metric) is::

    BENCHMARK_VERSIONS.get((dataset, metric), 1)
        + (the dataset plugin's declared ``benchmark_version`` - 1)
        + (the metric plugin's declared ``benchmark_version`` - 1)

where a plugin declares ``benchmark_version=N`` (a positive integer, default 1) in the metadata
it registers. Bumping any of the three therefore bumps the benchmark version.

Scores are checked against the metric's range: the built-in metrics are correlations, in
[-1, 1]; a plugin metric may declare ``score_range=[LOW, HIGH]`` in its metadata.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from ..errors import BrainbenchError

#: (dataset, metric) → the version of the built-in scoring; absent pairs are at version 1.
#: Bump an entry (never lower it) when a change to brainbench changes that benchmark's scores.
BENCHMARK_VERSIONS: dict[tuple[str, str], int] = {
    ("nsd", "encoding"): 1,
    ("nsd", "spatial"): 1,
    ("things-meg", "encoding"): 1,
    ("things-meg", "temporal"): 2,  # 2: T_max from the contiguous window around the peak
    ("synthetic-fmri", "encoding"): 1,
    ("synthetic-fmri", "spatial"): 1,
    ("synthetic-meg", "encoding"): 1,
    ("synthetic-meg", "temporal"): 2,
}

#: metric → (lowest, highest) possible score of the built-in metrics (all are Pearson correlations)
SCORE_RANGES: dict[str, tuple[float, float]] = {
    "encoding": (-1.0, 1.0),
    "spatial": (-1.0, 1.0),
    "temporal": (-1.0, 1.0),
}


def defining_options(options: dict[str, Any]) -> dict[str, Any]:
    """The part of a row's options that defines the benchmark: the metric's and the dataset's options."""
    return {"dataset": options.get("dataset") or {}, "metric": options.get("metric") or {}}


def benchmark_id(dataset: str, metric: str, options: dict[str, Any] | str) -> str:
    """``<dataset>/<metric>@<8 hex digits>`` for a row's options (a dict, or its canonical JSON text).

    Only the ``metric`` and ``dataset`` options enter the hash (:func:`defining_options`), so
    rows pooled differently share the benchmark id of the options they were scored with.
    """
    if isinstance(options, str):
        options = json.loads(options)
    text = json.dumps(defining_options(options), sort_keys=True, separators=(",", ":"))
    return f"{dataset}/{metric}@{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def _declared(spec, what: str) -> int:
    value = spec.metadata.get(what, 1) if spec is not None else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BrainbenchError(f"{spec.kind[:-1]} {spec.name!r} declares benchmark_version={value!r}, "
                              "which should be a positive integer")
    return value


def _specs(dataset: str, metric: str, registry=None):
    if registry is None:
        from ..registry.specs import get_registry

        try:
            registry = get_registry()
        except BrainbenchError:  # e.g. two plugins claiming one name: fall back on the table
            return None, None
    return registry.specs["datasets"].get(dataset), registry.specs["metrics"].get(metric)


def current_version(dataset: str, metric: str, registry=None) -> int:
    """The version of ``(dataset, metric)`` that this installation scores (see the module docstring).

    Parameters
    ----------
    dataset, metric
        Registered (or not: unregistered names count as declaring version 1) names.
    registry
        Where the plugins' declarations come from; default: the plugins installed here.
    """
    dataset_spec, metric_spec = _specs(dataset, metric, registry)
    return (BENCHMARK_VERSIONS.get((dataset, metric), 1) + _declared(dataset_spec, "benchmark_version") - 1
            + _declared(metric_spec, "benchmark_version") - 1)


def score_range(metric: str, registry=None) -> tuple[float, float] | None:
    """The (lowest, highest) score ``metric`` can give, or None when it is not known here."""
    _, spec = _specs("", metric, registry)
    declared = spec.metadata.get("score_range") if spec is not None else None
    if (isinstance(declared, (list, tuple)) and len(declared) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in declared)):
        return float(declared[0]), float(declared[1])
    return SCORE_RANGES.get(metric)
