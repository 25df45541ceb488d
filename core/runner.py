"""Score models × datasets × metrics and store the results.

Each model is built once; each dataset once; activations are extracted (or read from
the cache) once per (model, dataset) and shared by every metric. Rows are saved as
soon as they are computed, so an interrupted run keeps everything it finished, and a
re-run updates rows in place.

**Trajectories.** ``NAME@all`` (or ``RunOptions.checkpoints``: ``all``, ``first,last``,
``step-1000,step-5000``… for models given without ``@``) expands into the model's checkpoint
series in step order (:mod:`brainbench.core.trajectory`; step 0 is ``init``). Every checkpoint
is scored like any model, but a checkpoint's rows that are already stored — same key, same
activation cache key (so the same weights file), same data hash — are reused instead of
recomputed, unless ``RunOptions.force``. A *trajectory metric* (a metric class with
``trajectory = True``, such as ``halftime``) is then computed from the stored per-checkpoint
rows of its base metrics (``score_trajectory``) and saved as rows whose checkpoint is ``all``
(or the selection given). With a trajectory metric, ``--set metric.X=V`` goes to every metric
involved that has option X (and must fit at least one), and the base metrics' rows are stored
but not returned.

:func:`row_options`, :func:`result_context` and :func:`score_row` make the rows; ``bench grid``
(:mod:`brainbench.core.grid`) uses them too, so both commands store identical rows under
identical keys.
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
from .benchmarks import current_version
from .guards import build, expect_responses, expect_score
from .layer_store import RowsOf
from .provenance import scoring_provenance
from .metric import Score
from .registry import ModelRef, Spec, get_registry
from .results import AGGREGATE_SUBJECT, ResultRow, ResultStore, canonical_options


@dataclass
class RunOptions:
    """Everything ``bench run`` can set besides the names."""

    subjects: list[str] | None = None
    pooling: str = "mean"
    device: str = "auto"
    batch_size: int | str = 32
    precision: str | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    dataset_options: dict[str, Any] = field(default_factory=dict)
    metric_options: dict[str, Any] = field(default_factory=dict)
    progress: bool = True
    #: checkpoint selection for models given without ``@`` (or with ``@all``): ``all``, ``first,last``, …
    checkpoints: str | None = None
    #: recompute a trajectory's per-checkpoint rows even when they are stored
    force: bool = False


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


def default_datasets(metrics: Iterable[str]) -> list[str] | None:
    """Datasets to use when none are named: both synthetic ones for a trajectory metric (temporal needs MEG)."""
    from .trajectory_run import is_trajectory_metric

    registry = get_registry()
    if any(is_trajectory_metric(registry.metric(name)) for name in metrics):
        return ["synthetic-fmri", "synthetic-meg"]
    return None


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
    """Score every combination; returns the rows saved (per subject and aggregate).

    Checkpoint series (``NAME@all``) are expanded and their half-times (or any trajectory metric)
    computed after every checkpoint is scored; see the module docstring.
    """
    from .trajectory_run import TrajectoryScores, expand_models, plan_metrics, stored_rows

    options = options or RunOptions()
    registry = get_registry()
    refs = [ModelRef.parse(m) for m in models]
    model_specs = [registry.model(ref.name) for ref in refs]
    dataset_specs = [registry.dataset(name) for name in datasets]
    plan = plan_metrics([registry.metric(name) for name in metrics], options.metric_options)
    # models before datasets: building one loads nothing yet, and missing weights fail at once
    jobs = expand_models(refs, model_specs, options, needs_series=bool(plan.trajectory))
    built_datasets = {spec.name: build(spec, **options.dataset_options) for spec in dataset_specs}
    applicable = plan.check_datasets(built_datasets, echo)
    trajectories = TrajectoryScores(plan, options)

    saved: list[ResultRow] = []
    for job in jobs:
        model, model_spec = job.model, job.spec
        for dataset_spec in dataset_specs:
            dataset = built_datasets[dataset_spec.name]
            subjects = _pick_subjects(dataset, options.subjects)
            wanted = applicable[dataset.name] if job.series is not None else plan.returned
            rows: dict[str, list[ResultRow]] = {}
            if job.series is not None and not options.force:
                rows = stored_rows(store, model, dataset, wanted, subjects, options)
                if rows:
                    echo(f"{model.name}@{model.checkpoint} × {dataset.name}: reused the stored rows of "
                         f"{', '.join(rows)} (use --force to recompute)")
            todo = [(spec, metric) for spec, metric in wanted if spec.name not in rows]
            if todo:
                rows.update(_score(model, model_spec, dataset, dataset_spec, todo, subjects, store, config, options,
                                   echo))
            saved += [row for spec, _ in wanted if spec.name in plan.returned_names for row in rows[spec.name]]
            if job.series is not None:
                trajectories.add(job, dataset, rows, dataset_spec)
    for rows in trajectories.score(store, built_datasets, echo):
        saved += rows
    return saved


def _score(model, model_spec, dataset, dataset_spec, metrics, subjects, store, config, options, echo):
    """Extract (or read cached) activations and score ``metrics``: metric name → the rows saved."""
    started = time.perf_counter()
    activations = extract(model, dataset.stimuli, pooling=options.pooling, device=options.device,
                          batch_size=options.batch_size, cache_dir=config.cache_dir,
                          progress=options.progress, precision=options.precision)
    how = "reused cached activations" if activations.from_cache else (
        f"extracted activations in {time.perf_counter() - started:.1f} s")
    echo(f"{model.name}@{model.checkpoint} × {dataset.name}: {how} "
         f"({len(activations.layers)} layers × {len(dataset.stimuli)} stimuli, pooling={options.pooling})")
    out: dict[str, list[ResultRow]] = {}
    for metric_spec, metric in metrics:
        context = result_context(model, dataset, metric, activations.key, options.pooling,
                                 options.model_options, options.dataset_options,
                                 (model_spec, dataset_spec, metric_spec), options.precision)
        scores: dict[str, Score] = {}
        rows = out.setdefault(metric_spec.name, [])
        metric_started = time.perf_counter()
        for subject in subjects:
            subject_started = time.perf_counter()
            scores[subject] = score_subject(metric, metric_spec, dataset, dataset_spec, activations, subject)
            rows.append(_save(store, context, subject, scores[subject], time.perf_counter() - subject_started))
        total = expect_score(metric.aggregate(scores), metric_spec, "aggregate()")
        rows.append(_save(store, context, AGGREGATE_SUBJECT, total, time.perf_counter() - metric_started))
    return out


def score_subject(metric, metric_spec: Spec, dataset, dataset_spec: Spec, activations, subject: str) -> Score:
    """One subject's score: its responses, the activations of its stimuli, the metric — each checked."""
    responses = expect_responses(dataset.responses(subject), dataset_spec, subject, len(dataset.stimuli))
    # lazy: a layer's rows are read (from its memory-mapped file) when the metric reaches it
    features = RowsOf(activations.layers, responses.stimulus_index)
    return expect_score(metric.score(features, responses, dataset), metric_spec)


def row_options(metric, pooling: str, model_options: dict, dataset_options: dict, precision: str | None = None) -> str:
    """The canonical ``options`` of a row: every metric option, the pooling, and the plugin options given.

    A ``--precision`` other than fp32 is added as ``precision`` (absent otherwise, so that fp32
    rows keep the keys they always had).
    """
    options = {"metric": metric.scoring_options(), "pooling": pooling, "model": model_options, "dataset": dataset_options}
    if precision not in (None, "fp32"):
        options["precision"] = precision
    return canonical_options(options)


def result_context(model, dataset, metric, activations_key: str, pooling: str, model_options: dict,
                   dataset_options: dict, specs: tuple, precision: str | None = None) -> dict[str, Any]:
    """The fields shared by every row of one (model, dataset, metric): key fields and provenance.

    Parameters
    ----------
    model, dataset, metric
        The built plugin objects (a ``VisionModel``, a ``Dataset``, a ``Metric``).
    activations_key
        The activation cache key the scores were computed from.
    pooling, model_options, dataset_options, precision
        What enters the row's ``options`` besides the metric's own options (see :func:`row_options`).
    specs
        The registry specs of the model, dataset and metric (their plugins' versions are recorded).
    """
    data_hash = dataset.fingerprint()
    return dict(model=model.name, checkpoint=model.checkpoint, dataset=dataset.name, metric=specs[2].name,
                data_hash=data_hash, activations_key=activations_key,
                options=row_options(metric, pooling, model_options, dataset_options, precision),
                plugin_versions={s.plugin: s.source for s in specs},
                seed=int(model_options.get("seed", 0)),
                benchmark_version=current_version(specs[1].name, specs[2].name),
                provenance=scoring_provenance(dataset, data_hash))


def score_row(context: dict, subject: str, score: Score, elapsed: float) -> ResultRow:
    """The :class:`ResultRow` of one subject's (or the aggregate's) score."""
    return ResultRow(subject=subject, score=float(score.value), error=float(score.error), n_units=score.n_units,
                     detail=score.detail, brainbench_version=brainbench.__version__, elapsed_s=elapsed, **context)


def _save(store: ResultStore, context: dict, subject: str, score: Score, elapsed: float) -> ResultRow:
    row = score_row(context, subject, score, elapsed)
    store.save(row)
    return row
