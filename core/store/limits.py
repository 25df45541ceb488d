"""Bounds on what brainbench reads from others: a result file over the size limit is refused before parsing.

A result file holds one model × dataset × metric: a few rows and their detail, well under a
megabyte. Parsing JSON takes tens of times a file's size in memory, so a file over
:func:`max_result_bytes` (``BRAINBENCH_MAX_RESULT_MB``, default :data:`DEFAULT_MAX_RESULT_MB`) is
refused in one sentence by ``bench results import`` and ``bench results validate``.
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MAX_RESULT_MB = 16.0


def max_result_bytes() -> int:
    """The size limit of a result file, in bytes (``BRAINBENCH_MAX_RESULT_MB``)."""
    from ..errors import BrainbenchError

    raw = os.environ.get("BRAINBENCH_MAX_RESULT_MB", "").strip()
    try:
        megabytes = float(raw) if raw else DEFAULT_MAX_RESULT_MB
    except ValueError:
        megabytes = -1.0
    if not megabytes > 0:
        raise BrainbenchError(f"BRAINBENCH_MAX_RESULT_MB={raw!r} is not a positive number of megabytes")
    return int(megabytes * 2**20)


def check_result_file_size(path: Path, label: str, error: type[Exception]) -> None:
    """Raise ``error`` (``InvalidResultFile`` for :mod:`~brainbench.core.store.portable`) when ``path`` is over
    the size limit."""
    try:
        size = Path(path).stat().st_size
    except OSError:
        return  # reading it says what is wrong
    limit = max_result_bytes()
    if size > limit:
        raise error(f"{label} is {size / 2**20:.1f} MB, over the {limit / 2**20:g} MB limit for a result "
                                "file (one model × dataset × metric is well under 1 MB); raise "
                                "BRAINBENCH_MAX_RESULT_MB if it is genuine")
