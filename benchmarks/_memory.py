"""Peak memory of a benchmark worker, measured from ``/proc`` (Linux), with no dependency.

Why not ``getrusage().ru_maxrss``: Linux keeps it across ``fork`` + ``execve``, so a worker
started by a pytest process that holds a model reports at least that process's RSS at the fork
(1.7 GB with dinov3-base loaded), whatever it uses itself. ``VmHWM`` belongs to the address
space, which ``execve`` replaces, so it is the worker's own peak. The decoding workers of a
``DataLoader`` are forked children: their memory is followed by sampling the proportional set
size (PSS: shared pages divided among the processes sharing them) of the worker and all its
descendants, so pages shared after the fork are counted once.
"""
from __future__ import annotations

import os
import threading


def _field_mb(path: str, field: str) -> float:
    """The ``field:  N kB`` line of a /proc file, in MB; 0 where the file or the line is missing."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def high_water_mb(pid: int | str = "self") -> float:
    """Peak RSS of a process's own address space (``VmHWM``), MB; 0 where /proc has none."""
    return _field_mb(f"/proc/{pid}/status", "VmHWM")


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    children = [int(c) for c in f.read().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def _pss_mb(pid: int) -> float:
    return _field_mb(f"/proc/{pid}/smaps_rollup", "Pss")


class PeakPSS:
    """Samples the summed PSS of this process and its descendants every ``interval`` s; ``peak`` in MB.

    Use as a context manager around the work; samples taken between two reads can miss a peak
    shorter than ``interval``, so the figure is a lower bound at that resolution.
    """

    def __init__(self, interval: float = 0.05):
        self.interval, self.peak = interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        self.peak = max(self.peak, sum(_pss_mb(pid) for pid in [me, *_descendants(me)]))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> "PeakPSS":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
