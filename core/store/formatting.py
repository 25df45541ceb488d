"""Render result rows as a text table, JSON or CSV (the CLI's ``--format``).

The JSON form is a list of objects with the fields of :class:`ResultRow`
(``score``/``error`` are null when undefined); it is stable, and documented in the README.
"""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Sequence

from ..config import Config
from ..errors import BrainbenchError
from .checks import CheckedStore
from .results import Failure, ResultRow, ResultStore

FORMATS = ("table", "json", "csv")
FAILURE_FIELDS = ("model", "checkpoint", "dataset", "subject", "metric", "attempts", "updated_at", "error")
TABLE_COLUMNS = ("model", "dataset", "metric", "subject", "score", "n", "n units", "elapsed")
CSV_FIELDS = ("model", "checkpoint", "dataset", "subject", "metric", "score", "error", "n_units",
              "elapsed_s", "options", "data_hash", "brainbench_version", "updated_at")


def _score_text(row: ResultRow) -> str:
    if math.isnan(row.score):
        return "n/a"
    return f"{row.score:.4f}" if math.isnan(row.error) else f"{row.score:.4f} ± {row.error:.4f}"


def base_metric(row: ResultRow) -> str | None:
    """The base metric of a trajectory metric's row (``halftime`` of ``encoding``), else None."""
    try:
        base = json.loads(row.options).get("metric", {}).get("base")
    except (json.JSONDecodeError, AttributeError):
        return None
    return base if isinstance(base, str) else None


def _metric_text(row: ResultRow) -> str:
    """The metric's name, with the base metric of a trajectory metric's row: ``halftime(encoding)``."""
    base = base_metric(row)
    return f"{row.metric}({base})" if base is not None else row.metric


def _subjects_text(row: ResultRow) -> str:
    """Column ``n``: the subjects an aggregate row averages (those with a score); blank for one subject."""
    detail = row.detail if isinstance(row.detail, dict) else {}
    used = detail.get("n_subjects")
    if not isinstance(used, int):
        subjects = detail.get("subjects")
        if not isinstance(subjects, dict):
            return ""
        used = sum(isinstance(v, (int, float)) and math.isfinite(v) for v in subjects.values())
    return str(used)


def _flat_options(row: ResultRow) -> dict[str, str]:
    """A row's stored options as ``kind.name`` → value text (``model.seed`` → ``2``)."""
    try:
        options = json.loads(row.options)
    except (json.JSONDecodeError, TypeError):
        return {}
    flat: dict[str, str] = {}
    for kind, value in (options.items() if isinstance(options, dict) else ()):
        if isinstance(value, dict):
            flat.update({f"{kind}.{name}": json.dumps(v) if not isinstance(v, str) else v for name, v in value.items()})
        else:
            flat[kind] = json.dumps(value) if not isinstance(value, str) else value
    return flat


def _options_column(rows: Sequence[ResultRow]) -> list[str] | None:
    """Per row, the options that tell it apart from rows with the same model, dataset, metric and subject
    (``model.seed=2``; ``default`` where a row does not set the option); None when no two rows share those."""
    groups: dict[tuple, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault((row.model, row.checkpoint, row.dataset, row.metric, row.subject), []).append(i)
    if all(len(members) == 1 for members in groups.values()):
        return None
    flat = [_flat_options(row) for row in rows]
    varying = sorted({key for members in groups.values() if len(members) > 1
                      for key in set().union(*(flat[i] for i in members))
                      if len({flat[i].get(key) for i in members}) > 1})
    return [" ".join(f"{key}={flat[i].get(key, 'default')}" for key in varying) for i in range(len(rows))]


def table(rows: Sequence[ResultRow]) -> str:
    """Aligned plain-text table, one line per row; ``n`` is the number of subjects an aggregate row used.

    When rows differ only in their options (another seed, precision or metric option), a last column
    ``options`` shows those that differ, so that no two lines look the same.
    """
    options = _options_column(rows)
    columns = TABLE_COLUMNS + (("options",) if options else ())
    lines = [columns]
    for i, row in enumerate(rows):
        lines.append((f"{row.model}@{row.checkpoint}", row.dataset, _metric_text(row), row.subject,
                      _score_text(row), _subjects_text(row), str(row.n_units), f"{row.elapsed_s:.1f} s")
                     + ((options[i],) if options else ()))
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def render(rows: Sequence[ResultRow], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([row.to_json() for row in rows], indent=2, allow_nan=False)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            values = row.to_json()
            values["options"] = row.options
            writer.writerow(values)
        return buffer.getvalue().rstrip("\n")
    return table(rows)


def render_failures(failures: list[Failure], fmt: str = "table") -> str:
    """Failed jobs as a table, JSON or CSV (``bench results --failed``)."""
    if fmt == "json":
        return json.dumps([f.to_json() for f in failures], indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=[*FAILURE_FIELDS, "options"], extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        for failure in failures:
            writer.writerow(vars(failure))
        return buffer.getvalue().rstrip("\n")
    if not failures:
        return "no failed jobs"
    lines = [("model", "dataset", "metric", "subject", "attempts", "last tried", "error")]
    lines += [(f"{f.model}@{f.checkpoint}", f.dataset, f.metric, f.subject, str(f.attempts), f.updated_at, f.error)
              for f in failures]
    widths = [max(len(line[i]) for line in lines) for i in range(6)]
    out = ["  ".join(c.ljust(w) for c, w in zip(line[:6], widths)) + "  " + line[6] for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths) + "  -----")
    return "\n".join(out)


def failed_results(db: str | None = None, fmt: str = "table", **filters: str | None) -> str:
    """What ``bench results --failed`` prints: the failures in the database, filtered by key globs."""
    config = Config(db=db)
    if not config.db_path.exists():
        raise BrainbenchError(f"no results database at {config.db_path} yet; run `bench grid` first")
    with CheckedStore(config.db_path, write=False) as store:
        return render_failures(store.failures(**filters), fmt)
