"""Plan and run a grid: every selected model (and checkpoint) × dataset × subject × metric.

Planning (:func:`plan_grid`) resolves the selection against the registry, builds each model,
dataset and metric once to see whether it is available (a model whose weights are not on
disk, a dataset whose files are missing, options a plugin refuses: reported, then skipped),
drops the metric × dataset pairs that do not apply (``Metric.check_dataset``), and leaves out
every job whose row is already stored. What is left is cut into one
:class:`~brainbench.core.grid.executors.WorkUnit` per model and checkpoint, in a fixed order, so a
model is loaded once and its activations are extracted once per stimulus set (datasets that
show the same images share them).

Default selection: every registered model at every checkpoint it declares (its ``checkpoints``
metadata: ``init``, ``pretrained``, …) plus every checkpoint found on disk under
``<weights>/<model>/``; one that cannot be built (``pretrained`` without its weights on
disk, say) is reported as unavailable and skipped. ``--models 'dinov3-*@init'`` selects by
glob, name and checkpoint separately.

Running (:func:`run_plan`) feeds the units to an executor and stores each row as soon as it
arrives; a failed job is recorded in the ``failures`` table and the grid goes on. Rows are
keyed like every other result, so a re-run skips what is stored, an interrupted run (even
``kill -9``) loses only the jobs in flight, and nothing is ever stored twice.
"""
from __future__ import annotations

import fnmatch
import importlib.util
import os
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..config import SETTINGS, Config
from ..errors import BrainbenchError
from ..registry.guards import build
from ..contract.options import key_options
from ..registry.options import validate
from .executors import DatasetTask, Event, JobDone, JobFailed, JobKey, MetricTask, WorkUnit
from ..pipeline.run_checks import metrics_taking_options
from .series import base_metrics_for, expand_all, metric_build_options, plan_series, series_lines, settle
from ..registry.specs import get_registry
from ..store.results import AGGREGATE_SUBJECT, Failure, ResultRow, ResultStore
from .selection import (PluginOptions, candidate_checkpoints, checkpoint_sort_key, parse_sets, select,
                        select_models, split_patterns)

__all__ = ["GridRequest", "Plan", "PluginOptions", "candidate_checkpoints", "checkpoint_sort_key", "parse_sets",
           "plan_grid", "run_plan", "select", "select_models", "describe_plan", "summary_rows"]



@dataclass
class GridRequest:
    """What ``bench grid`` was asked for (globs; empty = everything registered)."""

    models: Sequence[str] = ()
    datasets: Sequence[str] = ()
    metrics: Sequence[str] = ()
    subjects: Sequence[str] = ()
    options: PluginOptions = field(default_factory=PluginOptions)
    pooling: str = "mean"
    batch_size: int | str = 32
    precision: str | None = None
    device: str = "auto"
    force: bool = False
    retry_failed: bool = True
    check_memory: bool = True


@dataclass
class ActivationSet:
    """Activations one model needs for one stimulus set (shared by the datasets listed)."""

    model: str
    datasets: list[str]
    n_stimuli: int
    key: str
    cached: bool
    cached_bytes: int = 0


@dataclass
class ModelPlan:
    """One model at one checkpoint: its pending jobs, activations and memory estimate."""

    ref: str
    jobs: int
    stored: int
    activations: list[ActivationSet]
    memory_bytes: int | None


@dataclass
class Plan:
    """The grid's work: units to run, what is stored already, and what was left out and why."""

    units: list[WorkUnit]
    models: list[ModelPlan]
    stored: list[JobKey]
    failed_skipped: list[JobKey]
    unavailable: list[tuple[str, str, str]]  # (kind, name, reason)
    not_applicable: list[tuple[str, str, str]]  # (dataset, metric, reason)
    device: str
    series: list = field(default_factory=list)  # series.SeriesJob: trajectory metrics over checkpoint series

    @property
    def pending(self) -> list[JobKey]:
        return [job for unit in self.units for job in unit.jobs()]

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON (``bench grid --dry-run --format json``)."""
        extract = [a for m in self.models for a in m.activations if not a.cached and m.jobs]
        return {
            "jobs": len(self.pending) + len(self.stored) + len(self.failed_skipped),
            "to_run": len(self.pending),
            "stored": len(self.stored),
            "failed_skipped": len(self.failed_skipped),
            "device": self.device,
            "models": [{"model": m.ref, "jobs": m.jobs, "stored": m.stored, "memory_bytes": m.memory_bytes,
                        "activations": [vars(a) for a in m.activations]} for m in self.models],
            "activations_to_extract": len(extract),
            "peak_memory_bytes": self.peak_memory(),
            "pending": [job._asdict() for job in self.pending],
            "unavailable": [{"kind": k, "name": n, "reason": r} for k, n, r in self.unavailable],
            "not_applicable": [{"dataset": d, "metric": m, "reason": r} for d, m, r in self.not_applicable],
            "series": [s.to_json() for s in self.series],
        }

    def peak_memory(self) -> int | None:
        """Largest estimate over the models that have jobs (each model runs alone on its device)."""
        values = [m.memory_bytes for m in self.models if m.jobs and m.memory_bytes is not None]
        return max(values) if values else None


def worker_environment(config: Config) -> dict[str, str]:
    """The settings workers need, as environment variables (paths made absolute)."""
    env = {}
    for name, (variable, _default, _help) in SETTINGS.items():
        setting = config.settings[name]
        if name in ("db", "device") or setting.value is None or setting.source == "default":
            continue
        env[variable] = str(Path(setting.value).expanduser().absolute())
    for variable in ("BRAINBENCH_LOAD_PLUGINS", "HF_HUB_OFFLINE"):
        if variable in os.environ:
            env[variable] = os.environ[variable]
    return env


def extra_plugins() -> list[tuple[str, str]]:
    """(name, module) of importable plugins registered in this process beyond built-ins and entry points."""
    from importlib.metadata import entry_points

    from ..registry.discovery import DEFAULT_PLUGINS, ENTRY_POINT_GROUP, get_plugin_manager

    known = set(DEFAULT_PLUGINS) | {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    out = []
    for name, plugin in get_plugin_manager().list_name_plugin():
        if name in known or not isinstance(plugin, types.ModuleType):
            continue
        try:
            if importlib.util.find_spec(plugin.__name__) is not None:
                out.append((name, plugin.__name__))
        except (ValueError, ImportError):
            continue
    return out


def _build(kind: str, label: str, factory: Callable[[], Any], unavailable: list) -> Any:
    try:
        return factory()
    except Exception as exc:  # noqa: BLE001 - reported as unavailable, the grid goes on
        from .executors import describe_error

        unavailable.append((kind, label, describe_error(exc)))
        return None


def _subjects(dataset, patterns: Sequence[str]) -> tuple[list[str], bool]:
    """The dataset's subjects matching ``patterns`` (all when empty), and whether that is all of them."""
    available = [str(s) for s in dataset.subjects]
    wanted = split_patterns(patterns)
    if not wanted:
        return available, True
    chosen = [s for s in available if any(fnmatch.fnmatchcase(s, p) for p in wanted)]
    return chosen, chosen == available


def _memory_estimate(model, batch_size: int | str, n_stimuli: int) -> int | None:
    """Device memory to extract activations: the weights plus one batch (None when the model cannot say)."""
    estimate = model.estimate_memory()
    if estimate is None:
        return None
    batch = min(32 if batch_size == "auto" else int(batch_size), max(n_stimuli, 1))
    return int(estimate.weights + estimate.per_image * batch)


def _stored_scores(store: ResultStore, job: JobKey, subjects: list[str]) -> dict[str, dict[str, Any]]:
    """Score fields of the stored rows of ``subjects`` (for an aggregate over them)."""
    rows = store.query(model=job.model, checkpoint=job.checkpoint, dataset=job.dataset, metric=job.metric)
    by_subject = {r.subject: r for r in rows if r.options == job.options}
    return {s: {"value": by_subject[s].score, "error": by_subject[s].error, "n_units": by_subject[s].n_units,
                "detail": by_subject[s].detail, "elapsed_s": by_subject[s].elapsed_s} for s in subjects}


def plan_grid(request: GridRequest, store: ResultStore, config: Config) -> Plan:
    """Resolve ``request`` into the units of work still to do (see the module docstring)."""
    from ..pipeline.activations import cache_key, check_memory, resolve_device
    from .executors import describe_error
    from ..pipeline.scoring import row_options

    registry = get_registry()
    options = request.options
    model_pairs = select_models(request.models, config.path("weights"))
    # every --set value is checked before anything is built (a typo in KIND:NAME gets a suggestion)
    validate(options, {"model": list({s.name: s for s, _ in model_pairs}.values()),
                       "dataset": [registry.dataset(n) for n in select("datasets", request.datasets)],
                       "metric": metrics_taking_options(select("metrics", request.metrics))})
    unavailable: list[tuple[str, str, str]] = []
    not_applicable: list[tuple[str, str, str]] = []
    model_pairs = expand_all(model_pairs, options)  # NAME@all → every checkpoint of its series
    datasets = {n: d for n in select("datasets", request.datasets) if (d := _build(
        "dataset", n, lambda n=n: build(registry.dataset(n), **options.get("dataset", n)), unavailable)) is not None}
    metrics = {n: m for n in select("metrics", request.metrics) if (m := _build(
        "metric", n, lambda n=n: build(registry.metric(n), **metric_build_options(registry.metric(n), options.get(
            "metric", n))), unavailable)) is not None}
    applicable: dict[str, list[str]] = {}
    subjects: dict[str, tuple[list[str], bool]] = {}
    for d, dataset in datasets.items():
        subjects[d] = _subjects(dataset, request.subjects)
        if not subjects[d][0]:
            wanted = ", ".join(split_patterns(request.subjects))
            not_applicable.append((d, "*", f"no subject of {d} matches {wanted}"))
            continue
        for m, metric in metrics.items():
            if getattr(metric, "trajectory", False):
                applicable.setdefault(d, [])  # its base metrics are added per series (grid/series.py)
                continue
            try:
                metric.check_dataset(dataset)
                applicable.setdefault(d, []).append(m)
            except Exception as exc:  # noqa: BLE001
                not_applicable.append((d, m, describe_error(exc)))
    if request.subjects and not any(chosen for chosen, _ in subjects.values()):
        wanted = ", ".join(split_patterns(request.subjects))
        raise BrainbenchError(f"no selected dataset has a subject matching {wanted}")
    series_jobs = plan_series(model_pairs, [m for m, metric in metrics.items() if getattr(metric, "trajectory", False)],
                              datasets, subjects, request, not_applicable)
    stimuli = {}
    for d in list(applicable):  # a dataset whose stimuli cannot be read is reported and skipped like any
        fingerprint = _build("dataset", d, datasets[d].stimuli.fingerprint, unavailable)
        if fingerprint is None:
            del applicable[d]
        else:
            stimuli[d] = fingerprint
    order = sorted(applicable, key=lambda d: (list(dict.fromkeys(stimuli.values())).index(stimuli[d]), d))
    stored_keys = set() if request.force else store.keys()
    failed_keys = set() if request.retry_failed else {f.key for f in store.failures()}
    device = resolve_device(request.device) if request.check_memory else None
    plan = Plan([], [], [], [], unavailable, not_applicable, str(device) if device else request.device)
    environment, plugins = worker_environment(config), extra_plugins()
    for spec, checkpoint in sorted(model_pairs, key=lambda p: (p[0].name, checkpoint_sort_key(p[1]))):
        label = f"{spec.name}@{checkpoint}" if checkpoint else spec.name
        model_options = options.get("model", spec.name)
        model = _build("model", label, lambda: build(spec, checkpoint, **model_options), unavailable)
        if model is None:
            continue
        if request.precision is not None:
            model.set_precision(request.precision)  # before the cache key and the memory estimate
        tasks, n_stored = [], 0
        for d in order:
            metric_tasks = []
            scored = [(m, metrics[m], options.get("metric", m)) for m in applicable[d]] + base_metrics_for(
                series_jobs, spec.name, checkpoint, d)
            seen = set()
            for m, metric, metric_options in scored:
                chosen, complete = subjects[d]
                job = JobKey(model.name, model.checkpoint, d, "", m, row_options(
                    metric, request.pooling, key_options(spec, model_options),
                    key_options(registry.dataset(d), options.get("dataset", d)), request.precision))
                if (m, job.options) in seen:
                    continue  # a base metric of a series that the grid also scores directly
                seen.add((m, job.options))
                keys = {s: job._replace(subject=s) for s in chosen + [AGGREGATE_SUBJECT] * complete}
                n_stored += sum(k in stored_keys for k in keys.values())
                plan.stored += [k for k in keys.values() if k in stored_keys]
                skipped = [k for k in keys.values() if k in failed_keys and k not in stored_keys]
                plan.failed_skipped += skipped
                todo = [s for s, k in keys.items() if k not in stored_keys and k not in skipped]
                aggregate = AGGREGATE_SUBJECT in todo
                todo = [s for s in todo if s != AGGREGATE_SUBJECT]
                have = [s for s in chosen if s not in todo]
                if aggregate and any(keys[s] not in stored_keys for s in have):
                    aggregate = False  # a subject failed before and is not retried
                    plan.failed_skipped.append(keys[AGGREGATE_SUBJECT])
                if todo or aggregate:
                    stored_scores = _stored_scores(store, job, have) if aggregate and have else {}
                    metric_tasks.append(MetricTask(m, metric_options, job.options, todo, aggregate,
                                                   chosen, stored_scores))
            if metric_tasks:
                tasks.append(DatasetTask(d, options.get("dataset", d), stimuli[d], metric_tasks))
        try:
            sets = _activation_sets(model, tasks, datasets, request.pooling, config.cache_dir, cache_key)
            memory = _memory_estimate(model, request.batch_size, max((s.n_stimuli for s in sets), default=0))
            if device is not None and any(not s.cached for s in sets):
                check_memory(model, device)
        except Exception as exc:  # noqa: BLE001
            unavailable.append(("model", f"{model.name}@{model.checkpoint}", describe_error(exc)))
            continue
        unit = WorkUnit(model.name, model.checkpoint, model_options, tasks, request.pooling, request.batch_size,
                        request.precision, environment, plugins)
        plan.models.append(ModelPlan(unit.ref, len(unit.jobs()), n_stored, sets, memory))
        if tasks:
            plan.units.append(unit)
    plan.series = series_jobs
    settle(series_jobs, stored_keys, plan.pending, request.force)
    return plan


def _activation_sets(model, tasks: list[DatasetTask], datasets: dict, pooling: str, cache_dir: Path,
                     cache_key) -> list[ActivationSet]:
    """One entry per stimulus set the model's pending jobs need, and whether it is cached."""
    sets: dict[str, ActivationSet] = {}
    for task in tasks:
        if task.stimuli in sets:
            sets[task.stimuli].datasets.append(task.dataset)
            continue
        stimuli = datasets[task.dataset].stimuli
        key = cache_key(model, stimuli, pooling)
        from ..pipeline.activations import model_folder

        folder = model_folder(cache_dir, model.name) / key
        cached = (folder / "meta.json").is_file()
        size = sum(p.stat().st_size for p in folder.glob("*.npy")) if cached else 0
        sets[task.stimuli] = ActivationSet(f"{model.name}@{model.checkpoint}", [task.dataset], len(stimuli), key,
                                           cached, size)
    return list(sets.values())


@dataclass
class GridReport:
    """What a run did: rows stored, failures recorded, and the notes the workers sent."""

    done: list[ResultRow] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def run_plan(plan: Plan, store: ResultStore, executor, on_event: Callable[[Event], None] | None = None) -> GridReport:
    """Run ``plan.units`` on ``executor``, storing every row and failure as soon as it arrives."""
    import brainbench
    from .executors import Note

    report = GridReport()
    for event in executor.run(plan.units):
        if isinstance(event, JobDone):
            store.save(event.row)
            report.done.append(event.row)
        elif isinstance(event, JobFailed):
            failure = Failure(*event.job, error=event.error, traceback=event.traceback,
                              brainbench_version=brainbench.__version__)
            store.record_failure(failure)
            report.failed.append(failure)
        elif isinstance(event, Note):
            report.notes.append(event.message)
        if on_event is not None:
            on_event(event)
    return report


def _gib(n: int | None) -> str:
    return "?" if n is None else f"{n / 2**30:.2f} GiB"


def describe_plan(plan: Plan) -> str:
    """The ``--dry-run`` report: jobs per model, activations to extract, memory, and what was left out."""
    data = plan.to_json()
    lines = [f"grid plan on {plan.device}: {data['jobs']} jobs, {data['to_run']} to run, {data['stored']} already "
             f"stored" + (f", {data['failed_skipped']} failed before (skipped)" if data["failed_skipped"] else "")]
    rows = [("model", "to run", "stored", "activations", "memory")]
    for m in plan.models:
        sets = "; ".join(f"{'+'.join(a.datasets)} ({a.n_stimuli} stimuli, {'cached' if a.cached else 'to extract'})"
                         for a in m.activations) or "-"
        rows.append((m.ref, str(m.jobs), str(m.stored), sets, _gib(m.memory_bytes)))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    cached = sum(a.cached for m in plan.models if m.jobs for a in m.activations)
    lines.append(f"activations to extract: {data['activations_to_extract']} ({cached} already cached)")
    lines.append(f"estimated peak memory: {_gib(plan.peak_memory())} on {plan.device} (the largest model's "
                 "weights plus one batch of images; models run one at a time per device)")
    lines += series_lines(plan.series)
    if plan.unavailable:
        lines.append("unavailable (skipped):")
        lines += [f"  {kind} {name}: {reason}" for kind, name, reason in plan.unavailable]
    if plan.not_applicable:
        lines.append("not applicable (skipped):")
        lines += [f"  {metric} × {dataset}: {reason}" for dataset, metric, reason in plan.not_applicable]
    return "\n".join(lines)


def summary_rows(plan: Plan, store: ResultStore):
    """The stored rows of the grid's aggregate jobs (or of its subjects, when no aggregate is in the grid)."""
    keys = set(plan.pending) | set(plan.stored)
    wanted = {k for k in keys if k.subject == AGGREGATE_SUBJECT} or keys
    groups = {(k.model, k.checkpoint, k.dataset, k.metric) for k in wanted}
    rows = []
    for model, checkpoint, dataset, metric in sorted(groups):
        for row in store.query(model=model, checkpoint=checkpoint, dataset=dataset, metric=metric):
            if (row.model, row.checkpoint, row.dataset, row.subject, row.metric, row.options) in wanted:
                rows.append(row)
    return rows
