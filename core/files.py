"""Writing files so that a reader never sees half of one: :func:`atomic_write` (the one copy).

Used by the activation cache, exported result files, the NSD response cache and the tiny-dino
trainer's checkpoints. Imports nothing of brainbench, so every part may use it.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", *, encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside ``path``; when the block ends without error, it replaces ``path``.

    A reader (or a process killed mid-write) sees the old file or the new one, never a truncated
    one: the data go to a hidden ``.<name>.*.tmp`` file in the same folder, which ``os.replace``
    renames over ``path`` in one step (atomic on POSIX and Windows file systems). On any error,
    the temporary file is removed and the error raised; ``path`` is left as it was.

    Parameters
    ----------
    path
        The file to write; missing parent folders are created.
    mode
        ``"w"`` (text, with ``encoding``) or ``"wb"`` (bytes: ``np.save``, ``torch.save``).

    The file gets the permissions ``open()`` would give it (``0o666`` less the umask), not the
    owner-only ones of a temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
