"""What the ``bench`` command shows when something goes wrong: one sentence, never a traceback.

A :class:`~brainbench.core.errors.BrainbenchError` already is that sentence. Anything else
that reaches the command line is turned into one by :func:`one_sentence` (a full disk, a
permission refused, a library error that escaped the readers' own wrapping), and the last
line printed is ``Error: …`` with a non-zero exit status. ``bench --debug …`` or
``BRAINBENCH_DEBUG=1`` also prints the traceback, for bug reports.

:func:`file_error` is what readers of users' files call: it names the file, says what is
wrong in the library's words, and what to do.
"""
from __future__ import annotations

import errno
import os
import sys
import traceback
from pathlib import Path

from .errors import BrainbenchError

#: set by ``bench --debug``; ``BRAINBENCH_DEBUG=1`` does the same
_DEBUG = False


def set_debug(value: bool) -> None:
    global _DEBUG
    _DEBUG = bool(value)


def debug_enabled() -> bool:
    """Whether tracebacks are shown (``--debug`` or ``BRAINBENCH_DEBUG`` set to anything but 0/empty)."""
    return _DEBUG or os.environ.get("BRAINBENCH_DEBUG", "").strip().lower() not in ("", "0", "false", "no")


def show_traceback(exc: BaseException) -> None:
    """Print ``exc``'s traceback to stderr (only called in debug mode)."""
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


def _library_words(exc: BaseException) -> str:
    """The first line of a library's message, without the noise some add (errno prefixes, file names)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    return text.rstrip(".")


def file_error(path, what: str, exc: BaseException, todo: str = "") -> BrainbenchError:
    """One sentence for a library error while reading the user's file ``path`` (``what``: e.g. "NSD stimuli file").

    >>> str(file_error("/d/x.hdf5", "NSD stimuli file", OSError("truncated file"), "download it again"))
    'NSD stimuli file /d/x.hdf5 cannot be read (truncated file); download it again'
    """
    sentence = f"{what} {path} cannot be read ({_library_words(exc)})"
    return BrainbenchError(f"{sentence}; {todo}" if todo else sentence)


def one_sentence(exc: BaseException) -> str:
    """The sentence the command line shows for ``exc`` (see the module docstring)."""
    if isinstance(exc, BrainbenchError):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" writing {exc.filename}" if exc.filename else ""
        return f"the disk is full{where}; free some space (or point BRAINBENCH_HOME / --db elsewhere) and run again"
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        where = f" to {exc.filename}" if exc.filename else ""
        return f"permission denied{where}; make it writable or point BRAINBENCH_HOME / --db elsewhere"
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {_library_words(exc)}"
    if isinstance(exc, MemoryError):
        return "out of memory; use fewer images, a smaller --batch-size, or a machine with more memory"
    return (f"unexpected {type(exc).__name__}: {_library_words(exc)} (a bug in brainbench or a plugin; "
            "run again with --debug for the traceback and report it)")


def is_oserror_of(exc: BaseException, *codes: int) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is an OSError with one of ``codes``."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in codes:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def writable_folder(folder: Path, what: str) -> None:
    """Refuse, in one sentence, a ``folder`` that cannot be created or written (``what``: its role)."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise BrainbenchError(f"{what} {folder} is a file, not a folder; point it at a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BrainbenchError(f"{what} {folder} cannot be created ({_library_words(exc)}); "
                              "choose a folder you can write to") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BrainbenchError(f"{what} {folder} is not writable; choose a folder you can write to "
                              "(BRAINBENCH_HOME)")
