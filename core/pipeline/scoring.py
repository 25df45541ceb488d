"""One subject's score and the row it becomes; the scoring loop ``bench run`` and ``bench grid`` share.

:func:`score_metric` scores the subjects of one (model, dataset, metric) one by one, then their
aggregate, and yields what happened to each (:class:`Outcome`); ``bench run``
(:mod:`brainbench.core.pipeline.runner`) stores the rows and stops at the first error, a grid worker
(:mod:`brainbench.core.grid.executors`) reports each outcome as a job event and goes on.
:func:`row_options` and :func:`result_context` give every row of a (model, dataset, metric) the
same key fields, whichever command made it.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import brainbench
from ..registry.guards import expect_responses, expect_score
from ..registry.specs import Spec
from ..contract.data_notes import warnings_of, with_notes
from ..contract.metric import Score
from .layer_store import RowsOf
from ..contract.options import key_options
from ..store.benchmarks import current_version
from ..store.provenance import scoring_provenance
from ..store.results import AGGREGATE_SUBJECT, ResultRow, canonical_options


@dataclass(frozen=True)
class Outcome:
    """What happened to one subject (or to the aggregate, subject ``all``) in :func:`score_metric`.

    ``state`` is ``started`` (yielded before the work), then ``done`` with its ``row``, or ``failed``
    with its ``error``: the exception, or one sentence when there was no exception.
    """

    subject: str
    state: str
    row: ResultRow | None = None
    error: BaseException | str | None = None
    #: what a subject's score left out, one line each (``contract.data_notes.warnings_of``)
    warnings: tuple[str, ...] = ()


def score_metric(metric_and_spec: tuple, dataset_and_spec: tuple, activations, context: dict[str, Any],
                 subjects: Sequence[str], *, aggregate: bool = True, over: Sequence[str] | None = None,
                 stored: dict[str, tuple[Score, float]] | None = None) -> Iterator[Outcome]:
    """Score ``subjects`` one by one, then their aggregate; yield an :class:`Outcome` for each step.

    Parameters
    ----------
    metric_and_spec, dataset_and_spec
        The built metric and dataset with their registry specs.
    activations
        The model's activations on the dataset's stimuli (``pipeline.activations.extract``).
    context
        The rows' shared fields (:func:`result_context`).
    subjects
        The subjects to score now.
    aggregate
        Score the aggregate after the subjects (a grid leaves it out when it is stored).
    over
        The subjects the aggregate is over (default: ``subjects``); those not scored now come from
        ``stored``, and if one is neither, the aggregate fails with one sentence saying which.
    stored
        Subject → (its stored score, seconds it took), for subjects scored in an earlier run.

    Errors are yielded, never raised (``bench run`` raises the first; the grid records each). A
    row's ``elapsed_s`` is the seconds its subject's scoring took; the aggregate's is the sum over
    its subjects plus the aggregation.
    """
    metric, metric_spec = metric_and_spec
    dataset, dataset_spec = dataset_and_spec
    scores = {subject: score for subject, (score, _) in (stored or {}).items()}
    elapsed = {subject: seconds for subject, (_, seconds) in (stored or {}).items()}
    for subject in subjects:
        yield Outcome(subject, "started")
        started = time.perf_counter()
        try:
            scores[subject] = score_subject(metric, metric_spec, dataset, dataset_spec, activations, subject)
        except Exception as exc:  # noqa: BLE001 - the caller decides: stop (bench run) or go on (grid)
            yield Outcome(subject, "failed", error=exc)
            continue
        elapsed[subject] = time.perf_counter() - started
        yield Outcome(subject, "done", score_row(context, subject, scores[subject], elapsed[subject]),
                      warnings=tuple(warnings_of(scores[subject].detail)))
    if not aggregate:
        return
    over = list(subjects if over is None else over)
    yield Outcome(AGGREGATE_SUBJECT, "started")
    missing = [s for s in over if s not in scores]
    if missing:
        yield Outcome(AGGREGATE_SUBJECT, "failed", error=f"cannot aggregate over subjects: {', '.join(missing)} failed")
        return
    started = time.perf_counter()
    try:
        total = expect_score(metric.aggregate({s: scores[s] for s in over}), metric_spec, "aggregate()")
    except Exception as exc:  # noqa: BLE001
        yield Outcome(AGGREGATE_SUBJECT, "failed", error=exc)
        return
    spent = time.perf_counter() - started + sum(elapsed.get(s, 0.0) for s in over)
    yield Outcome(AGGREGATE_SUBJECT, "done", score_row(context, AGGREGATE_SUBJECT, total, spent))


def score_subject(metric, metric_spec: Spec, dataset, dataset_spec: Spec, activations, subject: str) -> Score:
    """One subject's score: its responses, the activations of its stimuli, the metric — each checked."""
    responses = expect_responses(dataset.responses(subject), dataset_spec, subject, len(dataset.stimuli))
    # lazy: a layer's rows are read (from its memory-mapped file) when the metric reaches it
    features = RowsOf(activations.layers, responses.stimulus_index)
    return with_notes(expect_score(metric.score(features, responses, dataset), metric_spec), responses)


def row_options(metric, pooling: str, model_options: dict, dataset_options: dict, precision: str | None = None,
                layers: str | None = None) -> str:
    """The canonical ``options`` of a row: every metric option, the pooling, and the plugin options given.

    A ``--precision`` other than fp32 is added as ``precision`` (absent otherwise, so that fp32
    rows keep the keys they always had). A ``--layers`` selection is added as ``layers`` in the same way.
    """
    options = {"metric": metric.scoring_options(), "pooling": pooling, "model": model_options, "dataset": dataset_options}
    if precision not in (None, "fp32"):
        options["precision"] = precision
    if layers:
        options["layers"] = layers
    return canonical_options(options)


def result_context(model, dataset, metric, activations_key: str, pooling: str, model_options: dict,
                   dataset_options: dict, specs: tuple, precision: str | None = None,
                   layers: str | None = None) -> dict[str, Any]:
    """The fields shared by every row of one (model, dataset, metric): key fields and provenance.

    Parameters
    ----------
    model, dataset, metric
        The built plugin objects (a ``VisionModel``, a ``Dataset``, a ``Metric``).
    activations_key
        The activation cache key the scores were computed from.
    pooling, model_options, dataset_options, precision, layers
        What enters the row's ``options`` besides the metric's own options (see :func:`row_options`).
    specs
        The registry specs of the model, dataset and metric (their plugins' versions are recorded).
    """
    data_hash = dataset.fingerprint()
    # defaults spelled out or left out make one key (brainbench.core.contract.options.key_options)
    model_options, dataset_options = key_options(specs[0], model_options), key_options(specs[1], dataset_options)
    return dict(model=model.name, checkpoint=model.checkpoint, dataset=dataset.name, metric=specs[2].name,
                data_hash=data_hash, activations_key=activations_key,
                options=row_options(metric, pooling, model_options, dataset_options, precision, layers),
                plugin_versions={s.plugin: s.source for s in specs},
                seed=int(model_options.get("seed", 0)),
                benchmark_version=current_version(specs[1].name, specs[2].name),
                provenance={**scoring_provenance(dataset, data_hash), **model_provenance(model)})


def model_provenance(model) -> dict[str, Any]:
    """What a model adds to its rows' provenance through an optional ``provenance()`` method ({} without one),
    e.g. the file hashes of imported features (``features:NAME``)."""
    method = getattr(model, "provenance", None)
    return dict(method()) if callable(method) else {}


def score_row(context: dict, subject: str, score: Score, elapsed: float) -> ResultRow:
    """The :class:`ResultRow` of one subject's (or the aggregate's) score."""
    return ResultRow(subject=subject, score=float(score.value), error=float(score.error), n_units=score.n_units,
                     detail=score.detail, brainbench_version=brainbench.__version__, elapsed_s=elapsed, **context)
