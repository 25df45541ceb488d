"""Where the leaderboard's rows come from: results databases, result files and folders of them.

``bench leaderboard build --from results/ --from other.db`` reads every source and merges the
rows (:class:`brainbench.core.store.exchange.RowPool`): rows are keyed by their key and benchmark
version, identical duplicates (the same score from two sources) are kept once, and two sources
that give different scores for one key and version stop the build with one sentence naming
both — the site never picks one silently. Result files are checked as ``bench results validate
--any-version`` checks them (every benchmark version is accepted and kept in its own column);
one invalid file stops the build.

Each row's ``provenance`` gains, in memory only, ``source`` (the file or database it came from,
as named on the command line) and, for files, ``content_sha256``: the site shows them.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Iterable

from brainbench.core.errors import BrainbenchError
from brainbench.core.store.exchange import RowPool
from brainbench.core.store.portable import InvalidResultFile, load, result_files
from brainbench.core.store.results import ResultRow, ResultStore

SQLITE_HEADER = b"SQLite format 3\x00"


def is_database(path: Path) -> bool:
    """Whether ``path`` is an SQLite file (an empty file counts: SQLite treats it as an empty database)."""
    with open(path, "rb") as f:
        head = f.read(len(SQLITE_HEADER))
    return head == SQLITE_HEADER or head == b""


def _with_source(row: ResultRow, source: str, **extra: str) -> ResultRow:
    return replace(row, provenance={**row.provenance, "source": source, **extra})


def collect_rows(sources: Iterable[str | Path], registry=None) -> tuple[list[ResultRow], int]:
    """Every row of every source, merged; and how many identical duplicates were dropped.

    Parameters
    ----------
    sources
        Results databases, result files (``*.json``) and folders of result files, in any mix.
    registry
        Where plugin declarations (score ranges) come from; default: the plugins installed here.

    Raises
    ------
    BrainbenchError
        For a source that does not exist or is neither kind, an invalid result file, or two
        sources that disagree on a score.
    """
    pool, invalid = RowPool(), []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_file() and path.suffix != ".json":
            if not is_database(path):
                raise BrainbenchError(f"{source} is neither a result file (*.json), a folder of them nor a results "
                                      "database")
            with ResultStore(path) as store:
                pool.add([_with_source(r, str(source)) for r in store.query()], str(source))
            continue
        if not path.exists():
            raise BrainbenchError(f"{source} does not exist; give --from result folders, result files or results "
                                  "databases")
        for file, label in result_files([source]):
            try:
                document, rows = load(file, label, strict_version=False, registry=registry)
            except InvalidResultFile as exc:
                invalid.append(str(exc))
                continue
            pool.add([_with_source(r, label, content_sha256=document["content_sha256"]) for r in rows], label)
    if invalid:
        more = f"; {len(invalid) - 1} more files are invalid too" if len(invalid) > 1 else ""
        raise BrainbenchError(f"{invalid[0]}{more} (`bench results validate --any-version` lists them)")
    if pool.conflicts:
        more = f"; {len(pool.conflicts) - 1} more conflicts" if len(pool.conflicts) > 1 else ""
        raise BrainbenchError(f"{pool.conflicts[0]}{more}; remove one of them from the sources")
    return [row for row, _ in pool.rows.values()], pool.identical
