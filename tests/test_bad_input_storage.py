"""Kind 6 of issue 13: storage failures are one sentence each, found before any work, and lose nothing.

Cases rel-56 … rel-60, rel-62, rel-63, rel-65, rel-97 and rel-98 of ../shared/cases, as tests.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from brainbench.core.store import checks as store_checks
from brainbench.core.errors import BrainbenchError
from brainbench.core.store.results import ResultRow, ResultStore
from brainbench.core.store.checks import CheckedStore

from cli_errors import invoke, one_line_error
from conftest import TINY_DATASET, TINY_MODEL

TINY_SETS = [arg for key, value in TINY_DATASET.items() for arg in ("--set", f"dataset.{key}={value}")]
#: a root process that drops the capabilities that bypass file permissions (read-only is then read-only)
NOCAP = ["setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner,-linux_immutable", "--"]


def row(subject: str) -> ResultRow:
    return ResultRow(model="m", checkpoint="init", dataset="d", subject=subject, metric="encoding", options="{}",
                     score=0.5, error=0.1, n_units=3)


def as_unprivileged(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a Python that file permissions apply to (as root: without the bypassing capabilities)."""
    prefix = NOCAP if os.geteuid() == 0 else []
    if prefix and shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be enforced here")
    return subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def test_db_that_is_a_folder(tmp_path):  # rel-56
    one_line_error(invoke("run", "-m", TINY_MODEL, *TINY_SETS, "-q", "--db", tmp_path),
                   f"results database {tmp_path} is a folder")


def test_db_that_is_not_sqlite(tmp_path):  # rel-58
    path = tmp_path / "notsqlite.db"
    path.write_text("hello, I am a CSV file\n")
    one_line_error(invoke("run", "-m", TINY_MODEL, *TINY_SETS, "-q", "--db", path),
                   f"{path} is not a SQLite results database")
    one_line_error(invoke("results", "--db", path), f"{path} is not a SQLite results database")
    assert path.read_text() == "hello, I am a CSV file\n"  # left as it was


def _garble(path):
    db = sqlite3.connect(path)
    db.execute("pragma wal_checkpoint(TRUNCATE)")
    leaf = db.execute("select pageno from dbstat where name = 'results' and pagetype = 'leaf' order by pageno").fetchone()[0]
    db.close()
    with open(path, "r+b") as f:
        f.seek(4096 * (leaf - 1))
        f.write(os.urandom(4096))


def test_damaged_db_is_refused_by_run_and_results(tmp_path):  # rel-59, rel-60
    path = tmp_path / "r.db"
    with ResultStore(path) as store:
        for i in range(200):
            store.save(row(f"s{i:03d}"))
    _garble(path)
    before = path.read_bytes()
    one_line_error(invoke("run", "-m", TINY_MODEL, *TINY_SETS, "-q", "--db", path), f"results database {path} is damaged")
    one_line_error(invoke("results", "--db", path), f"results database {path} is damaged", "backup")
    assert path.read_bytes() == before  # nothing written into it


def test_db_locked_by_another_writer(tmp_path, monkeypatch):  # rel-62
    monkeypatch.setattr(store_checks, "LOCK_WAIT_S", 0.3)
    path = tmp_path / "r.db"
    ResultStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(BrainbenchError, match=r"is locked by another process \(waited 0.3 s\)"):
            CheckedStore(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    CheckedStore(path).close()  # free again


def test_home_that_is_a_file(tmp_path):  # rel-65
    home = tmp_path / "afile"
    home.write_text("x")
    one_line_error(invoke("run", "-m", TINY_MODEL, *TINY_SETS, "-q", env={"BRAINBENCH_HOME": str(home)}),
                   f"{home} is a file, not a folder")


def test_read_only_db_and_home_are_refused_before_any_work(tmp_path):  # rel-57, rel-63
    path = tmp_path / "ro.db"
    ResultStore(path).close()
    path.chmod(0o444)
    home = tmp_path / "home_ro"
    home.mkdir()
    home.chmod(0o555)
    code = f"""
from brainbench.core.errors import BrainbenchError
from brainbench.core.failures import writable_folder
from brainbench.core.store.checks import CheckedStore
for check in (lambda: CheckedStore({str(path)!r}), lambda: writable_folder({str(home)!r}, "home")):
    try:
        check()
        print("accepted")
    except BrainbenchError as exc:
        print(exc)
"""
    out = as_unprivileged(code)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == f"results database {path} is read-only; make it writable, or use another --db"
    assert lines[1].startswith(f"home {home} is not writable")


@pytest.fixture
def tmpfs(tmp_path):
    """A 5 MB tmpfs (needs root); skipped with a reason where it cannot be mounted."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): full-disk behaviour not tested")
    yield mount
    subprocess.run(["umount", str(mount)], capture_output=True)


def _fill(folder, keep_kb: int) -> None:
    stat = os.statvfs(folder)
    free_kb = stat.f_bavail * stat.f_frsize // 1024
    with open(folder / "filler", "wb") as f:
        f.write(bytes(max(free_kb - keep_kb, 0) * 1024))


def test_full_disk_keeps_the_rows_saved_and_says_so(tmpfs):  # rel-97, rel-98
    path = tmpfs / "r.db"
    store = CheckedStore(path)
    saved = 0
    _fill(tmpfs, keep_kb=48)
    with pytest.raises(BrainbenchError, match=f"cannot save a row to results database {path}: the disk is full"):
        for i in range(10_000):
            store.save(row(f"s{i:05d}") if i else ResultRow(**{**vars(row("big")), "detail": {"x": "y" * 20_000}}))
            saved += 1
    store.close()
    (tmpfs / "filler").unlink()
    with ResultStore(path) as again:
        assert again.count() == saved > 0  # every row saved before the disk filled is intact
