"""Checkpoint series in ``bench grid``: every checkpoint scored as jobs, then the trajectory metrics.

A grid covers a model's *series* when it selects every checkpoint of the model's training
series on disk (:func:`brainbench.core.trajectory.series`: ``init`` then every ``step-N``):
``-m 'tiny-dino@all'`` (expanded here into those checkpoints), or the default selection, which
already lists every checkpoint found under ``<weights>/<model>/``. For each trajectory metric in
the grid (``halftime``):

- its base metrics (``encoding``, ``spatial``, ``temporal``), built with the options ``bench run``
  gives them (:func:`brainbench.core.trajectory_run.plan_metrics`), become ordinary jobs of every
  checkpoint of the series, on each dataset they apply to — stored row by row, skipped when stored,
  so a killed grid resumes where it stopped;
- once every checkpoint's rows are stored, :func:`finish_series` computes the trajectory metric's
  rows (checkpoint ``all``) with the runner's own :class:`~brainbench.core.trajectory_run.TrajectoryScores`,
  so ``bench grid`` and ``bench run -m NAME@all -x halftime`` store the same rows under the same keys.

The half-time rows of a series are recomputed whenever one of its checkpoint jobs ran (a
retrained trajectory, a new checkpoint), or with ``--force``; otherwise they count as stored.
Their dataset options are the ``--set dataset.X`` given to every dataset (as in ``bench run``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..errors import MissingDataError
from .executors import JobKey
from ..registry.specs import Spec, get_registry
from ..store.results import AGGREGATE_SUBJECT, ResultRow, ResultStore
from ..contract.checkpoints import Checkpoint, series
from ..pipeline.trajectories import (MetricPlan, ModelJob, TrajectoryScores, _fits, _options_for, is_trajectory_metric,
                                     plan_metrics, series_folder, trajectory_row_options)
from ..registry.options import key_options_named


@dataclass
class SeriesJob:
    """One trajectory metric over one model's whole series, and the rows it stores."""

    model: Spec
    points: list[Checkpoint]
    metric_spec: Spec
    metric: Any
    #: base name → (its spec, the built metric, the options it is built with)
    bases: dict[str, tuple[Spec, Any, dict]]
    #: dataset → the base metrics that apply to it
    datasets: dict[str, list[str]]
    subjects: dict[str, list[str]]
    model_options: dict
    dataset_options: dict
    #: dataset name → the built dataset (region geometry for per-region half-times)
    built: dict = field(default_factory=dict, repr=False)
    #: the keys of the trajectory metric's rows (every subject and the aggregate, per dataset × base)
    keys: list[JobKey] = field(default_factory=list)
    stored: int = 0
    pending: bool = True

    @property
    def ref(self) -> str:
        return f"{self.model.name}@all"

    def to_json(self) -> dict:
        return {"series": self.ref, "metric": self.metric_spec.name, "checkpoints": [c.name for c in self.points],
                "steps": [c.step for c in self.points],
                "bases": {d: list(bases) for d, bases in self.datasets.items()},
                "rows": len(self.keys), "stored": self.stored, "to_compute": len(self.keys) if self.pending else 0}


def model_series(spec: Spec, model_options: dict) -> list[Checkpoint]:
    """The model's series on disk (``init`` first), or [] when it has none."""
    try:
        return series(spec.name, series_folder(spec.name, model_options),
                      patterns=spec.metadata.get("checkpoint_patterns"))
    except MissingDataError:
        return []


def expand_all(pairs: list[tuple[Spec, str | None]], options) -> list[tuple[Spec, str | None]]:
    """``NAME@all`` → one pair per checkpoint of the model's series (a missing series is an error)."""
    out: list[tuple[Spec, str | None]] = []
    for spec, checkpoint in pairs:
        if checkpoint != "all":
            out.append((spec, checkpoint))
            continue
        points = model_series(spec, options.get("model", spec.name))
        if not points:
            series(spec.name, series_folder(spec.name, options.get("model", spec.name)))  # raises, with the hint
        out += [(spec, c.name) for c in points if (spec, c.name) not in out]
    return out


def plan_series(pairs: list[tuple[Spec, str | None]], trajectory_metrics: Sequence[str], datasets: dict,
                subjects: dict[str, tuple[list[str], bool]], request, not_applicable: list) -> list[SeriesJob]:
    """The series the grid covers × its trajectory metrics (see the module docstring)."""
    if not trajectory_metrics:
        return []
    registry = get_registry()
    options = request.options
    jobs: list[SeriesJob] = []
    models = list({spec.name: spec for spec, _ in pairs}.values())
    for name in trajectory_metrics:
        spec = registry.metric(name)
        plan = plan_metrics([spec], options.get("metric", name))
        (_, metric), = plan.trajectory
        bases = {s.name: (s, m, _options_for(s, options.get("metric", name))) for s, m in plan.bases}
        fitting = {}
        for d, dataset in datasets.items():
            chosen, complete = subjects.get(d, ([], False))
            applies = [b for b in metric.base_metrics() if _fits(bases[b][1], dataset)]
            if applies and not complete:
                not_applicable.append((d, name, "a half-time needs every subject's rows (their aggregate); "
                                                "select all subjects"))
            elif applies:
                fitting[d] = applies
        found = False
        for model in models:
            model_options = options.get("model", model.name)
            points = model_series(model, model_options)
            selected = {c for s, c in pairs if s.name == model.name}
            if not points or not all(p.name in selected for p in points) or not fitting:
                continue
            found = True
            job = SeriesJob(model, points, spec, metric, bases, fitting,
                            {d: subjects[d][0] for d in fitting}, model_options, options.general["dataset"],
                            {d: datasets[d] for d in fitting})
            for d, applies in fitting.items():
                for base in applies:
                    # keyed as bench run stores them: defaults filled in (contract.options.key_options)
                    text = trajectory_row_options(metric, base, bases[base][1], request.pooling,
                                                  key_options_named("models", model.name, model_options),
                                                  key_options_named("datasets", d, job.dataset_options),
                                                  request.precision)
                    job.keys += [JobKey(model.name, "all", d, s, name, text)
                                 for s in [*job.subjects[d], AGGREGATE_SUBJECT]]
            jobs.append(job)
        if not found:
            for d in datasets:
                not_applicable.append((d, name, "scored over a checkpoint series, and the grid selects none: use "
                                                "-m 'NAME@all' (a model with a training series on disk)"))
    return jobs


def metric_build_options(spec: Spec, options: dict) -> dict:
    """The ``--set metric.X`` options a metric is built with: a trajectory metric takes those it knows (its
    base metrics take theirs), as in ``bench run``; any other metric takes them all."""
    return _options_for(spec, options) if is_trajectory_metric(spec) else options


def base_metrics_for(jobs: list[SeriesJob], model: str, checkpoint: str | None,
                     dataset: str) -> list[tuple[str, Any, dict]]:
    """(name, built metric, build options) of the base metrics this checkpoint scores on ``dataset`` for its series."""
    out: list[tuple[str, Any, dict]] = []
    for job in jobs:
        if job.model.name != model or checkpoint not in {p.name for p in job.points}:
            continue
        for base in job.datasets.get(dataset, []):
            _, metric, options = job.bases[base]
            out.append((base, metric, options))
    return out


def settle(jobs: list[SeriesJob], stored_keys: set, pending: list[JobKey], force: bool) -> None:
    """Whether each series' rows are still to compute: missing, forced, or one of its checkpoint jobs runs now."""
    running = {(k.model, k.checkpoint, k.metric) for k in pending}
    for job in jobs:
        job.stored = sum(k in stored_keys for k in job.keys)
        changed = any((job.model.name, p.name, b) in running for p in job.points for b in job.bases)
        job.pending = force or changed or job.stored < len(job.keys)


def finish_series(jobs: list[SeriesJob], store: ResultStore, request,
                  echo: Callable[[str], None] = lambda message: None) -> list[ResultRow]:
    """Compute and store the trajectory-metric rows of every pending series whose checkpoint rows are all stored.

    Returns the rows stored. A series with a checkpoint row missing (a failed job) is reported
    through ``echo`` and left for the next run.
    """
    from ..pipeline.runner import RunOptions
    from ..pipeline.scoring import row_options

    registry = get_registry()
    saved: list[ResultRow] = []
    for job in jobs:
        if not job.pending:
            continue
        bases = [(spec, metric) for spec, metric, _ in job.bases.values()]
        plan = MetricPlan([], [(job.metric_spec, job.metric)], bases)
        options = RunOptions(pooling=request.pooling, precision=request.precision, model_options=job.model_options,
                             dataset_options=job.dataset_options, progress=False)
        scores = TrajectoryScores(plan, options)
        missing = 0
        for d, applies in job.datasets.items():
            dataset_options = request.options.get("dataset", d)
            for point in job.points:
                rows: dict[str, list[ResultRow]] = {}
                for base in applies:
                    text = row_options(job.bases[base][1], request.pooling,
                                       key_options_named("models", job.model.name, job.model_options),
                                       key_options_named("datasets", d, dataset_options), request.precision)
                    found = {r.subject: r for r in store.query(model=job.model.name, checkpoint=point.name, dataset=d,
                                                                metric=base) if r.options == text}
                    wanted = [*job.subjects[d], AGGREGATE_SUBJECT]
                    missing += sum(s not in found for s in wanted)
                    if all(s in found for s in wanted):
                        rows[base] = [found[s] for s in wanted]
                scores.add(ModelJob(job.model, None, (job.model.name, "all"), point), job.built[d], rows,
                           registry.dataset(d))
        if missing:
            echo(f"{job.metric_spec.name} of {job.ref}: {missing} checkpoint rows are not stored (failed jobs?); "
                 "run the grid again to compute it")
            continue
        for rows in scores.score(store, job.built, echo):
            saved += rows
    return saved



def series_lines(jobs: list[SeriesJob]) -> list[str]:
    """``bench grid --dry-run``'s lines on the series: checkpoints, base metrics per dataset, rows to compute."""
    if not jobs:
        return []
    lines = ["checkpoint series (each checkpoint's base-metric jobs are in the table above; the trajectory rows "
             "are computed once all are stored):"]
    for job in jobs:
        steps = ", ".join(str(p.step) for p in job.points)
        bases = "; ".join(f"{', '.join(b)} on {d}" for d, b in job.datasets.items())
        state = f"{len(job.keys)} rows to compute" if job.pending else f"{len(job.keys)} rows stored"
        lines.append(f"  {job.ref}: {len(job.points)} checkpoints (steps {steps}); {job.metric_spec.name} of {bases}: "
                     f"{state}")
    return lines
