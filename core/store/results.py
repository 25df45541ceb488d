"""Scores in SQLite: one row per (model, checkpoint, dataset, subject, metric, options).

The database is ``<home>/results.db`` unless ``--db``/``BRAINBENCH_DB`` says otherwise.
It runs in WAL mode so that readers (``bench results``, the leaderboard) never block a
run. Saving the same combination again updates the row in place. Schema changes are
migration functions applied once each and recorded in the ``_migrations`` table.
The aggregate over subjects is stored with ``subject = "all"``.

Jobs of ``bench grid`` that failed are kept in a second table, ``failures`` (same key,
plus the error, its traceback and the number of attempts); saving a score for a key
removes its failure in the same transaction, so a key is never both scored and failed.

Each row also records the version of its benchmark definition (``benchmark_version``, see
:mod:`brainbench.core.store.benchmarks`; rows stored before versions existed are version 1) and its
``provenance`` (a JSON object: who produced it, on what machine, from which data; empty for
rows scored here by a brainbench that does not record it). Rows from other labs' result
files are added with :meth:`ResultStore.merge`, which never overwrites a different score
silently (see :func:`same_values`).
"""
from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import asdict, dataclass, field, replace as _with
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

KEY_FIELDS = ("model", "checkpoint", "dataset", "subject", "metric", "options")
AGGREGATE_SUBJECT = "all"


@dataclass
class _Keyed:
    """The key fields shared by stored scores and recorded failures."""

    model: str
    checkpoint: str
    dataset: str
    subject: str
    metric: str
    options: str

    @property
    def key(self) -> tuple[str, ...]:
        """The row's key: the values of :data:`KEY_FIELDS`, in order."""
        return tuple(getattr(self, name) for name in KEY_FIELDS)

    def to_json(self) -> dict[str, Any]:
        """The stable JSON form (documented in the README); ``options`` parsed, NaN and infinities null."""
        out = asdict(self)
        out["options"] = json.loads(self.options)
        return json_safe(out)


@dataclass
class ResultRow(_Keyed):
    """One stored score. ``options`` is canonical JSON of every option that changes the score."""

    score: float
    error: float
    n_units: int
    detail: dict[str, Any] = field(default_factory=dict)
    brainbench_version: str = ""
    plugin_versions: dict[str, str] = field(default_factory=dict)
    data_hash: str = ""
    activations_key: str = ""
    seed: int = 0
    elapsed_s: float = 0.0
    created_at: str = ""
    updated_at: str = ""
    #: version of the benchmark definition the score was computed under; 0 = not stated (stamped on save)
    benchmark_version: int = 0
    #: who produced the row, where, from which data (see ``docs/community.md``); {} for unrecorded local rows
    provenance: dict[str, Any] = field(default_factory=dict)


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by None, recursively (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def canonical_options(options: dict[str, Any]) -> str:
    """Options as canonical JSON (sorted keys, no spaces): equal options, equal text."""
    return json.dumps(options, sort_keys=True, separators=(",", ":"), default=_jsonable)


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"option value {value!r} is not JSON-serialisable")


def _m001_results(db: sqlite3.Connection) -> None:
    db.execute(
        """
        CREATE TABLE results (
            id INTEGER PRIMARY KEY,
            model TEXT NOT NULL,
            checkpoint TEXT NOT NULL,
            dataset TEXT NOT NULL,
            subject TEXT NOT NULL,
            metric TEXT NOT NULL,
            options TEXT NOT NULL,
            score REAL,
            error REAL,
            n_units INTEGER NOT NULL,
            detail TEXT NOT NULL,
            brainbench_version TEXT NOT NULL,
            plugin_versions TEXT NOT NULL,
            data_hash TEXT NOT NULL,
            activations_key TEXT NOT NULL,
            seed INTEGER NOT NULL,
            elapsed_s REAL NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (model, checkpoint, dataset, subject, metric, options)
        )
        """
    )
    db.execute("CREATE INDEX results_by_benchmark ON results (dataset, metric)")


def _m002_failures(db: sqlite3.Connection) -> None:
    db.execute(
        """
    CREATE TABLE failures (
        id INTEGER PRIMARY KEY,
        model TEXT NOT NULL,
        checkpoint TEXT NOT NULL,
        dataset TEXT NOT NULL,
        subject TEXT NOT NULL,
        metric TEXT NOT NULL,
        options TEXT NOT NULL,
        error TEXT NOT NULL,
        traceback TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        brainbench_version TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (model, checkpoint, dataset, subject, metric, options)
    )
    """
    )


def _m003_provenance(db: sqlite3.Connection) -> None:
    # every row stored before benchmark versions existed was scored under version 1
    db.execute("ALTER TABLE results ADD COLUMN benchmark_version INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE results ADD COLUMN provenance TEXT NOT NULL DEFAULT '{}'")


MIGRATIONS = [_m001_results, _m002_failures, _m003_provenance]

#: the fields that two rows with one key must share to be the same score (see :func:`same_values`)
VALUE_FIELDS = ("score", "error", "n_units", "detail", "data_hash", "benchmark_version")


def same_values(a: ResultRow, b: ResultRow) -> bool:
    """Whether two rows hold the same score: equal :data:`VALUE_FIELDS`, bit for bit (NaN equals NaN).

    Timing, provenance, versions of brainbench and the plugins, the activation cache key and
    the seed may differ: two labs that computed the same numbers from the same data agree.
    """
    return all(_canonical(getattr(a, name)) == _canonical(getattr(b, name)) for name in VALUE_FIELDS)


def _canonical(value: Any) -> str:
    # NaN/infinities spelled as JSON extensions, so that NaN == NaN and -0.0 != 0.0 stays visible
    return json.dumps(value, sort_keys=True, allow_nan=True, default=_jsonable)


def differing_fields(a: ResultRow, b: ResultRow) -> list[str]:
    """The :data:`VALUE_FIELDS` in which ``a`` and ``b`` differ."""
    return [name for name in VALUE_FIELDS if _canonical(getattr(a, name)) != _canonical(getattr(b, name))]


@dataclass
class MergeReport:
    """What :meth:`ResultStore.merge` did with each row: counts, and the conflicts as (stored, offered) pairs."""

    added: int = 0
    identical: int = 0
    replaced: int = 0
    conflicts: list[tuple[ResultRow, ResultRow]] = field(default_factory=list)


@dataclass
class Failure(_Keyed):
    """A grid job that raised: its key, the one-line error, the traceback and how often it was tried."""

    error: str
    traceback: str = ""
    attempts: int = 1
    brainbench_version: str = ""
    created_at: str = ""
    updated_at: str = ""


class ResultStore:
    """The results database at ``path`` (created, with its folder, on first use)."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        with self.db:
            self.db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
            done = {r[0] for r in self.db.execute("SELECT name FROM _migrations")}
            for migration in MIGRATIONS:
                if migration.__name__ not in done:
                    migration(self.db)
                    self.db.execute("INSERT INTO _migrations VALUES (?, ?)", (migration.__name__, _now()))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def save(self, row: ResultRow) -> None:
        """Insert ``row``, or update the row with the same key in place (keeping ``created_at``).

        A row that states no ``benchmark_version`` gets the version this installation scores
        (:func:`brainbench.core.store.benchmarks.current_version`).
        """
        now = _now()
        values = _column_values(row)
        values["created_at"] = values["updated_at"] = now
        values["benchmark_version"] = _stamped(row).benchmark_version
        columns = list(values)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in KEY_FIELDS and c != "created_at")
        with self.db:
            self.db.execute(
                f"INSERT INTO results ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                f"ON CONFLICT ({', '.join(KEY_FIELDS)}) DO UPDATE SET {updates}",
                [values[c] for c in columns],
            )
            self.db.execute(f"DELETE FROM failures WHERE {_KEY_MATCH}", [values[c] for c in KEY_FIELDS])

    def merge(self, rows: list[ResultRow], *, replace: bool = False) -> MergeReport:
        """Add rows from elsewhere (another lab's result file), keeping their timestamps and provenance.

        A row whose key is not stored is added; one equal to the stored row (:func:`same_values`)
        is ignored; one that differs is a *conflict*. With a conflict and ``replace`` False nothing
        is written (all rows or none); with ``replace`` True conflicting rows overwrite the stored ones.

        Parameters
        ----------
        rows
            Rows with their ``benchmark_version`` set (0 is stamped as in :meth:`save`).
        replace
            Overwrite conflicting stored rows instead of refusing.

        Returns
        -------
        MergeReport
            Counts of rows added, identical (ignored) and replaced, and the conflicts.
        """
        report, plan = MergeReport(), []
        for row in map(_stamped, rows):
            stored = self.get(row.key)
            if stored is None:
                report.added += 1
                plan.append(row)
            elif same_values(stored, row):
                report.identical += 1
            else:
                report.conflicts.append((stored, row))
                if replace:
                    report.replaced += 1
                    plan.append(row)
        if report.conflicts and not replace:
            report.added = 0
            return report
        with self.db:
            for row in plan:
                values = _column_values(row)
                values["created_at"] = values["created_at"] or _now()
                values["updated_at"] = values["updated_at"] or values["created_at"]
                columns = list(values)
                self.db.execute(
                    f"INSERT OR REPLACE INTO results ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                    [values[c] for c in columns])
                self.db.execute(f"DELETE FROM failures WHERE {_KEY_MATCH}", [values[c] for c in KEY_FIELDS])
        return report

    def get(self, key: tuple[str, ...]) -> ResultRow | None:
        """The stored row with this key (:data:`KEY_FIELDS`, in order), or None."""
        cursor = self.db.execute(f"SELECT * FROM results WHERE {_KEY_MATCH}", list(key))
        return next(self._rows(cursor), None)

    def keys(self) -> set[tuple[str, ...]]:
        """The key (:data:`KEY_FIELDS`, in order) of every stored row."""
        return {tuple(r) for r in self.db.execute(f"SELECT {', '.join(KEY_FIELDS)} FROM results")}

    def record_failure(self, failure: Failure) -> None:
        """Store a failed job, or count one more attempt of an already failed one (keeping ``created_at``)."""
        now = _now()
        values = asdict(failure)
        values["created_at"] = values["updated_at"] = now
        columns = list(values)
        with self.db:
            self.db.execute(
                f"INSERT INTO failures ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                f"ON CONFLICT ({', '.join(KEY_FIELDS)}) DO UPDATE SET error = excluded.error, "
                "traceback = excluded.traceback, brainbench_version = excluded.brainbench_version, "
                "updated_at = excluded.updated_at, attempts = failures.attempts + 1",
                [values[c] for c in columns],
            )

    def failures(self, **filters: str | None) -> list[Failure]:
        """Failed jobs matching the given key fields (``None`` = any; ``*`` and ``?`` are wildcards)."""
        where, params = _where(filters)
        cursor = self.db.execute(
            f"SELECT * FROM failures {where} ORDER BY dataset, metric, model, checkpoint, subject, options", params)
        out = []
        for r in cursor:
            values = dict(r)
            values.pop("id")
            out.append(Failure(**values))
        return out

    def query(self, **filters: str | None) -> list[ResultRow]:
        """Rows matching the given fields (``None`` = any); ``*`` and ``?`` are wildcards."""
        where, params = _where(filters)
        cursor = self.db.execute(
            f"SELECT * FROM results {where} ORDER BY dataset, metric, model, checkpoint, subject, options", params
        )
        return list(self._rows(cursor))

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    @staticmethod
    def _rows(cursor) -> Iterator[ResultRow]:
        for r in cursor:
            values = dict(r)
            values.pop("id")
            values["detail"] = json.loads(values["detail"])
            values["plugin_versions"] = json.loads(values["plugin_versions"])
            values["provenance"] = json.loads(values["provenance"])
            for name in ("score", "error"):
                if values[name] is None:
                    values[name] = float("nan")
            yield ResultRow(**values)


_KEY_MATCH = " AND ".join(f"{name} = ?" for name in KEY_FIELDS)


def _stamped(row: ResultRow) -> ResultRow:
    """``row``, with the version this installation scores when it states none."""
    if row.benchmark_version:
        return row
    from .benchmarks import current_version

    return _with(row, benchmark_version=current_version(row.dataset, row.metric))


def _column_values(row: ResultRow) -> dict[str, Any]:
    """``row`` as the values of the ``results`` columns (JSON text for objects, NULL for NaN)."""
    values = asdict(row)
    values["detail"] = json.dumps(row.detail, allow_nan=True)
    values["plugin_versions"] = json.dumps(row.plugin_versions, sort_keys=True)
    values["provenance"] = json.dumps(row.provenance, allow_nan=False)  # in its order: files keep theirs
    for name in ("score", "error"):
        if values[name] is not None and math.isnan(values[name]):
            values[name] = None
    return values


def _where(filters: dict[str, str | None]) -> tuple[str, list[str]]:
    """A ``WHERE`` clause of GLOB matches on key fields, and its parameters."""
    clauses, params = [], []
    for name, value in filters.items():
        if name not in KEY_FIELDS:
            raise ValueError(f"cannot filter on {name!r}")
        if value is None:
            continue
        clauses.append(f"{name} GLOB ?")
        params.append(value)
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), params


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
