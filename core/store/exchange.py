"""Export, import and validate many result files (``bench results export|import|validate``).

- :func:`export_results` writes one portable file (:mod:`brainbench.core.store.portable`) per
  (model, checkpoint, dataset, metric, options) of a results database;
- :func:`import_files` checks files and merges their rows into a database: identical rows are
  ignored, a different score under a stored key is a conflict, reported and not written;
- :func:`validate_files` checks files and, across them, that no two give different scores for
  one key and benchmark version (what the CI of a results repository runs).

:class:`RowPool` is the merge across sources that ``validate`` and the leaderboard use: rows are
keyed by their key *and* benchmark version, so that versions are kept apart rather than
conflicting.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import brainbench
from ..errors import BrainbenchError
from ..files import atomic_write
from .portable import (InvalidResultFile, check_document, dumps, file_name, load, make_document, read_document,
                       result_files)
from .provenance import contributor as resolve_contributor, data_fingerprints, machine_summary
from .results import AGGREGATE_SUBJECT, ResultRow, ResultStore, differing_fields, same_values

#: provenance keys that a fresh export stamps, ignored when deciding whether a file changed
_EXPORT_STAMPS = ("exported_at", "exported_with")


def describe(row: ResultRow) -> str:
    """``model@checkpoint × dataset × metric`` (and the subject, unless it is the aggregate)."""
    subject = "" if row.subject == AGGREGATE_SUBJECT else f", subject {row.subject}"
    return f"{row.model}@{row.checkpoint} × {row.dataset} × {row.metric}{subject}"


def _number(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) and math.isfinite(value) else str(value)


def difference(a: ResultRow, b: ResultRow) -> str:
    """How two rows with one key differ, e.g. ``score 0.4123 vs 0.42, different detail``."""
    parts = []
    for name in differing_fields(a, b):
        if name in ("score", "error", "n_units", "benchmark_version"):
            parts.append(f"{name} {_number(getattr(a, name))} vs {_number(getattr(b, name))}")
        elif name == "data_hash":
            parts.append(f"data hash {a.data_hash[:12]} vs {b.data_hash[:12]}")
        else:
            parts.append(f"different {name}")
    return ", ".join(parts)


# -- export ---------------------------------------------------------------------------------

@dataclass
class ExportReport:
    """Files written, files left as they were (same scores), groups that could not be exported, notes."""

    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _groups(rows: Iterable[ResultRow]) -> dict[tuple, list[ResultRow]]:
    groups: dict[tuple, list[ResultRow]] = {}
    for row in rows:
        groups.setdefault((row.model, row.checkpoint, row.dataset, row.metric, row.options), []).append(row)
    return groups


def _provenance(rows: list[ResultRow], who, *, fingerprints: bool, registry, notes: list[str]) -> dict[str, Any]:
    """The file provenance of one group: the stored one of imported rows, else a fresh one."""
    name = describe(rows[0]).split(", subject")[0]
    stored = [r.provenance for r in rows]
    if any(p.get("contributor") for p in stored):
        if any(p != stored[0] for p in stored):
            raise BrainbenchError(f"{name}: its rows come from different result files or machines (different "
                                  "provenance); rescore them here, or export the files they came from")
        return stored[0]
    versions = sorted({r.benchmark_version for r in rows})
    if len(versions) > 1:
        raise BrainbenchError(f"{name}: its rows were scored under different benchmark versions "
                              f"({', '.join(map(str, versions))}); rescore them with `bench run`")
    hashes = sorted({r.data_hash for r in rows})
    if hashes == [""]:
        raise BrainbenchError(f"{name}: its rows have no data hash, so nobody could check which data they come "
                              "from; rescore them with `bench run`")
    if len(hashes) > 1:
        raise BrainbenchError(f"{name}: its rows were scored on different data (data hashes "
                              f"{', '.join(h[:12] for h in hashes)}); rescore them with `bench run`")
    recorded = sorted(rows, key=lambda r: r.subject != AGGREGATE_SUBJECT)  # the aggregate's record first
    machine = next((r.provenance["machine"] for r in recorded if r.provenance.get("machine")), None)
    stored_fingerprints = next((r.provenance["data_fingerprints"] for r in recorded
                                if r.provenance.get("data_fingerprints")), None)
    options = json.loads(rows[0].options).get("dataset") or {}
    data, note = data_fingerprints(rows[0].dataset, options, hashes[0], stored_fingerprints, build=fingerprints,
                                   registry=registry)
    if note:
        notes.append(f"{name}: only the data hash is recorded, because {note}")
    # what the model recorded of its own inputs (the file hashes of imported features) travels too
    features = next((r.provenance["features"] for r in recorded if r.provenance.get("features")), None)
    return {**who(), "machine": machine or machine_summary(),
            "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "exported_with": brainbench.__version__, "data_fingerprints": data,
            **({"features": features} if features else {})}


def _sans_stamps(document: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in document.items() if k != "content_sha256"}
    out["provenance"] = {k: v for k, v in document.get("provenance", {}).items() if k not in _EXPORT_STAMPS}
    return out


def _write(path: Path, text: str) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    with atomic_write(path) as f:
        f.write(text)


def export_results(store: ResultStore, out: str | Path, *, filters: dict[str, str | None] | None = None,
                   contributor: str | None = None, lab: str | None = None, fingerprints: bool = True,
                   registry=None) -> ExportReport:
    """Write one result file per (model, checkpoint, dataset, metric, options) of ``store`` under ``out``.

    Parameters
    ----------
    store
        The results database.
    out
        The folder; files go to ``<dataset>/<metric>/<model>@<checkpoint>--<options hash>.json``.
        A file whose scores and provenance are unchanged is left as it is (its export time too).
    filters
        Key-field globs, as for :meth:`ResultStore.query`.
    contributor, lab
        Who produced the rows scored here (default: ``$BRAINBENCH_CONTRIBUTOR``, ``$BRAINBENCH_LAB``);
        rows imported from other labs keep their own provenance.
    fingerprints
        Build datasets whose plugin has ``fingerprints()`` to record their data fingerprints.
    registry
        Where plugins are looked up (default: those installed here).
    """
    out = Path(out).expanduser()
    report = ExportReport()
    who_cache: list[dict[str, str]] = []

    def who() -> dict[str, str]:
        if not who_cache:
            who_cache.append(resolve_contributor(contributor, lab))
        return who_cache[0]

    for rows in _groups(store.query(**(filters or {}))).values():
        if not any(r.provenance.get("contributor") for r in rows):
            who()  # scored here: without a contributor nothing can be exported (raises at once)
        try:
            document = make_document(rows, _provenance(rows, who, fingerprints=fingerprints, registry=registry,
                                                       notes=report.notes))
            target = out / file_name(document)
            check_document(document, f"{target} (not written)", strict_version=False, registry=registry)
        except BrainbenchError as exc:
            report.problems.append(str(exc))
            continue
        if target.is_file():
            try:
                if _sans_stamps(read_document(target)) == _sans_stamps(document):
                    report.unchanged.append(target)
                    continue
            except InvalidResultFile:
                pass  # overwritten below
        _write(target, dumps(document))
        report.written.append(target)
    return report


# -- import ---------------------------------------------------------------------------------

@dataclass
class ImportReport:
    """Per file: imported, rejected (one sentence each) or in conflict; and row counts."""

    imported: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    added: int = 0
    identical: int = 0
    replaced: int = 0

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.conflicts


def import_files(store: ResultStore, paths: Iterable[str | Path], *, replace: bool = False,
                 strict_version: bool = True, registry=None) -> ImportReport:
    """Check each result file and merge its rows into ``store``, all of a file's rows or none.

    A file that fails a check is rejected; one whose rows differ from stored rows with the same
    key is a conflict and nothing of it is written, unless ``replace`` (then they overwrite).
    """
    report = ImportReport()
    for path, label in result_files(paths):
        try:
            _, rows = load(path, label, strict_version=strict_version, registry=registry)
        except InvalidResultFile as exc:
            report.rejected.append(str(exc))
            continue
        merged = store.merge(rows, replace=replace)
        if merged.conflicts and not replace:
            stored, offered = merged.conflicts[0]
            more = f" (and {len(merged.conflicts) - 1} more rows)" if len(merged.conflicts) > 1 else ""
            report.conflicts.append(f"{label} conflicts with the stored score of {describe(stored)}: "
                                    f"{difference(stored, offered)}{more}; nothing from it was imported "
                                    "(--replace overwrites)")
            continue
        report.imported.append(label)
        report.added += merged.added
        report.identical += merged.identical
        report.replaced += merged.replaced
    return report


# -- validation and merging across sources ----------------------------------------------------

class RowPool:
    """Rows from several sources, one per (key, benchmark version); a differing duplicate is a conflict."""

    def __init__(self):
        self.rows: dict[tuple, tuple[ResultRow, str]] = {}
        self.conflicts: list[str] = []
        self.identical = 0

    def add(self, rows: Iterable[ResultRow], source: str) -> None:
        """Add ``rows`` that came from ``source`` (a file or database, as the user named it)."""
        for row in rows:
            slot = (*row.key, row.benchmark_version)
            if slot not in self.rows:
                self.rows[slot] = (row, source)
            elif same_values(self.rows[slot][0], row):
                self.identical += 1
            else:
                first, where = self.rows[slot]
                self.conflicts.append(f"{where} and {source} give different results for {describe(row)} "
                                      f"(benchmark version {row.benchmark_version}): {difference(first, row)}")

    def sources(self) -> dict[tuple, str]:
        return {slot: source for slot, (_, source) in self.rows.items()}


@dataclass
class ValidationReport:
    """Files that passed, one sentence per file that failed, and conflicts between files."""

    valid: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    identical: int = 0

    @property
    def ok(self) -> bool:
        return not self.invalid and not self.conflicts


def validate_files(paths: Iterable[str | Path], *, strict_version: bool = True, registry=None) -> ValidationReport:
    """Check every result file given (or under a folder given), and that no two of them conflict."""
    report, pool = ValidationReport(), RowPool()
    for path, label in result_files(paths):
        try:
            _, rows = load(path, label, strict_version=strict_version, registry=registry)
        except InvalidResultFile as exc:
            report.invalid.append(str(exc))
            continue
        report.valid.append(label)
        pool.add(rows, label)
    report.conflicts, report.identical = pool.conflicts, pool.identical
    return report
