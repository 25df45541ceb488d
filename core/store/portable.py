"""Portable result files: the JSON form of one benchmark score that labs exchange.

One file holds the rows of one (model, checkpoint, dataset, metric, options): every subject's
row and the aggregate over subjects (``subject = "all"``), the benchmark definition and version
(:mod:`brainbench.core.store.benchmarks`), and the provenance (:mod:`brainbench.core.store.provenance`).
Its layout is published as a JSON Schema, ``core/store/schemas/result-v1.schema.json``; the field
``schema_version`` says which. ``docs/community.md`` describes it for people.

Files are strict JSON: a number that is not finite is ``null``, and each row's ``non_finite``
object names (as JSON Pointers) the nulls that stand for NaN or an infinity, so that
database → file → database is lossless. ``content_sha256`` is the SHA-256 of the canonical JSON
of the rest of the file; :func:`check_document` recomputes it, so a score edited after export
is detected. It detects edits, not forgery: anyone can recompute it (there are no signing keys).

This module converts and checks one document; :mod:`brainbench.core.store.exchange` exports,
imports and validates many.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable

from .benchmarks import benchmark_id, current_version, score_range
from ..errors import BrainbenchError
from .results import AGGREGATE_SUBJECT, ResultRow, canonical_options, json_safe
from .schema import first_problem, load_schema

SCHEMA_VERSION = 1
SCHEMA_NAME = f"result-v{SCHEMA_VERSION}"
#: the fields a file holds once for all its rows (the row key without the subject)
HEAD_FIELDS = ("model", "checkpoint", "dataset", "metric")
ROW_FIELDS = ("subject", "score", "error", "n_units", "detail", "brainbench_version", "plugin_versions",
              "data_hash", "activations_key", "seed", "elapsed_s", "created_at", "updated_at")
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class InvalidResultFile(BrainbenchError):
    """A result file that cannot be accepted; the message is one sentence naming the file and the reason."""


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text, strict JSON: the form ``content_sha256`` is computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(document: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of ``document`` without its ``content_sha256``."""
    body = {k: v for k, v in document.items() if k != "content_sha256"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


# -- rows <-> documents ---------------------------------------------------------------------

def _escape(key: str) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _strip(value: Any, pointer: str, found: dict[str, str]) -> Any:
    """``value`` with non-finite floats replaced by None, their JSON Pointers recorded in ``found``."""
    if isinstance(value, float) and not math.isfinite(value):
        found[pointer] = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return None
    if isinstance(value, dict):
        return {k: _strip(v, f"{pointer}/{_escape(k)}", found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strip(v, f"{pointer}/{i}", found) for i, v in enumerate(value)]
    return value


def encode_row(row: ResultRow) -> dict[str, Any]:
    """The file form of ``row``'s per-subject fields (strict JSON, with ``non_finite`` when needed)."""
    found: dict[str, str] = {}
    out = _strip({name: getattr(row, name) for name in ROW_FIELDS}, "", found)
    if found:
        out["non_finite"] = found
    return out


def _pointer_parts(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def _locate(row: dict[str, Any], pointer: str) -> tuple[Any, Any] | None:
    """(container, key) that ``pointer`` names inside ``row``, or None when it names nothing."""
    parts = _pointer_parts(pointer)
    if not pointer.startswith("/") or not parts:
        return None
    node: Any = row
    for part in parts[:-1]:
        node = node.get(part) if isinstance(node, dict) else (
            node[int(part)] if isinstance(node, list) and part.isdigit() and int(part) < len(node) else None)
        if node is None:
            return None
    last = parts[-1]
    if isinstance(node, dict) and last in node:
        return node, last
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        return node, int(last)
    return None


def decode_row(item: dict[str, Any], document: dict[str, Any]) -> ResultRow:
    """The :class:`ResultRow` of one row of a checked ``document``."""
    values = json.loads(json.dumps({k: v for k, v in item.items() if k != "non_finite"}))  # a private copy
    for pointer, spelled in item.get("non_finite", {}).items():
        container, key = _locate(values, pointer)
        container[key] = _NON_FINITE[spelled]
    for name in ("score", "error"):
        values[name] = math.nan if values[name] is None else float(values[name])
    values.update(n_units=int(values["n_units"]), seed=int(values["seed"]), elapsed_s=float(values["elapsed_s"]))
    return ResultRow(**{k: document[k] for k in HEAD_FIELDS}, options=canonical_options(document["options"]),
                     benchmark_version=document["benchmark"]["version"], provenance=document["provenance"],
                     **values)


def document_rows(document: dict[str, Any]) -> list[ResultRow]:
    """Every row of a checked ``document``, as stored in a results database."""
    return [decode_row(item, document) for item in document["rows"]]


def make_document(rows: list[ResultRow], provenance: dict[str, Any]) -> dict[str, Any]:
    """The result file of ``rows`` (one model, checkpoint, dataset, metric and options), with ``provenance``.

    Parameters
    ----------
    rows
        The rows of every subject and the aggregate; they must share their key but the subject,
        their ``benchmark_version`` (stated, not 0) and their ``data_hash``.
    provenance
        The file's provenance object (see the schema); its ``data_fingerprints.data_hash`` should
        be the rows' data hash.
    """
    first = rows[0]
    options = json.loads(first.options)
    aggregate = next((r for r in rows if r.subject == AGGREGATE_SUBJECT), None)
    document = {
        "schema_version": SCHEMA_VERSION,
        **{name: getattr(first, name) for name in HEAD_FIELDS},
        "benchmark": {"id": benchmark_id(first.dataset, first.metric, options), "version": first.benchmark_version},
        "options": options,
        "subjects": [r.subject for r in rows if r.subject != AGGREGATE_SUBJECT],
        "score": json_safe(aggregate.score) if aggregate else None,
        "error": json_safe(aggregate.error) if aggregate else None,
        "provenance": provenance,
        "rows": [encode_row(r) for r in rows],
    }
    document["content_sha256"] = content_hash(document)
    return document


def file_name(document: dict[str, Any]) -> Path:
    """``<dataset>/<metric>/<model>@<checkpoint>--<options hash>.json``: where export writes ``document``."""
    options = hashlib.sha256(canonical_options(document["options"]).encode()).hexdigest()[:8]
    safe = [re.sub(r"[^A-Za-z0-9._+-]+", "-", document[k]) for k in HEAD_FIELDS]
    return Path(safe[2], safe[3], f"{safe[0]}@{safe[1]}--{options}.json")


def dumps(document: dict[str, Any]) -> str:
    """The text export writes: indented, keys in the document's order, strict JSON, ending in a newline."""
    return json.dumps(document, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


# -- reading and checking -------------------------------------------------------------------

def _reject_constant(name: str):
    raise ValueError(f"it holds {name}, which JSON does not allow (an undefined number is null)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"it holds the number {text}, too large to be a finite number")
    return value


def read_document(path: Path, label: str | None = None) -> dict[str, Any]:
    """Parse the result file at ``path`` as strict JSON (no NaN, no infinities); not yet checked."""
    label = label or str(path)
    from .limits import check_result_file_size

    # refused before parsing: JSON takes ~30× a file's size in memory
    check_result_file_size(path, label, InvalidResultFile)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidResultFile(f"cannot read {label} ({exc})") from None
    try:
        document = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError too
        raise InvalidResultFile(f"{label} is not strict JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InvalidResultFile(f"{label} is not a brainbench result file: it holds a JSON {type(document).__name__}, "
                                "not an object")
    return document


def check_document(document: dict[str, Any], label: str, *, strict_version: bool = True, registry=None) -> None:
    """Raise :class:`InvalidResultFile` (one sentence) unless ``document`` is a valid, unedited result file.

    Checked in order: the schema version; the published JSON Schema (types, required fields and
    provenance); ``content_sha256``; then the rows against each other and the file (subjects, the
    aggregate's score, one data hash, ``non_finite`` pointers), the benchmark id, the score range
    of the metric, and — with ``strict_version`` — that the benchmark version is the one this
    brainbench scores.

    Parameters
    ----------
    document
        A parsed file (:func:`read_document`).
    label
        How the file is named in the message (its path).
    strict_version
        Refuse benchmark versions other than this installation's (``bench results import`` and
        ``validate``); the leaderboard accepts every version and keeps them apart.
    registry
        Where plugin declarations (benchmark versions, score ranges) come from; default: installed plugins.
    """
    def reject(reason: str) -> None:
        raise InvalidResultFile(f"{label} {reason}")

    version = document.get("schema_version")
    if version != SCHEMA_VERSION or isinstance(version, bool):
        if "schema_version" not in document:
            reject("is not a brainbench result file: it has no schema_version")
        reject(f"has schema_version {json.dumps(version)}, but this brainbench reads schema version "
               f"{SCHEMA_VERSION} only (upgrade brainbench, or export the file again)")
    problem = first_problem(document, load_schema(SCHEMA_NAME))
    if problem:
        where = " required provenance:" if problem.startswith("provenance") and " lacks " in problem else ""
        reject(f"does not follow result schema {SCHEMA_VERSION}:{where} {problem}")
    if content_hash(document) != document["content_sha256"]:
        reject("was changed after export: its content_sha256 fingerprint does not match its content "
               "(export it again instead of editing it)")
    _check_rows(document, reject)
    expected_id = benchmark_id(document["dataset"], document["metric"], document["options"])
    if document["benchmark"]["id"] != expected_id:
        reject(f"names benchmark {document['benchmark']['id']}, but its dataset, metric and options define "
               f"{expected_id}")
    if strict_version:
        here = current_version(document["dataset"], document["metric"], registry)
        if document["benchmark"]["version"] != here:
            reject(f"was scored under version {document['benchmark']['version']} of benchmark "
                   f"{document['dataset']}/{document['metric']}, but this brainbench scores version {here}, and "
                   "scores of different versions are not comparable (rescore, or use --any-version to keep it apart)")
    bounds = score_range(document["metric"], registry)
    for i, item in enumerate(document["rows"]):
        if bounds and item["score"] is not None and not bounds[0] <= item["score"] <= bounds[1]:
            reject(f"has rows[{i}].score = {item['score']}, outside the range [{bounds[0]:g}, {bounds[1]:g}] "
                   f"of metric {document['metric']}")


def _check_rows(document: dict[str, Any], reject) -> None:
    """The rows agree with each other and with the file's summary fields."""
    subjects = [item["subject"] for item in document["rows"]]
    twice = next((s for s in subjects if subjects.count(s) > 1), None)
    if twice is not None:
        reject(f"has two rows for subject {twice!r}")
    listed = [s for s in subjects if s != AGGREGATE_SUBJECT]
    if sorted(listed) != sorted(document["subjects"]):
        reject(f"lists subjects {document['subjects']} but has rows for {listed}")
    aggregate = next((item for item in document["rows"] if item["subject"] == AGGREGATE_SUBJECT), None)
    for name in ("score", "error"):
        expected = aggregate[name] if aggregate else None
        if document[name] != expected:
            reject(f"gives {name} {document[name]} but its aggregate row ({AGGREGATE_SUBJECT!r}) has {expected}")
    data_hash = document["provenance"]["data_fingerprints"]["data_hash"]
    for i, item in enumerate(document["rows"]):
        if item["data_hash"] != data_hash:
            reject(f"has rows[{i}].data_hash {item['data_hash'][:12]}…, not the file's data fingerprint "
                   f"{data_hash[:12]}…")
        for pointer in item.get("non_finite", {}):
            found = _locate(item, pointer)
            if found is None or found[0][found[1]] is not None:
                reject(f"has rows[{i}].non_finite naming {pointer!r}, which is not a null of the row")


def load(path: Path, label: str | None = None, *, strict_version: bool = True,
         registry=None) -> tuple[dict[str, Any], list[ResultRow]]:
    """Read and check the result file at ``path``; its document and rows."""
    label = label or str(path)
    document = read_document(path, label)
    check_document(document, label, strict_version=strict_version, registry=registry)
    return document, document_rows(document)


def result_files(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """(path, label) of every ``*.json`` file given, or found under a folder given (hidden folders skipped).

    Raises
    ------
    BrainbenchError
        For a path that does not exist.
    """
    found: list[tuple[Path, str]] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            for file in sorted(path.rglob("*.json")):
                relative = file.relative_to(path)
                if not any(part.startswith(".") for part in relative.parts):
                    found.append((file, str(Path(given) / relative)))
        elif path.is_file():
            found.append((path, str(given)))
        else:
            raise BrainbenchError(f"{given} does not exist; give result files or folders of them")
    return found
