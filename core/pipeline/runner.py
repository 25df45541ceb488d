"""Score models × datasets × metrics and store the results.

Each model is built once; each dataset once; activations are extracted (or read from
the cache) once per (model, dataset) and shared by every metric. Rows are saved as
soon as they are computed, so an interrupted run keeps everything it finished, and a
re-run updates rows in place.

**Trajectories.** ``NAME@all`` (or ``RunOptions.checkpoints``: ``all``, ``first,last``,
``step-1000,step-5000``… for models given without ``@``) expands into the model's checkpoint
series in step order (:mod:`brainbench.core.contract.checkpoints`; step 0 is ``init``). Every checkpoint
is scored like any model, but a checkpoint's rows that are already stored — same key, same
activation cache key (so the same weights file), same data hash — are reused instead of
recomputed, unless ``RunOptions.force``. A *trajectory metric* (a metric class with
``trajectory = True``, such as ``halftime``) is then computed from the stored per-checkpoint
rows of its base metrics (``score_trajectory``) and saved as rows whose checkpoint is ``all``
(or the selection given). With a trajectory metric, ``--set metric.X=V`` goes to every metric
involved that has option X (and must fit at least one), and the base metrics' rows are stored
but not returned.

The rows are made by :mod:`brainbench.core.pipeline.scoring`, whose one scoring loop
(:func:`~brainbench.core.pipeline.scoring.score_metric`) ``bench grid``'s workers use too, so both
commands store identical rows under identical keys.
"""
from __future__ import annotations

import difflib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from .activations import extract
from ..config import Config
from ..errors import BrainbenchError
from ..registry.guards import build
from ..registry.specs import ModelRef, get_registry
from ..store.results import ResultRow, ResultStore
from ..contract.data import require_files
from .stimuli_checks import checked_stimuli
from .scoring import result_context, score_metric
from .trajectories import TrajectoryScores, expand_models, is_trajectory_metric, plan_metrics, stored_rows


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
    #: ``--layers``: names and globs of layers or submodules, comma-separated (None: the model's layers)
    layers: str | None = None


def _pick_subjects(dataset, wanted: list[str] | None) -> list[str]:
    available = list(dataset.subjects)
    if not wanted or (list(wanted) == ["all"] and "all" not in available):  # "all", as bench results spells it
        return available
    for subject in wanted:
        if subject not in available:
            close = difflib.get_close_matches(subject, available, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; its subjects: {', '.join(available)}"
            raise BrainbenchError(f"dataset {dataset.name!r} has no subject {subject!r}{hint}")
    return list(wanted)


def default_datasets(metrics: Iterable[str]) -> list[str] | None:
    """Datasets to use when none are named: both synthetic ones for a trajectory metric (temporal needs MEG)."""
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
    options = options or RunOptions()
    registry = get_registry()
    refs = [ModelRef.parse(m) for m in models]
    model_specs = [registry.model(ref.name) for ref in refs]
    dataset_specs = [registry.dataset(name) for name in datasets]
    plan = plan_metrics([registry.metric(name) for name in metrics], options.metric_options)
    # models before datasets: building one loads nothing yet, and missing weights fail at once — unless a
    # dataset is asked to train its reference first (make_reference), which may create the series
    build_datasets = lambda: {spec.name: build(spec, **options.dataset_options) for spec in dataset_specs}  # noqa: E731
    built_datasets = build_datasets() if options.dataset_options.get("make_reference") else None
    jobs = expand_models(refs, model_specs, options, needs_series=bool(plan.trajectory))
    if options.layers is None:  # a --layers selection renames the layers; extract() checks it
        plan.check_layers([job.model for job in jobs])
    if built_datasets is None:
        built_datasets = build_datasets()
    applicable = plan.check_datasets(built_datasets, echo)
    for dataset in built_datasets.values():  # every file a run reads, before the expensive extraction
        require_files(dataset)
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
    activations = extract(model, checked_stimuli(dataset), pooling=options.pooling, device=options.device,
                          batch_size=options.batch_size, cache_dir=config.cache_dir,
                          progress=options.progress, precision=options.precision, layers=options.layers)
    how = "reused cached activations" if activations.from_cache else (
        f"extracted activations in {time.perf_counter() - started:.1f} s")
    echo(f"{model.name}@{model.checkpoint} × {dataset.name}: {how} "
         f"({len(activations.layers)} layers × {len(dataset.stimuli)} stimuli, pooling={options.pooling})")
    out: dict[str, list[ResultRow]] = {}
    for metric_spec, metric in metrics:
        context = result_context(model, dataset, metric, activations.key, options.pooling,
                                 options.model_options, options.dataset_options,
                                 (model_spec, dataset_spec, metric_spec), options.precision, layers=options.layers)
        rows = out.setdefault(metric_spec.name, [])
        for outcome in score_metric((metric, metric_spec), (dataset, dataset_spec), activations, context, subjects):
            if outcome.state == "failed":  # bench run stops at the first error
                raise outcome.error if isinstance(outcome.error, BaseException) else BrainbenchError(outcome.error)
            if outcome.state == "done":
                for line in outcome.warnings:
                    echo(f"warning: {model.name}@{model.checkpoint} × {dataset.name} × {metric_spec.name} × "
                         f"{outcome.subject}: {line}")
                store.save(outcome.row)
                rows.append(outcome.row)
    return out
