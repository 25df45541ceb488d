"""Content hashes of large files (model weights), computed once and remembered by the file's identity.

A weights file replaced by one of the same size with its modification time kept (``cp -p``,
``rsync -a``, ``touch -r``) has other content: only a hash of the content tells them apart. Hashing
a 27 GB checkpoint takes a minute, so the hash is remembered under the file's identity — resolved
path, size, ``mtime_ns``, inode and ``ctime_ns`` (the inode change time, which a process cannot
set back: any rewrite or ``touch`` changes it) — in memory and in ``<home>/file-hashes/``. A
changed identity means the content is hashed again. The memo is best effort: an unwritable home
only costs the rehash.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

_MEMO: dict[str, str] = {}
_BLOCK = 1 << 24


def _identity(path: Path) -> str:
    stat = path.stat()
    blob = f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\0{stat.st_ino}\0{stat.st_ctime_ns}"
    return hashlib.sha256(blob.encode()).hexdigest()


def _memo_folder() -> Path | None:
    try:
        from .config import Config

        return Config().home / "file-hashes"
    except Exception:  # noqa: BLE001 - a bad config only loses the memo
        return None


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 (hex) of ``path``'s content; read once per identity (see the module docstring).

    Raises
    ------
    OSError
        When the file cannot be read.
    """
    path = Path(path)
    identity = _identity(path)
    if identity in _MEMO:
        return _MEMO[identity]
    folder = _memo_folder()
    memo = folder / identity if folder is not None else None
    if memo is not None:
        try:
            digest = memo.read_text().strip()
            if len(digest) == 64:
                _MEMO[identity] = digest
                return digest
        except OSError:
            pass
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_BLOCK):
            h.update(block)
    digest = h.hexdigest()
    _MEMO[identity] = digest
    if memo is not None:
        try:
            memo.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=memo.parent, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                f.write(digest)
            os.replace(tmp, memo)
        except OSError:
            pass
    return digest
