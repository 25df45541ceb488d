"""From result rows to what the leaderboard shows: benchmarks, table entries, half-times.

A *benchmark* is a (dataset, metric) pair at one benchmark version
(:mod:`brainbench.core.store.benchmarks`) with stored aggregate rows (``subject = "all"``); each
version is its own column, so scores of different versions are never mixed. When its rows were
computed with several option sets, the leaderboard ranks the set that most models share (ties:
the most recent) and lists the others on the benchmark page only, so that a column never mixes
incomparable scores; the ranked set's benchmark id names the column's definition.

An *entry* is one model at one checkpoint: a row of the main table. A score that is not
stored is *missing* (``None``), never 0. Training curves are the scores of one model over
its ``step-N`` checkpoints (``init`` is not part of them: the registry's ``init`` is a seeded
random initialisation, not necessarily the training run's first weights; store a ``step-0``
row for that); the half-time is the first step at which the curve reaches half its final
value (linear interpolation between checkpoints) — unless a ``halftime`` row of the series is
stored (``bench run -m NAME@all -x halftime`` or ``bench grid``): then the leaderboard shows the
metric's half-time (init included as step 0, its interpolation and threshold) and its per-region
half-times. Those trajectory rows (checkpoint ``all``) are not a column of their own.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from brainbench.core.store.benchmarks import benchmark_id
from brainbench.core.store.results import AGGREGATE_SUBJECT, ResultRow

METRIC_ORDER = ("encoding", "spatial", "temporal")
MODALITY_ORDER = ("fmri", "meg")
MODALITY_LABELS = {"fmri": "fMRI", "meg": "MEG"}
SIZE_BUCKETS = ((1e8, "< 100M"), (1e9, "100M – 1B"), (math.inf, "≥ 1B"))
_STEP = re.compile(r"^step-(\d+)$")


def slug(text: str) -> str:
    """A file-name-safe form of ``text``; names that change get a short hash, so slugs never collide."""
    clean = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.") or "x"
    return clean if clean == text else f"{clean}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def version_of(row: ResultRow) -> int:
    """The row's benchmark version (rows that state none predate versions: version 1)."""
    return row.benchmark_version or 1


def _group_of(row: ResultRow) -> tuple:
    return (row.model, row.checkpoint, row.dataset, row.metric, row.options, version_of(row))


def anchor(row: ResultRow) -> str:
    """The id of the row's section on its benchmark's provenance page (unique per model, checkpoint, options)."""
    return f"{slug(row.model)}--{slug(row.checkpoint)}--{hashlib.sha1(row.options.encode()).hexdigest()[:8]}"


def step_of(checkpoint: str) -> int | None:
    """The training step N of a ``step-N`` checkpoint; None for any other checkpoint."""
    match = _STEP.match(checkpoint)
    return int(match.group(1)) if match else None


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing or not finite."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def half_time(curve: list[tuple[int, float]]) -> float | None:
    """First step at which the curve reaches half its final value (None when undefined).

    Parameters
    ----------
    curve : (step, score) pairs, any order; at least two steps are needed and the final score must be > 0
    """
    points = sorted((s, v) for s, v in curve if finite(v) is not None)
    if len(points) < 2 or points[-1][1] <= 0:
        return None
    half = points[-1][1] / 2
    previous = None
    for step, value in points:
        if value >= half:
            if previous is None or value == previous[1]:
                return float(step)
            (s0, v0) = previous
            return float(s0 + (half - v0) / (value - v0) * (step - s0))
        previous = (step, value)
    return None


def size_bucket(parameters: Any) -> str:
    value = finite(parameters)
    if value is None:
        return "unknown"
    return next(label for limit, label in SIZE_BUCKETS if value < limit)


@dataclass
class Cell:
    """One score of the main table (``row`` None: missing)."""

    row: ResultRow | None = None
    n_subjects: int = 0

    @property
    def score(self) -> float | None:
        return None if self.row is None else finite(self.row.score)

    @property
    def error(self) -> float | None:
        return None if self.row is None else finite(self.row.error)


@dataclass
class Benchmark:
    dataset: str
    metric: str
    modality: str
    options: str
    rows: list[ResultRow]
    other_rows: list[ResultRow]
    dataset_description: str = ""
    citation: str = ""
    metric_description: str = ""
    ceiling: float | None = None  # mean noise ceiling the subjects' rows report (encoding), or None
    version: int = 1  # the benchmark version of every row of the column

    @property
    def slug(self) -> str:
        suffix = "" if self.version == 1 else f"--v{self.version}"
        return slug(f"{self.dataset}--{self.metric}{suffix}")

    @property
    def modality_label(self) -> str:
        return MODALITY_LABELS.get(self.modality, self.modality or "?")

    @property
    def title(self) -> str:
        suffix = "" if self.version == 1 else f" · v{self.version}"
        return f"{self.metric.capitalize()} · {self.dataset}{suffix}"

    @property
    def label(self) -> str:
        """``dataset/metric`` (and `` vN`` past version 1): the column's name in the downloads."""
        return f"{self.dataset}/{self.metric}" + ("" if self.version == 1 else f" v{self.version}")

    @property
    def benchmark_id(self) -> str:
        """The definition of the ranked rows (dataset, metric and their options; see core/store/benchmarks.py)."""
        return benchmark_id(self.dataset, self.metric, self.options)

    @property
    def provenance_page(self) -> str:
        """The page with the provenance of each score, relative to the site root."""
        return f"provenance/{self.slug}.html"

    @property
    def data_hashes(self) -> list[str]:
        return sorted({r.data_hash for r in self.rows if r.data_hash})

    @property
    def options_json(self) -> str:
        return json.dumps(json.loads(self.options), sort_keys=True, separators=(", ", ": "))


@dataclass
class Entry:
    """A main-table row: one model at one checkpoint."""

    model: str
    checkpoint: str
    metadata: dict[str, Any]
    cells: dict[str, Cell] = field(default_factory=dict)  # benchmark slug -> cell
    half_times: dict[str, float | None] = field(default_factory=dict)  # metric -> steps

    @property
    def family(self) -> str:
        return str(self.metadata.get("family") or "unknown")

    @property
    def parameters(self) -> float | None:
        return finite(self.metadata.get("parameters"))

    @property
    def size(self) -> str:
        return size_bucket(self.metadata.get("parameters"))

    @property
    def training_data(self) -> str:
        return str(self.metadata.get("training_data") or "unknown")

    @property
    def checkpoint_kind(self) -> str:
        """``step-N`` checkpoints share one filter value, "training steps"."""
        return "training steps" if _STEP.match(self.checkpoint) else self.checkpoint


@dataclass
class Leaderboard:
    benchmarks: list[Benchmark]
    entries: list[Entry]
    metadata: dict[str, dict[str, Any]]  # model -> registry metadata (may be empty)
    descriptions: dict[str, str]  # model -> registry description
    rows: list[ResultRow]
    #: (model, dataset, base metric) → the latest stored half-time aggregate row of the model's series
    stored_half_times: dict[tuple[str, str, str], ResultRow] = field(default_factory=dict)
    _by_group: dict[tuple, list[ResultRow]] | None = field(default=None, repr=False)

    def half_time_row(self, model: str, bench: "Benchmark") -> ResultRow | None:
        """The stored half-time row of ``model``'s series on ``bench`` (its dataset and metric as base)."""
        return self.stored_half_times.get((model, bench.dataset, bench.metric))

    def half_time(self, model: str, bench: "Benchmark") -> float | None:
        """Half-time in steps on ``bench``: the stored half-time row's, else estimated from the curve."""
        row = self.half_time_row(model, bench)
        if row is not None:
            return finite(row.detail.get("half_time_step"))
        curve = self.curves(model).get(bench.slug)
        return half_time(curve) if curve else None

    def subject_rows(self, row: ResultRow) -> list[ResultRow]:
        """The subjects' rows behind an aggregate ``row`` (same key but the subject, same benchmark version)."""
        if self._by_group is None:
            self._by_group = {}
            for r in self.rows:
                if r.subject != AGGREGATE_SUBJECT:
                    self._by_group.setdefault(_group_of(r), []).append(r)
        return self._by_group.get(_group_of(row), [])

    def entries_of(self, model: str) -> list[Entry]:
        """The entries of ``model``, by checkpoint (``init``, ``pretrained``, other names, ``step-N`` by N)."""
        from brainbench.core.contract.checkpoints import checkpoint_sort_key

        return sorted((e for e in self.entries if e.model == model), key=lambda e: checkpoint_sort_key(e.checkpoint))

    def curves(self, model: str) -> dict[str, list[tuple[int, float]]]:
        """Benchmark slug → (step, score) of ``model``'s training checkpoints (two steps or more)."""
        out = {}
        for bench in self.benchmarks:
            points = [(step_of(e.checkpoint), e.cells[bench.slug].score) for e in self.entries_of(model)
                      if step_of(e.checkpoint) is not None and e.cells[bench.slug].score is not None]
            if len({s for s, _ in points}) >= 2:
                out[bench.slug] = sorted(points)
        return out

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(e.model for e in self.entries))


def _column_key(dataset: str, metric: str, modality: str, version: int = 1) -> tuple:
    m = METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER)
    d = MODALITY_ORDER.index(modality) if modality in MODALITY_ORDER else len(MODALITY_ORDER)
    return (m, metric, d, dataset, -version)  # the newest version first


def _guess_modality(rows: list[ResultRow]) -> str:
    for row in rows:
        if "per_region" in row.detail or "regions" in row.detail:
            return "fmri"
        if "per_time" in row.detail or "r_time" in row.detail:
            return "meg"
    return ""


def _ceiling(rows: list[ResultRow], dataset: str, metric: str, options: str, version: int) -> float | None:
    """Mean over subjects of the noise ceiling their rows report (one value per subject)."""
    per_subject = {}
    for r in rows:
        if (r.dataset, r.metric, r.options, version_of(r)) == (dataset, metric, options, version) \
                and r.subject != AGGREGATE_SUBJECT:
            value = finite(r.detail.get("noise_ceiling"))
            if value is not None:
                per_subject[r.subject] = value
    return sum(per_subject.values()) / len(per_subject) if per_subject else None


def _subject_counts(rows: list[ResultRow]) -> Counter:
    return Counter((r.model, r.checkpoint, r.dataset, r.metric, r.options, version_of(r)) for r in rows
                   if r.subject != AGGREGATE_SUBJECT)


def _by_prefix(registry, model: str):
    """The spec of a ``PREFIX:NAME`` model (``timm:resnet18``), or None when it cannot be resolved here."""
    try:
        return registry.resolve_prefixed(model) if registry is not None else None
    except Exception:  # noqa: BLE001 - a model that cannot be resolved here is shown without metadata
        return None


def is_half_time_row(row: ResultRow) -> bool:
    """A trajectory metric's row (``halftime``: one score for a whole checkpoint series, its base in the detail)."""
    return isinstance(row.detail, dict) and all(k in row.detail for k in ("base", "steps", "curve"))


def build_leaderboard(rows: list[ResultRow], registry=None) -> Leaderboard:
    """Group ``rows`` into benchmarks and entries; ``registry`` (optional) gives names their metadata."""
    specs = registry.specs if registry is not None else {"models": {}, "datasets": {}, "metrics": {}}
    all_rows, rows = rows, [r for r in rows if not is_half_time_row(r)]
    stored_half_times: dict[tuple[str, str, str], ResultRow] = {}
    for row in sorted((r for r in all_rows if is_half_time_row(r) and r.subject == AGGREGATE_SUBJECT
                       and "half_time_step" in r.detail),
                      key=lambda r: r.updated_at):
        stored_half_times[(row.model, row.dataset, str(row.detail["base"]))] = row  # the latest wins
    aggregates = [r for r in rows if r.subject == AGGREGATE_SUBJECT]
    counts = _subject_counts(rows)
    groups: dict[tuple[str, str, int], list[ResultRow]] = {}
    for row in aggregates:
        groups.setdefault((row.dataset, row.metric, version_of(row)), []).append(row)
    benchmarks = []
    for (dataset, metric, version), group in groups.items():
        usage = Counter(r.options for r in group)
        latest = {o: max(r.updated_at for r in group if r.options == o) for o in usage}
        options = max(usage, key=lambda o: (usage[o], latest[o]))
        dataset_spec, metric_spec = specs["datasets"].get(dataset), specs["metrics"].get(metric)
        chosen = [r for r in group if r.options == options]
        modality = str((dataset_spec.metadata.get("modality") if dataset_spec else None) or _guess_modality(chosen))
        benchmarks.append(Benchmark(
            dataset, metric, modality, options,
            rows=sorted(chosen, key=lambda r: (finite(r.score) is None, -(finite(r.score) or 0), r.model)),
            other_rows=[r for r in group if r.options != options],
            dataset_description=dataset_spec.description if dataset_spec else "",
            citation=str(dataset_spec.metadata.get("citation", "")) if dataset_spec else "",
            metric_description=metric_spec.description if metric_spec else "",
            ceiling=_ceiling(rows, dataset, metric, options, version), version=version))
    benchmarks.sort(key=lambda b: _column_key(b.dataset, b.metric, b.modality, b.version))
    metadata = {}
    descriptions = {}
    entries: dict[tuple[str, str], Entry] = {}
    for row in rows:
        if row.model not in metadata:
            spec = specs["models"].get(row.model) or _by_prefix(registry, row.model)
            metadata[row.model] = dict(spec.metadata) if spec else {}
            descriptions[row.model] = spec.description if spec else ""
        key = (row.model, row.checkpoint)
        if key not in entries:
            entries[key] = Entry(row.model, row.checkpoint, metadata[row.model])
    for entry in entries.values():
        for bench in benchmarks:
            row = next((r for r in bench.rows if (r.model, r.checkpoint) == (entry.model, entry.checkpoint)), None)
            n = len(row.detail.get("subjects", {})) if row is not None and isinstance(
                row.detail.get("subjects"), dict) else 0
            if row is not None and not n:
                n = counts[(row.model, row.checkpoint, row.dataset, row.metric, row.options, version_of(row))]
            entry.cells[bench.slug] = Cell(row, n)
    board = Leaderboard(benchmarks, list(entries.values()), metadata, descriptions, all_rows, stored_half_times)
    _add_half_times(board)
    first = benchmarks[0].slug if benchmarks else None
    board.entries.sort(key=lambda e: (first is None or e.cells[first].score is None,
                                      -(e.cells[first].score or 0) if first else 0, e.model, e.checkpoint))
    return board


def _add_half_times(board: Leaderboard) -> None:
    """Per model and metric, the half-time on the metric's first benchmark with a curve, on the final step's entry."""
    for model in board.models:
        curves = board.curves(model)
        steps = [e for e in board.entries_of(model) if _STEP.match(e.checkpoint)]
        if not curves or not steps:
            continue
        final = max(steps, key=lambda e: step_of(e.checkpoint))
        for bench in board.benchmarks:
            if bench.slug in curves and bench.metric not in final.half_times:
                final.half_times[bench.metric] = board.half_time(model, bench)


def half_time_metrics(board: Leaderboard) -> list[str]:
    """Metrics with at least one half-time (the main table's half-time columns)."""
    found = {m for e in board.entries for m, v in e.half_times.items() if v is not None}
    return [m for m in dict.fromkeys(b.metric for b in board.benchmarks) if m in found]
