"""Score models × datasets × metrics and store the results.

Each model is built once; each dataset once; activations are extracted (or read from
the cache) once per (model, dataset) and shared by every metric. Rows are saved as
soon as they are computed, so an interrupted run keeps everything it finished, and a
re-run updates rows in place.
"""
from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import brainbench
from .activations import extract
from .config import Config
from .errors import BrainbenchError
from .metric import Score
from .registry import ModelRef, get_registry
from .results import AGGREGATE_SUBJECT, ResultRow, ResultStore, canonical_options


@dataclass
class RunOptions:
    """Everything ``bench run`` can set besides the names."""

    subjects: list[str] | None = None
    pooling: str = "mean"
    device: str = "auto"
    batch_size: int = 32
    model_options: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    metric_options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True


def _pick_subjects(dataset, wanted: list[str] | None) -> list[str]:
    available = list(dataset.subjects)
    if not wanted:
        return available
    for subject in wanted:
        if subject not in available:
            close = difflib.get_close_matches(subject, available, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; its subjects: {', '.join(available)}"
            raise BrainbenchError(f"dataset {dataset.name!r} has no subject {subject!r}{hint}")
    return list(wanted)


def run(
    models: Iterable[str],
    datasets: Iterable[str],
    metrics: Iterable[str],
    *,
    store: ResultStore,
    config: Config,
    options: RunOptions | None = None,
    echo: Callable[[str], None] = lambda message: None,
) -> list[ResultRow]:
    """Score every combination; returns the rows saved (per subject and aggregate)."""
    options = options or RunOptions()
    registry = get_registry()
    refs = [ModelRef.parse(m) for m in models]
    model_specs = [registry.model(ref.name) for ref in refs]
    dataset_specs = [registry.dataset(name) for name in datasets]
    metric_specs = [registry.metric(name) for name in metrics]
    metric_objects = [spec.factory(**options.metric_options) for spec in metric_specs]
    built_datasets = {spec.name: spec.factory(**options.dataset_options) for spec in dataset_specs}
    for dataset in built_datasets.values():
        for metric in metric_objects:
            metric.check_dataset(dataset)

    saved: list[ResultRow] = []
    for ref, model_spec in zip(refs, model_specs):
        model = model_spec.factory(ref.checkpoint, **options.model_options)
        for dataset_spec in dataset_specs:
            dataset = built_datasets[dataset_spec.name]
            subjects = _pick_subjects(dataset, options.subjects)
            started = time.perf_counter()
            activations = extract(model, dataset.stimuli, pooling=options.pooling, device=options.device,
                                  batch_size=options.batch_size, cache_dir=config.cache_dir,
                                  progress=options.progress)
            how = "reused cached activations" if activations.from_cache else (
                f"extracted activations in {time.perf_counter() - started:.1f} s")
            echo(f"{model.name}@{model.checkpoint} × {dataset.name}: {how} "
                 f"({len(activations.layers)} layers × {len(dataset.stimuli)} stimuli, pooling={options.pooling})")
            for metric_spec, metric in zip(metric_specs, metric_objects):
                context = dict(model=model.name, checkpoint=model.checkpoint, dataset=dataset.name,
                               metric=metric_spec.name, data_hash=dataset.fingerprint(),
                               activations_key=activations.key,
                               options=canonical_options({
                                   "metric": metric.options, "pooling": options.pooling,
                                   "model": options.model_options, "dataset": options.dataset_options}),
                               plugin_versions={s.plugin: s.source for s in (model_spec, dataset_spec, metric_spec)},
                               seed=int(options.model_options.get("seed", 0)))
                scores: dict[str, Score] = {}
                metric_started = time.perf_counter()
                for subject in subjects:
                    subject_started = time.perf_counter()
                    responses = dataset.responses(subject)
                    features = {layer: values[responses.stimulus_index]
                                for layer, values in activations.layers.items()}
                    scores[subject] = metric.score(features, responses, dataset)
                    saved.append(_save(store, context, subject, scores[subject], time.perf_counter() - subject_started))
                total = metric.aggregate(scores)
                saved.append(_save(store, context, AGGREGATE_SUBJECT, total, time.perf_counter() - metric_started))
    return saved


def _save(store: ResultStore, context: dict, subject: str, score: Score, elapsed: float) -> ResultRow:
    row = ResultRow(subject=subject, score=float(score.value), error=float(score.error), n_units=score.n_units,
                    detail=score.detail, brainbench_version=brainbench.__version__, elapsed_s=elapsed, **context)
    store.save(row)
    return row
