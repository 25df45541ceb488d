"""The runner's trajectory machinery: checkpoint series, stored-row reuse, trajectory metrics.

Used by :func:`brainbench.core.pipeline.runner.run` (see its module docstring for the behaviour).

A *trajectory metric* is a registered metric whose class sets ``trajectory = True`` and
provides:

- ``base_metrics() -> list[str]``: the metrics scored at every checkpoint;
- ``score_trajectory(base, steps, scores, dataset) -> dict[str, Score]``: from one base
  metric's per-checkpoint scores (subject → list of :class:`~brainbench.core.contract.metric.Score`,
  ``"all"`` for the aggregate) to the trajectory metric's scores (same keys);
- optionally ``row_options(base) -> dict`` (the metric options stored in its rows; default:
  its options plus ``base``) and ``summarize(aggregates) -> (dict, str)`` (a summary across
  base metrics, stored in every aggregate's ``detail["order"]`` and printed).
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .activations import cache_key
from ..errors import BrainbenchError
from ..registry.guards import build
from ..contract.metric import Score
from ..registry.options import key_options_named
from ..registry.specs import ModelRef, Spec, get_registry
from ..store.results import AGGREGATE_SUBJECT, ResultRow, ResultStore, canonical_options
from ..contract.checkpoints import Checkpoint, select, series, describe
from ..config import weights_root
from .scoring import row_options, score_row


def is_trajectory_metric(spec: Spec) -> bool:
    """Whether a registered metric scores checkpoint series (its factory has ``trajectory = True``)."""
    return bool(getattr(spec.factory, "trajectory", False))


def _known_options(spec: Spec) -> set | None:
    defaults = getattr(spec.factory, "defaults", None)
    return set(defaults) if isinstance(defaults, dict) or hasattr(defaults, "keys") else None


def _options_for(spec: Spec, options: dict) -> dict:
    known = _known_options(spec)
    return dict(options) if known is None else {k: v for k, v in options.items() if k in known}


@dataclass
class MetricPlan:
    """The metrics of a run: those asked for, the trajectory metrics, and the base metrics these need."""

    returned: list[tuple[Spec, Any]]
    trajectory: list[tuple[Spec, Any]] = field(default_factory=list)
    bases: list[tuple[Spec, Any]] = field(default_factory=list)

    @property
    def returned_names(self) -> set[str]:
        return {spec.name for spec, _ in self.returned}

    def base(self, name: str) -> tuple[Spec, Any]:
        return next(pair for pair in self.bases if pair[0].name == name)

    def check_layers(self, models: list) -> None:
        """A metric option ``layer=NAME`` must name a layer of every model, checked before any extraction.

        Raises :class:`~brainbench.core.errors.BrainbenchError` naming the metric, the option, the
        model and its layers.
        """
        for spec, metric in self.returned + self.bases:
            layer = (getattr(metric, "options", None) or {}).get("layer")  # the metric has read "best" as None
            if not isinstance(layer, str):
                continue
            for model in models:
                names = list(model.layer_names)
                if layer not in names:
                    raise BrainbenchError(f"metric {spec.name!r} option layer={layer!r} is not a layer of "
                                          f"{model.name}; its layers: {', '.join(names)}")

    def check_datasets(self, datasets: dict, echo: Callable[[str], None]) -> dict[str, list[tuple[Spec, Any]]]:
        """Per dataset, the per-checkpoint metrics to score; asked-for metrics must fit every dataset."""
        out = {}
        for name, dataset in datasets.items():
            for _, metric in self.returned:
                metric.check_dataset(dataset)
            extra = [(spec, m) for spec, m in self.bases if spec.name not in self.returned_names and _fits(m, dataset)]
            out[name] = self.returned + extra
            for spec, metric in self.trajectory:
                fitting = [b for b in metric.base_metrics() if _fits(self.base(b)[1], dataset)]
                if not fitting:
                    raise BrainbenchError(f"none of the base metrics of {spec.name!r} "
                                          f"({', '.join(metric.base_metrics())}) applies to dataset {name!r}")
        for spec, metric in self.trajectory:
            unused = [b for b in metric.base_metrics() if not any(_fits(self.base(b)[1], d) for d in datasets.values())]
            if unused:
                echo(f"{spec.name}: {', '.join(unused)} applies to none of the datasets, skipped")
        return out


def _fits(metric, dataset) -> bool:
    try:
        metric.check_dataset(dataset)
    except BrainbenchError:
        return False
    return True


def plan_metrics(specs: list[Spec], options: dict) -> MetricPlan:
    """Build the metrics; with a trajectory metric, each gets the ``--set`` options it knows."""
    trajectory_specs = [s for s in specs if is_trajectory_metric(s)]
    direct = [s for s in specs if not is_trajectory_metric(s)]
    if not trajectory_specs:
        return MetricPlan([(s, build(s, **options)) for s in direct])
    registry = get_registry()
    trajectory = [(s, build(s, **_options_for(s, options))) for s in trajectory_specs]
    base_names = list(dict.fromkeys(n for _, m in trajectory for n in m.base_metrics()))
    base_specs = [registry.metric(n) for n in base_names]
    for spec in base_specs:
        if is_trajectory_metric(spec):
            raise BrainbenchError(f"metric {spec.name!r} scores trajectories and cannot be a base metric")
    involved = list({s.name: s for s in direct + base_specs}.values())
    knowing = [_known_options(s) for s in involved + trajectory_specs]
    if all(k is not None for k in knowing):
        unknown = [k for k in options if not any(k in known for known in knowing)]
        if unknown:
            names = ", ".join(s.name for s in involved + trajectory_specs)
            raise BrainbenchError(f"none of the metrics {names} has option {unknown[0]!r}")
    built = {s.name: build(s, **_options_for(s, options)) for s in involved}
    return MetricPlan([(s, built[s.name]) for s in direct], trajectory, [(s, built[s.name]) for s in base_specs])


@dataclass
class ModelJob:
    """One model to score: its spec, the built model, and its series (model, label) and checkpoint when in one."""

    spec: Spec
    model: Any
    series: tuple[str, str] | None = None
    checkpoint: Checkpoint | None = None


def series_folder(name: str, model_options: dict):
    """Where a model's checkpoints live: ``<weights root>/<name>`` (``weights_dir`` option, else the setting)."""
    root = weights_root(model_options.get("weights_dir"))
    return None if root is None else root / name


def expand_models(refs: list[ModelRef], specs: list[Spec], options, needs_series: bool) -> list[ModelJob]:
    """Build every model; ``NAME@all`` (or a model without ``@`` when ``options.checkpoints`` is set) becomes
    its series, one job per selected checkpoint."""
    jobs: list[ModelJob] = []
    seen: set = set()
    for ref, spec in zip(refs, specs):
        in_series = ref.checkpoint == "all" or (ref.checkpoint is None and options.checkpoints is not None)
        if not in_series:
            if needs_series:
                raise BrainbenchError(f"a trajectory metric needs a checkpoint series, but {ref} is one checkpoint; "
                                      f"use {ref.name}@all or --checkpoints")
            jobs.append(ModelJob(spec, build(spec, ref.checkpoint, **options.model_options)))
            continue
        if "weights" in options.model_options:
            raise BrainbenchError(f"{ref.name}@all reads its checkpoints from <weights>/{ref.name}/; point --weights "
                                  "(or --set model.weights_dir=) at the folder above it instead of model.weights")
        points = series(spec.name, series_folder(spec.name, options.model_options),
                        patterns=spec.metadata.get("checkpoint_patterns"),
                        declared=spec.metadata.get("checkpoints", []))
        chosen = select(points, options.checkpoints)
        label = "all" if len(chosen) == len(points) else ",".join(c.name for c in chosen)
        if (spec.name, label) in seen:
            continue
        seen.add((spec.name, label))
        for point in chosen:
            model = build(spec, point.name, **options.model_options)
            jobs.append(ModelJob(spec, model, (spec.name, label), point))
    return jobs


def stored_rows(store: ResultStore, model, dataset, wanted, subjects: list[str], options) -> dict[str, list[ResultRow]]:
    """Metric name → its stored rows (subjects then aggregate) when all are there and still valid.

    Valid: same options, same activation cache key (same weights file, preprocessing, pooling,
    stimuli) and same data hash as this run would store.
    """
    if options.precision is not None:
        model.set_precision(options.precision)
    key = cache_key(model, dataset.stimuli, options.pooling)
    data_hash = None
    out = {}
    for spec, metric in wanted:
        text = row_options(metric, options.pooling, key_options_named("models", model.name, options.model_options),
                           key_options_named("datasets", dataset.name, options.dataset_options), options.precision)
        candidates = [r for r in store.query(model=model.name, checkpoint=model.checkpoint, dataset=dataset.name,
                                             metric=spec.name) if r.options == text and r.activations_key == key]
        if not candidates:
            continue
        data_hash = data_hash or dataset.fingerprint()
        found = {r.subject: r for r in candidates if r.data_hash == data_hash}
        if all(s in found for s in [*subjects, AGGREGATE_SUBJECT]):
            out[spec.name] = [found[s] for s in subjects] + [found[AGGREGATE_SUBJECT]]
    return out


class TrajectoryScores:
    """Collects the per-checkpoint rows of every series, then scores the trajectory metrics."""

    def __init__(self, plan: MetricPlan, options):
        self.plan = plan
        self.options = options
        self.points: dict[tuple[str, str], dict[str, list[tuple[Checkpoint, dict]]]] = {}
        self.specs: dict[tuple[str, str], Spec] = {}
        self.dataset_specs: dict[str, Spec] = {}

    def add(self, job: ModelJob, dataset, rows: dict[str, list[ResultRow]], dataset_spec: Spec | None = None) -> None:
        self.points.setdefault(job.series, {}).setdefault(dataset.name, []).append((job.checkpoint, rows))
        self.specs[job.series] = job.spec
        if dataset_spec is not None:
            self.dataset_specs[dataset.name] = dataset_spec

    def score(self, store: ResultStore, datasets: dict, echo: Callable[[str], None]) -> Iterator[list[ResultRow]]:
        """Score and save every trajectory metric of every series; yields the rows of each."""
        for key, per_dataset in self.points.items():
            for spec, metric in self.plan.trajectory:
                started = time.perf_counter()
                results, aggregates = [], {}
                for dataset_name, points in per_dataset.items():
                    points = sorted(points, key=lambda p: p[0].step)
                    for base in metric.base_metrics():
                        if not all(base in rows for _, rows in points):
                            continue
                        scores = _scores_by_subject(points, base)
                        result = metric.score_trajectory(base, [c.step for c, _ in points], scores,
                                                         datasets[dataset_name])
                        aggregates[(dataset_name, base)] = result[AGGREGATE_SUBJECT]
                        results.append((dataset_name, base, points, result))
                summary = metric.summarize(aggregates) if hasattr(metric, "summarize") else None
                if summary is not None:
                    for total in aggregates.values():
                        total.detail["order"] = summary[0]
                elapsed = time.perf_counter() - started
                rows = [self._save(store, key, spec, metric, dataset_name, base, points, subject, score, elapsed)
                        for dataset_name, base, points, result in results for subject, score in result.items()]
                if summary is not None:
                    echo(f"{spec.name} of {key[0]}@{key[1]} (% of training): {summary[1]}")
                yield rows

    def _save(self, store, key, spec, metric, dataset_name, base, points, subject, score: Score, elapsed) -> ResultRow:
        base_spec, base_metric = self.plan.base(base)
        last = points[-1][1][base][-1]
        options = trajectory_row_options(metric, base, base_metric, self.options.pooling,
                                         key_options_named("models", key[0], self.options.model_options),
                                         key_options_named("datasets", dataset_name, self.options.dataset_options),
                                         self.options.precision)
        keys = "|".join(rows[base][-1].activations_key for _, rows in points)
        sources = [self.specs[key], base_spec, spec] + ([self.dataset_specs[dataset_name]]
                                                        if dataset_name in self.dataset_specs else [])
        context = dict(model=key[0], checkpoint=key[1], dataset=dataset_name, metric=spec.name,
                       data_hash=last.data_hash, activations_key=hashlib.sha256(keys.encode()).hexdigest()[:32],
                       options=options, plugin_versions={s.plugin: s.source for s in sources},
                       seed=int(self.options.model_options.get("seed", 0)))
        row = score_row(context, subject, score, elapsed)
        store.save(row)
        return row


def trajectory_row_options(metric, base: str, base_metric, pooling: str, model_options: dict, dataset_options: dict,
                           precision: str | None = None) -> str:
    """The canonical ``options`` of a trajectory metric's rows for one base metric (``bench grid`` keys them too)."""
    metric_options = metric.row_options(base) if hasattr(metric, "row_options") else {**metric.options, "base": base}
    options = {"metric": metric_options, "base_metric": base_metric.scoring_options(), "pooling": pooling,
               "model": model_options, "dataset": dataset_options}
    if precision not in (None, "fp32"):
        options["precision"] = precision
    return canonical_options(options)


def _scores_by_subject(points, base: str) -> dict[str, list[Score]]:
    scores: dict[str, list[Score]] = {}
    for _, rows in points:
        for row in rows[base]:
            scores.setdefault(row.subject, []).append(Score(row.score, row.error, row.n_units, row.detail))
    return scores


def checkpoints_text(model: str, patterns: tuple[str, ...] = (), as_json: bool = False) -> str:
    """What ``bench list checkpoints MODEL`` prints: the model's checkpoint series, in step order."""
    spec = get_registry().model(model)
    folder = series_folder(spec.name, {})
    points = series(spec.name, folder, patterns=list(patterns) or spec.metadata.get("checkpoint_patterns"),
                    declared=spec.metadata.get("checkpoints", []))
    rows = describe(points)
    if as_json:
        return json.dumps({"model": spec.name, "folder": None if folder is None else str(folder), "checkpoints": rows},
                          indent=2)
    lines = [f"{spec.name}: {len(rows)} checkpoints in {folder}", "  step      name            % of training  file"]
    for row in rows:
        file = Path(row["path"]).name if row["path"] else "(random init, seed 0)"
        lines.append(f"  {row['step']:<9} {row['name']:<15} {row['percent']:>12.2f}  {file}")
    return "\n".join(lines)
