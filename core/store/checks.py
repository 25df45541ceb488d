"""The results database, checked before any work: every SQLite failure is one sentence naming the file.

:class:`CheckedStore` is the :class:`~brainbench.core.store.results.ResultStore` the commands open. It
refuses, before anything is computed, a ``--db`` that is a folder, a read-only file or folder,
a file that is not SQLite, a damaged (malformed) database, a database another process keeps
locked past the wait (SQLite's busy handler retries with backoff for ``LOCK_WAIT_S``), and a
disk with no room. A failure while saving (disk full midway) is the same kind of sentence;
the rows saved before it stay, each ``save`` being its own transaction.
"""
from __future__ import annotations

import functools
import sqlite3
from pathlib import Path

from ..errors import BrainbenchError
from ..failures import writable_folder
from .results import ResultStore

#: how long to wait for another writer's lock (SQLite retries with backoff meanwhile)
LOCK_WAIT_S = 30.0


def store_error(path: Path, exc: BaseException, doing: str = "use") -> BrainbenchError:
    """One sentence for a SQLite error on the results database at ``path``."""
    message = " ".join(str(exc).split()) or type(exc).__name__  # quick_check reports span lines
    lower = message.lower()
    if "locked" in lower or "busy" in lower:
        return BrainbenchError(f"results database {path} is locked by another process (waited {LOCK_WAIT_S:g} s); "
                               "wait for it to finish, or use another --db")
    if "readonly" in lower or "read-only" in lower:
        return BrainbenchError(f"results database {path} is read-only; make it writable, or use another --db")
    if "full" in lower or "disk i/o" in lower:
        return BrainbenchError(f"cannot {doing} results database {path}: the disk is full or failing ({message}); "
                               "free some space and run again (rows saved so far are kept)")
    if "not a database" in lower or "file is encrypted" in lower:
        return BrainbenchError(f"{path} is not a SQLite results database ({message}); point --db at a results "
                               "database, or at a new file")
    if "malformed" in lower or "corrupt" in lower:
        return BrainbenchError(f"results database {path} is damaged ({message}); restore it from a backup, or use "
                               "a new --db")
    if "unable to open" in lower:
        return BrainbenchError(f"results database {path} cannot be opened ({message}); check that its folder exists "
                               "and is writable, or use another --db")
    return BrainbenchError(f"cannot {doing} results database {path} ({message})")


def _sentences(doing: str):
    """Decorator: a ``sqlite3.Error`` in the method becomes :func:`store_error` naming the database."""
    def wrap(method):
        @functools.wraps(method)
        def wrapper(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except sqlite3.Error as exc:
                raise store_error(self.path, exc, doing) from None
        return wrapper
    return wrap


class CheckedStore(ResultStore):
    """A results database opened and checked before any work (see the module docstring).

    Parameters
    ----------
    path : the database file (created with its folder when absent).
    write : also check that it can be written (a write lock is taken and released at once).
    """

    def __init__(self, path: str | Path, *, write: bool = True):
        path = Path(path).expanduser()
        if path.is_dir():
            raise BrainbenchError(f"results database {path} is a folder; give a file, e.g. --db {path / 'results.db'}")
        if write:
            writable_folder(path.parent, "the results database's folder")
        elif not path.exists():
            raise BrainbenchError(f"no results database at {path}")
        self.path = path
        try:
            super().__init__(path)
            self.db.execute(f"PRAGMA busy_timeout = {int(LOCK_WAIT_S * 1000)}")
            problem = self.db.execute("PRAGMA quick_check(1)").fetchone()[0]
            if problem != "ok":
                raise sqlite3.DatabaseError(f"database disk image is malformed: {problem}")
            if write:  # fails now, not after the work, when it cannot be written (read-only, locked)
                version = self.db.execute("PRAGMA user_version").fetchone()[0]
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    self.db.execute(f"PRAGMA user_version = {int(version)}")  # a write that changes nothing
                finally:
                    self.db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            if getattr(self, "db", None) is not None:
                self.db.close()
            raise store_error(path, exc, "open") from None

    save = _sentences("save a row to")(ResultStore.save)
    merge = _sentences("add rows to")(ResultStore.merge)
    record_failure = _sentences("record a failure in")(ResultStore.record_failure)
    get = _sentences("read")(ResultStore.get)
    keys = _sentences("read")(ResultStore.keys)
    failures = _sentences("read")(ResultStore.failures)
    query = _sentences("read")(ResultStore.query)
    count = _sentences("read")(ResultStore.count)
