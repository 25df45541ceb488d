"""How much host memory this process may still use: the one free-memory probe.

The ridge engine sizes its target chunks with it and ``pipeline.activations`` checks that a model
fits before extracting. On Linux, ``MemAvailable`` (``/proc/meminfo``) is what the kernel could
give without swapping; in a container, the cgroup's limit less its usage is often far less, and
exceeding it gets the process killed, so the smaller of the two is what counts.
"""
from __future__ import annotations

import os
from pathlib import Path

#: where the process's cgroup is mounted (v2: memory.max; v1: memory/memory.limit_in_bytes)
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: cgroup v1 reports "no limit" as a huge number (the largest page-aligned 64-bit value)
_V1_UNLIMITED = 2**62


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def cgroup_available(root: Path | None = None) -> int | None:
    """Bytes left under the memory limit of this process's cgroup (v2, else v1); None without a limit.

    ``limit - usage`` (``memory.max - memory.current`` in cgroup v2; ``memory.limit_in_bytes -
    memory.usage_in_bytes`` in v1), never below 0. ``root`` defaults to :data:`CGROUP_ROOT`.
    """
    root = CGROUP_ROOT if root is None else Path(root)
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        limit, usage = _read_int(root / limit_file), _read_int(root / usage_file)
        if limit is not None and usage is not None and limit < _V1_UNLIMITED:
            return max(0, limit - usage)
    return None


def free_host_memory() -> int | None:
    """Bytes of host RAM this process may still use, or None when neither probe answers.

    The smaller of ``MemAvailable`` (else the free pages ``sysconf`` reports) and what the
    container's cgroup limit leaves (:func:`cgroup_available`).
    """
    values = [v for v in (_meminfo_available(), cgroup_available()) if v is not None]
    return min(values) if values else None
